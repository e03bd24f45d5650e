//! Text the server cannot store: a NUL character, and bytes that are not
//! UTF-8.
//!
//! PostgreSQL's `text` and `jsonb` refuse a NUL, so a NUL that reached a
//! query (an idempotency key, an SQL text, a table name inside a payload)
//! would fail there as a 500. poem decodes a query string lossily, so a
//! dataset named `%ff%fe` would be stored as replacement characters. Both
//! are refused at the edge instead, with a 400 that names the parameter,
//! the header or the JSON field.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, Result, http::header};
use serde_json::Value;

use crate::problem::ApiError;

/// The headers whose values the server reads as text.
const READ_HEADERS: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION];

/// Refuses a request whose query string or read headers hold a NUL or
/// bytes that are not UTF-8 (`EndpointExt::around`).
pub async fn refuse_unstorable<E: Endpoint>(ep: Arc<E>, req: Request) -> Result<Response> {
    if let Some(problem) = query_problem(req.uri().query().unwrap_or("")) {
        return Ok(ApiError::BadRequest(problem).into_problem_response(None));
    }
    for name in READ_HEADERS {
        for value in req.headers().get_all(&name) {
            if std::str::from_utf8(value.as_bytes()).is_err() {
                return Ok(
                    ApiError::BadRequest(format!("the {name} header is not UTF-8 text"))
                        .into_problem_response(None),
                );
            }
        }
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Why a query string cannot be taken as text, naming the parameter; None
/// when every name and value decodes to UTF-8 without a NUL.
pub fn query_problem(query: &str) -> Option<String> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Ok(name_text) = String::from_utf8(percent_decode(name)) else {
            return Some(format!(
                "a query parameter name is not UTF-8 text: {name:?}"
            ));
        };
        if name_text.contains('\0') {
            return Some(format!(
                "a query parameter name contains a NUL character: {name:?}"
            ));
        }
        match String::from_utf8(percent_decode(value)) {
            Err(_) => {
                return Some(format!("query parameter `{name_text}` is not UTF-8 text"));
            }
            Ok(text) if text.contains('\0') => {
                return Some(format!(
                    "query parameter `{name_text}` contains a NUL character"
                ));
            }
            Ok(_) => {}
        }
    }
    None
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space,
/// `%XX` a byte; a `%` not followed by two hex digits stays as it is, as
/// poem reads it.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Where a JSON body holds a NUL character, as a JSON pointer to the
/// field (a key with a NUL is named by its object's pointer); None when it
/// holds none. `raw` is the body: only a body that spells `\u0000` can hold
/// one (JSON does not allow a raw NUL in a string), so the common case is a
/// scan of the bytes and no parse.
pub fn json_nul_field(raw: &[u8]) -> Option<String> {
    memchr::memmem::find(raw, b"\\u0000")?;
    let value: Value = serde_json::from_slice(raw).ok()?;
    nul_in(&value, &mut String::new())
}

fn nul_in(value: &Value, pointer: &mut String) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => Some(pointer_text(pointer)),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = pointer.len();
            pointer.push_str(&format!("/{i}"));
            let found = nul_in(item, pointer);
            pointer.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(pointer_text(pointer));
            }
            let len = pointer.len();
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let found = nul_in(item, pointer);
            pointer.truncate(len);
            found
        }),
        _ => None,
    }
}

fn pointer_text(pointer: &str) -> String {
    if pointer.is_empty() {
        "the body".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_checked_per_parameter() {
        assert_eq!(query_problem("name=prices&null=NA"), None);
        assert_eq!(query_problem("name=a%2Bb+c&x=%zz&y=%"), None);
        assert_eq!(query_problem("name=caf%C3%A9"), None);
        assert_eq!(
            query_problem("header=true&name=%ff%fe"),
            Some("query parameter `name` is not UTF-8 text".to_owned())
        );
        assert_eq!(
            query_problem("name=a%00b"),
            Some("query parameter `name` contains a NUL character".to_owned())
        );
        assert!(query_problem("na%00me=1").is_some());
    }

    #[test]
    fn a_nul_in_json_is_named_by_its_pointer() {
        assert_eq!(json_nul_field(br#"{"a": "b"}"#), None);
        // An escaped backslash before `u0000` is not a NUL.
        assert_eq!(json_nul_field(br#"{"a": "\\u0000"}"#), None);
        assert_eq!(
            json_nul_field(br#"{"idempotency_key": "k\u0000z"}"#),
            Some("`/idempotency_key`".to_owned())
        );
        assert_eq!(
            json_nul_field(br#"{"inputs": [{"table": "ok"}, {"table": "t\u0000"}]}"#),
            Some("`/inputs/1/table`".to_owned())
        );
        assert_eq!(
            json_nul_field(br#"{"analysis": {"co\u0000l": 1}}"#),
            Some("`/analysis`".to_owned())
        );
    }
}
