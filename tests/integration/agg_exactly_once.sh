#!/usr/bin/env bash
# agg_exactly_once.sh - 100,000 generated calls through the aggregator under SIGKILLs, a rebalance and a PostgreSQL crash: exact totals.
# timeout: 300
#
# callgen produces 100,000 calls (~850,000 events, deterministic seed) to a dev broker with
# 64 partitions, rate-limited so the aggregator consumes while it produces.  Meanwhile:
#   - the aggregator is killed with SIGKILL at 5 random moments and restarted at once
#     (and restarted whenever it exits by itself, like a supervisor would);
#   - a second aggregator joins the group and later leaves with SIGTERM (two rebalances;
#     session.timeout 6 s, heartbeat 500 ms as in DESIGN.md section 4);
#   - PostgreSQL is crashed with `pg.sh stop DIR immediate` and started again.
# wrapup_wait is 2 min of event time, above callgen's longest ACW (90 s): an ended call with
# an agent waits that long for its wrapup_end (which callgen always sends); calls without an
# agent are written as soon as they end.
# Then, once every call is written and every offset is at the end, tests/tools/agg_check.py
# recomputes every queue_interval, queue_disposition_interval, queue_wrapup_interval, calls
# and sf_outbox row from callgen's ground truth and requires exact equality (so nothing
# was lost and nothing counted twice).  Two queues have their own settings (one with a
# short-abandon threshold and a `<` threshold that changes mid-run, one org default).
# The reader role's rights (no base table, no writes) are checked by schema_views.sh.
#
# Knobs: AGG_N (calls), AGG_RATE (events/s), AGG_SEED, AGG_FAULTS=0 (no faults), KEEP_TMP=1.
# About 95 s on 2 cores (production ~61 s, then the drain and the check).
set -euo pipefail

ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
CP=$BUILD/callpipe
GEN=$BUILD/tools/callgen
PGSH=$ROOT/tests/scripts/pg.sh
PSQL=/usr/lib/postgresql/15/bin/psql
N=${AGG_N:-100000}
RATE=${AGG_RATE:-14000}
SEED=${AGG_SEED:-7}
FAULTS=${AGG_FAULTS:-1}
PARTS=64
for f in "$CP" "$GEN"; do [ -x "$f" ] || { echo "no $f: build first" >&2; exit 1; }; done

WORK=$(mktemp -d /tmp/callpipe-aggx.XXXXXX)
PGDIR=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
. "$ROOT/tests/scripts/devbroker.sh"

A_PID= B_PID= GEN_PID=
cleanup() {
    local p
    for p in $A_PID $B_PID $GEN_PID; do kill -KILL "$p" 2>/dev/null || true; done
    for p in $A_PID $B_PID $GEN_PID; do wait "$p" 2>/dev/null || true; done
    devbroker_stop || true
    "$PGSH" destroy "$PGDIR" >/dev/null 2>&1 || true
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$WORK"/agg-*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
    exit 1
}
T0=$SECONDS
say() { echo "[$((SECONDS - T0))s] $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

devbroker_start "$WORK/broker" -b 1 -t callpipe.events:$PARTS >/dev/null
DSN=$("$PGSH" start "$PGDIR")
"$CP" migrate --dsn "$DSN" >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; fail migrate; }
. "$PGDIR/env"
q() { "$PSQL" -X -q -tA -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }

# Settings are read at start-up: in place before the first aggregator.  acme/support changes
# at 00:00 UTC (mid-run in event time): visits that straddle it use the row in force at the
# answer or abandon.
q "INSERT INTO queue_settings (org, queue, valid_from, sl_threshold_ms, sl_compare, short_abandon_ms)
   VALUES ('acme', 'support', '-infinity', 20000, '<=', 5000),
          ('acme', 'support', '2026-11-26 00:00+00', 30000, '<', 8000),
          ('globex', '*', '-infinity', 15000, '<', 0),
          ('*', 'helpdesk', '-infinity', 10000, '<=', 3000)"

ROUTES=("acme|sales, support|sf-sales, sf-service" "acme||sf-main" "globex||sf-globex")
conf() { # NAME PORT
    {
        echo "admin: 127.0.0.1:$2"
        echo "log_level: info"
        echo "kafka: {brokers: \"$DEVBROKER_BOOTSTRAP\", session_timeout: 6s, heartbeat: 500ms}"
        echo "postgres: {dsn: \"$CALLPIPE_PG_WRITER_DSN\"}"
        echo "flush_interval: 200ms"
        echo "wrapup_wait: 2m"
        echo "routes:"
        local r o qs ts
        for r in "${ROUTES[@]}"; do
            IFS='|' read -r o qs ts <<<"$r"
            if [ -n "$qs" ]; then
                echo "  - {org: $o, queues: \"$qs\", targets: \"$ts\"}"
            else
                echo "  - {org: $o, targets: \"$ts\"}"
            fi
        done
    } >"$WORK/$1.yaml"
}
conf a "$(free_port)"
conf b "$(free_port)"
STARTS_A=0
start_a() {
    STARTS_A=$((STARTS_A + 1))
    "$CP" aggregator -c "$WORK/a.yaml" >>"$WORK/agg-a.log" 2>&1 &
    A_PID=$!
}
# A supervisor's job: an aggregator that exits (e.g. after losing a partition) comes back.
ensure_a() {
    if ! kill -0 "$A_PID" 2>/dev/null; then
        wait "$A_PID" 2>/dev/null || true
        say "aggregator A exited by itself: restarting"
        start_a
    fi
}
start_a

# The generator: ~850,000 events at RATE/s; the ground truth is written before producing.
# linger 100 ms: batches of ~20 messages per partition, so a restarted aggregator catches up
# fast (the dev broker serves one message set per partition per fetch).
"$GEN" -n "$N" -s "$SEED" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -r "$RATE" -L 100 \
    -g "$WORK/truth.jsonl" >"$WORK/callgen.out" 2>"$WORK/callgen.err" &
GEN_PID=$!
say "producing $N calls at $RATE events/s"

# Fault schedule, in seconds after the start of production (random but reproducible).
RANDOM=$SEED
EVENTS_EST=$((N * 85 / 10))
PROD_S=$((EVENTS_EST / RATE))
[ "$PROD_S" -ge 20 ] || PROD_S=20
KILLS=()
if [ "$FAULTS" = 1 ]; then
    for i in 0 1 2 3 4; do
        # one kill in each fifth of the production, at a random point of it
        KILLS+=($((PROD_S * i / 5 + 2 + RANDOM % (PROD_S / 5 - 2))))
    done
fi
B_JOIN=$((PROD_S * 3 / 10)) B_LEAVE=$((PROD_S * 6 / 10))
PG_DOWN=$((PROD_S * 45 / 100)) PG_UP=$((PROD_S * 45 / 100 + 4))
say "faults (s): kill A at ${KILLS[*]:-none}; B joins $B_JOIN leaves $B_LEAVE; PG down $PG_DOWN up $PG_UP"
START=$SECONDS
ki=0 b_state=0 pg_state=0
while kill -0 "$GEN_PID" 2>/dev/null || [ $ki -lt ${#KILLS[@]} ] ||
    { [ "$FAULTS" = 1 ] && { [ $b_state -lt 2 ] || [ $pg_state -lt 2 ]; }; }; do
    el=$((SECONDS - START))
    [ $el -lt $((PROD_S + 120)) ] || fail "fault schedule did not finish"
    if [ $ki -lt ${#KILLS[@]} ] && [ $el -ge "${KILLS[$ki]}" ]; then
        kill -KILL "$A_PID" 2>/dev/null || true
        wait "$A_PID" 2>/dev/null || true
        ki=$((ki + 1))
        say "SIGKILL aggregator A ($ki/5); restarting"
        start_a
    fi
    if [ "$FAULTS" = 1 ]; then
        if [ $b_state = 0 ] && [ $el -ge $B_JOIN ]; then
            "$CP" aggregator -c "$WORK/b.yaml" >>"$WORK/agg-b.log" 2>&1 &
            B_PID=$!
            b_state=1
            say "aggregator B joins"
        elif [ $b_state = 1 ] && [ $el -ge $B_LEAVE ]; then
            kill -TERM "$B_PID" 2>/dev/null || true
            rc=0
            wait "$B_PID" || rc=$?
            B_PID=
            b_state=2
            say "aggregator B left (exit $rc)"
        fi
        if [ $pg_state = 0 ] && [ $el -ge $PG_DOWN ]; then
            "$PGSH" stop "$PGDIR" immediate >/dev/null
            pg_state=1
            say "PostgreSQL stopped (immediate)"
        elif [ $pg_state = 1 ] && [ $el -ge $PG_UP ]; then
            "$PGSH" start "$PGDIR" >/dev/null
            pg_state=2
            say "PostgreSQL started again"
        fi
    fi
    ensure_a
    sleep 0.2
done
rc=0
wait "$GEN_PID" || rc=$?
GEN_PID=
cat "$WORK/callgen.out"
[ $rc = 0 ] || { cat "$WORK/callgen.err"; fail "callgen exited $rc"; }
EVENTS=$(sed -n 's/.* events=\([0-9]*\) .*/\1/p' "$WORK/callgen.out")
say "produced $EVENTS events; waiting for the aggregator to write everything"

# Done = every offset at the end of its partition, every call written, no call open.
deadline=$((SECONDS + 180))
while :; do
    ensure_a
    st=$(q "SELECT (SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets),
                   (SELECT count(*) FROM calls), (SELECT count(*) FROM open_calls)" 2>/dev/null || echo "")
    IFS='|' read -r off ncalls nopen <<<"$st"
    [ "${off:-0}" = "$EVENTS" ] && [ "${ncalls:-0}" = "$N" ] && [ "${nopen:-1}" = 0 ] && break
    [ $SECONDS -lt $deadline ] || fail "not done: offsets ${off:-?}/$EVENTS calls ${ncalls:-?}/$N open ${nopen:-?}"
    sleep 0.5
done
say "all $EVENTS events consumed, $N calls written"
kill -TERM "$A_PID"
rc=0
wait "$A_PID" || rc=$?
A_PID=
[ $rc = 0 ] || fail "aggregator A exited $rc on SIGTERM"
say "aggregator A started $STARTS_A times; $(cat "$WORK"/agg-*.log | grep -c 'resuming at offset') partition loads"

args=()
for r in "${ROUTES[@]}"; do args+=(--route "$r"); done
python3 "$ROOT/tests/tools/agg_check.py" --truth "$WORK/truth.jsonl" --dsn "$DSN" "${args[@]}" ||
    fail "PostgreSQL differs from the ground truth"
say "done"
