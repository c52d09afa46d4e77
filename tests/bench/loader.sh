#!/usr/bin/env bash
# tests/bench/loader.sh - make bench-loader: the loader against jsforce's bulk2, 1,000,000 outbox rows into the emulator.
#
#   make bench-loader                 (or BUILD=build tests/bench/loader.sh)
#   BENCH_N=100000 tests/bench/loader.sh          (calls; each goes to both orgs)
#
# 500,000 calls (BENCH_N) x 2 orgs = 1,000,000 sf_outbox rows (the loader_basic data and
# mapping: service = VoiceCall insert, sales = Task upsert).  The emulator processes rows as
# fast as it can (rows_per_s 0).  Two runs against the same emulator process:
#   1. callpipe loader: jobs of 10,000 records, 2 per org at a time, until every row is done.
#   2. jsforce 3.10.16 bulk2 (tests/conformance): the same records (rendered from calls by
#      ld_records.py, checked equal by sf_compare.py's transforms), the same job size and
#      concurrency, loadAndWaitForResults per job (upload, close, poll, all three results),
#      after the emulator's orgs were reset.
# CPU = utime + stime from /proc/PID/stat for the loader, node and the emulator.  Writes
# build/bench/loader.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CALLPIPE_ROOT=$ROOT
N=${BENCH_N:-500000}
OUT=${BENCH_OUT:-$ROOT/build/bench}
EMU_RATE=0
. "$ROOT/tests/scripts/ldtest.sh"
trap ld_cleanup EXIT
command -v node >/dev/null || { echo "bench-loader: node is needed for the jsforce run" >&2; exit 1; }
[ -d "$ROOT/tests/conformance/node_modules/jsforce" ] ||
    (cd "$ROOT/tests/conformance" && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p "$OUT"

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# The whole PostgreSQL cluster: the postmaster and its reaped backends (cutime + cstime).
pgcpu() {
    awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13] + f[14] + f[15]) / hz}' \
        "/proc/$(head -1 "$PGDIR/data/postmaster.pid")/stat"
}
cpu() { # pid -> utime+stime in seconds
    awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / hz}' "/proc/$1/stat"
}

ld_setup
say "inserting $N calls ($((2 * N)) outbox rows)"
ld_calls "$N"
q "VACUUM ANALYZE sf_outbox" >/dev/null
q "VACUUM ANALYZE calls" >/dev/null
SALES_MAX_BYTES=100000000 ld_config "$WORK/loader.yaml"
sed -i 's/^log_level: info/log_level: warn/' "$WORK/loader.yaml"

say "loader run"
e0=$(cpu "$SFEMU_PID")
p0=$(pgcpu)
t0=$(date +%s.%N)
ld_start "$WORK/loader.yaml"
# Progress from the loader's /metrics, not from PostgreSQL (a count(*) would load the database).
succeeded() {
    curl -sf "http://127.0.0.1:$P_ADMIN/metrics" 2>/dev/null |
        awk '/^callpipe_loader_records_succeeded_total/ { s += $2 } END { print s + 0 }'
}
while [ "$(succeeded)" -lt "$((2 * N))" ]; do
    kill -0 "$LD_PID" 2>/dev/null || ld_fail "the loader exited"
    sleep 0.2
done
t1=$(date +%s.%N)
l_cpu=$(cpu "$LD_PID")
e1=$(cpu "$SFEMU_PID")
ld_stop
sleep 0.5
p1=$(pgcpu)
[ "$(q "SELECT count(*) FROM sf_outbox WHERE state = 'done'")" = "$((2 * N))" ] || ld_fail "not every row is done"
l_wall=$(minus "$t1" "$t0")
l_jobs=$(q "SELECT count(*) FROM sf_jobs")
say "loader: ${l_wall} s, CPU ${l_cpu} s, emulator CPU $(minus "$e1" "$e0") s, $l_jobs jobs"

say "checking the orgs against calls, rendering the same records for jsforce"
ld_compare >"$WORK/compare.out" || { tail "$WORK/compare.out"; ld_fail "the orgs differ"; }
python3 "$ROOT/tests/bench/ld_records.py" "$DSN" "$WORK" service="$LD_MAP_SERVICE" sales="$LD_MAP_SALES"

sfemu_admin POST /orgs/service/reset >/dev/null
sfemu_admin POST /orgs/sales/reset >/dev/null
tok_service=$(curl -sf "$SFEMU_LOGIN/services/oauth2/token" \
    --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer \
    --data-urlencode "assertion=$(sfemu_jwt "$WORK/jwt_key.pem" CK_SERVICE loader@service.example)" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
tok_sales=$(curl -sf "$EMU_SALES/services/oauth2/token" -d grant_type=client_credentials \
    -d client_id=CK_SALES --data-urlencode "client_secret=$LD_SECRET" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
cat >"$WORK/jsforce.json" <<JSON
{"pollInterval": 100, "orgs": [
 {"name": "service", "instanceUrl": "$EMU_SERVICE", "accessToken": "$tok_service", "object": "VoiceCall",
  "operation": "insert", "file": "$WORK/service.jsonl", "jobSize": 10000, "maxJobs": 2},
 {"name": "sales", "instanceUrl": "$EMU_SALES", "accessToken": "$tok_sales", "object": "Task",
  "operation": "upsert", "externalIdFieldName": "Callpipe_Key__c", "file": "$WORK/sales.jsonl",
  "jobSize": 10000, "maxJobs": 2}]}
JSON
say "jsforce run"
e2=$(cpu "$SFEMU_PID")
node "$ROOT/tests/bench/loader_jsforce.js" "$WORK/jsforce.json" >"$WORK/jsforce.out" || ld_fail "jsforce run"
e3=$(cpu "$SFEMU_PID")
cat "$WORK/jsforce.out"
for org in service sales; do
    got=$(sfemu_admin GET "/orgs/$org" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["VoiceCall_records"] + d["Task_records"])')
    [ "$got" = "$N" ] || ld_fail "jsforce left $got records in $org, want $N"
done

python3 - "$WORK/jsforce.out" "$((2 * N))" "$l_wall" "$l_cpu" "$(minus "$e1" "$e0")" \
    "$(minus "$e3" "$e2")" "$l_jobs" "$(nproc)" "$(minus "$p1" "$p0")" >"$OUT/loader.md" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2]); lw, lc, le, je = map(float, sys.argv[3:7]); ljobs, cores = sys.argv[7], sys.argv[8]
pg = float(sys.argv[9])
assert sum(o["ok"] for o in j["orgs"]) == n, j
jw, jc = j["wall"], j["cpu"]
def row(name, wall, cpu, emu, jobs):
    return (f"| {name} | {n:,} | {jobs} | {wall:.1f} | {n / wall:,.0f} | {cpu:.2f} | {cpu / n * 1000 * 1000:.1f} "
            f"| {emu:.2f} | {emu / n * 1000 * 1000:.1f} |")
print(f"# bench-loader: {n:,} outbox rows (2 orgs: VoiceCall insert, Task upsert) into the emulator\n")
print(f"{cores} cores; jobs of 10,000 records, 2 per org at a time, both orgs at once; the emulator "
      "processes rows without a rate limit (rows_per_s 0). CPU = utime + stime from /proc/PID/stat.\n")
print("| client | records | jobs | wall s | records/s | client CPU s | client CPU ms / 1,000 rec "
      "| emulator CPU s | emulator CPU ms / 1,000 rec |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
print(row("callpipe loader (C, libcurl, libpq)", lw, lc, le, ljobs))
print(row("jsforce 3.10.16 bulk2 (node " + __import__("subprocess").run(["node", "--version"], capture_output=True, text=True).stdout.strip() + ")",
          jw, jc, je, sum(o["jobs"] for o in j["orgs"])))
ratio = (jc / n) / (lc / n)
print(f"\nloader CPU per record = 1/{ratio:.1f} of jsforce's (target: at most 1/5: "
      f"{'met' if ratio >= 5 else 'NOT met'}).")
share = {"emulator": le / lw, "loader": lc / lw, "PostgreSQL": pg / lw}
print(f"During the loader run (wall {lw:.1f} s): emulator {share['emulator'] * 100:.0f}% of a core, "
      f"loader {share['loader'] * 100:.0f}%, PostgreSQL {share['PostgreSQL'] * 100:.0f}% "
      f"({pg / n * 1e6:.1f} ms / 1,000 rec: claim, job rows, reconcile).")
top = max(share, key=share.get)
print(f"Busiest process: {top}; the loader used {lc / le:.2f}x the emulator's CPU." +
      ("" if share[top] > 0.8 else " No process saturates a core: the rest of the wall time is "
       "latency (job polls, one HTTP request at a time per loader)."))
print(f"jsforce's CPU excludes nothing: {jc:.2f} s in total, {j['cpu_after_start']:.2f} s after "
      "reading its input file.")
PY
cat "$OUT/loader.md"
