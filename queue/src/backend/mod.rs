//! An apalis backend over the `jobs` table.
//!
//! The poller claims at most as many jobs as the worker has free slots,
//! in one statement, when a notification, a freed slot or the poll timer
//! says there may be work. Each job runs inside [`JobService`], which
//! enforces the attempt's timeout and stop signals and reports the outcome.
//! Leases, outcomes and notifications live on a separate I/O thread (see
//! `io.rs`), so a handler that blocks its runtime cannot cost it its lease.
//!
//! Do not add apalis' own retry or timeout layers: retries and time limits
//! are the queue's, recorded in the table and fenced by attempt.

mod config;
mod context;
mod io;
mod protection;
mod service;
mod shared;

use std::{
    collections::VecDeque,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use apalis_core::{
    backend::{Backend, BackendConfig, finalize::Ephemeral},
    task::{Task, builder::TaskBuilder, task_id::TaskId},
    worker::context::WorkerContext,
};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

pub use config::WorkerConfig;
pub use context::{JobContext, JobFailure};
pub use protection::Protection;
pub use service::{Interrupted, JobLayer, JobService};

use self::{context::StopReason, shared::Shared};
use crate::{
    Queue,
    error::QueueError,
    job::{ClaimedJob, JobKind, Outcome},
};

type ClaimFuture = Pin<Box<dyn Future<Output = Result<Vec<ClaimedJob>, QueueError>> + Send>>;

/// An apalis backend that runs the queue's jobs of the configured kinds,
/// decoding each payload as `Args`.
pub struct PgBackend<Args> {
    queue: Queue,
    config: WorkerConfig,
    shared: Arc<Shared>,
    /// Claimed jobs not yet handed to the worker; each holds a slot.
    ready: VecDeque<Task<Args>>,
    /// The claim in flight, its reserved slots, and when it began: the
    /// database's lease counts from no earlier, so a local deadline counted
    /// from then never outlasts it.
    claiming: Option<(ClaimFuture, usize, Instant)>,
    /// The poll fallback; made on the first poll, inside the runtime.
    poll_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    io: IoState,
    _args: PhantomData<fn() -> Args>,
}

enum IoState {
    /// Not started: the thread starts on the first poll.
    Idle(mpsc::UnboundedReceiver<shared::IoMsg>),
    Running(oneshot::Sender<oneshot::Sender<()>>),
    Closing(oneshot::Receiver<()>),
    Closed,
}

/// Controls a running backend from outside the worker: graceful drain for
/// shutdown, and numbers for tests and metrics.
#[derive(Clone)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

impl WorkerHandle {
    /// Stops claiming, waits up to `grace` for running jobs to finish, then
    /// releases those still running back to the queue (their attempt is not
    /// counted). Returns once no job runs; then stop the apalis worker.
    pub async fn drain(&self, grace: Duration) {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.waker.wake();
        let deadline = tokio::time::Instant::now() + grace;
        let mut released = false;
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.busy.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::select! {
                _ = idle => {}
                _ = tokio::time::sleep_until(deadline), if !released => {
                    tracing::info!("grace period over: releasing running jobs");
                    self.shared.stop_all(StopReason::Released);
                    released = true;
                }
            }
        }
    }

    /// Jobs this worker holds a lease on (running, or waiting for their
    /// outcome to be written).
    pub fn held(&self) -> usize {
        self.shared.held_count()
    }

    /// Successful heartbeat rounds so far.
    pub fn heartbeats(&self) -> u64 {
        self.shared.heartbeats.load(Ordering::Relaxed)
    }

    /// Claim rounds completed so far, whatever they found.
    pub fn claim_rounds(&self) -> u64 {
        self.shared.claim_rounds.load(Ordering::Relaxed)
    }

    /// Slots in use.
    pub fn busy(&self) -> usize {
        self.shared.busy.load(Ordering::Acquire)
    }
}

impl<Args> PgBackend<Args> {
    /// A backend running `config`'s kinds from `queue`.
    pub fn new(queue: Queue, config: WorkerConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(config.slots, tx));
        PgBackend {
            poll_timer: None,
            queue,
            config,
            shared,
            ready: VecDeque::new(),
            claiming: None,
            io: IoState::Idle(rx),
            _args: PhantomData,
        }
    }

    /// A backend running the one kind `K`.
    pub fn for_kind<K: JobKind<Payload = Args>>(queue: Queue, config: WorkerConfig) -> Self {
        Self::new(queue, config.kinds([K::KIND]))
    }

    /// A handle for draining and observing this backend.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle {
            shared: self.shared.clone(),
        }
    }

    fn reset_poll_timer(&mut self) {
        let at = tokio::time::Instant::now() + self.config.poll_interval;
        match &mut self.poll_timer {
            Some(timer) => timer.as_mut().reset(at),
            None => self.poll_timer = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    fn start_io(&mut self) -> Result<(), QueueError> {
        if let IoState::Idle(_) = self.io {
            let (close_tx, close_rx) = oneshot::channel();
            let IoState::Idle(inbox) = std::mem::replace(&mut self.io, IoState::Running(close_tx))
            else {
                return Ok(());
            };
            io::spawn(
                &self.queue,
                &self.config,
                self.shared.clone(),
                inbox,
                close_rx,
            )
            .map_err(|e| QueueError::Invariant(leak_io_error(e)))?;
        }
        Ok(())
    }
}

/// One claim round. With protection configured, a round that ends with
/// nothing held, however it ends, gives protection up.
async fn claim(
    queue: Queue,
    config: WorkerConfig,
    reserve: usize,
    empty: bool,
    shared: Arc<Shared>,
) -> Result<Vec<ClaimedJob>, QueueError> {
    let Some(protection) = config.protection.as_deref() else {
        return queue
            .claim(&config.worker_id, &config.kinds, reserve, config.lease)
            .await;
    };
    let result = protected_claim(&queue, &config, protection, reserve, empty).await;
    if !matches!(&result, Ok(claimed) if !claimed.is_empty()) {
        release_if_idle(protection, &shared, reserve).await;
    }
    result
}

/// Claims only under protection, asked for while the jobs to claim are
/// locked ([`Queue::claim_after`]): a worker that finds nothing locked for
/// it makes no call, and of the idle workers woken for one job only the
/// one that locked it asks. A worker that holds nothing asks afresh for
/// the new job: during a deployment ECS refuses, and the task, left idle,
/// is free to be replaced. A worker that already holds jobs makes sure its
/// protection has not lapsed.
async fn protected_claim(
    queue: &Queue,
    config: &WorkerConfig,
    protection: &dyn Protection,
    reserve: usize,
    empty: bool,
) -> Result<Vec<ClaimedJob>, QueueError> {
    let before = async {
        if empty {
            protection.protect().await?;
        } else {
            protection.renew().await?;
        }
        Ok(())
    };
    queue
        .claim_after(
            &config.worker_id,
            &config.kinds,
            reserve,
            config.lease,
            before,
        )
        .await
}

/// Gives protection up when the only slots taken are this round's
/// reservation and no job awaits its outcome. A failure is logged; the
/// next idle round tries again (and the protection would run out anyway).
async fn release_if_idle(protection: &dyn Protection, shared: &Shared, reserve: usize) {
    if shared.busy.load(Ordering::Acquire) == reserve
        && shared.held_count() == 0
        && let Err(e) = protection.release().await
    {
        tracing::warn!("cannot give up scale-in protection: {e}");
    }
}

/// Thread spawn failures are fatal and rare; keep the error type simple.
fn leak_io_error(e: std::io::Error) -> &'static str {
    tracing::error!("cannot start the worker's I/O thread: {e}");
    "cannot start the worker's I/O thread"
}

impl<Args: DeserializeOwned + Send + Sync + 'static> PgBackend<Args> {
    /// Turns claimed jobs into tasks; a payload that no longer decodes fails
    /// its job for good and frees its slot. The local lease deadline counts
    /// from `began`, when the claim started: a claim under protection
    /// starts its transaction (whose `now()` the database's lease counts
    /// from) before the protection call, seconds before it returns.
    fn admit(&mut self, claimed: Vec<ClaimedJob>, began: Instant) {
        for job in claimed {
            let lease = job.lease;
            let deadline = began + self.config.lease;
            let stop = self.shared.hold(lease, deadline);
            let args = match serde_json::from_value::<Args>(job.payload) {
                Ok(args) => args,
                Err(e) => {
                    self.shared.finish(
                        lease,
                        Outcome::Failed {
                            error: format!("payload does not decode: {e}"),
                            retry_in: None,
                        },
                    );
                    self.shared.release_slots(1);
                    continue;
                }
            };
            let ctx = JobContext {
                lease,
                tenant_id: job.tenant_id,
                kind: job.kind.into(),
                max_attempts: job.max_attempts,
                timeout: job.timeout,
                stop,
                shared: self.shared.clone(),
            };
            let task = TaskBuilder::new(args)
                .task_id(TaskId::from_uuid(lease.id.0))
                // apalis counts the attempt up itself when the task starts.
                .attempt(usize::try_from(lease.attempt - 1).unwrap_or(0))
                .max_attempts(usize::try_from(job.max_attempts).unwrap_or(1))
                .data(ctx)
                .build();
            self.ready.push_back(task);
        }
    }
}

impl<Args: DeserializeOwned + Send + Sync + 'static> Backend for PgBackend<Args> {
    type Task = Task<Args>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        Poll::Ready(self.start_io())
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<Task<Args>, QueueError>>> {
        loop {
            if let Some(task) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(task)));
            }
            if let Some((claim, reserved, began)) = &mut self.claiming {
                let (reserved, began) = (*reserved, *began);
                let result = match claim.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result,
                };
                self.claiming = None;
                self.shared.claim_rounds.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(claimed) => {
                        let got = claimed.len();
                        if got == reserved {
                            // A full claim: more may be waiting.
                            self.shared.fetch.store(true, Ordering::Release);
                        }
                        // Unused reservations go back without asking for
                        // another round: the queue had no more, and a
                        // notification or the poll timer says when it does.
                        self.shared.unreserve(reserved - got);
                        self.admit(claimed, began);
                    }
                    Err(QueueError::Unprotected(e)) => {
                        // The protection logs its own failures; try again
                        // at the next poll.
                        tracing::debug!("not claiming: {e}");
                        self.shared.unreserve(reserved);
                        self.reset_poll_timer();
                    }
                    Err(e) => {
                        // The database is unreachable or failing: keep the
                        // worker alive and try again at the next poll.
                        tracing::warn!("claim failed: {e}");
                        self.shared.unreserve(reserved);
                        self.reset_poll_timer();
                    }
                }
                continue;
            }
            if self.shared.draining.load(Ordering::Acquire) {
                self.shared.waker.register(cx.waker());
                return Poll::Pending;
            }
            let free = self.shared.free();
            if free > 0 && self.shared.fetch.swap(false, Ordering::AcqRel) {
                let reserve = free.min(self.config.claim_batch);
                // Nothing running and nothing awaiting its outcome: the only
                // state in which protection may be missing or given up.
                let empty = self.shared.busy.fetch_add(reserve, Ordering::AcqRel) == 0
                    && self.shared.held_count() == 0;
                let claim = claim(
                    self.queue.clone(),
                    self.config.clone(),
                    reserve,
                    empty,
                    self.shared.clone(),
                );
                self.claiming = Some((Box::pin(claim), reserve, Instant::now()));
                self.reset_poll_timer();
                continue;
            }
            self.shared.waker.register(cx.waker());
            // Registered first, then checked: a wake-up between the check
            // above and the registration is not lost.
            if free > 0 && self.shared.fetch.load(Ordering::Acquire) {
                continue;
            }
            let timer = self
                .poll_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::ZERO)));
            if self.shared.free() > 0 && timer.as_mut().poll(cx).is_ready() {
                self.shared.fetch.store(true, Ordering::Release);
                continue;
            }
            return Poll::Pending;
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), QueueError>> {
        loop {
            match std::mem::replace(&mut self.io, IoState::Closed) {
                IoState::Idle(_) | IoState::Closed => return Poll::Ready(Ok(())),
                IoState::Running(close) => {
                    let (done_tx, done_rx) = oneshot::channel();
                    if close.send(done_tx).is_err() {
                        return Poll::Ready(Ok(()));
                    }
                    self.io = IoState::Closing(done_rx);
                }
                IoState::Closing(mut done) => match done.poll_unpin(cx) {
                    Poll::Pending => {
                        self.io = IoState::Closing(done);
                        return Poll::Pending;
                    }
                    Poll::Ready(_) => return Poll::Ready(Ok(())),
                },
            }
        }
    }
}

impl<Args> Drop for PgBackend<Args> {
    fn drop(&mut self) {
        // A backend dropped without a graceful close still stops its thread.
        if let IoState::Running(close) = std::mem::replace(&mut self.io, IoState::Closed) {
            let (done, _) = oneshot::channel();
            let _ = close.send(done);
        }
    }
}

impl<Args> BackendConfig for PgBackend<Args> {
    type Args = Args;
    type Id = uuid::Uuid;
    type Kind = Ephemeral;
    type Config = WorkerConfig;
    type Layer = JobLayer;

    fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> JobLayer {
        JobLayer::new(self.shared.clone(), self.config.backoff)
    }
}
