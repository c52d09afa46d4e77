-- 004_live.sql - live queue snapshot, in-flight call state for restarts, and per-queue metric settings.

-- Snapshot of "now" per queue, upserted (overwritten, not added) by the aggregator every few
-- seconds from its in-memory state.
CREATE TABLE queue_now (
    org                   text        NOT NULL,
    queue                 text        NOT NULL,
    calls_waiting         integer     NOT NULL DEFAULT 0 CHECK (calls_waiting >= 0),
    oldest_waiting_since  timestamptz,            -- queue entry of the oldest waiting call; NULL = none
    agents_connected      integer     NOT NULL DEFAULT 0 CHECK (agents_connected >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue)
);

COMMENT ON TABLE queue_now IS 'live per-queue snapshot, overwritten by the aggregator (not additive)';

-- In-flight calls: written in the same transaction as the deltas they produced and the next
-- Kafka offset, so an aggregator that takes over a partition resumes exactly where the last
-- one stopped.  A row is deleted in the transaction that writes the finished call to calls.
CREATE TABLE open_calls (
    org         text        NOT NULL,
    pbx         text        NOT NULL,
    call_id     text        NOT NULL,
    partition   integer     NOT NULL CHECK (partition >= 0), -- Kafka partition of callpipe.events
    state       bytea       NOT NULL,                        -- msgpack, owned by the aggregator
    first_seen  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, pbx, call_id)
);

COMMENT ON TABLE open_calls IS
    'in-flight call state per call (msgpack, opaque to SQL), reloaded per assigned Kafka partition';
COMMENT ON COLUMN open_calls.state IS 'aggregator call state as msgpack; SQL never looks inside';

-- On partition assignment: SELECT ... FROM open_calls WHERE partition = ANY($1).
CREATE INDEX open_calls_partition_idx ON open_calls (partition);

-- Per-queue metric settings, versioned: the row in force for (org, queue) at time t is the
-- one with the latest valid_from <= t among that queue's rows; a queue with none in force
-- uses the org's queue '*' row, and an org with none uses org '*', queue '*'.
CREATE TABLE queue_settings (
    org               text        NOT NULL, -- '*' = every org
    queue             text        NOT NULL, -- '*' = every queue of the org
    valid_from        timestamptz NOT NULL DEFAULT '-infinity',
    sl_threshold_ms   integer     NOT NULL DEFAULT 20000 CHECK (sl_threshold_ms >= 0),
    sl_compare        text        NOT NULL DEFAULT '<=' CHECK (sl_compare IN ('<=', '<')),
    short_abandon_ms  integer     NOT NULL DEFAULT 0 CHECK (short_abandon_ms >= 0), -- 0 = off
    abandon_mode      text        NOT NULL DEFAULT 'negative'
        CHECK (abandon_mode IN ('ignore', 'negative', 'positive')),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue, valid_from)
);

COMMENT ON TABLE queue_settings IS
    'service-level and abandon settings per (org, queue), in force from valid_from; queue or org ''*'' = default';
COMMENT ON COLUMN queue_settings.sl_threshold_ms IS 'service-level threshold: answered/abandoned within it count toward SL';
COMMENT ON COLUMN queue_settings.sl_compare IS '''<='' (wait <= threshold, default) or ''<'' (wait < threshold)';
COMMENT ON COLUMN queue_settings.short_abandon_ms IS
    'an abandon with wait <= this is also a short abandon; 0 = no short abandons';
COMMENT ON COLUMN queue_settings.abandon_mode IS
    'headline service level: ignore = (a) A<=/A, negative = (b) A<=/(A+Ab), positive = (c) (A<=+Ab<=)/(A+Ab)';

-- The default for every org and queue: 20 s, <=, no short abandons, abandons count as missed.
INSERT INTO queue_settings (org, queue, valid_from) VALUES ('*', '*', '-infinity');

GRANT SELECT, INSERT, UPDATE, DELETE ON queue_now TO callpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON open_calls TO callpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON queue_settings TO callpipe_writer;
