#!/usr/bin/env bash
# loader_secrets.sh - no private key, client secret, PostgreSQL password or access token in the loader's output or /metrics.
# timeout: 180
#
# The loader runs at log_level debug (everything it can say) through token expiry, an injected
# 401 and 503s, plus --check-config and --check.  The access tokens are the ones the emulator
# issued and the loader presented: nginx (Debian) sits in front of the emulator as a plain
# HTTP proxy that logs every Authorization header (the emulator's admin API does not list its
# tokens), rewriting instance_url so the REST calls go through it too.  Every output of the
# loader (stdout+stderr of all runs, /metrics during and after the load, --check-config,
# --check) is then searched for: each body line of the PEM private key, the client secret,
# the PostgreSQL password and every token (at least two per org, so the search is not empty).
set -euo pipefail
. "${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/scripts/ldtest.sh"
N=${LD_N:-5000}
NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || { echo "SKIP: nginx not installed (tests/scripts/deps.sh)"; exit 0; }
NG_PID=
cleanup() {
    [ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null && wait "$NG_PID" 2>/dev/null
    ld_cleanup
}
trap cleanup EXIT

ld_setup
ld_calls "$N"
P_LOGIN=$(free_port) P_SERVICE=$(free_port) P_SALES=$(free_port)
ng=$WORK/nginx
mkdir -p "$ng/tmp"
server() { # port upstream
    cat <<NG
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass $2;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
            sub_filter_types application/json;
            sub_filter_once off;
            sub_filter '$EMU_SERVICE' 'http://127.0.0.1:$P_SERVICE';
            sub_filter '$EMU_SALES' 'http://127.0.0.1:$P_SALES';
        }
    }
NG
}
cat >"$ng/nginx.conf" <<NG
daemon off;
master_process off;
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 256; }
http {
    log_format auth '\$server_port \$http_authorization';
    access_log $ng/auth.log auth;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    client_max_body_size 200m;
$(server "$P_LOGIN" "$SFEMU_LOGIN")
$(server "$P_SERVICE" "$EMU_SERVICE")
$(server "$P_SALES" "$EMU_SALES")
}
NG
"$NGINX" -p "$ng" -c "$ng/nginx.conf" >"$ng/stdout" 2>&1 &
NG_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P_LOGIN/__emu/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

PG_PASSWORD=pgpw-$RANDOM$RANDOM$RANDOM
export LD_TEST_PG_PASSWORD=$PG_PASSWORD
export LD_LOGIN_SERVICE=http://127.0.0.1:$P_LOGIN LD_LOGIN_SALES=http://127.0.0.1:$P_SALES LD_LOG_LEVEL=debug
ld_config "$WORK/loader.yaml"
# trust auth ignores the password, but the loader still holds it and hands it to libpq
sed -i "s|^  dsn: .*|&\n  password: env:LD_TEST_PG_PASSWORD|" "$WORK/loader.yaml"
out=$WORK/outputs
mkdir -p "$out"
"$CP" loader -c "$WORK/loader.yaml" --check-config >"$out/check-config" 2>&1 || ld_fail "--check-config"
"$CP" loader -c "$WORK/loader.yaml" --check >"$out/check" 2>&1 || ld_fail "--check: $(cat "$out/check")"

ld_start "$WORK/loader.yaml"
for _ in $(seq 100); do [ "$(ld_open_rows)" -lt "$((2 * N))" ] && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$P_ADMIN/metrics" >"$out/metrics-1" || ld_fail "no /metrics"
sfemu_admin POST /orgs/service/expire_tokens >/dev/null
sfemu_admin POST /orgs/sales/expire_tokens >/dev/null
sfemu_admin POST /faults '[{"kind":"http","org":"sales","path":"^/services/data/","status":401,"count":1},
                           {"kind":"http","org":"service","path":"^/services/data/","status":503,"count":3}]' >/dev/null
ld_wait_settled "$WORK/loader.yaml" 120
curl -sf "http://127.0.0.1:$P_ADMIN/metrics" >"$out/metrics-2" || ld_fail "no /metrics"
ld_stop
cp "$WORK"/loader-*.log "$out/"

# The secrets.
grep -v -- '-----' "$WORK/jwt_key.pem" >"$WORK/needles"
echo "$LD_SECRET" >>"$WORK/needles"
echo "$PG_PASSWORD" >>"$WORK/needles"
for p in "$P_SERVICE" "$P_SALES"; do
    n=$(awk -v p="$p" '$1 == p && $2 == "Bearer" {print $3}' "$ng/auth.log" | sort -u | tee -a "$WORK/needles" | wc -l)
    [ "$n" -ge 2 ] || ld_fail "expected at least 2 tokens through port $p, saw $n"
done
grep -q '!' "$WORK/needles" || ld_fail "no token looks like an emulator token"
ntok=$(grep -c '!' "$WORK/needles")
say "searching $(wc -l <"$WORK/needles") secrets ($ntok tokens) in $(cat "$out"/* | wc -c) bytes of loader output"
if grep -rF -f "$WORK/needles" "$out" >"$WORK/leaks"; then
    cut -c1-200 "$WORK/leaks" | head -5
    ld_fail "a secret appears in the loader's output"
fi
# The search works: the needles are found where they are (the key file, the proxy log).
grep -qF -f "$WORK/needles" "$WORK/jwt_key.pem" && grep -qF -f "$WORK/needles" "$ng/auth.log" ||
    ld_fail "the search itself does not find secrets"
grep -q "session expired" "$out"/loader-*.log || ld_fail "no token refresh happened"
ld_compare || ld_fail "the orgs differ from calls"
say "loader_secrets: ok"
