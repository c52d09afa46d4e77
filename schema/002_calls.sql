-- 002_calls.sql - one row per finished call, partitioned by UTC day of ended_at, with partition functions.
--
-- Why ended_at partitions: a row is written once, when the call has finished, so ended_at is
-- always known (started_at is not, for some sources) and nearly every insert lands in today's
-- partition; retention ("keep N days of finished calls") is then a DROP of whole days.  A
-- call crossing midnight belongs to the day it ended.  The primary key includes ended_at
-- because a partitioned table's unique keys must contain the partition key; re-inserting the
-- same finished call (same org, pbx, call_id, ended_at) with ON CONFLICT DO NOTHING is a no-op.
CREATE TABLE calls (
    org             text        NOT NULL,
    pbx             text        NOT NULL,
    call_id         text        NOT NULL,
    ended_at        timestamptz NOT NULL,
    direction       text        CHECK (direction IN ('inbound', 'outbound', 'internal')),
    from_number     text,
    from_name       text,
    to_number       text,
    final_to        text,
    queue           text,
    agent           text,
    started_at      timestamptz,
    queued_at       timestamptz,
    answered_at     timestamptz,
    wait_ms         bigint      CHECK (wait_ms >= 0),
    talk_ms         bigint      CHECK (talk_ms >= 0),
    hold_ms         bigint      CHECK (hold_ms >= 0),
    acw_ms          bigint      CHECK (acw_ms >= 0),
    handle_ms       bigint      CHECK (handle_ms >= 0),
    disposition     text,
    queue_outcome   text,
    wrapup          text,
    hangup_side     text,
    source          text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, pbx, call_id, ended_at)
) PARTITION BY RANGE (ended_at);

COMMENT ON TABLE calls IS
    'one row per finished call; partitioned by UTC day of ended_at (calls_pYYYYMMDD, calls_default)';
COMMENT ON COLUMN calls.ended_at IS 'end of the call (UTC); the partition key';
COMMENT ON COLUMN calls.direction IS 'inbound, outbound, internal; NULL = unknown';
COMMENT ON COLUMN calls.from_number IS 'calling party number (event field "from")';
COMMENT ON COLUMN calls.to_number IS 'dialled number (event field "to")';
COMMENT ON COLUMN calls.final_to IS 'party that finally took the call (after transfers)';
COMMENT ON COLUMN calls.wait_ms IS 'queue wait in ms (enter to answer or dequeue); NULL = unknown';
COMMENT ON COLUMN calls.handle_ms IS 'talk + hold + ACW in ms; NULL = not handled / unknown';
COMMENT ON COLUMN calls.disposition IS
    'telephony outcome: answered, no_answer, busy, failed, congestion, canceled';
COMMENT ON COLUMN calls.queue_outcome IS
    'queue outcome: answered, abandoned, timeout, key_exit, full, transferred, callback, voicemail';
COMMENT ON COLUMN calls.wrapup IS 'tenant wrap-up (business disposition) code';
COMMENT ON COLUMN calls.hangup_side IS 'who hung up first (event field "side")';
COMMENT ON COLUMN calls.source IS 'source format that reported the call (event field "src")';

-- An insert never fails for want of a partition: rows of a day without its own partition
-- land here and move to the day's partition when callpipe_ensure_calls_partition creates it.
CREATE TABLE calls_default PARTITION OF calls DEFAULT;

-- Abandoned-caller lists (reporting.abandoned_calls) filter on this.
CREATE INDEX calls_abandoned_idx ON calls (org, queue, ended_at) WHERE queue_outcome = 'abandoned';

GRANT SELECT, INSERT, UPDATE, DELETE ON calls TO callpipe_writer;

-- Creates the partition calls_pYYYYMMDD for [day 00:00 UTC, day+1 00:00 UTC) unless it
-- exists, moving that day's rows out of calls_default first (attaching would fail on them).
-- Returns true when it created the partition.  Runs as the migration owner because only a
-- table's owner may attach partitions; the writer calls it when it first sees a new day,
-- before inserting that day's rows (best in its own short transaction: it locks
-- calls_default while it moves rows).
CREATE FUNCTION callpipe_ensure_calls_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text := 'calls_p' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'callpipe_ensure_calls_partition: day must not be NULL';
    END IF;
    IF to_regclass('public.' || part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Serialise creators (two aggregators seeing the same new day), then look again.
    PERFORM pg_advisory_xact_lock(hashtext('callpipe_calls_partition'));
    IF to_regclass('public.' || part) IS NOT NULL THEN
        RETURN false;
    END IF;
    LOCK TABLE public.calls_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   part);
    EXECUTE format('WITH moved AS (DELETE FROM public.calls_default WHERE ended_at >= $1 AND ended_at < $2 '
                   'RETURNING *) INSERT INTO public.%I SELECT * FROM moved', part)
        USING lo, hi;
    -- Bounds as ISO text with an explicit +00, whatever the session's DateStyle and TimeZone.
    EXECUTE format('ALTER TABLE public.calls ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   part, to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    RETURN true;
END
$$;

COMMENT ON FUNCTION callpipe_ensure_calls_partition(date) IS
    'create the calls partition of one UTC day (idempotent); true when it created it';

-- Retention: drops every day partition calls_pYYYYMMDD for days before `day` and deletes the
-- rows before `day` 00:00 UTC left in calls_default.  Returns the number of dropped partitions.
-- Partitions not named by callpipe_ensure_calls_partition are left alone.
CREATE FUNCTION callpipe_drop_calls_before(day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text;
    n integer := 0;
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'callpipe_drop_calls_before: day must not be NULL';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('callpipe_calls_partition'));
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.calls'::regclass
          AND c.relname ~ '^calls_p[0-9]{8}$'
          AND to_date(substr(c.relname, 8), 'YYYYMMDD') < day
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE public.%I', part);
        n := n + 1;
    END LOOP;
    DELETE FROM public.calls_default WHERE ended_at < day::timestamp AT TIME ZONE 'UTC';
    RETURN n;
END
$$;

COMMENT ON FUNCTION callpipe_drop_calls_before(date) IS
    'retention: drop calls day partitions before day (UTC) and old rows of calls_default';

-- Functions are executable by PUBLIC by default; these are for the services only.
REVOKE ALL ON FUNCTION callpipe_ensure_calls_partition(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION callpipe_drop_calls_before(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION callpipe_ensure_calls_partition(date) TO callpipe_writer;
GRANT EXECUTE ON FUNCTION callpipe_drop_calls_before(date) TO callpipe_writer;
