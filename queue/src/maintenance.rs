//! Keeping the table healthy: rescuing jobs whose worker vanished, and
//! pruning finished jobs past their retention.

use std::time::Duration;

use crate::{
    Queue,
    error::QueueError,
    job::{JobId, JobState},
    lease::Finished,
};

impl Queue {
    /// Ends the attempts whose lease has expired, up to `limit` of them:
    /// their worker died or lost the database for longer than a lease.
    ///
    /// An expired attempt counts as a failed one: the job goes back to
    /// `queued` while attempts remain, to `failed` when they are used up
    /// (so a job that kills its worker every time ends, instead of looping),
    /// and to `cancelled` if a cancel was asked for. The shared
    /// `jobs_next_state` makes that decision, as for a worker's own finish.
    pub async fn rescue_expired(&self, limit: i64) -> Result<Vec<Finished>, QueueError> {
        Ok(sqlx::query_as!(
            Finished,
            r#"
            WITH done AS (
            UPDATE jobs AS j
            SET state = jobs_next_state('retry', j.attempt, j.max_attempts, j.cancel_requested_at),
                run_at = date_trunc('milliseconds', now()),
                finished_at = CASE
                    WHEN jobs_next_state('retry', j.attempt, j.max_attempts, j.cancel_requested_at) = 'queued'
                    THEN NULL ELSE now() END,
                error = format(
                    'attempt %s of %s lost its lease: worker %s stopped renewing it (crashed, killed or cut off)%s',
                    j.attempt, j.max_attempts, j.worker_id,
                    CASE WHEN j.attempt >= j.max_attempts AND j.cancel_requested_at IS NULL
                         THEN '; no attempts left' ELSE '' END),
                lease_expires_at = NULL
            FROM (
                SELECT id FROM jobs
                WHERE state = 'running' AND lease_expires_at < now()
                ORDER BY lease_expires_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ) AS expired
            WHERE j.id = expired.id
            RETURNING j.id, j.state
            ),
            announced AS (
                SELECT pg_notify('crunch_finished', '')
                FROM (SELECT 1 FROM done WHERE state <> 'queued' LIMIT 1) AS any_finished
            )
            SELECT id AS "id: JobId", state AS "state: JobState" FROM done
            WHERE (SELECT count(*) FROM announced) >= 0
            "#,
            limit,
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes up to `limit` jobs that finished more than `older_than` ago,
    /// oldest first, and returns how many it deleted. Small batches keep
    /// each delete's locks and WAL short; call again while it returns
    /// `limit`.
    pub async fn prune_finished(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> Result<u64, QueueError> {
        let age_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX) as f64;
        let done = sqlx::query!(
            r#"
            DELETE FROM jobs
            WHERE id IN (
                SELECT id FROM jobs
                WHERE state IN ('succeeded', 'failed', 'cancelled')
                  AND finished_at < now() - $1 * interval '1 millisecond'
                ORDER BY finished_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            )
            "#,
            age_ms,
            limit,
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}

/// The queue's housekeeping: rescue expired leases often, prune finished
/// jobs past retention now and then. Safe to run in every process at once:
/// both statements skip rows another process has locked.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// How often to look for expired leases.
    pub rescue_every: Duration,
    /// How often to prune.
    pub prune_every: Duration,
    /// How long finished jobs are kept; `None` leaves pruning to other
    /// processes (workers do: retention is the API server's setting, and a
    /// worker pruning by its own default would override it).
    pub retention: Option<Duration>,
    /// Rows per rescue or prune statement.
    pub batch: i64,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            rescue_every: Duration::from_secs(5),
            prune_every: Duration::from_secs(60),
            retention: Some(Duration::from_secs(7 * 24 * 60 * 60)),
            batch: 500,
        }
    }
}

/// What one round of maintenance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Jobs whose expired attempt was ended, with the state each moved to.
    pub rescued: Vec<Finished>,
    /// Finished jobs deleted.
    pub pruned: u64,
}

impl Maintenance {
    /// Rescues every expired lease, in batches.
    pub async fn rescue(&self, queue: &Queue) -> Result<Vec<Finished>, QueueError> {
        let mut rescued = Vec::new();
        loop {
            let batch = queue.rescue_expired(self.batch).await?;
            let full = batch.len() as i64 == self.batch;
            rescued.extend(batch);
            if !full {
                break;
            }
        }
        if rescued.iter().any(|f| f.state == JobState::Queued) {
            queue.announce().await?;
        }
        for f in &rescued {
            tracing::warn!(job = %f.id, state = %f.state, "rescued a job whose lease expired");
        }
        Ok(rescued)
    }

    /// Prunes every finished job past retention, in batches (none without
    /// a retention).
    pub async fn prune(&self, queue: &Queue) -> Result<u64, QueueError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        let mut pruned = 0;
        loop {
            let n = queue.prune_finished(retention, self.batch).await?;
            pruned += n;
            if n < self.batch as u64 {
                return Ok(pruned);
            }
        }
    }

    /// One round of both.
    pub async fn run_once(&self, queue: &Queue) -> Result<MaintenanceReport, QueueError> {
        Ok(MaintenanceReport {
            rescued: self.rescue(queue).await?,
            pruned: self.prune(queue).await?,
        })
    }

    /// Runs until `shutdown` resolves. Errors are logged and the loop goes
    /// on: a database outage must not end housekeeping.
    pub async fn run(self, queue: Queue, shutdown: impl std::future::Future<Output = ()>) {
        let mut rescue = tokio::time::interval(self.rescue_every);
        let mut prune = tokio::time::interval(self.prune_every);
        rescue.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = rescue.tick() => {
                    if let Err(e) = self.rescue(&queue).await {
                        tracing::warn!("rescuing expired leases failed: {e}");
                    }
                }
                _ = prune.tick() => {
                    match self.prune(&queue).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("pruned {n} finished jobs"),
                        Err(e) => tracing::warn!("pruning finished jobs failed: {e}"),
                    }
                }
            }
        }
    }
}

impl Queue {
    /// Wakes every worker to look for work (after jobs became claimable by
    /// an update rather than an insert).
    pub async fn announce(&self) -> Result<(), QueueError> {
        let kinds = self.registry().kinds().join(",");
        sqlx::query!("SELECT pg_notify($1, $2)", crate::JOBS_CHANNEL, kinds)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
