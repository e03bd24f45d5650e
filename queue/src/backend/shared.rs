//! State shared by a backend's poller, its job service and its I/O thread.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc, watch};

use super::context::StopReason;
use crate::{
    job::{JobId, Lease, Outcome},
    lease::Progress,
};

/// A job this worker holds a lease on, from its claim until its outcome is
/// written (or its lease is found lost).
pub(crate) struct Held {
    pub(crate) attempt: i32,
    /// Tells the job's handler to stop.
    pub(crate) stop: watch::Sender<Option<StopReason>>,
    /// Progress not yet written.
    pub(crate) progress: Option<Progress>,
    /// When the lease runs out unless a heartbeat renews it first.
    pub(crate) lease_deadline: Instant,
    /// The outcome is queued for writing; the handler is done.
    pub(crate) finishing: bool,
}

/// Messages to the I/O thread.
pub(crate) enum IoMsg {
    /// Write this attempt's outcome.
    Finish(Lease, Outcome),
}

/// What the poller, the job service and the I/O thread share.
pub(crate) struct Shared {
    pub(crate) slots: usize,
    /// Slots taken: reserved for a claim in flight, or holding a job whose
    /// handler has not returned.
    pub(crate) busy: AtomicUsize,
    /// Set by anything that makes a claim worth trying: a notification, a
    /// freed slot, a full claim (more may wait).
    pub(crate) fetch: AtomicBool,
    /// The poller's waker.
    pub(crate) waker: AtomicWaker,
    /// No more claims: the worker is draining for shutdown.
    pub(crate) draining: AtomicBool,
    /// Signalled whenever `busy` drops to zero.
    pub(crate) idle: Notify,
    /// Successful heartbeat rounds, for observability and tests.
    pub(crate) heartbeats: AtomicU64,
    /// Completed claim rounds (whatever they found), for the same.
    pub(crate) claim_rounds: AtomicU64,
    held: Mutex<HashMap<JobId, Held>>,
    pub(crate) io: mpsc::UnboundedSender<IoMsg>,
}

impl Shared {
    pub(crate) fn new(slots: usize, io: mpsc::UnboundedSender<IoMsg>) -> Self {
        Shared {
            slots,
            busy: AtomicUsize::new(0),
            fetch: AtomicBool::new(true),
            waker: AtomicWaker::new(),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            heartbeats: AtomicU64::new(0),
            claim_rounds: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
            io,
        }
    }

    /// The held-jobs map. A poisoned lock only means another thread panicked
    /// while holding it; the map itself is still consistent (every update is
    /// a single insert, remove or field write), so keep going.
    pub(crate) fn held(&self) -> MutexGuard<'_, HashMap<JobId, Held>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Free slots right now.
    pub(crate) fn free(&self) -> usize {
        self.slots.saturating_sub(self.busy.load(Ordering::Acquire))
    }

    /// Gives back `n` slots and wakes the poller to use them.
    pub(crate) fn release_slots(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self.busy.fetch_sub(n, Ordering::AcqRel);
        if before == n {
            self.idle.notify_waiters();
        }
        self.wake_for_work();
    }

    /// Gives back `n` reserved slots without asking for another claim (the
    /// claim failed; the poll timer decides when to try again).
    pub(crate) fn unreserve(&self, n: usize) {
        if n > 0 && self.busy.fetch_sub(n, Ordering::AcqRel) == n {
            self.idle.notify_waiters();
        }
    }

    /// Asks the poller to try a claim.
    pub(crate) fn wake_for_work(&self) {
        self.fetch.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Starts tracking a claimed job; returns the receiver its handler
    /// watches for a stop.
    pub(crate) fn hold(
        &self,
        lease: Lease,
        lease_deadline: Instant,
    ) -> watch::Receiver<Option<StopReason>> {
        let (stop, stopped) = watch::channel(None);
        self.held().insert(
            lease.id,
            Held {
                attempt: lease.attempt,
                stop,
                progress: None,
                lease_deadline,
                finishing: false,
            },
        );
        stopped
    }

    /// Stops the job's handler, if it is still held in this attempt.
    pub(crate) fn stop(&self, lease: Lease, reason: StopReason) {
        if let Some(held) = self.held().get(&lease.id)
            && held.attempt == lease.attempt
            && !held.finishing
        {
            held.stop.send_replace(Some(reason));
        }
    }

    /// Stops every running handler with `reason`.
    pub(crate) fn stop_all(&self, reason: StopReason) {
        for held in self.held().values() {
            if !held.finishing {
                held.stop.send_replace(Some(reason));
            }
        }
    }

    /// Remembers progress for the next heartbeat.
    pub(crate) fn set_progress(&self, lease: Lease, progress: Progress) {
        if let Some(held) = self.held().get_mut(&lease.id)
            && held.attempt == lease.attempt
        {
            held.progress = Some(progress);
        }
    }

    /// Hands an outcome to the I/O thread. The job stays held (its lease
    /// renewed) until the outcome is written.
    pub(crate) fn finish(&self, lease: Lease, outcome: Outcome) {
        if let Some(held) = self.held().get_mut(&lease.id) {
            held.finishing = true;
        }
        if self.io.send(IoMsg::Finish(lease, outcome)).is_err() {
            // The I/O thread is gone (the backend is closed): the lease will
            // expire and the rescuer will decide the job's fate.
            tracing::warn!(job = %lease.id, "outcome dropped: the backend is closed");
            self.forget(lease);
        }
    }

    /// Stops tracking a job.
    pub(crate) fn forget(&self, lease: Lease) {
        let mut held = self.held();
        if held
            .get(&lease.id)
            .is_some_and(|h| h.attempt == lease.attempt)
        {
            held.remove(&lease.id);
        }
    }

    /// Jobs held right now.
    pub(crate) fn held_count(&self) -> usize {
        self.held().len()
    }
}
