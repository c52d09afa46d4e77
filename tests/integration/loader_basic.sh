#!/usr/bin/env bash
# loader_basic.sh - 50,000 calls into two emulated Salesforce orgs (VoiceCall insert, Task upsert): exactly once, field by field.
# timeout: 300
#
# A private PostgreSQL gets 50,000 calls and 100,000 sf_outbox rows by SQL (values that
# exercise every transform, CSV quoting, UTF-8, NULL vs empty, long keys hashed to sha256:).
# The emulator (tests/tools/sfemu.c) has "service" (VoiceCall, JWT bearer) and "sales" (Task,
# client credentials on its My Domain).  The loader runs until every outbox row is settled,
# then stops with SIGTERM (exit 0).  tests/tools/sf_compare.py recomputes every mapped value
# from calls and compares it with the emulator's stored records: one record per call and org,
# every row done with its sf_id, nothing extra.  Job splitting: service by max_records (10,000
# -> exactly 5 jobs), sales by max_bytes (the jobs are exactly the greedy split the oracle
# computes from the CSV it renders itself, byte for byte).  Knobs: LD_N, KEEP_TMP=1.
set -euo pipefail
. "${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/scripts/ldtest.sh"
N=${LD_N:-50000}
trap ld_cleanup EXIT

ld_setup
say "emulator $SFEMU_LOGIN (service $EMU_SERVICE, sales $EMU_SALES); inserting $N calls"
ld_calls "$N"
ld_config "$WORK/loader.yaml"
"$CP" loader -c "$WORK/loader.yaml" --check-config >"$WORK/check-config.out" 2>&1 ||
    { cat "$WORK/check-config.out"; ld_fail "--check-config"; }
"$CP" loader -c "$WORK/loader.yaml" --check >"$WORK/check.out" 2>&1 ||
    { cat "$WORK/check.out"; ld_fail "--check (login + describe)"; }
grep -q "org service: ok" "$WORK/check.out" && grep -q "org sales: ok" "$WORK/check.out" ||
    ld_fail "--check: $(cat "$WORK/check.out")"

say "loading"
t_load=$SECONDS
ld_start "$WORK/loader.yaml"
ld_wait_settled "$WORK/loader.yaml" 200
t_load=$((SECONDS - t_load))
curl -sf "http://127.0.0.1:$P_ADMIN/metrics" >"$WORK/metrics.txt" || ld_fail "no /metrics"
ld_stop
say "loaded $((2 * N)) rows in ${t_load} s"

ld_compare --jobs service=$(((N + 9999) / 10000)) --pack sales="${SALES_MAX_BYTES:-400000}" ||
    ld_fail "the orgs differ from calls"
for org in service sales; do
    grep -q "callpipe_loader_records_succeeded_total{org=\"$org\"} $N\$" "$WORK/metrics.txt" ||
        ld_fail "succeeded metric of $org: $(grep records_succeeded "$WORK/metrics.txt")"
done
grep -q 'callpipe_loader_records_dead_total{org="service"} 0$' "$WORK/metrics.txt" ||
    ld_fail "dead rows: $(grep records_dead "$WORK/metrics.txt")"
[ "$(q "SELECT count(*) FROM sf_jobs WHERE local_state <> 'reconciled'")" = 0 ] ||
    ld_fail "unreconciled jobs left"
say "loader_basic: ok"
