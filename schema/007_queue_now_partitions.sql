-- 007: the live queue snapshot is written per Kafka partition, so several aggregators can share it.
--
-- Each aggregator knows only the calls of the partitions assigned to it.  A single row per
-- (org, queue) would be overwritten by whichever aggregator wrote last; instead every
-- aggregator replaces the rows of ITS partitions, and the view adds them up.  A partition
-- that moves to another aggregator is overwritten by its new owner at the next refresh.
CREATE TABLE queue_now_part (
    org                   text        NOT NULL,
    queue                 text        NOT NULL,
    partition             integer     NOT NULL CHECK (partition >= 0),
    calls_waiting         integer     NOT NULL DEFAULT 0 CHECK (calls_waiting >= 0),
    oldest_waiting_since  timestamptz,
    agents_connected      integer     NOT NULL DEFAULT 0 CHECK (agents_connected >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, queue, partition)
);
COMMENT ON TABLE queue_now_part IS
    'live per-queue snapshot per Kafka partition of callpipe.events; reporting.queue_now sums it';
CREATE INDEX queue_now_part_partition_idx ON queue_now_part (partition);
GRANT SELECT, INSERT, UPDATE, DELETE ON queue_now_part TO callpipe_writer;

CREATE OR REPLACE VIEW reporting.queue_now AS
SELECT org, queue,
       sum(calls_waiting)::integer AS calls_waiting,
       min(oldest_waiting_since) AS oldest_waiting_since,
       (extract(epoch FROM now() - min(oldest_waiting_since)) * 1000)::bigint AS longest_wait_ms,
       sum(agents_connected)::integer AS agents_connected,
       max(updated_at) AS updated_at
FROM public.queue_now_part
GROUP BY org, queue;
COMMENT ON VIEW reporting.queue_now IS
    'live per-queue snapshot summed over Kafka partitions; longest_wait_ms as of now(), NULL when nobody waits';
GRANT SELECT ON reporting.queue_now TO callpipe_reader;

DROP TABLE queue_now;
