//! What every request handler shares.

use std::time::Duration;

use crunch_queue::Queue;
use crunch_store::Store;

use crate::{
    auth::{Auth, AuthMode, Verifier, VerifierConfig},
    metrics::Metrics,
    scaling::ScalingStatus,
    waiters::Waiters,
};

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
    /// How requests are authenticated, and the cache of verified keys.
    pub auth: Auth,
}

impl AppState {
    /// The state of an application over `queue` and `store` with `limits`:
    /// long-poll waiters listening on the queue, every `/v1` request
    /// authenticated by its key (a verifier with the default cache TTL,
    /// listening for revocations), fresh metrics and no scaling reading
    /// yet. Must be called inside a Tokio runtime (the waiters and the
    /// verifier start their tasks). Both listeners hold a connection of
    /// the queue's pool.
    pub fn new(queue: Queue, store: Store, limits: Limits) -> Self {
        let verifier = Verifier::start(queue.pool().clone(), VerifierConfig::default());
        AppState {
            waiters: Waiters::start(queue.clone()),
            queue,
            store,
            limits,
            metrics: Metrics::default(),
            scaling: ScalingStatus::default(),
            auth: Auth {
                mode: AuthMode::Keys,
                verifier,
            },
        }
    }

    /// The same state with requests authenticated as `mode` says:
    /// [`AuthMode::Keys`] (the default) or, for a server on a loopback
    /// address only, [`AuthMode::Open`].
    pub fn with_auth(mut self, mode: AuthMode) -> Self {
        self.auth.mode = mode;
        self
    }

    /// The same state with a verifier configured as `config` says (its
    /// cache TTL, how often `last_used_at` is written). Must be called
    /// inside a Tokio runtime; the verifier it replaces stops.
    pub fn with_verifier(mut self, config: VerifierConfig) -> Self {
        self.auth.verifier = Verifier::start(self.queue.pool().clone(), config);
        self
    }
}
