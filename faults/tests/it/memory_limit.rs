//! A job over its memory limit fails with a clear error (or spills and
//! succeeds); either way the worker process survives and runs the next job.

use std::time::Duration;

use crunch_faults::{Env, quick_query};
use crunch_queue::JobState;
use serde_json::json;

/// Collects 9 million values into one array: about 72 MB that an
/// aggregation without groups cannot spill.
const GREEDY_QUERY: &str = "SELECT array_agg(a.x + b.x) AS v FROM t a, t b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_its_memory_limit_fails_clearly_and_the_worker_runs_the_next_job() {
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut worker = env.worker(
        "small",
        &[("CRUNCH_MEMORY_LIMIT_BYTES", "8000000".to_owned())],
    );
    let pid = worker.pid();

    let greedy = api.submit_ok(&dataset, GREEDY_QUERY, 2).await;
    let job = &env.all_terminal(&[greedy], Duration::from_secs(120)).await[0];
    match job.state {
        JobState::Failed => {
            // Out of memory is retried (the pool is shared, another time
            // may fit), so it fails after its attempts, saying why.
            assert_eq!(job.attempt, 2, "{job:?}");
            let error = job.error.as_deref().unwrap_or_default();
            assert!(error.contains("resources exhausted"), "{error}");
            assert!(error.contains("memory"), "{error}");
            let reply = api.get(&format!("/v1/jobs/{greedy}")).await.unwrap();
            assert!(
                reply.body["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("resources exhausted")),
                "{}",
                reply.body
            );
        }
        JobState::Succeeded => {
            assert_eq!(api.rows(greedy).await.len(), 1);
        }
        other => panic!("the greedy job ended {other}: {job:?}"),
    }
    assert_eq!(job.worker_id.as_deref(), Some("small"));

    // The same process is alive and serving.
    assert!(worker.exited().is_none(), "the worker died");
    let next = api.submit_ok(&dataset, &quick_query(42), 1).await;
    let done = &env.all_terminal(&[next], Duration::from_secs(60)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.worker_id.as_deref(), Some("small"));
    assert_eq!(api.rows(next).await, vec![json!({ "n": 42 })]);
    assert!(worker.exited().is_none(), "the worker died");
    assert_eq!(worker.pid(), pid);
}
