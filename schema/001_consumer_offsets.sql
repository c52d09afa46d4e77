-- 001_consumer_offsets.sql - the next Kafka offset per consumer group and partition.
--
-- The aggregator writes a partition's row in the same transaction as the data that the
-- consumed events produced, so after a crash it seeks to exactly where the database is.
CREATE TABLE consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   int         NOT NULL CHECK (partition >= 0),
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

COMMENT ON TABLE consumer_offsets IS
    'next Kafka offset to consume per group, topic and partition; committed with the data';

GRANT SELECT, INSERT, UPDATE, DELETE ON consumer_offsets TO callpipe_writer;
