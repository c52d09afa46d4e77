#!/usr/bin/env bash
# ingest_shared_pbx.sh - two feeds of one PBX (sources with the same `pbx`) meet in one call; a record sent on both is counted once.
# timeout: 120
#
# A PBX often has two feeds: its CTI events and its CDRs (AMI and Master.csv, ESL and
# mod_json_cdr), or the same feed twice for redundancy.  Two collector sources, feed-a and
# feed-b, both `pbx: switch-1`: call M1's first events come on feed-a, the rest on feed-b, and
# its queue entry on both.  The aggregator must write ONE calls row (pbx switch-1) with the
# wait and talk across the two feeds, and count the offer once.
set -euo pipefail
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ROOT/tests/demo/stack.sh"
export STACK_PBX=1 STACK_WIRES=json-tcp STACK_PARTS=2
PA=$(stack_free_port)
PB=$(stack_free_port)
export STACK_SOURCES_EXTRA="  - {name: feed-a, pbx: switch-1, org: acme, transport: tcp, listen: \"127.0.0.1:$PA\"}
  - {name: feed-b, pbx: switch-1, org: acme, transport: tcp, listen: \"127.0.0.1:$PB\"}"

stack_test shared

stack_start >/dev/null || fail "stack start"
exec 3<>"/dev/tcp/127.0.0.1/$PA" 4<>"/dev/tcp/127.0.0.1/$PB"
T=$(($(date +%s) * 1000000 - 300000000))
ev() { # ID KIND OFFSET_S [MORE JSON]
    echo "{\"event_id\":\"M1-$1\",\"call\":\"M1\",\"kind\":\"$2\",\"ts\":$((T + $3 * 1000000))${4:+,$4}}"
}
# feed-a: the start and the queue entry; feed-b: the queue entry again, then the rest.
{ ev s call_start 0 '"dir":"inbound","from":"+4930123"'; ev q queue_enter 5 '"queue":"sales"'; } >&3
{
    ev q queue_enter 5 '"queue":"sales"'
    ev c agent_connect 17 '"queue":"sales","agent":"a7"'
    ev x agent_complete 77 '"queue":"sales","agent":"a7"'
    ev e call_end 77 '"disp":"answered","side":"caller"'
    ev w wrapup_end 92 '"queue":"sales","agent":"a7","wrapup":"sale"'
} >&4
for ((i = 0; i < 300; i++)); do
    [ "$(stack_q "SELECT count(*) FROM calls WHERE call_id = 'M1'")" = 1 ] && break
    sleep 0.1
done
row=$(stack_q "SELECT pbx, wait_ms, talk_ms, acw_ms, disposition, wrapup FROM calls WHERE call_id = 'M1'")
echo "calls row: $row"
[ "$row" = "switch-1|12000|60000|15000|answered|sale" ] || fail "calls row: '$row'"
[ "$(stack_q "SELECT count(*) FROM calls")" = 1 ] || fail "more than one calls row"
qi=$(stack_q "SELECT sum(offered), sum(answered), sum(handled) FROM queue_interval WHERE org = 'acme' AND queue = 'sales'")
[ "$qi" = "1|1|1" ] || fail "queue_interval offered|answered|handled: $qi, want 1|1|1"
dups=$(curl -sf "http://127.0.0.1:$STACK_AGG_ADMIN/metrics" | awk '$1 == "callpipe_aggregator_duplicate_events_total" { print $2 }')
[ "$dups" = 1 ] || fail "duplicate events: $dups, want 1 (the queue entry sent on both feeds)"
m=$(curl -sf "http://127.0.0.1:$STACK_ING_ADMIN/metrics")
grep -q '^callpipe_ingest_events_total{source="feed-a"} 2$' <<<"$m" || fail "feed-a events: $(grep feed-a <<<"$m")"
grep -q '^callpipe_ingest_events_total{source="feed-b"} 5$' <<<"$m" || fail "feed-b events: $(grep feed-b <<<"$m")"
exec 3>&- 4>&-
stack_stop || fail "a service did not stop on SIGTERM"
echo "ingest_shared_pbx: OK (one call across two feeds, the duplicate counted once)"
