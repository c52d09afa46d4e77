#!/usr/bin/env bash
# agg_late_events.sh - events that arrive after their call was written: dropped and counted, never a second row, never a stalled aggregator (also after a restart).
# timeout: 180
#
# Real senders deliver late: Firehose and Twilio retry, Amazon Connect re-sends a contact record
# after wrap-up, Asterisk's Cdr comes after the call closed.  On the local stack (one PBX sending
# canonical JSON over TCP):
#   1. call L1 (abandoned, no agent: written at its end); then a re-sent copy of its end and a
#      new summary event for it arrive -> both dropped (callpipe_aggregator_late_events_total 2),
#      one calls row, offered counted once; call L2 still flows;
#   2. the aggregator is killed (SIGKILL) and restarted: it reloads the recent calls from
#      PostgreSQL, so one more late event for L1 is dropped (metric 1 in the new process);
#   3. restarted with late_window 0 (it remembers nothing): a re-sent end of L1 reopens the call
#      with the same end time, and the row insert conflicts with the row already there.  The
#      aggregator keeps the existing row, says so in its log, and goes on (L4 is written): one
#      calls row for L1, no stall.
set -euo pipefail
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ROOT/tests/demo/stack.sh"
export STACK_PBX=1 STACK_WIRES=json-tcp STACK_PARTS=2

stack_test late

stack_start >/dev/null || fail "stack start"
PORT=$(awk '{print $4}' "$S/plan.txt")
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
NOW=$(($(date +%s) * 1000000))
send() { printf '%s\n' "$@" >&3; }
# A call: start, queue, abandon, end - all in the past minute; no agent, so written at its end.
call() { # ID OFFSET_S
    local t=$((NOW - 60000000 + $2 * 1000000))
    send "{\"event_id\":\"$1-s\",\"call\":\"$1\",\"kind\":\"call_start\",\"ts\":$t,\"dir\":\"inbound\",\"from\":\"+4930111\"}" \
        "{\"event_id\":\"$1-q\",\"call\":\"$1\",\"kind\":\"queue_enter\",\"ts\":$((t + 2000000)),\"queue\":\"sales\"}" \
        "{\"event_id\":\"$1-l\",\"call\":\"$1\",\"kind\":\"queue_leave\",\"ts\":$((t + 9000000)),\"queue\":\"sales\",\"qout\":\"abandoned\"}" \
        "{\"event_id\":\"$1-e\",\"call\":\"$1\",\"kind\":\"call_end\",\"ts\":$((t + 9000000)),\"disp\":\"canceled\",\"side\":\"caller\"}"
}
calls() { stack_q "SELECT count(*) FROM calls WHERE call_id = '$1'"; }
agg_metric() {
    curl -sf "http://127.0.0.1:$STACK_AGG_ADMIN/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
wait_rows() { # N : total calls rows
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(stack_q "SELECT count(*) FROM calls")" = "$1" ] && return 0
        sleep 0.1
    done
    fail "want $1 calls rows, have $(stack_q "SELECT count(*) FROM calls")"
}
offered() { stack_q "SELECT coalesce(sum(offered), 0) FROM queue_interval"; }
restart_aggregator() {
    kill -KILL "$(stack_pid aggregator)"
    wait "$(stack_pid aggregator)" 2>/dev/null || true
    stack_start_aggregator || fail "aggregator restart"
}
T1=$((NOW - 60000000 + 9000000))

# 1. Late events after the row: dropped, counted, nothing twice.
call L1 0
wait_rows 1
send "{\"event_id\":\"L1-e\",\"call\":\"L1\",\"kind\":\"call_end\",\"ts\":$T1,\"disp\":\"canceled\",\"side\":\"caller\"}" \
    "{\"event_id\":\"L1-cdr\",\"call\":\"L1\",\"kind\":\"cdr\",\"ts\":$T1,\"start\":$((T1 - 9000000)),\"end\":$T1,\"disp\":\"canceled\"}"
call L2 20
wait_rows 2
[ "$(calls L1)" = 1 ] || fail "L1 has $(calls L1) rows"
[ "$(agg_metric callpipe_aggregator_late_events_total)" = 2 ] ||
    fail "late events: $(agg_metric callpipe_aggregator_late_events_total), want 2"
[ "$(offered)" = 2 ] || fail "offered $(offered), want 2"
echo "late events dropped: 2; L1 written once"

# 2. After a SIGKILL the restarted aggregator still knows L1 (read back from PostgreSQL).
restart_aggregator
send "{\"event_id\":\"L1-cdr2\",\"call\":\"L1\",\"kind\":\"cdr\",\"ts\":$T1,\"start\":$((T1 - 9000000)),\"end\":$T1,\"disp\":\"canceled\"}"
call L3 30
wait_rows 3
[ "$(calls L1)" = 1 ] || fail "after the restart L1 has $(calls L1) rows"
[ "$(agg_metric callpipe_aggregator_late_events_total)" = 1 ] ||
    fail "late events after the restart: $(agg_metric callpipe_aggregator_late_events_total), want 1"
grep -q 'remembering [1-9][0-9]* calls written' "$S/aggregator.log" || fail "no recent calls reloaded"
echo "after a restart: the late event dropped too"

# 3. Nothing remembered (late_window 0): the reopened L1 ends at the same moment, its row
#    conflicts; the aggregator keeps the row there and goes on.
export STACK_AGG_EXTRA="late_window: 0ms"
restart_aggregator
send "{\"event_id\":\"L1-e\",\"call\":\"L1\",\"kind\":\"call_end\",\"ts\":$T1,\"disp\":\"canceled\",\"side\":\"caller\"}"
call L4 40
wait_rows 4
[ "$(calls L1)" = 1 ] || fail "L1 has $(calls L1) rows after the conflict"
grep -q 'already in the calls table: kept the rows there' "$S/aggregator.log" ||
    fail "the conflict was not reported"
[ "$(calls L4)" = 1 ] || fail "L4 not written: the aggregator stalled"
echo "a conflicting row: kept, reported, no stall"
exec 3>&-
stack_stop || fail "a service did not stop on SIGTERM"
echo "agg_late_events: OK"
