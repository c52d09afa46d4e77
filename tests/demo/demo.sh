#!/usr/bin/env bash
# tests/demo/demo.sh - `make demo`: the whole pipeline on this machine, fed by the PBX simulator, then a report.
#
#   tests/demo/demo.sh          start everything, simulate, report, stop (DEMO_KEEP=1: keep running)
#   tests/demo/demo.sh stop     stop a stack kept by DEMO_KEEP=1 (make demo-stop)
#
# Knobs: DEMO_SECONDS (60: wall seconds of call arrivals; the calls in progress then finish),
# DEMO_SPEED (60: simulated seconds per wall second), DEMO_PBX (40), DEMO_SEED (1), DEMO_WIRES
# (what the PBXs speak, pbxsim -F: "all" = every vendor format at once, the default; "json" =
# canonical events only; or a list such as "ami,cucm"), DEMO_KEEP, BUILD.  Work dir: /tmp/callpipe-demo-$UID (logs, configs, the ground truth); the HTML report
# is written to $BUILD/demo/report.html.  Nothing listens beyond 127.0.0.1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CALLPIPE_ROOT=$ROOT
. "$ROOT/tests/demo/stack.sh"
DIR=/tmp/callpipe-demo-$(id -u)

if [ "${1:-}" = stop ]; then
    if [ -f "$DIR/pids" ]; then
        S=$DIR
        stack_stop && echo "demo: stopped (work dir $DIR kept until the next make demo)"
    else
        echo "demo: nothing running"
    fi
    exit 0
fi

SECS=${DEMO_SECONDS:-60}
SPEED=${DEMO_SPEED:-60}
export STACK_PBX=${DEMO_PBX:-40} STACK_SEED=${DEMO_SEED:-1} STACK_WIRES=${DEMO_WIRES:-all}
# Simulated wrap-up ends at most 60 s after talk; formats without wrap-up close after this.
export STACK_WRAPUP_WAIT=70s
# queue_log never says a call ended: such a call closes this long after its last line.
export STACK_UNENDED_WAIT=70s
REPORT_DIR=$BUILD/demo
mkdir -p "$REPORT_DIR"

# A previous demo kept with DEMO_KEEP=1 (or interrupted): stop it and start from scratch.
if [ -f "$DIR/pids" ]; then
    S=$DIR
    stack_stop >/dev/null 2>&1 || true
    [ -d "$DIR/pg" ] && "$ROOT/tests/scripts/pg.sh" destroy "$DIR/pg" >/dev/null 2>&1 || true
fi
rm -rf "$DIR"
stack_init "$DIR"
chmod 755 "$DIR"

on_exit() {
    local rc=$?
    if [ "${DEMO_KEEP:-0}" != 1 ] || [ $rc != 0 ]; then
        stack_stop || true
    fi
    if [ $rc != 0 ]; then
        echo "demo: FAILED (exit $rc); logs in $DIR/*.log" >&2
        for f in "$DIR"/ingest.log "$DIR"/aggregator.log "$DIR"/loader.log; do
            [ -f "$f" ] && { echo "--- $f" >&2; tail -n 8 "$f" >&2; }
        done
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

hr() { printf '\n== %s ==\n' "$*"; }

hr "starting the local stack"
stack_start
REPORT=("$BUILD/callpipe" report --dsn "$CALLPIPE_PG_READER_DSN")

hr "simulating $STACK_PBX PBXs for $SECS s at ${SPEED}x"
stack_sim run -x "$SPEED" -d "$SECS" -g "$DIR/truth.jsonl" >"$DIR/pbxsim.out" 2>"$DIR/pbxsim.log" &
SIM=$!
sleep 1
head -n 1 "$DIR/pbxsim.log" || true
# A look at the live queues while calls are waiting.
sleep $((SECS * 2 / 3))
hr "live queue state after $((SECS * 2 / 3)) s (reporting.queue_now)"
echo "(queue entry times are on the simulated clock, which runs ${SPEED}x and reaches the real"
echo " time only when the last call ends: longest_wait_s counts against the real clock)"
"${REPORT[@]}" --live || true
wait $SIM
cat "$DIR/pbxsim.out"
echo "calls by source format: $(python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["src"] for l in open(sys.argv[1]))
print(", ".join("%s %d" % kv for kv in sorted(c.items())))' "$DIR/truth.jsonl")"

stack_log "waiting until every event is aggregated and every call is in Salesforce"
stack_wait_calls 240 "$(wc -l <"$DIR/truth.jsonl")"

hr "queue KPIs per 15-minute interval (callpipe report)"
"${REPORT[@]}" --since 3h
hr "queue KPIs over the whole run (callpipe report --by queue)"
"${REPORT[@]}" --since 3h --by queue
hr "live queue state now (callpipe report --live)"
"${REPORT[@]}" --live

hr "Salesforce: records in each org against the calls routed to it"
SF_OK=1
printf '%-11s %-10s %12s %12s %8s %6s\n' org object "in Salesforce" "routed (PG)" failed ok
for org in "${STACK_SF_ORGS[@]}"; do
    obj=VoiceCall
    [ "$org" = sf-sales ] && obj=Task
    got=$(stack_sf_count "$org" "$obj")
    want=$(stack_q "SELECT count(*) FROM sf_outbox WHERE target_org = '$org'")
    dead=$(stack_q "SELECT count(*) FROM sf_outbox WHERE target_org = '$org' AND state = 'dead'")
    ok=yes
    [ "$got" = "$want" ] && [ "$dead" = 0 ] || { ok=NO; SF_OK=0; }
    printf '%-11s %-10s %12s %12s %8s %6s\n' "$org" "$obj" "$got" "$want" "$dead" "$ok"
done

hr "every number checked against the simulator's ground truth (tests/tools/agg_check.py)"
args=()
for r in "${STACK_ROUTES[@]}"; do args+=(--route "$r"); done
python3 "$ROOT/tests/tools/agg_check.py" --truth "$DIR/truth.jsonl" --dsn "$STACK_DSN" "${args[@]}" |
    tee "$DIR/agg_check.out" | tail -n 7

# The HTML report carries the text summary too.
{
    cat "$DIR/pbxsim.out"
    "${REPORT[@]}" --since 3h --by queue
    tail -n 1 "$DIR/agg_check.out"
} >"$DIR/summary.txt"
python3 "$ROOT/tests/demo/html_report.py" --dsn "$CALLPIPE_PG_READER_DSN" --since 3h \
    --summary "$DIR/summary.txt" --out "$REPORT_DIR/report.html" >/dev/null
hr "report"
echo "HTML report with charts: $REPORT_DIR/report.html"
echo "logs and configs:        $DIR"
grep -q 'agg_check: OK' "$DIR/agg_check.out" || { echo "demo: PostgreSQL differs from the ground truth" >&2; exit 1; }
[ $SF_OK = 1 ] || { echo "demo: Salesforce does not match the routed calls" >&2; exit 1; }

if [ "${DEMO_KEEP:-0}" = 1 ]; then
    cat <<EOF

Still running (DEMO_KEEP=1); stop with: make demo-stop
  psql:      $PSQL "$CALLPIPE_PG_READER_DSN"
  report:    $BUILD/callpipe report --dsn "$CALLPIPE_PG_READER_DSN" --since 3h
  metrics:   curl http://127.0.0.1:$STACK_ING_ADMIN/metrics   (ingest)
             curl http://127.0.0.1:$STACK_AGG_ADMIN/metrics   (aggregator)
             curl http://127.0.0.1:$STACK_LD_ADMIN/metrics    (loader)
  Salesforce emulator: curl $STACK_SF_LOGIN/__emu/orgs
EOF
else
    hr "stopping"
    stack_stop
    echo "demo: done; everything stopped"
fi
