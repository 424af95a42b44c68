//! Whole marketplace pages for visitors who are not signed in, kept until the catalog changes.
//!
//! Such a page is the same for every anonymous visitor except for its CSP nonce, and the catalog
//! changes rarely (approvals, archiving, featuring — each bumps the catalog generation; see
//! `app::domain::listings::cache`). So the first anonymous request for a URL renders it and the
//! next ones get the stored HTML with a fresh nonce written in. A request that carries a session
//! cookie, any method but GET, and any answer but a plain 200 HTML page without cookies pass
//! through untouched: nothing personal is ever stored.

use crate::router::SESSION_COOKIE;
use app::domain::listings::cache::CatalogCache;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// At most this many pages; past it the cache starts over.
const MAX_PAGES: usize = 512;
/// Larger pages are not stored.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The stored pages, and where the catalog generation comes from.
#[derive(Clone)]
pub struct PageCache {
    pool: PgPool,
    catalog: Arc<CatalogCache>,
    pages: Arc<Mutex<HashMap<String, Stored>>>,
}

struct Stored {
    generation: i64,
    headers: HeaderMap,
    body: String,
    nonce: String,
}

impl PageCache {
    pub fn new(pool: PgPool, catalog: Arc<CatalogCache>) -> Self {
        PageCache {
            pool,
            catalog,
            pages: Arc::default(),
        }
    }

    fn get(&self, key: &str, generation: i64) -> Option<Response> {
        let pages = self.pages.lock().ok()?;
        let stored = pages.get(key).filter(|s| s.generation == generation)?;
        let nonce = Uuid::new_v4().simple().to_string();
        let mut headers = stored.headers.clone();
        let policy = headers
            .get(header::CONTENT_SECURITY_POLICY)?
            .to_str()
            .ok()?
            .replace(&stored.nonce, &nonce);
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&policy).ok()?,
        );
        let body = stored.body.replace(&stored.nonce, &nonce);
        let mut response = Response::new(Body::from(body));
        *response.headers_mut() = headers;
        Some(response)
    }

    fn put(&self, key: String, stored: Stored) {
        if let Ok(mut pages) = self.pages.lock() {
            if pages.len() >= MAX_PAGES {
                pages.clear();
            }
            pages.insert(key, stored);
        }
    }
}

/// Whether a request may be answered from, and stored in, the cache.
fn cacheable(req: &Request) -> bool {
    let signed_in = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(SESSION_COOKIE));
    req.method() == Method::GET && req.uri().path().starts_with("/marketplace") && !signed_in
}

/// The nonce of a page's Content-Security-Policy (`'nonce-…'`).
fn nonce_of(headers: &HeaderMap) -> Option<String> {
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)?
        .to_str()
        .ok()?;
    let start = policy.find("'nonce-")? + "'nonce-".len();
    let len = policy[start..].find('\'')?;
    let nonce = &policy[start..start + len];
    (nonce.len() >= 16).then(|| nonce.to_owned())
}

pub async fn page_cache(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
    if !cacheable(&req) {
        return next.run(req).await;
    }
    let Ok(generation) = cache.catalog.generation(&cache.pool).await else {
        return next.run(req).await;
    };
    let key = req.uri().to_string();
    if let Some(hit) = cache.get(&key, generation) {
        return hit;
    }
    let response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if response.status() != StatusCode::OK
        || !is_html
        || response.headers().contains_key(header::SET_COOKIE)
    {
        return response;
    }
    let Some(nonce) = nonce_of(response.headers()) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let bytes: Bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(error = %err, "reading a page to cache");
            let mut failed = Response::new(Body::from("Something went wrong on our side."));
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return failed;
        }
    };
    if let Ok(text) = std::str::from_utf8(&bytes) {
        cache.put(
            key,
            Stored {
                generation,
                headers: parts.headers.clone(),
                body: text.to_owned(),
                nonce,
            },
        );
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::nonce_of;
    use axum::http::{header, HeaderMap, HeaderValue};

    #[test]
    fn the_nonce_is_read_from_the_policy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "script-src 'self' 'nonce-AbCdEfGh12345678xyz' 'wasm-unsafe-eval'",
            ),
        );
        assert_eq!(nonce_of(&headers).as_deref(), Some("AbCdEfGh12345678xyz"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        assert_eq!(nonce_of(&headers), None);
    }
}
