//! A cancel ends the work, measured on a real worker process: three heavy
//! queries (one of them submitted by a client that stopped waiting) are
//! cancelled while they burn both engine threads, the worker's CPU use
//! falls to idle within seconds, the next job runs at once, and a SIGTERM
//! right after drains in seconds rather than the whole grace period.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crunch_faults::{Env, SLOW_QUERY, eventually, quick_query, sql_job};
use crunch_queue::JobState;
use serde_json::json;
use uuid::Uuid;

/// CPU time the process `pid` has used so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading its stat");
    // utime and stime are the 12th and 13th fields after the name, which
    // is parenthesised and may hold spaces.
    let after = &stat[stat.rfind(')').expect("a parenthesised name") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The share of a core `pid` used over `window`. The window is real time:
/// what it measures is another process's CPU time, which no paused clock
/// in this test could stand in for.
async fn cpu_share(pid: u32, window: Duration) -> f64 {
    let before = cpu_ticks(pid);
    tokio::time::sleep(window).await;
    (cpu_ticks(pid) - before) as f64 / 100.0 / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_heavy_queries_stop_burning_cpu_and_the_worker_serves_and_drains_at_once() {
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut worker = env.worker(
        "worker",
        &[
            ("CRUNCH_WORKER_SLOTS", "3".to_owned()),
            ("CRUNCH_ENGINE_THREADS", "2".to_owned()),
            ("CRUNCH_SHUTDOWN_GRACE_SECONDS", "100".to_owned()),
        ],
    );

    // Two submitted plainly, one by a client that gives up waiting for it
    // after a second (`wait=60`): the job must not depend on the client.
    let mut ids: Vec<Uuid> = Vec::new();
    for _ in 0..2 {
        ids.push(api.submit_ok(&dataset, SLOW_QUERY, 1).await);
    }
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let gone = impatient
        .post(format!("{}/v1/jobs?wait=60", api.base))
        .bearer_auth(&env.key)
        .json(&sql_job(&dataset, SLOW_QUERY, 1))
        .send()
        .await;
    assert!(
        gone.is_err_and(|e| e.is_timeout()),
        "the client should have given up"
    );
    let listed = api.get("/v1/jobs?state=queued&limit=10").await.unwrap();
    let running = api.get("/v1/jobs?state=running&limit=10").await.unwrap();
    for page in [&listed, &running] {
        for item in page.body["items"].as_array().unwrap() {
            let id: Uuid = item["id"].as_str().unwrap().parse().unwrap();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    assert_eq!(ids.len(), 3, "{listed:?} {running:?}");

    eventually("all three to run", Duration::from_secs(60), || async {
        (env.running().await.len() == 3).then_some(())
    })
    .await;
    // The measurement sees the work: the engine threads busy (on a loaded
    // machine they may not get both cores, so half of one will do).
    let mut busy = 0.0;
    for _ in 0..30 {
        busy = cpu_share(worker.pid(), Duration::from_secs(1)).await;
        if busy > 0.5 {
            break;
        }
    }
    assert!(busy > 0.5, "the heavy queries used only {busy:.2} cores");

    for id in &ids {
        let reply = api
            .post(&format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await
            .unwrap();
        assert!(matches!(reply.status, 200 | 202), "cancel {id}: {reply:?}");
    }
    let cancelled = env.all_terminal(&ids, Duration::from_secs(30)).await;
    for job in &cancelled {
        assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    }
    // Within the 5 s the guarantee gives, the worker is idle again (its
    // heartbeats and polls cost a few ticks a second).
    let mut idle = f64::MAX;
    for _ in 0..10 {
        idle = cpu_share(worker.pid(), Duration::from_millis(500)).await;
        if idle < 0.1 {
            break;
        }
    }
    assert!(
        idle < 0.1,
        "the worker still used {idle:.2} cores 5 s after the cancels"
    );

    // The next job gets the engine at once.
    let next = api.submit_ok(&dataset, &quick_query(7), 1).await;
    let done = env.all_terminal(&[next], Duration::from_secs(60)).await;
    assert_eq!(done[0].state, JobState::Succeeded, "{:?}", done[0]);
    assert_eq!(api.rows(next).await, vec![json!({ "n": 7 })]);

    // Nothing is left to finish: a SIGTERM drains in seconds, not the 100 s
    // grace.
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "the worker exited with {status}");
}
