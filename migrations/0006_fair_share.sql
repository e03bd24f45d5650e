-- Fair share between tenants, and limits per tenant.
--
-- A claim no longer takes the queue's oldest jobs whoever they belong to:
-- it serves the tenants with the fewest running jobs first, so one
-- tenant's burst cannot hold every worker while another tenant waits.
-- Priorities order jobs within a tenant. A tenant may also be held to a
-- number of running jobs (max_running), queued jobs (max_queued, checked
-- at enqueue) and stored bytes (storage_quota_bytes, checked by the
-- store). NULL means the process's default from its settings, and no
-- limit when that is unset too.

ALTER TABLE tenants
    ADD COLUMN max_running integer,
    ADD COLUMN max_queued integer,
    ADD COLUMN storage_quota_bytes bigint,
    ADD CONSTRAINT tenants_max_running_positive CHECK (max_running > 0),
    ADD CONSTRAINT tenants_max_queued_positive CHECK (max_queued > 0),
    ADD CONSTRAINT tenants_storage_quota_positive CHECK (storage_quota_bytes > 0);

-- The claim walks one tenant's queued jobs at a time, in priority order,
-- and finds the tenants that have queued jobs by skipping from one tenant
-- to the next in the same index (a loose index scan). Nothing needs the
-- queue in one global priority order any more, so this index replaces
-- 0001's rather than joining it: every index on jobs costs every enqueue.
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (tenant_id, priority DESC, run_at, id) WHERE state = 'queued';

-- Running jobs by tenant (the claim counts them for its order and for
-- max_running) and by worker (the per-worker statistics); the rescuer's
-- scan of running jobs reads it whole. Replaces 0001's index on worker_id
-- alone, so the count of indexes stays what it was.
DROP INDEX jobs_running;
CREATE INDEX jobs_running ON jobs (tenant_id, worker_id) WHERE state = 'running';

-- The jobs a claim would take, locked for the caller's transaction and not
-- yet claimed (what 0003's jobs_reserve did, made fair and limited):
--
-- 1. The tenants with a claimable job are found by a loose index scan of
--    jobs_claim, each with its running jobs counted (jobs_running). The
--    scan goes round the tenants in uuid order starting after p_after
--    (the caller passes the tenant it served furthest along last time),
--    and stops once it has found p_limit tenants with nothing running:
--    none can come before those, so a claim reads about p_limit tenants
--    however many have work, while the rotation gives tenants with
--    equally few running jobs their turns.
-- 2. They are served fewest running jobs first; among equals, in the
--    rotation's order.
-- 3. p_limit jobs are shared out by water-filling: each next job goes to
--    the tenant that would then have the fewest running, so a tenant with
--    nothing running catches up with one that has many. A tenant that
--    turns out to have fewer claimable jobs than its share leaves the
--    rest to the others (another round).
-- 4. A tenant with a max_running (its own, else p_max_running, the
--    caller's default; NULL for no limit) takes at most what it lacks of
--    it. That holds exactly however many claimers run at once: the claim
--    first takes a transaction-level advisory lock per limited tenant,
--    then counts that tenant's running jobs in a later statement, whose
--    snapshot (READ COMMITTED, one per statement in this function) is
--    taken once every earlier holder of the lock has committed its claim.
--    Tenants without a limit take no lock. The locks are advisory rather
--    than row locks on tenants: they write nothing, and they meet neither
--    foreign-key checks nor the store's quota lock on the tenant's row.
--    With p_wait a claimer waits for a tenant's lock (a plain claim's
--    holder holds it for one statement); without, it passes over a
--    tenant whose lock another claimer holds (Queue::claim_after holds
--    its locks for as long as its protection call takes). Locks are
--    waited for in key order only, in the first round; later rounds only
--    try, so two claimers can never wait for each other.
-- 5. Each chosen tenant's share is walked FOR UPDATE SKIP LOCKED LIMIT
--    share in a LATERAL, so the rows locked are exactly the rows returned.
--
-- The advisory lock keys are (0x63710002, hashtext(tenant id)); the
-- enqueue's max_queued check uses (0x63710001, ...). A hash collision only
-- makes two tenants take turns.
CREATE FUNCTION jobs_tenant_lock_key(p_tenant uuid) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtext(p_tenant::text)
$$;

DROP FUNCTION jobs_claim(text, text[], integer, double precision);
DROP FUNCTION jobs_reserve(text[], integer);

CREATE FUNCTION jobs_reserve(p_kinds text[], p_limit integer, p_max_running integer, p_wait boolean,
                             p_after uuid)
RETURNS SETOF uuid LANGUAGE plpgsql VOLATILE
-- The plan pin of 0003: right after a burst of inserts the statistics
-- describe a nearly empty queue, and the planner would bitmap-scan and
-- sort a tenant's every queued row to return a handful; or walk the
-- tenant's whole job history (jobs_tenant) to find its first queued job.
-- The few sorts this function needs (of candidates, not jobs) have no
-- other plan and run regardless; the cost that enable_sort adds to them
-- would pass jit_above_cost and compile each one, so JIT is off.
SET enable_bitmapscan = off
SET enable_sort = off
SET jit = off
-- Each statement's plan is made once per session. With custom plans (the
-- default for the first executions, and then whenever a generic plan
-- looks costlier, as the sort penalty makes it look) the planning alone
-- doubled a claim's cost over many tenants. The plans do not depend on
-- the values: the walks above are pinned.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    -- The candidates, in rotation order; index i names one.
    t       uuid[];     -- tenant
    lim     integer[];  -- its max_running, NULL for none
    run     integer[];  -- its running jobs, as counted, plus those reserved here
    out_    boolean[];  -- out of this claim: nothing more to take, or locked by another claimer
    held    boolean[];  -- its advisory lock is this transaction's
    n       integer;
    limited boolean;    -- some candidate has a max_running
    left_   integer := p_limit;
    first_  boolean := true;
    pick    integer[];  -- this round's candidates, fair order
    lock_i  integer[];  -- of those, the limited ones not yet locked
    share   integer[];  -- this round's share, by candidate
    took    integer[];  -- jobs reserved this round, by candidate
    got     uuid;       -- a reserved job
    mine    uuid[] := '{}';  -- every job reserved so far
    i       integer;
    k       integer;
BEGIN
    IF p_limit < 1 THEN
        RETURN;
    END IF;

    -- 1. Tenants with a claimable job, by a loose index scan of jobs_claim
    -- (each step descends to the next tenant's first claimable job) in
    -- rotation order: after p_after, then from the start up to p_after.
    -- Each one's running jobs are counted as it is found, and the scan
    -- stops once p_limit tenants with none are found: no tenant can come
    -- before those, and the rotation decides between them.
    WITH RECURSIVE heads (tenant_id, wrapped, running, zeros, ord) AS (
        SELECT s.tenant_id, s.wrapped, c.n, (c.n = 0)::integer, 1
        FROM (
            (SELECT j.tenant_id, false AS wrapped FROM jobs j
             WHERE j.state = 'queued' AND j.run_at <= now() AND j.kind = ANY(p_kinds)
               AND j.tenant_id > p_after
             ORDER BY j.tenant_id, j.priority DESC, j.run_at, j.id
             LIMIT 1)
            UNION ALL
            (SELECT j.tenant_id, true FROM jobs j
             WHERE j.state = 'queued' AND j.run_at <= now() AND j.kind = ANY(p_kinds)
               AND j.tenant_id <= p_after
             ORDER BY j.tenant_id, j.priority DESC, j.run_at, j.id
             LIMIT 1)
            LIMIT 1
        ) AS s
        CROSS JOIN LATERAL (
            SELECT count(*)::integer AS n FROM jobs r
            WHERE r.tenant_id = s.tenant_id AND r.state = 'running'
        ) AS c
        UNION ALL
        SELECT s.tenant_id, s.wrapped, c.n, h.zeros + (c.n = 0)::integer, h.ord + 1
        FROM heads h
        CROSS JOIN LATERAL (
            (SELECT j.tenant_id, h.wrapped AS wrapped FROM jobs j
             WHERE j.state = 'queued' AND j.run_at <= now() AND j.kind = ANY(p_kinds)
               AND j.tenant_id > h.tenant_id
               AND j.tenant_id <= CASE WHEN h.wrapped THEN p_after
                                       ELSE 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid END
             ORDER BY j.tenant_id, j.priority DESC, j.run_at, j.id
             LIMIT 1)
            UNION ALL
            (SELECT j.tenant_id, true FROM jobs j
             WHERE NOT h.wrapped
               AND j.state = 'queued' AND j.run_at <= now() AND j.kind = ANY(p_kinds)
               AND j.tenant_id <= p_after
             ORDER BY j.tenant_id, j.priority DESC, j.run_at, j.id
             LIMIT 1)
            LIMIT 1
        ) AS s
        CROSS JOIN LATERAL (
            SELECT count(*)::integer AS n FROM jobs r
            WHERE r.tenant_id = s.tenant_id AND r.state = 'running'
        ) AS c
        WHERE h.zeros < p_limit
    )
    SELECT array_agg(h.tenant_id ORDER BY h.ord),
           array_agg(coalesce(tn.max_running, p_max_running) ORDER BY h.ord),
           array_agg(h.running ORDER BY h.ord),
           bool_or(coalesce(tn.max_running, p_max_running) IS NOT NULL)
    INTO t, lim, run, limited
    FROM heads h JOIN tenants tn ON tn.id = h.tenant_id;
    n := coalesce(cardinality(t), 0);
    IF n = 0 THEN
        RETURN;
    END IF;

    -- One tenant without a limit (a single-tenant deployment): no order to
    -- decide, nothing to lock.
    IF n = 1 AND lim[1] IS NULL THEN
        RETURN QUERY
            SELECT j.id FROM jobs j
            WHERE j.tenant_id = t[1] AND j.state = 'queued' AND j.run_at <= now()
              AND j.kind = ANY(p_kinds)
            ORDER BY j.priority DESC, j.run_at, j.id
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED;
        RETURN;
    END IF;

    out_ := array_fill(false, ARRAY[n]);
    held := array_fill(false, ARRAY[n]);
    took := array_fill(0, ARRAY[n]);
    share := array_fill(0, ARRAY[n]);

    LOOP
        -- 3. This round's candidates: at most left_ of them, since each
        -- one chosen gets a job before any gets a second.
        SELECT array_agg(c.i ORDER BY c.r, c.i) INTO pick
        FROM (
            SELECT s.i, run[s.i] AS r FROM generate_subscripts(t, 1) AS s(i)
            WHERE NOT out_[s.i] AND (lim[s.i] IS NULL OR run[s.i] < lim[s.i])
            ORDER BY run[s.i], s.i
            LIMIT left_
        ) AS c;
        EXIT WHEN pick IS NULL;

        -- 4. Lock the limited ones and count their running jobs afresh.
        lock_i := NULL;
        IF limited THEN
            SELECT array_agg(p.i ORDER BY jobs_tenant_lock_key(t[p.i]), p.i) INTO lock_i
            FROM unnest(pick) AS p(i)
            WHERE lim[p.i] IS NOT NULL AND NOT held[p.i];
        END IF;
        IF lock_i IS NOT NULL THEN
            FOREACH i IN ARRAY lock_i LOOP
                IF first_ AND p_wait THEN
                    PERFORM pg_advisory_xact_lock(x'63710002'::integer, jobs_tenant_lock_key(t[i]));
                    held[i] := true;
                ELSIF pg_try_advisory_xact_lock(x'63710002'::integer, jobs_tenant_lock_key(t[i])) THEN
                    held[i] := true;
                ELSE
                    out_[i] := true;
                END IF;
            END LOOP;
            -- A statement of its own, after the locks: its snapshot
            -- includes every claim of these tenants that held a lock
            -- before. Jobs reserved by this call are not running yet;
            -- a tenant is locked before anything is reserved for it.
            FOR i, k IN
                SELECT u.i, count(j.id)::integer
                FROM unnest(lock_i) AS u(i)
                LEFT JOIN jobs j ON j.tenant_id = t[u.i] AND j.state = 'running'
                WHERE held[u.i]
                GROUP BY u.i
            LOOP
                run[i] := k;
            END LOOP;
            SELECT array_agg(p.i ORDER BY run[p.i], p.i) INTO pick
            FROM unnest(pick) AS p(i)
            WHERE NOT out_[p.i] AND (lim[p.i] IS NULL OR run[p.i] < lim[p.i]);
            first_ := false;
            CONTINUE WHEN pick IS NULL;
        END IF;
        first_ := false;

        -- 5. Shares by water-filling, within each limit: one virtual slot
        -- per job a tenant could take, keyed by the running count it
        -- would then have; the left_ lowest keys win. Then the walk: each
        -- tenant's share of its queued jobs in priority order, skipping
        -- rows other claimers hold and (SKIP LOCKED does not skip this
        -- transaction's own locks) those reserved in an earlier round. One
        -- row per reserved job, and a row without one for a tenant whose
        -- walk found nothing.
        FOR i, k, got IN
            SELECT s.i, s.share, w.id
            FROM (
                SELECT x.i, count(*)::integer AS share
                FROM (
                    SELECT p.i FROM unnest(pick) WITH ORDINALITY AS p(i, ord)
                    CROSS JOIN generate_series(1, least(coalesce(lim[p.i] - run[p.i], left_), left_)) AS g(k)
                    ORDER BY run[p.i] + g.k, p.ord
                    LIMIT left_
                ) AS x
                GROUP BY x.i
            ) AS s
            LEFT JOIN LATERAL (
                SELECT j.id FROM jobs j
                WHERE j.tenant_id = t[s.i] AND j.state = 'queued' AND j.run_at <= now()
                  AND j.kind = ANY(p_kinds) AND j.id <> ALL(mine)
                ORDER BY j.priority DESC, j.run_at, j.id
                LIMIT s.share
                FOR UPDATE SKIP LOCKED
            ) AS w ON true
        LOOP
            share[i] := k;
            IF got IS NOT NULL THEN
                RETURN NEXT got;
                mine := mine || got;
                took[i] := took[i] + 1;
                run[i] := run[i] + 1;
                left_ := left_ - 1;
            END IF;
        END LOOP;
        EXIT WHEN left_ <= 0;
        -- A tenant that took less than its share has nothing more for this
        -- claim; what it left goes round again to the others.
        FOREACH i IN ARRAY pick LOOP
            IF took[i] < share[i] THEN
                out_[i] := true;
            END IF;
            took[i] := 0;
            share[i] := 0;
        END LOOP;
    END LOOP;
    RETURN;
END
$$;

-- Claims up to p_limit claimable jobs for p_worker, fairly between
-- tenants and within their max_running (jobs_reserve), and starts their
-- next attempt with a lease of p_lease_ms (jobs_claim_reserved): 0004's
-- composition, with the default max_running and the rotation passed
-- through. In plpgsql rather than SQL, as jobs_claim_reserved below, so
-- that the statement's plan is cached per session instead of made anew by
-- every claim.
CREATE FUNCTION jobs_claim(p_worker text, p_kinds text[], p_limit integer, p_lease_ms double precision,
                           p_max_running integer, p_after uuid)
RETURNS SETOF jobs LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM jobs_claim_reserved(
        p_worker,
        ARRAY(SELECT r.id FROM jobs_reserve(p_kinds, p_limit, p_max_running, true, p_after) AS r(id)),
        p_lease_ms
    );
END
$$;

-- 0003's jobs_claim_reserved, unchanged but for its language (see above).
CREATE OR REPLACE FUNCTION jobs_claim_reserved(p_worker text, p_ids uuid[], p_lease_ms double precision)
RETURNS SETOF jobs LANGUAGE plpgsql VOLATILE
-- Rows by primary key whatever the ids: one plan for every call.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
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
    RETURNING j.*;
END
$$;

-- Admits a batch about to be enqueued (tenant and idempotency key of each
-- job), or raises SQLSTATE CQ001 when a tenant's queued jobs would pass
-- its max_queued (its own, else p_max_queued, the caller's default; NULL
-- for no limit). DETAIL carries {"tenant": ..., "limit": ...}.
--
-- Only jobs that will be new count: a job whose key names a live job of
-- the tenant resolves to that job, so a client retrying a submit at the
-- limit gets its job back rather than a refusal. Exact under concurrent
-- enqueues: each limited tenant's advisory lock (0x63710001) is taken
-- first and held to the end of the enqueuing transaction, and the count
-- is a later statement, whose snapshot includes every earlier holder's
-- committed jobs. Tenants without a limit take no lock.
CREATE FUNCTION jobs_admit(p_tenants uuid[], p_keys text[], p_max_queued integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    r        record;
    v_queued bigint;
    v_new    bigint;
BEGIN
    FOR r IN
        SELECT tn.id, coalesce(tn.max_queued, p_max_queued) AS lim
        FROM tenants tn
        WHERE tn.id = ANY(p_tenants) AND coalesce(tn.max_queued, p_max_queued) IS NOT NULL
        ORDER BY jobs_tenant_lock_key(tn.id), tn.id
    LOOP
        PERFORM pg_advisory_xact_lock(x'63710001'::integer, jobs_tenant_lock_key(r.id));
        SELECT count(*) INTO v_new
        FROM unnest(p_tenants, p_keys) AS b(tenant_id, key)
        WHERE b.tenant_id = r.id
          AND (b.key IS NULL OR NOT EXISTS (
              SELECT 1 FROM jobs j
              WHERE j.tenant_id = r.id AND j.idempotency_key = b.key
                AND j.state IN ('queued', 'running', 'succeeded')));
        CONTINUE WHEN v_new = 0;
        SELECT count(*) INTO v_queued FROM jobs j WHERE j.tenant_id = r.id AND j.state = 'queued';
        IF v_queued + v_new > r.lim THEN
            RAISE EXCEPTION 'tenant % may have at most % queued jobs', r.id, r.lim
                USING ERRCODE = 'CQ001',
                      DETAIL = json_build_object('tenant', r.id, 'limit', r.lim)::text;
        END IF;
    END LOOP;
    RETURN true;
END
$$;
