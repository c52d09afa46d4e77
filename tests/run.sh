#!/usr/bin/env bash
# tests/run.sh - the top-level test runner behind `make check`.
#
#   tests/run.sh                 every suite: unit, integration, fuzz (short)
#   tests/run.sh unit            only the cmocka unit binaries
#   tests/run.sh integration X   only integration scripts whose name contains X
#
# Each test runs in its own process with a timeout (TIMEOUT_MULT scales them,
# libuv style) and its output goes to $BUILD/test-logs/<name>.log; a failing
# test's log tail is printed.  The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export CALLPIPE_ROOT=$PWD
MULT=${TIMEOUT_MULT:-1}
[ -n "${SANITIZER:-}" ] && MULT=$((MULT * 3))
LOGS=$BUILD/test-logs
mkdir -p "$LOGS"
suite=${1:-all}
filter=${2:-}
passed=0
failed=0
failures=()

run_one() { # name timeout_s command...
    local name=$1 t=$2
    shift 2
    local log=$LOGS/$name.log start=$SECONDS
    mkdir -p "$(dirname "$log")"
    printf '%-48s ' "$name"
    if timeout -k 10 $((t * MULT)) "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf 'ok   (%ds)\n' $((SECONDS - start))
    else
        local rc=$?
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL (rc=%d, %ds)\n' "$rc" $((SECONDS - start))
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

if [ "$suite" = all ] || [ "$suite" = unit ]; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        case $(basename "$t") in *"$filter"*) ;; *) continue ;; esac
        run_one "unit/$(basename "$t")" 120 "$t"
    done
fi

if [ "$suite" = all ] || [ "$suite" = integration ]; then
    for t in tests/integration/*.sh; do
        [ -f "$t" ] || continue
        case $(basename "$t") in *"$filter"*) ;; *) continue ;; esac
        # A script may name its own timeout on a line "# timeout: N".
        to=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
        run_one "integration/$(basename "$t" .sh)" "${to:-300}" bash "$t"
    done
fi

if [ "$suite" = all ] || [ "$suite" = fuzz ]; then
    for f in build-fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        case $(basename "$f") in *"$filter"*) ;; *) continue ;; esac
        run_one "fuzz/$(basename "$f")" 120 tests/scripts/fuzz.sh "$f" "${FUZZ_SECONDS:-10}"
    done
fi

if [ ${#failures[@]} -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
