//! What every request handler shares.

use std::time::Duration;

use crunch_queue::{Queue, TenantId};
use crunch_store::Store;

use crate::{metrics::Metrics, scaling::ScalingStatus, waiters::Waiters};

/// Default for [`Limits::max_json_bytes`]: a batch of 1000 jobs with
/// short queries fits; the largest single SQL query (100 kB) fits many
/// times over.
pub const DEFAULT_MAX_JSON_BYTES: usize = 1 << 20;

/// Default for [`Limits::max_upload_bytes`] (and `CRUNCH_MAX_UPLOAD_BYTES`):
/// 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1 << 30;

/// Limits on what a request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest upload body, in bytes.
    pub max_upload_bytes: u64,
    /// The longest line of a CSV or NDJSON upload, in bytes.
    pub max_line_bytes: usize,
    /// The most columns an upload may have.
    pub max_columns: usize,
    /// The longest a request may long-poll.
    pub max_wait: Duration,
    /// The largest JSON request body (a job or a batch of jobs), in bytes.
    pub max_json_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_line_bytes: 1 << 20,
            max_columns: crunch_store::DEFAULT_MAX_COLUMNS,
            max_wait: Duration::from_secs(60),
            max_json_bytes: DEFAULT_MAX_JSON_BYTES,
        }
    }
}

/// The application's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The job queue.
    pub queue: Queue,
    /// Datasets and results.
    pub store: Store,
    /// Parked long-poll requests.
    pub waiters: Waiters,
    /// Request limits.
    pub limits: Limits,
    /// Counters and histograms for /metrics.
    pub metrics: Metrics,
    /// The worker-scaling publisher's last reading (none outside AWS).
    pub scaling: ScalingStatus,
}

impl AppState {
    /// The state of an application over `queue` and `store` with `limits`:
    /// long-poll waiters listening on the queue, fresh metrics and no
    /// scaling reading yet. Must be called inside a Tokio runtime (the
    /// waiters start their listener task).
    pub fn new(queue: Queue, store: Store, limits: Limits) -> Self {
        AppState {
            waiters: Waiters::start(queue.clone()),
            queue,
            store,
            limits,
            metrics: Metrics::default(),
            scaling: ScalingStatus::default(),
        }
    }

    /// The tenant a request acts for. Every request belongs to the default
    /// tenant until API keys map requests to tenants; every query below
    /// already filters by it.
    pub fn tenant(&self) -> TenantId {
        TenantId::DEFAULT
    }
}
