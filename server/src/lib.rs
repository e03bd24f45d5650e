//! The crunch HTTP API: datasets in, analysis jobs run, results out.
//!
//! [`app`] builds the endpoint: the OpenAPI operations (every `/v1` one
//! authenticated by an API key, see [`auth`]), Swagger UI at `/docs`, the
//! spec at `/openapi.json`, latency metrics, and problem details for every
//! error, including ones raised before an operation runs, `Connection:
//! close` on answers given before the request's body was read to its end,
//! and a 400 for text that cannot be stored (a NUL, bytes that are not
//! UTF-8). [`metrics_app`] serves the Prometheus metrics, which the
//! operator serves where they choose (a separate listen address), never on
//! the public one.

pub mod api;
pub mod auth;
pub mod body_limit;
pub mod exposure;
pub mod metrics;
pub mod plain_text;
pub mod problem;
pub mod scaling;
pub mod settings;
pub mod spec;
pub mod state;
pub mod unread_body;
pub mod waiters;

use poem::{
    Endpoint, EndpointExt, IntoResponse, Response, Route, endpoint::make_sync, get, handler,
    http::StatusCode, web::Data, web::Html,
};

use crate::{metrics::Measure, problem::ApiError, state::AppState};

/// The whole HTTP API: `/v1` (every operation needs a key), `/healthz`,
/// `/readyz`, `/docs` and `/openapi.json` (open). Not `/metrics`: see
/// [`metrics_app`].
pub fn app(state: AppState) -> impl Endpoint<Output = Response> {
    let metrics = state.metrics.clone();
    let limits = state.limits.clone();
    let auth = state.auth.clone();
    let auth_check = state.auth.clone();
    let service = api::service(state);
    let raw = service.spec();
    // The spec is generated from types, so failing to re-read it is a bug
    // in this program, not something a request could cause.
    #[allow(clippy::expect_used)]
    let tidied = spec::tidy(&raw).expect("poem-openapi writes valid JSON");
    // Swagger UI embeds the document it shows: the same one, tidied.
    let docs_html = service.swagger_ui_html().replacen(&raw, &tidied, 1);
    let docs = make_sync(move |_| Html(docs_html.clone()));
    let document = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(tidied.clone())
    });
    Route::new()
        .at("/docs", docs)
        .at("/openapi.json", document)
        .nest("/", service)
        // For the operations' own middleware (the JSON body limit) and
        // their security scheme (the key check), which poem-openapi builds
        // without the state.
        .data(limits)
        .data(auth)
        .catch_all_error(|err: poem::Error| async move { problem_response(err) })
        .around(plain_text::refuse_unstorable)
        // Before any body is read: a request without a valid key costs no
        // more than its headers.
        .around(move |ep, req| {
            let auth = auth_check.clone();
            async move { auth::authenticate_v1(ep, req, &auth).await }
        })
        .around(unread_body::close_if_unread)
        .with(Measure(metrics))
}

/// The Prometheus metrics at `GET /metrics`: queue depth by state, job
/// outcomes and run times over every tenant (no tenant is named), and this
/// process's HTTP latency. Open, so serve it only where scrapers (and not
/// clients) reach it: a separate listen address.
pub fn metrics_app(state: AppState) -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/metrics", get(scrape))
        .data(state)
        .catch_all_error(|err: poem::Error| async move { problem_response(err) })
}

#[handler]
async fn scrape(Data(state): Data<&AppState>) -> Response {
    match metrics::scrape(state).await {
        Ok(text) => Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(e) => e.into_problem_response(None),
    }
    .into_response()
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

/// The OpenAPI document, as committed in `openapi.json` and served.
pub fn openapi_json(state: AppState) -> Result<String, serde_json::Error> {
    spec::tidy(&api::service(state).spec())
}
