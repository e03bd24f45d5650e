//! The scale-in protection client against a fake ECS agent on 127.0.0.1:
//! what it sends, when it calls, and how it reads successes, failures and
//! errors.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use crunch_queue::Protection;
use crunch_worker::protection::{AgentProtection, PROTECTION_PATH, ProtectionConfig};
use poem::{
    EndpointExt, Response, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    put,
    web::{Data, Json},
};
use serde_json::{Value, json};

/// What the fake agent received, and what it answers next.
#[derive(Clone, Default)]
struct Agent {
    requests: Arc<Mutex<Vec<Value>>>,
    answers: Arc<Mutex<VecDeque<(StatusCode, String)>>>,
}

impl Agent {
    fn answer(&self, status: StatusCode, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, body.to_string()));
    }

    fn answer_raw(&self, status: StatusCode, body: &str) {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, body.to_owned()));
    }

    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

#[handler]
fn state(Json(body): Json<Value>, agent: Data<&Agent>) -> Response {
    agent.requests.lock().unwrap().push(body);
    let (status, body) = agent.answers.lock().unwrap().pop_front().unwrap_or((
        StatusCode::INTERNAL_SERVER_ERROR,
        "no answer planned".into(),
    ));
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body)
}

/// Starts the fake agent; returns it and its base URI (as `ECS_AGENT_URI`).
async fn fake_agent() -> (Agent, String) {
    let agent = Agent::default();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    // ECS_AGENT_URI names the task under the agent's API, for example
    // http://169.254.170.2/api/<task id>; the client appends its path.
    let app = Route::new()
        .at(format!("/api/abc-123{PROTECTION_PATH}"), put(state))
        .data(agent.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (agent, format!("http://{addr}/api/abc-123"))
}

fn protected(enabled: bool) -> Value {
    json!({"protection": {
        "ExpirationDate": if enabled { json!("2026-11-30T23:00:00Z") } else { Value::Null },
        "ProtectionEnabled": enabled,
        "TaskArn": "arn:aws:ecs:eu-west-1:111122223333:task/crunch/abc"
    }})
}

fn config() -> ProtectionConfig {
    ProtectionConfig {
        expires_in: Duration::from_secs(10 * 60),
        renew_within: Duration::from_secs(5 * 60),
        retry_after: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn every_job_asks_renewals_wait_for_the_end_and_release_once() {
    let (agent, uri) = fake_agent().await;
    let client = AgentProtection::new(&uri, config()).unwrap();
    for _ in 0..2 {
        agent.answer(StatusCode::OK, protected(true));
    }
    agent.answer(StatusCode::OK, protected(false));

    client.protect().await.unwrap();
    // Fresh protection: a renewal calls nobody.
    client.renew().await.unwrap();
    // The next job asks again, so that a deployment can refuse it.
    client.protect().await.unwrap();
    client.release().await.unwrap();
    // Already released: nothing to give up or renew.
    client.release().await.unwrap();
    client.renew().await.unwrap();

    assert_eq!(
        agent.requests(),
        vec![
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 10}),
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 10}),
            json!({"ProtectionEnabled": false}),
        ]
    );
}

#[tokio::test]
async fn protection_near_its_end_is_renewed_on_the_heartbeat() {
    let (agent, uri) = fake_agent().await;
    // Renew whenever less than the whole term is left: every renewal calls.
    let client = AgentProtection::new(
        &uri,
        ProtectionConfig {
            renew_within: Duration::from_secs(11 * 60),
            ..config()
        },
    )
    .unwrap();
    for _ in 0..3 {
        agent.answer(StatusCode::OK, protected(true));
    }
    client.protect().await.unwrap();
    client.renew().await.unwrap();
    client.renew().await.unwrap();
    let requests = agent.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r == &json!({"ProtectionEnabled": true, "ExpiresInMinutes": 10}))
    );
}

#[tokio::test]
async fn a_refusal_such_as_a_blocked_deployment_means_no_protection() {
    let (agent, uri) = fake_agent().await;
    let client = AgentProtection::new(&uri, config()).unwrap();
    agent.answer(
        StatusCode::OK,
        json!({"failure": {
            "Arn": "arn:aws:ecs:eu-west-1:111122223333:task/crunch/abc",
            "Detail": null,
            "Reason": "DEPLOYMENT_BLOCKED"
        }}),
    );
    agent.answer(StatusCode::OK, protected(false));
    let error = client.protect().await.unwrap_err();
    assert!(error.0.contains("DEPLOYMENT_BLOCKED"), "{error}");
    // Within retry_after the failure stands without another call, for a
    // protect and for a renewal alike.
    let again = client.protect().await.unwrap_err();
    assert_eq!(again, error);
    assert_eq!(client.renew().await.unwrap_err(), error);
    assert_eq!(agent.requests().len(), 1);
    // Whatever protection the task had is given up, so the deployment can
    // replace it; once, and the refusal still stands.
    client.release().await.unwrap();
    client.release().await.unwrap();
    assert_eq!(client.protect().await.unwrap_err(), error);
    assert_eq!(
        agent.requests(),
        vec![
            json!({"ProtectionEnabled": true, "ExpiresInMinutes": 10}),
            json!({"ProtectionEnabled": false}),
        ]
    );
}

#[tokio::test]
async fn a_release_that_failed_is_asked_again() {
    let (agent, uri) = fake_agent().await;
    let client = AgentProtection::new(&uri, config()).unwrap();
    agent.answer(StatusCode::OK, protected(true));
    agent.answer_raw(StatusCode::INTERNAL_SERVER_ERROR, "agent busy");
    agent.answer(StatusCode::OK, protected(false));
    client.protect().await.unwrap();
    // The agent may or may not have applied it: the state is unknown.
    assert!(client.release().await.is_err());
    client.release().await.unwrap();
    client.release().await.unwrap();
    assert_eq!(
        agent.requests().len(),
        3,
        "protect, failed release, release"
    );
}

#[tokio::test]
async fn agent_errors_and_unreadable_answers_are_failures() {
    let (agent, uri) = fake_agent().await;
    let retry_now = ProtectionConfig {
        retry_after: Duration::ZERO,
        ..config()
    };
    let client = AgentProtection::new(&uri, retry_now).unwrap();

    agent.answer(
        StatusCode::BAD_REQUEST,
        json!({"requestID": "12345-abc", "error": {
            "Arn": "arn:aws:ecs:eu-west-1:111122223333:task/crunch/abc",
            "Code": "ThrottlingException",
            "Message": "Rate exceeded"
        }}),
    );
    let error = client.protect().await.unwrap_err();
    assert!(
        error.0.contains("ThrottlingException") && error.0.contains("Rate exceeded"),
        "{error}"
    );

    agent.answer_raw(StatusCode::INTERNAL_SERVER_ERROR, "agent exploded");
    let error = client.protect().await.unwrap_err();
    assert!(
        error.0.contains("500") && error.0.contains("agent exploded"),
        "{error}"
    );

    // A 200 that does not confirm the state asked for is not protection.
    agent.answer(StatusCode::OK, protected(false));
    let error = client.protect().await.unwrap_err();
    assert!(error.0.contains("unexpected"), "{error}");

    // And then it works.
    agent.answer(StatusCode::OK, protected(true));
    client.protect().await.unwrap();
    assert_eq!(agent.requests().len(), 4);
}

#[tokio::test]
async fn an_unreachable_agent_is_a_failure() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = AgentProtection::new(&format!("http://127.0.0.1:{port}/v1/x"), config()).unwrap();
    let error = client.protect().await.unwrap_err();
    assert!(error.0.contains("unreachable"), "{error}");
}
