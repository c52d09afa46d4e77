# tests/demo/stack.sh - start and stop the whole local pipeline (bash library for demo.sh, e2e.sh, bench).
#
#   . tests/demo/stack.sh
#   stack_init DIR                 # DIR: fresh work dir under /tmp (pg socket path must be short)
#   stack_start                    # PostgreSQL, dev broker, Salesforce emulator, ingest, aggregator, loader
#   stack_sim run ARGS...          # the PBX simulator against this stack's collector
#   stack_wait_idle SECONDS        # every event consumed, no open call, every outbox row done
#   stack_stop                     # SIGTERM every service in reverse order, stop PostgreSQL
#   stack_test NAME                # tests: work dir, cleanup on exit (KEEP_TMP=1 keeps it), fail()
#
# Knobs (environment): STACK_PBX (40), STACK_SEED (1), STACK_PARTS (12 partitions),
# STACK_FLUSH (aggregator flush_interval, 200ms), STACK_LINGER (collector linger, 5ms),
# STACK_WIRES (what the PBXs speak: pbxsim -F, default "json"; "all" = every vendor format),
# STACK_WRAPUP_WAIT (aggregator wrapup_wait, 2m), STACK_UNENDED_WAIT (aggregator unended_wait,
# 10m), STACK_AGG_EXTRA (more aggregator.yaml lines), STACK_SOURCES_EXTRA (more collector
# sources, "  - {...}" lines), BUILD, CALLPIPE_ROOT.
# Everything listens on 127.0.0.1 only; PIDs are in DIR/pids (one "name pid" per line) so
# another shell can stop the stack (demo.sh stop).
#
# The tenant orgs of the simulator and where their calls go in Salesforce:
#   acme            -> sf-service (VoiceCall, JWT bearer)
#   globex, initech -> sf-sales   (Task, JWT bearer)
STACK_ROUTES=("acme||sf-service" "globex||sf-sales" "initech||sf-sales")
STACK_SF_ORGS=(sf-service sf-sales)

ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
PSQL=/usr/lib/postgresql/15/bin/psql

stack_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stack_log() { echo "[$(date +%H:%M:%S)] $*"; }

stack_init() { # DIR
    S=$1
    mkdir -p "$S"
    : >"$S/pids"
    STACK_PBX=${STACK_PBX:-40}
    STACK_SEED=${STACK_SEED:-1}
    STACK_PARTS=${STACK_PARTS:-12}
    STACK_FLUSH=${STACK_FLUSH:-200ms}
    STACK_WIRES=${STACK_WIRES:-json}
    STACK_WRAPUP_WAIT=${STACK_WRAPUP_WAIT:-2m}
}

stack_pid() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$S/pids"; }

stack_bg() { # NAME LOG COMMAND... : start in the background, record the pid
    local name=$1 log=$2
    shift 2
    "$@" >>"$log" 2>&1 &
    echo "$name $!" >>"$S/pids"
}

stack_wait_http() { # URL NAME SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        curl -sf -m 2 "$1" >/dev/null 2>&1 && return 0
        kill -0 "$(stack_pid "$2")" 2>/dev/null || { echo "$2 exited during start-up:" >&2; tail -n 20 "$S/$2.log" >&2; return 1; }
        sleep 0.1
    done
    echo "$2 not ready after $3 s" >&2
    return 1
}

stack_q() { "$PSQL" -X -q -tA -v ON_ERROR_STOP=1 -d "$STACK_DSN" -c "$1"; }

stack_start_pg() {
    STACK_DSN=$("$ROOT/tests/scripts/pg.sh" start "$S/pg") || return 1
    . "$S/pg/env"
    "$BUILD/callpipe" migrate --dsn "$STACK_DSN" >"$S/migrate.log" 2>&1 || { cat "$S/migrate.log" >&2; return 1; }
    # Two queues with their own service-level goals; everything else uses the global default (20 s).
    stack_q "INSERT INTO queue_settings (org, queue, valid_from, sl_threshold_ms, sl_compare, short_abandon_ms)
             VALUES ('acme', 'support', '-infinity', 30000, '<=', 5000),
                    ('globex', '*', '-infinity', 15000, '<', 3000)
             ON CONFLICT DO NOTHING"
}

stack_start_broker() {
    # The dev broker reads commands from a fifo; a sleeping writer keeps it open so that the
    # broker survives this shell (DEMO_KEEP) - EOF would not stop it either, but commands could
    # not be sent without it.
    mkdir -p "$S/broker"
    rm -f "$S/broker/cmd"
    mkfifo "$S/broker/cmd"
    "$BUILD/tools/devbroker" -b 1 -t "callpipe.events:$STACK_PARTS" -t callpipe.deadletter:2 \
        <"$S/broker/cmd" >"$S/broker/out" 2>"$S/devbroker.log" &
    echo "devbroker $!" >>"$S/pids"
    sleep infinity >"$S/broker/cmd" &
    echo "fifo-holder $!" >>"$S/pids"
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(sed -n 2p "$S/broker/out" 2>/dev/null)" = ready ] && break
        sleep 0.1
    done
    [ "$(sed -n 2p "$S/broker/out")" = ready ] || { echo "dev broker not ready" >&2; cat "$S/devbroker.log" >&2; return 1; }
    STACK_BOOTSTRAP=$(head -n 1 "$S/broker/out")
}

stack_start_sfemu() {
    openssl genrsa -out "$S/jwt_key.pem" 2048 2>/dev/null &&
        openssl rsa -in "$S/jwt_key.pem" -pubout -out "$S/jwt_pub.pem" 2>/dev/null ||
        { echo "could not make a JWT key with openssl" >&2; return 1; }
    chmod 600 "$S/jwt_key.pem"
    STACK_SF_PORT=$(stack_free_port)
    STACK_SF_LOGIN=http://127.0.0.1:$STACK_SF_PORT
    cat >"$S/sfemu.yaml" <<EOF
host: 127.0.0.1
port: $STACK_SF_PORT
log_level: warn
rows_per_s: 0
queue_delay: 100ms
orgs:
  - name: sf-service
    audience: "$STACK_SF_LOGIN"
    users: [{username: integration@service.example}]
    apps: [{consumer_key: callpipe-service, public_key_file: "$S/jwt_pub.pem"}]
    custom_fields:
      - {object: VoiceCall, name: Callpipe_Key__c, external_id: true, unique: true}
  - name: sf-sales
    audience: "$STACK_SF_LOGIN"
    users: [{username: integration@sales.example}]
    apps: [{consumer_key: callpipe-sales, public_key_file: "$S/jwt_pub.pem"}]
    custom_fields:
      - {object: Task, name: Callpipe_Key__c, external_id: true, unique: true}
EOF
    stack_bg sfemu "$S/sfemu.log" "$BUILD/tools/sfemu" -c "$S/sfemu.yaml"
    stack_wait_http "$STACK_SF_LOGIN/__emu/healthz" sfemu 10
}

stack_start_ingest() {
    export PBXSIM_TOKEN=demo-$RANDOM$RANDOM$RANDOM
    echo "$PBXSIM_TOKEN" >"$S/token"
    chmod 600 "$S/token"
    "$BUILD/tools/pbxsim" plan -P "$STACK_PBX" -s "$STACK_SEED" -F "$STACK_WIRES" -D "$S/drop" \
        -o "$S/plan.txt" -y "$S/sources.yaml" || return 1
    STACK_ING_ADMIN=$(stack_free_port)
    {
        echo "threads: 2"
        echo "admin: 127.0.0.1:$STACK_ING_ADMIN"
        echo "kafka: {brokers: \"$STACK_BOOTSTRAP\", linger: ${STACK_LINGER:-5ms}}"
        cat "$S/sources.yaml"
        [ -z "${STACK_SOURCES_EXTRA:-}" ] || echo "$STACK_SOURCES_EXTRA"
    } >"$S/ingest.yaml"
    stack_bg ingest "$S/ingest.log" "$BUILD/callpipe" ingest -c "$S/ingest.yaml"
    stack_wait_http "http://127.0.0.1:$STACK_ING_ADMIN/readyz" ingest 30
}

stack_start_aggregator() {
    STACK_AGG_ADMIN=$(stack_free_port)
    {
        echo "admin: 127.0.0.1:$STACK_AGG_ADMIN"
        echo "log_level: info"
        echo "kafka: {brokers: \"$STACK_BOOTSTRAP\", session_timeout: 6s, heartbeat: 500ms}"
        echo "postgres: {dsn: \"$CALLPIPE_PG_WRITER_DSN\"}"
        echo "flush_interval: $STACK_FLUSH"
        echo "wrapup_wait: $STACK_WRAPUP_WAIT"
        echo "unended_wait: ${STACK_UNENDED_WAIT:-10m}"
        [ -z "${STACK_AGG_EXTRA:-}" ] || echo "$STACK_AGG_EXTRA"
        echo "routes:"
        local r o qs ts
        for r in "${STACK_ROUTES[@]}"; do
            IFS='|' read -r o qs ts <<<"$r"
            echo "  - {org: $o, targets: \"$ts\"}"
        done
    } >"$S/aggregator.yaml"
    stack_bg aggregator "$S/aggregator.log" "$BUILD/callpipe" aggregator -c "$S/aggregator.yaml"
    stack_wait_http "http://127.0.0.1:$STACK_AGG_ADMIN/healthz" aggregator 30
}

stack_start_loader() {
    STACK_LD_ADMIN=$(stack_free_port)
    cat >"$S/loader.yaml" <<EOF
log_level: info
admin: 127.0.0.1:$STACK_LD_ADMIN
postgres: {dsn: "$CALLPIPE_PG_WRITER_DSN"}
claim_interval: 500ms
orgs:
  - name: sf-service
    login_url: "$STACK_SF_LOGIN"
    auth: jwt
    client_id: callpipe-service
    username: integration@service.example
    private_key: "file:$S/jwt_key.pem"
    api_version: "62.0"
    object: VoiceCall
    operation: insert
    key_field: Callpipe_Key__c
    poll_interval: 200ms
    poll_max: 1s
    fields:
      - {field: Callpipe_Key__c, transform: key}
      - {field: VendorCallKey, source: call_id}
      - {field: CallStartDateTime, source: started_at, transform: datetime}
      - {field: CallEndDateTime, source: ended_at, transform: datetime}
      - {field: CallDurationInSeconds, source: duration_ms, transform: seconds}
      # CallType and ToPhoneNumber are required on VoiceCall.  Asterisk and some CUCM records
      # do not say the direction, queue_log not the dialled number; this org's calls are
      # inbound service calls to its main number: book unknowns so (an operator's choice).
      - {field: CallType, source: direction, transform: picklist, default: Inbound,
         map: "inbound=Inbound,outbound=Outbound,internal=InternalCall"}
      - {field: CallDisposition, source: disposition, transform: picklist,
         map: "answered=completed,*=failed"}
      - {field: FromPhoneNumber, source: from_number, transform: e164, country: "49"}
      - {field: ToPhoneNumber, source: to_number, transform: e164, country: "49",
         default: "+494000000000"}
      - {field: QueueName, source: queue}
      - {field: CallCenterId, transform: constant, value: "04v000000000001AAA"}
  - name: sf-sales
    login_url: "$STACK_SF_LOGIN"
    auth: jwt
    client_id: callpipe-sales
    username: integration@sales.example
    private_key: "file:$S/jwt_key.pem"
    api_version: "62.0"
    object: Task
    operation: upsert
    external_id_field: Callpipe_Key__c
    poll_interval: 200ms
    poll_max: 1s
    fields:
      - {field: Callpipe_Key__c, transform: key}
      - {field: Subject, transform: constant, value: Call}
      - {field: Status, transform: constant, value: Completed}
      - {field: TaskSubtype, transform: constant, value: Call}
      - {field: CallObject, source: call_id}
      - {field: CallType, source: direction, transform: picklist,
         map: "inbound=Inbound,outbound=Outbound,internal=Internal"}
      - {field: CallDurationInSeconds, source: talk_ms, transform: seconds}
      - {field: CallDisposition, source: disposition, max_length: 255}
      - {field: ActivityDate, source: ended_at, transform: date}
EOF
    "$BUILD/callpipe" loader -c "$S/loader.yaml" --check >"$S/loader-check.log" 2>&1 ||
        { echo "loader --check failed:" >&2; cat "$S/loader-check.log" >&2; return 1; }
    stack_bg loader "$S/loader.log" "$BUILD/callpipe" loader -c "$S/loader.yaml"
    stack_wait_http "http://127.0.0.1:$STACK_LD_ADMIN/healthz" loader 30
}

stack_start() {
    local f
    for f in "$BUILD/callpipe" "$BUILD/tools/devbroker" "$BUILD/tools/sfemu" "$BUILD/tools/pbxsim"; do
        [ -x "$f" ] || { echo "no $f: build first (make BUILD=${BUILD#$ROOT/})" >&2; return 1; }
    done
    stack_start_pg || return 1
    stack_log "PostgreSQL 15 on $S/pg/sock (private cluster, schema migrated)"
    stack_start_broker || return 1
    stack_log "dev Kafka broker on $STACK_BOOTSTRAP (callpipe.events: $STACK_PARTS partitions)"
    stack_start_sfemu || return 1
    stack_log "Salesforce emulator on $STACK_SF_LOGIN: sf-service (VoiceCall), sf-sales (Task)"
    stack_start_ingest || return 1
    stack_log "collector: $STACK_PBX PBX sources ($(awk '{print $3}' "$S/plan.txt" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')), admin http://127.0.0.1:$STACK_ING_ADMIN"
    stack_start_aggregator || return 1
    stack_log "aggregator: admin http://127.0.0.1:$STACK_AGG_ADMIN"
    stack_start_loader || return 1
    stack_log "loader: admin http://127.0.0.1:$STACK_LD_ADMIN"
    {
        echo "STACK_DSN='$STACK_DSN'"
        echo "STACK_SF_LOGIN='$STACK_SF_LOGIN'"
        echo "STACK_BOOTSTRAP='$STACK_BOOTSTRAP'"
    } >"$S/stack.env"
}

stack_sim() { # run ARGS... (plan, seed and PBX count come from the stack)
    local cmd=$1
    shift
    PBXSIM_TOKEN=$(cat "$S/token") "$BUILD/tools/pbxsim" "$cmd" --plan "$S/plan.txt" \
        -P "$STACK_PBX" -s "$STACK_SEED" "$@"
}

stack_sf_count() { # ORG OBJECT -> number of records in the emulator
    curl -sf "$STACK_SF_LOGIN/__emu/orgs/$1" |
        python3 -c "import json,sys; print(json.load(sys.stdin)['$2_records'])"
}

# Done = every produced event consumed (offsets at the partition ends), no open call, and no
# outbox row still waiting for Salesforce.  EVENTS is what the simulator sent.
stack_wait_idle() { # SECONDS EVENTS
    local deadline=$((SECONDS + $1)) st off nopen npend
    while :; do
        st=$(stack_q "SELECT (SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets),
                             (SELECT count(*) FROM open_calls),
                             (SELECT count(*) FROM sf_outbox WHERE state NOT IN ('done', 'dead'))" 2>/dev/null || echo "")
        IFS='|' read -r off nopen npend <<<"$st"
        if [ "${off:-0}" -ge "$2" ] && [ "${nopen:-1}" = 0 ] && [ "${npend:-1}" = 0 ]; then
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "not idle after $1 s: offsets ${off:-?}/$2, open calls ${nopen:-?}, outbox pending ${npend:-?}" >&2
            return 1
        fi
        sleep 0.5
    done
}

# The collector's counter summed over its sources (from /metrics).
stack_ingest_metric() { # NAME
    curl -sf -m 5 "http://127.0.0.1:$STACK_ING_ADMIN/metrics" |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

# Done for vendor formats, where a record is not one event: CALLS rows written (the ground
# truth's count), every event the collector delivered consumed, no open call, no outbox row
# waiting for Salesforce.
stack_wait_calls() { # SECONDS CALLS
    local deadline=$((SECONDS + $1)) st off ncalls nopen npend dlv
    while :; do
        dlv=$(stack_ingest_metric callpipe_ingest_events_delivered_total 2>/dev/null || echo "")
        st=$(stack_q "SELECT (SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets),
                             (SELECT count(*) FROM calls), (SELECT count(*) FROM open_calls),
                             (SELECT count(*) FROM sf_outbox WHERE state NOT IN ('done', 'dead'))" 2>/dev/null || echo "")
        IFS='|' read -r off ncalls nopen npend <<<"$st"
        if [ -n "$dlv" ] && [ "${off:-0}" -ge "$dlv" ] && [ "${ncalls:-0}" -ge "$2" ] &&
            [ "${nopen:-1}" = 0 ] && [ "${npend:-1}" = 0 ]; then
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "not idle after $1 s: offsets ${off:-?}/${dlv:-?} delivered, calls ${ncalls:-?}/$2, open calls ${nopen:-?}, outbox pending ${npend:-?}" >&2
            return 1
        fi
        sleep 0.5
    done
}

stack_stop() { # SIGTERM in reverse start order; each service drains and exits 0
    local rc=0 name pid i
    [ -n "${S:-}" ] && [ -f "$S/pids" ] || return 0
    while read -r name pid; do
        kill -0 "$pid" 2>/dev/null || continue
        local child=0 r=0
        [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$$" ] && child=1
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$name (pid $pid) did not stop in 30 s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            rc=1
        fi
        # Our own children report their exit status: a service must exit 0 on SIGTERM.
        if [ $child = 1 ]; then
            wait "$pid" 2>/dev/null || r=$?
            if [ $r != 0 ] && [ "$name" != fifo-holder ]; then
                echo "$name exited $r on SIGTERM" >&2
                rc=1
            fi
        fi
    done < <(tac "$S/pids")
    : >"$S/pids"
    if [ -d "$S/pg" ]; then
        "$ROOT/tests/scripts/pg.sh" stop "$S/pg" >/dev/null 2>&1 || true
    fi
    return $rc
}

# For test scripts: a fresh work dir under /tmp, everything stopped and removed on exit (kept
# with KEEP_TMP=1), and fail MESSAGE, which prints the services' last log lines and exits 1.
stack_test() { # NAME
    stack_init "$(mktemp -d "/tmp/callpipe-$1.XXXXXX")"
    chmod 755 "$S"
    trap stack_test_cleanup EXIT
}

stack_test_cleanup() {
    stack_stop >/dev/null 2>&1 || true
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $S"; else stack_destroy >/dev/null 2>&1 || true; fi
}

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$S"/ingest.log "$S"/aggregator.log "$S"/loader.log "$S"/pbxsim.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}

stack_destroy() {
    stack_stop || true
    [ -d "$S/pg" ] && "$ROOT/tests/scripts/pg.sh" destroy "$S/pg" >/dev/null 2>&1
    rm -rf "$S"
}
