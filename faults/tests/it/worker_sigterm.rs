//! SIGTERM a worker mid-job (scale-in, deploy, `docker stop`): it stops
//! claiming, finishes the job within its grace period or releases it
//! without counting the attempt, and exits 0. The job is never lost.

use std::time::Duration;

use crunch_faults::{Env, SECONDS_QUERY, SLOW_QUERY, eventually, quick_query};
use crunch_queue::{Job, JobState};
use serde_json::json;
use uuid::Uuid;

/// Waits until `id` runs on `worker` and returns the job.
async fn running_on(env: &Env, id: Uuid, worker: &str) -> Job {
    eventually(
        &format!("job {id} to run on {worker}"),
        Duration::from_secs(60),
        || async {
            let job = env.job(id).await;
            (job.state == JobState::Running && job.worker_id.as_deref() == Some(worker))
                .then_some(job)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_finishes_its_job_within_the_grace_period_claims_nothing_more_and_exits_0()
{
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut old = env.worker(
        "old",
        &[("CRUNCH_SHUTDOWN_GRACE_SECONDS", "100".to_owned())],
    );

    // A job of a few seconds: SIGTERM arrives while it runs.
    let long = api.submit_ok(&dataset, SECONDS_QUERY, 3).await;
    let before = running_on(&env, long, "old").await;
    old.signal("TERM");
    // Submitted after the signal: the draining worker must leave it.
    let later = api.submit_ok(&dataset, &quick_query(7), 3).await;

    let status = old.wait_exit(Duration::from_secs(120)).await;
    assert!(status.success(), "the worker exited with {status}");
    let job = env.job(long).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 1, "{job:?}");
    assert_eq!(job.max_attempts, before.max_attempts, "{job:?}");
    assert_eq!(job.worker_id.as_deref(), Some("old"), "{job:?}");
    assert_eq!(api.rows(long).await, vec![json!({ "n": 0 })]);
    let waiting = env.job(later).await;
    assert_eq!(waiting.state, JobState::Queued, "{waiting:?}");
    assert_eq!(waiting.attempt, 0, "{waiting:?}");

    let _new = env.worker("new", &[]);
    let done = env.all_terminal(&[later], Duration::from_secs(60)).await;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(done[0].worker_id.as_deref(), Some("new"));
    assert_eq!(api.rows(later).await, vec![json!({ "n": 7 })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_releases_a_job_that_outlasts_the_grace_period_without_counting_the_attempt()
 {
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let grace = [("CRUNCH_SHUTDOWN_GRACE_SECONDS", "1".to_owned())];
    let mut first = env.worker("first", &grace);

    // A job of minutes: the grace period of a second cannot cover it.
    let slow = api.submit_ok(&dataset, SLOW_QUERY, 2).await;
    let before = running_on(&env, slow, "first").await;
    assert_eq!((before.attempt, before.max_attempts), (1, 2));
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "the worker exited with {status}");

    // Released: queued again, and the attempt it used is given back.
    let released = env.job(slow).await;
    assert_eq!(released.state, JobState::Queued, "{released:?}");
    assert_eq!(released.attempt, 1, "{released:?}");
    assert_eq!(released.max_attempts, 3, "{released:?}");

    // Another worker runs it again, as a new attempt; a third stop releases
    // it once more, and the job still has all its attempts.
    let mut second = env.worker("second", &grace);
    let rerun = running_on(&env, slow, "second").await;
    assert_eq!((rerun.attempt, rerun.max_attempts), (2, 3));
    second.signal("TERM");
    let status = second.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "the worker exited with {status}");
    let released = env.job(slow).await;
    assert_eq!(released.state, JobState::Queued, "{released:?}");
    assert_eq!((released.attempt, released.max_attempts), (2, 4));

    // Nothing is lost: a quick job behind it still runs, and the slow one
    // ends when its owner cancels it.
    let _third = env.worker("third", &grace);
    running_on(&env, slow, "third").await;
    let quick = api.submit_ok(&dataset, &quick_query(5), 3).await;
    let reply = api
        .post(&format!("/v1/jobs/{slow}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    let done = env
        .all_terminal(&[slow, quick], Duration::from_secs(60))
        .await;
    assert_eq!(done[0].state, JobState::Cancelled, "{:?}", done[0]);
    assert_eq!(done[1].state, JobState::Succeeded, "{:?}", done[1]);
    assert_eq!(api.rows(quick).await, vec![json!({ "n": 5 })]);
}
