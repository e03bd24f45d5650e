//! The object store sweep: it deletes what nothing refers to (orphaned
//! parts, results of jobs gone or ended without them) and keeps everything
//! read or still being written.

#![allow(clippy::unwrap_used)]

use std::{path::PathBuf, time::Duration};

use crate::common::*;
use crunch_queue::{JobId, JobKind, JobState, NewJob, Outcome, Queue, Registry, TenantId};
use crunch_store::{Format, Sweep, SweepReport};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

const T: TenantId = TenantId::DEFAULT;

#[derive(Debug, Serialize, Deserialize)]
struct Analysis {}

impl JobKind for Analysis {
    const KIND: &'static str = "analysis";
    type Payload = Analysis;
}

const LEASE: Duration = Duration::from_secs(60);

/// A job moved through `outcomes`, one attempt each, the last attempt left
/// running when `outcomes` ends with `None`.
async fn job_through(queue: &Queue, outcomes: &[Option<Outcome>]) -> JobId {
    let job = queue
        .enqueue(
            queue.pool(),
            NewJob::of::<Analysis>(T, &Analysis {})
                .unwrap()
                .max_attempts(5),
        )
        .await
        .unwrap()
        .job
        .id;
    for outcome in outcomes {
        let claimed = queue
            .claim("w", &["analysis".to_owned()], 1, LEASE)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].lease.id, job);
        if let Some(outcome) = outcome {
            queue
                .finish(claimed[0].lease, outcome.clone())
                .await
                .unwrap()
                .unwrap();
        }
    }
    job
}

fn retry() -> Option<Outcome> {
    Some(Outcome::Failed {
        error: "try again".into(),
        retry_in: Some(Duration::ZERO),
    })
}

/// Writes an object straight into the store's directory, as a process that
/// died before recording it would have left it.
fn leave(root: &std::path::Path, key: &str) -> PathBuf {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"PAR1 not really").unwrap();
    path
}

#[tokio::test]
async fn the_sweep_deletes_what_nothing_refers_to_and_keeps_the_rest() {
    let f = fixture().await;
    let queue = Queue::new(f.db.pool().clone(), Registry::new().register::<Analysis>());
    let root = f.dir.path();
    let result =
        |job: JobId, attempt: i32| format!("tenants/{T}/results/{job}/attempt-{attempt}.parquet");

    // A dataset and its part: read by jobs, kept.
    let (dataset, _) = f
        .store
        .create_dataset(T, "d", &options(Format::Csv), body("n\n1\n2\n"))
        .await
        .unwrap();
    let committed = f.files();
    assert_eq!(committed.len(), 1);
    // A part uploaded by a process that died before its row committed.
    let orphan_part = leave(
        root,
        &format!(
            "tenants/{T}/datasets/{}/parts/{}.parquet",
            dataset.id,
            Uuid::now_v7()
        ),
    );

    // Succeeded on its second attempt: that result is read, the first
    // attempt's file (a crash mid-write) is not.
    let succeeded = job_through(
        &queue,
        &[retry(), Some(Outcome::Succeeded(json!({"rows": 1})))],
    )
    .await;
    let kept_result = leave(root, &result(succeeded, 2));
    let first_attempt = leave(root, &result(succeeded, 1));
    // The same job and attempt under another tenant's prefix: not its.
    let other_tenant = leave(
        root,
        &format!(
            "tenants/{}/results/{succeeded}/attempt-2.parquet",
            Uuid::now_v7()
        ),
    );
    // Failed and cancelled jobs keep no result.
    let failed = job_through(
        &queue,
        &[Some(Outcome::Failed {
            error: "bad query".into(),
            retry_in: None,
        })],
    )
    .await;
    let failed_file = leave(root, &result(failed, 1));
    let cancelled = job_through(&queue, &[Some(Outcome::Cancelled)]).await;
    let cancelled_file = leave(root, &result(cancelled, 1));
    // A job pruned by retention: no row at all.
    let pruned_file = leave(root, &result(JobId(Uuid::now_v7()), 1));
    // A job still running on its second attempt keeps every file: the
    // first attempt's leftover goes once the job has ended.
    let running = job_through(&queue, &[retry(), None]).await;
    let running_files = [
        leave(root, &result(running, 1)),
        leave(root, &result(running, 2)),
    ];
    // Something the layout does not name: left alone.
    let unknown = leave(root, &format!("tenants/{T}/notes.txt"));

    for (job, state) in [
        (succeeded, JobState::Succeeded),
        (failed, JobState::Failed),
        (cancelled, JobState::Cancelled),
        (running, JobState::Running),
    ] {
        assert_eq!(queue.get(T, job).await.unwrap().unwrap().state, state);
    }
    let everything = f.files();
    assert_eq!(everything.len(), 11);

    // Within the grace period nothing is touched.
    let young = f.store.sweep(&queue, &Sweep::default()).await.unwrap();
    assert_eq!(
        young,
        SweepReport {
            listed: 11,
            young: 11,
            ..SweepReport::default()
        }
    );
    assert_eq!(f.files(), everything);

    // Past it, only what nothing refers to goes; small batches change
    // nothing but the number of lookups.
    let sweep = Sweep {
        grace: Duration::ZERO,
        batch: 2,
        ..Sweep::default()
    };
    let report = f.store.sweep(&queue, &sweep).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            listed: 11,
            parts_deleted: 1,
            results_deleted: 5,
            unknown: 1,
            ..SweepReport::default()
        }
    );
    for gone in [
        &orphan_part,
        &first_attempt,
        &other_tenant,
        &failed_file,
        &cancelled_file,
        &pruned_file,
    ] {
        assert!(!gone.exists(), "{gone:?} was kept");
    }
    // The directories of jobs left with no file went with their files; a
    // job's directory that still holds its result stays.
    for job in [failed, cancelled] {
        let dir = root.join(format!("tenants/{T}/results/{job}"));
        assert!(!dir.exists(), "{dir:?} was left empty");
    }
    assert!(first_attempt.parent().unwrap().exists());
    assert!(root.exists());
    let mut kept = vec![committed[0].clone(), kept_result, unknown];
    kept.extend(running_files.iter().cloned());
    kept.sort();
    let mut left = f.files();
    left.sort();
    assert_eq!(left, kept);
    // The dataset still reads whole.
    assert_eq!(read_dataset(&f.store, T, dataset.id).await.num_rows(), 2);

    // Sweeping again finds nothing more to do.
    let again = f.store.sweep(&queue, &sweep).await.unwrap();
    assert_eq!(
        (again.listed, again.parts_deleted, again.results_deleted),
        (5, 0, 0)
    );
}
