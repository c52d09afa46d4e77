#!/usr/bin/env bash
# ingest_basic.sh - the collector end to end over each transport, through the dev broker.
# timeout: 120
#
# TCP lines (LF and CRLF), RFC 6587 octet counting, HTTP (bearer and HMAC auth,
# arrays with a bad element), syslog over UDP and TCP sent by util-linux
# logger(1), a peer-address allow list, and SIGTERM: asserts the exact events
# on callpipe.events, the exact dead letters with their reasons, the HTTP
# answers, and the exit status.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh
CALLPIPE=$BUILD/callpipe
DUMP=$BUILD/tools/topic_dump

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ingest_basic.XXXXXX")
ing_pid=
cleanup() {
    [ -n "$ing_pid" ] && kill -9 "$ing_pid" 2>/dev/null
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    [ -f "$tmp/ingest.log" ] && tail -n 30 "$tmp/ingest.log"
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

devbroker_start "$tmp/broker" -b 3 -t callpipe.events:6 -t callpipe.deadletter:2
P_TCP=$(free_port) P_HTTP=$(free_port) P_HMAC=$(free_port) P_UDP=$(free_port)
P_STCP=$(free_port) P_DENY=$(free_port) P_ADMIN=$(free_port)
export ING_TOKEN=tok-$RANDOM$RANDOM ING_HMAC=key-$RANDOM$RANDOM
cat >"$tmp/ingest.yaml" <<YAML
threads: 2
admin: 127.0.0.1:$P_ADMIN
kafka:
  brokers: "$DEVBROKER_BOOTSTRAP"
sources:
  - {name: pbx-tcp, org: acme, listen: "127.0.0.1:$P_TCP", allow: "127.0.0.0/8"}
  - {name: pbx-http, org: acme, transport: http, listen: "127.0.0.1:$P_HTTP", token: "env:ING_TOKEN"}
  - {name: pbx-hmac, org: globex, transport: http, listen: "127.0.0.1:$P_HMAC", hmac_secret: "env:ING_HMAC"}
  - {name: pbx-udp, org: acme, transport: syslog-udp, listen: "127.0.0.1:$P_UDP"}
  - {name: pbx-stcp, org: acme, transport: syslog-tcp, listen: "127.0.0.1:$P_STCP"}
  - {name: pbx-deny, org: acme, listen: "127.0.0.1:$P_DENY", allow: "10.9.8.0/24"}
YAML

"$CALLPIPE" ingest -c "$tmp/ingest.yaml" --check-config >"$tmp/check.out" || fail "--check-config"
grep -q "config ok" "$tmp/check.out" || fail "--check-config did not say ok"
grep -q "$ING_TOKEN" "$tmp/check.out" && fail "--check-config printed the token"

"$CALLPIPE" ingest -c "$tmp/ingest.yaml" >"$tmp/ingest.log" 2>&1 &
ing_pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$P_ADMIN/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$P_ADMIN/readyz" >/dev/null || fail "collector not ready"

ev() { # call kind -> one canonical JSON event
    printf '{"call":"%s","kind":"%s","ts":1700000000000000,"queue":"q1"}' "$1" "$2"
}

# TCP: LF, CRLF, a garbage line between good ones, a last line without LF.
{
    ev t1 queue_enter; printf '\n'
    ev t1 agent_connect; printf '\r\n'
    printf 'this is not json\n'
    printf '{"call":"t2","kind":"cdr","ts":1700000000000000,"from_name":"\xc0\xaf"}\n'
    ev t1 call_end
} >"$tmp/tcp.in"
exec 3<>"/dev/tcp/127.0.0.1/$P_TCP"
cat "$tmp/tcp.in" >&3
exec 3>&-
# Octet counting on the same port, detected from the first byte.
frame=$(ev t3 cdr)
exec 3<>"/dev/tcp/127.0.0.1/$P_TCP"
printf '%d %s%d %s' "${#frame}" "$frame" "${#frame}" "$(ev t4 cdr)" >&3
exec 3>&-

# HTTP: bearer token; an array with one bad element; a missing token.
code=$(curl -s -o "$tmp/h1.out" -w '%{http_code}' -H "Authorization: Bearer $ING_TOKEN" \
    --data-binary "[$(ev h1 cdr),{\"call\":\"h2\",\"kind\":\"bogus\",\"ts\":1},$(ev h3 cdr)]" \
    "http://127.0.0.1:$P_HTTP/events")
[ "$code" = 200 ] || fail "http answered $code"
grep -q '"accepted":2,"rejected":1' "$tmp/h1.out" || fail "http body: $(cat "$tmp/h1.out")"
grep -q '"index":1' "$tmp/h1.out" || fail "http body lacks the rejected index"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$(ev h4 cdr)" "http://127.0.0.1:$P_HTTP/")
[ "$code" = 401 ] || fail "no token answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_HTTP/")
[ "$code" = 405 ] || fail "GET answered $code"

# HMAC: right and wrong signatures; Expect: 100-continue as curl sends for big bodies.
body=$(ev m1 cdr)
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$ING_HMAC" -r | cut -d' ' -f1)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Callpipe-Signature: sha256=$sig" \
    -H 'Expect: 100-continue' --data-binary "$body" "http://127.0.0.1:$P_HMAC/")
[ "$code" = 200 ] || fail "hmac answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Callpipe-Signature: sha256=00$sig" \
    --data-binary "$(ev m2 cdr)" "http://127.0.0.1:$P_HMAC/")
[ "$code" = 401 ] || fail "bad hmac answered $code"

# Syslog from a real sender: util-linux logger, RFC 5424 over UDP and octet-counted TCP.
logger --rfc5424 -n 127.0.0.1 -P "$P_UDP" -d -t cdr "$(ev u1 cdr)"
logger --rfc3164 -n 127.0.0.1 -P "$P_UDP" -d -t cdr "$(ev u2 cdr)"
logger --rfc5424 --octet-count -n 127.0.0.1 -P "$P_STCP" -T -t cdr "$(ev s1 cdr)"
logger --rfc5424 -n 127.0.0.1 -P "$P_UDP" -d -t cdr "not json either"

# A peer outside the allow list: dead-lettered, nothing produced.
exec 3<>"/dev/tcp/127.0.0.1/$P_DENY"
ev d1 cdr >&3 || true
exec 3>&- || true

# Expected: t1 x3, t3, t4, h1, h3, m1, u1, u2, s1 = 11 events.
"$DUMP" -b "$DEVBROKER_BOOTSTRAP" -t callpipe.events -n 11 -i 10000 >"$tmp/events.json" ||
    fail "expected 11 events, got $(wc -l <"$tmp/events.json"): $(cat "$tmp/events.json")"
got=$(python3 - "$tmp/events.json" <<'PY'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(sorted(f"{e['pbx']}:{e['call']}:{e['kind']}:{e['org']}" for e in evs)))
ids = [e["event_id"] for e in evs]
assert len(set(ids)) == len(ids), "duplicate event ids"
# Per-call order on TCP: t1's three events in the order sent.
t1 = [e["kind"] for e in evs if e["call"] == "t1"]
assert t1 == ["queue_enter", "agent_connect", "call_end"], t1
PY
) || fail "event check: $got"
want="pbx-hmac:m1:cdr:globex pbx-http:h1:cdr:acme pbx-http:h3:cdr:acme pbx-stcp:s1:cdr:acme pbx-tcp:t1:agent_connect:acme pbx-tcp:t1:call_end:acme pbx-tcp:t1:queue_enter:acme pbx-tcp:t3:cdr:acme pbx-tcp:t4:cdr:acme pbx-udp:u1:cdr:acme pbx-udp:u2:cdr:acme"
[ "$got" = "$want" ] || fail "events differ:
 got: $got
want: $want"

# Dead letters: garbage line, bad UTF-8, bad array element, two auth failures, bad syslog payload, denied peer.
"$DUMP" -d -b "$DEVBROKER_BOOTSTRAP" -t callpipe.deadletter -n 7 -i 10000 >"$tmp/dead.json" ||
    fail "expected 7 dead letters: $(cat "$tmp/dead.json")"
python3 - "$tmp/dead.json" <<'PY' || fail "dead letter check"
import json, sys
dl = [json.loads(l) for l in open(sys.argv[1])]
by = sorted((d["pbx"], d["reason"]) for d in dl)
print("\n".join(f"{p}: {r}" for p, r in by))
pbx = sorted(p for p, _ in by)
assert pbx == ["pbx-deny", "pbx-hmac", "pbx-http", "pbx-http", "pbx-tcp", "pbx-tcp", "pbx-udp"], pbx
reasons = {r for _, r in by}
assert "peer address not allowed" in reasons
assert "missing bearer token" in reasons
assert "bad X-Callpipe-Signature" in reasons
garbage = [d for d in dl if d["raw"] == "this is not json"]
assert len(garbage) == 1 and garbage[0]["peer"].startswith("127.0.0.1:"), garbage
for d in dl:
    assert d["reason"] and d["org"] and d["src"] == "callpipe-json", d
PY

# Metrics name the rejects by reason; SIGTERM drains and exits 0.
curl -sf "http://127.0.0.1:$P_ADMIN/metrics" >"$tmp/metrics.txt"
grep -q 'callpipe_ingest_rejects_total{source="pbx-deny",reason="peer address not allowed"} 1' "$tmp/metrics.txt" ||
    fail "reject metric missing"
grep -q 'callpipe_ingest_events_delivered_total{source="pbx-tcp"} 5' "$tmp/metrics.txt" ||
    fail "delivered metric: $(grep delivered_total "$tmp/metrics.txt")"
kill -TERM "$ing_pid"
rc=0
wait "$ing_pid" || rc=$?
ing_pid=
[ "$rc" = 0 ] || fail "collector exited $rc after SIGTERM"
grep -q "stopped cleanly" "$tmp/ingest.log" || fail "no clean stop"
grep -q "$ING_TOKEN\|$ING_HMAC" "$tmp/ingest.log" && fail "a secret appeared in the log"
echo "ingest_basic: ok"
