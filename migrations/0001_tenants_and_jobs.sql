-- The one schema for crunch. Every owned row names its tenant from the start,
-- so that no query can be written that ignores ownership.

CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The tenant every request belongs to until API keys map requests to tenants.
INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000000', 'default');

-- The closed set of job states; ARCHITECTURE.md documents every transition.
CREATE TYPE job_state AS ENUM ('queued', 'running', 'succeeded', 'failed', 'cancelled');

-- One row per job: the single source of truth for its state, lease, progress,
-- outcome and timings. Only the crunch-queue crate reads or writes it.
CREATE TABLE jobs (
    -- UUIDv7 minted by the enqueuer: time-ordered (index locality, cursor
    -- order) and known before the insert, so a batch can be matched to its rows.
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    kind                text NOT NULL,
    payload             jsonb NOT NULL,
    state               job_state NOT NULL DEFAULT 'queued',
    -- Higher runs first.
    priority            smallint NOT NULL DEFAULT 0,
    -- Not claimable before this instant; also carries retry backoff.
    run_at              timestamptz(3) NOT NULL,
    -- Starts made so far; bumped by every claim and never lowered, so
    -- (id, attempt) names one execution and fences every write a worker makes.
    attempt             integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL,
    timeout_ms          bigint NOT NULL,
    -- Lease of the running attempt; heartbeats push it forward. Deliberately
    -- not indexed so heartbeats stay HOT updates.
    lease_expires_at    timestamptz,
    worker_id           text,
    heartbeat_at        timestamptz,
    -- Set by a cancel of a running job; the worker sees it on its next
    -- heartbeat (or at once through NOTIFY) and stops.
    cancel_requested_at timestamptz,
    progress            real,
    progress_message    text,
    -- Error of the latest failed attempt, kept when a retry succeeds.
    error               text,
    -- The handler's result summary.
    result              jsonb,
    idempotency_key     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Start of the latest attempt.
    started_at          timestamptz,
    finished_at         timestamptz,

    CONSTRAINT jobs_priority_range CHECK (priority BETWEEN -100 AND 100),
    CONSTRAINT jobs_attempt_range CHECK (attempt >= 0 AND attempt <= max_attempts),
    CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts >= 1),
    CONSTRAINT jobs_timeout_positive CHECK (timeout_ms > 0),
    CONSTRAINT jobs_progress_fraction CHECK (progress BETWEEN 0 AND 1),
    CONSTRAINT jobs_running_has_lease CHECK (
        state <> 'running' OR (lease_expires_at IS NOT NULL AND worker_id IS NOT NULL AND attempt >= 1)
    ),
    CONSTRAINT jobs_finished_iff_terminal CHECK (
        (state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)
    ),
    CONSTRAINT jobs_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 255)
-- Room on each page for the heartbeat and progress updates to stay HOT.
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The claim path: the next claimable jobs in priority order.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) WHERE state = 'queued';

-- A tenant's jobs, newest first: listing with cursor pagination.
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);

-- Running jobs, by worker: the rescuer's scan and the per-worker statistics.
CREATE INDEX jobs_running ON jobs (worker_id) WHERE state = 'running';

-- Retention prunes terminal jobs oldest first.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('succeeded', 'failed', 'cancelled');

-- An idempotency key names one job among the tenant's live and successful
-- jobs; a failed or cancelled job frees its key so the client can try again.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running', 'succeeded');

-- Wake workers once per inserting statement, not once per row. The payload is
-- the comma-separated kinds that became claimable, so workers of other kinds
-- can ignore it. Delivered at commit, so a job is announced only if it exists.
CREATE FUNCTION jobs_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kinds text;
BEGIN
    SELECT string_agg(DISTINCT kind, ',') INTO kinds
    FROM inserted
    WHERE state = 'queued' AND run_at <= now();
    IF kinds IS NOT NULL THEN
        PERFORM pg_notify('crunch_jobs', kinds);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_inserted
    AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify_inserted();

-- Where a finishing attempt leads, given what the worker reported. One
-- definition shared by every statement that ends an attempt (the worker's
-- finish and the rescuer's), so they cannot disagree. Outcomes:
--   succeeded  the handler returned a result
--   retry      the handler failed (or its lease expired); retried while attempts remain
--   failed     the handler failed with an error that forbids retrying
--   cancelled  the handler stopped because of a cancel request
--   released   the worker gave the job back unfinished (shutdown)
-- A requested cancel wins over every outcome but success.
CREATE FUNCTION jobs_next_state(outcome text, attempt integer, max_attempts integer, cancel_requested_at timestamptz)
RETURNS job_state LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN outcome = 'succeeded' THEN 'succeeded'::job_state
        WHEN outcome = 'cancelled' OR cancel_requested_at IS NOT NULL THEN 'cancelled'::job_state
        WHEN outcome = 'released' THEN 'queued'::job_state
        WHEN outcome = 'retry' AND attempt < max_attempts THEN 'queued'::job_state
        ELSE 'failed'::job_state
    END
$$;

-- Claims up to p_limit claimable jobs of the given kinds for p_worker, in
-- priority order, and starts their next attempt with a lease of p_lease_ms.
-- One statement; SKIP LOCKED lets concurrent claimers pass each other.
--
-- A function only to pin the plan to an ordered walk of jobs_claim that
-- stops after p_limit rows. Right after a burst of inserts the statistics
-- still describe a nearly empty queue, and the planner would otherwise
-- bitmap-scan and sort every queued row to return a handful.
CREATE FUNCTION jobs_claim(p_worker text, p_kinds text[], p_limit integer, p_lease_ms double precision)
RETURNS SETOF jobs LANGUAGE sql VOLATILE
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
    UPDATE jobs AS j
    SET state = 'running',
        attempt = j.attempt + 1,
        worker_id = p_worker,
        started_at = now(),
        heartbeat_at = now(),
        lease_expires_at = now() + p_lease_ms * interval '1 millisecond',
        progress = NULL,
        progress_message = NULL
    FROM (
        SELECT id FROM jobs
        WHERE state = 'queued' AND run_at <= now() AND kind = ANY(p_kinds)
        ORDER BY priority DESC, run_at, id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS next
    WHERE j.id = next.id
    RETURNING j.*
$$;
