#!/usr/bin/env bash
# config_doc.sh - docs/config.md equals what the configuration tables generate.
# timeout: 30
set -euo pipefail
cd "${CALLPIPE_ROOT:-$(dirname "$0")/../..}"
tests/scripts/config-doc.sh --check
