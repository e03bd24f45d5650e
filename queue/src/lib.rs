//! The crunch job queue: one Postgres table, `jobs`, that is the single
//! source of truth for every job, and an apalis backend over it.
//!
//! This crate is the only code that reads or writes `jobs`. It enqueues
//! (one statement for one job or a batch, in the caller's transaction if it
//! likes), claims with `FOR UPDATE SKIP LOCKED` in one short statement,
//! fences every later write by the attempt's [`Lease`], rescues attempts
//! whose lease expired, prunes finished jobs, answers the statistics
//! that the API and autoscaling need, and wakes clients waiting for jobs to
//! finish ([`JobWaiters`]).
//!
//! The states and their transitions are documented on [`JobState`] and in
//! ARCHITECTURE.md.
//!
//! # A worked example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use apalis::prelude::WorkerBuilder;
//! use crunch_queue::{
//!     JobContext, JobKind, NewJob, PgBackend, Queue, Registry, TenantId, WorkerConfig,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! /// Counts the words of a text.
//! #[derive(Serialize, Deserialize)]
//! struct CountWords {
//!     text: String,
//! }
//!
//! impl JobKind for CountWords {
//!     const KIND: &'static str = "count_words";
//!     type Payload = CountWords;
//! }
//!
//! async fn count_words(job: CountWords, ctx: JobContext) -> Result<usize, std::io::Error> {
//!     ctx.progress(0.5, Some("counting"));
//!     Ok(job.text.split_whitespace().count())
//! }
//!
//! # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let queue = Queue::new(pool, Registry::new().register::<CountWords>());
//!
//! // Enqueue in the same transaction as the data the job needs.
//! let mut tx = queue.pool().begin().await?;
//! let job = NewJob::of::<CountWords>(TenantId::DEFAULT, &CountWords { text: "a b c".into() })?
//!     .idempotency_key("words-1");
//! let enqueued = queue.enqueue(&mut *tx, job).await?;
//! tx.commit().await?;
//!
//! // Run handlers with apalis: one job per slot, leases renewed on their own
//! // thread, results written back fenced by attempt.
//! let backend = PgBackend::<CountWords>::new(
//!     queue.clone(),
//!     WorkerConfig::new("worker-1").slots(1).lease(Duration::from_secs(30)),
//! );
//! let worker = WorkerBuilder::new("worker-1").backend(backend).build(count_words);
//! worker.run_until(async { tokio::signal::ctrl_c().await }).await?;
//!
//! let done = queue.get(TenantId::DEFAULT, enqueued.job.id).await?;
//! println!("{:?}", done.map(|j| j.result));
//! # Ok(())
//! # }
//! ```

mod admin;
mod backend;
mod backoff;
mod enqueue;
mod error;
#[cfg(feature = "floor")]
pub mod floor;
mod job;
mod lease;
mod maintenance;
mod registry;
mod stats;
mod tenants;
mod wait;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::PgPool;

pub use admin::{CANCEL_CHANNEL, Cancel, FINISHED_CHANNEL, JobAttempt, JobFilter};
pub use backend::{
    Interrupted, JobContext, JobFailure, JobLayer, JobService, PgBackend, Protection, WorkerConfig,
    WorkerHandle,
};
pub use backoff::Backoff;
pub use enqueue::EnqueuedId;
pub use error::{ProtectionError, QueueError};
pub use job::{
    ClaimedJob, Enqueued, Job, JobId, JobKind, JobState, Lease, NewJob, Outcome, TenantId,
};
pub use lease::{Finished, Progress, Renewed};
pub use maintenance::{Maintenance, MaintenanceReport};
pub use registry::Registry;
pub use stats::{FinishedCounts, QueueStats, RunTimeQuantiles, RunTimes, WorkerLoad};
pub use tenants::{TenantDefaults, TenantLimits};
pub use wait::{JobWaiters, Parked, WaitEnd};

/// The channel on which an insert announces claimable jobs; the payload is
/// the comma-separated kinds.
pub const JOBS_CHANNEL: &str = "crunch_jobs";

/// Starts allowed per job unless its kind or the job says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;

/// How long a client refused for a full queue ([`QueueError::QueueFull`])
/// is told to wait. A constant rather than an estimate: room appears as the
/// tenant's jobs start, and crunch's jobs run for minutes, so a retry
/// after a few seconds is cheap to refuse again and soon enough to take
/// room when it appears. A retry with the same idempotency key is safe.
pub const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Time limit per attempt unless its kind or the job says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A handle on the queue: a pool, the kinds it accepts and the default
/// limits per tenant. Cheap to clone; clones share where the next claim
/// starts among tenants (see [`Queue::claim`]).
#[derive(Debug, Clone)]
pub struct Queue {
    pool: PgPool,
    registry: Arc<Registry>,
    defaults: TenantDefaults,
    /// The tenant the last claim served furthest along: claims take turns
    /// among tenants with equally few running jobs by looking after it
    /// first. Only an order; any value is correct.
    rotation: Arc<Mutex<uuid::Uuid>>,
}

impl Queue {
    /// A queue over `pool` accepting the kinds in `registry`.
    pub fn new(pool: PgPool, registry: Registry) -> Self {
        Queue {
            pool,
            registry: Arc::new(registry),
            defaults: TenantDefaults::default(),
            rotation: Arc::new(Mutex::new(uuid::Uuid::nil())),
        }
    }

    /// The same queue over another pool (a pool belongs to the runtime that
    /// made it, so a thread with its own runtime needs its own).
    pub fn with_pool(&self, pool: PgPool) -> Self {
        Queue {
            pool,
            registry: self.registry.clone(),
            defaults: self.defaults,
            rotation: self.rotation.clone(),
        }
    }

    /// The pool, for callers that open transactions to enqueue in.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The kinds this queue accepts.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
