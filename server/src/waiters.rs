//! Long-poll support: requests that wait for a job to finish park here and
//! are woken when the queue announces that jobs finished.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use crunch_queue::{FINISHED_CHANNEL, JobId, Queue};
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

/// How often waiters are re-checked when no notification arrives (lost
/// notifications, listener reconnecting).
const RECHECK: Duration = Duration::from_secs(1);

/// The registry of parked requests, shared by all of them.
#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Queue,
    parked: Mutex<HashMap<JobId, (Arc<Notify>, usize)>>,
    /// Wakes the watcher early when something is parked or a notification came.
    poke: Notify,
    /// True once the server shuts down: every wait ends at once, so each
    /// long-poll answers with the job as it is instead of holding the
    /// shutdown for its whole timeout.
    closed: watch::Sender<bool>,
}

/// A parked request's registration; dropping it unregisters.
pub struct Parked {
    inner: Arc<Inner>,
    id: JobId,
    notify: Arc<Notify>,
}

impl Parked {
    /// Waits until the job is announced finished, `timeout` passes or the
    /// server shuts down.
    pub async fn wait(&self, timeout: Duration) {
        let mut closed = self.inner.closed.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(timeout, self.notify.notified()) => {}
            _ = closed.wait_for(|closed| *closed) => {}
        }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        let mut parked = self.inner.parked();
        if let Some((_, count)) = parked.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                parked.remove(&self.id);
            }
        }
    }
}

impl Inner {
    /// A poisoned lock only means a panicking holder; the map is still
    /// consistent (single inserts and removals), so keep serving.
    fn parked(&self) -> MutexGuard<'_, HashMap<JobId, (Arc<Notify>, usize)>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn wake_finished(&self) {
        let ids: Vec<JobId> = self.parked().keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        match self.queue.finished_among(&ids).await {
            Ok(done) => {
                let parked = self.parked();
                for id in done {
                    if let Some((notify, _)) = parked.get(&id) {
                        notify.notify_waiters();
                    }
                }
            }
            Err(e) => tracing::warn!("checking waited-for jobs failed: {e}"),
        }
    }
}

impl Waiters {
    /// Starts the watcher task: LISTEN for finished jobs, and re-check
    /// parked jobs every second as a fallback.
    pub fn start(queue: Queue) -> Waiters {
        let inner = Arc::new(Inner {
            queue,
            parked: Mutex::new(HashMap::new()),
            poke: Notify::new(),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(watch(inner.clone()));
        Waiters { inner }
    }

    /// Ends every wait, now and from now on: the server is shutting down.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Registers interest in `id`. Register before reading the job's state,
    /// so a finish between the read and the wait is not missed.
    pub fn park(&self, id: JobId) -> Parked {
        let notify = {
            let mut parked = self.inner.parked();
            let entry = parked
                .entry(id)
                .or_insert_with(|| (Arc::new(Notify::new()), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        self.inner.poke.notify_one();
        Parked {
            inner: self.inner.clone(),
            id,
            notify,
        }
    }
}

async fn watch(inner: Arc<Inner>) {
    loop {
        let mut listener = match PgListener::connect_with(inner.queue.pool()).await {
            Ok(mut l) => match l.listen(FINISHED_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!("cannot listen for finished jobs, polling: {e}");
                    None
                }
            },
            Err(e) => {
                tracing::warn!("cannot listen for finished jobs, polling: {e}");
                None
            }
        };
        loop {
            match listener.as_mut() {
                Some(l) => tokio::select! {
                    n = l.try_recv() => if let Err(e) = n {
                        tracing::warn!("finished-jobs listener failed: {e}");
                        break;
                    },
                    _ = tokio::time::sleep(RECHECK) => {}
                    _ = inner.poke.notified() => {}
                },
                None => tokio::time::sleep(RECHECK).await,
            }
            inner.wake_finished().await;
            if listener.is_none() {
                // Try to listen again on the next round.
                break;
            }
        }
    }
}
