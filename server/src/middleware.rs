//! HTTP middleware of our own: the cross-site request guard and the security headers.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the CSRF guard compares an `Origin` against.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    /// `scheme://host[:port]` of the public URL.
    pub public_origin: Arc<str>,
}

impl OriginPolicy {
    pub fn new(public_url: &str) -> Self {
        let origin = match public_url.split_once("://") {
            Some((scheme, rest)) => {
                let authority = rest.split('/').next().unwrap_or(rest);
                format!(
                    "{}://{}",
                    scheme.to_ascii_lowercase(),
                    authority.to_ascii_lowercase()
                )
            }
            None => public_url.to_ascii_lowercase(),
        };
        OriginPolicy {
            public_origin: origin.into(),
        }
    }

    /// An origin is ours when it is the public origin, or names the host the request was sent to
    /// (so that a local address and its alias both work in development).
    fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        if origin == *self.public_origin {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, a)| a);
        matches!((authority, host), (Some(a), Some(h)) if a == h.to_ascii_lowercase())
    }
}

/// Refuses state-changing requests that a browser marks as cross-site: a `Sec-Fetch-Site` other
/// than same-origin (or none, for a typed URL), or an `Origin` that is not ours. Requests that
/// carry neither header do not come from a browser's cross-site form or script, so they pass.
/// Safe methods never change state, so they are not checked.
pub async fn csrf_guard(State(policy): State<OriginPolicy>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if let Some(reason) = cross_site_reason(&policy, req.headers()) {
        tracing::warn!(reason, path = %req.uri().path(), "refused a cross-site request");
        return refused();
    }
    next.run(req).await
}

fn cross_site_reason(policy: &OriginPolicy, headers: &HeaderMap) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Some("sec-fetch-site is not same-origin");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let ours = origin.to_str().is_ok_and(|o| policy.allows(o, host));
        if !ours {
            return Some("origin is not this site");
        }
    }
    None
}

fn refused() -> Response {
    let body = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Request refused · Patchbay</title></head>\
        <body><h1>Request refused</h1><p>This request came from another site, so Patchbay did not act on it. \
        Go back to Patchbay and try again from there.</p><p><a href=\"/\">Open Patchbay</a></p></body></html>";
    (
        StatusCode::FORBIDDEN,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        Body::from(body),
    )
        .into_response()
}

/// Headers every response carries. Pages set their own CSP (with a nonce); everything else gets
/// the nonce-less policy.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(value) = HeaderValue::from_str(&app::security::content_security_policy(None)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origins() {
        let policy = OriginPolicy::new("https://market.example.com/");
        let ok = |h| cross_site_reason(&policy, &headers(h)).is_none();
        assert!(ok(&[("origin", "https://market.example.com")]));
        assert!(ok(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[]));
        assert!(!ok(&[("origin", "https://evil.example")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        assert!(!ok(&[("origin", "https://market.example.com.evil.test")]));
    }
}
