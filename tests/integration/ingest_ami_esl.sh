#!/usr/bin/env bash
# ingest_ami_esl.sh - the collector dialling scripted PBXs: Asterisk AMI and the FreeSWITCH Event Socket.
# timeout: 150
#
# tests/tools/fake_pbx.py plays the PBX side of each protocol.  One collector
# runs five tcp-client sources at once so that the slow retry after a refused
# login (30 s) and the AMI keepalive (Ping after 20 s of silence) overlap:
#   pbx-1      AMI, MD5 challenge login (the PBX checks Key = md5(challenge+secret)); killed -9
#              after its first batch (with half a block in flight) and restarted on the same port
#   ami-plain  AMI, plain login; stays silent after its batch until the collector pings it
#   ami-bad    AMI, wrong secret: refused, retried slowly, no events
#   esl-1      ESL: auth, event plain subscription, batch, disconnect-notice, reconnect,
#              second batch; then killed -9 and restarted with a third batch
#   esl-bad    ESL, wrong password: -ERR invalid, retried slowly
# Every batch comes from golden inputs, so the events on callpipe.events must be
# exactly the golden outputs (with exact event ids for pbx-1, named as in the goldens).
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
. tests/scripts/collector.sh
DUMP=$BUILD/tools/topic_dump
FAKE=tests/tools/fake_pbx.py
CHECK=tests/tools/events_check.py
GA=tests/golden/asterisk-ami
GE=tests/golden/freeswitch_esl

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_ami_esl.XXXXXX")
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
    for f in "$tmp"/*.pbxlog; do echo "== $f"; cat "$f"; done
    exit 1
}

fake_start() { # NAME PROTO ARGS... ; sets PORT_<NAME> (once listening) and records the pid
    local name=$1 i
    shift
    rm -f "$tmp/$name.port"
    python3 "$FAKE" "$@" --port-file "$tmp/$name.port" --log "$tmp/$name.pbxlog" &
    fake_pids+=($!)
    eval "PID_${name//-/_}=$!"
    for ((i = 0; i < 100; i++)); do
        [ -s "$tmp/$name.port" ] && break
        sleep 0.05
    done
    [ -s "$tmp/$name.port" ] || fail "fake $name did not start"
    eval "PORT_${name//-/_}=$(cat "$tmp/$name.port")"
}
count_lines() { # FILE REGEX -> number of matching lines
    grep -c -- "$2" "$1" 2>/dev/null || true
}
lines_ge() { # FILE REGEX N
    [ "$(count_lines "$1" "$2")" -ge "$3" ]
}
delivered() { # SOURCE -> events delivered by the collector for it
    local v
    v=$(metric "callpipe_ingest_events_delivered_total{source=\"$1\"}")
    echo "${v:-0}"
}
delivered_is() { [ "$(delivered "$1")" = "$2" ]; }
golden_n() { # golden .out files -> number of events in them
    cat "$@" | grep -c '^{'
}

export AMI_SECRET=s3cret-$RANDOM AMI_WRONG=wrong-$RANDOM ESL_PW=ClueCon-$RANDOM ESL_WRONG=nope-$RANDOM
devbroker_start "$tmp/broker" -b 1 -t callpipe.events:4 -t callpipe.deadletter:1

fake_start pbx1 ami --secret "$AMI_SECRET" --batch "$GA/01_queue_answered.in,$GA/03_chanvariable_repeated.in" \
    --partial-tail --seed 11
fake_start amiplain ami --secret "$AMI_SECRET" --batch "$GA/13_latin1_callerid.in" --seed 12
fake_start amibad ami --secret "$AMI_SECRET" --batch "$GA/14_hangup_causes.in"
fake_start esl1 esl --secret "$ESL_PW" --disconnect-notice --seed 13 \
    --batch "$GE/01_channel_lifecycle.in,$GE/02_callcenter_answered.in" \
    --batch "$GE/03_callcenter_abandon.in,$GE/05_agent_no_answer.in"
fake_start eslbad esl --secret "$ESL_PW" --batch "$GE/08_url_encoded_values.in"

P_ADMIN=$(free_port)
cat >"$tmp/ingest.yaml" <<YAML
threads: 1
admin: 127.0.0.1:$P_ADMIN
kafka: {brokers: "$DEVBROKER_BOOTSTRAP", linger: 5ms}
sources:
  - {name: pbx-1, org: acme, format: asterisk-ami, transport: tcp-client,
     connect: "127.0.0.1:$PORT_pbx1", username: callpipe, login_secret: "env:AMI_SECRET"}
  - {name: ami-plain, org: globex, format: asterisk-ami, transport: tcp-client, login: plain,
     connect: "127.0.0.1:$PORT_amiplain", username: callpipe, login_secret: "env:AMI_SECRET"}
  - {name: ami-bad, org: acme, format: asterisk-ami, transport: tcp-client,
     connect: "127.0.0.1:$PORT_amibad", username: callpipe, login_secret: "env:AMI_WRONG"}
  - {name: esl-1, org: initech, format: freeswitch-esl, transport: tcp-client,
     connect: "127.0.0.1:$PORT_esl1", login_secret: "env:ESL_PW"}
  - {name: esl-bad, org: acme, format: freeswitch-esl, transport: tcp-client,
     connect: "127.0.0.1:$PORT_eslbad", login_secret: "env:ESL_WRONG"}
YAML
t0=$SECONDS
collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" "$P_ADMIN" || fail "collector did not start"

# 1. Logins: MD5 (key checked by the PBX), plain, ESL auth + subscription; batches arrive exactly.
n_pbx1a=$(golden_n "$GA/01_queue_answered.out" "$GA/03_chanvariable_repeated.out")
n_plain=$(golden_n "$GA/13_latin1_callerid.out")
n_esl12=$(golden_n "$GE/01_channel_lifecycle.out" "$GE/02_callcenter_answered.out" \
    "$GE/03_callcenter_abandon.out" "$GE/05_agent_no_answer.out")
wait_until 20 delivered_is pbx-1 "$n_pbx1a" || fail "pbx-1 delivered $(delivered pbx-1), want $n_pbx1a"
wait_until 20 delivered_is ami-plain "$n_plain" || fail "ami-plain delivered $(delivered ami-plain)"
wait_until 20 delivered_is esl-1 "$n_esl12" || fail "esl-1 delivered $(delivered esl-1), want $n_esl12"
grep -qx "login ok md5 events=agent,call,cdr" "$tmp/pbx1.pbxlog" || fail "no MD5 login at pbx-1"
grep -qx "login ok plain events=agent,call,cdr" "$tmp/amiplain.pbxlog" || fail "no plain login"
[ "$(count_lines "$tmp/esl1.pbxlog" '^auth ok$')" = 2 ] || fail "esl-1: want 2 auths (disconnect notice)"
grep -qx "subscribed CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM callcenter::info" \
    "$tmp/esl1.pbxlog" || fail "esl-1: subscription"
grep -qx "disconnect notice" "$tmp/esl1.pbxlog" || fail "esl-1: no disconnect notice sent"

# 2. Restart: kill -9 the AMI PBX (half a block was in flight) and the ESL PBX, start them
# again on the same ports with new batches, sent only once the collector has logged in again.
kill -9 "$PID_pbx1" "$PID_esl1"
wait "$PID_pbx1" "$PID_esl1" 2>/dev/null || true
sleep 1 # the collector sees the close and backs off (0.25 s, 0.5 s, ...)
fake_start pbx1 ami --port "$PORT_pbx1" --secret "$AMI_SECRET" --seed 21 \
    --batch "$GA/12_complete_reasons.in,$GA/14_hangup_causes.in"
fake_start esl1 esl --port "$PORT_esl1" --secret "$ESL_PW" --seed 22 \
    --batch "$GE/04_callcenter_timeout_and_key.in,$GE/11_hangup_busy_and_cancel.in"
n_pbx1=$((n_pbx1a + $(golden_n "$GA/12_complete_reasons.out" "$GA/14_hangup_causes.out")))
n_esl=$((n_esl12 + $(golden_n "$GE/04_callcenter_timeout_and_key.out" "$GE/11_hangup_busy_and_cancel.out")))
wait_until 20 delivered_is pbx-1 "$n_pbx1" || fail "pbx-1 after restart: $(delivered pbx-1), want $n_pbx1"
wait_until 20 delivered_is esl-1 "$n_esl" || fail "esl-1 after restart: $(delivered esl-1), want $n_esl"
[ "$(count_lines "$tmp/pbx1.pbxlog" '^login ok md5')" = 2 ] || fail "pbx-1: want 2 MD5 logins in all"
echo "restart: both PBXs back and delivered after $((SECONDS - t0)) s"

# 3. Slow retry after refusals and the AMI keepalive: at 34 s the refused sources have tried
# exactly twice (once at start, once 30 s later) and ami-plain (silent since its batch) was pinged.
wait_until $((t0 + 40 - SECONDS)) lines_ge "$tmp/amiplain.pbxlog" '^ping$' 1 ||
    fail "ami-plain was never pinged"
wait_until $((t0 + 40 - SECONDS)) lines_ge "$tmp/amibad.pbxlog" '^login refused' 2 ||
    fail "ami-bad: no second login attempt (retry) within 40 s"
wait_until $((t0 + 40 - SECONDS)) lines_ge "$tmp/eslbad.pbxlog" '^auth refused' 2 ||
    fail "esl-bad: no second auth attempt within 40 s"
elapsed=$((SECONDS - t0))
[ "$elapsed" -ge 25 ] || fail "refused logins retried after only $elapsed s (should back off ~30 s)"
[ "$(count_lines "$tmp/amibad.pbxlog" '^login refused')" = 2 ] || fail "ami-bad retried too often"
[ "$(count_lines "$tmp/eslbad.pbxlog" '^auth refused')" = 2 ] || fail "esl-bad retried too often"
grep -qx "login refused md5 user=callpipe" "$tmp/amibad.pbxlog" || fail "ami-bad: not an MD5 attempt"
grep -q 'ami-bad.*AMI login to 127.0.0.1:[0-9]* refused: Authentication failed' "$tmp/ingest.log" ||
    fail "the AMI refusal was not logged"
grep -q 'esl-bad.*refused: -ERR invalid' "$tmp/ingest.log" || fail "the ESL refusal was not logged"
[ "$(count_lines "$tmp/amiplain.pbxlog" '^connect')" = 1 ] || fail "ami-plain reconnected (pong not taken)"
kill -0 "$COLLECTOR_PID" || fail "collector died"

# 4. Exact events (golden outputs; exact event ids for pbx-1) and no dead letters.
n_all=$((n_pbx1 + n_plain + n_esl))
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -n "$n_all" -i 5000 >"$tmp/events.json" ||
    fail "want $n_all events, got $(wc -l <"$tmp/events.json")"
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -i 1500 >"$tmp/events_all.json" || true
[ "$(wc -l <"$tmp/events_all.json")" = "$n_all" ] || fail "more than $n_all events on the topic"
python3 "$CHECK" "$tmp/events_all.json" --pbx pbx-1 --org acme --ids "$GA/01_queue_answered.out" \
    "$GA/03_chanvariable_repeated.out" "$GA/12_complete_reasons.out" "$GA/14_hangup_causes.out" ||
    fail "pbx-1 events"
python3 "$CHECK" "$tmp/events_all.json" --pbx ami-plain --org globex "$GA/13_latin1_callerid.out" ||
    fail "ami-plain events"
python3 "$CHECK" "$tmp/events_all.json" --pbx esl-1 --org initech "$GE/01_channel_lifecycle.out" \
    "$GE/02_callcenter_answered.out" "$GE/03_callcenter_abandon.out" "$GE/05_agent_no_answer.out" \
    "$GE/04_callcenter_timeout_and_key.out" "$GE/11_hangup_busy_and_cancel.out" || fail "esl-1 events"
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -i 1000 >"$tmp/dead.json" || true
[ ! -s "$tmp/dead.json" ] || fail "unexpected dead letters: $(cat "$tmp/dead.json")"

# Secrets never in the log; SIGTERM exits 0.
grep -q "$AMI_SECRET\|$AMI_WRONG\|$ESL_PW\|$ESL_WRONG" "$tmp/ingest.log" && fail "a secret in the log"
collector_stop || fail "collector exit status after SIGTERM"
echo "ingest_ami_esl: ok ($n_all events, $((SECONDS - t0)) s)"
