//! The crunch HTTP API: datasets in, analysis jobs run, results out.
//!
//! [`app`] builds the endpoint: the OpenAPI operations, Swagger UI at
//! `/docs`, the spec at `/openapi.json`, latency metrics, and problem
//! details for every error, including ones raised before an operation runs,
//! and `Connection: close` on answers given before the request's body was
//! read to its end.

pub mod api;
pub mod body_limit;
pub mod metrics;
pub mod problem;
pub mod scaling;
pub mod state;
pub mod unread_body;
pub mod waiters;

use poem::{Endpoint, EndpointExt, Response, Route, http::StatusCode};

use crate::{metrics::Measure, problem::ApiError, state::AppState};

/// The whole HTTP application.
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let metrics = state.metrics.clone();
    let limits = state.limits.clone();
    let service = api::service(state);
    let docs = service.swagger_ui();
    let spec = service.spec_endpoint();
    Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", service)
        // For the operations' own middleware (the JSON body limit), which
        // poem-openapi builds without the state.
        .data(limits)
        .catch_all_error(|err: poem::Error| async move { problem_response(err) })
        .around(unread_body::close_if_unread)
        .with(Measure(metrics))
}

/// Errors raised outside an operation (an unknown path, a wrong method)
/// still answer with a problem body, never plain text.
fn problem_response(err: poem::Error) -> Response {
    // An operation's own error response (already a problem) passes as is.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let api = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such resource".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::BadRequest("method not allowed on this resource".to_owned())
        }
        _ => ApiError::from_poem(err),
    };
    api.into_problem_response(Some(status))
}

/// The OpenAPI document, as committed in `openapi.json`.
pub fn openapi_json(state: AppState) -> String {
    api::service(state).spec()
}
