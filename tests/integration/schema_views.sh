#!/usr/bin/env bash
# tests/integration/schema_views.sh - the schema's contract: reporting view formulas, roles, calls partitions.
# timeout: 180
#
# Starts a private PostgreSQL (pg.sh), migrates, loads tests/golden/sql/queue_interval_fixture.sql
# as callpipe_writer and asserts exact ASA, AHT, average abandon time, abandon and answer rates
# and the three service-level variants for 15-minute rows and roll-ups (expectations computed by
# hand below), NULL rates for an empty interval, settings precedence, histograms, the reader's
# and writer's privileges on every relation and function, idempotent call inserts, day
# partitions (default partition, moving rows, UTC bounds) and retention.
set -euo pipefail

ROOT=${CALLPIPE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CP=$BUILD/callpipe
PGSH=$ROOT/tests/scripts/pg.sh
PGBIN=/usr/lib/postgresql/15/bin
FIXTURE=$ROOT/tests/golden/sql/queue_interval_fixture.sql
[ -x "$CP" ] || { echo "no $CP: build first (make BUILD=...)" >&2; exit 1; }

PGDIR=$(mktemp -d /tmp/callpipe-pg.XXXXXX)
WORK=$(mktemp -d /tmp/callpipe-schema.XXXXXX)
cleanup() {
    "$PGSH" destroy "$PGDIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

FAILS=0
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }
# expect NAME GOT WANT: exact string equality; keeps going so one run shows every mismatch.
expect() {
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1" >&2
        echo "     got:  $2" >&2
        echo "     want: $3" >&2
        FAILS=$((FAILS + 1))
    fi
}

DSN=$("$PGSH" start "$PGDIR")
W="host=$PGDIR/sock port=5432 dbname=callpipe user=callpipe_writer"
R="host=$PGDIR/sock port=5432 dbname=callpipe user=callpipe_reader"
qa() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$DSN" -c "$1"; }
qw() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$W" -c "$1"; }
qr() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$R" -c "$1"; }
# denied WHO SQL [ALSO]: the statement must fail with "permission denied" (or the ERE ALSO,
# e.g. a view that cannot be written by anyone).
denied() {
    local who=$1 sql=$2 also=${3:-permission denied} dsn
    case $who in reader) dsn=$R ;; writer) dsn=$W ;; *) fail "denied: who=$who" ;; esac
    if "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$dsn" -c "$sql" >/dev/null 2>"$WORK/err"; then
        echo "FAIL $who may: $sql" >&2
        FAILS=$((FAILS + 1))
    elif ! grep -Eq "permission denied|$also" "$WORK/err"; then
        echo "FAIL $who: not a permission error for: $sql: $(cat "$WORK/err")" >&2
        FAILS=$((FAILS + 1))
    fi
}

step "migrate"
"$CP" migrate --dsn "$DSN" 2>"$WORK/migrate.log" || { cat "$WORK/migrate.log"; fail "migrate"; }

step "fixture as callpipe_writer"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$W" -f "$FIXTURE" || fail "fixture"

# The nine derived values of one view row, rounded to 6 places, NULL spelt out:
# asa_ms|avg_abandon_ms|aht_ms|abandon_rate|answer_rate|sl_ignore|sl_negative|sl_positive|service_level
metrics() { # view org queue interval_start
    qr "select concat_ws('|', $(for c in asa_ms avg_abandon_ms aht_ms abandon_rate answer_rate sl_ignore \
        sl_negative sl_positive service_level; do printf "coalesce(round(%s, 6)::text, 'NULL'), " $c; done) '')
        from reporting.$1 where org = '$2' and queue = '$3' and interval_start = '$4'"
}
sums() { # view org queue interval_start: the additive columns the formulas use, and maxima
    qr "select concat_ws('|', offered, answered, abandoned, answered_within_sl, abandoned_within_sl,
        answered_wait_ms, abandoned_wait_ms, handled, handle_ms, answered_wait_max_ms, abandoned_wait_max_ms,
        sl_threshold_ms, abandon_mode)
        from reporting.$1 where org = '$2' and queue = '$3' and interval_start = '$4'"
}

step "15-minute rows (acme/sales)"
# 10:00 = A1 + A2: offered 6+4=10, answered 3+3=6, abandoned 2+1=3, within 2+2=4, abandoned
# within 2+0=2, answered wait 25000+35000=60000, abandoned wait 15000+30000=45000, handled
# 2+3=5, handle 250000+500000=750000, max 21000|24000 -> 24000, 11000|30000 -> 30000.
# Settings: acme/* (ignore, 20 s) since sales' own row starts at 10:30.
expect "sums 10:00" "$(sums queue_interval_15m acme sales '2024-03-01 10:00+00')" \
    "10|6|3|4|2|60000|45000|5|750000|24000|30000|20000|ignore"
# ASA 60000/6 = 10000; avg abandon 45000/3 = 15000; AHT 750000/5 = 150000; abandon 3/10;
# answer 6/10; (a) 4/6 = 0.666667; (b) 4/(6+3) = 0.444444; (c) (4+2)/9 = 0.666667; headline (a).
expect "metrics 10:00" "$(metrics queue_interval_15m acme sales '2024-03-01 10:00+00')" \
    "10000.000000|15000.000000|150000.000000|0.300000|0.600000|0.666667|0.444444|0.666667|0.666667|"
# 10:15 = B: ASA 100000/4 = 25000; avg abandon 70000/1; AHT 1400000/7 = 200000; abandon 1/5;
# answer 4/5; (a) 1/4; (b) 1/5; (c) (1+0)/5; headline (a) 0.25.
expect "metrics 10:15" "$(metrics queue_interval_15m acme sales '2024-03-01 10:15+00')" \
    "25000.000000|70000.000000|200000.000000|0.200000|0.800000|0.250000|0.200000|0.200000|0.250000|"
# 10:30 = C: only a transfer in, every denominator is 0 -> NULL everywhere.
expect "metrics 10:30 (empty)" "$(metrics queue_interval_15m acme sales '2024-03-01 10:30+00')" \
    "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|"
# 10:45 = D: ASA 7000/2 = 3500; no abandons, nothing handled -> NULL; abandon 0/3 = 0; answer
# 2/3; (a) 2/2; (b) 2/(2+0); (c) 2/2; sales' own row is in force (positive, 15 s) -> 1.
expect "metrics 10:45" "$(metrics queue_interval_15m acme sales '2024-03-01 10:45+00')" \
    "3500.000000|NULL|NULL|0.000000|0.666667|1.000000|1.000000|1.000000|1.000000|"
expect "settings 10:45" "$(sums queue_interval_15m acme sales '2024-03-01 10:45+00')" \
    "3|2|0|2|0|7000|0|0|0|5000|0|15000|positive"
expect "histograms 10:00" \
    "$(qr "select answered_wait_hist::text || abandoned_wait_hist::text from reporting.queue_interval_15m
           where org = 'acme' and queue = 'sales' and interval_start = '2024-03-01 10:00+00'")" \
    "{3,1,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0}{1,0,0,1,0,0,1,0,0,0,0,0,0,0,0,0,0}"
expect "interval_end 15m" \
    "$(qr "select interval_end - interval_start from reporting.queue_interval_15m limit 1")" "00:15:00"

step "settings precedence"
# acme/support: acme/* (ignore): 2/3.  other/sales: global */* (negative, 20 s): 2/(3+1).
expect "acme/support headline" "$(qr "select round(service_level, 6) || '|' || abandon_mode
    from reporting.queue_interval_15m where org = 'acme' and queue = 'support'")" "0.666667|ignore"
expect "other/sales headline" "$(qr "select round(service_level, 6) || '|' || abandon_mode || '|' || sl_threshold_ms
    from reporting.queue_interval_15m where org = 'other' and queue = 'sales'")" "0.500000|negative|20000"

step "1-hour roll-up (acme/sales 10:00 = A + B + C + D)"
# offered 10+5+0+3 = 18, answered 6+4+0+2 = 12, abandoned 3+1 = 4, within 4+1+0+2 = 7,
# abandoned within 2, answered wait 60000+100000+7000 = 167000, abandoned wait 45000+70000 =
# 115000, handled 5+7 = 12, handle 750000+1400000 = 2150000, max(24000,40000,5000) = 40000,
# max(30000,70000) = 70000; settings at 10:00: acme/* ignore, 20 s.
expect "sums 1h" "$(sums queue_interval_1h acme sales '2024-03-01 10:00+00')" \
    "18|12|4|7|2|167000|115000|12|2150000|40000|70000|20000|ignore"
# ASA 167000/12 = 13916.666667; avg abandon 115000/4 = 28750; AHT 2150000/12 = 179166.666667;
# abandon 4/18 = 0.222222; answer 12/18 = 0.666667; (a) 7/12 = 0.583333; (b) 7/16 = 0.4375;
# (c) 9/16 = 0.5625; headline (a).  (Averaging the 15-minute values would give other numbers.)
expect "metrics 1h" "$(metrics queue_interval_1h acme sales '2024-03-01 10:00+00')" \
    "13916.666667|28750.000000|179166.666667|0.222222|0.666667|0.583333|0.437500|0.562500|0.583333|"
expect "histograms 1h (element-wise sums)" \
    "$(qr "select answered_wait_hist::text || abandoned_wait_hist::text from reporting.queue_interval_1h
           where org = 'acme' and queue = 'sales' and interval_start = '2024-03-01 10:00+00'")" \
    "{5,1,1,0,0,4,0,1,0,0,0,0,0,0,0,0,0}{1,0,0,1,0,0,1,0,0,1,0,0,0,0,0,0,0}"
# 11:00 alone: 100 answered within, 100000 ms -> ASA 1000; AHT 100000/100 = 1000; no abandons;
# sales' row (positive): 100/100.
expect "metrics 1h 11:00" "$(metrics queue_interval_1h acme sales '2024-03-01 11:00+00')" \
    "1000.000000|NULL|1000.000000|0.000000|1.000000|1.000000|1.000000|1.000000|1.000000|"
expect "rows 1h acme/sales" \
    "$(qr "select count(*) from reporting.queue_interval_1h where org = 'acme' and queue = 'sales'")" "2"
expect "interval_end 1h" "$(qr "select min(interval_end - interval_start) from reporting.queue_interval_1h")" \
    "01:00:00"

step "30-minute and 1-day roll-ups"
# 30m 10:00 = A + B: answered 10, abandoned 4, within 5, abandoned within 2, wait 160000:
# ASA 16000; avg abandon 115000/4; AHT 2150000/12; abandon 4/15; answer 10/15; (a) 5/10;
# (b) 5/14 = 0.357143; (c) 7/14; headline (a).
expect "metrics 30m 10:00" "$(metrics queue_interval_30m acme sales '2024-03-01 10:00+00')" \
    "16000.000000|28750.000000|179166.666667|0.266667|0.666667|0.500000|0.357143|0.500000|0.500000|"
# 30m 10:30 = C + D = D; headline (c) from sales' own row.
expect "metrics 30m 10:30" "$(metrics queue_interval_30m acme sales '2024-03-01 10:30+00')" \
    "3500.000000|NULL|NULL|0.000000|0.666667|1.000000|1.000000|1.000000|1.000000|"
# 1d = 10:00 hour + 11:00: offered 118, answered 112, abandoned 4, within 107, abandoned within 2,
# answered wait 267000, handled 112, handle 2250000: ASA 267000/112 = 2383.928571; avg
# abandon 28750; AHT 2250000/112 = 20089.285714; abandon 4/118 = 0.033898; answer 112/118 =
# 0.949153; (a) 107/112 = 0.955357; (b) 107/116 = 0.922414; (c) 109/116 = 0.939655; settings
# at 00:00 are acme/* -> (a).
expect "metrics 1d" "$(metrics queue_interval_1d acme sales '2024-03-01 00:00+00')" \
    "2383.928571|28750.000000|20089.285714|0.033898|0.949153|0.955357|0.922414|0.939655|0.955357|"
expect "1d in another session time zone" \
    "$("$PGBIN/psql" -X -q -tA -d "$R" -c "set timezone = 'Asia/Kolkata'" \
        -c "select count(*) || '|' || min(offered) from reporting.queue_interval_1d
            where org = 'acme' and queue = 'sales' and interval_start = '2024-03-01 00:00+00'")" "1|118"

step "disposition and wrap-up views"
expect "disposition 1h" "$(qr "select string_agg(disposition || ':' || calls || ':' || handle_ms || ':' ||
    coalesce(round(avg_handle_ms, 6)::text, 'NULL'), ',' order by disposition)
    from reporting.queue_disposition_1h where org = 'acme' and queue = 'sales'")" \
    "answered:3:360000:120000.000000,canceled:3:0:0.000000"
expect "wrapup 15m 10:30" "$(qr "select calls || ':' || round(avg_handle_ms, 6)
    from reporting.queue_wrapup_15m where wrapup = 'sale' and interval_start = '2024-03-01 10:30+00'")" \
    "2:250000.000000"
expect "wrapup 1d" "$(qr "select calls || ':' || handle_ms || ':' || round(avg_handle_ms, 6)
    from reporting.queue_wrapup_1d where wrapup = 'sale'")" "3:600000:200000.000000"

step "wait buckets"
expect "callpipe_wait_bucket" "$(qw "select string_agg(callpipe_wait_bucket(w)::text, ',' order by w)
    from unnest(array[0, 5000, 5001, 20000, 20001, 1200000, 1200001]::bigint[]) w")" "1,1,2,5,6,16,17"
expect "wait_buckets view" "$(qr "select count(*) || '|' || min(lower_ms) || '|' || max(upper_ms) || '|' ||
    count(upper_ms) from reporting.wait_buckets")" "17|0|1200000|16"
expect "bucket bounds agree" "$(qr "select string_agg(bucket::text, ',' order by bucket) from reporting.wait_buckets")" \
    "$(qw "select string_agg(callpipe_wait_bucket(coalesce(upper_ms, 9999999))::text, ',' order by bucket)
        from reporting.wait_buckets")"
if qw "select callpipe_int_array_add('{1,2}', '{1,2,3}')" 2>/dev/null; then
    echo "FAIL callpipe_int_array_add accepted arrays of different lengths" >&2
    FAILS=$((FAILS + 1))
fi

step "calls: partitions, idempotent inserts, abandoned list"
expect "ensure creates" "$(qw "select callpipe_ensure_calls_partition('2024-03-01')")" "t"
expect "ensure again" "$(qw "select callpipe_ensure_calls_partition('2024-03-01')")" "f"
CALL_COLS="org, pbx, call_id, ended_at, direction, from_number, from_name, to_number, queue, agent,
    started_at, queued_at, answered_at, wait_ms, talk_ms, disposition, queue_outcome, source"
qw "insert into calls ($CALL_COLS) values
    ('acme', 'pbx1', 'c1', '2024-03-01 10:09:00+00', 'inbound', '+15550001', 'Ann', '+15559999', 'sales', 'a1',
     '2024-03-01 10:00:00+00', '2024-03-01 10:00:10+00', '2024-03-01 10:00:20+00', 10000, 500000, 'answered', 'answered', 'json'),
    ('acme', 'pbx1', 'c2', '2024-03-01 10:05:03+00', 'inbound', '+15550002', 'Bob', '+15559999', 'sales', null,
     '2024-03-01 10:04:50+00', '2024-03-01 10:05:00+00', null, 3000, null, 'canceled', 'abandoned', 'json'),
    ('acme', 'pbx1', 'c3', '2024-03-01 10:40:03+00', 'inbound', '+15550003', null, '+15559999', 'sales', null,
     '2024-03-01 10:39:50+00', '2024-03-01 10:40:00+00', null, 3000, null, 'canceled', 'abandoned', 'json'),
    ('acme', 'pbx1', 'c4', '2024-03-01 23:59:59.999999+00', 'inbound', '+15550004', null, '+15559999', 'sales', null,
     null, null, null, 45000, null, 'canceled', 'abandoned', 'json')"
# The same finished call again (a replayed flush), with other values: ignored, first row kept.
qw "insert into calls ($CALL_COLS) values
    ('acme', 'pbx1', 'c1', '2024-03-01 10:09:00+00', 'inbound', 'CHANGED', 'Ann', '+15559999', 'sales', 'a1',
     null, null, null, 1, 1, 'answered', 'answered', 'json')
    on conflict (org, pbx, call_id, ended_at) do nothing"
expect "re-insert leaves one row" "$(qa "select count(*) || '|' || min(from_number) from calls where call_id = 'c1'")" \
    "1|+15550001"
expect "day partition holds the day" "$(qa "select string_agg(call_id || ':' || tableoid::regclass::text, ',' order by call_id)
    from calls")" "c1:calls_p20240301,c2:calls_p20240301,c3:calls_p20240301,c4:calls_p20240301"
# c2 entered at 10:05 under acme/* (short abandons off); c3 at 10:40 under sales' own row (5 s):
# 3000 <= 5000 -> short.  c4 waited 45 s, settings at its ended_at (no queued_at): not short.
expect "abandoned_calls" "$(qr "select string_agg(call_id || ':' || from_number || ':' || coalesce(from_name, '') || ':' ||
    wait_ms || ':' || short_abandon, ',' order by call_id) from reporting.abandoned_calls")" \
    "c2:+15550002:Bob:3000:false,c3:+15550003::3000:true,c4:+15550004::45000:false"

# A day without a partition goes to calls_default; ensure then moves it.  The session's time
# zone must not shift the UTC bounds.
qw "insert into calls ($CALL_COLS) values
    ('acme', 'pbx1', 'c5', '2024-03-02 00:00:00+00', 'outbound', '+15559999', null, '+15550005', null, 'a1',
     null, null, null, null, 60000, 'answered', null, 'json'),
    ('acme', 'pbx1', 'c6', '2024-02-28 12:00:00+00', 'inbound', '+15550006', null, '+15559999', null, null,
     null, null, null, null, null, 'busy', null, 'json')"
expect "default partition" "$(qa "select string_agg(call_id, ',' order by call_id) from calls_default")" "c5,c6"
expect "ensure moves rows" "$("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "$W" \
    -c "set timezone = 'America/New_York'" -c "select callpipe_ensure_calls_partition('2024-03-02')")" "t"
expect "moved out of default" "$(qa "select string_agg(call_id, ',' order by call_id) from calls_default")" "c6"
expect "moved into day" "$(qa "select tableoid::regclass from calls where call_id = 'c5'")" "calls_p20240302"
expect "UTC bounds" "$("$PGBIN/psql" -X -q -tA -d "$DSN" -c "set timezone = 'UTC'" \
    -c "select pg_get_expr(relpartbound, oid) from pg_class where relname = 'calls_p20240302'")" \
    "FOR VALUES FROM ('2024-03-02 00:00:00+00') TO ('2024-03-03 00:00:00+00')"
qw "insert into calls ($CALL_COLS) values
    ('acme', 'pbx1', 'c7', '2024-03-02 23:00:00+00', 'inbound', '+15550007', null, '+15559999', null, null,
     null, null, null, null, null, 'answered', null, 'json')"
expect "new day partition takes inserts" "$(qa "select tableoid::regclass from calls where call_id = 'c7'")" \
    "calls_p20240302"

step "retention"
expect "drop before 2024-03-02" "$(qw "select callpipe_drop_calls_before('2024-03-02')")" "1"
expect "old partition gone" "$(qa "select coalesce(to_regclass('calls_p20240301')::text, 'gone')")" "gone"
expect "calls left" "$(qa "select string_agg(call_id, ',' order by call_id) from calls")" "c5,c7"
expect "drop again" "$(qw "select callpipe_drop_calls_before('2024-03-02')")" "0"
expect "abandoned list after retention" "$(qr "select count(*) from reporting.abandoned_calls")" "0"

step "live tables and outbox"
# queue_now is written per Kafka partition by each aggregator (007) and summed by the view.
qw "insert into queue_now_part (org, queue, partition, calls_waiting, oldest_waiting_since, agents_connected)
    values ('acme', 'sales', 0, 1, now() - interval '10 seconds', 2),
           ('acme', 'sales', 1, 1, now() - interval '30 seconds', 3),
           ('acme', 'support', 0, 0, null, 1)"
expect "queue_now" "$(qr "select string_agg(queue || ':' || calls_waiting || ':' || agents_connected || ':' ||
    coalesce((longest_wait_ms between 30000 and 90000)::text, 'NULL'), ',' order by queue) from reporting.queue_now")" \
    "sales:2:5:true,support:0:1:NULL"
qw "insert into open_calls (org, pbx, call_id, partition, state) values ('acme', 'pbx1', 'c9', 3, '\\x81a173a16f')"
expect "open_calls" "$(qw "select call_id || ':' || encode(state, 'hex') from open_calls where partition = any('{3,4}')")" \
    "c9:81a173a16f"
qw "insert into sf_jobs (job_id, org, object, operation) values ('750x0000000001', 'svc', 'VoiceCall', 'insert')"
for i in 1 2; do
    qw "insert into sf_outbox (org, pbx, call_id, ended_at, target_org) values
        ('acme', 'pbx1', 'c5', '2024-03-02 00:00:00+00', 'svc'), ('acme', 'pbx1', 'c5', '2024-03-02 00:00:00+00', 'sales')
        on conflict (org, pbx, call_id, ended_at, target_org) do nothing"
done
expect "outbox unique per call per org" "$(qw "select count(*) from sf_outbox")" "2"
expect "outbox claim" "$(qw "with c as (select id from sf_outbox where target_org = 'svc' and state in ('pending', 'retry')
        and next_attempt_at <= now() order by next_attempt_at limit 10 for update skip locked)
    update sf_outbox o set state = 'in_flight', job_id = '750x0000000001', attempts = attempts + 1, updated_at = now()
    from c where o.id = c.id returning o.call_id || ':' || o.state || ':' || o.attempts")" "c5:in_flight:1"
expect "outbox status view" "$(qr "select string_agg(target_org || ':' || state || ':' || calls, ',' order by target_org)
    from reporting.sf_outbox_status")" "sales:pending:1,svc:in_flight:1"

step "reader: every reporting view readable, nothing else"
first_column() { # schema relation: its first column that may be assigned
    qa "select attname from pg_attribute where attrelid = '$1.$2'::regclass and attnum > 0
        and not attisdropped and attidentity = '' order by attnum limit 1"
}
# Views with GROUP BY, window functions, ... cannot be written by anyone: an error either way.
NOT_UPDATABLE='cannot (insert into|update|delete from) view'
views=$(qa "select string_agg(table_name, ' ' order by table_name) from information_schema.views
    where table_schema = 'reporting'")
nviews=$(echo "$views" | wc -w)
[ "$nviews" -ge 16 ] || fail "only $nviews reporting views: $views"
for v in $views; do
    qr "select * from reporting.$v limit 1" >/dev/null 2>"$WORK/err" || {
        echo "FAIL reader cannot select reporting.$v: $(cat "$WORK/err")" >&2
        FAILS=$((FAILS + 1))
    }
    qw "select * from reporting.$v limit 1" >/dev/null || { echo "FAIL writer cannot select reporting.$v" >&2; FAILS=$((FAILS + 1)); }
    c=$(first_column reporting "$v")
    denied reader "insert into reporting.$v default values" "$NOT_UPDATABLE"
    denied reader "update reporting.$v set $c = $c where false" "$NOT_UPDATABLE"
    denied reader "delete from reporting.$v where false" "$NOT_UPDATABLE"
done
echo "ok   reader selects $nviews reporting views and cannot change them"
tables=$(qa "select string_agg(c.relname, ' ' order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')")
for t in $tables; do
    denied reader "select 1 from public.$t limit 1"
    denied reader "insert into public.$t default values"
    c=$(first_column public "$t")
    denied reader "update public.$t set $c = $c where false"
    denied reader "delete from public.$t where false"
    denied reader "truncate public.$t"
done
echo "ok   reader denied on tables: $tables"
for f in "callpipe_ensure_calls_partition('2024-04-01')" "callpipe_drop_calls_before('2000-01-01')" \
    "callpipe_int_array_add('{1}', '{1}')" "callpipe_wait_bucket(1)"; do
    denied reader "select public.$f"
done
denied reader "create table public.reader_probe (id int)"
denied reader "create view reporting.reader_probe as select 1"
denied reader "create table reader_temp_probe (id int)"
expect "reader functions in public and reporting" "$(qa "select string_agg(p.proname, ',' order by p.proname)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'reporting') and has_function_privilege('callpipe_reader', p.oid, 'EXECUTE')")" \
    "int_array_sum"

step "writer: base tables and functions, no DDL of its own"
for t in $(qa "select string_agg(c.relname, ' ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition and c.relname <> 'schema_migrations'"); do
    for p in SELECT INSERT UPDATE DELETE; do
        expect "writer $p $t" "$(qa "select has_table_privilege('callpipe_writer', 'public.$t', '$p')")" "t"
    done
done
denied writer "drop table public.calls_p20240302" 'must be owner'
denied writer "alter table public.calls detach partition public.calls_p20240302" 'must be owner'
denied writer "create view reporting.writer_probe as select 1"
# A GROUP BY view is not updatable at all (007): that refusal comes before the privilege check.
denied writer "insert into reporting.queue_now (org, queue) values ('x', 'y')" "cannot insert into view"

step "migrate again changes nothing"
"$CP" migrate --dsn "$DSN" 2>"$WORK/migrate2.log" || { cat "$WORK/migrate2.log"; fail "second migrate"; }
grep -q 'nothing to apply' "$WORK/migrate2.log" || fail "second migrate applied something"

[ "$FAILS" = 0 ] || fail "$FAILS check(s) failed"
echo "schema_views.sh: all checks passed"
