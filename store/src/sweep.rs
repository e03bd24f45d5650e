//! Sweeping the object store of objects nothing will read again.
//!
//! Objects outlive their rows in a few ways. None of them loses data, but
//! each costs storage for good:
//! - a process dies between uploading a part and committing its row;
//! - a dataset is deleted and one of its objects cannot be (rows go first);
//! - retention prunes a finished job, and its result stays;
//! - an attempt that did not count leaves a file: a crashed attempt's
//!   partial result, a stale attempt that finished after losing its lease,
//!   every attempt of a job that failed or was cancelled.
//!
//! The sweep lists the store under `tenants/` and deletes what the database
//! says nothing refers to:
//! - a part object whose part row does not exist or names another object;
//! - a result object whose job does not exist, or has ended without
//!   succeeding with that attempt in that tenant.
//!
//! Objects younger than the grace period are never touched: a part's object
//! is uploaded before its row commits, and a result is written before its
//! attempt is recorded. Results of jobs still queued or running are kept
//! whatever their attempt. Anything else under the prefix is left alone and
//! counted. The sweep is idempotent and takes no locks, so every server
//! replica may run it; deleting what another replica just deleted is not
//! an error.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use crunch_queue::{JobAttempt, JobId, JobState, Queue, TenantId};
use futures_util::TryStreamExt;
use object_store::{ObjectMeta, path::Path};
use uuid::Uuid;

use crate::{catalog, error::StoreError, ids::PartId, objects::Objects, store::Store};

/// How the sweep runs.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Objects modified more recently than this are kept, whatever the
    /// database says.
    pub grace: Duration,
    /// Objects looked up in the database at once.
    pub batch: usize,
    /// How often [`Sweep::run`] sweeps.
    pub every: Duration,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            grace: Duration::from_secs(60 * 60),
            batch: 1000,
            every: Duration::from_secs(60 * 60),
        }
    }
}

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Objects listed under `tenants/`.
    pub listed: u64,
    /// Part objects deleted: no part row records them.
    pub parts_deleted: u64,
    /// Result objects deleted: their job is gone, or ended without them.
    pub results_deleted: u64,
    /// Objects kept for being younger than the grace period.
    pub young: u64,
    /// Objects whose path is neither a part's nor a result's; kept.
    pub unknown: u64,
    /// Deletions that failed (logged); the next sweep tries again.
    pub failed: u64,
}

/// What an object's path says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// `tenants/<t>/datasets/<d>/parts/<part>.parquet`.
    Part(PartId),
    /// `tenants/<t>/results/<job>/attempt-<n>.parquet`.
    Result {
        tenant: TenantId,
        job: JobId,
        attempt: i32,
    },
    /// Anything else.
    Unknown,
}

/// Reads a path relative to the store's prefix (`segments`) by the layout
/// in [`crate::objects`].
fn classify(segments: &[&str]) -> Found {
    let uuid = |s: &str| Uuid::parse_str(s).ok();
    match segments {
        ["tenants", tenant, "datasets", dataset, "parts", file] => {
            match (
                uuid(tenant),
                uuid(dataset),
                file.strip_suffix(".parquet").and_then(uuid),
            ) {
                (Some(_), Some(_), Some(part)) => Found::Part(PartId(part)),
                _ => Found::Unknown,
            }
        }
        ["tenants", tenant, "results", job, file] => {
            let attempt = file
                .strip_prefix("attempt-")
                .and_then(|f| f.strip_suffix(".parquet"))
                .and_then(|n| n.parse().ok());
            match (uuid(tenant), uuid(job), attempt) {
                (Some(tenant), Some(job), Some(attempt)) => Found::Result {
                    tenant: TenantId(tenant),
                    job: JobId(job),
                    attempt,
                },
                _ => Found::Unknown,
            }
        }
        _ => Found::Unknown,
    }
}

/// Whether a job's result object for `attempt` in `tenant` is still read
/// or may still be: `job` is what the database holds (None: no such job).
fn result_wanted(job: Option<&JobAttempt>, tenant: TenantId, attempt: i32) -> bool {
    match job {
        None => false,
        Some(job) if job.tenant_id != tenant => false,
        Some(job) if !job.state.is_terminal() => true,
        Some(job) => job.state == JobState::Succeeded && job.attempt == attempt,
    }
}

/// The objects of one batch, by what their paths say.
#[derive(Default)]
struct Batch {
    parts: Vec<(PartId, String, Path)>,
    results: Vec<(TenantId, JobId, i32, Path)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.parts.len() + self.results.len()
    }
}

impl Store {
    /// Lists the store once and deletes every object nothing refers to
    /// (see [`crate::sweep`]), asking `queue` about results. A failed
    /// deletion is logged and counted; a failed listing or lookup ends the
    /// sweep with an error, having deleted what it had decided on.
    pub async fn sweep(&self, queue: &Queue, sweep: &Sweep) -> Result<SweepReport, StoreError> {
        let objects = self.objects_inner();
        let prefix = objects.prefix().clone();
        let tenants: Path = prefix
            .parts()
            .chain(Path::from("tenants").parts())
            .collect();
        let grace = chrono::Duration::from_std(sweep.grace).unwrap_or(chrono::Duration::MAX);
        let cutoff: DateTime<Utc> = Utc::now() - grace;
        let mut report = SweepReport::default();
        let mut batch = Batch::default();
        let mut listing = objects.store.list(Some(&tenants));
        while let Some(ObjectMeta {
            location,
            last_modified,
            ..
        }) = listing.try_next().await?
        {
            report.listed += 1;
            if last_modified > cutoff {
                report.young += 1;
                continue;
            }
            let Some(relative) = location.prefix_match(&prefix) else {
                report.unknown += 1;
                continue;
            };
            let relative: Vec<_> = relative.collect();
            let segments: Vec<&str> = relative.iter().map(AsRef::as_ref).collect();
            match classify(&segments) {
                Found::Part(id) => batch.parts.push((id, segments.join("/"), location)),
                Found::Result {
                    tenant,
                    job,
                    attempt,
                } => batch.results.push((tenant, job, attempt, location)),
                Found::Unknown => {
                    tracing::debug!(%location, "the sweep keeps an object it does not know");
                    report.unknown += 1;
                }
            }
            if batch.len() >= sweep.batch.max(1) {
                self.sweep_batch(queue, std::mem::take(&mut batch), &mut report)
                    .await?;
            }
        }
        self.sweep_batch(queue, batch, &mut report).await?;
        Ok(report)
    }

    /// Decides on one batch and deletes what nothing refers to.
    async fn sweep_batch(
        &self,
        queue: &Queue,
        batch: Batch,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let objects = self.objects_inner();
        if !batch.parts.is_empty() {
            let ids: Vec<PartId> = batch.parts.iter().map(|(id, ..)| *id).collect();
            let recorded: HashMap<PartId, String> = catalog::part_paths(self.pool(), &ids)
                .await?
                .into_iter()
                .collect();
            let orphans: Vec<Path> = batch
                .parts
                .into_iter()
                .filter(|(id, key, _)| recorded.get(id) != Some(key))
                .map(|(.., path)| path)
                .collect();
            delete_counted(
                objects,
                orphans,
                &mut report.parts_deleted,
                &mut report.failed,
            )
            .await;
        }
        if !batch.results.is_empty() {
            let ids: Vec<JobId> = batch.results.iter().map(|(_, id, ..)| *id).collect();
            let jobs: HashMap<JobId, JobAttempt> = queue
                .attempts_of(&ids)
                .await?
                .into_iter()
                .map(|j| (j.id, j))
                .collect();
            let leftovers: Vec<Path> = batch
                .results
                .into_iter()
                .filter(|(tenant, id, attempt, _)| !result_wanted(jobs.get(id), *tenant, *attempt))
                .map(|(.., path)| path)
                .collect();
            delete_counted(
                objects,
                leftovers,
                &mut report.results_deleted,
                &mut report.failed,
            )
            .await;
        }
        Ok(())
    }
}

/// Deletes `paths`, adding what went to `deleted` and what could not (the
/// next sweep tries again) to `failed`.
async fn delete_counted(objects: &Objects, paths: Vec<Path>, deleted: &mut u64, failed: &mut u64) {
    let total = paths.len() as u64;
    let gone = objects.delete_quietly(paths).await;
    *deleted += gone;
    *failed += total - gone;
}

impl Sweep {
    /// Sweeps every [`Sweep::every`] until `shutdown` resolves, the first
    /// time at a random point of the first period: the replicas of a
    /// deploy do not all list the store at once, and servers restarted
    /// more often than once a period still sweep. Errors are logged and
    /// the loop goes on.
    pub async fn run(
        self,
        store: Store,
        queue: Queue,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let start = tokio::time::Instant::now() + self.every.mul_f64(fastrand::f64());
        let mut every = tokio::time::interval_at(start, self.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = every.tick() => match store.sweep(&queue, &self).await {
                    Ok(report) if report.parts_deleted + report.results_deleted + report.failed > 0 => {
                        tracing::info!(?report, "swept the object store");
                    }
                    Ok(report) => tracing::debug!(?report, "swept the object store"),
                    Err(error) => tracing::warn!(%error, "sweeping the object store failed"),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a6e4-0000-7000-8000-000000000001";
    const D: &str = "0190a6e4-0000-7000-8000-000000000002";
    const P: &str = "0190a6e4-0000-7000-8000-000000000003";

    fn uuid(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap_or_default()
    }

    #[test]
    fn paths_are_read_by_the_layout() {
        let part = format!("{P}.parquet");
        assert_eq!(
            classify(&["tenants", T, "datasets", D, "parts", &part]),
            Found::Part(PartId(uuid(P)))
        );
        assert_eq!(
            classify(&["tenants", T, "results", P, "attempt-12.parquet"]),
            Found::Result {
                tenant: TenantId(uuid(T)),
                job: JobId(uuid(P)),
                attempt: 12
            }
        );
        for unknown in [
            vec!["tenants", T, "results", P, "result.parquet"],
            vec!["tenants", T, "results", P, "attempt-x.parquet"],
            vec!["tenants", "x", "results", P, "attempt-1.parquet"],
            vec!["tenants", T, "datasets", D, "parts", "notes.txt"],
            vec!["tenants", T, "datasets", D, "parts"],
            vec!["elsewhere", "file"],
        ] {
            assert_eq!(classify(&unknown), Found::Unknown, "{unknown:?}");
        }
    }

    #[test]
    fn only_the_succeeded_attempt_of_its_own_tenant_or_an_unfinished_job_keeps_a_result() {
        let tenant = TenantId(uuid(T));
        let job = |state, attempt| JobAttempt {
            id: JobId(uuid(P)),
            tenant_id: tenant,
            state,
            attempt,
        };
        let succeeded = job(JobState::Succeeded, 2);
        assert!(result_wanted(Some(&succeeded), tenant, 2));
        assert!(!result_wanted(Some(&succeeded), tenant, 1));
        assert!(!result_wanted(Some(&succeeded), TenantId(uuid(D)), 2));
        assert!(!result_wanted(None, tenant, 2));
        for state in [JobState::Failed, JobState::Cancelled] {
            assert!(!result_wanted(Some(&job(state, 2)), tenant, 2));
        }
        for state in [JobState::Queued, JobState::Running] {
            assert!(result_wanted(Some(&job(state, 3)), tenant, 1));
        }
    }
}
