//! Errors as RFC 9457 problem details: the one error body of the API, and
//! the single place where failures of the layers below become HTTP statuses.

use std::time::Duration;

use crunch_engine::EngineError;
use crunch_queue::QueueError;
use crunch_store::StoreError;
use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::Object;

use crate::{
    api::results::ResultError,
    auth::{AuthError, Scope},
};

/// The realm every challenge names.
const REALM: &str = "crunch";

/// A problem report (RFC 9457), served as `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
    /// Where in the input it went wrong, when the input was at fault.
    #[oai(skip_serializing_if_is_empty, default)]
    pub errors: Vec<InputError>,
}

/// One fault in a request's input.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct InputError {
    /// 1-based line of an uploaded body.
    #[oai(skip_serializing_if_is_none)]
    pub line: Option<u64>,
    /// The column (of an upload) or field (of a request) at fault.
    #[oai(skip_serializing_if_is_none)]
    pub column: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

/// A failure while serving a request, before it is given a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the request carries no key, or one that does not authenticate
    /// it (malformed, unknown, expired, revoked).
    #[error("{detail}")]
    Unauthorized {
        /// What is wrong with the key, for a person.
        detail: String,
        /// The RFC 6750 error code for the challenge: `None` when no key
        /// was sent, else `invalid_token`.
        error: Option<&'static str>,
    },
    /// 403: the key is valid but lacks the scope the operation needs.
    #[error("{detail}")]
    Forbidden {
        /// What the key lacks.
        detail: String,
        /// The scope it needs.
        needed: Scope,
    },
    /// 404: no such resource (for this tenant).
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 409: storing this would take the tenant past its storage quota.
    /// A conflict with the tenant's current holdings rather than a 413
    /// (which says this one body is too large for any tenant) or a 403
    /// (which says the key may not do this): deleting datasets resolves
    /// it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// 413: the body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the body's media type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the input is well-formed but wrong (bad rows, unknown kinds).
    #[error("{detail}")]
    Unprocessable {
        /// The summary.
        detail: String,
        /// Where.
        errors: Vec<InputError>,
    },
    /// 429: the tenant has as many queued jobs as it may; retry after
    /// `retry_after`.
    #[error("{detail}")]
    TooManyRequests {
        /// Which limit, for a person.
        detail: String,
        /// When a retry may succeed (sent as `Retry-After`, in whole
        /// seconds, at least 1).
        retry_after: Duration,
    },
    /// 503: a dependency (the database, the object store) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; details are logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The status this error is served with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) | ApiError::QuotaExceeded(_) => 409,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Unprocessable { .. } => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The headers this error is served with besides its body: the
    /// bearer challenge of a 401 and a 403 (RFC 6750), the `Retry-After`
    /// of a 429.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::Unauthorized { error, .. } => {
                let challenge = match error {
                    None => format!("Bearer realm=\"{REALM}\""),
                    Some(error) => format!("Bearer realm=\"{REALM}\", error=\"{error}\""),
                };
                vec![("WWW-Authenticate", challenge)]
            }
            ApiError::Forbidden { needed, .. } => vec![(
                "WWW-Authenticate",
                format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{needed}\""
                ),
            )],
            ApiError::TooManyRequests { retry_after, .. } => {
                // Whole seconds, rounded up, and never 0 ("retry at once").
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                vec![("Retry-After", seconds.max(1).to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// The problem body. Internal errors are logged here and reported
    /// without their details.
    pub fn problem(self) -> Problem {
        let status = self.status();
        let (slug, title) = match &self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::Unauthorized { .. } => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden { .. } => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::QuotaExceeded(_) => ("quota-exceeded", "Storage quota exceeded"),
            ApiError::TooLarge(_) => ("too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::Unprocessable { .. } => ("invalid-input", "Invalid input"),
            ApiError::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        };
        let (detail, errors) = match self {
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    Some("an unexpected error occurred; it has been logged".to_owned()),
                    Vec::new(),
                )
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!("dependency unavailable: {detail}");
                (
                    Some("a dependency is unavailable; retry later".to_owned()),
                    Vec::new(),
                )
            }
            ApiError::Unprocessable { detail, errors } => (Some(detail), errors),
            other => (Some(other.to_string()), Vec::new()),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status,
            detail,
            errors,
        }
    }

    /// The same error, said of the `n`th job (from 0) of a batch, so the
    /// client knows which one to fix.
    pub fn in_batch(self, n: usize) -> ApiError {
        match self {
            ApiError::BadRequest(detail) => ApiError::BadRequest(format!("jobs[{n}]: {detail}")),
            ApiError::Unprocessable { detail, errors } => ApiError::Unprocessable {
                detail: format!("jobs[{n}]: {detail}"),
                errors: errors
                    .into_iter()
                    .map(|e| InputError {
                        column: Some(match e.column {
                            Some(column) => format!("jobs[{n}].{column}"),
                            None => format!("jobs[{n}]"),
                        }),
                        ..e
                    })
                    .collect(),
            },
            other => other,
        }
    }

    /// This error as a whole response, for code that answers outside an
    /// operation (middleware, unknown routes). `status` overrides the
    /// error's own status when the HTTP status is more precise than any
    /// variant (405 is served as a bad request with status 405).
    pub fn into_problem_response(self, status: Option<StatusCode>) -> Response {
        let headers = self.headers();
        let mut problem = self.problem();
        let status = status
            .or_else(|| StatusCode::from_u16(problem.status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        problem.status = status.as_u16();
        let body =
            serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&problem)).unwrap_or_default();
        let mut response = Response::builder()
            .status(status)
            .content_type("application/problem+json");
        for (name, value) in headers {
            response = response.header(name, value);
        }
        response.body(body).into_response()
    }

    /// From a request that poem-openapi could not parse (bad JSON, a
    /// missing parameter, a wrong content type, an oversized body).
    pub fn from_poem(err: poem::Error) -> ApiError {
        let message = err.to_string();
        match err.status().as_u16() {
            413 => ApiError::TooLarge(message),
            415 => ApiError::UnsupportedMediaType(message),
            404 => ApiError::NotFound(message),
            _ => ApiError::BadRequest(message),
        }
    }
}

/// Database errors that mean "unreachable" are 503s; the rest are bugs.
fn database(e: &sqlx::Error) -> ApiError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => ApiError::Unavailable(format!("database: {e}")),
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("57") || c.starts_with("08")) =>
        {
            // Class 57 (operator intervention: shutting down) and 08
            // (connection exceptions).
            ApiError::Unavailable(format!("database: {e}"))
        }
        _ => ApiError::Internal(format!("database: {e}")),
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::UnknownKind { kind } => ApiError::Unprocessable {
                detail: format!("unknown job type {kind:?}"),
                errors: Vec::new(),
            },
            QueueError::InvalidPayload { reason, .. } => ApiError::Unprocessable {
                detail: format!("invalid analysis: {reason}"),
                errors: Vec::new(),
            },
            QueueError::InvalidOption(reason) => ApiError::Unprocessable {
                detail: reason,
                errors: Vec::new(),
            },
            QueueError::InvalidState { state } => ApiError::Conflict(format!("the job is {state}")),
            QueueError::QueueFull {
                tenant: _,
                limit,
                retry_after,
            } => ApiError::TooManyRequests {
                detail: format!(
                    "the tenant may have at most {limit} queued jobs; nothing was queued, \
                     retry later"
                ),
                retry_after,
            },
            QueueError::Database(e) => database(&e),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("no such dataset".to_owned()),
            StoreError::BadInput {
                line,
                column,
                message,
            } => {
                let at = match (line, &column) {
                    (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
                    (Some(l), None) => format!(" at line {l}"),
                    (None, Some(c)) => format!(" in column {c}"),
                    (None, None) => String::new(),
                };
                ApiError::Unprocessable {
                    detail: format!("the upload is invalid{at}: {message}"),
                    errors: vec![InputError {
                        line,
                        column,
                        message,
                    }],
                }
            }
            StoreError::TooLarge { limit } => {
                ApiError::TooLarge(format!("the body is over the limit of {limit} bytes"))
            }
            StoreError::QuotaExceeded {
                limit,
                used,
                upload,
            } => ApiError::QuotaExceeded(format!(
                "storing this upload ({upload} bytes as stored) would take the tenant's \
                 {used} stored bytes past its quota of {limit} bytes; nothing was stored \
                 (delete datasets to make room)"
            )),
            StoreError::SchemaMismatch { expected, found } => ApiError::Unprocessable {
                detail: format!(
                    "the batch's schema does not match the dataset's: expected {expected}, found {found}"
                ),
                errors: Vec::new(),
            },
            StoreError::InvalidName(reason) => ApiError::Unprocessable {
                detail: reason,
                errors: Vec::new(),
            },
            // A malformed query parameter, like any other.
            StoreError::DeclaredSchema(e) => ApiError::BadRequest(e.to_string()),
            StoreError::Database(e) => database(&e),
            StoreError::Object(e) => ApiError::Unavailable(format!("object store: {e}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    /// What the submit check ([`crunch_engine::check_sql`]) refuses is the
    /// job's query at fault (422, naming `analysis.query`); any other
    /// engine error is a failure of the check itself (500).
    fn from(e: EngineError) -> Self {
        let (detail, message) = match e {
            EngineError::InvalidQuery(reason) => (format!("invalid query: {reason}"), reason),
            EngineError::UnknownTable(table) => (
                format!(
                    "the query reads table {table}, which is not one of the job's inputs \
                     (a query sees only its inputs, under their `table` names)"
                ),
                format!("unknown table {table}"),
            ),
            EngineError::UnknownColumn(column) => (
                format!(
                    "invalid query: unknown column {column} \
                     (an input's columns are its dataset's columns)"
                ),
                format!("unknown column {column}"),
            ),
            other => return ApiError::Internal(format!("checking a query: {other}")),
        };
        ApiError::Unprocessable {
            detail,
            errors: vec![InputError {
                line: None,
                column: Some("analysis.query".to_owned()),
                message,
            }],
        }
    }
}

impl From<ResultError> for ApiError {
    /// A succeeded job's result that is missing or does not read is a bug
    /// (500); an object store that fails is unavailable (503).
    fn from(e: ResultError) -> Self {
        match e {
            ResultError::Object(_) => ApiError::Unavailable(e.to_string()),
            ResultError::Missing(_)
            | ResultError::Parquet(_)
            | ResultError::Encode(_)
            | ResultError::Decode(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    /// A key that does not authenticate the request is 401 (with an
    /// RFC 6750 challenge); one without the scope, 403. Refused key
    /// management is 409 (the name or key exists), 404 (no such tenant) or
    /// 422 (bad input).
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::MissingKey => ApiError::Unauthorized {
                detail: e.to_string(),
                error: None,
            },
            AuthError::MalformedKey
            | AuthError::UnknownKey
            | AuthError::ExpiredKey { .. }
            | AuthError::RevokedKey { .. } => ApiError::Unauthorized {
                detail: e.to_string(),
                error: Some("invalid_token"),
            },
            AuthError::MissingScope { needed, .. } => ApiError::Forbidden {
                detail: e.to_string(),
                needed,
            },
            AuthError::Invalid(reason) => ApiError::Unprocessable {
                detail: reason,
                errors: Vec::new(),
            },
            AuthError::UnknownTenant(_) => ApiError::NotFound(e.to_string()),
            AuthError::TenantExists(_) | AuthError::KeyExists(_) => {
                ApiError::Conflict(e.to_string())
            }
            AuthError::Database(e) => database(&e),
            AuthError::Random => ApiError::Internal(e.to_string()),
        }
    }
}

/// A readiness check that failed. Whatever the queue's error, a replica
/// whose database does not answer is not ready: always 503.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub QueueError);

impl From<NotReady> for ApiError {
    fn from(NotReady(e): NotReady) -> Self {
        match e {
            QueueError::Database(e) => ApiError::Unavailable(format!("database: {e}")),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// The parse-error hook every operation's error enum uses.
pub fn from_poem_error<T: From<ApiError>>(err: poem::Error) -> T {
    T::from(ApiError::from_poem(err))
}

/// The value of header `name` among an error's [`ApiError::headers`]: what
/// the `problems!` variants that declare a header are given. Every error
/// with a status that declares a header sets it (401 and 403 the
/// challenge, 429 `Retry-After`); empty otherwise.
pub fn header_value(headers: &[(&'static str, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Declares an operation's error responses: one problem-details variant per
/// listed status, plus 401 and 403 (the key does not authenticate the
/// request, or lacks the operation's scope), which every operation that
/// takes a key can answer, and 500 and 503, which any operation can answer.
/// Every status an operation can return is thereby in the spec, and parse
/// errors caught by poem-openapi become the matching problem too. An entry
/// may declare a header it is sent with (`429 => TooManyRequests: "..."
/// with "Retry-After": "..."`), whose value comes from
/// [`ApiError::headers`]. `open Name { ... }` declares the responses of an
/// operation that takes no key (no 401, no 403).
#[macro_export]
macro_rules! problems {
    ($(#[$meta:meta])* open $name:ident { $($entries:tt)* }) => {
        $crate::problems!(@emit $(#[$meta])* $name { $($entries)* });
    };
    ($(#[$meta:meta])* $name:ident { $($entries:tt)* }) => {
        $crate::problems!(@emit $(#[$meta])* $name {
            401 => Unauthorized: "No key, or a malformed, unknown, expired or revoked one: send `Authorization: Bearer <key>` with a valid key."
                with "WWW-Authenticate": "The bearer challenge (RFC 6750): `error=\"invalid_token\"` when a key was sent.",
            403 => Forbidden: "The key is valid but lacks the scope this operation needs."
                with "WWW-Authenticate": "The bearer challenge (RFC 6750), `error=\"insufficient_scope\"` naming the scope needed.",
            $($entries)*
        });
    };
    (@emit $(#[$meta:meta])* $name:ident {
        $($status:literal => $variant:ident : $desc:literal $(with $header:literal : $header_desc:literal)?),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, poem_openapi::ApiResponse)]
        #[oai(bad_request_handler = "crate::problem::from_poem_error")]
        pub enum $name {
            $(
                #[doc = $desc]
                #[oai(status = $status, content_type = "application/problem+json")]
                $variant(
                    poem_openapi::payload::Json<$crate::problem::Problem>
                    $(, #[doc = $header_desc] #[oai(header = $header)] String)?
                ),
            )*
            /// The database or object store is unavailable; retry later.
            #[oai(status = 503, content_type = "application/problem+json")]
            Unavailable(poem_openapi::payload::Json<$crate::problem::Problem>),
            /// An unexpected server error.
            #[oai(status = 500, content_type = "application/problem+json")]
            Internal(poem_openapi::payload::Json<$crate::problem::Problem>),
        }

        impl From<$crate::problem::ApiError> for $name {
            fn from(e: $crate::problem::ApiError) -> Self {
                #[allow(unused_variables)]
                let headers = e.headers();
                let problem = e.problem();
                match problem.status {
                    $($status => $name::$variant(
                        poem_openapi::payload::Json(problem)
                        $(, $crate::problem::header_value(&headers, $header))?
                    ),)*
                    503 => $name::Unavailable(poem_openapi::payload::Json(problem)),
                    other => {
                        // A status this operation does not declare would be
                        // undocumented: serve it as a 500 and log it.
                        tracing::error!("undeclared status {other}: {:?}", problem.detail);
                        $name::Internal(poem_openapi::payload::Json(
                            $crate::problem::ApiError::Internal(format!(
                                "undeclared status {other}: {}",
                                problem.detail.unwrap_or_default()
                            ))
                            .problem(),
                        ))
                    }
                }
            }
        }
    };
}
