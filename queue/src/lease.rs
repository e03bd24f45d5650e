//! What workers do to jobs: claim them, renew their leases, report
//! progress and outcomes. Every write after the claim is fenced by the
//! attempt's [`Lease`]: it matches only while the job is still `running`
//! in that same attempt.

use std::time::Duration;

use uuid::Uuid;

use crate::{
    Queue,
    error::QueueError,
    job::{ClaimedJob, JobId, JobState, Lease, Outcome, TenantId},
    tenants::sql_limit,
};

/// A running job's progress as its handler last reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Fraction done, 0 to 1 (clamped).
    pub fraction: f32,
    /// What the handler is doing, if it said.
    pub message: Option<String>,
}

/// One lease's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    /// The lease that was renewed.
    pub lease: Lease,
    /// A cancel was asked for: the worker should stop the job.
    pub cancel_requested: bool,
}

/// One attempt's finish as the database recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The job.
    pub id: JobId,
    /// The state the job moved to.
    pub state: JobState,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Queue {
    /// Claims up to `limit` claimable jobs of the given kinds for
    /// `worker_id`, fairly between tenants, in one short statement.
    ///
    /// Tenants with the fewest running jobs are served first, and the jobs
    /// are shared out so that running counts even out (a tenant with a
    /// backlog cannot keep another waiting); among tenants with equally few,
    /// claims from this queue take turns. Within a tenant, the highest
    /// priority goes first, then the longest waiting. A tenant's
    /// `max_running` (its own, else this queue's [`TenantDefaults`]) holds
    /// exactly, however many claims run at once: the statement locks each
    /// limited tenant (a transaction-level advisory lock, waited for) and
    /// counts its running jobs under the lock (`jobs_reserve`, migration
    /// 0006).
    ///
    /// Each claimed job moves to `running`, its `attempt` goes up by one and
    /// it gets a lease of `lease` from now. No transaction stays open: the
    /// lease, renewed by heartbeats, is what keeps the job this worker's.
    pub async fn claim(
        &self,
        worker_id: &str,
        kinds: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedJob>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = self.rotation();
        let rows = sqlx::query_as!(
            ClaimRow,
            r#"
            SELECT id AS "id!", attempt AS "attempt!", tenant_id AS "tenant_id!", kind AS "kind!",
                   payload AS "payload!", priority AS "priority!", max_attempts AS "max_attempts!",
                   timeout_ms AS "timeout_ms!", run_at AS "run_at!",
                   lease_expires_at AS "lease_expires_at!"
            FROM jobs_claim($1, $2, $3, $4, $5, $6)
            "#,
            worker_id,
            kinds,
            i32::try_from(limit).unwrap_or(i32::MAX),
            millis(lease) as f64,
            sql_limit(self.defaults.max_running),
            after,
        )
        .fetch_all(self.pool())
        .await?;
        self.rotate(after, &rows);
        Ok(claimed_jobs(rows))
    }

    /// Claims like [`Queue::claim`], but first locks the jobs it would take
    /// and awaits `before` while holding them: other workers skip locked
    /// jobs, so of the workers woken for one job only the one that locked
    /// it awaits its `before` (takes scale-in protection, say), and a
    /// worker that finds nothing awaits nothing. If `before` fails, nothing
    /// is claimed and the jobs are unlocked for the next worker to poll.
    ///
    /// The locks last as long as `before` does, so it must be bounded (the
    /// protection call has a timeout). The claim takes exactly the locked
    /// jobs, in the same transaction, whose start is its `now()`: the lease
    /// and `started_at` count from the reservation.
    ///
    /// The jobs are chosen as [`Queue::claim`] chooses them (the same
    /// `jobs_reserve`), with one difference: a limited tenant whose lock
    /// another claimer holds is passed over rather than waited for, since
    /// that claimer may hold it for as long as its own `before` takes.
    pub async fn claim_after(
        &self,
        worker_id: &str,
        kinds: &[String],
        limit: usize,
        lease: Duration,
        before: impl Future<Output = Result<(), QueueError>>,
    ) -> Result<Vec<ClaimedJob>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = self.rotation();
        let mut tx = self.pool().begin().await?;
        let reserved = sqlx::query_scalar!(
            r#"SELECT r.id AS "id!" FROM jobs_reserve($1, $2, $3, false, $4) AS r(id)"#,
            kinds,
            i32::try_from(limit).unwrap_or(i32::MAX),
            sql_limit(self.defaults.max_running),
            after,
        )
        .fetch_all(&mut *tx)
        .await?;
        if reserved.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        // Dropping the transaction on failure rolls it back, unlocking the
        // jobs; another worker's next poll finds them (no wake-up, so that
        // a failing call cannot set every worker polling in a loop).
        before.await?;
        let rows = sqlx::query_as!(
            ClaimRow,
            r#"
            SELECT id AS "id!", attempt AS "attempt!", tenant_id AS "tenant_id!", kind AS "kind!",
                   payload AS "payload!", priority AS "priority!", max_attempts AS "max_attempts!",
                   timeout_ms AS "timeout_ms!", run_at AS "run_at!",
                   lease_expires_at AS "lease_expires_at!"
            FROM jobs_claim_reserved($1, $2, $3)
            "#,
            worker_id,
            &reserved,
            millis(lease) as f64,
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        self.rotate(after, &rows);
        Ok(claimed_jobs(rows))
    }

    /// Renews the leases of running attempts by `lease` from now, records
    /// their latest progress, and reports which were asked to cancel.
    ///
    /// A lease missing from the answer is lost (the job was rescued, taken
    /// over, or finished elsewhere): its worker must stop the job and write
    /// nothing more about it.
    pub async fn heartbeat(
        &self,
        leases: &[(Lease, Option<Progress>)],
        lease: Duration,
    ) -> Result<Vec<Renewed>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = leases.iter().map(|(l, _)| l.id.0).collect();
        let attempts: Vec<i32> = leases.iter().map(|(l, _)| l.attempt).collect();
        let fractions: Vec<Option<f32>> = leases
            .iter()
            .map(|(_, p)| p.as_ref().map(|p| p.fraction.clamp(0.0, 1.0)))
            .collect();
        let messages: Vec<Option<String>> = leases
            .iter()
            .map(|(_, p)| p.as_ref().and_then(|p| p.message.clone()))
            .collect();
        let rows = sqlx::query!(
            r#"
            UPDATE jobs AS j
            SET lease_expires_at = now() + $1 * interval '1 millisecond',
                heartbeat_at = now(),
                progress = coalesce(h.progress, j.progress),
                progress_message = CASE WHEN h.progress IS NULL THEN j.progress_message
                                        ELSE h.message END
            FROM unnest($2::uuid[], $3::int4[], $4::real[], $5::text[])
                 AS h(id, attempt, progress, message)
            WHERE j.id = h.id AND j.attempt = h.attempt AND j.state = 'running'
            RETURNING j.id, j.attempt, j.cancel_requested_at IS NOT NULL AS "cancel_requested!"
            "#,
            millis(lease) as f64,
            &ids,
            &attempts,
            &fractions as &[Option<f32>],
            &messages as &[Option<String>],
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Renewed {
                lease: Lease {
                    id: JobId(r.id),
                    attempt: r.attempt,
                },
                cancel_requested: r.cancel_requested,
            })
            .collect())
    }

    /// Records one attempt's progress at once. Returns false when the lease
    /// is lost, in which case nothing was written.
    pub async fn set_progress(
        &self,
        lease: Lease,
        progress: &Progress,
    ) -> Result<bool, QueueError> {
        let done = sqlx::query!(
            r#"
            UPDATE jobs SET progress = $3, progress_message = $4
            WHERE id = $1 AND attempt = $2 AND state = 'running'
            "#,
            lease.id.0,
            lease.attempt,
            progress.fraction.clamp(0.0, 1.0),
            progress.message,
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends one attempt with `outcome`. Returns the job's new state, or
    /// `None` when the lease is lost and nothing was written.
    pub async fn finish(
        &self,
        lease: Lease,
        outcome: Outcome,
    ) -> Result<Option<JobState>, QueueError> {
        let finished = self.finish_batch(&[(lease, outcome)]).await?;
        Ok(finished.first().map(|f| f.state))
    }

    /// Ends many attempts in one statement. Attempts whose lease is lost are
    /// left untouched and missing from the answer.
    ///
    /// Where each job goes is decided in SQL by `jobs_next_state`, the one
    /// definition the rescuer shares: a retry with attempts left goes back
    /// to `queued` after its backoff, a requested cancel ends in
    /// `cancelled`, a release gives the attempt back.
    pub async fn finish_batch(
        &self,
        items: &[(Lease, Outcome)],
    ) -> Result<Vec<Finished>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = items.iter().map(|(l, _)| l.id.0).collect();
        let attempts: Vec<i32> = items.iter().map(|(l, _)| l.attempt).collect();
        let outcomes: Vec<String> = items.iter().map(|(_, o)| o.sql_name().to_owned()).collect();
        let results: Vec<Option<serde_json::Value>> = items
            .iter()
            .map(|(_, o)| match o {
                Outcome::Succeeded(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let errors: Vec<Option<String>> = items
            .iter()
            .map(|(_, o)| match o {
                Outcome::Failed { error, .. } => Some(error.clone()),
                _ => None,
            })
            .collect();
        let delays: Vec<i64> = items
            .iter()
            .map(|(_, o)| match o {
                Outcome::Failed {
                    retry_in: Some(d), ..
                } => millis(*d),
                _ => 0,
            })
            .collect();
        Ok(sqlx::query_as!(
            Finished,
            r#"
            WITH done AS (
            UPDATE jobs AS j
            SET state = jobs_next_state(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at),
                run_at = CASE
                    WHEN jobs_next_state(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'queued'
                    THEN date_trunc('milliseconds', now()) + f.delay_ms * interval '1 millisecond'
                    ELSE j.run_at END,
                finished_at = CASE
                    WHEN jobs_next_state(f.outcome, j.attempt, j.max_attempts, j.cancel_requested_at) = 'queued'
                    THEN NULL ELSE now() END,
                -- A release hands the attempt back: attempt stays (it is the
                -- fencing token and never goes down), the allowance grows.
                max_attempts = j.max_attempts + (f.outcome = 'released' AND j.cancel_requested_at IS NULL)::int,
                result = CASE WHEN f.outcome = 'succeeded' THEN f.result ELSE j.result END,
                error = coalesce(f.error, j.error),
                progress = CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE j.progress END,
                lease_expires_at = NULL
            FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::jsonb[], $5::text[], $6::int8[])
                 AS f(id, attempt, outcome, result, error, delay_ms)
            WHERE j.id = f.id AND j.attempt = f.attempt AND j.state = 'running'
            RETURNING j.id, j.state
            ),
            -- One notification per statement for clients waiting on jobs.
            announced AS (
                SELECT pg_notify('crunch_finished', '')
                FROM (SELECT 1 FROM done WHERE state <> 'queued' LIMIT 1) AS any_finished
            )
            SELECT id AS "id: JobId", state AS "state: JobState" FROM done
            -- Always true; the uncorrelated subquery runs once and sends it.
            WHERE (SELECT count(*) FROM announced) >= 0
            "#,
            &ids,
            &attempts,
            &outcomes,
            &results as &[Option<serde_json::Value>],
            &errors as &[Option<String>],
            &delays,
        )
        .fetch_all(self.pool())
        .await?)
    }
}

impl Queue {
    /// Where the next claim starts looking among tenants.
    fn rotation(&self) -> Uuid {
        // A poisoned lock holds a Uuid all the same; any value is correct.
        *self.rotation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the rotation past the tenant served furthest along from
    /// `after` (in uuid order, wrapping), so the next claim starts with
    /// the tenants this one reached last.
    fn rotate(&self, after: Uuid, rows: &[ClaimRow]) {
        let start = after.as_u128();
        let furthest = rows
            .iter()
            .map(|r| r.tenant_id)
            .max_by_key(|t| t.as_u128().wrapping_sub(start).wrapping_sub(1));
        if let Some(tenant) = furthest {
            *self.rotation.lock().unwrap_or_else(|e| e.into_inner()) = tenant;
        }
    }
}

/// A claimed row, as both claim statements return it.
struct ClaimRow {
    id: Uuid,
    attempt: i32,
    tenant_id: Uuid,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    max_attempts: i32,
    timeout_ms: i64,
    run_at: chrono::DateTime<chrono::Utc>,
    lease_expires_at: chrono::DateTime<chrono::Utc>,
}

/// Claimed rows as jobs, in the order they were chosen (RETURNING has no
/// order).
fn claimed_jobs(rows: Vec<ClaimRow>) -> Vec<ClaimedJob> {
    let mut claimed: Vec<ClaimedJob> = rows
        .into_iter()
        .map(|r| ClaimedJob {
            lease: Lease {
                id: JobId(r.id),
                attempt: r.attempt,
            },
            tenant_id: TenantId(r.tenant_id),
            kind: r.kind,
            payload: r.payload,
            priority: r.priority,
            max_attempts: r.max_attempts,
            timeout: Duration::from_millis(u64::try_from(r.timeout_ms).unwrap_or(1)),
            run_at: r.run_at,
            lease_expires_at: r.lease_expires_at,
        })
        .collect();
    claimed.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_at.cmp(&b.run_at))
            .then(a.lease.id.cmp(&b.lease.id))
    });
    claimed
}
