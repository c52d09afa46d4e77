#!/usr/bin/env bash
# ingest_syslog_vendor.sh - syslog (RFC 5424 and 3164, UDP and TCP) carrying vendor line formats, sent by logger(1).
# timeout: 60
#
# util-linux logger wraps IP Office SMDR lines and Asterisk queue_log lines in
# syslog messages; each source parses the payload with its configured format
# (SMDR with its time zone and Call ID stitching across lines).  The events
# must be exactly the golden outputs of the lines sent, with no dead letters.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
DUMP=$BUILD/tools/topic_dump
CHECK=tests/tools/events_check.py
GS=tests/golden/avaya_smdr
GQ=tests/golden/asterisk-queue-log

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_syslog_vendor.XXXXXX")
cleanup() {
    collector_kill
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    tail -n 40 "$tmp/ingest.log" 2>/dev/null || true
    exit 1
}
delivered() {
    local v
    v=$(metric "callpipe_ingest_events_delivered_total{source=\"$1\"}")
    echo "${v:-0}"
}
delivered_is() { [ "$(delivered "$1")" = "$2" ]; }
golden_n() { cat "$@" | grep -c '^{'; }

devbroker_start "$tmp/broker" -b 1 -t callpipe.events:4 -t callpipe.deadletter:1
P1=$(free_port) P2=$(free_port) P3=$(free_port) P4=$(free_port) P_ADMIN=$(free_port)
cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", linger: 5ms}
sources:
  - {name: smdr-udp, org: acme, format: avaya-smdr, tz: Europe/London, transport: syslog-udp,
     listen: "127.0.0.1:$P1"}
  - {name: smdr-tcp, org: acme, format: avaya-smdr, tz: Europe/London, transport: syslog-tcp,
     listen: "127.0.0.1:$P2"}
  - {name: qlog-udp, org: globex, format: asterisk-queue-log, transport: syslog-udp,
     listen: "127.0.0.1:$P3"}
  - {name: qlog-tcp, org: globex, format: asterisk-queue-log, transport: syslog-tcp,
     listen: "127.0.0.1:$P4"}
YAML
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"
t0=$SECONDS

# logger -f sends each line of the file as one message.
cat "$GS/01_inbound_answered.in" "$GS/02_transfer_two_segments.in" >"$tmp/smdr1"
logger --rfc5424 -d -n 127.0.0.1 -P "$P1" -t SMDR -f "$tmp/smdr1"
cat "$GS/03_lost_inbound.in" "$GS/04_voicemail.in" >"$tmp/smdr2"
logger --rfc3164 -T -n 127.0.0.1 -P "$P2" -t SMDR -f "$tmp/smdr2"
logger --rfc3164 -d -n 127.0.0.1 -P "$P3" -t asterisk -f "$GQ/01_answered_call.in"
logger --rfc5424 --octet-count -T -n 127.0.0.1 -P "$P4" -t asterisk -f "$GQ/02_queue_exits.in"

declare -A want=(
    [smdr-udp]="$GS/01_inbound_answered.out $GS/02_transfer_two_segments.out"
    [smdr-tcp]="$GS/03_lost_inbound.out $GS/04_voicemail.out"
    [qlog-udp]="$GQ/01_answered_call.out"
    [qlog-tcp]="$GQ/02_queue_exits.out")
declare -A org=([smdr-udp]=acme [smdr-tcp]=acme [qlog-udp]=globex [qlog-tcp]=globex)
n_all=0
for s in "${!want[@]}"; do
    # shellcheck disable=SC2086
    n=$(golden_n ${want[$s]})
    n_all=$((n_all + n))
    wait_until 15 delivered_is "$s" "$n" || fail "$s delivered $(delivered "$s"), want $n"
done
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -i 1500 >"$tmp/events.json" || true
[ "$(wc -l <"$tmp/events.json")" = "$n_all" ] || fail "want $n_all events, got $(wc -l <"$tmp/events.json")"
for s in "${!want[@]}"; do
    # shellcheck disable=SC2086
    python3 "$CHECK" "$tmp/events.json" --pbx "$s" --org "${org[$s]}" ${want[$s]} || fail "$s events"
done
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 1000 >"$tmp/dead.json" || true
[ ! -s "$tmp/dead.json" ] || fail "dead letters: $(cat "$tmp/dead.json")"
collector_stop || fail "collector exit status after SIGTERM"
echo "ingest_syslog_vendor: ok ($n_all events, $((SECONDS - t0)) s)"
