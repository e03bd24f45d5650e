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

/// Enqueues `n` bench jobs of the default tenant in batches.
pub async fn fill(queue: &Queue, n: usize, batch: usize) -> anyhow::Result<()> {
    fill_for(queue, &[TenantId::DEFAULT], n, batch, Enqueue::Rows).await
}

/// Which enqueue call a fill makes.
#[derive(Debug, Clone, Copy)]
pub enum Enqueue {
    /// `Queue::enqueue_batch`: every job's row comes back.
    Rows,
    /// `Queue::enqueue_batch_ids`: only ids come back.
    Ids,
}

/// Enqueues `n` bench jobs in batches, dealt round the tenants in turn.
pub async fn fill_for(
    queue: &Queue,
    tenants: &[TenantId],
    n: usize,
    batch: usize,
    call: Enqueue,
) -> anyhow::Result<()> {
    let mut next = tenants.iter().cycle();
    let mut left = n;
    while left > 0 {
        let take = left.min(batch);
        let jobs = (0..take)
            .map(|_| {
                let tenant = next.next().copied().unwrap_or(TenantId::DEFAULT);
                NewJob::of::<BenchJob>(tenant, &BenchJob { sent_ns: now_ns() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        match call {
            Enqueue::Rows => drop(queue.enqueue_batch(queue.pool(), jobs).await?),
            Enqueue::Ids => drop(queue.enqueue_batch_ids(queue.pool(), jobs).await?),
        }
        left -= take;
    }
    Ok(())
}

/// `n` tenants to spread jobs over: the default tenant alone for one,
/// else new ones.
pub async fn tenants(pool: &PgPool, n: usize) -> anyhow::Result<Vec<TenantId>> {
    if n <= 1 {
        return Ok(vec![TenantId::DEFAULT]);
    }
    let mut tenants = Vec::with_capacity(n);
    for i in 0..n {
        tenants.push(crunch_server::auth::tenants::create(pool, &format!("bench-{i}")).await?);
    }
    Ok(tenants)
}

/// No-op jobs per second: the time to burn down `jobs` queued jobs, dealt
/// round `tenants` tenants, until every outcome is written. Claims are
/// fair-share claims whatever the number of tenants.
pub async fn throughput(pool: PgPool, s: &Settings, tenants: usize) -> anyhow::Result<f64> {
    let owners = self::tenants(&pool, tenants).await?;
    let queue = queue(pool);
    fill_for(&queue, &owners, s.jobs, s.batch, Enqueue::Rows).await?;
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

/// Jobs per second enqueued in batches of `batch` with `call`.
pub async fn enqueue_rate(pool: PgPool, s: &Settings, call: Enqueue) -> anyhow::Result<f64> {
    let queue = queue(pool);
    let started = Instant::now();
    fill_for(&queue, &[TenantId::DEFAULT], s.enqueue_jobs, s.batch, call).await?;
    Ok(s.enqueue_jobs as f64 / started.elapsed().as_secs_f64())
}

/// Where tenant B's first job started, for the fairness measurement.
#[derive(Clone)]
struct FirstStart {
    tenant: TenantId,
    started: Arc<Mutex<Option<Instant>>>,
    length: Duration,
}

async fn slow_handler(
    _job: BenchJob,
    ctx: crunch_queue::JobContext,
    first: Data<FirstStart>,
) -> Result<(), JobFailure> {
    if ctx.tenant_id() == first.tenant
        && let Ok(mut started) = first.started.lock()
    {
        started.get_or_insert_with(Instant::now);
    }
    tokio::time::sleep(first.length).await;
    Ok(())
}

/// The fairness case: tenant A has `backlog` queued jobs of `length` each
/// and a worker with `slots` slots busy with them; tenant B then submits
/// `burst` jobs. Returns the time from B's submit to its first job's
/// start, in job lengths. Without fair share it would be A's backlog
/// divided by the slots.
pub async fn fairness(
    pool: PgPool,
    backlog: usize,
    burst: usize,
    slots: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let owners = self::tenants(&pool, 2).await?;
    let (a, b) = (owners[0], owners[1]);
    let queue = queue(pool);
    fill_for(&queue, &[a], backlog, 1000, Enqueue::Rows).await?;
    let first = FirstStart {
        tenant: b,
        started: Arc::default(),
        length,
    };
    let backend = PgBackend::for_kind::<BenchJob>(
        queue.clone(),
        WorkerConfig::new("bench-fair").slots(slots),
    );
    let handle = backend.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = WorkerBuilder::new("bench-fair")
        .backend(backend)
        .data(first.clone())
        .build(slow_handler);
    let join = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
        Ok::<(), std::io::Error>(())
    }));
    while handle.busy() < slots {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Mid-job, as a burst would arrive.
    tokio::time::sleep(length / 2).await;
    let submitted = Instant::now();
    fill_for(&queue, &[b], burst, 1000, Enqueue::Rows).await?;
    let started = loop {
        if let Some(at) = first.started.lock().ok().and_then(|s| *s) {
            break at;
        }
        // Twice the time A's backlog would take to run first.
        anyhow::ensure!(
            submitted.elapsed() < length * 2 * (backlog / slots.max(1)).max(1) as u32,
            "tenant B never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    handle.drain(Duration::ZERO).await;
    drop(stop);
    join.await??;
    Ok(started.saturating_duration_since(submitted).as_secs_f64() / length.as_secs_f64())
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
