//! The middleware every job passes through: it enforces the timeout, stops
//! the handler on cancel or lost lease, catches panics, and hands the
//! outcome to the I/O thread to be written, fenced by the attempt.

use std::{
    any::Any,
    error::Error as StdError,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use apalis_core::{
    error::{AbortError, BoxDynError},
    task::Task,
};
use futures_util::FutureExt;
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use super::{
    context::{JobContext, JobFailure, Retry, StopReason},
    shared::Shared,
};
use crate::{backoff::Backoff, job::Outcome};

/// Wraps a worker's services in [`JobService`].
#[derive(Clone)]
pub struct JobLayer {
    shared: Arc<Shared>,
    backoff: Backoff,
}

impl JobLayer {
    pub(crate) fn new(shared: Arc<Shared>, backoff: Backoff) -> Self {
        JobLayer { shared, backoff }
    }
}

impl<S> Layer<S> for JobLayer {
    type Service = JobService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JobService {
            inner,
            shared: self.shared.clone(),
            backoff: self.backoff,
        }
    }
}

/// Runs one job's handler under its attempt's rules and reports the outcome.
#[derive(Clone)]
pub struct JobService<S> {
    inner: S,
    shared: Arc<Shared>,
    backoff: Backoff,
}

/// The error a job service returns when the handler did not produce a
/// result of its own.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    /// The attempt ran past its time limit.
    #[error("timed out after {0:?}")]
    TimedOut(std::time::Duration),
    /// The handler panicked.
    #[error("handler panicked: {0}")]
    Panicked(String),
    /// The handler was stopped.
    #[error("stopped: {0:?}")]
    Stopped(&'static str),
}

impl<S, Args> Service<Task<Args>> for JobService<S>
where
    S: Service<Task<Args>>,
    S::Future: Send + 'static,
    S::Response: Serialize + Send + 'static,
    S::Error: Into<BoxDynError> + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxDynError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let Some(ctx) = task.data().get::<JobContext>().cloned() else {
            // Only PgBackend feeds this service, and it always attaches the
            // context; anything else is a wiring mistake, failed loudly.
            let error: BoxDynError = Box::new(JobFailure::fatal("task has no crunch JobContext"));
            return Box::pin(async move { Err(error) });
        };
        let handler = self.inner.call(task);
        let shared = self.shared.clone();
        let backoff = self.backoff;
        Box::pin(async move {
            let lease = ctx.lease;
            let run = tokio::time::timeout(ctx.timeout, AssertUnwindSafe(handler).catch_unwind());
            let (outcome, reply) = tokio::select! {
                biased;
                _ = ctx.stopping() => {
                    let reason = *ctx.stop.borrow();
                    match reason {
                        Some(StopReason::Cancelled) => (Some(Outcome::Cancelled), Err(stopped("cancelled"))),
                        Some(StopReason::Released) => (Some(Outcome::Released), Err(stopped("released"))),
                        // The lease is gone: whatever we wrote would be fenced out.
                        Some(StopReason::LeaseLost) | None => (None, Err(stopped("lease lost"))),
                    }
                }
                finished = run => match finished {
                    Err(_) => {
                        let error = Interrupted::TimedOut(ctx.timeout);
                        (Some(retry(&error, ctx.attempt(), backoff)), Err(error.into()))
                    }
                    Ok(Err(panic)) => {
                        let error = Interrupted::Panicked(panic_message(&*panic));
                        (Some(retry(&error, ctx.attempt(), backoff)), Err(error.into()))
                    }
                    Ok(Ok(Err(error))) => {
                        let error: BoxDynError = error.into();
                        (Some(failure(&*error, ctx.attempt(), backoff)), Err(error))
                    }
                    Ok(Ok(Ok(response))) => match serde_json::to_value(&response) {
                        Ok(value) => (Some(Outcome::Succeeded(value)), Ok(response)),
                        Err(e) => {
                            let error = JobFailure::fatal(format!("result is not serializable: {e}"));
                            (Some(failure(&error, ctx.attempt(), backoff)), Err(error.into()))
                        }
                    },
                },
            };
            match outcome {
                Some(outcome) => shared.finish(lease, outcome),
                None => shared.forget(lease),
            }
            shared.release_slots(1);
            reply
        })
    }
}

fn stopped(why: &'static str) -> BoxDynError {
    Box::new(AbortError::new(Interrupted::Stopped(why)))
}

/// The outcome of an attempt that failed with `error`.
fn failure(error: &(dyn StdError + 'static), attempt: i32, backoff: Backoff) -> Outcome {
    let message = error_chain(error);
    let retry = if let Some(f) = error.downcast_ref::<JobFailure>() {
        f.retry
    } else if error.downcast_ref::<AbortError>().is_some() {
        Retry::Never
    } else {
        Retry::Backoff
    };
    let retry_in = match retry {
        Retry::Backoff => Some(backoff.delay(attempt)),
        Retry::After(delay) => Some(delay),
        Retry::Never => None,
    };
    Outcome::Failed {
        error: message,
        retry_in,
    }
}

fn retry(error: &Interrupted, attempt: i32, backoff: Backoff) -> Outcome {
    Outcome::Failed {
        error: error.to_string(),
        retry_in: Some(backoff.delay(attempt)),
    }
}

/// The error and its sources, outermost first.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
