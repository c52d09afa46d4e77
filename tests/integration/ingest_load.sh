#!/usr/bin/env bash
# ingest_load.sh - 500,000 numbered events from 200 TCP and 50 HTTP senders survive every broker down for 30 s.
# timeout: 240
#
# ingest_load sends numbered events (several per call, in lifecycle order)
# over 200 TCP connections and 50 HTTP keep-alive connections (JSON arrays of
# 100) at a bounded rate; when half are sent, all three dev brokers go down
# for 30 s, so the collector's producer queue fills to its high watermark and
# TCP reads pause (HTTP requests wait, or get 503 + Retry-After and retry);
# then they come back.
# Asserts: every HTTP event was confirmed by a 200, the queue never grew past
# its limit, and callpipe.events holds exactly n0..n(N-1), each once, with
# every call's events in the order sent.  Prints the collector's peak RSS
# (VmHWM) and the time taken (about 60 s on 2 cores).
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh

N=${INGEST_LOAD_N:-500000}
RATE=${INGEST_LOAD_RATE:-20000}
DOWN_S=30
N_TCP=200
N_HTTP=50
QUEUE_MAX=200000
HIGH=100000
# The dev broker keeps about 5 MB per partition; 64 partitions hold 500,000
# events of ~250 bytes (about 2 MB each) so the whole topic can be re-read.
PARTS=64
LOAD=$BUILD/tools/ingest_load
VERIFY=$BUILD/tools/ingest_verify

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_load.XXXXXX")
load_pid=
cleanup() {
    [ -n "$load_pid" ] && kill -9 "$load_pid" 2>/dev/null
    collector_kill
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in load.out load.err verify.err ingest.log broker/log; do
        [ -s "$tmp/$f" ] && { echo "--- $f"; tail -n 20 "$tmp/$f"; }
    done
    exit 1
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

devbroker_start "$tmp/broker" -b 3 -t callpipe.events:$PARTS -t callpipe.deadletter:2 ||
    fail "dev broker did not start"
P_TCP=$(free_port) P_HTTP=$(free_port) P_ADMIN=$(free_port)
export ING_TOKEN=tok-$RANDOM$RANDOM
cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
kafka:
  brokers: "$DEVBROKER_BOOTSTRAP"
  queue_max_messages: $QUEUE_MAX
  high_watermark: $HIGH
  low_watermark: $((HIGH / 2))
sources:
  - {name: pbx-tcp, org: acme, listen: "127.0.0.1:$P_TCP"}
  - {name: pbx-http, org: acme, transport: http, listen: "127.0.0.1:$P_HTTP", token: "env:ING_TOKEN"}
YAML
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"
wait_until 20 curl -sf "http://127.0.0.1:$P_ADMIN/readyz" -o /dev/null || fail "collector not ready"

start=$SECONDS
"$LOAD" send -p "$P_TCP" -P "$P_HTTP" -t $N_TCP -h $N_HTTP -n "$N" -b 100 -k 5 -r "$RATE" \
    -m $((N / 2)):"$tmp/half" -T 200 >"$tmp/load.out" 2>"$tmp/load.err" &
load_pid=$!
wait_until 90 test -e "$tmp/half" || fail "half the events not sent within 90 s"
kill -0 "$load_pid" 2>/dev/null || fail "the sender finished before the brokers went down"
for k in 1 2 3; do devbroker_cmd down $k >/dev/null || fail "down $k"; done
echo "all brokers down at $((SECONDS - start)) s, after $(cat "$tmp/half") events sent"

# While down: sample the producer queue; it must reach the watermark (inputs
# pause) and never pass the configured queue limit.
qmax=0
down_end=$((SECONDS + DOWN_S))
while [ "$SECONDS" -lt "$down_end" ]; do
    q=$(metric callpipe_ingest_kafka_queue_messages)
    [ -n "$q" ] && [ "$q" -gt "$qmax" ] && qmax=$q
    sleep 0.5
done
kill -0 "$load_pid" 2>/dev/null || fail "the sender finished while every broker was down"
for k in 1 2 3; do devbroker_cmd up $k >/dev/null || fail "up $k"; done
echo "brokers up at $((SECONDS - start)) s; largest queue while down: $qmax"
[ "$qmax" -ge "$HIGH" ] || fail "the queue never reached the high watermark ($qmax < $HIGH)"
[ "$qmax" -le "$QUEUE_MAX" ] || fail "the queue grew past queue_max_messages ($qmax)"

load_rc=0
wait "$load_pid" || load_rc=$?
load_pid=
cat "$tmp/load.out"
[ "$load_rc" = 0 ] || fail "the sender failed (rc=$load_rc)"
read -r confirmed posted < <(sed -n 's|.*http_confirmed=\([0-9]*\)/\([0-9]*\) .*|\1 \2|p' "$tmp/load.out")
[ -n "$posted" ] && [ "$posted" -gt 0 ] && [ "$confirmed" = "$posted" ] ||
    fail "not every HTTP event was confirmed by a 200"
# HTTP senders wait on their in-flight request through the outage; whether a
# later one meets a 503 depends on how fast the backlog drains, so 503s are
# asserted in ingest_faults.sh (backpressure phase), not here.
wait_until 120 queue_drained || fail "the producer queue did not drain"
sent_s=$((SECONDS - start))

"$VERIFY" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -n "$N" -T 120 \
    >"$tmp/verify.out" 2>"$tmp/verify.err" || { cat "$tmp/verify.out"; fail "verify"; }
cat "$tmp/verify.out"
hwm=$(proc_kb VmHWM)
delivered=$(metric_sum callpipe_ingest_events_delivered_total)
[ "$delivered" = "$N" ] || fail "the collector counted $delivered delivered events, not $N"
collector_stop || fail "the collector did not stop cleanly"
echo "ingest_load: ok: $N events ($N_TCP tcp + $N_HTTP http senders, brokers down ${DOWN_S} s)" \
    "in ${sent_s} s + verify; total $((SECONDS - start)) s; collector peak RSS (VmHWM) ${hwm} kB"
