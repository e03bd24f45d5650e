//! What a handler sees of its job, and how it says a failure is final.

use std::{sync::Arc, time::Duration};

use apalis_core::task::{Task, from_request::FromRequest};
use tokio::sync::watch;

use super::shared::Shared;
use crate::{
    job::{JobId, Lease, TenantId},
    lease::Progress,
};

/// Why a running job must stop before its handler finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A client cancelled the job.
    Cancelled,
    /// The lease is gone (rescued or taken over): nothing more may be written.
    LeaseLost,
    /// The worker is shutting down and gives the job back.
    Released,
}

/// The handler's view of the running job: who it is, whether it must stop,
/// and a way to report progress. Extract it as a handler argument.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) lease: Lease,
    pub(crate) tenant_id: TenantId,
    pub(crate) kind: Arc<str>,
    pub(crate) max_attempts: i32,
    pub(crate) timeout: Duration,
    pub(crate) stop: watch::Receiver<Option<StopReason>>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("lease", &self.lease)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.lease.id
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i32 {
        self.lease.attempt
    }

    /// The fencing token of this attempt.
    pub fn lease(&self) -> Lease {
        self.lease
    }

    /// Starts allowed.
    pub fn max_attempts(&self) -> i32 {
        self.max_attempts
    }

    /// The job's owner.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// This attempt's time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the job must stop (cancelled, lease lost, or released at
    /// shutdown). Long CPU-bound loops should check it; async handlers are
    /// stopped for them by being dropped.
    pub fn is_stopping(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// Resolves when the job must stop.
    pub async fn stopping(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone, which only happens once the
        // job's bookkeeping is dropped: treat it as a stop.
        let _ = stop.wait_for(Option::is_some).await;
    }

    /// Records progress; it is written with the next heartbeat, fenced by
    /// this attempt's lease.
    pub fn progress(&self, fraction: f32, message: Option<&str>) {
        self.shared.set_progress(
            self.lease,
            Progress {
                fraction,
                message: message.map(str::to_owned),
            },
        );
    }
}

impl<Args: Sync> FromRequest<Task<Args>> for JobContext {
    type Error = JobFailure;

    async fn from_request(task: &Task<Args>) -> Result<Self, Self::Error> {
        task.data()
            .get::<JobContext>()
            .cloned()
            .ok_or_else(|| JobFailure::fatal("task did not come from a crunch PgBackend"))
    }
}

/// How a failed attempt should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// After the worker's exponential backoff.
    Backoff,
    /// After this long.
    After(Duration),
    /// Never: the job fails now.
    Never,
}

/// An error a handler returns to control retrying. Any other error is
/// retried with the worker's backoff while attempts remain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    message: String,
    pub(crate) retry: Retry,
}

impl JobFailure {
    /// A failure that retrying cannot fix (bad input, a query that can never
    /// succeed): the job fails now, whatever attempts remain.
    pub fn fatal(message: impl Into<String>) -> Self {
        JobFailure {
            message: message.into(),
            retry: Retry::Never,
        }
    }

    /// A failure worth retrying after the worker's backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        JobFailure {
            message: message.into(),
            retry: Retry::Backoff,
        }
    }

    /// A failure worth retrying after `delay`.
    pub fn retry_after(message: impl Into<String>, delay: Duration) -> Self {
        JobFailure {
            message: message.into(),
            retry: Retry::After(delay),
        }
    }
}
