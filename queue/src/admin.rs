//! What clients and operators do to jobs: read them (and their payloads and
//! results as their types), cancel them, and check that the queue's
//! database answers.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    Queue,
    error::QueueError,
    job::{Job, JobId, JobKind, JobState, TenantId},
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

impl JobFilter {
    /// Only jobs whose payload contains `part` as serialized (`@>`): a
    /// typed value laid out like the kind's payload, e.g. the payload's
    /// own filter type.
    pub fn containing<T: Serialize>(mut self, part: &T) -> Result<Self, QueueError> {
        self.payload_contains = Some(serde_json::to_value(part)?);
        Ok(self)
    }
}

impl Job {
    /// The payload as kind `K`'s payload type.
    ///
    /// Every stored payload was checked against its kind's type at enqueue,
    /// so a job of another kind, or a payload that no longer reads, breaks
    /// an invariant ([`QueueError::Invariant`]); the details are logged.
    pub fn payload_as<K: JobKind>(&self) -> Result<K::Payload, QueueError> {
        if self.kind != K::KIND {
            tracing::error!(
                job = %self.id,
                kind = %self.kind,
                "read as a job of kind {:?}",
                K::KIND
            );
            return Err(QueueError::Invariant("a job was read as another kind"));
        }
        K::Payload::deserialize(&self.payload).map_err(|e| {
            tracing::error!(
                job = %self.id,
                kind = %self.kind,
                "stored payload does not read: {e}"
            );
            QueueError::Invariant("a stored payload does not read as its kind's payload type")
        })
    }

    /// The result the handler stored, as `T`; `None` while there is none
    /// (the job has not succeeded).
    ///
    /// A stored result that does not read as `T` breaks an invariant
    /// ([`QueueError::Invariant`]): the handler's own type wrote it. The
    /// details are logged.
    pub fn result_as<T: DeserializeOwned>(&self) -> Result<Option<T>, QueueError> {
        let Some(result) = &self.result else {
            return Ok(None);
        };
        T::deserialize(result).map(Some).map_err(|e| {
            tracing::error!(
                job = %self.id,
                kind = %self.kind,
                "stored result does not read: {e}"
            );
            QueueError::Invariant("a stored result does not read as the expected type")
        })
    }
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

    /// Answers once the database does: a connection from the pool that
    /// responds. What a readiness probe asks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        use sqlx::Connection as _;
        let mut connection = self.pool().acquire().await?;
        connection.ping().await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Echo {
        text: String,
    }

    impl JobKind for Echo {
        const KIND: &'static str = "echo";
        type Payload = Echo;
    }

    fn job(kind: &str, payload: serde_json::Value, result: Option<serde_json::Value>) -> Job {
        let now = Utc::now();
        Job {
            id: JobId::new(),
            tenant_id: TenantId::DEFAULT,
            kind: kind.to_owned(),
            payload,
            state: JobState::Succeeded,
            priority: 0,
            run_at: now,
            attempt: 1,
            max_attempts: 3,
            timeout_ms: 1000,
            lease_expires_at: None,
            worker_id: None,
            heartbeat_at: None,
            cancel_requested_at: None,
            progress: None,
            progress_message: None,
            error: None,
            result,
            idempotency_key: None,
            created_at: now,
            started_at: Some(now),
            finished_at: Some(now),
        }
    }

    #[test]
    fn a_payload_reads_as_its_kinds_type() {
        let job = job("echo", serde_json::json!({"text": "hi"}), None);
        let echo = job.payload_as::<Echo>().unwrap();
        assert_eq!(echo.text, "hi");
    }

    #[test]
    fn a_payload_that_does_not_read_or_is_of_another_kind_breaks_an_invariant() {
        let malformed = job("echo", serde_json::json!({"words": 1}), None);
        assert!(matches!(
            malformed.payload_as::<Echo>(),
            Err(QueueError::Invariant(_))
        ));
        let other = job("other", serde_json::json!({"text": "hi"}), None);
        assert!(matches!(
            other.payload_as::<Echo>(),
            Err(QueueError::Invariant(_))
        ));
    }

    #[test]
    fn a_result_reads_as_asked_and_is_none_until_stored() {
        let done = job(
            "echo",
            serde_json::json!({}),
            Some(serde_json::json!({"text": "ok"})),
        );
        assert_eq!(
            done.result_as::<Echo>().unwrap(),
            Some(Echo { text: "ok".into() })
        );
        let pending = job("echo", serde_json::json!({}), None);
        assert_eq!(pending.result_as::<Echo>().unwrap(), None);
        let odd = job("echo", serde_json::json!({}), Some(serde_json::json!(7)));
        assert!(matches!(
            odd.result_as::<Echo>(),
            Err(QueueError::Invariant(_))
        ));
    }

    #[test]
    fn a_filter_contains_the_serialized_part() {
        let filter = JobFilter::default()
            .containing(&Echo { text: "hi".into() })
            .unwrap();
        assert_eq!(
            filter.payload_contains,
            Some(serde_json::json!({"text": "hi"}))
        );
    }
}
