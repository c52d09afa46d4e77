#!/usr/bin/env bash
# tests/scripts/config-doc.sh - writes docs/config.md, the configuration reference, from the
# services' own config tables (`callpipe <service> --print-config-doc`), so it cannot drift.
#   config-doc.sh          print it
#   config-doc.sh --check  fail when docs/config.md differs from what the tables say
set -euo pipefail
cd "$(dirname "$0")/../.."
CP=${BUILD:-build}/callpipe
gen() {
    echo "# Configuration reference"
    echo
    echo "Generated from the services' configuration tables by \`make docs\`; do not edit by hand."
    echo "Every key can also come from the environment (\`CALLPIPE_<SERVICE>_<PATH>\`, see"
    echo "\`core/cp_config.h\`); secrets are only \`env:NAME\` or \`file:PATH\` references."
    for svc in ingest aggregator loader; do
        echo
        echo "## callpipe $svc"
        echo
        "$CP" "$svc" --print-config-doc
    done
}
if [ "${1:-}" = --check ]; then
    if ! diff -u docs/config.md <(gen); then
        echo "docs/config.md is out of date: run make docs" >&2
        exit 1
    fi
    echo "docs/config.md matches the config tables"
else
    gen
fi
