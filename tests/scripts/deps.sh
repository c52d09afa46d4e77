#!/usr/bin/env bash
# tests/scripts/deps.sh - install the Debian 12 packages callpipe needs (make deps).
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
PKGS=(
    build-essential pkg-config clang libclang-rt-14-dev
    libuv1-dev librdkafka-dev libpq-dev libmsgpack-dev libcyaml-dev libyaml-dev
    libhttp-parser-dev libyajl-dev libjansson-dev libcurl4-openssl-dev libssl-dev
    zlib1g-dev libcsv-dev libcmocka-dev
    postgresql-15 postgresql-client-15
    tzdata curl procps psmisc python3 bsdutils openssl nginx
    chromium yamllint
)
# jsforce (tests/conformance) needs node and npm.  Machines that already have a node (for
# example NodeSource's nodejs, which conflicts with Debian's npm) keep theirs.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PKGS[@]} packages present"
    exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root:  apt-get update && $cmd" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || true
$cmd
