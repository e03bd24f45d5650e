//! A handler that panics: its job fails with the panic's message, and the
//! same worker process goes on serving.
//!
//! The panics come from the worker binary's failpoints (the `failpoints`
//! feature, on in this suite's build): one in the job handler, which the
//! queue's apalis service catches, and one inside the engine's run on the
//! engine's own runtime, where a panicking DataFusion operator would
//! surface. Each is armed with a marker that only its job's query carries.

use std::time::Duration;

use crunch_faults::{Env, quick_query};
use crunch_queue::JobState;
use serde_json::json;

const ATTEMPTS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_with_the_panic_message_and_the_worker_keeps_serving() {
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut worker = env.worker(
        "w",
        &[
            ("CRUNCH_FAILPOINT_HANDLER_PANIC", "handler-boom".to_owned()),
            ("CRUNCH_FAILPOINT_ENGINE_PANIC", "engine-boom".to_owned()),
        ],
    );
    let pid = worker.pid();

    let in_handler = api
        .submit_ok(&dataset, "SELECT 'handler-boom' AS x", ATTEMPTS)
        .await;
    let in_engine = api
        .submit_ok(&dataset, "SELECT 'engine-boom' AS x", ATTEMPTS)
        .await;
    let fine = api.submit_ok(&dataset, &quick_query(7), 1).await;
    let jobs = env
        .all_terminal(&[in_handler, in_engine, fine], Duration::from_secs(120))
        .await;

    // A panic is retried like any unexpected failure, and the job ends
    // failed after its attempts with the panic's own message.
    for (id, job, says) in [
        (
            in_handler,
            &jobs[0],
            ["handler panicked", "CRUNCH_FAILPOINT_HANDLER_PANIC"],
        ),
        (
            in_engine,
            &jobs[1],
            ["panicked", "CRUNCH_FAILPOINT_ENGINE_PANIC"],
        ),
    ] {
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        assert_eq!(job.attempt, ATTEMPTS as i32, "{job:?}");
        assert_eq!(job.worker_id.as_deref(), Some("w"));
        let error = job.error.as_deref().unwrap_or_default();
        for needle in says {
            assert!(error.contains(needle), "{needle:?} not in {error:?}");
        }
        let reply = api.get(&format!("/v1/jobs/{id}")).await.unwrap();
        assert_eq!(reply.body["state"], "failed", "{}", reply.body);
        assert_eq!(reply.body["error"].as_str(), Some(error), "{}", reply.body);
    }

    // The same process served the job beside them and serves the next one.
    assert_eq!(jobs[2].state, JobState::Succeeded, "{:?}", jobs[2]);
    assert_eq!(api.rows(fine).await, vec![json!({ "n": 7 })]);
    let next = api.submit_ok(&dataset, &quick_query(42), 1).await;
    let done = &env.all_terminal(&[next], Duration::from_secs(60)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.worker_id.as_deref(), Some("w"));
    assert_eq!(api.rows(next).await, vec![json!({ "n": 42 })]);
    assert!(worker.exited().is_none(), "the worker died");
    assert_eq!(worker.pid(), pid);
}
