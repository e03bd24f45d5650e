//! SIGKILL a worker mid-job, again and again (20 times by default; more
//! with `CRUNCH_FAULT_KILLS=200 cargo test -p crunch-faults --test it
//! worker_crash`). Every job ends exactly once, with the right result, and
//! none is left queued or running.

use std::{collections::HashMap, time::Duration};

use crunch_faults::{
    Env, NUMBERS, Proc, SLOW_QUERY, eventually, kills, pairs_query, quick_query, result_attempt,
};
use crunch_queue::JobState;
use serde_json::json;
use uuid::Uuid;

/// Workers running at any time.
const WORKERS: usize = 3;

/// Attempts each slow job gets; it is killed on every one.
const SLOW_ATTEMPTS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_ends_exactly_once_when_workers_are_killed_mid_job_again_and_again() {
    let target = kills(20);
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;

    let mut started = 0;
    let mut spawn_worker = || {
        started += 1;
        env.worker(&format!("w{started}"), &[])
    };
    let mut workers: Vec<Proc> = (0..WORKERS).map(|_| spawn_worker()).collect();
    // Workers name their database sessions, which tells when a dead one's
    // last statement is over.
    eventually("w1 to connect", Duration::from_secs(60), || async {
        (env.sessions("w1").await > 0).then_some(())
    })
    .await;

    // What each job must end with: `Some(n)`, succeeded with n rows counted;
    // `None`, a slow job whose worker is killed on every attempt: failed.
    let mut expected: HashMap<Uuid, Option<i64>> = HashMap::new();
    for _ in 0..2 {
        let id = api.submit_ok(&dataset, SLOW_QUERY, SLOW_ATTEMPTS).await;
        expected.insert(id, None);
    }
    // Attempts that a kill interrupted, per job.
    let mut killed_attempts: HashMap<Uuid, i32> = HashMap::new();
    let (mut kills_done, mut mid_job, mut max_held) = (0, 0, 0);
    let mut k = 0;
    loop {
        let mut slow_left = false;
        for (id, _) in expected.iter().filter(|(_, e)| e.is_none()) {
            slow_left |= !env.job(*id).await.state.is_terminal();
        }
        if kills_done >= target && !slow_left {
            break;
        }

        // Work for the workers: jobs of milliseconds and of a few hundred.
        for _ in 0..2 {
            k = (k + 1) % (NUMBERS - 1);
            let id = api.submit_ok(&dataset, &quick_query(k), 20).await;
            expected.insert(id, Some(i64::from(k)));
            let id = api.submit_ok(&dataset, &pairs_query(k), 20).await;
            expected.insert(id, Some(i64::from(k) + 1));
        }

        // The victim: the live worker running a slow job, else any live
        // worker running a job.
        let live: Vec<String> = workers.iter().map(|w| w.name().to_owned()).collect();
        let victim = eventually(
            "a live worker to run a job",
            Duration::from_secs(60),
            || {
                let (env, live, expected) = (&env, &live, &expected);
                async move {
                    let running: Vec<_> = env
                        .running()
                        .await
                        .into_iter()
                        .filter(|j| j.worker_id.as_ref().is_some_and(|w| live.contains(w)))
                        .collect();
                    let slow = running
                        .iter()
                        .find(|j| expected.get(&j.id.0).is_some_and(Option::is_none));
                    slow.or(running.first()).and_then(|j| j.worker_id.clone())
                }
            },
        )
        .await;
        let index = workers
            .iter()
            .position(|w| w.name() == victim)
            .expect("the victim is live");
        let mut dead = workers.swap_remove(index);
        dead.crash().await;
        kills_done += 1;
        // What it held: once its sessions are gone (a claim it sent may
        // commit after it died), its jobs stay running under its name until
        // their lease expires and a rescuer requeues them.
        env.disconnected(&victim).await;
        let held: Vec<Uuid> = env
            .running()
            .await
            .into_iter()
            .filter(|j| j.worker_id.as_deref() == Some(victim.as_str()))
            .map(|j| j.id.0)
            .collect();
        // Usually one job; two when it had just finished one (its slot is
        // free, but the outcome not yet written) and claimed the next.
        max_held = max_held.max(held.len());
        if !held.is_empty() {
            mid_job += 1;
        }
        for id in held {
            *killed_attempts.entry(id).or_default() += 1;
        }
        workers.push(spawn_worker());
    }
    eprintln!(
        "{kills_done} workers killed, {mid_job} of them mid-job (holding up to {max_held} jobs); {} jobs",
        expected.len()
    );

    let ids: Vec<Uuid> = expected.keys().copied().collect();
    let jobs = env.all_terminal(&ids, Duration::from_secs(120)).await;
    for job in &jobs {
        let id = job.id.0;
        let killed = killed_attempts.get(&id).copied().unwrap_or(0);
        match expected[&id] {
            Some(n) => {
                assert_eq!(job.state, JobState::Succeeded, "{job:?}");
                assert_eq!(api.rows(id).await, vec![json!({ "n": n })], "job {id}");
                // The result recorded is the last attempt's, the one that succeeded.
                assert_eq!(result_attempt(job), Some(job.attempt), "{job:?}");
                assert!(
                    job.attempt <= 1 + killed,
                    "job {id} took {} attempts but only {killed} were killed: {job:?}",
                    job.attempt
                );
            }
            None => {
                assert_eq!(job.state, JobState::Failed, "{job:?}");
                assert_eq!(job.attempt, SLOW_ATTEMPTS as i32, "{job:?}");
                assert_eq!(killed, SLOW_ATTEMPTS as i32, "{job:?}");
                let error = job.error.as_deref().unwrap_or_default();
                assert!(error.contains("no attempts left"), "{error}");
            }
        }
        assert!(job.finished_at.is_some(), "{job:?}");
    }
    // Nothing else exists, and nothing is left queued or running.
    let all = env.all_jobs().await;
    assert_eq!(all.len(), expected.len());
    assert!(all.iter().all(|j| j.state.is_terminal()));
    assert!(kills_done >= target);
    assert!(
        mid_job * 2 >= kills_done,
        "only {mid_job} of {kills_done} kills hit a job"
    );
}
