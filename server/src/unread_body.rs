//! Answers sent before the request's body was read to its end close the
//! connection, and say so.
//!
//! A request can be answered early: an upload over the limit is refused at
//! its declared length, a CSV is refused at its first bad line. The server
//! (hyper) then cannot reuse the connection, since the rest of the body is
//! still on it, and closes it after the answer. Without `Connection: close`
//! in that answer, a client with a keep-alive pool puts the connection back
//! and its next request fails on a connection that is already closing.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::Stream;
use poem::{
    Body, Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderValue, header},
};

/// Runs `ep` and adds `Connection: close` to its answer when the request
/// carried a body that was not read to its end (`EndpointExt::around`).
pub async fn close_if_unread<E: Endpoint>(ep: Arc<E>, mut req: Request) -> Result<Response> {
    if !has_body(&req) {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let ended = Arc::new(AtomicBool::new(false));
    let body = Tracked {
        inner: Box::pin(req.take_body().into_bytes_stream()),
        ended: ended.clone(),
    };
    req.set_body(Body::from_bytes_stream(body));
    let mut response = ep.call(req).await?.into_response();
    if !ended.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// Whether the request says a body follows: a non-zero length, or chunked.
fn has_body(req: &Request) -> bool {
    match req.header(header::CONTENT_LENGTH) {
        Some(len) => len.trim() != "0",
        None => req.header(header::TRANSFER_ENCODING).is_some(),
    }
}

/// A request body that records when it was read to its end.
struct Tracked {
    inner: Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
    ended: Arc<AtomicBool>,
}

impl Stream for Tracked {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(None) = next {
            self.ended.store(true, Ordering::Release);
        }
        next
    }
}
