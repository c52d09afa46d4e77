#!/usr/bin/env bash
# tests/integration/pg_core.sh - core/cp_pg.c against a private PostgreSQL (tests/tools/pg_selftest.c).
# timeout: 120
set -euo pipefail
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
[ -x "$BUILD/tools/pg_selftest" ] || { echo "no $BUILD/tools/pg_selftest: build first" >&2; exit 1; }
PGDIR=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
trap '"$ROOT/tests/scripts/pg.sh" destroy "$PGDIR"' EXIT
DSN=$("$ROOT/tests/scripts/pg.sh" start "$PGDIR" 2>/dev/null)
"$BUILD/tools/pg_selftest" "$DSN"
