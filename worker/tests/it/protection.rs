//! The scale-in protection client against a fake ECS agent on 127.0.0.1:
//! what it sends, when it calls, and how it reads successes, failures and
//! errors.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crunch_queue::Protection;
use crunch_worker::{
    fake_agent::{FakeAgent, granted, refused},
    protection::{AgentProtection, ProtectionConfig},
};
use serde_json::json;

/// Starts the fake agent; returns it and its `ECS_AGENT_URI`.
async fn fake_agent() -> (FakeAgent, String) {
    let agent = FakeAgent::start().await.unwrap();
    let uri = agent.uri().to_owned();
    (agent, uri)
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
        agent.answer(200, granted(true));
    }
    agent.answer(200, granted(false));

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
        agent.answer(200, granted(true));
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
    agent.answer(200, refused("DEPLOYMENT_BLOCKED"));
    agent.answer(200, granted(false));
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
    agent.answer(200, granted(true));
    agent.answer_raw(500, "agent busy");
    agent.answer(200, granted(false));
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
        400,
        json!({"requestID": "12345-abc", "error": {
            "Arn": crunch_worker::fake_agent::TASK_ARN,
            "Code": "ThrottlingException",
            "Message": "Rate exceeded"
        }}),
    );
    let error = client.protect().await.unwrap_err();
    assert!(
        error.0.contains("ThrottlingException") && error.0.contains("Rate exceeded"),
        "{error}"
    );

    agent.answer_raw(500, "agent exploded");
    let error = client.protect().await.unwrap_err();
    assert!(
        error.0.contains("500") && error.0.contains("agent exploded"),
        "{error}"
    );

    // A 200 that does not confirm the state asked for is not protection.
    agent.answer(200, granted(false));
    let error = client.protect().await.unwrap_err();
    assert!(error.0.contains("unexpected"), "{error}");

    // And then it works.
    agent.answer(200, granted(true));
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
