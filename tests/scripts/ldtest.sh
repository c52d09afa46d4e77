# tests/scripts/ldtest.sh - shared set-up of the loader tests (source it): PostgreSQL, the emulator, calls, loader config.
#
#   . tests/scripts/ldtest.sh
#   ld_setup                     # $WORK, private PostgreSQL (migrated), keys, the emulator (2 orgs)
#   ld_calls N                   # N calls into calls + 2 outbox rows each (service, sales), by SQL
#   ld_config FILE [k: v ...]    # loader YAML for both orgs (extra top-level/org keys via env)
#   ld_start FILE / ld_kill / ld_wait_done N   # run the loader, SIGKILL it, wait until N rows done
#   ld_compare [args]            # tests/tools/sf_compare.py against PostgreSQL and the emulator
#
# Orgs: "service" (VoiceCall insert, JWT bearer) and "sales" (Task upsert, client credentials on
# its My Domain).  The field mapping is JSON ($LD_MAP_SERVICE, $LD_MAP_SALES): the loader reads
# it as YAML flow style and sf_compare.py reads the very same text, then computes every expected
# value itself from the calls row.  Callers set a trap that runs ld_cleanup.
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
CP=$BUILD/callpipe
PGSH=$ROOT/tests/scripts/pg.sh
PSQL=/usr/lib/postgresql/15/bin/psql
. "$ROOT/tests/scripts/sfemu.sh"

LD_PID=
LD_RUN=0
LD_SECRET=cs-$RANDOM$RANDOM$RANDOM
export LD_TEST_SALES_SECRET=$LD_SECRET

LD_MAP_SERVICE='[
 {"field": "Callpipe_Key__c", "transform": "key"},
 {"field": "VendorCallKey", "source": "call_id"},
 {"field": "CallStartDateTime", "source": "started_at", "transform": "datetime"},
 {"field": "CallEndDateTime", "source": "ended_at", "transform": "datetime"},
 {"field": "CallDurationInSeconds", "source": "duration_ms", "transform": "seconds"},
 {"field": "CallType", "source": "direction", "transform": "picklist",
  "map": "inbound=Inbound,outbound=Outbound,internal=InternalCall"},
 {"field": "CallDisposition", "source": "disposition", "transform": "picklist",
  "map": "answered=completed,*=failed"},
 {"field": "FromPhoneNumber", "source": "from_number", "transform": "e164", "country": "49"},
 {"field": "ToPhoneNumber", "source": "to_number", "transform": "e164", "country": "49"},
 {"field": "QueueName", "source": "queue"},
 {"field": "VendorType", "transform": "constant", "value": "ContactCenter"}]'
LD_MAP_SALES='[
 {"field": "Callpipe_Key__c", "transform": "key"},
 {"field": "Subject", "transform": "constant", "value": "Call"},
 {"field": "Status", "transform": "constant", "value": "Completed"},
 {"field": "TaskSubtype", "transform": "constant", "value": "Call"},
 {"field": "CallObject", "source": "call_id"},
 {"field": "CallType", "source": "direction", "transform": "picklist",
  "map": "inbound=Inbound,outbound=Outbound,internal=Internal"},
 {"field": "CallDurationInSeconds", "source": "talk_ms", "transform": "seconds"},
 {"field": "CallDisposition", "source": "wrapup", "max_length": 40},
 {"field": "ActivityDate", "source": "ended_at", "transform": "date"},
 {"field": "Description", "source": "from_name"}]'

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
T0=$SECONDS
say() { echo "[$((SECONDS - T0))s] $*"; }

ld_cleanup() {
    [ -n "$LD_PID" ] && kill -KILL "$LD_PID" 2>/dev/null && wait "$LD_PID" 2>/dev/null
    sfemu_stop || true
    [ -n "${PGDIR:-}" ] && "$PGSH" destroy "$PGDIR" >/dev/null 2>&1
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    return 0
}

ld_fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$WORK"/loader-*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; grep -v ' INFO ' "$f" | tail -n 15 >&2; tail -n 5 "$f" >&2; }
    done
    [ -f "$WORK/emu/stderr" ] && { echo "--- emulator" >&2; tail -n 10 "$WORK/emu/stderr" >&2; }
    exit 1
}

q() { "$PSQL" -X -q -tA -v ON_ERROR_STOP=1 -d "$DSN" -c "$1"; }

# The emulator config; EMU_EXTRA is appended at the top level (faults: ...).
ld_emu_config() {
    cat <<YAML
rows_per_s: ${EMU_RATE:-100000}
queue_delay: 100ms
${EMU_EXTRA:-}
orgs:
  - name: service
    users: [{username: loader@service.example}]
    apps: [{consumer_key: CK_SERVICE, public_key_file: $WORK/jwt_pub.pem}]
    custom_fields:
      # Not unique on purpose: a duplicate insert must show up as a second record.
      - {object: VoiceCall, name: Callpipe_Key__c, external_id: true, unique: false, length: 80}
  - name: sales
    users: [{username: loader@sales.example}]
    apps: [{consumer_key: CK_SALES, client_secret: $LD_SECRET}]
    custom_fields:
      - {object: Task, name: Callpipe_Key__c, external_id: true, unique: true, length: 80}
YAML
}

ld_setup() {
    for f in "$CP" "$BUILD/tools/sfemu"; do [ -x "$f" ] || { echo "no $f: build first" >&2; exit 1; }; done
    WORK=$(mktemp -d /tmp/callpipe-ldtest.XXXXXX)
    PGDIR=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
    DSN=$("$PGSH" start "$PGDIR")
    "$CP" migrate --dsn "$DSN" >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; ld_fail migrate; }
    . "$PGDIR/env"
    sfemu_keys "$WORK"
    ld_emu_config >"$WORK/sfemu.yaml"
    sfemu_start "$WORK/emu" "$WORK/sfemu.yaml" || ld_fail "emulator did not start"
    EMU_SERVICE=$(sfemu_url service)
    EMU_SALES=$(sfemu_url sales)
    P_ADMIN=$(free_port)
}

# N calls (deterministic) with values that exercise every transform and CSV quoting; each call
# gets an outbox row for both orgs.  Whole milliseconds everywhere (Salesforce keeps ms).
ld_calls() {
    local n=$1
    q "INSERT INTO calls (org, pbx, call_id, ended_at, direction, from_number, from_name, to_number,
            queue, started_at, talk_ms, disposition, wrapup, source)
       SELECT CASE WHEN i % 4 = 0 THEN 'globex' ELSE 'acme' END,
              'pbx-' || (i % 3),
              CASE WHEN i % 997 = 0 THEN 'long-' || repeat('x', 80) || '-' || i ELSE 'c' || i END,
              e,
              (ARRAY['inbound', 'outbound', 'internal'])[1 + i % 3],
              CASE i % 6 WHEN 0 THEN '030 1234' || lpad(i::text, 6, '0')
                         WHEN 1 THEN '+49 89 ' || lpad(i::text, 7, '0')
                         WHEN 2 THEN '0049' || (4000000000 + i)
                         WHEN 3 THEN 'sip:' || (100 + i % 900) || '@pbx.example'
                         WHEN 4 THEN '(0)' || i
                         ELSE 'tel:+1-555-' || lpad((i % 10000000)::text, 7, '0') END,
              CASE i % 7 WHEN 0 THEN NULL
                         WHEN 1 THEN 'Müller, \"Hans\" ✓'
                         WHEN 2 THEN E'line one\nline two ' || i
                         WHEN 3 THEN ''
                         ELSE 'Caller ' || i END,
              CASE WHEN i % 11 = 0 THEN '200' ELSE '+4930' || lpad((i % 100000)::text, 7, '0') END,
              CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN 'support, tier \"2\"' WHEN 2 THEN 'Küche'
                         ELSE 'q' || (i % 13) END,
              e - ((1500 + (i * 7919) % 3600000) * interval '1 ms'),
              CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 104729) % 900000 END,
              (ARRAY['answered', 'no_answer', 'busy', 'failed'])[1 + i % 4],
              CASE WHEN i % 8 = 0 THEN NULL ELSE 'wrap-' || (i % 17) || repeat('é', (i % 50)::int) END,
              'callpipe-json'
       FROM (SELECT i, timestamptz '2026-03-01 00:00:00+00' + (i * 1237) * interval '1 ms' AS e
             FROM generate_series(1::bigint, $n) i) g"
    q "INSERT INTO sf_outbox (org, pbx, call_id, ended_at, target_org)
       SELECT org, pbx, call_id, ended_at, t FROM calls, (VALUES ('service'), ('sales')) v(t)"
}

# ld_config FILE: the loader configuration (ORG_EXTRA is added to each org, e.g. max_records).
ld_config() {
    local file=$1
    cat >"$file" <<YAML
log_level: ${LD_LOG_LEVEL:-info}
admin: 127.0.0.1:$P_ADMIN
postgres:
  dsn: "$CALLPIPE_PG_WRITER_DSN"
claim_interval: 200ms
http_timeout: 30s
orgs:
  - name: service
    login_url: ${LD_LOGIN_SERVICE:-$SFEMU_LOGIN}
    audience: https://login.salesforce.com
    auth: jwt
    client_id: CK_SERVICE
    username: loader@service.example
    private_key: file:$WORK/jwt_key.pem
    api_version: "62.0"
    object: VoiceCall
    operation: insert
    key_field: Callpipe_Key__c
    max_records: ${SERVICE_MAX_RECORDS:-10000}
    max_jobs: 2
    poll_interval: 100ms
    poll_max: 500ms
    retry_backoff: 200ms
    retry_max: 2s
    quota_pause: 1s
${ORG_EXTRA_SERVICE:-}
    fields: $(printf '%s' "$LD_MAP_SERVICE" | sed '2,$s/^/      /')
  - name: sales
    login_url: ${LD_LOGIN_SALES:-$EMU_SALES}
    auth: client_credentials
    client_id: CK_SALES
    client_secret: env:LD_TEST_SALES_SECRET
    api_version: "62.0"
    object: Task
    operation: upsert
    external_id_field: Callpipe_Key__c
    max_records: 10000
    max_bytes: ${SALES_MAX_BYTES:-400000}
    max_jobs: 2
    poll_interval: 100ms
    poll_max: 500ms
    retry_backoff: 200ms
    retry_max: 2s
    quota_pause: 1s
${ORG_EXTRA_SALES:-}
    fields: $(printf '%s' "$LD_MAP_SALES" | sed '2,$s/^/      /')
YAML
}

ld_start() { # config
    LD_RUN=$((LD_RUN + 1))
    "$CP" loader -c "$1" >"$WORK/loader-$LD_RUN.log" 2>&1 &
    LD_PID=$!
}

ld_kill() {
    [ -n "$LD_PID" ] || return 0
    kill -KILL "$LD_PID" 2>/dev/null || true
    wait "$LD_PID" 2>/dev/null || true
    LD_PID=
}

ld_stop() { # SIGTERM: must exit 0
    local rc=0
    kill -TERM "$LD_PID"
    wait "$LD_PID" || rc=$?
    LD_PID=
    [ "$rc" = 0 ] || ld_fail "loader exited $rc after SIGTERM"
}

# Rows not yet settled (pending, retry or in flight).
ld_open_rows() { q "SELECT count(*) FROM sf_outbox WHERE state NOT IN ('done', 'dead')"; }

# Waits up to $2 seconds for every outbox row to be settled; restarts a loader that died.
ld_wait_settled() { # config timeout
    local deadline=$((SECONDS + $2)) left
    while :; do
        left=$(ld_open_rows)
        [ "$left" = 0 ] && return 0
        [ $SECONDS -lt $deadline ] || ld_fail "$left outbox rows still open after $2 s"
        if [ -n "$LD_PID" ] && ! kill -0 "$LD_PID" 2>/dev/null; then
            ld_fail "the loader exited by itself"
        fi
        sleep 0.5
    done
}

ld_compare() { python3 "$ROOT/tests/tools/sf_compare.py" --dsn "$DSN" --emu "$SFEMU_LOGIN" \
    --map service="$LD_MAP_SERVICE" --map sales="$LD_MAP_SALES" "$@"; }
