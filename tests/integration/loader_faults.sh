#!/usr/bin/env bash
# loader_faults.sh - the loader under Salesforce faults and 5 SIGKILLs: no duplicate, every row done, dead exactly where a validation error was injected.
# timeout: 300
#
# Same two orgs and data as loader_basic.sh (LD_N calls, default 50,000 -> 100,000 outbox rows),
# with, during the run:
#   - 5% of rows failing UNABLE_TO_LOCK_ROW in both orgs (seeded; retried in new jobs);
#   - a validation error (FIELD_CUSTOM_VALIDATION_EXCEPTION) on every call whose call_id ends
#     in 123 (service) or 456 (sales): those rows, and only those, must end dead;
#   - one service job Failed after 1,500 rows (its unprocessed rows go to a new job);
#   - bursts of 503 and of 429 (with Retry-After) on the REST paths of both orgs;
#   - every access token expired in the middle (401 INVALID_SESSION_ID) plus an injected 401;
#   - the loader killed with SIGKILL at 5 random moments and restarted at once.
# Then tests/tools/sf_compare.py checks both orgs field by field: one record per done row, no
# duplicate (the service key field is deliberately not unique, so a double insert would show),
# no record for a dead row, dead rows exactly the injected set with Salesforce's message.
# Knobs: LD_N, LD_SEED, KEEP_TMP=1.
set -euo pipefail
. "${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/scripts/ldtest.sh"
N=${LD_N:-50000}
SEED=${LD_SEED:-$RANDOM}
RANDOM=$SEED
trap ld_cleanup EXIT
EMU_EXTRA="faults:"
for ((i = 123; i <= N; i += 1000)); do
    EMU_EXTRA+="
  - {kind: row, org: service, field: VendorCallKey, value: 'c$i', code: FIELD_CUSTOM_VALIDATION_EXCEPTION, message: 'Call needs a queue', count: 0}"
done
for ((i = 456; i <= N; i += 1000)); do
    EMU_EXTRA+="
  - {kind: row, org: sales, field: CallObject, value: 'c$i', code: FIELD_CUSTOM_VALIDATION_EXCEPTION, message: 'Task needs a contact', count: 0}"
done
EMU_EXTRA+="
  - {kind: row, percent: 5, seed: $SEED, count: 0}
  - {kind: job_fail, org: service, after_rows: 1500, message: 'InvalidBatch : injected job failure', count: 1}"

ld_setup
say "seed $SEED; $N calls; emulator $SFEMU_LOGIN"
ld_calls "$N"
# The validation rule hits exactly these calls (every call_id cNNN123 / cNNN456).
q "SELECT 'service', org || '|' || pbx || '|' || call_id || '|' || (extract(epoch FROM ended_at) * 1000000)::bigint,
          'Call needs a queue' FROM calls WHERE call_id ~ '^c[0-9]*123\$'
   UNION ALL
   SELECT 'sales', org || '|' || pbx || '|' || call_id || '|' || (extract(epoch FROM ended_at) * 1000000)::bigint,
          'Task needs a contact' FROM calls WHERE call_id ~ '^c[0-9]*456\$'" | tr '|' '\t' |
    awk -F'\t' '{print $1 "\t" $2 "|" $3 "|" $4 "|" $5 "\t" $6}' >"$WORK/dead.tsv"
ndead=$(wc -l <"$WORK/dead.tsv")
ld_config "$WORK/loader.yaml"

burst() { # round -> one fault burst
    case $(($1 % 4)) in
    0) sfemu_admin POST /faults '[{"kind":"http","org":"service","path":"^/services/data/","status":503,"count":6},
                                 {"kind":"http","org":"sales","path":"^/services/data/","status":503,"count":6}]' >/dev/null
       echo "503 x6 on both orgs" ;;
    1) sfemu_admin POST /faults '[{"kind":"http","org":"sales","path":"^/services/data/","status":429,"retry_after":1,"count":4},
                                 {"kind":"http","org":"service","path":"^/services/data/","status":429,"retry_after":1,"count":4}]' >/dev/null
       echo "429 x4 on both orgs" ;;
    2) sfemu_admin POST /orgs/service/expire_tokens >/dev/null
       sfemu_admin POST /orgs/sales/expire_tokens >/dev/null
       sfemu_admin POST /faults '{"kind":"http","org":"sales","path":"^/services/data/","status":401,"count":1}' >/dev/null
       echo "tokens expired, one 401" ;;
    3) sfemu_admin POST /faults '{"kind":"http","org":"service","method":"PUT","status":503,"count":1}' >/dev/null
       echo "503 on an upload" ;;
    esac
}

# Kill points by progress, so every SIGKILL lands in the middle of the load: when the open
# rows fall below a random share (in 5 bands from 90% to 10%), plus a random 0-0.9 s.
total=$((2 * N))
t_load=$SECONDS
ld_start "$WORK/loader.yaml"
for round in 1 2 3 4 5; do
    sleep 1 # the burst hits a running loader that holds tokens and jobs
    below=$((total * (95 - 18 * round + RANDOM % 9) / 100))
    say "round $round: $(burst "$round"); $(ld_open_rows) rows open"
    if [ $((round % 4)) = 2 ]; then
        # The kill must not come before this loader has met its expired tokens (else the
        # next one simply logs in afresh and the renewal is never exercised).
        deadline=$((SECONDS + 60))
        until grep -q 'org=service\] session expired' "$WORK/loader-$LD_RUN.log" &&
            grep -q 'org=sales\] session expired' "$WORK/loader-$LD_RUN.log"; do
            [ $SECONDS -lt $deadline ] || ld_fail "the loader did not meet its expired tokens"
            sleep 0.2
        done
    fi
    deadline=$((SECONDS + 120))
    while [ "$(ld_open_rows)" -gt "$below" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    sleep "0.$((RANDOM % 10))"
    ld_kill
    say "round $round: SIGKILL at $(ld_open_rows) open rows; restarting"
    ld_start "$WORK/loader.yaml"
done
ld_wait_settled "$WORK/loader.yaml" 200
t_load=$((SECONDS - t_load))
ld_stop
say "settled $((2 * N)) rows in $t_load s"

used=$(sfemu_admin GET /faults | python3 -c '
import json, sys
for x in json.load(sys.stdin):
    what = x.get("status") or x.get("code") or ""
    if x["kind"] != "row":
        print("%s:%s:%s" % (x["kind"], what, "used" if x["used_up"] else "live"), end=" ")')
say "faults: $used"
echo "$used" | grep -q "job_fail::used" || ld_fail "the job_fail fault was not used"
ld_compare --dead "$WORK/dead.tsv" || ld_fail "the orgs differ from calls"
[ "$(q "SELECT count(*) FROM sf_outbox WHERE state = 'dead'")" = "$ndead" ] || ld_fail "dead count"
[ "$(q "SELECT count(*) FROM sf_outbox WHERE attempts > 1")" -gt 0 ] || ld_fail "no row was retried"
for org in service sales; do
    grep -hq "org=$org\] session expired (INVALID_SESSION_ID)" "$WORK"/loader-*.log ||
        ld_fail "$org: no new token after INVALID_SESSION_ID"
done
grep -hq "resuming job" "$WORK"/loader-*.log || ld_fail "no restart resumed a job"
grep -hq "injected job failure" "$WORK"/loader-*.log || ld_fail "the Failed job was not seen"
say "loader_faults: ok ($ndead dead as injected)"
