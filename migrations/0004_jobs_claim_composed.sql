-- A claim is a reservation and a claim of exactly the reserved rows, in
-- one statement: jobs_claim calls jobs_reserve (the ordered walk and its
-- plan pin) and jobs_claim_reserved (what a claim does to a row), so each
-- is defined once, in 0003, and the plain and the protected claim
-- (Queue::claim, Queue::claim_after) cannot come to differ. This
-- supersedes the body 0001 gave jobs_claim; an applied migration is never
-- edited, since sqlx checks it against the databases it ran on.
--
-- The reserved rows stay locked from the walk to the update: both run
-- inside this one statement, in the caller's transaction. The update finds
-- them by primary key.
CREATE OR REPLACE FUNCTION jobs_claim(p_worker text, p_kinds text[], p_limit integer, p_lease_ms double precision)
RETURNS SETOF jobs LANGUAGE sql VOLATILE
AS $$
    SELECT * FROM jobs_claim_reserved(
        p_worker,
        ARRAY(SELECT r.id FROM jobs_reserve(p_kinds, p_limit) AS r(id)),
        p_lease_ms
    )
$$;
