#!/usr/bin/env python3
"""fake_pbx.py - a scripted Asterisk AMI or FreeSWITCH Event Socket server for integration tests.

    fake_pbx.py ami|esl --port-file F --log L [--port N] [--user U] --secret S
                [--batch FILE[,FILE...]]... [--partial-tail] [--disconnect-notice]

Listens on 127.0.0.1 (--port 0 picks a free port, written to --port-file once
listening) and serves one client at a time, as the PBXs do for one manager user.

AMI: sends the banner; answers "Action: Challenge" (AuthType MD5) with a random
Challenge and checks a later MD5 Login's Key against md5(challenge + secret);
checks a plain Login's Secret; answers Response: Success / Error (and closes
after an Error, as Asterisk does); Ping -> Response: Success / Ping: Pong.
ESL: sends auth/request; "auth <pw>" -> +OK accepted or -ERR invalid (then
closes); "event plain ..." -> +OK event listener enabled plain; "exit" -> +OK bye.

The n-th successful login (1-based) gets the event blocks of the n-th --batch
(the Event blocks of AMI golden inputs, the text/event-plain messages of ESL
ones), written in small pieces so that records straddle reads.  Later logins get
nothing.  This is the contract the tests rely on: the PBX sends a batch only after
the collector has logged in.  --partial-tail adds the first half of one more
block after the last batch (a block cut by a crash); --disconnect-notice makes
ESL send text/disconnect-notice and close after every batch but the last.

Log lines (flushed at once), for the test to poll:
  listening PORT | connect N | login ok md5|plain | login refused WHY |
  auth ok | auth refused | subscribed EVENTS | ping | sent N BLOCKS | closed N
"""
import argparse
import hashlib
import os
import random
import re
import socket
import sys
import time


def log(f, text):
    f.write(text + "\n")
    f.flush()


def ami_blocks(path):
    """The Event blocks of an AMI capture, each ending with its empty line (CRLF)."""
    data = open(path, "rb").read().replace(b"\r\n", b"\n")
    out = []
    for blk in data.split(b"\n\n"):
        blk = blk.strip(b"\n")
        if blk.startswith(b"Event:"):
            out.append(blk.replace(b"\n", b"\r\n") + b"\r\n\r\n")
    return out


def esl_messages(data):
    """Cuts ESL outer messages: headers, empty line, Content-Length bytes."""
    msgs, off = [], 0
    while off < len(data):
        if data[off:off + 1] == b"\n":
            off += 1
            continue
        end = data.find(b"\n\n", off)
        if end < 0:
            break
        head = data[off:end + 2]
        m = re.search(rb"(?mi)^Content-Length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        msgs.append((head, data[end + 2:end + 2 + n]))
        off = end + 2 + n
    return msgs


def esl_blocks(path):
    out = []
    for head, body in esl_messages(open(path, "rb").read()):
        if re.search(rb"(?mi)^Content-Type:\s*text/event-plain", head):
            out.append(head + body)
    return out


class Peer:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def read_until(self, sep):
        """The next chunk ending with sep (sep included), or None at EOF."""
        while sep not in self.buf:
            try:
                got = self.conn.recv(65536)
            except OSError:
                return None
            if not got:
                return None
            self.buf += got
        i = self.buf.index(sep) + len(sep)
        chunk, self.buf = self.buf[:i], self.buf[i:]
        return chunk

    def send(self, data):
        self.conn.sendall(data)


def headers(block):
    h = {}
    for line in block.decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            h.setdefault(k.strip().lower(), v.strip())
    return h


def send_pieces(peer, blocks, rng):
    """Writes the blocks as one stream in pieces of 1..700 bytes."""
    data = b"".join(blocks)
    off = 0
    while off < len(data):
        n = rng.randint(1, 700)
        peer.send(data[off:off + n])
        off += n
        if rng.random() < 0.2:
            time.sleep(0.002)


def serve_ami(peer, args, state, logf, rng):
    peer.send(b"Asterisk Call Manager/9.0.0\r\n")
    challenge = None
    while True:
        blk = peer.read_until(b"\r\n\r\n")
        if blk is None:
            return
        h = headers(blk)
        action = h.get("action", "").lower()
        aid = h.get("actionid", "")
        idl = b"ActionID: " + aid.encode() + b"\r\n" if aid else b""
        if action == "challenge":
            if h.get("authtype", "").lower() != "md5":
                peer.send(b"Response: Error\r\n" + idl + b"Message: Must specify AuthType\r\n\r\n")
                continue
            challenge = str(rng.randint(100000000, 999999999))
            peer.send(b"Response: Success\r\n" + idl + b"Challenge: " + challenge.encode() +
                      b"\r\n\r\n")
        elif action == "login":
            user_ok = h.get("username", "") == args.user
            if h.get("authtype", "").lower() == "md5":
                want = hashlib.md5((challenge or "").encode() + args.secret.encode()).hexdigest()
                ok = user_ok and challenge is not None and h.get("key", "") == want
                mode = "md5"
                if "secret" in h:
                    ok = False  # the secret must never cross the wire in MD5 mode
            else:
                ok = user_ok and h.get("secret", None) == args.secret
                mode = "plain"
            challenge = None
            if not ok:
                log(logf, f"login refused {mode} user={h.get('username', '')}")
                peer.send(b"Response: Error\r\n" + idl + b"Message: Authentication failed\r\n\r\n")
                return  # Asterisk ends the session after a failed login
            state["logins"] += 1
            log(logf, f"login ok {mode} events={h.get('events', '')}")
            peer.send(b"Response: Success\r\n" + idl + b"Message: Authentication accepted\r\n\r\n")
            peer.send(b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 12\r\n"
                      b"LastReload: 12\r\nStatus: Fully Booted\r\n\r\n")
            send_batch(peer, args, state, logf, rng, ami_blocks)
        elif action == "ping":
            log(logf, "ping")
            peer.send(b"Response: Success\r\n" + idl + b"Ping: Pong\r\nTimestamp: %.6f\r\n\r\n"
                      % time.time())
        elif action == "logoff":
            peer.send(b"Response: Goodbye\r\n" + idl + b"Message: Thanks for all the fish.\r\n\r\n")
            return
        else:
            peer.send(b"Response: Error\r\n" + idl + b"Message: Invalid/unknown command\r\n\r\n")


def send_batch(peer, args, state, logf, rng, cut):
    n = state["logins"]
    if n > len(args.batch):
        return False
    blocks = [b for path in args.batch[n - 1].split(",") if path for b in cut(path)]
    send_pieces(peer, blocks, rng)
    last = n == len(args.batch)
    if last and args.partial_tail and blocks:
        peer.send(blocks[0][: len(blocks[0]) // 2])
    log(logf, f"sent {n} {len(blocks)}")
    return not last


def serve_esl(peer, args, state, logf, rng):
    peer.send(b"Content-Type: auth/request\n\n")
    authed = False
    while True:
        cmd = peer.read_until(b"\n\n")
        if cmd is None:
            return
        line = cmd.decode("utf-8", "replace").strip()
        if line.startswith("auth "):
            if line[5:] == args.secret:
                authed = True
                log(logf, "auth ok")
                peer.send(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
            else:
                log(logf, "auth refused")
                peer.send(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
                return
        elif not authed:
            peer.send(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
        elif line.startswith("event plain"):
            log(logf, "subscribed " + line[len("event plain"):].strip())
            peer.send(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")
            state["logins"] += 1
            more = send_batch(peer, args, state, logf, rng, esl_blocks)
            if more and args.disconnect_notice:
                body = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
                peer.send(b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(body)
                          + body)
                log(logf, "disconnect notice")
                return
        elif line == "exit":
            peer.send(b"Content-Type: command/reply\nReply-Text: +OK bye\n\n")
            return
        else:
            peer.send(b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proto", choices=["ami", "esl"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--user", default="callpipe")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--batch", action="append", default=[])
    ap.add_argument("--partial-tail", action="store_true")
    ap.add_argument("--disconnect-notice", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logf = open(args.log, "a")
    rng = random.Random(args.seed)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(4)
    port = ls.getsockname()[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, args.port_file)
    log(logf, f"listening {port}")
    state = {"logins": 0}
    nconn = 0
    serve = serve_ami if args.proto == "ami" else serve_esl
    while True:
        conn, _ = ls.accept()
        nconn += 1
        log(logf, f"connect {nconn}")
        try:
            serve(Peer(conn), args, state, logf, rng)
        except OSError as e:
            log(logf, f"error {e}")
        conn.close()
        log(logf, f"closed {nconn}")


if __name__ == "__main__":
    sys.exit(main())
