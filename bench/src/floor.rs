//! The floor: crunch's own statements issued directly, with none of the
//! backend's machinery (no apalis, no slots, no I/O thread, no batching of
//! outcomes).

use std::time::{Duration, Instant};

use crunch_queue::{Outcome, TenantId};
use sqlx::{PgPool, postgres::PgListener};

use crate::{BenchJob, Settings, crunch, now_ns};

/// One loop claiming up to `concurrency` jobs and writing all their
/// outcomes in one statement, until the queue is empty: the queue's two
/// statements back to back, with nothing between them.
pub async fn throughput(pool: PgPool, s: &Settings) -> anyhow::Result<f64> {
    let queue = crunch::queue(pool);
    crunch::fill(&queue, s.jobs, s.batch).await?;
    let kinds = vec!["bench".to_owned()];
    let started = Instant::now();
    loop {
        let claimed = queue
            .claim("floor", &kinds, s.concurrency, Duration::from_secs(30))
            .await?;
        if claimed.is_empty() {
            break;
        }
        let done: Vec<_> = claimed
            .into_iter()
            .map(|job| (job.lease, Outcome::Succeeded(serde_json::Value::Null)))
            .collect();
        queue.finish_batch(&done).await?;
    }
    Ok(s.jobs as f64 / started.elapsed().as_secs_f64())
}

/// The insert statement alone.
pub async fn enqueue_rate(pool: PgPool, s: &Settings) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut left = s.enqueue_jobs;
    while left > 0 {
        let take = left.min(s.batch);
        let payloads: Vec<serde_json::Value> = (0..take)
            .map(|_| serde_json::to_value(BenchJob { sent_ns: now_ns() }))
            .collect::<Result<_, _>>()?;
        crunch_queue::floor::insert(&pool, TenantId::DEFAULT, "bench", &payloads).await?;
        left -= take;
    }
    Ok(s.enqueue_jobs as f64 / started.elapsed().as_secs_f64())
}

/// LISTEN, and on each notification claim what is there: the shortest path
/// from a committed insert to a started job.
pub async fn pickup(pool: PgPool, s: &Settings) -> anyhow::Result<Vec<u64>> {
    let queue = crunch::queue(pool);
    let mut listener = PgListener::connect_with(queue.pool()).await?;
    listener.listen(crunch_queue::JOBS_CHANNEL).await?;
    let total = s.latency_jobs();
    let consumer = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let kinds = vec!["bench".to_owned()];
            let mut latencies = Vec::with_capacity(total);
            while latencies.len() < total {
                listener.recv().await?;
                let claimed = queue
                    .claim("floor", &kinds, 16, Duration::from_secs(30))
                    .await?;
                let now = now_ns();
                let mut done = Vec::with_capacity(claimed.len());
                for job in claimed {
                    let payload: BenchJob = serde_json::from_value(job.payload)?;
                    latencies.push(now.saturating_sub(payload.sent_ns));
                    done.push((job.lease, Outcome::Succeeded(serde_json::Value::Null)));
                }
                queue.finish_batch(&done).await?;
            }
            latencies.sort_unstable();
            anyhow::Ok(latencies)
        })
    };
    let mut tick = tokio::time::interval(s.interval());
    for _ in 0..total {
        tick.tick().await;
        let job = crunch_queue::NewJob::of::<BenchJob>(
            TenantId::DEFAULT,
            &BenchJob { sent_ns: now_ns() },
        )?;
        queue.enqueue(queue.pool(), job).await?;
    }
    consumer.await?
}
