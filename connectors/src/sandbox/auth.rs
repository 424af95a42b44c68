//! Bearer authentication and the per-token rate limit, as one middleware in front of the API:
//! it resolves the access token into a [`Caller`] (request extension), takes one unit from that
//! token's bucket, and stamps `X-RateLimit-*` headers on the answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::scopes::Scope;
use super::tokens::Caller;
use super::{lock, AppState};
use crate::sandbox::error::ApiError;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Outcome of taking one request from a bucket.
enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after_secs: u64 },
}

/// Token buckets keyed by access token: capacity and refill rate are both `per_sec`.
pub(crate) struct RateLimiter {
    per_sec: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_sec == 0` disables limiting.
    pub(crate) fn new(per_sec: u32) -> Self {
        RateLimiter {
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, token: &str) -> Decision {
        let rate = f64::from(self.per_sec);
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(token.to_owned()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed {
                remaining: bucket.tokens.floor() as u32,
            }
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil().max(1.0);
            Decision::Limited {
                retry_after_secs: wait as u64,
            }
        }
    }

    fn stamp(&self, headers: &mut HeaderMap, remaining: u32) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.per_sec));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    }
}

/// The `Bearer` credential of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware: 401 without a current access token, 429 over the rate limit; otherwise passes
/// the request on with a [`Caller`] extension.
pub(crate) async fn require_token(
    State(inner): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let generation = inner.faults.token_generation();
    let caller =
        bearer(req.headers()).and_then(|t| lock(&inner.tokens).authenticate(t, generation));
    let limiter = &inner.limiter;
    let Some(caller) = caller else {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""))],
            Json(json!({"error": "invalid_token", "message": "missing, expired or revoked access token"})),
        )
            .into_response();
        if limiter.per_sec > 0 {
            limiter.stamp(resp.headers_mut(), limiter.per_sec);
        }
        return resp;
    };
    if limiter.per_sec == 0 {
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    match limiter.take(&caller.token) {
        Decision::Limited { retry_after_secs } => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                [(RETRY_AFTER, HeaderValue::from(retry_after_secs))],
                Json(json!({"error": "rate_limited", "message": "too many requests; retry after the Retry-After delay"})),
            )
                .into_response();
            limiter.stamp(resp.headers_mut(), 0);
            resp
        }
        Decision::Allowed { remaining } => {
            req.extensions_mut().insert(caller);
            let mut resp = next.run(req).await;
            limiter.stamp(resp.headers_mut(), remaining);
            resp
        }
    }
}

impl Caller {
    /// 403 unless the token was granted `scope`.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!(
                "this call needs the `{}` scope; the token has `{}`",
                scope.name(),
                self.scopes
            ),
        ))
    }
}
