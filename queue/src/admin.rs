//! What clients and operators do to jobs: read them, cancel them.

use crate::{
    Queue,
    error::QueueError,
    job::{Job, JobId, JobState, TenantId},
};

/// The notification channel that tells workers a running job was cancelled;
/// the payload is the job id.
pub const CANCEL_CHANNEL: &str = "crunch_cancel";

/// The notification channel that tells waiting clients some job reached a
/// terminal state (no payload: waiters re-read the jobs they wait for).
pub const FINISHED_CHANNEL: &str = "crunch_finished";

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The job was queued and is now `cancelled`.
    Cancelled,
    /// The job is running; its worker was told and will stop it, ending it
    /// `cancelled` (or `succeeded`, if it finished first).
    Requested,
    /// The job had already finished in this state; nothing changed.
    AlreadyFinished(JobState),
    /// The tenant has no job with this id.
    NotFound,
}

/// Who owns a job, where it stands and which attempt it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAttempt {
    /// The job.
    pub id: JobId,
    /// Its owner.
    pub tenant_id: TenantId,
    /// Its state.
    pub state: JobState,
    /// Its current attempt (for a succeeded job, the one that succeeded).
    pub attempt: i32,
}

/// Which of a tenant's jobs to list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFilter {
    /// Only jobs in one of these states (all states when empty).
    pub states: Vec<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs whose payload contains this JSON (`@>`), e.g. the ones
    /// that read a given dataset.
    pub payload_contains: Option<serde_json::Value>,
    /// The cursor: only jobs older than this one.
    pub before: Option<JobId>,
    /// At most this many.
    pub limit: i64,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            states: Vec::new(),
            kind: None,
            payload_contains: None,
            before: None,
            limit: 100,
        }
    }
}

impl Queue {
    /// The tenant's jobs matching `filter`, newest first. Ids are UUIDv7,
    /// so ordering by id is ordering by creation, and the last id of a page
    /// is the cursor for the next.
    pub async fn list(&self, tenant: TenantId, filter: &JobFilter) -> Result<Vec<Job>, QueueError> {
        Ok(sqlx::query_as!(
            Job,
            r#"
            SELECT id AS "id: JobId", tenant_id AS "tenant_id: TenantId", kind, payload,
                   state AS "state: _", priority, run_at, attempt, max_attempts, timeout_ms,
                   lease_expires_at, worker_id, heartbeat_at, cancel_requested_at, progress,
                   progress_message, error, result, idempotency_key, created_at, started_at,
                   finished_at
            FROM jobs
            WHERE tenant_id = $1
              AND (cardinality($2::job_state[]) = 0 OR state = ANY($2))
              AND ($3::text IS NULL OR kind = $3)
              AND ($4::jsonb IS NULL OR payload @> $4)
              AND ($5::uuid IS NULL OR id < $5)
            ORDER BY id DESC
            LIMIT $6
            "#,
            tenant.0,
            &filter.states as &[JobState],
            filter.kind,
            filter.payload_contains,
            filter.before.map(|b| b.0),
            filter.limit,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Which of `ids` are in a terminal state: what clients waiting on jobs
    /// re-check when a job finishes somewhere.
    pub async fn finished_among(&self, ids: &[JobId]) -> Result<Vec<JobId>, QueueError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        Ok(sqlx::query_scalar!(
            r#"
            SELECT id AS "id: JobId" FROM jobs
            WHERE id = ANY($1) AND state IN ('succeeded', 'failed', 'cancelled')
            "#,
            &ids,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The owner, state and current attempt of those of `ids` that exist:
    /// what the object store's sweep needs to tell the result a job keeps
    /// from the leftovers of attempts that did not count.
    pub async fn attempts_of(&self, ids: &[JobId]) -> Result<Vec<JobAttempt>, QueueError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        Ok(sqlx::query_as!(
            JobAttempt,
            r#"
            SELECT id AS "id: JobId", tenant_id AS "tenant_id: TenantId", state AS "state: _",
                   attempt
            FROM jobs WHERE id = ANY($1)
            "#,
            &ids,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The tenant's job with this id.
    pub async fn get(&self, tenant: TenantId, id: JobId) -> Result<Option<Job>, QueueError> {
        Ok(sqlx::query_as!(
            Job,
            r#"
            SELECT id AS "id: JobId", tenant_id AS "tenant_id: TenantId", kind, payload,
                   state AS "state: _", priority, run_at, attempt, max_attempts, timeout_ms,
                   lease_expires_at, worker_id, heartbeat_at, cancel_requested_at, progress,
                   progress_message, error, result, idempotency_key, created_at, started_at,
                   finished_at
            FROM jobs WHERE id = $1 AND tenant_id = $2
            "#,
            id.0,
            tenant.0,
        )
        .fetch_optional(self.pool())
        .await?)
    }

    /// Cancels the tenant's job: a queued job at once, a running one by
    /// asking its worker, which sees the request at once through NOTIFY or
    /// at its next heartbeat at the latest.
    pub async fn cancel(&self, tenant: TenantId, id: JobId) -> Result<Cancel, QueueError> {
        let row = sqlx::query!(
            r#"
            WITH changed AS (
                UPDATE jobs
                SET state = CASE WHEN state = 'queued' THEN 'cancelled'::job_state ELSE state END,
                    finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END,
                    cancel_requested_at = coalesce(cancel_requested_at, now())
                WHERE id = $1 AND tenant_id = $2 AND state IN ('queued', 'running')
                RETURNING state
            ),
            announced AS (
                SELECT CASE WHEN state = 'running' THEN pg_notify($3, $1::text)
                            ELSE pg_notify('crunch_finished', '') END
                FROM changed
            )
            SELECT (SELECT state FROM changed) AS "changed: JobState",
                   (SELECT state FROM jobs WHERE id = $1 AND tenant_id = $2) AS "found: JobState",
                   (SELECT count(*) FROM announced) AS "announced!"
            "#,
            id.0,
            tenant.0,
            CANCEL_CHANNEL,
        )
        .fetch_one(self.pool())
        .await?;
        Ok(match (row.changed, row.found) {
            (Some(JobState::Cancelled), _) => Cancel::Cancelled,
            (Some(_), _) => Cancel::Requested,
            (None, Some(state)) => Cancel::AlreadyFinished(state),
            (None, None) => Cancel::NotFound,
        })
    }
}
