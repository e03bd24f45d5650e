//! ECS task scale-in protection through the container agent's endpoint
//! (`$ECS_AGENT_URI/task-protection/v1/state`), held exactly while the
//! worker holds a job: neither a scale-in nor a deployment stops a task in
//! the middle of a 30-minute analysis, and an idle task stays free to go.
//!
//! The backend asks for protection once per job (before the claim), and
//! for renewal on every heartbeat; this client calls the agent for every
//! new job (so a deployment in progress can refuse it), for a renewal only
//! when the protection nears its end, and to give it up. After a failed
//! protect it answers with that failure for a short while instead of
//! calling again, so a blocked deployment or a throttled API does not turn
//! into a call per poll. After any failed call it treats the task's state
//! as unknown: the next release or renewal calls the agent.

use std::time::Duration;

use crunch_queue::{Protection, ProtectionError};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::{sync::Mutex, time::Instant};

/// The agent's path for the calling task's protection.
pub const PROTECTION_PATH: &str = "/task-protection/v1/state";

/// How the client behaves.
#[derive(Debug, Clone, Copy)]
pub struct ProtectionConfig {
    /// How long one protect call protects the task (ECS allows 1 to 2,880
    /// minutes). A worker that stops renewing (hung, or lost its way to the
    /// agent) is protected at most this long after its last renewal.
    pub expires_in: Duration,
    /// After a failed call, how long to answer with that failure without
    /// calling again.
    pub retry_after: Duration,
    /// Renew once less than this is left of the protection.
    pub renew_within: Duration,
    /// The most one call may take.
    pub timeout: Duration,
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        ProtectionConfig {
            expires_in: Duration::from_secs(10 * 60),
            renew_within: Duration::from_secs(5 * 60),
            retry_after: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Task scale-in protection through the ECS container agent.
pub struct AgentProtection {
    client: reqwest::Client,
    url: String,
    config: ProtectionConfig,
    /// Held across each call, so calls never overlap or reorder.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the protection last taken or renewed runs out; `None` when the
    /// task is not protected by this worker. A failed call sets it to now:
    /// the agent may or may not have applied it, so the next release or
    /// renewal must ask.
    protected_until: Option<Instant>,
    /// The last failed protect and when it happened.
    failed: Option<(Instant, ProtectionError)>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    protection_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in_minutes: Option<u64>,
}

/// The agent's answer: one of `protection`, `failure` or `error`.
#[derive(Deserialize)]
struct Response {
    protection: Option<Protected>,
    failure: Option<Failure>,
    error: Option<AgentError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Protected {
    protection_enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Failure {
    reason: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentError {
    code: Option<String>,
    message: Option<String>,
}

impl AgentProtection {
    /// A client of the agent at `agent_uri` (the value of `ECS_AGENT_URI`).
    pub fn new(agent_uri: &str, config: ProtectionConfig) -> Result<Self, ProtectionError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            // Calls come from two runtimes (claims and heartbeats); a pooled
            // connection would belong to whichever made it.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| ProtectionError(format!("cannot build the agent client: {e}")))?;
        Ok(AgentProtection {
            client,
            url: format!("{}{PROTECTION_PATH}", agent_uri.trim_end_matches('/')),
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn expires_in_minutes(&self) -> u64 {
        (self.config.expires_in.as_secs() / 60).clamp(1, 2880)
    }

    /// One PUT to the agent; `Ok` only when the agent confirms the state
    /// asked for.
    async fn put(&self, enabled: bool) -> Result<(), ProtectionError> {
        let request = Request {
            protection_enabled: enabled,
            expires_in_minutes: enabled.then(|| self.expires_in_minutes()),
        };
        let response = self
            .client
            .put(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(|e| ProtectionError(format!("ECS agent unreachable: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProtectionError(format!("ECS agent answer cut short: {e}")))?;
        let answer: Option<Response> = serde_json::from_slice(&body).ok();
        match answer {
            Some(Response { error: Some(e), .. }) => Err(ProtectionError(format!(
                "ECS agent error {}: {}",
                e.code.as_deref().unwrap_or("(no code)"),
                e.message.as_deref().unwrap_or("(no message)")
            ))),
            Some(Response {
                failure: Some(f), ..
            }) => Err(ProtectionError(format!(
                "ECS refused: {}{}",
                f.reason.as_deref().unwrap_or("(no reason)"),
                f.detail.map(|d| format!(" ({d})")).unwrap_or_default()
            ))),
            Some(Response {
                protection: Some(p),
                ..
            }) if status.is_success() && p.protection_enabled == enabled => Ok(()),
            _ => Err(ProtectionError(format!(
                "unexpected ECS agent answer {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }

    /// Calls the agent, unless this is a protect and a recent failed
    /// protect stands; records the result.
    async fn call(&self, state: &mut State, enabled: bool) -> Result<(), ProtectionError> {
        if enabled
            && let Some((at, error)) = &state.failed
            && at.elapsed() < self.config.retry_after
        {
            return Err(error.clone());
        }
        let started = Instant::now();
        match self.put(enabled).await {
            Ok(()) => {
                // Only a granted protect lifts the backoff: a release that
                // follows a refusal must not let the next poll ask again.
                if enabled {
                    state.failed = None;
                }
                let term = Duration::from_secs(self.expires_in_minutes() * 60);
                state.protected_until = enabled.then(|| started + term);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(enabled, "scale-in protection call failed: {error}");
                if enabled {
                    state.failed = Some((Instant::now(), error.clone()));
                }
                state.protected_until = Some(Instant::now());
                Err(error)
            }
        }
    }

    /// Whether held protection is close enough to its end to renew.
    fn due(&self, until: Instant) -> bool {
        until.saturating_duration_since(Instant::now()) < self.config.renew_within
    }
}

impl Protection for AgentProtection {
    fn protect(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            self.call(&mut state, true).await
        })
    }

    fn renew(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            match state.protected_until {
                Some(until) if self.due(until) => self.call(&mut state, true).await,
                _ => Ok(()),
            }
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            if state.protected_until.is_none() {
                return Ok(());
            }
            self.call(&mut state, false).await
        })
    }
}
