//! How a worker's backend behaves.

use std::{fmt, sync::Arc, time::Duration};

use super::protection::Protection;
use crate::backoff::Backoff;

/// Settings of one [`PgBackend`](super::PgBackend).
///
/// The defaults suit crunch's heavy jobs: one slot, a 30 s lease renewed
/// every 2 s (so a crashed worker's job is rescued within about half a
/// minute, and a cancel is seen within 2 s even if NOTIFY is lost).
#[derive(Clone)]
pub struct WorkerConfig {
    pub(crate) worker_id: String,
    pub(crate) kinds: Vec<String>,
    pub(crate) slots: usize,
    pub(crate) claim_batch: usize,
    pub(crate) lease: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) protection: Option<Arc<dyn Protection>>,
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("worker_id", &self.worker_id)
            .field("kinds", &self.kinds)
            .field("slots", &self.slots)
            .field("claim_batch", &self.claim_batch)
            .field("lease", &self.lease)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("poll_interval", &self.poll_interval)
            .field("backoff", &self.backoff)
            .field("protection", &self.protection.is_some())
            .finish()
    }
}

impl WorkerConfig {
    /// Settings for the worker named `worker_id` (unique per process; it is
    /// recorded on the jobs it runs).
    pub fn new(worker_id: impl Into<String>) -> Self {
        WorkerConfig {
            worker_id: worker_id.into(),
            kinds: Vec::new(),
            slots: 1,
            claim_batch: usize::MAX,
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            backoff: Backoff::default(),
            protection: None,
        }
    }

    /// The kinds this worker runs.
    pub fn kinds<I, S>(mut self, kinds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// How many jobs run at once (at least 1). The worker never holds more
    /// claimed jobs than this.
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// The most jobs one claim statement takes (never more than the free
    /// slots).
    pub fn claim_batch(mut self, claim_batch: usize) -> Self {
        self.claim_batch = claim_batch.max(1);
        self
    }

    /// How long a claimed job stays this worker's without a heartbeat.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often leases are renewed, progress written and cancels checked.
    /// Keep it well under the lease.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How often to look for work when no notification arrives (the
    /// fallback for lost notifications and for jobs whose `run_at` passes).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Retry backoff after a failed attempt.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Holds `protection` exactly while jobs are held (see
    /// [`Protection`]): the worker claims only once it is protected.
    pub fn protection(mut self, protection: Arc<dyn Protection>) -> Self {
        self.protection = Some(protection);
        self
    }

    /// The same settings under another worker id (for several workers in
    /// one process).
    pub fn with_worker_id(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = worker_id.into();
        self
    }

    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}
