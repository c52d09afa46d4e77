# tests/scripts/devbroker.sh - run the dev Kafka broker in the background and send it fault commands.
#
# Source it from a bash test (BUILD selects the build dir, default build/):
#
#   . "$CALLPIPE_ROOT/tests/scripts/devbroker.sh"
#   devbroker_start "$tmp/broker" -b 3 -t callpipe.events:12   # sets DEVBROKER_BOOTSTRAP
#   devbroker_cmd down 2                                       # fails unless the answer is "ok ..."
#   devbroker_cmd up 2
#   devbroker_stop                                             # also safe from an EXIT trap
#
# The broker reads commands from a fifo this shell keeps open, so it never
# sees EOF between commands; its stdout (bootstrap, "ready", one answer per
# command) is in DIR/out and its log in DIR/log.  DIR/bootstrap holds the
# bootstrap servers for other processes.

DEVBROKER_PID=
DEVBROKER_FD=
DEVBROKER_DIR=
DEVBROKER_BOOTSTRAP=
DEVBROKER_ANSWERS=0

devbroker_start() { # DIR [devbroker args...]
    local dir=$1 i
    shift
    local bin=${BUILD:-build}/tools/devbroker
    [ -x "$bin" ] || { echo "devbroker: $bin not built" >&2; return 1; }
    DEVBROKER_DIR=$dir
    mkdir -p "$dir"
    rm -f "$dir/cmd" "$dir/out" "$dir/bootstrap"
    mkfifo "$dir/cmd"
    "$bin" "$@" <"$dir/cmd" >"$dir/out" 2>"$dir/log" &
    DEVBROKER_PID=$!
    # Opening the write end unblocks the broker's open of the read end.
    exec {DEVBROKER_FD}>"$dir/cmd"
    for ((i = 0; i < 300; i++)); do
        if [ "$(sed -n 2p "$dir/out" 2>/dev/null)" = ready ]; then
            DEVBROKER_BOOTSTRAP=$(head -n 1 "$dir/out")
            DEVBROKER_ANSWERS=0
            echo "$DEVBROKER_BOOTSTRAP" >"$dir/bootstrap"
            return 0
        fi
        if ! kill -0 "$DEVBROKER_PID" 2>/dev/null; then
            echo "devbroker: exited during start-up" >&2
            cat "$dir/log" >&2
            DEVBROKER_PID=
            return 1
        fi
        sleep 0.1
    done
    echo "devbroker: not ready after 30 s" >&2
    return 1
}

devbroker_cmd() { # WORDS... ; prints the answer, fails unless it starts with "ok"
    [ -n "$DEVBROKER_PID" ] || { echo "devbroker: not running" >&2; return 1; }
    local want=$((DEVBROKER_ANSWERS + 3)) i answer
    echo "$*" >&"$DEVBROKER_FD"
    for ((i = 0; i < 100; i++)); do
        answer=$(sed -n "${want}p" "$DEVBROKER_DIR/out")
        if [ -n "$answer" ]; then
            DEVBROKER_ANSWERS=$((DEVBROKER_ANSWERS + 1))
            echo "devbroker: $* -> $answer"
            case $answer in ok*) return 0 ;; *) return 1 ;; esac
        fi
        sleep 0.1
    done
    echo "devbroker: no answer to \"$*\"" >&2
    return 1
}

devbroker_stop() { # returns the broker's exit status (0 after a clean SIGTERM)
    local rc=0
    if [ -n "$DEVBROKER_PID" ]; then
        kill -TERM "$DEVBROKER_PID" 2>/dev/null
        wait "$DEVBROKER_PID" 2>/dev/null || rc=$?
        DEVBROKER_PID=
    fi
    if [ -n "$DEVBROKER_FD" ]; then
        exec {DEVBROKER_FD}>&-
        DEVBROKER_FD=
    fi
    return $rc
}
