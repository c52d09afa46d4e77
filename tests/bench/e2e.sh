#!/usr/bin/env bash
# tests/bench/e2e.sh - make bench-e2e: the simulator at a steady 20,000 events/s through every service; latency, CPU, RSS.
#
# The local stack of `make demo` (tests/demo/stack.sh: private PostgreSQL, dev broker, Salesforce
# emulator, ingest, aggregator, loader).  pbxsim sends BENCH_EPS (20000) events/s for
# BENCH_SECONDS (60) through the collector (20 PBXs over TCP, 20 over HTTP) and stops there
# (--no-drain).  For every 10th call it notes when the call's last event was due and handed to
# its connection, and polls PostgreSQL every 20 ms for the call's `calls` row: the difference
# is the event-to-visible latency (the row is committed in the same transaction as its
# interval metrics).  CPU (user+sys seconds over the run, from /proc/PID/stat) and peak RSS
# (VmHWM) of each service; PostgreSQL is the sum over its processes.  Table in
# $BUILD/bench/e2e.md.  Target: p99 < 1 s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CALLPIPE_ROOT=$ROOT
. "$ROOT/tests/demo/stack.sh"
EPS=${BENCH_EPS:-20000}
SECS=${BENCH_SECONDS:-60}
SPEED=${BENCH_SPEED:-20}
export STACK_PARTS=${BENCH_PARTS:-12} STACK_FLUSH=${BENCH_FLUSH:-200ms} STACK_LINGER=${BENCH_LINGER:-50ms}
OUT=$BUILD/bench
mkdir -p "$OUT"

stack_init "$(mktemp -d /tmp/callpipe-bench.XXXXXX)"
chmod 755 "$S"
trap 'stack_destroy >/dev/null 2>&1 || true' EXIT
stack_start

TCK=$(getconf CLK_TCK)
pg_pids() { # the postmaster and its children
    local pm
    pm=$(head -n 1 "$S/pg/data/postmaster.pid")
    echo "$pm" $(ps -o pid= --ppid "$pm")
}
cpu_ticks() { # PIDS... -> utime+stime summed (clock ticks)
    local p t=0 f
    for p in "$@"; do
        f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + $(awk '{ print $12 + $13 }' <<<"$f")))
    done
    echo $t
}
hwm_kb() { local p s=0 v; for p in "$@"; do v=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$p/status" 2>/dev/null || true); s=$((s + ${v:-0})); done; echo $s; }
declare -A T0
SVCS=(ingest aggregator loader devbroker sfemu)
for n in "${SVCS[@]}"; do T0[$n]=$(cpu_ticks "$(stack_pid "$n")"); done
T0[postgres]=$(cpu_ticks $(pg_pids))

stack_log "pbxsim: $EPS events/s for $SECS s at ${SPEED}x"
start=$SECONDS
stack_sim run -x "$SPEED" -d "$SECS" -E "$EPS" --no-drain --latency-dsn "$STACK_DSN" \
    --latency-sample 10 --latency-wait 30 >"$S/pbxsim.out" 2>"$S/pbxsim.log" || true
wall=$((SECONDS - start))
cat "$S/pbxsim.log" | tail -n 4
cat "$S/pbxsim.out"
grep -q '^pbxsim-latency' "$S/pbxsim.out" || { echo "bench: no latency line" >&2; tail "$S/pbxsim.log" >&2; exit 1; }

declare -A CPU RSS
for n in "${SVCS[@]}"; do
    p=$(stack_pid "$n")
    CPU[$n]=$(awk -v a="$(cpu_ticks "$p")" -v b="${T0[$n]}" -v t="$TCK" -v w="$wall" 'BEGIN { printf "%.1f", (a - b) / t / w * 100 }')
    RSS[$n]=$(( $(hwm_kb "$p") / 1024 ))
done
CPU[postgres]=$(awk -v a="$(cpu_ticks $(pg_pids))" -v b="${T0[postgres]}" -v t="$TCK" -v w="$wall" 'BEGIN { printf "%.1f", (a - b) / t / w * 100 }')
RSS[postgres]=$(( $(hwm_kb $(pg_pids)) / 1024 ))

lat=$(grep '^pbxsim-latency' "$S/pbxsim.out")
sim=$(grep '^pbxsim:' "$S/pbxsim.out")
get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
p50=$(get p50_ms "$lat") p90=$(get p90_ms "$lat") p99=$(get p99_ms "$lat") mx=$(get max_ms "$lat")
n=$(get n "$lat") missing=$(get missing "$lat") rate=$(get events_per_s "$sim") sent=$(get sent "$sim")
{
    echo "# bench-e2e: simulator -> collector -> Kafka (dev broker) -> aggregator -> PostgreSQL"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    echo "40 PBXs (20 TCP, 20 HTTP), $STACK_PARTS partitions, aggregator flush_interval $STACK_FLUSH, collector linger $STACK_LINGER."
    echo "Sent $sent events in ${wall} s: **$rate events/s** (target $EPS)."
    echo
    echo "Latency from a call's last event leaving the simulator to its \`calls\` row being visible"
    echo "(every 10th call, $n calls measured, $missing not seen within 30 s of the end):"
    echo
    echo "| p50 | p90 | p99 | max |"
    echo "|---|---|---|---|"
    echo "| $p50 ms | $p90 ms | **$p99 ms** | $mx ms |"
    echo
    echo "| process | CPU (% of one core, average) | peak RSS (MiB) |"
    echo "|---|---|---|"
    for k in ingest aggregator loader postgres devbroker sfemu; do
        echo "| $k | ${CPU[$k]} | ${RSS[$k]} |"
    done
} | tee "$OUT/e2e.md"
echo
echo "bench-e2e: table in $OUT/e2e.md"
awk -v p="$p99" 'BEGIN { exit !(p < 1000) }' && echo "bench-e2e: p99 $p99 ms < 1 s: target met" ||
    echo "bench-e2e: p99 $p99 ms: target (< 1 s) NOT met"
