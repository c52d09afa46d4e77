#!/usr/bin/env bash
# sf_conformance.sh - jsforce's bulk2 client (from npm, pinned by the lockfile) against the emulator.
# timeout: 300
set -eu
cd "${CALLPIPE_ROOT:-$(dirname "$0")/../..}"
BUILD=${BUILD:-build}
. tests/scripts/sfemu.sh
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    # `make deps` installs Debian's nodejs and npm when no node is on the machine; a run
    # without them proves nothing, so it fails rather than skips.
    echo "FAIL: node or npm not installed (run make deps): the jsforce conformance run needs them"
    exit 1
fi
conf=tests/conformance
if ! (cd "$conf" && node -e 'require("jsforce")' 2>/dev/null); then
    (cd "$conf" && npm ci --no-audit --no-fund --loglevel=error)
fi
tmp=$(mktemp -d)
trap 'sfemu_stop; rm -rf "$tmp"' EXIT
sfemu_keys "$tmp"
cat >"$tmp/sfemu.yaml" <<YAML
rows_per_s: 20000
queue_delay: 100ms
orgs:
  - name: acme
    users: [{username: integration@acme.example}]
    apps: [{consumer_key: CONF_CK, public_key_file: $tmp/jwt_pub.pem}]
    custom_fields:
      - {object: VoiceCall, name: Callpipe_Id__c, external_id: true, unique: true, length: 80}
YAML
sfemu_start "$tmp/emu" "$tmp/sfemu.yaml"
node "$conf/bulk2.js" "$SFEMU_LOGIN" "$tmp/jwt_key.pem" CONF_CK integration@acme.example
sfemu_stop
