#!/usr/bin/env bash
# ingest_faults.sh - the collector under faults: brokers down, kill -9, hostile and slow clients, 10,000 idle peers, backpressure.
# timeout: 240
#
# Every phase adds numbered events (ingest_load's ids n<k>) to callpipe.events
# and ends with ingest_verify over everything sent so far: exactly
# n0..n(NEXT-1), each once, per-call order kept, and no other event.
#  1. HTTP with every broker down: no 200 while down, the waiting request gets
#     its 200 once they are back; kill -9 while a request waits: the client
#     sees no 200, re-sends to a new collector and its events land once.
#  2. Garbage bytes, invalid UTF-8, a 10 MB line, a slowloris and a client that
#     stops mid-line, each on its own source, while a healthy connection sends
#     numbered events: exact dead letters and reject metrics per source, every
#     healthy event through.
#  3. 10,000 idle TCP connections held at once: none is closed, a normal
#     sender still gets through, RSS stays bounded.
#  4. Backpressure: brokers down and a TCP sender pushing 6x the high
#     watermark: the queue stops at the watermark, HTTP answers 503 +
#     Retry-After, RSS stays bounded; after the brokers return every event
#     arrives.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
LOAD=$BUILD/tools/ingest_load
VERIFY=$BUILD/tools/ingest_verify
DUMP=$BUILD/tools/topic_dump

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_faults.XXXXXX")
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    collector_kill
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    local f
    [ -z "$COLLECTOR_PID" ] || curl -s -m 5 "http://127.0.0.1:$P_ADMIN/metrics" >"$tmp/metrics.out" || true
    for f in "$tmp"/*.out "$tmp"/*.err "$tmp/ingest.log" "$tmp/broker/log"; do
        [ -s "$f" ] && { echo "--- ${f#"$tmp"/}"; tail -n 15 "$f"; }
    done
    exit 1
}
bg() { # run in the background, remember the pid for the EXIT trap; $! is the pid
    "$@" &
    bg_pids+=($!)
}
# 10,000 idle peers need as many descriptors in the collector and in ingest_load.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 10500 ] || fail "ulimit -n is $(ulimit -n): 10,000 idle connections need more"

devbroker_start "$tmp/broker" -b 3 -t callpipe.events:16 -t callpipe.deadletter:2 ||
    fail "dev broker did not start"
P_GOOD=$(free_port) P_HTTP=$(free_port) P_GARBAGE=$(free_port) P_UTF8=$(free_port)
P_BIG=$(free_port) P_SLOW=$(free_port) P_STALL=$(free_port) P_IDLE=$(free_port)
P_ADMIN=$(free_port)
export ING_TOKEN=tok-$RANDOM$RANDOM

config() { # IDLE_TIMEOUT QUEUE_MAX HIGH LOW -> $tmp/ingest.yaml
    cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
idle_timeout: $1
kafka:
  brokers: "$DEVBROKER_BOOTSTRAP"
  queue_max_messages: $2
  high_watermark: $3
  low_watermark: $4
sources:
  - {name: pbx-good, org: acme, listen: "127.0.0.1:$P_GOOD"}
  - {name: pbx-http, org: acme, transport: http, listen: "127.0.0.1:$P_HTTP", token: "env:ING_TOKEN"}
  - {name: pbx-garbage, org: acme, listen: "127.0.0.1:$P_GARBAGE"}
  - {name: pbx-utf8, org: acme, listen: "127.0.0.1:$P_UTF8"}
  - {name: pbx-big, org: acme, listen: "127.0.0.1:$P_BIG"}
  - {name: pbx-slow, org: acme, listen: "127.0.0.1:$P_SLOW"}
  - {name: pbx-stall, org: acme, listen: "127.0.0.1:$P_STALL"}
  - {name: pbx-idle, org: acme, listen: "127.0.0.1:$P_IDLE"}
YAML
}
start() { # IDLE_TIMEOUT QUEUE_MAX HIGH LOW
    config "$@"
    echo "=== collector (idle_timeout $1, queue $2, watermarks $3/$4)" >>"$tmp/ingest.log"
    collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"
    wait_until 20 curl -sf "http://127.0.0.1:$P_ADMIN/readyz" -o /dev/null || fail "not ready"
}
brokers() { # down|up
    local k
    for k in 1 2 3; do devbroker_cmd "$1" $k >/dev/null || fail "broker $1 $k"; done
}

NEXT=0 # numbered events sent so far: ids n0..n(NEXT-1)
ev() { # NUMBER CALL KIND -> one JSON event
    printf '{"event_id":"n%d","call":"%s","kind":"%s","ts":%d,"queue":"q1"}' \
        "$1" "$2" "$3" $((1700000000000000 + $1 * 1000))
}
array() { # FIRST COUNT CALL -> a JSON array of COUNT events of one call
    local i sep=
    printf '['
    for ((i = $1; i < $1 + $2; i++)); do
        printf '%s' "$sep"
        ev "$i" "$3" cdr
        sep=,
    done
    printf ']'
}
post() { # FILE -> prints the status code (000 when no answer)
    curl -s -m 120 -o "$1.answer" -w '%{http_code}' -H "Authorization: Bearer $ING_TOKEN" \
        --data-binary @"$1" "http://127.0.0.1:$P_HTTP/events" || true
}
post_async() { # FILE -> the status code into FILE.code when answered; $! is curl
    bg curl -s -m 120 -o "$1.answer" -w '%{http_code}' -H "Authorization: Bearer $ING_TOKEN" \
        --data-binary @"$1" "http://127.0.0.1:$P_HTTP/events" >"$1.code"
}
verify() { # PHASE
    "$VERIFY" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -n "$NEXT" -T 60 \
        >"$tmp/verify.out" 2>"$tmp/verify.err" || fail "$1: $(cat "$tmp/verify.out")"
    echo "$1: $(cat "$tmp/verify.out")"
}
m() { metric "$@"; }

# ---------------------------------------------------------------- 1. HTTP, brokers down
start 10m 200000 100000 50000
brokers down
array $NEXT 10 http-a >"$tmp/a.json"
post_async "$tmp/a.json"
a_pid=$!
wait_until 10 metric_is 'callpipe_ingest_events_total{source="pbx-http"}' 10 ||
    fail "the collector did not take request A"
# Five seconds with every broker down: the request must still wait (or have a 503).
for ((i = 0; i < 50; i++)); do
    code=$(cat "$tmp/a.json.code" 2>/dev/null || true)
    [ -z "$code" ] || [ "$code" = 503 ] || fail "request A answered $code while every broker was down"
    sleep 0.1
done
[ "$(m 'callpipe_ingest_events_delivered_total{source="pbx-http"}')" = 0 ] ||
    fail "events delivered while every broker was down"
kill -0 "$a_pid" 2>/dev/null || fail "request A was answered ($(cat "$tmp/a.json.code")) while down"
brokers up
wait "$a_pid" || true
[ "$(cat "$tmp/a.json.code")" = 200 ] || fail "request A answered $(cat "$tmp/a.json.code") after the brokers came back"
grep -q '"accepted":10,"rejected":0' "$tmp/a.json.answer" || fail "A: $(cat "$tmp/a.json.answer")"
NEXT=$((NEXT + 10))
echo "1a: a request waited with every broker down and got 200 once they were back"

# kill -9 while a request waits: no 200; the client re-sends to a new collector.
brokers down
array $NEXT 10 http-b >"$tmp/b.json"
post_async "$tmp/b.json"
b_pid=$!
wait_until 10 metric_is 'callpipe_ingest_events_total{source="pbx-http"}' 20 ||
    fail "the collector did not take request B"
collector_kill
wait "$b_pid" || true
[ "$(cat "$tmp/b.json.code")" != 200 ] || fail "request B got 200 from a collector killed before Kafka acked"
echo "1b: kill -9 with a request waiting: the client saw $(cat "$tmp/b.json.code"), not 200"
brokers up
start 3s 200000 100000 50000
code=$(post "$tmp/b.json")
[ "$code" = 200 ] || fail "re-sent request B answered $code"
NEXT=$((NEXT + 10))
wait_until 30 queue_drained || fail "queue not drained"
verify "1 (http, brokers down, kill -9)"

# ---------------------------------------------------------------- 2. hostile and slow clients
# (this collector has idle_timeout 3s, for the client that stalls mid-line)
good_first=$NEXT
GOOD_N=20000
NEXT=$((NEXT + GOOD_N))
bg "$LOAD" send -p "$P_GOOD" -t 2 -n $GOOD_N -f $good_first -r 2000 -T 60 \
    >"$tmp/good.out" 2>"$tmp/good.err"
good_pid=$!
# A slowloris with a whole line (one byte per 100 ms): still served.
slow_n=$NEXT
NEXT=$((NEXT + 1))
bg "$LOAD" slow -p "$P_SLOW" -d 100 -T 60 "$(ev $slow_n slow cdr)" >"$tmp/slow.out" 2>"$tmp/slow.err"
slow_pid=$!
# One that stops mid-line: cut off by the idle timeout, its partial line dead-lettered.
bg "$LOAD" slow -p "$P_STALL" -d 100 -s 20 -T 60 "$(ev 999999999 stall cdr)" \
    >"$tmp/stall.out" 2>"$tmp/stall.err"
stall_pid=$!
# 50 lines of seeded random bytes (no LF/CR, never a leading digit, which would
# select octet counting), then a good event: the stream resynchronises.
garbage_n=$NEXT
NEXT=$((NEXT + 1))
python3 - "$tmp/garbage.in" <<'PY'
import random, sys
r = random.Random(42)
bad = {10, 13}
with open(sys.argv[1], "wb") as f:
    for _ in range(50):
        line = bytes(b for b in (r.randrange(256) for _ in range(r.randrange(1, 400))) if b not in bad)
        f.write(b"#" + line + b"\n")
PY
{ cat "$tmp/garbage.in"; ev $garbage_n garbage cdr; echo; } >"$tmp/garbage.send"
# Invalid UTF-8 inside a string and as bare bytes, then a good event.
utf8_n=$NEXT
NEXT=$((NEXT + 1))
{
    printf '{"event_id":"u1","call":"bad\xff\xfe","kind":"cdr","ts":1700000000000000}\n'
    printf '\xc3\x28\xa0\xa1 not even json\n'
    ev $utf8_n utf8 cdr
    echo
} >"$tmp/utf8.send"
# A 10 MB line, then a good event on the same connection.
big_n=$NEXT
NEXT=$((NEXT + 1))
{
    head -c 10485760 /dev/zero | tr '\0' 'A'
    echo
    ev $big_n big cdr
    echo
} >"$tmp/big.send"
for s in garbage utf8 big; do
    port_var=P_$(echo $s | tr a-z A-Z)
    python3 - "${!port_var}" "$tmp/$s.send" <<'PY' || fail "could not send $s"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
while s.recv(4096):
    pass  # the collector closes once it has read everything
PY
done
for p in good slow stall; do
    pid_var=${p}_pid
    rc=0
    wait "${!pid_var}" || rc=$?
    cat "$tmp/$p.out"
    [ "$rc" = 0 ] || fail "$p client failed"
done
wait_until 30 queue_drained || fail "queue not drained"
wait_until 10 metric_is 'callpipe_ingest_rejects_total{source="pbx-big",reason="record longer than max_record"}' 1 ||
    fail "no reject counted for the 10 MB line"
metrics_text | grep '^callpipe_ingest_rejects_total' >"$tmp/rejects.txt"
sum_rejects() { awk -v s="source=\"$1\"" 'index($0, s) { n += $NF } END { print n + 0 }' "$tmp/rejects.txt"; }
[ "$(sum_rejects pbx-garbage)" = 50 ] || fail "garbage: $(grep garbage "$tmp/rejects.txt")"
[ "$(sum_rejects pbx-utf8)" = 2 ] || fail "utf8: $(grep utf8 "$tmp/rejects.txt")"
grep -q 'source="pbx-utf8",reason="invalid utf-8' "$tmp/rejects.txt" || fail "no invalid utf-8 reason"
[ "$(sum_rejects pbx-big)" = 1 ] || fail "big: $(grep big "$tmp/rejects.txt")"
[ "$(sum_rejects pbx-stall)" = 1 ] || fail "stall: $(grep stall "$tmp/rejects.txt")"
[ "$(sum_rejects pbx-slow)" = 0 ] || fail "slow: $(grep slow "$tmp/rejects.txt")"
[ "$(sum_rejects pbx-good)" = 0 ] || fail "good: $(grep good "$tmp/rejects.txt")"
sed 's/^/  /' "$tmp/rejects.txt"
# The dead-letter topic holds exactly these 54, with their sources and reasons.
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 3000 >"$tmp/dead.json" ||
    fail "could not read the dead letters"
python3 - "$tmp/dead.json" <<'PY' || fail "dead letters"
import collections, json, sys
dl = [json.loads(l) for l in open(sys.argv[1])]
by = collections.Counter(d["pbx"] for d in dl)
assert by == {"pbx-garbage": 50, "pbx-utf8": 2, "pbx-big": 1, "pbx-stall": 1}, by
big = [d for d in dl if d["pbx"] == "pbx-big"][0]
assert big["reason"] == "record longer than max_record", big["reason"]
assert set(big["raw"]) == {"A"} and 64 <= len(big["raw"]) <= 16384, len(big["raw"])
stall = [d for d in dl if d["pbx"] == "pbx-stall"][0]
assert len(stall["raw"]) == 20 and stall["raw"].startswith('{"event_id":"n9'), stall
for d in dl:
    assert d["reason"] and d["org"] == "acme", d
print("  dead letters: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
PY
verify "2 (garbage, invalid utf-8, 10 MB line, slow and stalled clients beside a healthy sender)"
collector_stop || fail "collector did not stop cleanly"

# ---------------------------------------------------------------- 3. 10,000 idle connections
start 10m 200000 100000 50000
rss0=$(proc_kb VmRSS)
bg "$LOAD" idle -p "$P_IDLE" -k 10000 -m "$tmp/idle.ready" -T 120 >"$tmp/idle.out" 2>"$tmp/idle.err"
idle_pid=$!
wait_until 60 test -e "$tmp/idle.ready" || fail "10,000 connections not open within 60 s"
wait_until 30 metric_is 'callpipe_ingest_connections{source="pbx-idle"}' 10000 ||
    fail "the collector holds $(m 'callpipe_ingest_connections{source="pbx-idle"}') idle connections"
rss_idle=$(proc_kb VmRSS)
t0=$SECONDS
# The normal sender uses the same listener (and loops) as the idle crowd.
"$LOAD" send -p "$P_IDLE" -t 4 -n 10000 -f $NEXT -T 60 >"$tmp/normal.out" 2>"$tmp/normal.err" ||
    fail "a normal sender failed beside 10,000 idle connections"
NEXT=$((NEXT + 10000))
cat "$tmp/normal.out"
wait_until 30 queue_drained || fail "queue not drained"
wait_until 10 metric_is 'callpipe_ingest_connections{source="pbx-idle"}' 10000 ||
    fail "idle connections: $(m 'callpipe_ingest_connections{source="pbx-idle"}') open, not 10000"
kill -TERM "$idle_pid"
rc=0
wait "$idle_pid" || rc=$?
cat "$tmp/idle.out"
[ "$rc" = 0 ] || fail "the collector closed idle connections"
# Bound: an idle connection costs the collector its struct and libuv handle
# (well under 1 KB; no read buffer while idle), so 10,000 of them should add
# ~10 MB; 64 MB over the baseline and 200 MB in all leave room for allocator
# slack while still catching a per-connection buffer (64 KB x 10,000 = 640 MB).
echo "3: RSS ${rss0} kB at start, ${rss_idle} kB with 10,000 idle connections" \
    "(+$(((rss_idle - rss0) / 1024)) MB); normal sender done in $((SECONDS - t0)) s"
[ "$rss_idle" -lt $((200 * 1024)) ] || fail "RSS ${rss_idle} kB with 10,000 idle connections"
[ $((rss_idle - rss0)) -lt $((64 * 1024)) ] || fail "10,000 idle connections cost $((rss_idle - rss0)) kB"
verify "3 (10,000 idle connections)"
collector_stop || fail "collector did not stop cleanly"

# ---------------------------------------------------------------- 4. backpressure
QMAX=20000 HIGH=10000 LOW=5000
start 10m $QMAX $HIGH $LOW
rss0=$(proc_kb VmRSS)
brokers down
BP_N=60000
bg "$LOAD" send -p "$P_GOOD" -t 4 -n $BP_N -f $NEXT -T 120 >"$tmp/bp.out" 2>"$tmp/bp.err"
bp_pid=$!
NEXT=$((NEXT + BP_N))
wait_until 30 metric_ge callpipe_ingest_kafka_queue_messages $HIGH || fail "the queue never reached the high watermark"
# Paused: HTTP answers 503 with Retry-After and produces nothing.
printf '[{"event_id":"bp-1","call":"bp","kind":"cdr","ts":1700000000000000}]' >"$tmp/bp.json"
curl -s -m 10 -D "$tmp/bp.headers" -o /dev/null -H "Authorization: Bearer $ING_TOKEN" \
    --data-binary @"$tmp/bp.json" "http://127.0.0.1:$P_HTTP/events" || true
head -n 1 "$tmp/bp.headers" | grep -q ' 503 ' || fail "HTTP under backpressure: $(head -n 1 "$tmp/bp.headers")"
grep -qi '^Retry-After: [0-9]' "$tmp/bp.headers" || fail "503 without Retry-After"
# Five more seconds down: the sender stays blocked, the queue and RSS stay bounded.
rss_max=0 q_max=0
for ((i = 0; i < 25; i++)); do
    r=$(proc_kb VmRSS) q=$(m callpipe_ingest_kafka_queue_messages)
    [ "$r" -gt "$rss_max" ] && rss_max=$r
    [ "$q" -gt "$q_max" ] && q_max=$q
    sleep 0.2
done
kill -0 "$bp_pid" 2>/dev/null || fail "the sender finished while every broker was down"
taken=$(m 'callpipe_ingest_events_total{source="pbx-good"}')
echo "4: brokers down: queue at most $q_max, $taken of $BP_N events taken, RSS ${rss0} -> ${rss_max} kB"
[ "$q_max" -le "$QMAX" ] || fail "the queue passed queue_max_messages: $q_max"
[ "$taken" -le "$QMAX" ] || fail "the collector kept reading: $taken events taken with Kafka down"
# Bound: the paused queue holds ~10,000 events of ~250 bytes (a few MB with
# librdkafka's per-message overhead); 64 MB over the baseline means reads were not paused.
[ $((rss_max - rss0)) -lt $((64 * 1024)) ] || fail "RSS grew by $((rss_max - rss0)) kB under backpressure"
brokers up
rc=0
wait "$bp_pid" || rc=$?
cat "$tmp/bp.out"
[ "$rc" = 0 ] || fail "the backpressured sender failed"
wait_until 60 queue_drained || fail "queue not drained"
verify "4 (backpressure)"
collector_stop || fail "collector did not stop cleanly"
echo "ingest_faults: ok ($NEXT numbered events)"
