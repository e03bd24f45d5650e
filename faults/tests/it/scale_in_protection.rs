//! Scale-in protection over the real worker binary and a fake ECS agent on
//! 127.0.0.1 (`ECS_AGENT_URI`): the task is protected while its worker runs
//! a job and given up after, and while ECS refuses protection (a deployment
//! in progress) the worker claims nothing and the job waits for it.

use std::time::Duration;

use crunch_faults::{Env, SECONDS_QUERY, eventually, quick_query};
use crunch_queue::JobState;
use crunch_worker::fake_agent::FakeAgent;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_protected_while_it_runs_a_job_and_claims_nothing_while_ecs_refuses() {
    let env = Env::start().await;
    let agent = FakeAgent::start().await.expect("starting the fake agent");
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut worker = env.worker("w", &[("ECS_AGENT_URI", agent.uri().to_owned())]);

    let first = api.submit_ok(&dataset, SECONDS_QUERY, 1).await;
    let running = eventually("the job to run", Duration::from_secs(60), || async {
        let job = env.job(first).await;
        (job.state == JobState::Running).then_some(job)
    })
    .await;
    assert_eq!(running.worker_id.as_deref(), Some("w"));
    assert!(
        agent.protected(),
        "running a job unprotected: {:?}",
        agent.calls()
    );
    assert_eq!(agent.calls(), vec![true], "asked once, before the claim");
    let done = &env.all_terminal(&[first], Duration::from_secs(120)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    eventually("protection given up", Duration::from_secs(30), || async {
        (!agent.protected()).then_some(())
    })
    .await;
    assert_eq!(agent.calls(), vec![true, false]);

    // A deployment is in progress: ECS refuses, and the job waits.
    agent.refuse(true);
    let second = api.submit_ok(&dataset, &quick_query(5), 1).await;
    eventually(
        "two refused protect calls",
        Duration::from_secs(60),
        || async {
            let refused = agent.calls().iter().skip(2).filter(|c| **c).count();
            (refused >= 2).then_some(())
        },
    )
    .await;
    let waiting = env.job(second).await;
    assert_eq!(
        (waiting.state, waiting.attempt),
        (JobState::Queued, 0),
        "claimed without protection: {waiting:?}"
    );
    assert!(!agent.protected());

    // The deployment is over: the next protect is granted and the job runs.
    agent.refuse(false);
    let done = &env.all_terminal(&[second], Duration::from_secs(60)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(api.rows(second).await, vec![json!({ "n": 5 })]);
    eventually("protection given up", Duration::from_secs(30), || async {
        (!agent.protected()).then_some(())
    })
    .await;
    assert!(worker.exited().is_none(), "the worker died");
}
