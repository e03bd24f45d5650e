//! What clients and operators do to jobs: read them, cancel them.

use crate::{
    Queue,
    error::QueueError,
    job::{Job, JobId, JobState, TenantId},
};

/// The notification channel that tells workers a running job was cancelled;
/// the payload is the job id.
pub const CANCEL_CHANNEL: &str = "crunch_cancel";

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

impl Queue {
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
                SELECT pg_notify($3, $1::text) FROM changed WHERE state = 'running'
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
