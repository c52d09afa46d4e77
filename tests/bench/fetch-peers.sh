#!/usr/bin/env bash
# tests/bench/fetch-peers.sh - unpack rsyslog and syslog-ng (with their Kafka outputs) into a private prefix.
#
#   tests/bench/fetch-peers.sh [DIR]      (default build/bench/peers)
#
# The two are Debian packages that conflict with each other and whose install
# scripts would start system services, so they are never installed: the .debs
# are fetched with `apt-get download` (no root needed for that, but it needs
# the apt lists) and unpacked with `dpkg -x` into DIR/root.  Libraries they
# need that this machine lacks are fetched and unpacked the same way; the
# benchmark runs the daemons with LD_LIBRARY_PATH pointing into DIR/root.
# A second run finds DIR/.done and does nothing.
#
# Prints, on success, the lines  RSYSLOGD=...  SYSLOGNG=...  PEER_LD=...
# (also written to DIR/env, to be sourced).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-$ROOT/build/bench/peers}
mkdir -p "$DIR/debs" "$DIR/root"
DIR=$(cd "$DIR" && pwd)
PEERS=(rsyslog rsyslog-kafka syslog-ng-core syslog-ng-mod-rdkafka)
R=$DIR/root
LD="$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib/syslog-ng"

write_env() {
    cat >"$DIR/env" <<EOF
RSYSLOGD=$R/usr/sbin/rsyslogd
RSYSLOG_MODDIR=$R/usr/lib/x86_64-linux-gnu/rsyslog
SYSLOGNG=$R/usr/sbin/syslog-ng
SYSLOGNG_MODDIR=$R/usr/lib/syslog-ng/3.38
PEER_LD=$LD
EOF
    cat "$DIR/env"
}

if [ -f "$DIR/.done" ]; then
    write_env
    exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }

fetch() { # PKG: download once into debs/ and unpack into root/
    local p=$1
    if ! ls "$DIR/debs/${p}_"*.deb >/dev/null 2>&1; then
        # As root apt warns that _apt cannot write here and downloads unsandboxed: harmless.
        (cd "$DIR/debs" && apt-get download -q "$p" 2>&1 >/dev/null | { grep -v unsandboxed >&2 || true; }) || {
            echo "fetch-peers: could not download $p (run apt-get update?)" >&2
            return 1
        }
    fi
    dpkg -x "$DIR/debs/${p}_"*.deb "$R"
}

# The peers, then every library dependency not installed here (one level deeper
# for the libraries those pull in).  Only lib* packages: the rest (lsb-base,
# init scripts) are for running as a system service, which we never do.
declare -A seen=()
queue=("${PEERS[@]}")
while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    fetch "$p"
    for d in $(apt-cache depends "$p" 2>/dev/null | awk '/^ *\|?Depends: [a-z0-9]/ {print $2}'); do
        case $d in lib*) ;; *) continue ;; esac
        [ -n "${seen[$d]:-}" ] && continue
        installed "$d" || queue+=("$d")
    done
done

# Every shared object we unpacked must resolve against the machine plus the prefix.
missing=$(find "$R" -name '*.so*' -type f -o -path '*/sbin/*' -type f | while read -r f; do
    LD_LIBRARY_PATH=$LD ldd "$f" 2>/dev/null | awk '/not found/ {print $1}'
done | sort -u)
if [ -n "$missing" ]; then
    echo "fetch-peers: unresolved libraries (some are optional plugins):" >&2
    echo "$missing" >&2
fi
for bin in usr/sbin/rsyslogd usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so \
    usr/lib/x86_64-linux-gnu/rsyslog/imptcp.so usr/sbin/syslog-ng \
    usr/lib/syslog-ng/3.38/libkafka.so usr/lib/syslog-ng/3.38/libafsocket.so; do
    [ -e "$R/$bin" ] || { echo "fetch-peers: $bin missing after unpack" >&2; exit 1; }
    if LD_LIBRARY_PATH=$LD ldd "$R/$bin" | grep -q 'not found'; then
        echo "fetch-peers: $bin has unresolved libraries:" >&2
        LD_LIBRARY_PATH=$LD ldd "$R/$bin" | grep 'not found' >&2
        exit 1
    fi
done
touch "$DIR/.done"
write_env
