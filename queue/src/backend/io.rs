//! The backend's I/O thread: lease heartbeats, outcome writes and
//! notifications, on a runtime and pool of their own so that handlers that
//! hog the worker's runtime (or its CPU) cannot delay a lease renewal.

use std::{
    sync::{Arc, atomic::Ordering},
    thread,
    time::{Duration, Instant},
};

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{mpsc, oneshot};

use super::{
    config::WorkerConfig,
    context::StopReason,
    shared::{IoMsg, Shared},
};
use crate::{
    CANCEL_CHANNEL, JOBS_CHANNEL, Queue,
    job::{JobId, Lease, Outcome},
};

/// The most outcomes written by one statement.
const FINISH_BATCH: usize = 512;

/// Starts the I/O thread. It runs until `close` fires, then writes every
/// outcome already handed to it, answers on the channel and exits.
pub(crate) fn spawn(
    queue: &Queue,
    config: &WorkerConfig,
    shared: Arc<Shared>,
    inbox: mpsc::UnboundedReceiver<IoMsg>,
    close: oneshot::Receiver<oneshot::Sender<()>>,
) -> std::io::Result<()> {
    let options = (*queue.pool().connect_options()).clone();
    let queue = queue.clone();
    let config = config.clone();
    thread::Builder::new()
        .name(format!("crunch-io-{}", config.worker_id))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!("cannot start the worker's I/O runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                // Two connections: heartbeats never wait behind an outcome
                // write; the listener holds its own.
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_lazy_with(options);
                let queue = queue.with_pool(pool);
                let io = Io {
                    queue,
                    config,
                    shared,
                };
                io.run(inbox, close).await;
            });
        })
        .map(drop)
}

struct Io {
    queue: Queue,
    config: WorkerConfig,
    shared: Arc<Shared>,
}

impl Io {
    async fn run(
        &self,
        inbox: mpsc::UnboundedReceiver<IoMsg>,
        close: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        tokio::select! {
            _ = self.write_outcomes(inbox, close) => {}
            _ = self.heartbeats() => {}
            _ = self.listen() => {}
        }
    }

    /// Renews the held leases every heartbeat interval, writes progress, and
    /// stops handlers whose job was cancelled or whose lease is gone.
    async fn heartbeats(&self) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.heartbeat_once().await;
        }
    }

    async fn heartbeat_once(&self) {
        let batch: Vec<(Lease, Option<crate::lease::Progress>)> = self
            .shared
            .held()
            .iter_mut()
            .map(|(id, held)| {
                (
                    Lease {
                        id: *id,
                        attempt: held.attempt,
                    },
                    held.progress.take(),
                )
            })
            .collect();
        if batch.is_empty() {
            return;
        }
        let sent_at = Instant::now();
        match self.queue.heartbeat(&batch, self.config.lease).await {
            Ok(renewed) => {
                self.shared.heartbeats.fetch_add(1, Ordering::Relaxed);
                let deadline = sent_at + self.config.lease;
                let mut kept = std::collections::HashMap::with_capacity(renewed.len());
                for r in &renewed {
                    kept.insert(r.lease.id, r.cancel_requested);
                }
                let mut lost = Vec::new();
                {
                    let mut held = self.shared.held();
                    for (lease, _) in &batch {
                        let Some(h) = held.get_mut(&lease.id) else {
                            continue;
                        };
                        if h.attempt != lease.attempt {
                            continue;
                        }
                        match kept.get(&lease.id) {
                            Some(cancel_requested) => {
                                h.lease_deadline = deadline;
                                if *cancel_requested && !h.finishing {
                                    h.stop.send_replace(Some(StopReason::Cancelled));
                                }
                            }
                            None if !h.finishing => lost.push(*lease),
                            // Its outcome is on its way and will be fenced
                            // out; the writer forgets it.
                            None => {}
                        }
                    }
                }
                for lease in lost {
                    tracing::warn!(job = %lease.id, attempt = lease.attempt, "lease lost; stopping the job");
                    self.shared.stop(lease, StopReason::LeaseLost);
                    self.shared.forget(lease);
                }
                // After the leases: a slow agent must not delay a cancel.
                if let Some(protection) = &self.config.protection
                    && let Err(e) = protection.renew().await
                {
                    // The job keeps running: losing protection risks a
                    // scale-in, which the drain and the lease cover.
                    tracing::warn!("cannot renew scale-in protection: {e}");
                }
            }
            Err(e) => {
                // Put unsent progress back for the next round.
                let mut held = self.shared.held();
                for (lease, progress) in batch {
                    if let (Some(h), Some(p)) = (held.get_mut(&lease.id), progress) {
                        h.progress.get_or_insert(p);
                    }
                }
                drop(held);
                tracing::warn!("heartbeat failed: {e}");
                self.stop_expired();
            }
        }
    }

    /// A lease that could not be renewed in time belongs to nobody now; the
    /// rescuer may hand the job to another worker, so stop working on it.
    fn stop_expired(&self) {
        let now = Instant::now();
        let expired: Vec<Lease> = self
            .shared
            .held()
            .iter()
            .filter(|(_, h)| !h.finishing && h.lease_deadline <= now)
            .map(|(id, h)| Lease {
                id: *id,
                attempt: h.attempt,
            })
            .collect();
        for lease in expired {
            tracing::warn!(job = %lease.id, "lease expired without renewal; stopping the job");
            self.shared.stop(lease, StopReason::LeaseLost);
            self.shared.forget(lease);
        }
    }

    /// Writes reported outcomes in batches, in arrival order, until told to
    /// close; then writes everything already reported and answers. A write
    /// runs in a branch body, never inside the select, so closing cannot
    /// cut one short.
    async fn write_outcomes(
        &self,
        mut inbox: mpsc::UnboundedReceiver<IoMsg>,
        mut close: oneshot::Receiver<oneshot::Sender<()>>,
    ) {
        loop {
            tokio::select! {
                biased;
                message = inbox.recv() => {
                    let Some(IoMsg::Finish(lease, outcome)) = message else { return };
                    let mut batch = vec![(lease, outcome)];
                    while batch.len() < FINISH_BATCH {
                        match inbox.try_recv() {
                            Ok(IoMsg::Finish(lease, outcome)) => batch.push((lease, outcome)),
                            Err(_) => break,
                        }
                    }
                    self.write_until_done(batch).await;
                }
                done = &mut close => {
                    inbox.close();
                    let mut rest = Vec::new();
                    while let Some(IoMsg::Finish(lease, outcome)) = inbox.recv().await {
                        rest.push((lease, outcome));
                    }
                    for chunk in rest.chunks(FINISH_BATCH) {
                        self.write_until_done(chunk.to_vec()).await;
                    }
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Writes one batch, retrying while the database is unreachable. The
    /// jobs stay held meanwhile, so their leases keep being renewed.
    async fn write_until_done(&self, batch: Vec<(Lease, Outcome)>) {
        let mut wait = Duration::from_millis(50);
        loop {
            match self.queue.finish_batch(&batch).await {
                Ok(finished) => {
                    let written: std::collections::HashSet<JobId> =
                        finished.iter().map(|f| f.id).collect();
                    for (lease, _) in &batch {
                        if !written.contains(&lease.id) {
                            tracing::warn!(job = %lease.id, attempt = lease.attempt,
                                "outcome discarded: the attempt no longer holds the job");
                        }
                        self.shared.forget(*lease);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "writing {} outcomes failed, retrying in {wait:?}: {e}",
                        batch.len()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Wakes the poller when jobs of its kinds are enqueued, and stops a
    /// handler at once when its job is cancelled. Reconnects by itself.
    async fn listen(&self) {
        loop {
            let mut listener = match PgListener::connect_with(self.queue.pool()).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!("cannot listen for notifications, polling meanwhile: {e}");
                    tokio::time::sleep(self.config.poll_interval.max(Duration::from_secs(1))).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen_all([JOBS_CHANNEL, CANCEL_CHANNEL]).await {
                tracing::warn!("cannot listen for notifications, polling meanwhile: {e}");
                tokio::time::sleep(self.config.poll_interval.max(Duration::from_secs(1))).await;
                continue;
            }
            // Notifications sent while not listening are lost: look now.
            self.shared.wake_for_work();
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) if n.channel() == JOBS_CHANNEL => {
                        if n.payload()
                            .split(',')
                            .any(|k| self.config.kinds.iter().any(|m| m == k))
                        {
                            self.shared.wake_for_work();
                        }
                    }
                    Ok(Some(n)) => {
                        if let Ok(id) = n.payload().parse() {
                            self.cancel(JobId(id));
                        }
                    }
                    // The connection dropped; try_recv reconnects on the
                    // next call, and anything missed is found by a claim.
                    Ok(None) => self.shared.wake_for_work(),
                    Err(e) => {
                        tracing::warn!("notification listener failed: {e}");
                        break;
                    }
                }
            }
        }
    }

    fn cancel(&self, id: JobId) {
        let attempt = self.shared.held().get(&id).map(|h| h.attempt);
        if let Some(attempt) = attempt {
            self.shared
                .stop(Lease { id, attempt }, StopReason::Cancelled);
        }
    }
}
