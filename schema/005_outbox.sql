-- 005_outbox.sql - Salesforce outbox (one row per finished call per target org) and Bulk API jobs.
--
-- The aggregator inserts outbox rows in the transaction that writes the call to calls; the
-- loader claims them per org with SELECT ... FOR UPDATE SKIP LOCKED.  Minimal on purpose: the
-- loader's issue refines sf_jobs in a later migration.

-- A Bulk API 2.0 ingest job.  The row is written right after the job is created and before
-- the upload, so a restarted loader resumes from local_state instead of uploading twice.
-- Jobs are never deleted automatically.
CREATE TABLE sf_jobs (
    job_id       text        PRIMARY KEY,   -- Salesforce job id
    org          text        NOT NULL,      -- target org (loader configuration name)
    object       text        NOT NULL,      -- VoiceCall, Task
    operation    text        NOT NULL,      -- insert, upsert
    state        text        NOT NULL DEFAULT 'Open', -- Salesforce job state as last seen
    local_state  text        NOT NULL DEFAULT 'created'
        CHECK (local_state IN ('created', 'uploading', 'uploaded', 'polling', 'reconciled')),
    row_count    integer     NOT NULL DEFAULT 0 CHECK (row_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE sf_jobs IS 'Salesforce Bulk API 2.0 ingest jobs with the loader''s local progress';

-- Restart recovery: the loader resumes every job not yet reconciled.
CREATE INDEX sf_jobs_unfinished_idx ON sf_jobs (org, created_at) WHERE local_state <> 'reconciled';

CREATE TABLE sf_outbox (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the call: the primary key of calls
    org              text        NOT NULL,
    pbx              text        NOT NULL,
    call_id          text        NOT NULL,
    ended_at         timestamptz NOT NULL,
    target_org       text        NOT NULL,   -- Salesforce org (loader configuration name)
    state            text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'in_flight', 'done', 'retry', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sf_id            text,                   -- Salesforce record id once done
    last_error       text,
    job_id           text        REFERENCES sf_jobs (job_id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org, pbx, call_id, ended_at, target_org)
);

COMMENT ON TABLE sf_outbox IS
    'one row per finished call per target Salesforce org; insert with ON CONFLICT (org, pbx, call_id, ended_at, target_org) DO NOTHING';

-- Claim: WHERE target_org = $1 AND state IN ('pending', 'retry') AND next_attempt_at <= now()
-- ORDER BY next_attempt_at LIMIT n FOR UPDATE SKIP LOCKED.
CREATE INDEX sf_outbox_claim_idx ON sf_outbox (target_org, state, next_attempt_at);
-- Reconciling a job's results.
CREATE INDEX sf_outbox_job_idx ON sf_outbox (job_id) WHERE job_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON sf_jobs TO callpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON sf_outbox TO callpipe_writer;
GRANT USAGE, SELECT ON SEQUENCE sf_outbox_id_seq TO callpipe_writer;
