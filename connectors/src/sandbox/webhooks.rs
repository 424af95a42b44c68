//! Webhooks out: subscriptions registered over the API, and signed event deliveries sent from
//! background tasks (never blocking the write that caused them), retried with backoff.
//!
//! Signature: `X-Sandbox-Signature: t=<unix secs>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
//! (Stripe's scheme under the sandbox's own header name); `X-Sandbox-Delivery` carries the event
//! id, which stays the same across retries so receivers can dedupe.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::error::ApiError;
use super::records::{now_ms, rfc3339, StreamKind};
use super::scopes::Scopes;
use super::tokens::Caller;
use super::{read, write, AppState};
use crate::webhooks::{sign, SignatureScheme};

/// Name of the header carrying the delivery's signature.
pub const SIGNATURE_HEADER: &str = "x-sandbox-signature";
/// Name of the header carrying the event id (the same on every retry of a delivery).
pub const DELIVERY_HEADER: &str = "x-sandbox-delivery";
const RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

struct Subscription {
    id: String,
    url: String,
    /// Host of `url`, for logs (the path may hold a secret).
    host: String,
    client_id: String,
    /// Events are sent only for streams these scopes can read.
    scopes: Scopes,
}

/// Subscriptions and the machinery to deliver to them.
pub(crate) struct Webhooks {
    secret: Arc<str>,
    subscriptions: RwLock<Vec<Subscription>>,
    client: reqwest::Client,
    scheme: SignatureScheme,
    /// Runtime to deliver from when an event is raised outside one (e.g. `Sandbox::touch` in a
    /// synchronous test helper).
    runtime: OnceLock<Handle>,
}

/// How the sandbox signs webhooks: Stripe's scheme under its own header name, for
/// [`crate::webhooks::verify`].
pub fn signature_scheme() -> SignatureScheme {
    SignatureScheme::Stripe {
        header: SIGNATURE_HEADER.to_owned(),
        tolerance_secs: 300,
    }
}

impl Webhooks {
    pub(crate) fn new(secret: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Webhooks {
            secret: secret.into(),
            subscriptions: RwLock::new(Vec::new()),
            client,
            scheme: signature_scheme(),
            runtime: OnceLock::new(),
        }
    }

    /// Remembers the current tokio runtime, if any, for deliveries raised outside one.
    pub(crate) fn remember_runtime(&self) {
        if let Ok(handle) = Handle::try_current() {
            // Already set by an earlier router: either runtime will do.
            let _ = self.runtime.set(handle);
        }
    }

    /// Sends `<singular>.<action>` for `record` to every subscription allowed to see it.
    pub(crate) fn emit(&self, kind: StreamKind, action: &str, record: Value) {
        let targets: Vec<(String, String)> = read(&self.subscriptions)
            .iter()
            .filter(|s| s.scopes.contains(kind.read_scope()))
            .map(|s| (s.url.clone(), s.host.clone()))
            .collect();
        if targets.is_empty() {
            return;
        }
        let Some(runtime) = Handle::try_current()
            .ok()
            .or_else(|| self.runtime.get().cloned())
        else {
            tracing::warn!("sandbox webhook dropped: no tokio runtime to deliver from");
            return;
        };
        let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
        let event = json!({
            "id": event_id,
            "type": format!("{}.{action}", kind.singular()),
            "created_at": rfc3339(now_ms()),
            "data": record,
        });
        let body = Bytes::from(event.to_string());
        for (url, host) in targets {
            let delivery = Delivery {
                client: self.client.clone(),
                scheme: self.scheme.clone(),
                secret: self.secret.clone(),
                url,
                host,
                event_id: event_id.clone(),
                body: body.clone(),
            };
            runtime.spawn(delivery.run());
        }
    }
}

/// One event to one subscription.
struct Delivery {
    client: reqwest::Client,
    scheme: SignatureScheme,
    secret: Arc<str>,
    url: String,
    host: String,
    event_id: String,
    body: Bytes,
}

impl Delivery {
    async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            // Signed afresh for each attempt, so the timestamp stays within tolerance.
            let (name, value) = sign(
                &self.scheme,
                self.secret.as_bytes(),
                &self.body,
                now_ms().div_euclid(1000),
            );
            let result = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(name, value)
                .header(DELIVERY_HEADER, &self.event_id)
                .body(self.body.clone())
                .send()
                .await;
            match result {
                Ok(resp) if resp.status().is_success() => return,
                Ok(resp) => {
                    tracing::warn!(event = %self.event_id, host = %self.host, attempt, status = %resp.status(), "sandbox webhook refused");
                }
                Err(e) => {
                    tracing::warn!(event = %self.event_id, host = %self.host, attempt, error = %e.without_url(), "sandbox webhook failed");
                }
            }
        }
        tracing::warn!(event = %self.event_id, host = %self.host, "sandbox webhook given up after retries");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscription {
    url: String,
}

/// `POST /webhooks/subscriptions` `{"url"}` → 201 `{"id","url","secret"}`.
pub(crate) async fn subscribe(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewSubscription = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_subscription",
            e.to_string(),
        )
    })?;
    let parsed = url::Url::parse(&new.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_subscription",
                "url must be an absolute http(s) URL",
            )
        })?;
    // The sandbox is a local tool: it delivers to this machine only, so that anyone who can get
    // a sandbox token cannot make it call other hosts (cloud metadata, a private network).
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_subscription",
            "the sandbox delivers webhooks to this machine only: use a 127.0.0.1 or localhost URL",
        ));
    }
    let id = format!("whs_{}", uuid::Uuid::new_v4().simple());
    let hooks = &inner.webhooks;
    write(&hooks.subscriptions).push(Subscription {
        id: id.clone(),
        url: new.url.clone(),
        host: parsed.host_str().unwrap_or_default().to_owned(),
        client_id: caller.client_id.clone(),
        scopes: caller.scopes,
    });
    let body = json!({"id": id, "url": new.url, "secret": &*hooks.secret});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /webhooks/subscriptions/{id}` → 204, or 404 if the client has no such subscription.
pub(crate) async fn unsubscribe(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut subs = write(&inner.webhooks.subscriptions);
    let before = subs.len();
    subs.retain(|s| !(s.id == id && s.client_id == caller.client_id));
    if subs.len() == before {
        return Err(ApiError::not_found(format!(
            "no webhook subscription `{id}`"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed with Python's hmac module.
        let (name, value) = sign(&signature_scheme(), b"secret", b"{}", 1_700_000_000);
        assert_eq!(name.as_str(), "x-sandbox-signature");
        assert_eq!(
            value,
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
