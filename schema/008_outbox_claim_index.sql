-- 008: an index for the loader's claim of due outbox rows per target org.
--
-- The loader claims `WHERE target_org = $1 AND state IN ('pending','retry') AND
-- next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT n FOR UPDATE SKIP LOCKED`.
-- With this partial index the scan walks due rows in order and stops at n, so a claim
-- costs the batch, not the backlog (make bench-loader: 1,000,000 queued rows).
CREATE INDEX sf_outbox_due_idx ON sf_outbox (target_org, next_attempt_at, id)
    WHERE state IN ('pending', 'retry');
