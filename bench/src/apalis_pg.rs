//! apalis-postgres 1.0 running the same workloads with the same handler.

use std::time::{Duration, Instant};

use apalis::prelude::{Data, TaskSink, WorkerBuilder, WorkerBuilderExt, WorkerError};
use apalis_postgres::{Config, PostgresStorage};
use sqlx::PgPool;
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{BenchJob, Settings, crunch::Tally, now_ns};

/// An apalis-postgres configuration under test.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// `batch_size(10)` with pubsub: its fastest.
    Fast,
    /// `batch_size(1)` with pubsub: nothing prefetched while slots are busy,
    /// the setting that is safe for long jobs.
    Safe,
}

impl Mode {
    fn config(self) -> Config {
        let batch = match self {
            Mode::Fast => 10,
            Mode::Safe => 1,
        };
        Config::default().queue("bench").batch_size(batch)
    }
}

async fn handler(job: BenchJob, tally: Data<Tally>) -> Result<(), std::io::Error> {
    tally.record(&job);
    Ok(())
}

struct Worker {
    stop: oneshot::Sender<()>,
    join: JoinHandle<Result<(), WorkerError>>,
}

fn start(pool: &PgPool, mode: Mode, concurrency: usize, tally: &Tally) -> Worker {
    start_named(pool, mode, concurrency, tally, "apalis-bench")
}

fn start_named(pool: &PgPool, mode: Mode, concurrency: usize, tally: &Tally, name: &str) -> Worker {
    let storage = PostgresStorage::<BenchJob>::new(pool)
        .with_config(mode.config())
        .with_pubsub();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = WorkerBuilder::new(name)
        .backend(storage)
        .data(tally.clone())
        .concurrency(concurrency)
        .build(handler);
    let join = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
        Ok::<(), std::io::Error>(())
    }));
    Worker { stop, join }
}

impl Worker {
    async fn stop(self) -> anyhow::Result<()> {
        drop(self.stop);
        self.join.await??;
        Ok(())
    }
}

fn storage(pool: &PgPool, mode: Mode) -> PostgresStorage<BenchJob> {
    PostgresStorage::new(pool).with_config(mode.config())
}

async fn fill(pool: &PgPool, mode: Mode, n: usize, batch: usize) -> anyhow::Result<()> {
    let mut storage = storage(pool, mode);
    let mut left = n;
    while left > 0 {
        let take = left.min(batch);
        let jobs: Vec<BenchJob> = (0..take).map(|_| BenchJob { sent_ns: now_ns() }).collect();
        storage.push_bulk(jobs).await?;
        left -= take;
    }
    Ok(())
}

async fn done_in_table(pool: &PgPool) -> anyhow::Result<i64> {
    let (done,): (i64,) = sqlx::query_as("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
        .fetch_one(pool)
        .await?;
    Ok(done)
}

/// No-op jobs per second, until every job is recorded `Done` in its table.
pub async fn throughput(pool: PgPool, mode: Mode, s: &Settings) -> anyhow::Result<f64> {
    fill(&pool, mode, s.jobs, s.batch).await?;
    let tally = Tally::default();
    let started = Instant::now();
    let worker = start(&pool, mode, s.concurrency, &tally);
    tally.wait_for(s.jobs).await;
    while done_in_table(&pool).await? < s.jobs as i64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    worker.stop().await?;
    Ok(s.jobs as f64 / elapsed.as_secs_f64())
}

/// No-op jobs per second with `workers` separate workers (one
/// `WorkerBuilder` and storage each, sharing the pool), the concurrency
/// split between them: how apalis-postgres scales out in practice.
pub async fn throughput_workers(
    pool: PgPool,
    mode: Mode,
    s: &Settings,
    workers: usize,
) -> anyhow::Result<f64> {
    fill(&pool, mode, s.jobs, s.batch).await?;
    let tally = Tally::default();
    let started = Instant::now();
    let each = (s.concurrency / workers.max(1)).max(1);
    let running: Vec<Worker> = (0..workers.max(1))
        .map(|i| start_named(&pool, mode, each, &tally, &format!("apalis-bench-{i}")))
        .collect();
    tally.wait_for(s.jobs).await;
    while done_in_table(&pool).await? < s.jobs as i64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    for worker in running {
        worker.stop().await?;
    }
    Ok(s.jobs as f64 / elapsed.as_secs_f64())
}

/// Jobs per second enqueued with `push_bulk` in batches of `batch`.
pub async fn enqueue_rate(pool: PgPool, s: &Settings) -> anyhow::Result<f64> {
    let started = Instant::now();
    fill(&pool, Mode::Fast, s.enqueue_jobs, s.batch).await?;
    Ok(s.enqueue_jobs as f64 / started.elapsed().as_secs_f64())
}

/// Enqueue-to-start latencies (sorted, ns) at `rate` jobs per second.
pub async fn pickup(pool: PgPool, mode: Mode, s: &Settings) -> anyhow::Result<Vec<u64>> {
    let tally = Tally::default();
    let worker = start(&pool, mode, s.concurrency, &tally);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut storage = storage(&pool, mode);
    let mut tick = tokio::time::interval(s.interval());
    for _ in 0..s.latency_jobs() {
        tick.tick().await;
        storage.push(BenchJob { sent_ns: now_ns() }).await?;
    }
    tally.wait_for(s.latency_jobs()).await;
    worker.stop().await?;
    Ok(tally.sorted_latencies())
}
