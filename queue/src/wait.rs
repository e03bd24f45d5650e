//! Waiting for jobs to finish, for clients that long-poll.
//!
//! One task per [`JobWaiters`] LISTENs on [`FINISHED_CHANNEL`], which every
//! statement that ends attempts notifies once (no payload), and then asks
//! which of the waited-for jobs are terminal; it also re-checks every
//! second, for notifications lost while the listener reconnects. A wait
//! registers before it reads the job, so a finish between the read and
//! the wait still wakes it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use crate::{
    FINISHED_CHANNEL, Queue,
    error::QueueError,
    job::{Job, JobId, TenantId},
};

/// How often waiters are re-checked when no notification arrives (lost
/// notifications, listener reconnecting).
const RECHECK: Duration = Duration::from_secs(1);

/// Everyone waiting for jobs to finish, and the task that wakes them.
/// Cheap to clone; the clones share the waits and the task.
#[derive(Debug, Clone)]
pub struct JobWaiters {
    inner: Arc<Inner>,
}

/// Waits per job: the job's [`Notify`] and how many waits share it.
type ParkedJobs = HashMap<JobId, (Arc<Notify>, usize)>;

#[derive(Debug)]
struct Inner {
    queue: Queue,
    parked: Mutex<ParkedJobs>,
    /// Wakes the watcher early when something is parked.
    poke: Notify,
    /// True once closed: every wait ends at once, so that a long-poll
    /// answers with the job as it is instead of holding a shutdown for its
    /// whole timeout.
    closed: watch::Sender<bool>,
}

/// One registered wait for one job; dropping it unregisters.
#[derive(Debug)]
pub struct Parked {
    inner: Arc<Inner>,
    id: JobId,
    notify: Arc<Notify>,
}

/// Why a [`Parked::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// The job was seen finished.
    Woken,
    /// The waiters were closed.
    Closed,
    /// The timeout passed first.
    TimedOut,
}

impl Parked {
    /// Waits until the job is seen finished, `timeout` passes or the
    /// waiters are closed, and says which.
    pub async fn wait(&self, timeout: Duration) -> WaitEnd {
        self.until(self.notify.notified(), timeout).await
    }

    /// [`Parked::wait`] on a `Notified` of this wait's job that the caller
    /// created (and enabled) earlier: it then also counts a wake that came
    /// between its creation and this call.
    async fn until(&self, notified: impl Future<Output = ()>, timeout: Duration) -> WaitEnd {
        let mut closed = self.inner.closed.subscribe();
        tokio::select! {
            woken = tokio::time::timeout(timeout, notified) => match woken {
                Ok(()) => WaitEnd::Woken,
                Err(_) => WaitEnd::TimedOut,
            },
            _ = closed.wait_for(|closed| *closed) => WaitEnd::Closed,
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
    fn parked(&self) -> MutexGuard<'_, ParkedJobs> {
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

impl JobWaiters {
    /// Starts the task that wakes waits, on the current tokio runtime: it
    /// LISTENs for finished jobs (on a connection of `queue`'s pool) and
    /// re-checks waited-for jobs every second.
    pub fn start(queue: Queue) -> JobWaiters {
        let inner = Arc::new(Inner {
            queue,
            parked: Mutex::new(HashMap::new()),
            poke: Notify::new(),
            closed: watch::Sender::new(false),
        });
        tokio::spawn(watch(inner.clone()));
        JobWaiters { inner }
    }

    /// Ends every wait, now and from now on (the process is shutting down).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Registers a wait for `id`. Register before reading the job's state,
    /// so that a finish between the read and [`Parked::wait`] is not missed.
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

    /// The tenant's job with this id, once it is terminal or `timeout`
    /// passes or the waiters are closed, whichever comes first: the job as
    /// it is then (`None` when the tenant has no such job). A zero
    /// `timeout` reads the job without waiting.
    pub async fn wait(
        &self,
        tenant: TenantId,
        id: JobId,
        timeout: Duration,
    ) -> Result<Option<Job>, QueueError> {
        if timeout.is_zero() {
            return self.inner.queue.get(tenant, id).await;
        }
        let parked = self.park(id);
        // Armed before the read, so that a finish seen between the read
        // and the wait still wakes it (notify_waiters wakes only futures
        // that exist).
        let notified = parked.notify.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        match self.inner.queue.get(tenant, id).await? {
            Some(job) if !job.state.is_terminal() => {
                parked.until(notified, timeout).await;
                self.inner.queue.get(tenant, id).await
            }
            job => Ok(job),
        }
    }
}

/// The waking task: runs as long as the process does, listening when it
/// can and polling when it cannot.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crunch_db::testing::test_db;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{JobKind, JobState, NewJob, Outcome, Registry};

    #[derive(Serialize, Deserialize)]
    struct Nap;

    impl JobKind for Nap {
        const KIND: &'static str = "nap";
        type Payload = Nap;
    }

    /// Long enough that a wait ending means it was woken.
    const LONG: Duration = Duration::from_secs(60);

    async fn parked_on(waiters: &JobWaiters, id: JobId) {
        while !waiters.inner.parked().contains_key(&id) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A queue over `db` and the id of one queued `Nap` job.
    async fn queued_nap(db: &crunch_db::testing::TestDb) -> (Queue, JobId) {
        let queue = Queue::new(db.pool().clone(), Registry::new().register::<Nap>());
        let new = NewJob::of::<Nap>(TenantId::DEFAULT, &Nap).unwrap();
        let id = queue.enqueue(queue.pool(), new).await.unwrap().job.id;
        (queue, id)
    }

    #[tokio::test]
    async fn a_wait_ends_when_its_job_finishes() {
        let db = test_db().await;
        let (queue, id) = queued_nap(&db).await;
        let waiters = JobWaiters::start(queue.clone());
        let parked = waiters.park(id);
        let woken = tokio::spawn(async move { parked.wait(LONG).await });
        let waiting = tokio::spawn({
            let waiters = waiters.clone();
            async move { waiters.wait(TenantId::DEFAULT, id, LONG).await }
        });
        parked_on(&waiters, id).await;

        let claimed = queue
            .claim("w", &[Nap::KIND.to_owned()], 1, LONG)
            .await
            .unwrap();
        queue
            .finish(
                claimed[0].lease,
                Outcome::Succeeded(serde_json::Value::Null),
            )
            .await
            .unwrap();
        // Woken by the finish, not by its timeout.
        assert_eq!(woken.await.unwrap(), WaitEnd::Woken);
        let job = waiting.await.unwrap().unwrap().unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        // The waits unregistered when they ended.
        assert!(waiters.inner.parked().is_empty());
    }

    #[tokio::test]
    async fn closing_ends_every_wait_with_the_job_as_it_is() {
        let db = test_db().await;
        let (queue, id) = queued_nap(&db).await;
        let waiters = JobWaiters::start(queue.clone());
        let parked = waiters.park(id);
        let ended = tokio::spawn(async move { parked.wait(LONG).await });
        let waiting = tokio::spawn({
            let waiters = waiters.clone();
            async move { waiters.wait(TenantId::DEFAULT, id, LONG).await }
        });
        parked_on(&waiters, id).await;

        waiters.close();
        // Ended by the close, not by its timeout.
        assert_eq!(ended.await.unwrap(), WaitEnd::Closed);
        let job = waiting.await.unwrap().unwrap().unwrap();
        assert_eq!(job.state, JobState::Queued);
        // Closed for good: a later wait does not wait either.
        let again = waiters.wait(TenantId::DEFAULT, id, LONG).await.unwrap();
        assert_eq!(again.map(|job| job.state), Some(JobState::Queued));
    }

    #[tokio::test]
    async fn another_tenants_job_is_not_found_at_once() {
        let db = test_db().await;
        let (queue, id) = queued_nap(&db).await;
        let waiters = JobWaiters::start(queue.clone());
        let other = TenantId(uuid::Uuid::now_v7());
        // Nothing would wake a wait on the job (it never finishes), so a
        // wait that parked would run into this guard and fail.
        let found = tokio::time::timeout(LONG / 2, waiters.wait(other, id, LONG))
            .await
            .expect("answered without waiting on another tenant's job");
        assert!(found.unwrap().is_none());
    }
}
