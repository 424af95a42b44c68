//! `Idempotency-Key` for writes: the first successful answer to a key is stored with a
//! fingerprint of the request; the same key and request replays it, the same key and another
//! request is refused. Refused writes (4xx) are not stored, so a corrected request may reuse the
//! key — as at Stripe. Keys are scoped to the OAuth client, like an account-scoped key.

use std::collections::HashMap;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{lock, Inner};

const HEADER: &str = "idempotency-key";

struct Entry {
    fingerprint: [u8; 32],
    status: StatusCode,
    body: String,
}

/// Stored answers by (client id, key).
#[derive(Default)]
pub(crate) struct IdempotencyStore {
    entries: HashMap<(String, String), Entry>,
}

/// The request's `Idempotency-Key`, if any: 1 to 255 visible ASCII characters.
pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    match text {
        Some(k) => Ok(Some(k.to_owned())),
        None => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// What identifies "the same request": method, path and body. A JSON body is compared by
/// value, so whitespace and key order do not matter.
fn fingerprint(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => h.update(value.to_string().as_bytes()),
        Err(_) => h.update(body),
    }
    h.finalize().into()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// Runs `op` (a write answering status and JSON body) at most once per key. The store stays
/// locked while `op` runs, so two concurrent requests with one key cannot both write.
pub(crate) fn run(
    inner: &Inner,
    client_id: &str,
    key: Option<String>,
    request: (&str, &str, &[u8]),
    op: impl FnOnce() -> (StatusCode, String),
) -> Response {
    let Some(key) = key else {
        let (status, body) = op();
        return json_response(status, body);
    };
    let (method, path, body) = request;
    let print = fingerprint(method, path, body);
    let mut store = lock(&inner.idempotency);
    let slot = (client_id.to_owned(), key);
    if let Some(entry) = store.entries.get(&slot) {
        if entry.fingerprint != print {
            let message = format!(
                "Idempotency-Key `{}` was already used with a different request; use a new key",
                slot.1
            );
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            )
            .into_response();
        }
        let mut resp = json_response(entry.status, entry.body.clone());
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return resp;
    }
    let (status, body) = op();
    if status.is_success() {
        store.entries.insert(
            slot,
            Entry {
                fingerprint: print,
                status,
                body: body.clone(),
            },
        );
    }
    json_response(status, body)
}
