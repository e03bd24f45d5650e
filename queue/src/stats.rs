//! The numbers the API shows and scaling runs on.

use std::time::Duration;

use serde::Serialize;

use crate::{Queue, error::QueueError, job::TenantId, tenants::sql_limit};

/// A snapshot of the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueStats {
    /// Queued jobs that are claimable now.
    pub queued_ready: i64,
    /// Of the claimable jobs, those that may start now: each tenant's
    /// claimable jobs up to the room its `max_running` (its own, else the
    /// queue's default) leaves beside its running jobs. The jobs that
    /// workers could take if there were more workers.
    pub runnable: i64,
    /// Queued jobs waiting for their `run_at` (scheduled or backing off).
    pub queued_waiting: i64,
    /// Running jobs.
    pub running: i64,
    /// Succeeded jobs not yet pruned.
    pub succeeded: i64,
    /// Failed jobs not yet pruned.
    pub failed: i64,
    /// Cancelled jobs not yet pruned.
    pub cancelled: i64,
    /// How long the oldest claimable job has waited since it became
    /// claimable; zero when none waits.
    pub oldest_queued_age: Duration,
    /// Running jobs per worker, busiest first.
    pub running_by_worker: Vec<WorkerLoad>,
    /// Jobs that reached a terminal state in the last minute.
    pub finished_last_minute: FinishedCounts,
}

/// Running jobs held by one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerLoad {
    /// The worker's id.
    pub worker_id: String,
    /// How many jobs it runs.
    pub running: i64,
}

/// Terminal transitions in a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FinishedCounts {
    /// Ended `succeeded`.
    pub succeeded: i64,
    /// Ended `failed`.
    pub failed: i64,
    /// Ended `cancelled`.
    pub cancelled: i64,
}

impl QueueStats {
    /// Runnable plus running: the work that scaling must provide capacity
    /// for. Counting running jobs keeps the backlog from reading zero while
    /// every worker is still busy; counting only runnable queued jobs keeps
    /// it from asking for workers that tenants' `max_running` would leave
    /// idle.
    pub fn backlog(&self) -> i64 {
        self.runnable + self.running
    }
}

impl Queue {
    /// The queue's numbers, for one tenant or (with `None`) for the whole
    /// service, which is what scaling needs.
    pub async fn stats(&self, tenant: Option<TenantId>) -> Result<QueueStats, QueueError> {
        let tenant = tenant.map(|t| t.0);
        // Per tenant first, so that each tenant's claimable jobs can be
        // capped by the room its max_running leaves.
        let counts = sqlx::query!(
            r#"
            WITH per AS (
                SELECT tenant_id,
                    count(*) FILTER (WHERE state = 'queued' AND run_at <= now()) AS ready,
                    count(*) FILTER (WHERE state = 'queued' AND run_at > now()) AS waiting,
                    count(*) FILTER (WHERE state = 'running') AS running,
                    count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
                    count(*) FILTER (WHERE state = 'failed') AS failed,
                    count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
                    min(run_at) FILTER (WHERE state = 'queued' AND run_at <= now()) AS oldest,
                    count(*) FILTER (WHERE state = 'succeeded' AND finished_at > now() - interval '1 minute')
                        AS succeeded_1m,
                    count(*) FILTER (WHERE state = 'failed' AND finished_at > now() - interval '1 minute')
                        AS failed_1m,
                    count(*) FILTER (WHERE state = 'cancelled' AND finished_at > now() - interval '1 minute')
                        AS cancelled_1m
                FROM jobs
                WHERE ($1::uuid IS NULL OR tenant_id = $1)
                GROUP BY tenant_id
            )
            SELECT
                coalesce(sum(p.ready), 0)::int8 AS "queued_ready!",
                coalesce(sum(p.waiting), 0)::int8 AS "queued_waiting!",
                coalesce(sum(CASE WHEN l.lim IS NULL THEN p.ready
                                  ELSE least(p.ready, greatest(l.lim - p.running, 0)) END), 0)::int8
                    AS "runnable!",
                coalesce(sum(p.running), 0)::int8 AS "running!",
                coalesce(sum(p.succeeded), 0)::int8 AS "succeeded!",
                coalesce(sum(p.failed), 0)::int8 AS "failed!",
                coalesce(sum(p.cancelled), 0)::int8 AS "cancelled!",
                coalesce(extract(epoch FROM now() - min(p.oldest)) * 1000, 0)::float8 AS "oldest_ms!",
                coalesce(sum(p.succeeded_1m), 0)::int8 AS "succeeded_1m!",
                coalesce(sum(p.failed_1m), 0)::int8 AS "failed_1m!",
                coalesce(sum(p.cancelled_1m), 0)::int8 AS "cancelled_1m!"
            FROM per p
            LEFT JOIN tenants t ON t.id = p.tenant_id
            CROSS JOIN LATERAL (SELECT coalesce(t.max_running, $2::int4) AS lim) AS l
            "#,
            tenant,
            sql_limit(self.defaults.max_running),
        )
        .fetch_one(self.pool())
        .await?;
        let by_worker = sqlx::query!(
            r#"
            SELECT worker_id AS "worker_id!", count(*) AS "running!"
            FROM jobs
            WHERE state = 'running' AND ($1::uuid IS NULL OR tenant_id = $1)
            GROUP BY worker_id
            ORDER BY count(*) DESC, worker_id
            "#,
            tenant,
        )
        .fetch_all(self.pool())
        .await?;
        Ok(QueueStats {
            queued_ready: counts.queued_ready,
            runnable: counts.runnable,
            queued_waiting: counts.queued_waiting,
            running: counts.running,
            succeeded: counts.succeeded,
            failed: counts.failed,
            cancelled: counts.cancelled,
            oldest_queued_age: Duration::from_millis(counts.oldest_ms.max(0.0) as u64),
            running_by_worker: by_worker
                .into_iter()
                .map(|r| WorkerLoad {
                    worker_id: r.worker_id,
                    running: r.running,
                })
                .collect(),
            finished_last_minute: FinishedCounts {
                succeeded: counts.succeeded_1m,
                failed: counts.failed_1m,
                cancelled: counts.cancelled_1m,
            },
        })
    }
}

/// Run times of the attempts that finished in a recent window, per final
/// state, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunTimes {
    /// One entry per terminal state that occurred in the window.
    pub by_state: Vec<RunTimeQuantiles>,
}

/// Run-time quantiles of jobs that ended in one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunTimeQuantiles {
    /// The terminal state.
    pub state: crate::JobState,
    /// How many jobs.
    pub count: i64,
    /// Median run time, seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// Total run time, seconds.
    pub sum: f64,
    /// Shortest run time, seconds.
    pub min: f64,
    /// Longest run time, seconds.
    pub max: f64,
}

impl Queue {
    /// Run-time quantiles of the jobs that finished within `window`, for
    /// metrics. Uses the retention index on `finished_at`.
    pub async fn recent_run_times(&self, window: Duration) -> Result<RunTimes, QueueError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX) as f64;
        let rows = sqlx::query!(
            r#"
            SELECT state AS "state!: crate::JobState",
                   count(*) AS "count!",
                   coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY secs), 0)::float8 AS "p50!",
                   coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY secs), 0)::float8 AS "p90!",
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY secs), 0)::float8 AS "p99!",
                   coalesce(sum(secs), 0)::float8 AS "sum!",
                   coalesce(min(secs), 0)::float8 AS "min!",
                   coalesce(max(secs), 0)::float8 AS "max!"
            FROM (
                SELECT state, extract(epoch FROM finished_at - coalesce(started_at, finished_at)) AS secs
                FROM jobs
                WHERE state IN ('succeeded', 'failed', 'cancelled')
                  AND finished_at > now() - $1 * interval '1 millisecond'
            ) AS recent
            GROUP BY state
            ORDER BY state
            "#,
            window_ms,
        )
        .fetch_all(self.pool())
        .await?;
        Ok(RunTimes {
            by_state: rows
                .into_iter()
                .map(|r| RunTimeQuantiles {
                    state: r.state,
                    count: r.count,
                    p50: r.p50,
                    p90: r.p90,
                    p99: r.p99,
                    sum: r.sum,
                    min: r.min,
                    max: r.max,
                })
                .collect(),
        })
    }
}
