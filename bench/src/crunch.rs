//! The crunch queue measured through its apalis backend, in its default
//! (long-job-safe) configuration.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use apalis::prelude::{Data, WorkerBuilder, WorkerError};
use crunch_queue::{
    JobFailure, NewJob, PgBackend, Queue, Registry, TenantId, WorkerConfig, WorkerHandle,
};
use sqlx::PgPool;
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{BenchJob, Settings, now_ns};

/// What the handler records.
#[derive(Clone, Default)]
pub struct Tally {
    /// Jobs run.
    pub done: Arc<AtomicUsize>,
    /// Enqueue-to-start latencies, in nanoseconds.
    pub latencies: Arc<Mutex<Vec<u64>>>,
}

impl Tally {
    /// Records one started job.
    pub fn record(&self, job: &BenchJob) {
        let latency = now_ns().saturating_sub(job.sent_ns);
        if let Ok(mut l) = self.latencies.lock() {
            l.push(latency);
        }
        self.done.fetch_add(1, Ordering::Release);
    }

    /// Waits (polling a counter, in process) until `n` jobs have run.
    pub async fn wait_for(&self, n: usize) {
        while self.done.load(Ordering::Acquire) < n {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// The recorded latencies, sorted.
    pub fn sorted_latencies(&self) -> Vec<u64> {
        let mut l = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        l.sort_unstable();
        l
    }
}

async fn handler(job: BenchJob, tally: Data<Tally>) -> Result<(), JobFailure> {
    tally.record(&job);
    Ok(())
}

/// The queue over a fresh crunch database.
pub fn queue(pool: PgPool) -> Queue {
    Queue::new(pool, Registry::new().register::<BenchJob>())
}

struct Worker {
    handle: WorkerHandle,
    stop: oneshot::Sender<()>,
    join: JoinHandle<Result<(), WorkerError>>,
}

fn start(queue: &Queue, slots: usize, tally: &Tally) -> Worker {
    let backend =
        PgBackend::for_kind::<BenchJob>(queue.clone(), WorkerConfig::new("bench").slots(slots));
    let handle = backend.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = WorkerBuilder::new("bench")
        .backend(backend)
        .data(tally.clone())
        .build(handler);
    let join = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
        Ok::<(), std::io::Error>(())
    }));
    Worker { handle, stop, join }
}

impl Worker {
    async fn stop(self) -> anyhow::Result<()> {
        drop(self.stop);
        self.join.await??;
        Ok(())
    }
}

/// Enqueues `n` bench jobs in batches.
pub async fn fill(queue: &Queue, n: usize, batch: usize) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let take = left.min(batch);
        let jobs = (0..take)
            .map(|_| NewJob::of::<BenchJob>(TenantId::DEFAULT, &BenchJob { sent_ns: now_ns() }))
            .collect::<Result<Vec<_>, _>>()?;
        queue.enqueue_batch(queue.pool(), jobs).await?;
        left -= take;
    }
    Ok(())
}

/// No-op jobs per second: the time to burn down `jobs` queued jobs, until
/// every outcome is written.
pub async fn throughput(pool: PgPool, s: &Settings) -> anyhow::Result<f64> {
    let queue = queue(pool);
    fill(&queue, s.jobs, s.batch).await?;
    let tally = Tally::default();
    let started = Instant::now();
    let worker = start(&queue, s.concurrency, &tally);
    tally.wait_for(s.jobs).await;
    while worker.handle.held() > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = started.elapsed();
    worker.stop().await?;
    let stats = queue.stats(None).await?;
    anyhow::ensure!(
        stats.succeeded as usize == s.jobs,
        "only {} of {} succeeded",
        stats.succeeded,
        s.jobs
    );
    Ok(s.jobs as f64 / elapsed.as_secs_f64())
}

/// Jobs per second enqueued in batches of `batch`.
pub async fn enqueue_rate(pool: PgPool, s: &Settings) -> anyhow::Result<f64> {
    let queue = queue(pool);
    let started = Instant::now();
    fill(&queue, s.enqueue_jobs, s.batch).await?;
    Ok(s.enqueue_jobs as f64 / started.elapsed().as_secs_f64())
}

/// Enqueue-to-start latencies (sorted, ns) of jobs sent one at a time at
/// `rate` per second to an idle worker woken by NOTIFY.
pub async fn pickup(pool: PgPool, s: &Settings) -> anyhow::Result<Vec<u64>> {
    let queue = queue(pool);
    let tally = Tally::default();
    let worker = start(&queue, s.concurrency, &tally);
    // Let the worker start listening before the first job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tick = tokio::time::interval(s.interval());
    for _ in 0..s.latency_jobs() {
        tick.tick().await;
        let job = NewJob::of::<BenchJob>(TenantId::DEFAULT, &BenchJob { sent_ns: now_ns() })?;
        queue.enqueue(queue.pool(), job).await?;
    }
    tally.wait_for(s.latency_jobs()).await;
    worker.stop().await?;
    Ok(tally.sorted_latencies())
}
