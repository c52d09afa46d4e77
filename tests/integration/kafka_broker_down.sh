#!/usr/bin/env bash
# kafka_broker_down.sh - 200,000 numbered messages survive a partition leader being down for 10 s.
# timeout: 110
#
# An idempotent producer (cp_kafka's producer config) sends numbered messages
# through the dev broker (3 brokers); when half are delivered, broker 2, the
# leader of a third of the partitions, goes down for 10 s while production
# goes on.  Every delivery report must succeed; then a consumer group reads
# the topic back: no gap, no duplicate, order kept per partition.
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
. tests/scripts/devbroker.sh

N=${KAFKA_VERIFY_N:-200000}
RATE=${KAFKA_VERIFY_RATE:-25000}
DOWN_S=10
TOPIC=callpipe.verify
# 12 partitions keep every message in the mock's per-partition store
# (5 MB / 100,000 message sets each), so the whole topic can be re-read.
PARTS=12
VERIFY=$BUILD/tools/kafka_verify

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kafka_broker_down.XXXXXX")
prod_pid=
cleanup() {
    [ -n "$prod_pid" ] && kill "$prod_pid" 2>/dev/null
    devbroker_stop || true
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in produce.out produce.log consume.out consume.log broker/log; do
        [ -s "$tmp/$f" ] && { echo "--- $f"; tail -n 20 "$tmp/$f"; }
    done
    exit 1
}

devbroker_start "$tmp/broker" -b 3 -t "$TOPIC:$PARTS" || fail "dev broker did not start"
echo "bootstrap: $DEVBROKER_BOOTSTRAP"
# Pin leadership so broker 2 certainly leads partitions 1, 4, 7, 10, and keep
# the group coordinator on a broker that stays up.
for ((p = 0; p < PARTS; p++)); do
    devbroker_cmd leader "$TOPIC" "$p" $((p % 3 + 1)) >/dev/null || fail "leader $p"
done
devbroker_cmd coord group kafka_verify 1 || fail "coordinator"

start=$SECONDS
"$VERIFY" produce -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -n "$N" -r "$RATE" \
    -m $((N / 2)):"$tmp/half" -T 80 >"$tmp/produce.out" 2>"$tmp/produce.log" &
prod_pid=$!

for ((i = 0; i < 600; i++)); do
    [ -e "$tmp/half" ] && break
    kill -0 "$prod_pid" 2>/dev/null || fail "producer exited before half were delivered"
    sleep 0.05
done
[ -e "$tmp/half" ] || fail "half the messages not delivered within 30 s"
kill -0 "$prod_pid" 2>/dev/null || fail "producer finished before the broker went down"
# The mock (librdkafka 2.0.2) drops retried batches by sequence number only
# for transactional producers: a batch it appended whose response is cut off
# by "down" comes back from the idempotent producer's retry as a duplicate a
# real broker would have dropped.  So first let every Produce request fail
# unappended (a retriable, not-persisted error) long enough for the answers
# to earlier appends to arrive, then cut the broker.
devbroker_cmd errors Produce 100000 NOT_ENOUGH_REPLICAS || fail "errors"
sleep 0.5
devbroker_cmd down 2 || fail "down 2"
devbroker_cmd clear Produce || fail "clear"
echo "broker 2 down at $((SECONDS - start)) s after $(cat "$tmp/half")"
sleep "$DOWN_S"
# Production must still be waiting on broker 2's partitions, or the outage proved nothing.
kill -0 "$prod_pid" 2>/dev/null || fail "producer finished while broker 2 was down"
devbroker_cmd up 2 || fail "up 2"

prod_rc=0
wait "$prod_pid" || prod_rc=$?
prod_pid=
cat "$tmp/produce.out"
[ "$prod_rc" -eq 0 ] || fail "producer check failed (rc=$prod_rc)"
echo "produced in $((SECONDS - start)) s"

cons_rc=0
"$VERIFY" consume -b "$DEVBROKER_BOOTSTRAP" -t "$TOPIC" -n "$N" -g kafka_verify -T 60 \
    >"$tmp/consume.out" 2>"$tmp/consume.log" || cons_rc=$?
cat "$tmp/consume.out"
[ "$cons_rc" -eq 0 ] || fail "consumer check failed (rc=$cons_rc)"

broker_rc=0
devbroker_stop || broker_rc=$?
[ "$broker_rc" -eq 0 ] || fail "dev broker exited with $broker_rc"
echo "ok: $N messages, broker 2 down for $DOWN_S s, total $((SECONDS - start)) s"
