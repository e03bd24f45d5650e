//! The size limit of JSON request bodies, and the NUL check of their text.
//!
//! poem-openapi reads a JSON body whole before the operation runs, with no
//! limit of its own: without this, one request could make the server hold
//! any amount of memory. Uploads stream to disk under their own, larger
//! limit and do not pass through here.

use poem::{Endpoint, IntoResponse, Request, Response, Result, error::ReadBodyError, http::header};

use crate::{
    problem::ApiError,
    state::{DEFAULT_MAX_JSON_BYTES, Limits},
};

/// Wraps an operation that takes a JSON body (`#[oai(transform =
/// "json_body_limit")]`): a body over [`Limits::max_json_bytes`] is
/// answered 413 with a problem body before it is parsed, so the operation
/// must declare 413. The limit comes from the [`Limits`] in the request's
/// data, which `app` provides.
pub fn json_body_limit<E: Endpoint>(inner: E) -> JsonBodyLimit<E> {
    JsonBodyLimit { inner }
}

/// The endpoint [`json_body_limit`] makes.
pub struct JsonBodyLimit<E> {
    inner: E,
}

fn too_large(limit: usize) -> Response {
    ApiError::TooLarge(format!("the JSON body is over the limit of {limit} bytes"))
        .into_problem_response(None)
}

impl<E: Endpoint> Endpoint for JsonBodyLimit<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let limit = req
            .data::<Limits>()
            .map_or(DEFAULT_MAX_JSON_BYTES, |l| l.max_json_bytes);
        // A declared length over the limit is refused without reading.
        let declared = req
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Ok(too_large(limit));
        }
        // Otherwise (no length, chunked, or a length that lies) the body is
        // read up to the limit and no further.
        match req.take_body().into_bytes_limit(limit).await {
            Ok(bytes) => {
                if let Some(field) = crate::plain_text::json_nul_field(&bytes) {
                    return Ok(ApiError::BadRequest(format!(
                        "{field} contains a NUL character, which text cannot hold"
                    ))
                    .into_problem_response(None));
                }
                req.set_body(bytes)
            }
            Err(ReadBodyError::PayloadTooLarge) => return Ok(too_large(limit)),
            Err(e) => {
                return Ok(
                    ApiError::BadRequest(format!("the body could not be read: {e}"))
                        .into_problem_response(None),
                );
            }
        }
        Ok(self.inner.call(req).await?.into_response())
    }
}
