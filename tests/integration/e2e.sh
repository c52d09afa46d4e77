#!/usr/bin/env bash
# e2e.sh - the whole pipeline with a mixed PBX fleet (every vendor format at once): every row exactly as the ground truth says, every routed call in Salesforce.
# timeout: 420
#
# PostgreSQL, the dev broker, the Salesforce emulator (two orgs: VoiceCall and Task), ingest,
# aggregator and loader start as in `make demo` (tests/demo/stack.sh).  pbxsim runs 40 PBXs, each
# speaking one wire in turn (`pbxsim wires`: canonical JSON over TCP and HTTP, Asterisk AMI,
# queue_log over TCP and syslog, Master.csv, FreeSWITCH ESL and JSON CDR, Avaya SMDR, CUCM CDR
# files, Amazon Connect through Firehose, Twilio voice and TaskRouter), for E2E_SECONDS (30) of
# arrivals at 60x, then lets the calls in progress finish.  Each wire rewrites the ground truth
# of a call to what its vendor's records say (tests/lib/pbxwire.h).  Then:
#   - the collector dead-lettered nothing, and every PBX's source received records;
#   - tests/tools/agg_check.py recomputes every queue_interval, queue_disposition_interval,
#     queue_wrapup_interval, calls and sf_outbox row from the simulator's ground truth and
#     requires exact equality;
#   - each Salesforce org holds exactly the finished calls routed to it (count from the ground
#     truth and the routes), every outbox row is done, none dead;
#   - `callpipe report --by queue --format csv` (as callpipe_reader) sums to the offered,
#     answered and abandoned visits of the ground truth;
#   - the HTML report opens in headless Chromium with every chart drawn (tests/demo/check_html.sh),
#     and an empty report is refused by the same check;
#   - every service stops with exit 0 on SIGTERM.
# Knobs: E2E_SECONDS, E2E_SEED, E2E_WIRES (pbxsim -F, default all), KEEP_TMP=1.
set -euo pipefail
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ROOT/tests/demo/stack.sh"
export STACK_SEED=${E2E_SEED:-3} STACK_PBX=${E2E_PBX:-40} STACK_WIRES=${E2E_WIRES:-all}
# Wrap-up events come at most 60 s (simulated) after talk ends; calls of formats without any
# wrap-up close after this much event time (or wall time once their partition is quiet).
export STACK_WRAPUP_WAIT=70s
# queue_log never says a call ended: such a call closes this long after its last line.
export STACK_UNENDED_WAIT=70s
SECS=${E2E_SECONDS:-30}

stack_test e2e

stack_start || fail "stack start"
stack_sim run -x 60 -d "$SECS" -g "$S/truth.jsonl" >"$S/pbxsim.out" 2>"$S/pbxsim.log" || fail "pbxsim"
cat "$S/pbxsim.out"
EVENTS=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' "$S/pbxsim.out")
grep -q " events=$EVENTS sent=$EVENTS " "$S/pbxsim.out" || fail "not every record was sent"
CALLS=$(wc -l <"$S/truth.jsonl")
stack_wait_calls 240 "$CALLS" || fail "the pipeline did not finish"

# Every record of every format was understood: nothing dead-lettered, every source heard from.
rej=$(stack_ingest_metric callpipe_ingest_rejects_total)
[ "$rej" = 0 ] || { curl -s "http://127.0.0.1:$STACK_ING_ADMIN/metrics" | grep '^callpipe_ingest_rejects_total' >&2; fail "$rej records dead-lettered"; }
silent=$(curl -sf "http://127.0.0.1:$STACK_ING_ADMIN/metrics" | awk '/^callpipe_ingest_events_total\{/ && $2 == 0' )
[ -z "$silent" ] || fail "sources without events: $silent"
echo "formats: $(python3 -c '
import json, sys, collections
c = collections.Counter(json.loads(l)["src"] for l in open(sys.argv[1]))
print(", ".join("%s %d" % kv for kv in sorted(c.items())))' "$S/truth.jsonl")"

args=()
for r in "${STACK_ROUTES[@]}"; do args+=(--route "$r"); done
python3 "$ROOT/tests/tools/agg_check.py" --truth "$S/truth.jsonl" --dsn "$STACK_DSN" "${args[@]}" ||
    fail "PostgreSQL differs from the ground truth"

# Expected records per Salesforce org: every call of the ground truth, by its org's route.
declare -A want
while read -r org n; do want[$org]=$n; done < <(python3 - "$S/truth.jsonl" <<'PY'
import json, sys
route = {"acme": "sf-service", "globex": "sf-sales", "initech": "sf-sales"}
n = {}
for line in open(sys.argv[1], encoding="utf-8"):
    t = route[json.loads(line)["org"]]
    n[t] = n.get(t, 0) + 1
for k, v in n.items():
    print(k, v)
PY
)
for org in "${STACK_SF_ORGS[@]}"; do
    obj=VoiceCall
    [ "$org" = sf-sales ] && obj=Task
    got=$(stack_sf_count "$org" "$obj")
    done_rows=$(stack_q "SELECT count(*) FROM sf_outbox WHERE target_org = '$org' AND state = 'done' AND sf_id IS NOT NULL")
    echo "salesforce $org: $got $obj records, $done_rows outbox rows done, ${want[$org]:-0} calls routed"
    [ "$got" = "${want[$org]:-0}" ] || fail "$org has $got $obj records, want ${want[$org]:-0}"
    [ "$done_rows" = "$got" ] || fail "$org: $done_rows outbox rows done, $got records"
done
[ "$(stack_q "SELECT count(*) FROM sf_outbox WHERE state <> 'done'")" = 0 ] || fail "outbox rows not done"

# The report command, as the read-only role, against the ground truth's visits.
"$BUILD/callpipe" report --dsn "$CALLPIPE_PG_READER_DSN" --since 1d --by queue --format csv >"$S/report.csv" ||
    fail "callpipe report"
got=$(awk -F, 'NR > 1 { o += $3; a += $4; b += $5 } END { print o + 0, a + 0, b + 0 }' "$S/report.csv")
want_v=$(python3 - "$S/truth.jsonl" <<'PY'
import json, sys
o = a = b = 0
for line in open(sys.argv[1], encoding="utf-8"):
    for v in json.loads(line)["visits"]:
        o += 1
        a += v["connect"] is not None
        b += v["connect"] is None and v["outcome"] == "abandoned"
print(o, a, b)
PY
)
echo "report totals (offered answered abandoned): $got; ground truth: $want_v"
[ "$got" = "$want_v" ] || fail "callpipe report totals differ from the ground truth"

# The HTML report in headless Chromium; an empty report must be refused.
python3 "$ROOT/tests/demo/html_report.py" --dsn "$CALLPIPE_PG_READER_DSN" --since 1d --out "$S/report.html"
"$ROOT/tests/demo/check_html.sh" "$S/report.html" "$S/report.png" || fail "HTML report check"
python3 "$ROOT/tests/demo/html_report.py" --dsn "$CALLPIPE_PG_READER_DSN" --since 0s --out "$S/empty.html" || true
if "$ROOT/tests/demo/check_html.sh" "$S/empty.html" "$S/empty.png" 2>/dev/null; then
    fail "check_html accepted a report without charts"
fi

stack_stop || fail "a service did not stop on SIGTERM"
echo "e2e: OK"
