//! The job record and the types that name and describe jobs.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A job's identity: a UUIDv7 minted at enqueue, so ids sort by creation time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The owner of jobs and datasets. Every query on owned rows names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    /// The tenant that owns everything until API keys map requests to
    /// tenants; created by the first migration.
    pub const DEFAULT: TenantId = TenantId(Uuid::nil());
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The closed set of states a job can be in, mirrored by the `job_state`
/// enum in SQL. ARCHITECTURE.md lists every transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "job_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to be claimed once `run_at` has passed. Left by a claim
    /// (to `running`) or a cancel (to `cancelled`).
    Queued,
    /// Claimed by a worker that holds a lease on it. Left by the worker's
    /// outcome, or by the rescuer when the lease expires.
    Running,
    /// Finished with a result. Terminal.
    Succeeded,
    /// Finished without a result after its last attempt, or with an error
    /// that forbids retrying. Terminal.
    Failed,
    /// Cancelled before it finished. Terminal.
    Cancelled,
}

impl JobState {
    /// Whether no transition leaves this state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// The state's name as SQL and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as the table holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// Its owner.
    pub tenant_id: TenantId,
    /// Which handler runs it.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Where it is in its lifecycle.
    pub state: JobState,
    /// Higher is claimed first.
    pub priority: i16,
    /// Not claimable before this instant (retry backoff moves it too).
    pub run_at: DateTime<Utc>,
    /// Starts so far; the current or last attempt's number.
    pub attempt: i32,
    /// Starts allowed before the job fails for good.
    pub max_attempts: i32,
    /// How long one attempt may run before it is stopped and counted failed.
    pub timeout_ms: i64,
    /// When the running attempt's lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The worker that ran (or runs) the latest attempt.
    pub worker_id: Option<String>,
    /// The latest heartbeat of the running attempt.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// When a cancel of the running attempt was asked for.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Fraction done, as the handler last reported it.
    pub progress: Option<f32>,
    /// What the handler last said it was doing.
    pub progress_message: Option<String>,
    /// The latest attempt's error.
    pub error: Option<String>,
    /// The handler's result summary.
    pub result: Option<serde_json::Value>,
    /// The client's key for deduplicating submissions.
    pub idempotency_key: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The time from creation to the latest start (or to now, while queued).
    pub fn queue_wait(&self, now: DateTime<Utc>) -> Duration {
        let until = self.started_at.unwrap_or(now);
        (until - self.created_at).to_std().unwrap_or_default()
    }

    /// The latest attempt's running time (so far, while running).
    pub fn run_time(&self, now: DateTime<Utc>) -> Option<Duration> {
        let started = self.started_at?;
        let until = self.finished_at.unwrap_or(now);
        Some((until - started).to_std().unwrap_or_default())
    }
}

/// A kind of job: its name in the table and the type of its payload.
///
/// Registering a kind with a [`Registry`] lets the queue reject unknown
/// kinds and malformed payloads at enqueue, before anything is stored.
pub trait JobKind {
    /// The name stored in `jobs.kind`.
    const KIND: &'static str;
    /// What the handler receives.
    type Payload: Serialize + for<'de> Deserialize<'de>;

    /// Starts allowed for jobs of this kind unless the job says otherwise.
    fn max_attempts() -> i32 {
        crate::DEFAULT_MAX_ATTEMPTS
    }

    /// Time limit per attempt unless the job says otherwise.
    fn timeout() -> Duration {
        crate::DEFAULT_TIMEOUT
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The id the job will have; minted here so callers can refer to the job
    /// before the insert commits.
    pub id: JobId,
    /// Its owner.
    pub tenant_id: TenantId,
    /// Its kind; must be registered.
    pub kind: String,
    /// Its payload; must deserialize into the kind's payload type.
    pub payload: serde_json::Value,
    /// Higher is claimed first; -100 to 100.
    pub priority: i16,
    /// Not claimable before this instant; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// Overrides the kind's default.
    pub max_attempts: Option<i32>,
    /// Overrides the kind's default.
    pub timeout: Option<Duration>,
    /// Deduplicates submissions: while a job with this key is queued,
    /// running or succeeded, enqueueing another returns that job instead.
    pub idempotency_key: Option<String>,
}

impl NewJob {
    /// A job of kind `K`, with the kind's defaults.
    pub fn of<K: JobKind>(
        tenant_id: TenantId,
        payload: &K::Payload,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::raw(
            tenant_id,
            K::KIND,
            serde_json::to_value(payload)?,
        ))
    }

    /// A job given by kind name and JSON payload, validated at enqueue.
    pub fn raw(tenant_id: TenantId, kind: impl Into<String>, payload: serde_json::Value) -> Self {
        NewJob {
            id: JobId::new(),
            tenant_id,
            kind: kind.into(),
            payload,
            priority: 0,
            run_at: None,
            max_attempts: None,
            timeout: None,
            idempotency_key: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Delays the job until `run_at`.
    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Sets the number of starts allowed.
    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Sets the time limit per attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// The result of enqueueing one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The job: the new one, or the existing one its idempotency key named.
    pub job: Job,
    /// False when the idempotency key matched an existing job.
    pub created: bool,
}

/// The right to write to one attempt of a job: every worker write is fenced
/// by `(id, attempt)`, so a worker whose lease was taken over changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The job.
    pub id: JobId,
    /// The attempt the lease belongs to.
    pub attempt: i32,
}

/// A job a worker has just claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// The fencing token for every later write about this attempt.
    pub lease: Lease,
    /// The job's owner.
    pub tenant_id: TenantId,
    /// The job's kind.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Its priority (claims are returned highest first).
    pub priority: i16,
    /// Starts allowed.
    pub max_attempts: i32,
    /// Time limit for this attempt.
    pub timeout: Duration,
    /// When it became claimable.
    pub run_at: DateTime<Utc>,
    /// When the lease runs out unless renewed.
    pub lease_expires_at: DateTime<Utc>,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler returned a result.
    Succeeded(serde_json::Value),
    /// The handler failed; retried after `retry_in` while attempts remain,
    /// unless `retry_in` is `None` (the error forbids retrying).
    Failed {
        /// What went wrong.
        error: String,
        /// Backoff before the next attempt; `None` fails the job for good.
        retry_in: Option<Duration>,
    },
    /// The handler stopped because the job was cancelled.
    Cancelled,
    /// The worker gave the job back unfinished (it is shutting down); the
    /// attempt is not counted against `max_attempts`.
    Released,
}

impl Outcome {
    /// The outcome's name as the finishing SQL reads it.
    pub(crate) fn sql_name(&self) -> &'static str {
        match self {
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Failed {
                retry_in: Some(_), ..
            } => "retry",
            Outcome::Failed { retry_in: None, .. } => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Released => "released",
        }
    }
}
