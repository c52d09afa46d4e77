#!/usr/bin/env bash
# ingest_vendor_http.sh - vendor webhooks over HTTP: FreeSWITCH json_cdr, Amazon Connect via Firehose, Twilio.
# timeout: 90
#
# FreeSWITCH mod_json_cdr posts (raw JSON, cdr= urlencoded, base64) with a bearer
# token; Kinesis Data Firehose requests (access key header, request id, gzip) and
# its JSON answer; Twilio voice status callbacks and TaskRouter events with an
# X-Twilio-Signature the test computes itself (string to sign in python, HMAC-SHA1
# by openssl).  Asserts the HTTP status and body of every answer, the exact
# events (golden outputs) and the exact dead letters of the refused requests.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
DUMP=$BUILD/tools/topic_dump
CHECK=tests/tools/events_check.py
GF=tests/golden/freeswitch_json_cdr
GA=tests/golden/amazon-connect-ctr
GV=tests/golden/twilio-voice
GT=tests/golden/twilio-taskrouter

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_vendor_http.XXXXXX")
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

devbroker_start "$tmp/broker" -b 1 -t callpipe.events:4 -t callpipe.deadletter:1
P_FS=$(free_port) P_FH=$(free_port) P_TV=$(free_port) P_TT=$(free_port) P_ADMIN=$(free_port)
export FS_TOKEN=fs-$RANDOM$RANDOM FH_KEY=fh-$RANDOM$RANDOM TW_TOKEN=tw$RANDOM$RANDOM
URL_TV=https://hooks.example.com/cp/voice
URL_TT=https://hooks.example.com:8443/cp/taskrouter
cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", linger: 5ms}
sources:
  - {name: fs-cdr, org: acme, format: freeswitch-json-cdr, transport: http,
     listen: "127.0.0.1:$P_FS", token: "env:FS_TOKEN"}
  - {name: pbx-1, org: acme, format: amazon-connect-ctr, transport: http,
     listen: "127.0.0.1:$P_FH", access_key: "env:FH_KEY"}
  - {name: tw-voice, org: globex, format: twilio-voice, transport: http,
     listen: "127.0.0.1:$P_TV", twilio_token: "env:TW_TOKEN", public_url: "$URL_TV"}
  - {name: tw-tr, org: globex, format: twilio-taskrouter, transport: http,
     listen: "127.0.0.1:$P_TT", twilio_token: "env:TW_TOKEN", public_url: "$URL_TT"}
YAML
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"
t0=$SECONDS

post() { # OUT PORT PATH BODYFILE CURL-ARGS... -> HTTP status
    local out=$1 port=$2 path=$3 body=$4
    shift 4
    curl -s -o "$out" -w '%{http_code}' "$@" --data-binary "@$body" "http://127.0.0.1:$port$path"
}

# FreeSWITCH json_cdr: raw JSON, cdr= urlencoded, base64 (the three ways mod_json_cdr posts).
for c in 01_answered_a_leg 03_form_urlencoded 04_form_base64; do
    ct=application/json
    [ "$c" = 01_answered_a_leg ] || ct=application/x-www-form-urlencoded
    # mod_json_cdr itself can only send Basic (cred=user:password): the token as the password.
    auth=(-H "Authorization: Bearer $FS_TOKEN")
    [ "$c" = 04_form_base64 ] && auth=(-u "freeswitch:$FS_TOKEN")
    code=$(post "$tmp/fs.out" "$P_FS" /cdr "$GF/$c.in" "${auth[@]}" -H "Content-Type: $ct")
    [ "$code" = 200 ] || fail "fs $c answered $code: $(cat "$tmp/fs.out")"
    n=$(grep -c '^{' "$GF/$c.out")
    grep -q "\"accepted\":$n,\"rejected\":0" "$tmp/fs.out" || fail "fs $c body: $(cat "$tmp/fs.out")"
done
code=$(post "$tmp/fs.out" "$P_FS" /cdr "$GF/05_no_answer.in" -H "Authorization: Bearer x$FS_TOKEN")
[ "$code" = 401 ] || fail "fs wrong token answered $code"
code=$(post "$tmp/fs.out" "$P_FS" /cdr "$GF/05_no_answer.in" -u "freeswitch:x$FS_TOKEN")
[ "$code" = 401 ] || fail "fs wrong basic password answered $code"

# Firehose: plain and gzip-encoded requests; the answer echoes the request id.
fh() { # OUT BODYFILE REQUEST-ID KEY [CURL-ARGS...]
    local out=$1 body=$2 rid=$3 key=$4
    shift 4
    post "$out" "$P_FH" /firehose "$body" -H "X-Amz-Firehose-Request-Id: $rid" \
        -H "X-Amz-Firehose-Access-Key: $key" -H "Content-Type: application/json" "$@"
}
fh_answer() { # OUT REQUEST-ID [ERROR] : the body is exactly Firehose's answer shape
    python3 - "$@" <<'PY'
import json, sys, time
a = json.load(open(sys.argv[1]))
want = {"requestId", "timestamp"} | ({"errorMessage"} if len(sys.argv) > 3 else set())
assert set(a) == want, a
assert a["requestId"] == sys.argv[2], a
assert abs(a["timestamp"] - time.time() * 1000) < 60000, a
if len(sys.argv) > 3:
    assert a["errorMessage"] == sys.argv[3], a
PY
}
rid1=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(fh "$tmp/fh1.out" "$GA/01_answered_inbound.in" "$rid1" "$FH_KEY")
[ "$code" = 200 ] || fail "firehose answered $code: $(cat "$tmp/fh1.out")"
fh_answer "$tmp/fh1.out" "$rid1" || fail "firehose answer: $(cat "$tmp/fh1.out")"
gzip -c "$GA/02_abandoned_in_queue.in" >"$tmp/fh2.gz"
rid2=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(fh "$tmp/fh2.out" "$tmp/fh2.gz" "$rid2" "$FH_KEY" -H "Content-Encoding: gzip")
[ "$code" = 200 ] || fail "gzip firehose answered $code: $(cat "$tmp/fh2.out")"
fh_answer "$tmp/fh2.out" "$rid2" || fail "gzip firehose answer: $(cat "$tmp/fh2.out")"
rid3=$(python3 -c 'import uuid; print(uuid.uuid4())')
code=$(fh "$tmp/fh3.out" "$GA/04_transfer_segments.in" "$rid3" "wrong-$FH_KEY")
[ "$code" = 401 ] || fail "firehose wrong key answered $code"
fh_answer "$tmp/fh3.out" "$rid3" "bad X-Amz-Firehose-Access-Key" || fail "401 body: $(cat "$tmp/fh3.out")"

# Twilio: every %%-separated block of a golden input is one signed form POST.
split_blocks() { # GOLDEN.in DIR -> DIR/000, DIR/001, ... (exact bytes, as the golden driver cuts)
    python3 - "$1" "$2" <<'PY'
import os, re, sys
data = open(sys.argv[1], "rb").read()
os.makedirs(sys.argv[2], exist_ok=True)
for i, b in enumerate(re.split(rb"(?m)^%%\r?\n?", data)):
    if b:
        open(os.path.join(sys.argv[2], "%03d" % i), "wb").write(b)
PY
}
sign() { # URL BODYFILE -> base64(HMAC-SHA1(token, url + sorted name+value pairs))
    python3 - "$1" "$2" <<'PY' | openssl dgst -sha1 -hmac "$TW_TOKEN" -binary | base64
import sys, urllib.parse
body = open(sys.argv[2], "rb").read().decode()
pairs = sorted(urllib.parse.parse_qsl(body, keep_blank_values=True))
sys.stdout.write(sys.argv[1] + "".join(k + v for k, v in pairs))
PY
}
twilio_post() { # PORT URL QUERY GOLDEN.in WANT-STATUS
    local port=$1 url=$2 query=$3 golden=$4 want=$5 f code
    split_blocks "$golden" "$tmp/blocks.$port"
    for f in "$tmp/blocks.$port"/*; do
        code=$(post "$tmp/tw.out" "$port" "/hook?$query" "$f" -H "X-Twilio-Signature: $(sign "$url?$query" "$f")" \
            -H "Content-Type: application/x-www-form-urlencoded")
        [ "$code" = "$want" ] || fail "twilio $golden $(basename "$f") answered $code: $(cat "$tmp/tw.out")"
    done
    rm -rf "$tmp/blocks.$port"
}
twilio_post "$P_TV" "$URL_TV" "tenant=acme&x=1" "$GV/01_inbound_lifecycle.in" 200
twilio_post "$P_TV" "$URL_TV" "tenant=acme&x=1" "$GV/02_dial_child_leg.in" 200
[ "$(cat "$tmp/tw.out")" = "<Response/>" ] || fail "voice answer body: $(cat "$tmp/tw.out")"
twilio_post "$P_TT" "$URL_TT" "t=1" "$GT/01_answered_flow.in" 204
[ ! -s "$tmp/tw.out" ] || fail "taskrouter 204 with a body"
# A wrong signature (signed for another URL) -> 403 and a dead letter with the body.
split_blocks "$GV/03_unanswered_outcomes.in" "$tmp/bad"
badbody=$(ls "$tmp/bad" | head -n 1)
code=$(post "$tmp/tw.out" "$P_TV" "/hook?tenant=acme" "$tmp/bad/$badbody" \
    -H "X-Twilio-Signature: $(sign "$URL_TV?tenant=other" "$tmp/bad/$badbody")")
[ "$code" = 403 ] || fail "bad twilio signature answered $code"
echo "requests done after $((SECONDS - t0)) s"

# Exact events.
n_all=$(cat "$GF"/{01_answered_a_leg,03_form_urlencoded,04_form_base64}.out \
    "$GA"/{01_answered_inbound,02_abandoned_in_queue}.out "$GV"/{01_inbound_lifecycle,02_dial_child_leg}.out \
    "$GT/01_answered_flow.out" | grep -c '^{')
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -i 1500 >"$tmp/events.json" || true
[ "$(wc -l <"$tmp/events.json")" = "$n_all" ] || fail "want $n_all events, got $(wc -l <"$tmp/events.json")"
python3 "$CHECK" "$tmp/events.json" --pbx fs-cdr --org acme "$GF/01_answered_a_leg.out" \
    "$GF/03_form_urlencoded.out" "$GF/04_form_base64.out" || fail "json_cdr events"
python3 "$CHECK" "$tmp/events.json" --pbx pbx-1 --org acme --ids "$GA/01_answered_inbound.out" \
    "$GA/02_abandoned_in_queue.out" || fail "amazon connect events"
python3 "$CHECK" "$tmp/events.json" --pbx tw-voice --org globex "$GV/01_inbound_lifecycle.out" \
    "$GV/02_dial_child_leg.out" || fail "twilio voice events"
python3 "$CHECK" "$tmp/events.json" --pbx tw-tr --org globex "$GT/01_answered_flow.out" ||
    fail "taskrouter events"

# Exact dead letters: the four refused requests, each with its body.
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 1500 >"$tmp/dead.json" || true
python3 - "$tmp/dead.json" "$GF/05_no_answer.in" "$GA/04_transfer_segments.in" "$tmp/bad/$badbody" <<'PY' ||
import json, sys
dl = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda d: (d["pbx"], d["reason"]))
raw = lambda p: open(p, "rb").read()
want = [("fs-cdr", "freeswitch-json-cdr", "wrong basic password", raw(sys.argv[2])),
        ("fs-cdr", "freeswitch-json-cdr", "wrong bearer token", raw(sys.argv[2])),
        ("pbx-1", "amazon-connect-ctr", "bad X-Amz-Firehose-Access-Key", raw(sys.argv[3])),
        ("tw-voice", "twilio-voice", "bad X-Twilio-Signature", raw(sys.argv[4]))]
assert len(dl) == len(want), [(d["pbx"], d["reason"]) for d in dl]
for d, (pbx, src, reason, body) in zip(dl, want):
    got = d["raw"].encode("latin-1")  # topic_dump escapes each raw byte
    assert (d["pbx"], d["src"], d["reason"], d["transport"]) == (pbx, src, reason, "http"), d
    assert d["peer"].startswith("127.0.0.1:"), d
    assert d["raw_len"] == len(body) and body.startswith(got) and len(got) == min(len(body), 16384), \
        (pbx, d["raw_len"], len(body), len(got))
PY
    fail "dead letters: $(cut -c1-300 "$tmp/dead.json")"

grep -q "$FS_TOKEN\|$FH_KEY\|$TW_TOKEN" "$tmp/ingest.log" && fail "a secret in the log"
collector_stop || fail "collector exit status after SIGTERM"
echo "ingest_vendor_http: ok ($n_all events, $((SECONDS - t0)) s)"
