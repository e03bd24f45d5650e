//! A poison job: one that takes its worker down on every attempt. It must
//! end `failed` after its attempts, saying so, while other jobs go on.

use std::time::Duration;

use crunch_faults::{Env, SLOW_QUERY, eventually, quick_query};
use crunch_queue::JobState;
use serde_json::json;

const ATTEMPTS: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_kills_its_worker_every_time_fails_after_its_attempts_and_others_succeed() {
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;

    let poison = api.submit_ok(&dataset, SLOW_QUERY, ATTEMPTS).await;
    let mut others = Vec::new();
    for k in 1..=6 {
        others.push((k, api.submit_ok(&dataset, &quick_query(k), 3).await));
    }

    let mut started = 0;
    let mut spawn_worker = || {
        started += 1;
        env.worker(&format!("w{started}"), &[])
    };
    let mut workers = vec![spawn_worker(), spawn_worker()];
    let mut kills = 0;
    let mut last_holder = String::new();
    loop {
        // Whenever the poison job runs, its worker dies.
        let job = eventually(
            "the poison job to run again or end",
            Duration::from_secs(60),
            || async {
                let job = env.job(poison).await;
                let holder_alive = job
                    .worker_id
                    .as_ref()
                    .is_some_and(|w| workers.iter().any(|p| p.name() == w));
                (job.state.is_terminal() || (job.state == JobState::Running && holder_alive))
                    .then_some(job)
            },
        )
        .await;
        if job.state.is_terminal() {
            break;
        }
        last_holder = job.worker_id.expect("a running job has a worker");
        let index = workers
            .iter()
            .position(|w| w.name() == last_holder)
            .expect("the holder is live");
        workers.swap_remove(index).crash().await;
        kills += 1;
        workers.push(spawn_worker());
    }

    let job = env.job(poison).await;
    assert_eq!(kills, ATTEMPTS, "{job:?}");
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(job.attempt, ATTEMPTS as i32, "{job:?}");
    let error = job.error.unwrap_or_default();
    assert!(error.contains("no attempts left"), "{error}");
    assert!(error.contains(&last_holder), "{error}");

    // The API says the same.
    let reply = api.get(&format!("/v1/jobs/{poison}")).await.unwrap();
    assert_eq!(reply.body["state"], "failed", "{}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no attempts left")),
        "{}",
        reply.body
    );

    let ids: Vec<_> = others.iter().map(|(_, id)| *id).collect();
    let jobs = env.all_terminal(&ids, Duration::from_secs(60)).await;
    for ((k, id), job) in others.iter().zip(&jobs) {
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        assert_eq!(api.rows(*id).await, vec![json!({ "n": k })]);
    }
}
