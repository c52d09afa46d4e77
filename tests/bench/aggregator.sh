#!/usr/bin/env bash
# tests/bench/aggregator.sh - the aggregator: 2,000,000 events from Kafka into PostgreSQL, against a plain COPY ceiling.
#
#   make bench-aggregator          (or BUILD=build tests/bench/aggregator.sh)
#   BENCH_EVENTS=300000 BENCH_PROFILE=1 tests/bench/aggregator.sh
#
# callgen pre-fills a dev broker (128 partitions, so ~2.8 MB each stays under the mock's ~5 MB
# per partition) with BENCH_EVENTS canonical events (~234,000 calls, every lifecycle of
# tests/tools/callgen.c); then one aggregator (default flush settings, wrapup_wait 1 s)
# consumes them into a private PostgreSQL (pg.sh).  Measured, from its /metrics (polled
# every 100 ms) and /proc/PID/stat:
#   events/s        events / (first event consumed -> last event consumed)
#   events/CPU-s    events / (utime + stime of the aggregator, all threads, same window)
#   calls/s end to end   finished calls / (first event -> every call committed in PostgreSQL):
#                   the whole pipeline (decoding, call state, every other write of each flush)
#   calls/s write path   callpipe_aggregator_calls_copy_rows_total /
#                   sum of callpipe_aggregator_calls_copy_seconds: finished-call rows per second
#                   spent in the `COPY calls` statement of the committed flushes
#   flush sizes     callpipe_aggregator_flush_events histogram (count, mean, buckets)
# and, in the same run, the ceiling: the same finished-call rows (exported from `calls`)
# copied back into an emptied `calls` with ONE `\copy` as callpipe_writer: rows/s.
# Targets: >= 500,000 events per aggregator CPU-second; finished calls written (the write
# path) >= 80 % of the ceiling.  The end-to-end ratio is reported beside it, without a target.
# BENCH_PROFILE=1 adds `perf record -e cpu-clock` of the aggregator (by thread, by function, callers in
# build/bench/aggregator-profile.txt).  Table: build/bench/aggregator.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
export BUILD
EVENTS_WANT=${BENCH_EVENTS:-2000000}
PARTS=${BENCH_PARTITIONS:-128}
OUT=${BENCH_OUT:-$ROOT/build/bench}
PROFILE=${BENCH_PROFILE:-0}
PSQL=/usr/lib/postgresql/15/bin/psql
mkdir -p "$OUT"
for f in "$BUILD/callpipe" "$BUILD/tools/callgen" "$BUILD/tools/devbroker"; do
    [ -x "$f" ] || { echo "bench: $f not built (make)" >&2; exit 1; }
done
. tests/scripts/devbroker.sh

tmp=$(mktemp -d /tmp/bench_agg.XXXXXX)
pgdir=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
agg_pid= perf_pid=
cleanup() {
    [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
    [ -n "$agg_pid" ] && kill -9 "$agg_pid" 2>/dev/null
    devbroker_stop >/dev/null 2>&1 || true
    tests/scripts/pg.sh destroy "$pgdir" >/dev/null 2>&1 || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
now() { date +%s.%N; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
TCK=$(getconf CLK_TCK)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metric() { # NAME -> value from /metrics (empty when unreachable)
    { curl -s --max-time 2 "http://127.0.0.1:$port/metrics" || true; } | awk -v n="$1" '$1 == n {print $2}'
}

echo "== dev broker ($PARTS partitions), PostgreSQL, pre-fill"
devbroker_start "$tmp/broker" -b 1 -t callpipe.events:$PARTS >/dev/null
dsn=$(tests/scripts/pg.sh start "$pgdir")
"$BUILD/callpipe" migrate --dsn "$dsn" >"$tmp/migrate.log" 2>&1
. "$pgdir/env"
"$BUILD/tools/callgen" -e "$EVENTS_WANT" -s 11 -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events \
    | tee "$tmp/callgen.out"
EVENTS=$(sed -n 's/.* events=\([0-9]*\) .*/\1/p' "$tmp/callgen.out")
CALLS=$(sed -n 's/.*calls=\([0-9]*\) .*/\1/p' "$tmp/callgen.out")
BYTES=$(sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' "$tmp/callgen.out")

cat >"$tmp/agg.yaml" <<EOF
admin: 127.0.0.1:$port
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", session_timeout: 6s, heartbeat: 500ms}
postgres: {dsn: "$CALLPIPE_PG_WRITER_DSN"}
wrapup_wait: 1s
EOF
echo "== aggregator: $EVENTS events, $CALLS calls"
"$BUILD/callpipe" aggregator -c "$tmp/agg.yaml" >"$tmp/agg.log" 2>&1 &
agg_pid=$!
if [ "$PROFILE" = 1 ]; then
    perf record -e cpu-clock -g -o "$tmp/perf.data" -p "$agg_pid" >/dev/null 2>&1 &
    perf_pid=$!
fi
deadline=$((SECONDS + 600))
t_first= cpu_first= ev=0
while :; do
    kill -0 "$agg_pid" 2>/dev/null || { tail "$tmp/agg.log"; echo "bench: aggregator died" >&2; exit 1; }
    ev=$(metric callpipe_aggregator_events_total)
    if [ -z "$t_first" ] && [ "${ev:-0}" != 0 ]; then
        t_first=$(now) cpu_first=$(cpu_ticks "$agg_pid") ev_first=$ev
    fi
    if [ "${ev:-0}" = "$EVENTS" ]; then
        t_last=$(now) cpu_last=$(cpu_ticks "$agg_pid")
        break
    fi
    [ $SECONDS -lt $deadline ] || { echo "bench: only ${ev:-0}/$EVENTS events consumed" >&2; exit 1; }
    sleep 0.1
done
while [ "$("$PSQL" -X -tA -d "$dsn" -c "select count(*) from calls")" != "$CALLS" ]; do
    [ $SECONDS -lt $deadline ] || { echo "bench: calls not all written" >&2; exit 1; }
    sleep 0.1
done
t_calls=$(now) cpu_calls=$(cpu_ticks "$agg_pid")
curl -s "http://127.0.0.1:$port/metrics" >"$tmp/metrics.txt"
grep '^callpipe_aggregator_flush_events' "$tmp/metrics.txt" >"$tmp/flush.txt"
COPY_S=$(awk '$1 == "callpipe_aggregator_calls_copy_seconds_sum" {printf "%.3f", $2}' "$tmp/metrics.txt")
COPY_ROWS=$(awk '$1 == "callpipe_aggregator_calls_copy_rows_total" {print $2}' "$tmp/metrics.txt")
FLUSH_S=$(awk '$1 == "callpipe_aggregator_flush_seconds_sum" {printf "%.2f", $2}' "$tmp/metrics.txt")
if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=
    {
        echo "## by thread"
        perf report -i "$tmp/perf.data" --no-children --sort comm -g none --stdio 2>/dev/null |
            grep -v '^#' | grep '%' | head -10
        echo "## by function (flat)"
        perf report -i "$tmp/perf.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
            grep -v '^#' | grep '%' | head -50
        echo "## callers of the top functions"
        perf report -i "$tmp/perf.data" --no-children --sort symbol -g caller,0.5,callee --stdio \
            2>/dev/null | grep -v '^#' | grep '%' | head -120
    } >"$OUT/aggregator-profile.txt" || true
fi
kill -TERM "$agg_pid"
wait "$agg_pid" || true
agg_pid=

echo "== ceiling: the same call rows, one \\copy into an emptied calls"
cols="org, pbx, call_id, ended_at, direction, from_number, from_name, to_number, final_to, queue, agent, started_at, queued_at, answered_at, wait_ms, talk_ms, hold_ms, acw_ms, handle_ms, disposition, queue_outcome, wrapup, hangup_side, source"
"$PSQL" -X -q -d "$dsn" -c "\\copy (select $cols from calls) to '$tmp/calls.copy'"
"$PSQL" -X -q -d "$dsn" -c "truncate calls" -c "checkpoint"
c0=$(now)
"$PSQL" -X -q -d "$CALLPIPE_PG_WRITER_DSN" -c "\\copy calls ($cols) from '$tmp/calls.copy'"
c1=$(now)

read -r EVPS EVCPU CALLPS CEIL RATIO WIN CPU_S COPYPS COPYRATIO <<<"$(python3 - "$EVENTS" "$CALLS" \
    "$t_first" "$t_last" "$cpu_first" "$cpu_last" "$t_calls" "$c0" "$c1" "$TCK" "$ev_first" \
    "${COPY_ROWS:-0}" "${COPY_S:-0}" <<'EOF'
import sys
ev, calls, tf, tl, cf, cl, tc, c0, c1, tck, ev0, crows, csec = sys.argv[1:]
ev, calls, tck = int(ev), int(calls), int(tck)
win = float(tl) - float(tf)
# events consumed inside the window (the first poll already saw ev0 of them)
n = ev - int(ev0)
cpu = (int(cl) - int(cf)) / tck
callps = calls / (float(tc) - float(tf))
ceil = calls / (float(c1) - float(c0))
copyps = int(crows) / float(csec) if float(csec) else 0
print("%.0f %.0f %.0f %.0f %.2f %.2f %.2f %.0f %.2f" % (n / win, n / cpu if cpu else 0, callps, ceil,
      callps / ceil, win, cpu, copyps, copyps / ceil))
EOF
)"
flush_count=$(awk '$1 == "callpipe_aggregator_flush_events_count" {print $2}' "$tmp/flush.txt")
flush_sum=$(awk '$1 == "callpipe_aggregator_flush_events_sum" {print $2}' "$tmp/flush.txt")
buckets=$(grep '_bucket' "$tmp/flush.txt" | sed 's/.*le="\([^"]*\)"} \(.*\)/\1:\2/' | paste -sd' ')
pass() { python3 -c "import sys; print('yes' if float(sys.argv[1]) >= float(sys.argv[2]) else 'NO')" "$1" "$2"; }
{
    echo "# bench-aggregator ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "$EVENTS events (~$((BYTES / EVENTS)) bytes msgpack each), $CALLS calls, $PARTS partitions, pre-filled;"
    echo "one aggregator, default flush settings (flush_interval 500ms, x8 while catching up; flush_max_events 200000)."
    echo
    echo "| measure | value | target | met |"
    echo "|---|---|---|---|"
    echo "| events/s (wall, ${WIN} s window) | $EVPS | | |"
    echo "| events per aggregator CPU-second (${CPU_S} CPU-s) | $EVCPU | >= 500000 | $(pass "$EVCPU" 500000) |"
    echo "| write path: finished calls per second of \`COPY calls\` ($COPY_ROWS rows in ${COPY_S} s) | $COPYPS | | |"
    echo "| ceiling: one \\copy of the same rows into calls, rows/s | $CEIL | | |"
    echo "| write path vs ceiling | $COPYRATIO | >= 0.80 | $(pass "$COPYRATIO" 0.8) |"
    echo "| end to end: finished calls/s (first event -> last call committed; includes event processing and every other write) | $CALLPS | | |"
    echo "| end to end vs ceiling | $RATIO | | |"
    echo "| time in flush transactions (s) | $FLUSH_S | | |"
    echo "| flushes | $flush_count | | |"
    echo "| mean events per flush | $(python3 -c "print(round($flush_sum / max($flush_count, 1)))") | | |"
    echo
    echo "flush_events histogram (le:cumulative count): $buckets"
} | tee "$OUT/aggregator.md"
