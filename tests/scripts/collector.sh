# tests/scripts/collector.sh - start `callpipe ingest` in the background and read its metrics (bash tests).
#
#   . "$CALLPIPE_ROOT/tests/scripts/collector.sh"
#   port=$(free_port)
#   collector_start "$tmp/ingest.yaml" "$tmp/ingest.log" ADMIN_PORT  # sets COLLECTOR_PID
#   metric 'callpipe_ingest_kafka_queue_messages'                    # value, or "" if absent
#   metric 'callpipe_ingest_connections{source="pbx-idle"}'
#   wait_until 30 queue_drained                                      # polls a command
#   wait_until 10 metric_is 'callpipe_ingest_events_total{source="x"}' 10
#   proc_kb VmHWM                                                    # from /proc/PID/status
#   collector_kill                                                   # kill -9, safe from an EXIT trap
#
# BUILD selects the build directory (default build/).

COLLECTOR_PID=
COLLECTOR_ADMIN=

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

collector_start() { # CONFIG LOG ADMIN_PORT; waits for /healthz
    local i
    COLLECTOR_ADMIN=$3
    "${BUILD:-build}/callpipe" ingest -c "$1" >>"$2" 2>&1 &
    COLLECTOR_PID=$!
    for ((i = 0; i < 200; i++)); do
        curl -sf "http://127.0.0.1:$COLLECTOR_ADMIN/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$COLLECTOR_PID" 2>/dev/null || { COLLECTOR_PID=; return 1; }
        sleep 0.05
    done
    return 1
}

collector_kill() {
    if [ -n "$COLLECTOR_PID" ]; then
        kill -9 "$COLLECTOR_PID" 2>/dev/null || true
        wait "$COLLECTOR_PID" 2>/dev/null || true
        COLLECTOR_PID=
    fi
    return 0
}

collector_stop() { # SIGTERM, returns the exit status
    local rc=0
    kill -TERM "$COLLECTOR_PID" 2>/dev/null
    wait "$COLLECTOR_PID" || rc=$?
    COLLECTOR_PID=
    return $rc
}

# The text is read whole before awk looks at it: piping curl into an awk that
# exits at the first match fails curl with EPIPE (exit 23) under pipefail.
metrics_text() {
    curl -sf -m 10 "http://127.0.0.1:$COLLECTOR_ADMIN/metrics" 2>/dev/null || true
}

metric() { # exact series name with labels -> value (integer part), "" if absent
    local text
    text=$(metrics_text)
    awk -v s="$1 " 'index($0, s) == 1 { v = $NF; sub(/\..*$/, "", v); print v; exit }' <<<"$text"
}

metric_sum() { # family name -> sum over every series of it (0 if none)
    local text
    text=$(metrics_text)
    awk -v f="$1" 'index($0, f "{") == 1 || $1 == f { s += $NF } END { printf "%d\n", s }' \
        <<<"$text"
}

metric_is() { # SERIES VALUE: true when the series has that value now (for wait_until)
    [ "$(metric "$1")" = "$2" ]
}

metric_ge() { # SERIES VALUE: true when the series is at least VALUE now
    local v
    v=$(metric "$1")
    [ -n "$v" ] && [ "$v" -ge "$2" ]
}

queue_drained() { # every record handed to the producer was acknowledged
    [ "$(metric callpipe_ingest_kafka_queue_messages)" = 0 ]
}

wait_until() { # SECONDS COMMAND...; polls every 0.1 s
    local deadline=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

proc_kb() { # FIELD [PID] -> kB from /proc/PID/status (VmRSS, VmHWM)
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/${2:-$COLLECTOR_PID}/status"
}
