#!/usr/bin/env bash
# tests/scripts/pg.sh - a private, throwaway PostgreSQL 15 cluster on a Unix socket for tests and the demo.
#
#   pg.sh start DIR [--port N]   initdb (first time) and start; prints the admin conninfo on stdout
#   pg.sh stop DIR [fast|immediate|smart]   stop (default fast); "immediate" is a crash, for fault tests
#   pg.sh restart DIR            stop fast, then start (prints the conninfo again)
#   pg.sh status DIR             exit 0 when the server is running
#   pg.sh destroy DIR            stop and remove DIR (only a DIR that pg.sh created)
#
# Layout: DIR/data (cluster), DIR/sock (Unix socket), DIR/log/postgres.log, DIR/env (shell lines
# exporting PGHOST PGPORT PGDATABASE PGUSER and CALLPIPE_PG_{DSN,WRITER_DSN,READER_DSN}).
# Use a fresh `mktemp -d /tmp/callpipe-pg.XXXXXX` per test: clusters never share a socket, a
# port (no TCP unless --port, then 127.0.0.1 only) or a data dir, so tests can run in parallel.
#
# Roles: the bootstrap superuser is always "postgres" (also when run by an ordinary user) and
# is the admin that runs `callpipe migrate`.  Division of work (schema/README.md):
#   - the schema migrations own the roles' EXISTENCE and all PRIVILEGES: schema/000_roles.sql
#     creates callpipe_writer and callpipe_reader NOLOGIN when missing, later files GRANT;
#   - deployment owns LOGIN and authentication.  Here pg.sh creates both roles WITH LOGIN (or
#     adds LOGIN to existing ones), idempotently, so services and dashboards can connect.
# Auth is trust for local and 127.0.0.1 connections: a test cluster, never for real data.
#
# Speed over durability: fsync=off and full_page_writes=off.  A killed server (stop
# immediate, kill -9) still recovers everything committed, because COMMIT still write()s the
# WAL and the OS page cache survives; only an OS crash or power loss could lose data, which
# tests never do.  synchronous_commit stays ON on purpose: with it off, COMMIT returns before
# the WAL leaves shared memory and `stop immediate` loses the last commits, which would break
# the exactly-once fault tests (migrate.sh checks this).
#
# Works as root (the server then runs as the "postgres" user through runuser; DIR's parents
# must be searchable by it, which is why DIR should live under /tmp) and as an ordinary user.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
MARKER=.callpipe-pg
DEFAULT_PORT=5432

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a server-side command as the cluster's owner, from a directory it can read.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# psql as the admin over the socket; quiet, stops at the first error, no ~/.psqlrc.
admin_psql() { # dbname args...
    local db=$1
    shift
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$PORT" -U postgres -d "$db" "$@"
}

resolve_dir() {
    [ -n "${1:-}" ] || usage
    case $1 in *[[:space:]\'\"\\]*) die "DIR must not contain spaces, quotes or backslashes: $1" ;; esac
    DIR=$1
    # Absolute, because server commands run from / (see as_owner).
    if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd -P); fi
}

read_port() {
    PORT=$DEFAULT_PORT
    if [ -f "$DIR/port" ]; then PORT=$(cat "$DIR/port"); fi
}

running() {
    [ -f "$DIR/data/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

write_env() {
    local base="host=$DIR/sock port=$PORT dbname=callpipe"
    {
        echo "# written by tests/scripts/pg.sh: source it to talk to this cluster"
        echo "export PGHOST='$DIR/sock'"
        echo "export PGPORT=$PORT"
        echo "export PGDATABASE=callpipe"
        echo "export PGUSER=postgres"
        echo "export CALLPIPE_PG_DSN='$base user=postgres'"
        echo "export CALLPIPE_PG_WRITER_DSN='$base user=callpipe_writer'"
        echo "export CALLPIPE_PG_READER_DSN='$base user=callpipe_reader'"
        if [ "$TCP" = 1 ]; then
            echo "export CALLPIPE_PG_TCP_DSN='host=127.0.0.1 port=$PORT dbname=callpipe user=postgres'"
        fi
    } >"$DIR/env.tmp"
    mv "$DIR/env.tmp" "$DIR/env"
}

cmd_start() {
    resolve_dir "${1:-}"
    shift
    local want_port=""
    while [ $# -gt 0 ]; do
        case $1 in
            --port)
                [ $# -ge 2 ] || usage
                want_port=$2
                shift 2
                ;;
            --port=*)
                want_port=${1#--port=}
                shift
                ;;
            *) usage ;;
        esac
    done
    if [ -n "$want_port" ]; then
        case $want_port in '' | *[!0-9]*) die "--port needs a number, not \"$want_port\"" ;; esac
        [ "$want_port" -ge 1024 ] && [ "$want_port" -le 65535 ] || die "--port must be 1024..65535"
    fi
    [ -x "$PGBIN/initdb" ] || die "no PostgreSQL binaries in $PGBIN (apt-get install postgresql-15)"

    if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -f "$DIR/$MARKER" ]; then
        die "$DIR is not empty and was not made by pg.sh"
    fi
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    # A Unix socket path must fit in sun_path (108 bytes with the NUL).
    [ $((${#DIR} + 20)) -le 107 ] || die "DIR path is too long for a Unix socket: $DIR"
    touch "$DIR/$MARKER"
    mkdir -p "$DIR/sock" "$DIR/log"
    chmod 755 "$DIR" "$DIR/sock"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "user postgres does not exist (apt-get install postgresql-15)"
        chown postgres:postgres "$DIR" "$DIR/sock" "$DIR/log"
        runuser -u postgres -- test -x "$DIR" ||
            die "user postgres cannot reach $DIR: every parent must be searchable (use mktemp -d under /tmp)"
    fi

    # TCP stays as it was (off, or its port) unless --port is given now.
    TCP=0
    [ -f "$DIR/tcp" ] && TCP=1
    read_port
    if [ -n "$want_port" ]; then
        TCP=1
        PORT=$want_port
        touch "$DIR/tcp"
    fi
    echo "$PORT" >"$DIR/port"

    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        rm -rf "$DIR/data"
        as_owner "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C \
            --no-sync --no-instructions >"$DIR/log/initdb.log" 2>&1 ||
            { cat "$DIR/log/initdb.log" >&2; die "initdb failed"; }
        cat >>"$DIR/data/postgresql.conf" <<EOF

# --- callpipe test cluster (tests/scripts/pg.sh): fast, not durable against OS crashes ---
fsync = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 16MB
max_connections = 100
unix_socket_directories = '$DIR/sock'
unix_socket_permissions = 0777
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
include_if_exists = 'callpipe_listen.conf'
EOF
    fi
    local listen="''"
    [ "$TCP" = 1 ] && listen="'127.0.0.1'"
    printf "port = %s\nlisten_addresses = %s\n" "$PORT" "$listen" >"$DIR/listen.conf.tmp"
    if is_root; then chown postgres:postgres "$DIR/listen.conf.tmp"; fi
    mv "$DIR/listen.conf.tmp" "$DIR/data/callpipe_listen.conf"

    if ! running; then
        as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgres.log" -w -t 60 start >&2 ||
            { tail -n 30 "$DIR/log/postgres.log" >&2; die "could not start the server in $DIR"; }
    fi
    local i
    for i in $(seq 1 100); do
        "$PGBIN/pg_isready" -q -h "$DIR/sock" -p "$PORT" && break
        [ "$i" -lt 100 ] || die "server in $DIR did not become ready"
        sleep 0.1
    done

    if [ -z "$(admin_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'callpipe'")" ]; then
        admin_psql postgres -c "CREATE DATABASE callpipe" >&2
    fi
    # Roles are cluster-wide; creating them is idempotent.  Privileges come from the migrations.
    admin_psql callpipe >&2 <<'EOF'
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['callpipe_writer', 'callpipe_reader'] LOOP
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('ALTER ROLE %I LOGIN', r);
        ELSE
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
    END LOOP;
END
$$;
EOF
    write_env
    echo "host=$DIR/sock port=$PORT dbname=callpipe user=postgres"
}

cmd_stop() {
    resolve_dir "${1:-}"
    local mode=${2:-fast}
    case $mode in fast | immediate | smart) ;; *) usage ;; esac
    [ -f "$DIR/data/PG_VERSION" ] || die "no cluster in $DIR"
    if running; then
        as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m "$mode" -w -t 60 stop >&2
    else
        echo "pg.sh: server in $DIR is not running" >&2
    fi
}

cmd_restart() {
    resolve_dir "${1:-}"
    cmd_stop "$DIR" fast
    cmd_start "$DIR"
}

cmd_status() {
    resolve_dir "${1:-}"
    running
}

cmd_destroy() {
    resolve_dir "${1:-}"
    [ -d "$DIR" ] || return 0
    # An empty directory (a fresh mktemp that was never started) goes without a marker.
    if [ -z "$(ls -A "$DIR")" ]; then
        rmdir "$DIR"
        return 0
    fi
    [ -f "$DIR/$MARKER" ] || die "refusing to remove $DIR: it was not made by pg.sh"
    if running; then
        as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    destroy) cmd_destroy "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
