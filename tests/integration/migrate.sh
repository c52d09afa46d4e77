#!/usr/bin/env bash
# tests/integration/migrate.sh - `callpipe migrate` and pg.sh against a real private PostgreSQL.
# timeout: 240
#
# Covers: apply all, re-run changes nothing (rows and pg_dump identical), --status, grants
# (writer writes base tables, reader reads views only), an edited migration is refused, a
# failing migration rolls back whole, two concurrent migrators, pg.sh restart, stop immediate +
# start (crash recovery keeps committed rows), --port (TCP), and pg.sh as an ordinary user.
set -euo pipefail

ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CP=$BUILD/callpipe
PGSH=$ROOT/tests/scripts/pg.sh
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$CP" ] || { echo "no $CP: build first (make BUILD=...)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/callpipe-migrate.XXXXXX)
PGDIR=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
PGDIR2=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
PGDIR3=""
BG=()
cleanup() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    "$PGSH" destroy "$PGDIR" || true
    "$PGSH" destroy "$PGDIR2" || true
    if [ -n "$PGDIR3" ]; then
        runuser -u postgres -- "$WORK/pg.sh" destroy "$PGDIR3" 2>/dev/null || true
        rm -rf "$PGDIR3"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }
q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$DSN" "$@"; }
qdb() { # dbname sql
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$DSN_BASE dbname=$1" -c "$2"
}
newdb() { # name -> prints its DSN
    q -c "CREATE DATABASE $1" >/dev/null
    echo "$DSN_BASE dbname=$1"
}

step "pg.sh start"
DSN=$("$PGSH" start "$PGDIR")
echo "dsn: $DSN"
[ "$DSN" = "host=$PGDIR/sock port=5432 dbname=callpipe user=postgres" ] || fail "unexpected conninfo: $DSN"
DSN_BASE="host=$PGDIR/sock port=5432 user=postgres"
grep -q "^export PGHOST='$PGDIR/sock'$" "$PGDIR/env" || fail "env file lacks PGHOST"
( . "$PGDIR/env" && [ "$("$PGBIN/psql" -X -tAc 'select current_database()')" = callpipe ] ) ||
    fail "env file does not reach the callpipe database"
[ "$(q -c "select string_agg(rolname || ':' || rolcanlogin, ',' order by rolname) from pg_roles where rolname like 'callpipe_%'")" = \
    "callpipe_reader:true,callpipe_writer:true" ] || fail "login roles missing"
# start on a running cluster is idempotent and prints the same conninfo
[ "$("$PGSH" start "$PGDIR" 2>/dev/null)" = "$DSN" ] || fail "second start differs"

nfiles=$(find "$ROOT/schema" -maxdepth 1 -name '[0-9]*_*.sql' | wc -l)
[ "$nfiles" -ge 2 ] || fail "expected at least 2 migrations, found $nfiles"

step "first migrate applies all $nfiles files"
"$CP" migrate --dsn "$DSN" 2>"$WORK/run1.log" || { cat "$WORK/run1.log"; fail "first migrate"; }
cat "$WORK/run1.log"
[ "$(grep -c 'applied [0-9]*_.*\.sql in' "$WORK/run1.log")" = "$nfiles" ] || fail "not one log line per file"
[ "$(q -c 'select count(*) from schema_migrations')" = "$nfiles" ] || fail "schema_migrations count"
[ "$(q -c "select count(*) from schema_migrations where checksum ~ '^[0-9a-f]{64}\$'")" = "$nfiles" ] ||
    fail "checksums are not SHA-256 hex"
want=$(sha256sum "$ROOT/schema/001_consumer_offsets.sql" | cut -d' ' -f1)
[ "$(q -c 'select checksum from schema_migrations where version = 1')" = "$want" ] || fail "checksum of 001"
[ "$(q -c "select name from schema_migrations where version = 1")" = 001_consumer_offsets.sql ] || fail "name of 001"
q -c 'select version, name, checksum, applied_at from schema_migrations order by version' >"$WORK/rows1"
# pg_dump 15.14+ writes a random \restrict key per run: not part of the schema
"$PGBIN/pg_dump" --schema-only -d "$DSN" | grep -v '^\\\(un\)\{0,1\}restrict ' >"$WORK/dump1"
grep -q 'CREATE TABLE public.consumer_offsets' "$WORK/dump1" || fail "consumer_offsets missing from dump"

step "second migrate changes nothing"
"$CP" migrate --dsn "$DSN" 2>"$WORK/run2.log" || { cat "$WORK/run2.log"; fail "second migrate"; }
cat "$WORK/run2.log"
grep -q 'nothing to apply' "$WORK/run2.log" || fail "second run did not say nothing to apply"
if grep -q 'applied [0-9]*_.*\.sql' "$WORK/run2.log"; then fail "second run applied something"; fi
q -c 'select version, name, checksum, applied_at from schema_migrations order by version' >"$WORK/rows2"
# pg_dump 15.14+ writes a random \restrict key per run: not part of the schema
"$PGBIN/pg_dump" --schema-only -d "$DSN" | grep -v '^\\\(un\)\{0,1\}restrict ' >"$WORK/dump2"
diff "$WORK/rows1" "$WORK/rows2" || fail "schema_migrations changed"
diff "$WORK/dump1" "$WORK/dump2" || fail "schema changed"

step "libpq environment is the default dsn"
( . "$PGDIR/env" && "$CP" migrate ) 2>"$WORK/run3.log" || { cat "$WORK/run3.log"; fail "migrate with env"; }
grep -q 'nothing to apply' "$WORK/run3.log" || fail "env run applied something"

step "--status"
"$CP" migrate --dsn "$DSN" --status >"$WORK/status" || fail "--status exit"
cat "$WORK/status"
[ "$(grep -c ' applied ' "$WORK/status")" = "$nfiles" ] || fail "--status: not all applied"
grep -q '^001 *applied .*001_consumer_offsets.sql$' "$WORK/status" || fail "--status line for 001"
if grep -q pending "$WORK/status"; then fail "--status shows pending"; fi

step "grants: writer writes base tables, reader sees views only"
bad=$(q -c "
select string_agg(c.relname, ',') from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
  and c.relname <> 'schema_migrations'
  and not (has_table_privilege('callpipe_writer', c.oid, 'SELECT')
       and has_table_privilege('callpipe_writer', c.oid, 'INSERT')
       and has_table_privilege('callpipe_writer', c.oid, 'UPDATE')
       and has_table_privilege('callpipe_writer', c.oid, 'DELETE'))")
[ -z "$bad" ] || fail "callpipe_writer cannot write: $bad"
bad=$(q -c "
select string_agg(c.relname, ',') from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('r', 'p')
  and has_table_privilege('callpipe_reader', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE')")
[ -z "$bad" ] || fail "callpipe_reader may touch base tables: $bad"
bad=$(q -c "
select string_agg(c.relname, ',') from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind in ('v', 'm')
  and not has_table_privilege('callpipe_reader', c.oid, 'SELECT')")
[ -z "$bad" ] || fail "callpipe_reader cannot read views: $bad"
[ "$(q -c "select has_table_privilege('callpipe_writer', 'schema_migrations', 'INSERT')")" = f ] ||
    fail "writer may write schema_migrations"
W="host=$PGDIR/sock port=5432 dbname=callpipe user=callpipe_writer"
R="host=$PGDIR/sock port=5432 dbname=callpipe user=callpipe_reader"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$W" -c "
insert into consumer_offsets (group_id, topic, partition, next_offset) values ('g', 'callpipe.events', 0, 10)
on conflict (group_id, topic, partition) do update set next_offset = excluded.next_offset, updated_at = now()" ||
    fail "writer could not upsert consumer_offsets"
if "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$R" -c "select * from consumer_offsets" 2>"$WORK/reader.err"; then
    fail "reader could read a base table"
fi
grep -q 'permission denied' "$WORK/reader.err" || fail "reader error is not permission denied"
if "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$W" -c "create table writer_probe (id int)" 2>/dev/null; then
    fail "writer could create a table"
fi

step "an edited migration is refused"
cp -r "$ROOT/schema" "$WORK/schema-edit"
EDSN=$(newdb edit_test)
"$CP" migrate --dsn "$EDSN" --dir "$WORK/schema-edit" 2>"$WORK/edit1.log" || { cat "$WORK/edit1.log"; fail "edit db migrate"; }
echo "-- an innocent-looking edit" >>"$WORK/schema-edit/001_consumer_offsets.sql"
echo "-- a new migration after it" >"$WORK/schema-edit/950_after_edit.sql"
set +e
"$CP" migrate --dsn "$EDSN" --dir "$WORK/schema-edit" 2>"$WORK/edit2.log"
rc=$?
set -e
cat "$WORK/edit2.log"
[ "$rc" = 1 ] || fail "edited migration: exit $rc, want 1"
grep -q 'migration "001_consumer_offsets.sql" was edited after it was applied' "$WORK/edit2.log" ||
    fail "no clear message for the edited migration"
[ "$(qdb edit_test 'select count(*) from schema_migrations where version = 950')" = 0 ] ||
    fail "applied a new migration despite the edited one"
set +e
"$CP" migrate --dsn "$EDSN" --dir "$WORK/schema-edit" --status >"$WORK/edit-status" 2>/dev/null
rc=$?
set -e
cat "$WORK/edit-status"
[ "$rc" = 1 ] || fail "--status with an edited file: exit $rc, want 1"
grep -q '^001 *EDITED ' "$WORK/edit-status" || fail "--status does not flag EDITED"
grep -q '^950 *pending ' "$WORK/edit-status" || fail "--status does not show pending 950"

step "a failing migration rolls back entirely"
cp -r "$ROOT/schema" "$WORK/schema-fail"
FDSN=$(newdb fail_test)
printf -- '-- creates a table, then fails\nCREATE TABLE broken_probe (id int);\nINSERT INTO broken_probe VALUES (1);\nSELEC oops;\n' \
    >"$WORK/schema-fail/900_broken.sql"
set +e
"$CP" migrate --dsn "$FDSN" --dir "$WORK/schema-fail" 2>"$WORK/fail.log"
rc=$?
set -e
cat "$WORK/fail.log"
[ "$rc" = 1 ] || fail "failing migration: exit $rc, want 1"
grep -q 'could not apply "900_broken.sql" (line 4): syntax error at or near "SELEC" (SQLSTATE 42601)' "$WORK/fail.log" ||
    fail "failing migration message"
[ -z "$(qdb fail_test "select to_regclass('broken_probe')")" ] || fail "broken_probe exists after rollback"
[ "$(qdb fail_test 'select count(*) from schema_migrations where version = 900')" = 0 ] || fail "900 recorded"
# files before the broken one were applied and stay applied
[ "$(qdb fail_test 'select count(*) from schema_migrations')" = "$nfiles" ] || fail "earlier files not applied"
printf -- '-- creates a table\nCREATE TABLE broken_probe (id int);\n' >"$WORK/schema-fail/900_broken.sql"
"$CP" migrate --dsn "$FDSN" --dir "$WORK/schema-fail" 2>"$WORK/fixed.log" || { cat "$WORK/fixed.log"; fail "fixed"; }
grep -q 'applied 900_broken.sql in' "$WORK/fixed.log" || fail "fixed migration not applied"
# a file that ends the transaction itself is refused
printf -- '-- commits by itself\nCREATE TABLE commit_probe (id int);\nCOMMIT;\n' >"$WORK/schema-fail/901_commit.sql"
set +e
"$CP" migrate --dsn "$FDSN" --dir "$WORK/schema-fail" 2>"$WORK/commit.log"
rc=$?
set -e
cat "$WORK/commit.log"
[ "$rc" = 1 ] || fail "COMMIT in a migration: exit $rc"
grep -q '"901_commit.sql": the file ends the transaction itself' "$WORK/commit.log" || fail "COMMIT message"
[ "$(qdb fail_test 'select count(*) from schema_migrations where version = 901')" = 0 ] || fail "901 recorded"
# duplicate numbers are a configuration error
cp "$WORK/schema-fail/900_broken.sql" "$WORK/schema-fail/900_twin.sql"
set +e
"$CP" migrate --dsn "$FDSN" --dir "$WORK/schema-fail" 2>"$WORK/dup.log"
rc=$?
set -e
[ "$rc" = 2 ] || fail "duplicate version: exit $rc, want 2"
grep -q 'two migrations have version 900' "$WORK/dup.log" || fail "duplicate version message"

step "usage errors"
set +e
"$CP" migrate --bogus >/dev/null 2>&1
rc1=$?
"$CP" migrate --dir "$WORK/does-not-exist" --dsn "$DSN" >/dev/null 2>&1
rc2=$?
"$CP" migrate --help >"$WORK/help" 2>&1
rc3=$?
set -e
[ "$rc1" = 2 ] && [ "$rc2" = 2 ] && [ "$rc3" = 0 ] || fail "exit codes: bogus=$rc1 nodir=$rc2 help=$rc3"
grep -q -- '--status' "$WORK/help" || fail "--help lacks --status"

step "two migrators at once"
cp -r "$ROOT/schema" "$WORK/schema-conc"
# A slow file keeps the first migrator inside the lock while the second arrives.
printf -- '-- slow on purpose\nSELECT pg_sleep(1);\nCREATE TABLE slow_probe (id int);\n' >"$WORK/schema-conc/900_slow.sql"
CDSN=$(newdb conc_test)
"$CP" migrate --dsn "$CDSN" --dir "$WORK/schema-conc" 2>"$WORK/conc1.log" &
p1=$!
"$CP" migrate --dsn "$CDSN" --dir "$WORK/schema-conc" 2>"$WORK/conc2.log" &
p2=$!
BG=("$p1" "$p2")
rc1=0
rc2=0
wait "$p1" || rc1=$?
wait "$p2" || rc2=$?
BG=()
cat "$WORK/conc1.log" "$WORK/conc2.log"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ] || fail "concurrent migrators exited $rc1 and $rc2"
total=$(cat "$WORK/conc1.log" "$WORK/conc2.log" | grep -c 'applied [0-9]*_.*\.sql in' || true)
[ "$total" = $((nfiles + 1)) ] || fail "concurrent: $total files applied in all, want $((nfiles + 1))"
[ "$(qdb conc_test 'select count(*) from schema_migrations')" = $((nfiles + 1)) ] || fail "concurrent rows"

step "pg.sh restart keeps data and conninfo"
q -c "insert into consumer_offsets (group_id, topic, partition, next_offset) values ('g', 'callpipe.events', 1, 77)"
[ "$("$PGSH" restart "$PGDIR" 2>/dev/null)" = "$DSN" ] || fail "restart conninfo"
[ "$(q -c "select next_offset from consumer_offsets where group_id = 'g' and partition = 1")" = 77 ] ||
    fail "row lost over restart"

step "pg.sh stop immediate (crash) + start recovers committed rows"
q -c "update consumer_offsets set next_offset = 78 where group_id = 'g' and partition = 1"
"$PGSH" stop "$PGDIR" immediate
if "$PGSH" status "$PGDIR"; then fail "status says running after stop immediate"; fi
if q -c 'select 1' 2>/dev/null; then fail "server answers after stop immediate"; fi
[ "$("$PGSH" start "$PGDIR" 2>/dev/null)" = "$DSN" ] || fail "start after crash"
grep -q 'not properly shut down' "$PGDIR/log/postgres.log" || fail "no crash recovery in the server log"
[ "$(q -c "select next_offset from consumer_offsets where group_id = 'g' and partition = 1")" = 78 ] ||
    fail "committed row lost over a crash"
"$CP" migrate --dsn "$DSN" 2>/dev/null || fail "migrate after crash"
"$PGSH" stop "$PGDIR" fast
"$PGSH" stop "$PGDIR" fast 2>/dev/null || fail "stopping a stopped server is not idempotent"
"$PGSH" start "$PGDIR" >/dev/null 2>&1 || fail "start after stop"

step "pg.sh --port listens on 127.0.0.1 too (a second cluster in parallel)"
port=""
for _ in $(seq 1 20); do
    cand=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$cand") 2>/dev/null; then port=$cand; break; fi
done
[ -n "$port" ] || fail "no free port found"
DSN2=$("$PGSH" start "$PGDIR2" --port "$port")
[ "$DSN2" = "host=$PGDIR2/sock port=$port dbname=callpipe user=postgres" ] || fail "--port conninfo: $DSN2"
[ "$("$PGBIN/psql" -X -tA -d "host=127.0.0.1 port=$port dbname=callpipe user=postgres" -c 'select 1')" = 1 ] ||
    fail "no TCP connection on port $port"
grep -q "CALLPIPE_PG_TCP_DSN='host=127.0.0.1 port=$port" "$PGDIR2/env" || fail "env lacks TCP dsn"
# both clusters answer at once
[ "$(q -c 'select 1')" = 1 ] && [ "$("$PGBIN/psql" -X -tA -d "$DSN2" -c 'select 2')" = 2 ] || fail "parallel clusters"
"$PGSH" destroy "$PGDIR2"
[ ! -e "$PGDIR2" ] || fail "destroy left $PGDIR2"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port still open after destroy"; fi

if [ "$(id -u)" -eq 0 ]; then
    step "pg.sh as an ordinary user (postgres)"
    install -m 755 "$PGSH" "$WORK/pg.sh"
    chmod 755 "$WORK"
    PGDIR3=$(runuser -u postgres -- mktemp -d /tmp/callpipe-pg.XXXXXX)
    DSN3=$(runuser -u postgres -- "$WORK/pg.sh" start "$PGDIR3")
    [ "$(runuser -u postgres -- "$PGBIN/psql" -X -tA -d "$DSN3" -c 'select current_user')" = postgres ] ||
        fail "ordinary-user cluster"
    # root can use a cluster an ordinary user runs, through the socket
    [ "$("$PGBIN/psql" -X -tA -d "$DSN3" -c 'select 3')" = 3 ] || fail "root client on user cluster"
    runuser -u postgres -- "$WORK/pg.sh" destroy "$PGDIR3"
    [ ! -e "$PGDIR3" ] || fail "ordinary-user destroy"
    PGDIR3=""
fi

step "destroy refuses a directory pg.sh did not make"
mkdir "$WORK/not-pg"
touch "$WORK/not-pg/precious"
if "$PGSH" destroy "$WORK/not-pg" 2>/dev/null; then fail "destroy removed a foreign directory"; fi
[ -f "$WORK/not-pg/precious" ] || fail "foreign file removed"

echo "migrate.sh: all checks passed"
