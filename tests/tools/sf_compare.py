#!/usr/bin/env python3
# sf_compare.py - the loader's oracle: every calls row against the emulator's stored records, field by field, and the outbox states.
"""Compares what the loader put into the Salesforce emulator with PostgreSQL.

    sf_compare.py --dsn DSN --emu LOGIN_URL --map ORG=JSON [--map ...]
                  [--object ORG=OBJECT] [--dead FILE] [--jobs ORG=N] [--pack ORG=MAX_BYTES]

For every org named by --map (the same JSON field mapping the loader was configured with) it
computes each expected value itself from the calls row (its own implementation of the
transforms in loader/README.md, not the loader's code) and requires:
  - every outbox row of the org is 'done' except exactly the keys listed in --dead (lines
    "ORG<TAB>KEY<TAB>message substring"), which must be 'dead' with that text in last_error;
  - the emulator holds exactly one record per done row and none for a dead row (no duplicate,
    nothing missing, nothing extra), whose Id is the outbox sf_id;
  - every mapped field of every record equals the expected value;
  - --jobs ORG=N: the emulator's job history has exactly N jobs for the org;
  - --pack ORG=MAX: the jobs are the greedy split of the rows (in outbox id order) by
    max_records 10000 and MAX bytes: the job count, and every job's byte size, are recomputed
    from the CSV this script renders.
Prints a summary line per org; exits 1 with the first differences otherwise.
"""
import argparse
import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone

OBJECTS = {"service": "VoiceCall", "sales": "Task"}


def psql_json(dsn, sql):
    out = subprocess.run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
        check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def http_json(url):
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read().decode("utf-8"))


# ---- the transforms (loader/README.md), written again from the documentation ----

def row_key(org, pbx, call_id, ended_us):
    full = f"{org}|{pbx}|{call_id}|{ended_us}"
    if len(full.encode()) <= 80:
        return full
    return "sha256:" + hashlib.sha256(full.encode()).hexdigest()


def e164(v, country):
    p = v
    if p.startswith("tel:"):
        p = p[4:]
    elif p.startswith("sip:") or p.startswith("sips:"):
        p = p.split(":", 1)[1]
    user = re.split(r"[@;]", p, maxsplit=1)[0]
    plus, digits = False, ""
    for ch in user:
        if ch.isdigit() and ch.isascii():
            digits += ch
        elif ch == "+" and not digits and not plus:
            plus = True
        elif ch in " -()./":
            continue
        else:
            return v
    if len(digits) > 30:
        return v
    if plus:
        d = digits
    elif len(digits) > 2 and digits.startswith("00"):
        d = digits[2:]
    elif country == "1" and len(digits) == 11 and digits[0] == "1":
        d = digits
    elif country and len(digits) >= 2 and digits[0] == "0" and digits[1] != "0":
        d = country + digits[1:]
    elif country == "1" and len(digits) == 10:
        d = "1" + digits
    else:
        return v
    if len(d) < 8 or len(d) > 15 or d[0] == "0":
        return v
    return "+" + d


def picklist(m, v):
    default = None
    for item in m.split(","):
        k, _, to = item.partition("=")
        if k == v:
            return to
        if k == "*":
            default = to
    return default


def cut_utf8(s, max_bytes):
    b = s.encode()
    if len(b) <= max_bytes:
        return s
    return b[:max_bytes].decode("utf-8", errors="ignore")


def source_value(call, src):
    if src == "duration_ms":
        if call["started_at"] is None:
            return None
        return (call["ended_at"] - call["started_at"] + 500) // 1000  # PostgreSQL rounds half up
    return call[src]


def csv_value(f, call, key):
    """The text the loader writes into the CSV cell (None = the explicit null #N/A)."""
    t = f.get("transform", "text")
    if t == "constant":
        return f["value"]
    if t == "key":
        return key
    v = source_value(call, f["source"])
    if v is None:
        return None
    if t == "text":
        return cut_utf8(v, f["max_length"]) if f.get("max_length") else v
    if t == "e164":
        return e164(v, f.get("country", ""))
    if t == "datetime":
        us = v
        ms = us // 1000
        t0 = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
        return t0.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)
    if t == "date":
        return datetime.fromtimestamp(v // 1000000, tz=timezone.utc).strftime("%Y-%m-%d")
    if t == "seconds":
        return str((v + 500) // 1000)
    if t == "picklist":
        return picklist(f["map"], v)
    raise ValueError(f"unknown transform {t}")


INT_FIELDS = {"CallDurationInSeconds"}


def stored_value(field, cell):
    """What the emulator stores for that CSV cell (its JSON dump's value)."""
    if cell is None or cell == "":
        return None
    if field in INT_FIELDS:
        return int(cell)
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", cell):
        return cell[:-1] + "+0000"
    return cell


def csv_cell(v):
    if v is None:
        return "#N/A"
    if not re.search(r'[,"\r\n]', v):
        return v
    v = v.replace("\r\n", "\n").replace("\r", "\n")
    return '"' + v.replace('"', '""') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--emu", required=True)
    ap.add_argument("--map", action="append", default=[])
    ap.add_argument("--dead")
    ap.add_argument("--jobs", action="append", default=[])
    ap.add_argument("--pack", action="append", default=[])
    a = ap.parse_args()

    maps = {}
    for m in a.map:
        org, _, js = m.partition("=")
        maps[org] = json.loads(js)
    want_jobs = {k: int(v) for k, _, v in (j.partition("=") for j in a.jobs)}
    pack = {k: int(v) for k, _, v in (j.partition("=") for j in a.pack)}
    dead_want = {}
    if a.dead:
        for line in open(a.dead, encoding="utf-8"):
            if line.strip():
                org, key, msg = line.rstrip("\n").split("\t")
                dead_want[(org, key)] = msg

    tcols = ["ended_at", "started_at", "queued_at", "answered_at"]
    cols = ("org, pbx, call_id, direction, from_number, from_name, to_number, final_to, queue, "
            "agent, wait_ms, talk_ms, hold_ms, acw_ms, handle_ms, disposition, queue_outcome, "
            "wrapup, hangup_side, source, " +
            ", ".join(f"(extract(epoch FROM {c}) * 1000000)::bigint AS {c}" for c in tcols))
    calls = psql_json(a.dsn, f"SELECT row_to_json(t) FROM (SELECT {cols} FROM calls) t")
    by_call = {}
    for c in calls:
        by_call[(c["org"], c["pbx"], c["call_id"], c["ended_at"])] = c
    outbox = psql_json(a.dsn, "SELECT row_to_json(t) FROM (SELECT id, target_org, org, pbx, call_id, "
                              "(extract(epoch FROM ended_at) * 1000000)::bigint AS ended_us, state, "
                              "sf_id, last_error, attempts FROM sf_outbox ORDER BY id) t")
    errors = []

    def err(msg):
        if len(errors) < 40:
            errors.append(msg)

    for org, fields in maps.items():
        obj = OBJECTS[org]
        recs = http_json(f"{a.emu}/__emu/orgs/{org}/records/{obj}")
        by_key = {}
        for r in recs:
            by_key.setdefault(r.get("Callpipe_Key__c"), []).append(r)
        dups = {k: len(v) for k, v in by_key.items() if len(v) > 1}
        if dups:
            err(f"{org}: {len(dups)} keys stored more than once, e.g. {list(dups.items())[:3]}")
        rows = [o for o in outbox if o["target_org"] == org]
        done = dead = 0
        seen = set()
        rendered = []
        for o in rows:
            call = by_call.get((o["org"], o["pbx"], o["call_id"], o["ended_us"]))
            if call is None:
                err(f"{org}: outbox row {o['id']} has no calls row")
                continue
            key = row_key(o["org"], o["pbx"], o["call_id"], o["ended_us"])
            seen.add(key)
            cells = [csv_value(f, call, key) for f in fields]
            rendered.append(",".join(csv_cell(v) for v in cells) + "\n")
            want_dead = dead_want.get((org, key))
            got = by_key.get(key, [])
            if want_dead is not None:
                dead += 1
                if o["state"] != "dead" or want_dead not in (o["last_error"] or ""):
                    err(f"{org}: {key}: expected dead with '{want_dead}', got {o['state']} "
                        f"({o['last_error']})")
                if got:
                    err(f"{org}: {key}: dead row is stored in the org")
                continue
            done += 1
            if o["state"] != "done":
                err(f"{org}: {key}: state {o['state']} ({o['last_error']}), want done")
                continue
            if len(got) != 1:
                err(f"{org}: {key}: {len(got)} records in the org, want 1")
                continue
            r = got[0]
            if r["Id"] != o["sf_id"]:
                err(f"{org}: {key}: outbox sf_id {o['sf_id']} != record Id {r['Id']}")
            for f, cell in zip(fields, cells):
                want = stored_value(f["field"], cell)
                if r.get(f["field"]) != want:
                    err(f"{org}: {key}: {f['field']} = {r.get(f['field'])!r}, want {want!r}")
        extra = set(by_key) - seen
        if extra:
            err(f"{org}: {len(extra)} records with keys not in the outbox, e.g. {sorted(extra)[:3]}")
        missing_dead = [k for (og, k) in dead_want if og == org and k not in seen]
        if missing_dead:
            err(f"{org}: expected-dead keys not in the outbox: {missing_dead[:3]}")
        jobs = http_json(f"{a.emu}/__emu/orgs/{org}/jobs")
        njobs = len(jobs)
        if org in want_jobs and njobs != want_jobs[org]:
            err(f"{org}: {njobs} jobs in the emulator, want {want_jobs[org]}")
        if org in pack:
            header = ",".join(csv_cell(f["field"]) for f in fields) + "\n"
            sizes, cur, n = [], len(header.encode()), 0
            for row in rendered:
                b = len(row.encode())
                if n and (cur + b > pack[org] or n == 10000):
                    sizes.append((n, cur))
                    cur, n = len(header.encode()), 0
                cur += b
                n += 1
            if n:
                sizes.append((n, cur))
            got_sizes = sorted((j["rows"], j["uploadBytes"]) for j in jobs)
            if got_sizes != sorted(sizes):
                err(f"{org}: jobs (rows, bytes) {got_sizes[:6]}... want {sorted(sizes)[:6]}... "
                    f"({len(got_sizes)} vs {len(sizes)} jobs)")
            if any(b > pack[org] for _, b in got_sizes):
                err(f"{org}: a job is larger than {pack[org]} bytes")
        print(f"{org}: {len(recs)} {obj} records, {done} done, {dead} dead, {njobs} jobs, "
              f"{sum(1 for o in rows if o['attempts'] > 1)} rows needed more than one job")
    if errors:
        print("\n".join(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
