//! A hook for something a worker must hold exactly while it holds jobs:
//! on ECS, task scale-in protection, so that neither scale-in nor a deploy
//! stops a task in the middle of a job.
//!
//! The backend calls it from two places only, so calls never interleave in
//! a way that leaves an idle worker protected for long:
//! - the claim path (one claim at a time), while the jobs about to be
//!   claimed are locked for this worker ([`crate::Queue::claim_after`]):
//!   [`Protection::protect`] when the worker holds nothing, and
//!   [`Protection::renew`] beside held jobs (a failure of either means no
//!   claim); [`Protection::release`] when a round ends with nothing held;
//! - the heartbeat: [`Protection::renew`] after each round while jobs are
//!   held.

use futures_util::future::BoxFuture;

use crate::error::ProtectionError;

/// Protection held while a worker holds jobs. Implementations keep their
/// own state and make calls only when something changes or runs out, since
/// the backend asks often (every poll while idle, every heartbeat while
/// busy).
pub trait Protection: Send + Sync + 'static {
    /// Takes protection for a new job, asking afresh even if protection is
    /// still held from the last one (a deployment in progress refuses, and
    /// the worker then leaves the task to be replaced). An error means the
    /// worker must not claim.
    fn protect(&self) -> BoxFuture<'_, Result<(), ProtectionError>>;

    /// Extends protection already held before it runs out, or confirms it
    /// when a failed call left its state unknown; does nothing when none is
    /// held (so a renewal racing a release cannot protect an idle worker
    /// again).
    fn renew(&self) -> BoxFuture<'_, Result<(), ProtectionError>>;

    /// Gives protection up: the worker holds no job. Does nothing when none
    /// is held.
    fn release(&self) -> BoxFuture<'_, Result<(), ProtectionError>>;
}
