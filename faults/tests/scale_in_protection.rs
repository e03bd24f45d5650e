//! Scale-in protection over the real worker binary and a fake ECS agent on
//! 127.0.0.1 (`ECS_AGENT_URI`): the task is protected while its worker runs
//! a job and given up after, and while ECS refuses protection (a deployment
//! in progress) the worker claims nothing and the job waits for it.

#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crunch_faults::{Env, SECONDS_QUERY, eventually, quick_query};
use crunch_queue::JobState;
use crunch_worker::protection::PROTECTION_PATH;
use poem::{
    EndpointExt, Response, Route, Server, handler,
    listener::{Acceptor, Listener, TcpListener},
    put,
    web::{Data, Json},
};
use serde_json::{Value, json};

/// The task's protection as ECS keeps it, every call the worker made
/// (`true` to protect, `false` to release), and whether ECS refuses.
#[derive(Default)]
struct Task {
    protected: bool,
    calls: Vec<bool>,
    refuse: bool,
}

type Agent = Arc<Mutex<Task>>;

#[handler]
fn state(Json(body): Json<Value>, agent: Data<&Agent>) -> Response {
    let enabled = body["ProtectionEnabled"].as_bool().unwrap_or(false);
    let mut task = agent.lock().unwrap();
    task.calls.push(enabled);
    let answer = if enabled && task.refuse {
        json!({"failure": {"Arn": "arn:aws:ecs:task/crunch/w", "Reason": "DEPLOYMENT_BLOCKED", "Detail": null}})
    } else {
        task.protected = enabled;
        json!({"protection": {
            "ExpirationDate": if enabled { json!("2026-12-01T00:10:00Z") } else { Value::Null },
            "ProtectionEnabled": enabled,
            "TaskArn": "arn:aws:ecs:task/crunch/w"
        }})
    };
    Response::builder()
        .content_type("application/json")
        .body(answer.to_string())
}

/// Starts the fake agent; returns its state and the `ECS_AGENT_URI` for it.
async fn fake_agent() -> (Agent, String) {
    let agent = Agent::default();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at(format!("/api/w{PROTECTION_PATH}"), put(state))
        .data(agent.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (agent, format!("http://{addr}/api/w"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_is_protected_while_it_runs_a_job_and_claims_nothing_while_ecs_refuses() {
    let (agent, uri) = fake_agent().await;
    let env = Env::start().await;
    let server = env.server("server").await;
    let api = &server.api;
    let dataset = api.numbers().await;
    let mut worker = env.worker("w", &[("ECS_AGENT_URI", uri)]);

    let first = api.submit_ok(&dataset, SECONDS_QUERY, 1).await;
    let running = eventually("the job to run", Duration::from_secs(60), || async {
        let job = env.job(first).await;
        (job.state == JobState::Running).then_some(job)
    })
    .await;
    assert_eq!(running.worker_id.as_deref(), Some("w"));
    {
        let task = agent.lock().unwrap();
        assert!(
            task.protected,
            "running a job unprotected: {:?}",
            task.calls
        );
        assert_eq!(task.calls, vec![true], "asked once, before the claim");
    }
    let done = &env.all_terminal(&[first], Duration::from_secs(120)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    eventually("protection given up", Duration::from_secs(30), || async {
        (!agent.lock().unwrap().protected).then_some(())
    })
    .await;
    assert_eq!(agent.lock().unwrap().calls, vec![true, false]);

    // A deployment is in progress: ECS refuses, and the job waits.
    agent.lock().unwrap().refuse = true;
    let second = api.submit_ok(&dataset, &quick_query(5), 1).await;
    eventually(
        "two refused protect calls",
        Duration::from_secs(60),
        || async {
            let task = agent.lock().unwrap();
            (task.calls.iter().skip(2).filter(|c| **c).count() >= 2).then_some(())
        },
    )
    .await;
    let waiting = env.job(second).await;
    assert_eq!(
        (waiting.state, waiting.attempt),
        (JobState::Queued, 0),
        "claimed without protection: {waiting:?}"
    );
    assert!(!agent.lock().unwrap().protected);

    // The deployment is over: the next protect is granted and the job runs.
    agent.lock().unwrap().refuse = false;
    let done = &env.all_terminal(&[second], Duration::from_secs(60)).await[0];
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(api.rows(second).await, vec![json!({ "n": 5 })]);
    eventually("protection given up", Duration::from_secs(30), || async {
        (!agent.lock().unwrap().protected).then_some(())
    })
    .await;
    assert!(worker.exited().is_none(), "the worker died");
}
