//! SIGTERM the server under load: every request it was serving gets its
//! complete answer, and the process exits 0.

use std::time::Duration;

use crunch_faults::{Env, Reply, SLOW_QUERY, eventually, sql_job};
use crunch_queue::JobState;
use futures_util::future::join_all;

/// Requests of each kind in flight when the signal arrives.
const IN_FLIGHT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_completes_every_request_in_flight_and_exits_0() {
    let env = Env::start().await;
    let mut server = env.server("server").await;
    let api = server.api.clone();
    let dataset = api.numbers().await;

    // No worker runs, so jobs stay queued and every request below waits
    // its full 5 seconds: long-polls on existing jobs, and submits that
    // wait for their job to finish.
    let mut queued = Vec::new();
    for _ in 0..IN_FLIGHT {
        queued.push(api.submit_ok(&dataset, SLOW_QUERY, 1).await);
    }
    let mut requests: Vec<_> = queued
        .iter()
        .map(|id| {
            let api = api.clone();
            let path = format!("/v1/jobs/{id}?wait=5");
            tokio::spawn(async move { api.get(&path).await })
        })
        .collect();
    requests.extend((0..IN_FLIGHT).map(|_| {
        let api = api.clone();
        let body = sql_job(&dataset, SLOW_QUERY, 1);
        tokio::spawn(async move { api.post("/v1/jobs?wait=5", &body).await })
    }));

    // The server has every one of them: the submits' jobs exist (each
    // submit parks in its wait right after inserting), and the long-polls
    // were sent before the submits.
    eventually(
        "the submits to reach the server",
        Duration::from_secs(60),
        || async { (env.all_jobs().await.len() == 2 * IN_FLIGHT).then_some(()) },
    )
    .await;
    server.proc.signal("TERM");

    let replies: Vec<Reply> = join_all(requests)
        .await
        .into_iter()
        .map(|joined| {
            joined
                .expect("a request task")
                .expect("a complete response")
        })
        .collect();
    for (i, reply) in replies.iter().enumerate() {
        assert!(reply.ok(), "request {i}: {} {}", reply.status, reply.body);
        assert_eq!(reply.body["state"], "queued", "{}", reply.body);
    }
    let status = server.proc.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "the server exited with {status}");

    // The acknowledged submits are durable.
    for reply in &replies[IN_FLIGHT..] {
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(env.job(reply.id()).await.state, JobState::Queued);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_answers_long_polls_at_once_with_the_job_as_it_is() {
    let env = Env::start().await;
    let mut server = env.server("server").await;
    let api = server.api.clone();
    let dataset = api.numbers().await;
    let queued = api.submit_ok(&dataset, SLOW_QUERY, 1).await;

    // Long-polls of a minute, longer than the server's 30 s shutdown
    // timeout: without being woken they would hold the shutdown for all of
    // it and then lose their connections.
    let polls: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let api = api.clone();
            let path = format!("/v1/jobs/{queued}?wait=60");
            tokio::spawn(async move { api.get(&path).await })
        })
        .collect();
    // On loopback they arrive at once. One that came after the signal
    // would find the listener closed and fail the test below, so the pause
    // can only make the test fail, never pass wrongly. It is real time: it
    // waits for another process, the server, to read the requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.proc.signal("TERM");
    // Far less than the shutdown timeout: the polls were answered at once.
    let status = server.proc.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "the server exited with {status}");
    for poll in join_all(polls).await {
        let reply = poll.expect("a request task").expect("a complete response");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["state"], "queued", "{}", reply.body);
    }
}
