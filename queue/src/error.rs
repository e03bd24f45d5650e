//! The queue's errors: [`QueueError`], and [`ProtectionError`], which a
//! worker's `Protection` reports and a claim passes on.
//!
//! Depends on nothing in the crate but the job types, so every module,
//! the backend included, can return these.

use crate::job::{JobState, TenantId};

/// Why protection could not be taken, renewed or given up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtectionError(pub String);

/// Everything that can go wrong in the queue layer.
///
/// Callers map these at their own edge (the HTTP layer turns `UnknownKind`
/// and `InvalidPayload` into 4xx responses); internal details such as SQL
/// errors are for logs, not for clients.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The job kind is not registered with this queue.
    #[error("unknown job kind {kind:?}")]
    UnknownKind {
        /// The kind that was asked for.
        kind: String,
    },
    /// The payload does not deserialize into the kind's payload type.
    #[error("invalid payload for job kind {kind:?}: {reason}")]
    InvalidPayload {
        /// The kind whose payload type rejected it.
        kind: String,
        /// The deserializer's explanation.
        reason: String,
    },
    /// A job option is out of its allowed range.
    #[error("invalid job option: {0}")]
    InvalidOption(String),
    /// A job in the given state cannot make the requested transition.
    #[error("job is {state}, which does not allow this")]
    InvalidState {
        /// The state the job was found in.
        state: JobState,
    },
    /// The tenant's queued jobs would pass its `max_queued` (its own, else
    /// the queue's default): nothing of the batch was stored.
    #[error("tenant {tenant} may have at most {limit} queued jobs; try again later")]
    QueueFull {
        /// The tenant at its limit.
        tenant: TenantId,
        /// Its `max_queued`.
        limit: u32,
        /// When to try again: [`QUEUE_FULL_RETRY_AFTER`](crate::QUEUE_FULL_RETRY_AFTER).
        retry_after: std::time::Duration,
    },
    /// The database returned something the queue's invariants rule out.
    #[error("queue invariant broken: {0}")]
    Invariant(&'static str),
    /// A payload could not be serialized to JSON.
    #[error("cannot serialize payload: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The worker could not take the protection it must hold while it holds
    /// jobs, so it did not claim.
    #[error("not claiming: protection unavailable: {0}")]
    Unprotected(#[from] ProtectionError),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl QueueError {
    /// Whether the failure is the database's (worth retrying later) rather
    /// than the caller's.
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Database(_))
    }
}
