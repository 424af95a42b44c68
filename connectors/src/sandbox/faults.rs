//! Fault switches: make the sandbox fail the way real APIs fail — 5xx, slowness, hangs,
//! truncated JSON, tokens revoked from the other side — so retries, timeouts and
//! re-authentication can be tested. Set from tests through [`Faults`] or over HTTP at
//! `/_sandbox/faults`; applied by the [`inject`] middleware to `/shop`, `/crm` and `/api`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::AppState;

/// How long a hung call sleeps: longer than any client should wait.
const HANG: Duration = Duration::from_secs(3600);
/// Status codes of injected failures, used in turn.
const FAILURES: [StatusCode; 3] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
];
/// Largest response body the malformed fault will read (pages are far smaller).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Arrival times kept for [`Faults::request_times`]: the most recent ones only.
const REQUEST_LOG: usize = 100_000;

/// The live fault switches. All setters take effect on the next request.
#[derive(Debug, Default)]
pub struct Faults {
    fail_next: AtomicU32,
    fail_turn: AtomicU32,
    slow_ms: AtomicU64,
    hang_next: AtomicU32,
    malformed_next: AtomicU32,
    rate_limit_next: AtomicU32,
    retry_after_secs: AtomicU64,
    revoke_tokens: AtomicBool,
    generation: AtomicU64,
    requests: Mutex<VecDeque<Instant>>,
}

/// The switches' values, as read and written by `/_sandbox/faults`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// The next N API calls answer 500, 502, 503, 500, … in turn.
    pub fail_next: u32,
    /// Every API call is delayed this long before it is handled.
    pub slow_ms: u64,
    /// The next N API calls never answer (they sleep an hour).
    pub hang_next: u32,
    /// The next N API calls answer 200 with a truncated, invalid JSON body.
    pub malformed_next: u32,
    /// The next N API calls answer 429 with `Retry-After: <retry_after_secs>` (a 429 storm, as
    /// a provider whose quota another client spent would send).
    pub rate_limit_next: u32,
    /// The `Retry-After` of those 429s, in seconds (0 reads as unset, and means 1).
    pub retry_after_secs: u64,
    /// Setting it to true invalidates every token issued so far (access and refresh); tokens
    /// issued afterwards work. It reads back as true until set to false.
    pub revoke_tokens: bool,
}

/// A partial update of the switches: absent fields are left alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultPatch {
    fail_next: Option<u32>,
    slow_ms: Option<u64>,
    hang_next: Option<u32>,
    malformed_next: Option<u32>,
    rate_limit_next: Option<u32>,
    retry_after_secs: Option<u64>,
    revoke_tokens: Option<bool>,
}

/// Decrements a counter if it is above zero; true if it was.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Faults {
    /// The next `n` API calls answer 500, 502, 503 in turn (starting with 500).
    pub fn set_fail_next(&self, n: u32) {
        self.fail_turn.store(0, Ordering::SeqCst);
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Delay every API call by `ms` milliseconds (0 turns it off).
    pub fn set_slow_ms(&self, ms: u64) {
        self.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// The next `n` API calls never answer.
    pub fn set_hang_next(&self, n: u32) {
        self.hang_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` API calls answer 200 with truncated JSON.
    pub fn set_malformed_next(&self, n: u32) {
        self.malformed_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` API calls answer 429 with `Retry-After: <secs>` (0 sends 1).
    pub fn set_rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        self.retry_after_secs
            .store(retry_after_secs, Ordering::SeqCst);
        self.rate_limit_next.store(n, Ordering::SeqCst);
    }

    /// When each API call (`/shop`, `/crm`, `/api`) arrived, oldest first, including the ones a
    /// fault answered: what a provider would count against a quota. The most recent 100,000.
    pub fn request_times(&self) -> Vec<Instant> {
        super::lock(&self.requests).iter().copied().collect()
    }

    /// Forgets the arrival times so far.
    pub fn clear_request_times(&self) {
        super::lock(&self.requests).clear();
    }

    fn record_request(&self) {
        let mut log = super::lock(&self.requests);
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(Instant::now());
    }

    /// `true` invalidates every token issued so far (each call with `true` does it again).
    pub fn set_revoke_tokens(&self, on: bool) {
        if on {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.revoke_tokens.store(on, Ordering::SeqCst);
    }

    /// The current values.
    pub fn settings(&self) -> FaultSettings {
        FaultSettings {
            fail_next: self.fail_next.load(Ordering::SeqCst),
            slow_ms: self.slow_ms.load(Ordering::SeqCst),
            hang_next: self.hang_next.load(Ordering::SeqCst),
            malformed_next: self.malformed_next.load(Ordering::SeqCst),
            rate_limit_next: self.rate_limit_next.load(Ordering::SeqCst),
            retry_after_secs: self.retry_after_secs.load(Ordering::SeqCst),
            revoke_tokens: self.revoke_tokens.load(Ordering::SeqCst),
        }
    }

    /// Turns every switch off (tokens already invalidated stay invalid).
    pub fn clear(&self) {
        self.set_fail_next(0);
        self.set_slow_ms(0);
        self.set_hang_next(0);
        self.set_malformed_next(0);
        self.set_rate_limit_next(0, 0);
        self.set_revoke_tokens(false);
    }

    /// Tokens are valid only if issued in the current generation.
    pub(crate) fn token_generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn apply(&self, patch: FaultPatch) {
        if let Some(n) = patch.fail_next {
            self.set_fail_next(n);
        }
        if let Some(ms) = patch.slow_ms {
            self.set_slow_ms(ms);
        }
        if let Some(n) = patch.hang_next {
            self.set_hang_next(n);
        }
        if let Some(n) = patch.malformed_next {
            self.set_malformed_next(n);
        }
        if patch.rate_limit_next.is_some() || patch.retry_after_secs.is_some() {
            let n = patch
                .rate_limit_next
                .unwrap_or_else(|| self.rate_limit_next.load(Ordering::SeqCst));
            let secs = patch
                .retry_after_secs
                .unwrap_or_else(|| self.retry_after_secs.load(Ordering::SeqCst));
            self.set_rate_limit_next(n, secs);
        }
        if let Some(on) = patch.revoke_tokens {
            self.set_revoke_tokens(on);
        }
    }
}

/// Middleware applying the switches; order: slow, then hang, rate limit, fail, malformed.
pub(crate) async fn inject(State(inner): State<AppState>, req: Request, next: Next) -> Response {
    let faults = &inner.faults;
    faults.record_request();
    let slow = faults.slow_ms.load(Ordering::SeqCst);
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    if take(&faults.hang_next) {
        tokio::time::sleep(HANG).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if take(&faults.rate_limit_next) {
        let secs = faults.retry_after_secs.load(Ordering::SeqCst).max(1);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, HeaderValue::from(secs))],
            Json(json!({"error": "rate_limited", "message": "injected fault: slow down"})),
        )
            .into_response();
    }
    if take(&faults.fail_next) {
        let turn = faults.fail_turn.fetch_add(1, Ordering::SeqCst) as usize;
        let status = FAILURES[turn % FAILURES.len()];
        return (
            status,
            Json(json!({"error": "server_error", "message": "injected fault"})),
        )
            .into_response();
    }
    if take(&faults.malformed_next) {
        let resp = next.run(req).await;
        let body = to_bytes(resp.into_body(), MAX_BODY)
            .await
            .unwrap_or_default();
        return malformed(&body);
    }
    next.run(req).await
}

/// A 200 whose body is a proper prefix of a JSON document: never valid JSON.
fn malformed(body: &[u8]) -> Response {
    let cut = if body.len() >= 2 {
        &body[..body.len() / 2]
    } else {
        &b"{\"data\":["[..]
    };
    let mut resp = Response::new(Body::from(Bytes::copy_from_slice(cut)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /_sandbox/faults`.
pub(crate) async fn get_faults(State(inner): State<AppState>) -> Json<FaultSettings> {
    Json(inner.faults.settings())
}

/// `POST /_sandbox/faults` with any subset of the fields; answers the new values.
pub(crate) async fn set_faults(
    State(inner): State<AppState>,
    body: Bytes,
) -> Result<Json<FaultSettings>, ApiError> {
    let patch: FaultPatch = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_faults",
            e.to_string(),
        )
    })?;
    inner.faults.apply(patch);
    Ok(Json(inner.faults.settings()))
}
