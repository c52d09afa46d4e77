-- 003_intervals.sql - additive per-queue metrics per 15-minute UTC interval, by disposition and wrap-up.
--
-- Every column except the keys, the maxima and updated_at is additive: the aggregator
-- upserts deltas (`x = t.x + EXCLUDED.x`), maxima with GREATEST and the histograms with
-- callpipe_int_array_add.  Averages, rates and service levels are never stored; the views in
-- reporting (006) compute them from these sums, so they roll up to any grain exactly.
-- interval_start is the UTC start of the 15-minute interval where the event happened.

-- Wait histogram bucket bounds in seconds, upper bound inclusive: 17 buckets
--   1: wait <= 5 s        2: 5 < wait <= 8     3: 8-10     4: 10-15    5: 15-20
--   6: 20-25              7: 25-30             8: 30-45    9: 45-60   10: 60-90
--  11: 90-120            12: 120-180          13: 180-240 14: 240-300 15: 300-600
--  16: 600-1200          17: wait > 1200 s
-- (union of Amazon Connect's "within X" list and Cisco's default bucket bounds; the sum of
-- buckets 1..k is the exact count of waits <= bound k, so "answered within 20 s" is
-- buckets 1..5).  Changing the bounds means new columns in a new migration.
CREATE FUNCTION callpipe_wait_bucket(wait_ms bigint) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 1 + count(*)::integer
    FROM unnest(ARRAY[5, 8, 10, 15, 20, 25, 30, 45, 60, 90, 120, 180, 240, 300, 600, 1200]) AS b(s)
    WHERE wait_ms > b.s * 1000::bigint
$$;

COMMENT ON FUNCTION callpipe_wait_bucket(bigint) IS
    '1-based wait histogram bucket of a wait in ms (bounds 5,8,10,15,20,25,30,45,60,90,120,180,240,300,600,1200 s, +inf)';

-- Element-wise sum of two histograms of the same length, for additive upserts:
--   answered_wait_hist = callpipe_int_array_add(t.answered_wait_hist, EXCLUDED.answered_wait_hist)
CREATE FUNCTION callpipe_int_array_add(a integer[], b integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A length mismatch is a bug in the writer: fail rather than pad with NULLs.
    IF cardinality(a) <> cardinality(b) THEN
        RAISE EXCEPTION 'callpipe_int_array_add: arrays of % and % elements', cardinality(a), cardinality(b)
            USING ERRCODE = 'array_subscript_error';
    END IF;
    RETURN ARRAY(SELECT x + y FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i) ORDER BY i);
END
$$;

COMMENT ON FUNCTION callpipe_int_array_add(integer[], integer[]) IS
    'element-wise sum of two equal-length integer arrays (wait histograms); errors on a length mismatch';

CREATE TABLE queue_interval (
    org                       text        NOT NULL,
    queue                     text        NOT NULL,
    interval_start            timestamptz NOT NULL
        CHECK (extract(epoch FROM interval_start)::bigint % 900 = 0),
    -- volume (counts of queue visits, booked at the event named)
    offered                   integer     NOT NULL DEFAULT 0, -- queue entry
    answered                  integer     NOT NULL DEFAULT 0, -- agent answer
    abandoned                 integer     NOT NULL DEFAULT 0, -- caller hung up in queue (incl. short)
    short_abandoned           integer     NOT NULL DEFAULT 0, -- subset of abandoned: wait <= short_abandon_ms
    timed_out                 integer     NOT NULL DEFAULT 0, -- flow-out: queue timeout
    key_exit                  integer     NOT NULL DEFAULT 0, -- flow-out: caller pressed an exit key
    queue_full                integer     NOT NULL DEFAULT 0, -- flow-out: queue full / join or leave empty
    callback                  integer     NOT NULL DEFAULT 0, -- flow-out: converted to a callback
    voicemail                 integer     NOT NULL DEFAULT 0, -- flow-out: sent to voicemail
    transferred_out_of_queue  integer     NOT NULL DEFAULT 0, -- flow-out: transferred while queued
    other_flowout             integer     NOT NULL DEFAULT 0, -- flow-out: any other unanswered exit
    transferred_in            integer     NOT NULL DEFAULT 0, -- agent transfers into this queue
    transferred_out           integer     NOT NULL DEFAULT 0, -- agent transfers out after answer
    agent_noanswer            integer     NOT NULL DEFAULT 0, -- per offer attempt not accepted (RONA)
    handled                   integer     NOT NULL DEFAULT 0, -- handling ended (wrap-up end)
    held                      integer     NOT NULL DEFAULT 0, -- handled calls with hold_ms > 0
    -- service-level components (threshold and comparison from queue_settings at the event)
    answered_within_sl        integer     NOT NULL DEFAULT 0,
    abandoned_within_sl       integer     NOT NULL DEFAULT 0,
    -- sums in ms
    answered_wait_ms          bigint      NOT NULL DEFAULT 0, -- booked with answered
    abandoned_wait_ms         bigint      NOT NULL DEFAULT 0, -- booked with abandoned
    talk_ms                   bigint      NOT NULL DEFAULT 0, -- booked with handled
    hold_ms                   bigint      NOT NULL DEFAULT 0, -- booked with handled
    acw_ms                    bigint      NOT NULL DEFAULT 0, -- booked with handled
    handle_ms                 bigint      NOT NULL DEFAULT 0, -- talk + hold + acw, with handled
    -- maxima in ms (upsert with GREATEST, roll up with max)
    answered_wait_max_ms      bigint      NOT NULL DEFAULT 0,
    abandoned_wait_max_ms     bigint      NOT NULL DEFAULT 0,
    -- wait histograms: 17 buckets, bounds in callpipe_wait_bucket (5 ... 1200 s, +inf)
    answered_wait_hist        integer[]   NOT NULL DEFAULT array_fill(0, ARRAY[17])
        CHECK (cardinality(answered_wait_hist) = 17 AND array_position(answered_wait_hist, NULL) IS NULL),
    abandoned_wait_hist       integer[]   NOT NULL DEFAULT array_fill(0, ARRAY[17])
        CHECK (cardinality(abandoned_wait_hist) = 17 AND array_position(abandoned_wait_hist, NULL) IS NULL),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue, interval_start)
);

COMMENT ON TABLE queue_interval IS
    'additive queue metrics per (org, queue, 15-minute UTC interval); averages and rates live in reporting views';
COMMENT ON COLUMN queue_interval.answered_wait_hist IS
    'answered calls per wait bucket, upper bounds 5,8,10,15,20,25,30,45,60,90,120,180,240,300,600,1200 s, +inf (inclusive)';
COMMENT ON COLUMN queue_interval.abandoned_wait_hist IS
    'abandoned calls per wait bucket, upper bounds 5,8,10,15,20,25,30,45,60,90,120,180,240,300,600,1200 s, +inf (inclusive)';

-- Dashboards read by time range across queues.
CREATE INDEX queue_interval_start_idx ON queue_interval (interval_start);

CREATE TABLE queue_disposition_interval (
    org             text        NOT NULL,
    queue           text        NOT NULL, -- '' for calls that never entered a queue
    interval_start  timestamptz NOT NULL
        CHECK (extract(epoch FROM interval_start)::bigint % 900 = 0),
    disposition     text        NOT NULL, -- telephony outcome, as calls.disposition
    calls           integer     NOT NULL DEFAULT 0,
    handle_ms       bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue, interval_start, disposition)
);

COMMENT ON TABLE queue_disposition_interval IS
    'finished calls per telephony disposition per (org, queue, 15-minute interval of ended_at)';

CREATE TABLE queue_wrapup_interval (
    org             text        NOT NULL,
    queue           text        NOT NULL, -- '' for calls that never entered a queue
    interval_start  timestamptz NOT NULL
        CHECK (extract(epoch FROM interval_start)::bigint % 900 = 0),
    wrapup          text        NOT NULL, -- tenant wrap-up code, as calls.wrapup
    calls           integer     NOT NULL DEFAULT 0,
    handle_ms       bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue, interval_start, wrapup)
);

COMMENT ON TABLE queue_wrapup_interval IS
    'handled calls per wrap-up code per (org, queue, 15-minute interval of the wrap-up end)';

GRANT SELECT, INSERT, UPDATE, DELETE ON queue_interval TO callpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON queue_disposition_interval TO callpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON queue_wrapup_interval TO callpipe_writer;

REVOKE ALL ON FUNCTION callpipe_wait_bucket(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION callpipe_int_array_add(integer[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION callpipe_wait_bucket(bigint) TO callpipe_writer;
GRANT EXECUTE ON FUNCTION callpipe_int_array_add(integer[], integer[]) TO callpipe_writer;
