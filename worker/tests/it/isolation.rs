//! A job sees only its own tenant's datasets: the handler resolves every
//! input through the store under the job's tenant, so naming another
//! tenant's dataset id fails the job exactly as a dataset that does not
//! exist, and nothing of the other tenant is read or written.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use crunch_db::testing::test_db;
use crunch_engine::{
    Engine, EngineConfig,
    analysis::{Analysis, AnalysisJob, Input},
};
use crunch_queue::{JobId, JobState, JobWaiters, NewJob, Queue, TenantId, WorkerConfig};
use crunch_store::{DatasetId, Format, IngestOptions, Store};
use crunch_worker::{
    ANALYSIS_KIND, AnalysisKind,
    handler::{Deps, WorkerOptions, run_worker},
    registry,
};
use uuid::Uuid;

fn csv(
    text: &'static str,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    futures_util::stream::iter([Ok(Bytes::from_static(text.as_bytes()))])
}

fn sql_job(tenant: TenantId, inputs: &[(&str, DatasetId)], query: &str) -> NewJob {
    let job = AnalysisJob {
        inputs: inputs
            .iter()
            .map(|(table, dataset)| Input {
                table: (*table).to_owned(),
                dataset: dataset.0,
            })
            .collect(),
        analysis: Analysis::Sql {
            query: query.to_owned(),
        },
    };
    NewJob::of::<AnalysisKind>(tenant, &job).unwrap()
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_naming_another_tenants_dataset_fails_as_not_found() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        db.pool().clone(),
        &format!("file://{}", dir.path().display()),
    )
    .unwrap();
    let queue = Queue::new(db.pool().clone(), registry());
    let a = TenantId::DEFAULT;
    let b = TenantId(Uuid::now_v7());
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'b')")
        .bind(b.0)
        .execute(db.pool())
        .await
        .unwrap();
    let csv_options = IngestOptions::new(Format::Csv);
    let (theirs, _) = store
        .create_dataset(a, "a's secret", &csv_options, csv("n\n1\n2\n"))
        .await
        .unwrap();
    let (mine, _) = store
        .create_dataset(b, "b's own", &csv_options, csv("n\n10\n"))
        .await
        .unwrap();

    let only_theirs = sql_job(b, &[("t", theirs.id)], "SELECT sum(n) AS total FROM t");
    // Its own dataset beside does not let the other in.
    let mixed = sql_job(
        b,
        &[("mine", mine.id), ("t", theirs.id)],
        "SELECT sum(n) AS total FROM mine",
    );
    // The owner's job over the same dataset runs: the setup is sound.
    let owners = sql_job(a, &[("t", theirs.id)], "SELECT sum(n) AS total FROM t");
    let ids: Vec<JobId> = [&only_theirs, &mixed, &owners]
        .iter()
        .map(|job| job.id)
        .collect();
    queue
        .enqueue_batch(db.pool(), vec![only_theirs, mixed, owners])
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = Engine::new(EngineConfig {
        threads: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    let worker = tokio::spawn(run_worker(
        queue.clone(),
        Deps {
            store: store.clone(),
            engine,
        },
        WorkerOptions {
            queue: WorkerConfig::new("isolation-worker")
                .kinds([ANALYSIS_KIND])
                .slots(3),
            grace: Duration::from_secs(5),
        },
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let waiters = JobWaiters::start(queue.clone());
    let mut finished = Vec::new();
    for (id, tenant) in ids.iter().zip([b, b, a]) {
        // A bound on a failure only: the wait returns when the job ends.
        let job = waiters
            .wait(tenant, *id, Duration::from_secs(120))
            .await
            .unwrap()
            .unwrap();
        assert!(job.state.is_terminal(), "{job:?}");
        finished.push(job);
    }
    stop.send(true).unwrap();
    worker.await.unwrap().unwrap();

    for job in &finished[..2] {
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        // Fatal on the first attempt, as for a dataset that does not exist.
        assert_eq!(job.attempt, 1);
        let error = job.error.as_deref().unwrap();
        assert!(
            error.contains(&format!(
                "dataset {} (input \"t\") does not exist",
                theirs.id
            )),
            "{error}"
        );
        assert!(job.result.is_none());
    }
    assert_eq!(finished[2].state, JobState::Succeeded, "{:?}", finished[2]);

    // Nothing was written under b's prefix but its own dataset's part.
    let written_for_b: Vec<String> = files_under(dir.path())
        .into_iter()
        .filter(|path| path.starts_with(&format!("tenants/{b}/")))
        .collect();
    assert_eq!(written_for_b.len(), 1, "{written_for_b:?}");
    assert!(written_for_b[0].contains(&format!("/datasets/{}/parts/", mine.id)));
    // a's dataset is untouched.
    let (dataset, parts) = store.get(a, theirs.id).await.unwrap().unwrap();
    assert_eq!((dataset.rows, parts.len()), (2, 1));
}
