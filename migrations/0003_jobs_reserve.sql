-- The jobs a claim would take, locked for the caller's transaction and not
-- yet claimed. A worker that must do something before it claims (take ECS
-- scale-in protection) holds them locked while it does: other workers skip
-- locked rows, so of the workers woken for one job only the one that
-- locked it makes that call, and a worker that finds nothing makes none.
-- The claim then runs jobs_claim in the same transaction, which takes the
-- caller's own locked rows first in the same order. Same walk and plan pin
-- as jobs_claim.
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
