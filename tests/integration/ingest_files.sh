#!/usr/bin/env bash
# ingest_files.sh - file sources: the CUCM CDR drop directory with its ledger, and queue_log followed across rotation.
# timeout: 120
#
# file-drop (cisco-cucm-cdr, named pbx-1/acme so event ids equal the goldens'):
#   two CDR files and a CMR file are processed and moved to the done dir; an
#   in-flight "_cdr_..." upload is left alone until it is renamed; the ledger
#   holds one identity per file.  After a restart, the same file dropped again
#   is only moved (its identity is in the ledger); so is a file whose identity
#   the test wrote into the ledger itself (computed independently, as the
#   collector would have after a crash between the ledger write and the move).
# file-tail (asterisk-queue-log): lines already in the file at start are not
#   replayed; lines appended, lines written to the old file after `mv`
#   (rotation), and lines in the new file all arrive exactly once, including
#   one bad line that becomes exactly one dead letter.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
DUMP=$BUILD/tools/topic_dump
CHECK=tests/tools/events_check.py
GC=tests/golden/cisco-cucm-cdr
GQ=tests/golden/asterisk-queue-log

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_files.XXXXXX")
cleanup() {
    collector_kill
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    tail -n 40 "$tmp/ingest.log" 2>/dev/null || true
    ls -la "$tmp/drop" "$tmp/done" 2>/dev/null || true
    exit 1
}
delivered() {
    local v
    v=$(metric "callpipe_ingest_events_delivered_total{source=\"$1\"}")
    echo "${v:-0}"
}
delivered_is() { [ "$(delivered "$1")" = "$2" ]; }
exists() { [ -e "$1" ]; }
gone() { [ ! -e "$1" ]; }
golden_n() { cat "$@" | grep -c '^{'; }
drop() { # GOLDEN NAME: written beside the drop dir, then renamed in (as an SFTP upload ends)
    cp "$1" "$tmp/upload.tmp"
    mv "$tmp/upload.tmp" "$tmp/drop/$2"
}

devbroker_start "$tmp/broker" -b 1 -t callpipe.events:4 -t callpipe.deadletter:1
mkdir -p "$tmp/drop" "$tmp/done"
printf '1714550000|1714550000.1|sales|NONE|ENTERQUEUE||+15550199|1\n' >"$tmp/queue_log" # before start
P_ADMIN=$(free_port)
cat >"$tmp/ingest.yaml" <<YAML
threads: 1
admin: 127.0.0.1:$P_ADMIN
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", linger: 5ms}
sources:
  - {name: pbx-1, org: acme, format: cisco-cucm-cdr, transport: file-drop, path: "$tmp/drop",
     done_dir: "$tmp/done", ledger: "$tmp/ledger"}
  - {name: qlog, org: globex, format: asterisk-queue-log, transport: file-tail, path: "$tmp/queue_log"}
YAML
t0=$SECONDS
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"

F1=cdr_StandAloneCluster_01_202405011000_101
F2=cdr_StandAloneCluster_01_202405011001_102
F3=cdr_StandAloneCluster_01_202405011002_103
CMR=cmr_StandAloneCluster_01_202405011000_104
drop "$GC/01_answered_hunt_pilot.in" "$F1"
drop "$GC/03_transfer_records.in" "$F2"
drop "$GC/06_cmr_file.in" "$CMR"
drop "$GC/02_unanswered_causes.in" "_$F3" # CUCM's in-flight name

# queue_log: appended lines, then rotation while the writer still holds the old file.
exec 5>>"$tmp/queue_log"
sleep 0.5 # the tail has seen the file's end
sed -n 1,3p "$GQ/01_answered_call.in" >&5
sleep 0.5 # read from the file before it is renamed
mv "$tmp/queue_log" "$tmp/queue_log.1"
sed -n '4,$p' "$GQ/01_answered_call.in" >&5 # still into the rotated file
cat "$GQ/03_transfers.in" >&5
exec 5>&-
cat "$GQ/02_queue_exits.in" >"$tmp/queue_log"
sleep 0.5
cat "$GQ/12_crlf_and_ignored_events.in" >>"$tmp/queue_log"

n_drop=$(golden_n "$GC/01_answered_hunt_pilot.out" "$GC/03_transfer_records.out")
n_q=$(golden_n "$GQ/01_answered_call.out" "$GQ/03_transfers.out" "$GQ/02_queue_exits.out" \
    "$GQ/12_crlf_and_ignored_events.out")
wait_until 20 delivered_is pbx-1 "$n_drop" || fail "pbx-1 delivered $(delivered pbx-1), want $n_drop"
for f in "$F1" "$F2" "$CMR"; do
    wait_until 10 exists "$tmp/done/$f" || fail "$f not moved to done"
    gone "$tmp/drop/$f" || fail "$f still in the drop dir"
done
wait_until 20 delivered_is qlog "$n_q" || fail "qlog delivered $(delivered qlog), want $n_q"
sleep 1.5 # two more scans: the in-flight file must still be left alone
exists "$tmp/drop/_$F3" || fail "the in-flight _ file was touched"
[ "$(delivered pbx-1)" = "$n_drop" ] || fail "the in-flight file was processed"
[ "$(wc -l <"$tmp/ledger")" = 3 ] || fail "ledger: $(cat "$tmp/ledger")"
mv "$tmp/drop/_$F3" "$tmp/drop/$F3" # the upload completes
n_drop=$((n_drop + $(golden_n "$GC/02_unanswered_causes.out")))
wait_until 20 delivered_is pbx-1 "$n_drop" || fail "pbx-1 after rename: $(delivered pbx-1)"
wait_until 10 exists "$tmp/done/$F3" || fail "$F3 not moved"
[ "$(wc -l <"$tmp/ledger")" = 4 ] || fail "ledger after F3: $(cat "$tmp/ledger")"
grep -q " $CMR\$" "$tmp/ledger" || fail "the CMR file is not in the ledger"
echo "first pass done after $((SECONDS - t0)) s"

# Restart, then: the same file again; a new file whose identity is already in the ledger.
collector_stop || fail "collector exit status after SIGTERM"
F4=cdr_StandAloneCluster_01_202405011003_105
python3 - "$GC/10_duplicate_rows.in" "$F4" >>"$tmp/ledger" <<'PY'
import hashlib, struct, sys
data = open(sys.argv[1], "rb").read()
name = sys.argv[2].encode()
h = hashlib.sha256(b"callpipe-cucm-file-v1\0" + struct.pack(">Q", len(name)) + name
                   + struct.pack(">Q", len(data)) + data)
print(h.hexdigest(), sys.argv[2])
PY
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not restart"
mv "$tmp/done/$F1" "$tmp/f1.copy"
drop "$tmp/f1.copy" "$F1"
drop "$GC/10_duplicate_rows.in" "$F4"
wait_until 10 exists "$tmp/done/$F1" || fail "re-dropped $F1 not moved"
wait_until 10 exists "$tmp/done/$F4" || fail "$F4 (identity in the ledger) not moved"
gone "$tmp/drop/$F1" && gone "$tmp/drop/$F4" || fail "files left in the drop dir"
sleep 1
[ "$(delivered pbx-1)" = 0 ] || fail "the restarted collector produced $(delivered pbx-1) events"
[ "$(wc -l <"$tmp/ledger")" = 5 ] || fail "ledger grew: $(cat "$tmp/ledger")"
[ "$(grep -c "file $F1 processed" "$tmp/ingest.log")" = 1 ] || fail "$F1 processed twice"

# Exact events (cucm with exact ids) and the one dead letter (03_transfers' short line).
n_all=$((n_drop + n_q))
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -i 1500 >"$tmp/events.json" || true
[ "$(wc -l <"$tmp/events.json")" = "$n_all" ] || fail "want $n_all events, got $(wc -l <"$tmp/events.json")"
python3 "$CHECK" "$tmp/events.json" --pbx pbx-1 --org acme --ids "$GC/01_answered_hunt_pilot.out" \
    "$GC/03_transfer_records.out" "$GC/02_unanswered_causes.out" || fail "cucm events"
python3 "$CHECK" "$tmp/events.json" --pbx qlog --org globex "$GQ/01_answered_call.out" \
    "$GQ/03_transfers.out" "$GQ/02_queue_exits.out" "$GQ/12_crlf_and_ignored_events.out" ||
    fail "queue_log events"
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 1500 >"$tmp/dead.json" || true
python3 - "$tmp/dead.json" "$tmp/queue_log" <<'PY' || fail "dead letters: $(cat "$tmp/dead.json")"
import json, sys
dl = [json.loads(l) for l in open(sys.argv[1])]
assert len(dl) == 1, dl
d = dl[0]
want = {"pbx": "qlog", "org": "globex", "src": "asterisk-queue-log", "transport": "file-tail",
        "peer": sys.argv[2], "reason": "too few fields",
        "raw": "1714559500|1714559010.113|sales|Bob|ATTENDEDTRANSFER|BRIDGE|9|240"}
for k, v in want.items():
    assert d.get(k) == v, (k, d.get(k), v)
PY
grep -q "qlog.*was rotated; following the new file" "$tmp/ingest.log" || fail "rotation not logged"
collector_stop || fail "collector exit status after SIGTERM"
echo "ingest_files: ok ($n_all events, $((SECONDS - t0)) s)"
