# tests/scripts/sfemu.sh - bash helpers to run the Salesforce emulator (source this file).
#
#   . tests/scripts/sfemu.sh
#   sfemu_keys "$tmp"                       # $tmp/jwt_key.pem (private) + $tmp/jwt_pub.pem, fresh
#   sfemu_start "$tmp/sfemu" config.yaml    # sets SFEMU_LOGIN and SFEMU_ORG_<name> (instance URLs)
#   sfemu_url acme                          # prints the instance URL of org "acme"
#   sfemu_jwt KEY ISS SUB [AUD] [EXP]       # prints an RS256 JWT bearer assertion
#   sfemu_admin POST /faults '{"kind":"http","status":503}'
#   sfemu_stop
BUILD=${BUILD:-build}

sfemu_keys() { # dir
    openssl genrsa -out "$1/jwt_key.pem" 2048 2>/dev/null &&
        openssl rsa -in "$1/jwt_key.pem" -pubout -out "$1/jwt_pub.pem" 2>/dev/null
}

sfemu_start() { # dir config
    local dir=$1 cfg=$2 i
    mkdir -p "$dir"
    "$BUILD/tools/sfemu" -c "$cfg" >"$dir/stdout" 2>"$dir/stderr" &
    SFEMU_PID=$!
    for i in $(seq 1 100); do
        grep -q '^ready$' "$dir/stdout" 2>/dev/null && break
        kill -0 "$SFEMU_PID" 2>/dev/null || { cat "$dir/stderr" >&2; return 1; }
        sleep 0.1
    done
    grep -q '^ready$' "$dir/stdout" || { echo "sfemu: not ready" >&2; return 1; }
    SFEMU_DIR=$dir
    SFEMU_LOGIN=$(awk '$1 == "login" {print $2}' "$dir/stdout")
    export SFEMU_LOGIN
    while read -r _ name url; do
        export "SFEMU_ORG_${name//[^A-Za-z0-9_]/_}=$url"
    done < <(grep '^org ' "$dir/stdout")
}

sfemu_url() { awk -v n="$1" '$1 == "org" && $2 == n {print $3}' "$SFEMU_DIR/stdout"; }

sfemu_stop() {
    [ -n "${SFEMU_PID:-}" ] || return 0
    kill "$SFEMU_PID" 2>/dev/null
    wait "$SFEMU_PID" 2>/dev/null
    local rc=$?
    SFEMU_PID=
    return $rc
}

_sfemu_b64u() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

sfemu_jwt() { # key iss sub [aud] [exp]
    local key=$1 iss=$2 sub=$3 aud=${4:-https://login.salesforce.com} exp=${5:-$(($(date +%s) + 180))}
    local h c s
    h=$(printf '{"alg":"RS256"}' | _sfemu_b64u)
    c=$(printf '{"iss":"%s","sub":"%s","aud":"%s","exp":%s}' "$iss" "$sub" "$aud" "$exp" | _sfemu_b64u)
    s=$(printf '%s.%s' "$h" "$c" | openssl dgst -sha256 -sign "$key" | _sfemu_b64u)
    printf '%s.%s.%s\n' "$h" "$c" "$s"
}

sfemu_admin() { # method path [json body]
    if [ $# -ge 3 ]; then
        curl -sf -X "$1" "$SFEMU_LOGIN/__emu$2" -H 'Content-Type: application/json' -d "$3"
    else
        curl -sf -X "$1" "$SFEMU_LOGIN/__emu$2"
    fi
}
