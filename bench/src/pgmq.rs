//! PGMQ, the peer for bulk enqueue: its SQL-only install (the `pgmq.sql`
//! script its Rust crate embeds, run into a fresh database; no extension
//! build), and `pgmq.send_batch` as its clients call it.
//!
//! The script is not part of crunch: the bench reads it from the file
//! given by `--pgmq-sql`, which docs/benchmarks.md says how to fetch from
//! crates.io.

use std::{path::Path, time::Instant};

use sqlx::{PgPool, Row};

use crate::{BenchJob, Settings, now_ns};

/// The queue the bench sends to.
const QUEUE: &str = "bench";

/// Installs PGMQ from `script` into the fresh database behind `pool` and
/// creates the bench's queue (a plain, logged table, as `pgmq.create`
/// makes by default).
pub async fn install(pool: &PgPool, script: &Path) -> anyhow::Result<()> {
    let sql = std::fs::read_to_string(script)
        .map_err(|e| anyhow::anyhow!("reading the pgmq script {}: {e}", script.display()))?;
    // The script is many statements; the simple query protocol runs them
    // in one round trip, as psql -f would.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await?;
    sqlx::query("SELECT pgmq.create($1)")
        .bind(QUEUE)
        .execute(pool)
        .await?;
    Ok(())
}

/// Messages per second sent with `pgmq.send_batch`, `batch` a call, the
/// same payload as crunch's bench jobs; every call returns the new ids, as
/// it always does.
pub async fn enqueue_rate(pool: PgPool, s: &Settings, script: &Path) -> anyhow::Result<f64> {
    install(&pool, script).await?;
    let started = Instant::now();
    let mut left = s.enqueue_jobs;
    let mut sent = 0usize;
    while left > 0 {
        let take = left.min(s.batch);
        let messages: Vec<serde_json::Value> = (0..take)
            .map(|_| serde_json::to_value(BenchJob { sent_ns: now_ns() }))
            .collect::<Result<_, _>>()?;
        let ids = sqlx::query("SELECT * FROM pgmq.send_batch($1, $2::jsonb[])")
            .bind(QUEUE)
            .bind(&messages)
            .fetch_all(&pool)
            .await?;
        sent += ids.len();
        left -= take;
    }
    let rate = s.enqueue_jobs as f64 / started.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM pgmq.q_{QUEUE}"
    )))
    .fetch_one(&pool)
    .await?
    .try_get(0)?;
    anyhow::ensure!(
        sent == s.enqueue_jobs && stored == s.enqueue_jobs as i64,
        "pgmq returned {sent} ids and stored {stored} messages of {} sent",
        s.enqueue_jobs
    );
    Ok(rate)
}
