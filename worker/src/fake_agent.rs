//! A fake ECS container agent on 127.0.0.1: the task protection endpoint
//! ([`PROTECTION_PATH`]) of one task, answering as ECS does, for tests of
//! the protection client and of the worker binary (`ECS_AGENT_URI`).
//!
//! It keeps the task's protection and every request it received; it can
//! refuse protection as ECS does during a deployment, and answer the next
//! requests with planned answers (errors, garbage) instead.
//!
//! Built only with the `fake-agent` feature, which only dev-dependencies
//! turn on (this crate's tests and the fault suite's): the binaries never
//! carry it.

use std::{
    collections::VecDeque,
    io,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use poem::{
    EndpointExt, Response, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    put,
    web::{Data, Json},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::protection::PROTECTION_PATH;

/// The task's id in the agent's API. `ECS_AGENT_URI` names the task under
/// the agent's API, for example `http://169.254.170.2/api/<task id>`; the
/// client appends its path.
const TASK_ID: &str = "abc-123";

/// The task's ARN in the agent's answers.
pub const TASK_ARN: &str = "arn:aws:ecs:eu-west-1:111122223333:task/crunch/abc-123";

/// What the agent keeps.
#[derive(Default)]
struct Task {
    /// The task's protection, as ECS keeps it.
    protected: bool,
    /// Every request body, in order.
    requests: Vec<Value>,
    /// Whether ECS refuses protection (a deployment in progress).
    refuse: bool,
    /// Answers to send instead of ECS's, first in first out.
    planned: VecDeque<(StatusCode, String)>,
}

type Shared = Arc<Mutex<Task>>;

/// A running fake agent, served by the runtime that started it; it stops
/// when dropped.
pub struct FakeAgent {
    task: Shared,
    uri: String,
    server: JoinHandle<()>,
}

impl FakeAgent {
    /// Starts an agent on a free port of 127.0.0.1. The task is not
    /// protected and ECS grants what it is asked.
    pub async fn start() -> io::Result<FakeAgent> {
        let task = Shared::default();
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .ok_or_else(|| io::Error::other("the fake agent's listener has no TCP address"))?;
        let app = Route::new()
            .at(format!("/api/{TASK_ID}{PROTECTION_PATH}"), put(state))
            .data(task.clone());
        let server = tokio::spawn(async move {
            // Runs until the agent is dropped; a failed accept ends it, and
            // the test then sees the client's errors.
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Ok(FakeAgent {
            task,
            uri: format!("http://{addr}/api/{TASK_ID}"),
            server,
        })
    }

    /// The `ECS_AGENT_URI` that reaches this agent.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether the task is protected, as ECS keeps it.
    pub fn protected(&self) -> bool {
        self.task().protected
    }

    /// The body of every request received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.task().requests.clone()
    }

    /// `ProtectionEnabled` of every request received, in order: `true`
    /// asks for protection, `false` gives it up.
    pub fn calls(&self) -> Vec<bool> {
        self.task().requests.iter().map(enabled).collect()
    }

    /// From now on refuses protection (`refuse`) as ECS does while a
    /// deployment is in progress, or grants it again. Giving protection up
    /// is always granted.
    pub fn refuse(&self, refuse: bool) {
        self.task().refuse = refuse;
    }

    /// Answers the next request with `status` and `body`, whatever it asks
    /// and without changing the task's protection. Planned answers are
    /// sent in the order planned, before the agent answers as ECS again.
    pub fn answer(&self, status: u16, body: Value) {
        self.answer_raw(status, &body.to_string());
    }

    /// [`FakeAgent::answer`] with a body that need not be JSON.
    pub fn answer_raw(&self, status: u16, body: &str) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.task().planned.push_back((status, body.to_owned()));
    }

    fn task(&self) -> MutexGuard<'_, Task> {
        lock(&self.task)
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The body ECS answers a granted request with: the task's protection is
/// now `enabled`.
pub fn granted(enabled: bool) -> Value {
    json!({"protection": {
        "ExpirationDate": if enabled { json!("2026-11-30T23:00:00Z") } else { Value::Null },
        "ProtectionEnabled": enabled,
        "TaskArn": TASK_ARN
    }})
}

/// The body ECS answers a refused request with, for `reason`.
pub fn refused(reason: &str) -> Value {
    json!({"failure": {"Arn": TASK_ARN, "Detail": null, "Reason": reason}})
}

/// A request's `ProtectionEnabled`; a request without it asks for none.
fn enabled(request: &Value) -> bool {
    request["ProtectionEnabled"].as_bool().unwrap_or(false)
}

/// The task, also after a panic elsewhere while it was held: every update
/// is a single field write or push, so it is still consistent.
fn lock(task: &Shared) -> MutexGuard<'_, Task> {
    task.lock().unwrap_or_else(PoisonError::into_inner)
}

#[handler]
fn state(Json(request): Json<Value>, task: Data<&Shared>) -> Response {
    let mut task = lock(&task);
    let asked = enabled(&request);
    task.requests.push(request);
    let (status, body) = match task.planned.pop_front() {
        Some(planned) => planned,
        None if asked && task.refuse => (StatusCode::OK, refused("DEPLOYMENT_BLOCKED").to_string()),
        None => {
            task.protected = asked;
            (StatusCode::OK, granted(asked).to_string())
        }
    };
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body)
}
