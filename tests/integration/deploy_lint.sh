#!/usr/bin/env bash
# deploy_lint.sh - offline checks of deploy/: YAML syntax, the dashboard JSON, and the example
# service configs accepted by `callpipe <service> --check-config`.
# timeout: 60
set -euo pipefail
BUILD=${BUILD:-build}
ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
fail() { echo "FAIL: $*"; exit 1; }

# Syntax only (relaxed): the files follow their own tools' conventions, not one style.
yamllint -d '{extends: relaxed, rules: {line-length: disable}}' \
    deploy/compose.yaml deploy/k8s deploy/config deploy/grafana/provisioning ||
    fail "yamllint"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "no panels"' \
    deploy/grafana/dashboards/queues.json || fail "dashboard JSON"

# The example configs must load (secrets come from the environment, never the file).
export CALLPIPE_WEBHOOK_TOKEN=example-token CALLPIPE_PG_PASSWORD=example-password
out=$("$BUILD/callpipe" ingest -c deploy/config/ingest.yaml --check-config) || fail "ingest config: $out"
echo "$out" | grep -q example-token && fail "--check-config printed a secret"
"$BUILD/callpipe" aggregator -c deploy/config/aggregator.yaml --check-config >/dev/null ||
    fail "aggregator config"
echo "deploy_lint: ok"
