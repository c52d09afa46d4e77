#!/usr/bin/env bash
# tests/scripts/fuzz.sh - run libFuzzer targets for a bounded time.
#   fuzz.sh                      every target in build-fuzz/, FUZZ_SECONDS each
#   fuzz.sh build-fuzz/fuzz_x 15 one target for 15 s
# Seeds come from tests/fuzz/corpus/<target>/ (committed); new corpus entries go
# to build-fuzz/corpus/<target>/ so the tree stays clean.  Crash files are kept
# in build-fuzz/ and fail the run.
set -eu
cd "$(dirname "$0")/../.."
run() {
    local bin=$1 secs=$2 name
    name=$(basename "$bin")
    mkdir -p "build-fuzz/corpus/$name"
    local seeds=()
    [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
    "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="build-fuzz/$name-" -print_final_stats=1 \
        "build-fuzz/corpus/$name" "${seeds[@]}"
}
if [ $# -ge 1 ]; then
    run "$1" "${2:-15}"
else
    for f in build-fuzz/fuzz_*; do
        [ -x "$f" ] && run "$f" "${FUZZ_SECONDS:-60}"
    done
fi
