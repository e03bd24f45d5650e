//! Why a minute's reading or publication failed: one error type for the
//! AWS calls, the answers they lack, and the queue statistics.

use aws_sdk_ecs::error::DisplayErrorContext;
use crunch_queue::QueueError;

/// Why a minute's reading or publication failed.
#[derive(Debug, thiserror::Error)]
pub enum ScalingError {
    /// An AWS call failed (throttled, denied, unreachable, ...).
    #[error("{call} failed: {message}")]
    Aws {
        /// The API operation.
        call: &'static str,
        /// What the SDK reported, with its causes.
        message: String,
    },
    /// AWS answered, but without what the reading needs.
    #[error("{0}")]
    Missing(String),
    /// The queue statistics could not be read.
    #[error("queue statistics: {0}")]
    Queue(#[from] QueueError),
}

/// The SDK's own rendering of an error with its causes: SDK errors put the
/// useful part, such as "ThrottlingException: Rate exceeded", in their
/// sources.
pub(super) fn aws_error<E: std::error::Error>(call: &'static str, error: E) -> ScalingError {
    ScalingError::Aws {
        call,
        message: DisplayErrorContext(error).to_string(),
    }
}
