#!/usr/bin/env bash
# ingest_deadletter_formats.sh - one bad record of every registered format, through its natural transport, is dead-lettered.
# timeout: 90
#
# For each format in the registry (ingest/sources.c) one source receives one
# bad record the way that vendor sends it: TCP lines, syslog, a dialled AMI or
# ESL PBX (tests/tools/fake_pbx.py), a followed queue_log, a CUCM drop dir,
# HTTP (bearer, Firehose, signed Twilio forms).  callpipe.deadletter must hold
# exactly one letter per source with the source's format as `src`, the exact
# reason and the raw bytes of the record; callpipe.events must stay empty.
# The formats are read from the registry (ingest/sources.c), so a new format
# without a case here fails the test.  SMDR uses `framing: lines`: with the
# default `auto`, a line starting with a digit (SMDR's date) is taken for an
# RFC 6587 octet count and dead-lettered as "malformed octet count".
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
DUMP=$BUILD/tools/topic_dump
FAKE=tests/tools/fake_pbx.py

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_deadletter.XXXXXX")
fake_pids=()
cleanup() {
    collector_kill
    for p in "${fake_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    tail -n 40 "$tmp/ingest.log" 2>/dev/null || true
    exit 1
}
fake_start() { # NAME ARGS...
    local name=$1 i
    shift
    python3 "$FAKE" "$@" --port-file "$tmp/$name.port" --log "$tmp/$name.pbxlog" &
    fake_pids+=($!)
    for ((i = 0; i < 100; i++)); do
        [ -s "$tmp/$name.port" ] && return 0
        sleep 0.05
    done
    fail "fake $name did not start"
}

# Every registered format must have a case below.
formats=$(sed -n 's/^    &cp_source_\([a-z_]*\),$/\1/p' ingest/sources.c | sort | tr '\n' ' ')
[ "$formats" = "amazon_connect_ctr asterisk_ami asterisk_cdr_csv asterisk_queue_log avaya_smdr cucm_cdr freeswitch_esl freeswitch_json_cdr json twilio_taskrouter twilio_voice " ] ||
    fail "the format registry changed ($formats): add a case to this test"

# The bad records (raw bytes the dead letter must carry).
mkdir -p "$tmp/bad" "$tmp/drop"
printf '%s' '{"call":"j1","kind":"cdr","ts":17' >"$tmp/bad/json"
printf 'Event: QueueCallerJoin\r\nTimestamp: 1714557600.5\r\nChannel: PJSIP/t-1\r\nUniqueid: 1714557600.9\r\nLinkedid: 1714557600.9\r\nPosition: 1\r\n\r\n' \
    >"$tmp/bad/ami"
body=$'Event-Name: CHANNEL_CREATE\nUnique-ID: 3f1c2d3e-0000-4c5d-9e0f-1a2b3c4d5e6f\nCore-UUID: 6f1c2d3e\n'
printf 'Content-Length: %d\nContent-Type: text/event-plain\n\n%s' "${#body}" "$body" >"$tmp/bad/esl"
printf '%s' '1714559500|1714559010.113|sales' >"$tmp/bad/qlog"
printf '%s' '2024/05/01 10:00:00,00:01:02,12' >"$tmp/bad/smdr"
sed -n 1p tests/golden/asterisk-cdr-csv/10_bad_records.in | tr -d '\n' >"$tmp/bad/cdrcsv"
cp tests/golden/cisco-cucm-cdr/12_missing_column.in "$tmp/bad/cucm"
printf '%s' '{"variables":{"uuid":"a1"' >"$tmp/bad/fscdr"
printf '%s' '{"requestId":"r-1","timestamp":1714557800123,"records":[{"nodata":"x"}]}' >"$tmp/bad/firehose"
printf '%s' 'AccountSid=AC3f&CallSid=CA5e&CallStatus=completed&Timestamp=yesterday' >"$tmp/bad/twvoice"
printf '%s' 'AccountSid=AC3f1e2d3c4b5a69788796a5b4c3d2e1f0&TaskSid=WT1&Timestamp=1714557605' >"$tmp/bad/twtr"

devbroker_start "$tmp/broker" -b 1 -t callpipe.events:2 -t callpipe.deadletter:2
fake_start ami ami --secret amisecret --batch "$tmp/bad/ami"
fake_start esl esl --secret eslpw --batch "$tmp/bad/esl"
: >"$tmp/queue_log"
P_JSON=$(free_port) P_SMDR=$(free_port) P_CSV=$(free_port) P_FS=$(free_port) P_FH=$(free_port)
P_TV=$(free_port) P_TT=$(free_port) P_ADMIN=$(free_port)
export AMI_SECRET=amisecret ESL_PW=eslpw FS_TOKEN=fs-$RANDOM FH_KEY=fh-$RANDOM TW_TOKEN=tw-$RANDOM
URL=https://hooks.example.com/cp
cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", linger: 5ms}
sources:
  - {name: s-json, org: acme, transport: tcp, listen: "127.0.0.1:$P_JSON"}
  - {name: s-ami, org: acme, format: asterisk-ami, transport: tcp-client,
     connect: "127.0.0.1:$(cat "$tmp/ami.port")", username: callpipe, login_secret: "env:AMI_SECRET"}
  - {name: s-esl, org: acme, format: freeswitch-esl, transport: tcp-client,
     connect: "127.0.0.1:$(cat "$tmp/esl.port")", login_secret: "env:ESL_PW"}
  - {name: s-qlog, org: acme, format: asterisk-queue-log, transport: file-tail, path: "$tmp/queue_log"}
  - {name: s-smdr, org: acme, format: avaya-smdr, tz: Europe/London, transport: tcp, framing: lines,
     listen: "127.0.0.1:$P_SMDR"}
  - {name: s-cdrcsv, org: acme, format: asterisk-cdr-csv, tz: America/New_York, transport: tcp,
     listen: "127.0.0.1:$P_CSV"}
  - {name: s-cucm, org: acme, format: cisco-cucm-cdr, transport: file-drop, path: "$tmp/drop"}
  - {name: s-fscdr, org: acme, format: freeswitch-json-cdr, transport: http, listen: "127.0.0.1:$P_FS",
     token: "env:FS_TOKEN"}
  - {name: s-connect, org: acme, format: amazon-connect-ctr, transport: http,
     listen: "127.0.0.1:$P_FH", access_key: "env:FH_KEY"}
  - {name: s-twvoice, org: acme, format: twilio-voice, transport: http, listen: "127.0.0.1:$P_TV",
     twilio_token: "env:TW_TOKEN", public_url: "$URL/voice"}
  - {name: s-twtr, org: acme, format: twilio-taskrouter, transport: http, listen: "127.0.0.1:$P_TT",
     twilio_token: "env:TW_TOKEN", public_url: "$URL/tr"}
YAML
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"
t0=$SECONDS

tcp_send() { # PORT FILE: one line, then close
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    cat "$2" >&3
    printf '\n' >&3
    exec 3>&-
}
tcp_send "$P_JSON" "$tmp/bad/json"
tcp_send "$P_SMDR" "$tmp/bad/smdr"
tcp_send "$P_CSV" "$tmp/bad/cdrcsv"
sleep 0.3 # the tail has opened the (empty) file
{ cat "$tmp/bad/qlog"; printf '\n'; } >>"$tmp/queue_log"
cp "$tmp/bad/cucm" "$tmp/cucm.tmp"
CUCM_NAME=cdr_StandAloneCluster_01_202405011000_201
mv "$tmp/cucm.tmp" "$tmp/drop/$CUCM_NAME"
code=$(curl -s -o "$tmp/fs.out" -w '%{http_code}' -H "Authorization: Bearer $FS_TOKEN" \
    --data-binary "@$tmp/bad/fscdr" "http://127.0.0.1:$P_FS/cdr")
[ "$code" = 200 ] || fail "json_cdr answered $code"
grep -q '"accepted":0,"rejected":1' "$tmp/fs.out" || fail "json_cdr body: $(cat "$tmp/fs.out")"
code=$(curl -s -o "$tmp/fh.out" -w '%{http_code}' -H "X-Amz-Firehose-Access-Key: $FH_KEY" \
    -H "X-Amz-Firehose-Request-Id: r-1" --data-binary "@$tmp/bad/firehose" "http://127.0.0.1:$P_FH/")
[ "$code" = 200 ] || fail "firehose answered $code (a rejected record is final: 200)"
sign() { # URL BODYFILE
    python3 - "$1" "$2" <<'PY' | openssl dgst -sha1 -hmac "$TW_TOKEN" -binary | base64
import sys, urllib.parse
pairs = sorted(urllib.parse.parse_qsl(open(sys.argv[2]).read(), keep_blank_values=True))
sys.stdout.write(sys.argv[1] + "".join(k + v for k, v in pairs))
PY
}
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: $(sign "$URL/voice" "$tmp/bad/twvoice")" \
    --data-binary "@$tmp/bad/twvoice" "http://127.0.0.1:$P_TV/")
[ "$code" = 200 ] || fail "twilio voice answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: $(sign "$URL/tr" "$tmp/bad/twtr")" \
    --data-binary "@$tmp/bad/twtr" "http://127.0.0.1:$P_TT/")
[ "$code" = 204 ] || fail "twilio taskrouter answered $code"

"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -n 11 -i 15000 >"$tmp/dead.json" ||
    fail "want 11 dead letters, got $(wc -l <"$tmp/dead.json"): $(cut -c1-200 "$tmp/dead.json")"
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 1500 >"$tmp/dead_all.json" || true
[ "$(wc -l <"$tmp/dead_all.json")" = 11 ] || fail "more than 11 dead letters: $(cat "$tmp/dead_all.json")"
python3 - "$tmp/dead_all.json" "$tmp/bad" "$tmp" <<'PY' || fail "dead letter check"
import json, os, sys
bad, tmp = sys.argv[2], sys.argv[3]
raw = lambda n: open(os.path.join(bad, n), "rb").read()
want = {  # source: (src, transport, reason, raw)
    "s-json": ("callpipe-json", "tcp", "truncated json", raw("json")),
    "s-ami": ("asterisk-ami", "tcp-client", "missing: Queue", raw("ami")),
    "s-esl": ("freeswitch-esl", "tcp-client", "missing: Event-Date-Timestamp", raw("esl")),
    "s-qlog": ("asterisk-queue-log", "file-tail", "too few fields", raw("qlog")),
    "s-smdr": ("avaya-smdr", "tcp", "too few fields", raw("smdr")),
    "s-cdrcsv": ("asterisk-cdr-csv", "tcp", "unterminated quote", raw("cdrcsv")),
    "s-cucm": ("cisco-cucm-cdr", "file-drop", "missing column: dateTimeOrigination", raw("cucm")),
    "s-fscdr": ("freeswitch-json-cdr", "http", "malformed json", raw("fscdr")),
    "s-connect": ("amazon-connect-ctr", "http", "missing: data", None),
    "s-twvoice": ("twilio-voice", "http", "bad time: Timestamp", raw("twvoice")),
    "s-twtr": ("twilio-taskrouter", "http", "missing: EventType", raw("twtr")),
}
dl = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert d["pbx"] not in dl, ("two dead letters for", d["pbx"])
    dl[d["pbx"]] = d
bad_n = 0
for pbx, (src, transport, reason, body) in sorted(want.items()):
    d = dl.get(pbx)
    got = (d["src"], d["transport"], d["reason"]) if d else None
    ok = got == (src, transport, reason) and d["org"] == "acme" and d["peer"]
    if ok and body is not None:
        ok = d["raw"].encode("latin-1") == body and d["raw_len"] == len(body)
    if ok and body is None:  # Firehose: the decoded record element
        ok = json.loads(d["raw"]) == {"nodata": "x"}
    print(("ok  " if ok else "BAD ") + f"{pbx}: {got} raw={d['raw'][:60]!r}" if d else f"BAD {pbx}: none")
    bad_n += not ok
sys.exit(1 if bad_n else 0)
PY
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -i 1000 >"$tmp/events.json" || true
[ ! -s "$tmp/events.json" ] || fail "events from bad records: $(cat "$tmp/events.json")"
[ -e "$tmp/drop/done/$CUCM_NAME" ] || fail "the rejected CUCM file was not moved to done"
collector_stop || fail "collector exit status after SIGTERM"
echo "ingest_deadletter_formats: ok (11 formats, $((SECONDS - t0)) s)"
