#!/usr/bin/env bash
# loader_tls.sh - the loader through a real TLS server (Debian's nginx) in front of the emulator: right CA loads, untrusted certificates are refused.
# timeout: 180
#
# A throwaway CA and a server certificate for localhost / 127.0.0.1 (openssl, made here), plus a
# second CA that signed nothing.  nginx terminates TLS for the login host and both orgs' My
# Domains and proxies to the emulator; like a real My Domain, the token response's
# instance_url then names the https host (nginx rewrites the emulator's http URL).
#   1. ca_file = the other CA, then no ca_file (system store): login is refused with a
#      certificate error in the log, no job reaches the emulator, every outbox row stays pending.
#   2. a TLS login whose token response names a plain-http instance (a proxy that does not
#      rewrite it): refused, no job reaches the emulator;
#   3. ca_file = the test CA: LD_N calls (default 2,000) load into both orgs, checked field by
#      field by sf_compare.py, and nginx's access log shows every upload went through TLS.
set -euo pipefail
. "${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/scripts/ldtest.sh"
N=${LD_N:-2000}
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
pki=$WORK/pki
mkdir -p "$pki"
(
    cd "$pki"
    for ca in ca other-ca; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.pem" -days 2 \
            -subj "/CN=callpipe test $ca" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile ext.cnf 2>/dev/null
) || ld_fail "could not make the test PKI"

T_LOGIN=$(free_port) T_SERVICE=$(free_port) T_SALES=$(free_port) T_CLEAR=$(free_port) T_CLEAR_SALES=$(free_port)
ng=$WORK/nginx
mkdir -p "$ng/tmp"
server() { # tls_port upstream_url [keep]: keep = pass the emulator's http URLs through
    local filters="sub_filter_types application/json;
            sub_filter_once off;
            sub_filter '$EMU_SERVICE' 'https://localhost:$T_SERVICE';
            sub_filter '$EMU_SALES' 'https://localhost:$T_SALES';
            sub_filter '$SFEMU_LOGIN' 'https://localhost:$T_LOGIN';"
    [ "${3:-}" = keep ] && filters=""
    cat <<NG
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $pki/server.pem;
        ssl_certificate_key $pki/server.key;
        location / {
            proxy_pass $2;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Accept-Encoding "";
            proxy_request_buffering off;
            $filters
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
    access_log $ng/access.log;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    client_max_body_size 200m;
$(server "$T_LOGIN" "$SFEMU_LOGIN")
$(server "$T_SERVICE" "$EMU_SERVICE")
$(server "$T_SALES" "$EMU_SALES")
$(server "$T_CLEAR" "$SFEMU_LOGIN" keep)
$(server "$T_CLEAR_SALES" "$EMU_SALES" keep)
}
NG
"$NGINX" -p "$ng" -c "$ng/nginx.conf" >"$ng/stdout" 2>&1 &
NG_PID=$!
for _ in $(seq 50); do
    curl -s --cacert "$pki/ca.pem" "https://localhost:$T_LOGIN/__emu/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf --cacert "$pki/ca.pem" "https://localhost:$T_LOGIN/__emu/healthz" >/dev/null ||
    { cat "$ng/stdout" "$ng/error.log"; ld_fail "nginx did not come up"; }
say "nginx TLS on $T_LOGIN (login), $T_SERVICE (service), $T_SALES (sales)"

export LD_LOGIN_SERVICE=https://localhost:$T_LOGIN LD_LOGIN_SALES=https://localhost:$T_SALES
untrusted() { # label ca_file-line
    ORG_EXTRA_SERVICE=$2 ORG_EXTRA_SALES=$2 ld_config "$WORK/loader-$1.yaml"
    ld_start "$WORK/loader-$1.yaml"
    local log=$WORK/loader-$LD_RUN.log
    for _ in $(seq 100); do
        [ "$(grep -c 'could not reach Salesforce' "$log")" -ge 2 ] && break
        sleep 0.1
    done
    sleep 1
    ld_kill
    for org in service sales; do
        grep "org=$org\] could not reach Salesforce at https://localhost:[0-9]*/services/oauth2/token: SSL certificate problem" "$log" | grep -q "trust store: " ||
            ld_fail "$1: no certificate error for $org: $(grep "org=$org" "$log" | tail -3)"
    done
    grep -q "logged in" "$log" && ld_fail "$1: logged in through an untrusted certificate"
    [ "$(sfemu_admin GET /orgs/service/jobs)" = "[]" ] && [ "$(sfemu_admin GET /orgs/sales/jobs)" = "[]" ] ||
        ld_fail "$1: a job reached the emulator"
    [ "$(q "SELECT count(*) FROM sf_outbox WHERE state <> 'pending'")" = 0 ] || ld_fail "$1: rows moved"
    say "$1: refused: $(grep -m1 'could not reach Salesforce' "$log" | sed 's/.*could not/could not/')"
}
untrusted other-ca "    ca_file: $pki/other-ca.pem"
untrusted system-store ""

# A login over TLS whose token response sends the loader to a plain-http instance: refused, the
# token never goes there.
LD_LOGIN_SERVICE=https://localhost:$T_CLEAR LD_LOGIN_SALES=https://localhost:$T_CLEAR_SALES \
    ORG_EXTRA_SERVICE="    ca_file: $pki/ca.pem" ORG_EXTRA_SALES="    ca_file: $pki/ca.pem" \
    ld_config "$WORK/loader-clear.yaml"
ld_start "$WORK/loader-clear.yaml"
log=$WORK/loader-$LD_RUN.log
for _ in $(seq 100); do
    [ "$(grep -c 'is not https although login_url is' "$log")" -ge 2 ] && break
    sleep 0.1
done
ld_kill
for org in service sales; do
    grep -q "org=$org\] could not log in: instance_url http://[^ ]* is not https although login_url is" "$log" ||
        ld_fail "clear instance: $org was not refused: $(grep "org=$org" "$log" | tail -3)"
done
grep -q "logged in" "$log" && ld_fail "clear instance: logged in"
[ "$(sfemu_admin GET /orgs/service/jobs)" = "[]" ] && [ "$(sfemu_admin GET /orgs/sales/jobs)" = "[]" ] ||
    ld_fail "clear instance: a job reached the emulator"
say "clear instance: refused: $(grep -m1 'is not https' "$log" | sed 's/.*could not/could not/')"

ORG_EXTRA_SERVICE="    ca_file: $pki/ca.pem" ORG_EXTRA_SALES="    ca_file: $pki/ca.pem" ld_config "$WORK/loader.yaml"
ld_start "$WORK/loader.yaml"
ld_wait_settled "$WORK/loader.yaml" 120
ld_stop
grep -q "instance https://localhost:$T_SERVICE" "$WORK/loader-$LD_RUN.log" ||
    ld_fail "service did not use the TLS instance URL"
ld_compare || ld_fail "the orgs differ from calls"
uploads=$(grep -c '"PUT /services/data/v62.0/jobs/ingest/[^ ]*/batches HTTP/1.1" 201' "$ng/access.log" || true)
jobs=$(q "SELECT count(*) FROM sf_jobs")
[ "$uploads" = "$jobs" ] && [ "$jobs" -ge 2 ] || ld_fail "nginx saw $uploads uploads for $jobs jobs"
say "loader_tls: ok ($jobs jobs uploaded over TLS)"
