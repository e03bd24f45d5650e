-- The jobs a claim would take, locked for the caller's transaction and not
-- yet claimed. A worker that must do something before it claims (take ECS
-- scale-in protection) holds them locked while it does: other workers skip
-- locked rows, so of the workers woken for one job only the one that
-- locked it makes that call, and a worker that finds nothing makes none.
-- The claim then takes exactly those rows (jobs_claim_reserved) in the
-- same transaction. Same walk and plan pin as jobs_claim.
CREATE FUNCTION jobs_reserve(p_kinds text[], p_limit integer)
RETURNS SETOF uuid LANGUAGE sql VOLATILE
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
    SELECT id FROM jobs
    WHERE state = 'queued' AND run_at <= now() AND kind = ANY(p_kinds)
    ORDER BY priority DESC, run_at, id
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
$$;

-- Claims exactly the jobs the caller reserved (and still holds locked):
-- what jobs_claim does to the rows it picks, to rows picked earlier.
CREATE FUNCTION jobs_claim_reserved(p_worker text, p_ids uuid[], p_lease_ms double precision)
RETURNS SETOF jobs LANGUAGE sql VOLATILE
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
    WHERE j.id = ANY(p_ids) AND j.state = 'queued'
    RETURNING j.*
$$;
