//! The bundled sandbox app: a fake but honest third-party SaaS that Patchbay's demo and tests
//! connect to, so that OAuth, paging, webhooks, rate limits and failures can be exercised
//! offline. Two apps share one OAuth server: **Sandbox Shop** (streams `customers`, `orders`)
//! and **Sandbox CRM** (streams `contacts`, `companies`). All state lives in memory.
//!
//! # HTTP surface
//!
//! Provider spec files are written against this surface; keep it stable.
//!
//! ## OAuth 2.0 (authorization code, PKCE S256 required)
//! - `GET /oauth/authorize?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256`
//!   → HTML consent page "`<client name>` wants to access your Sandbox account", listing the scopes
//!   in plain words, with a form POSTing the same parameters plus `decision=approve|deny` to
//!   `POST /oauth/authorize`. An unknown `client_id` or a `redirect_uri` that is not exactly one
//!   of the client's → 400 HTML page, never a redirect. Otherwise errors redirect to
//!   `redirect_uri?error=…&error_description=…&state=…`: missing or `plain` PKCE →
//!   `invalid_request`; unknown or empty scope → `invalid_scope`; `response_type` other than
//!   `code` → `unsupported_response_type`. Approve → 302 to `redirect_uri?code=…&state=…`;
//!   deny → `error=access_denied`. The sandbox sets no cookies (there is no login); a consent
//!   cookie, should one ever be added, must be named `sandbox_consent`.
//! - Scopes: `shop.read shop.write crm.read crm.write` (space separated).
//! - `POST /oauth/token` (form; client auth by HTTP Basic *or* `client_id` + `client_secret` in
//!   the body): `grant_type=authorization_code` with `code`, `redirect_uri`, `code_verifier`
//!   (codes are single use — a second use answers `invalid_grant` and revokes the tokens issued
//!   from that code — and expire after 60 s); `grant_type=refresh_token` with `refresh_token`
//!   (and optionally a narrower `scope`): rotation — a new refresh token is returned and the old
//!   one stops working; presenting a rotated refresh token answers `invalid_grant` and revokes
//!   the whole token family (reuse detection, as OAuth 2.0 Security BCP §4.14 suggests).
//!   Success: `{"access_token","token_type":"Bearer","expires_in","refresh_token","scope"}`
//!   with `Cache-Control: no-store`; errors (RFC 6749 §5.2): `{"error","error_description"}`
//!   with 400, or 401 + `WWW-Authenticate: Basic` for `invalid_client`. Every call counts in
//!   [`Sandbox::token_requests`].
//! - `POST /oauth/revoke` (RFC 7009; form `token`, client auth) → 200 whether or not the token
//!   exists; revokes the access or refresh token and its whole family. Bad client credentials →
//!   401 `invalid_client`; a missing `token` → 400 `invalid_request`.
//!
//! ## API (Bearer access token)
//! Missing, expired or revoked token → 401 `{"error":"invalid_token"}` with
//! `WWW-Authenticate: Bearer error="invalid_token"`; missing scope → 403
//! `{"error":"insufficient_scope"}`. Every error body is `{"error": code, "message": text}`.
//! - `GET /api/me` (any scope) → `{"account_id":"acct_demo","account_name":"Sandbox Demo Co","email":"owner@sandbox.test"}`.
//! - `GET /shop/customers`, `/shop/orders` (`shop.read`), `/crm/contacts`, `/crm/companies`
//!   (`crm.read`); query `limit` (default 50, values above 200 are capped at 200, 0 or
//!   non-numbers → 400), `cursor` (opaque, from the previous page), `updated_since` (RFC 3339,
//!   inclusive: `updated_at >= updated_since`). Response `{"data":[…],"next_cursor":"…"|null}`.
//!   The first page fixes a snapshot carried in the cursor: paging returns every record that
//!   existed at the snapshot exactly once, in the version current at the snapshot, even if
//!   records change meanwhile; later changes show up in the next `updated_since` read.
//!   Records (timestamps RFC 3339 UTC with milliseconds, `2024-01-01T00:05:00.000Z`, so they
//!   also sort as strings):
//!   customers `{id:"cus_000001", email, first_name, last_name, created_at, updated_at}`,
//!   orders `{id:"ord_000001", customer_id, total_cents, currency:"USD", status, created_at, updated_at}`,
//!   contacts `{id:"con_000001", email, name, company_id, phone, created_at, updated_at}`,
//!   companies `{id:"com_000001", name, domain, created_at, updated_at}`.
//! - `POST /shop/customers`, `/crm/contacts`, `/crm/companies` (write scope) → 201 + record;
//!   `PATCH /shop/customers/{id}` (etc.) → 200 + record, 404 for an unknown id;
//!   `DELETE /shop/customers/{id}` (etc.) → 204, 404 for an unknown id (the record leaves later
//!   snapshots; pages of a snapshot taken before still hold it). JSON body of
//!   writable fields; unknown or read-only fields, wrong types and missing required fields →
//!   422; invalid JSON → 400. Orders are read-only (405). Writable fields: customers `email`
//!   (required), `first_name`, `last_name`; contacts `email` (required), `name`, `company_id`
//!   (an existing company or null), `phone`; companies `name` (required), `domain`.
//!   `Idempotency-Key` header (scoped to the OAuth client): the same key with the same request
//!   (JSON compared by value) replays the original status and body with
//!   `Idempotent-Replayed: true`; the same key with a different request → 422. Refused writes
//!   are not remembered, so a corrected request may reuse its key.
//! - `POST /webhooks/subscriptions` `{"url"}` → 201 `{"id","url","secret"}`;
//!   `DELETE /webhooks/subscriptions/{id}` → 204 (404 if unknown). On every change (API write,
//!   [`Sandbox::touch`], [`Sandbox::insert`]) each subscription whose token could read the
//!   stream gets `POST <url>` with `{"id":"evt_…","type":"contact.updated"|"order.created"|…,
//!   "created_at","data":{record}}`, headers `X-Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//!   and `X-Sandbox-Delivery: <event id>`; sent from a background task, retried up to 3 times
//!   (after 250 ms, 500 ms, 1 s) on a network error or a non-2xx answer. See
//!   [`signature_scheme`] for verifying them with [`crate::webhooks::verify`].
//! - Rate limit: a token bucket per access token (`rate_limit_per_sec`, burst the same). Over
//!   the limit → 429 `{"error":"rate_limited"}` with `Retry-After: <secs>`. Every response to an
//!   API call carries `X-RateLimit-Limit` and `X-RateLimit-Remaining` (omitted when unlimited,
//!   and on injected faults, which play the part of a failing proxy in front of the API).
//!
//! ## The apps' own pages
//! `GET /app`, `GET /app/{stream}` (the 25 most recently changed records), `GET /app/{stream}/{id}`
//! (an edit form; orders are read-only) and `POST /app/{stream}/{id}` / `…/delete`: a person
//! changing data in the app. Each change fires webhooks like an API write. No login: the sandbox
//! is a local demo tool; cross-site posts are refused.
//!
//! ## Fault switches
//! With `SandboxConfig::fault_api` on, `GET /_sandbox/faults` reads and `POST /_sandbox/faults`
//! sets (JSON, any subset of the fields) the switches of [`Faults`]: `fail_next`, `slow_ms`, `hang_next`, `malformed_next`,
//! `rate_limit_next` (with `retry_after_secs`),
//! `revoke_tokens`. They apply to `/shop`, `/crm` and `/api`, not to `/oauth` (except
//! `revoke_tokens`) nor to `/webhooks`.

mod api;
mod app_pages;
mod auth;
mod consent_page;
mod cursor;
mod error;
mod faults;
mod idempotency;
mod oauth;
mod records;
mod scopes;
mod seed;
mod store;
mod token_endpoint;
mod tokens;
mod webhooks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::routing::{get, patch, post};
use axum::Router;

pub use faults::{FaultSettings, Faults};
pub use webhooks::{signature_scheme, DELIVERY_HEADER, SIGNATURE_HEADER};

use records::StreamKind;

/// How the sandbox is set up: its OAuth clients, how much data it starts with, and its limits.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Registered OAuth clients.
    pub clients: Vec<SandboxClient>,
    /// Records per stream at start.
    pub seed: SeedSizes,
    /// Lifetime of access tokens (`expires_in`).
    pub access_token_ttl: Duration,
    /// Requests per second per access token (token bucket, burst the same); 0 = unlimited.
    pub rate_limit_per_sec: u32,
    /// Secret that signs outgoing webhooks.
    pub webhook_secret: String,
    /// Serve `/_sandbox/faults`, which lets anyone who can reach the sandbox break it on
    /// purpose. Off by default; tests turn it on (and can always use [`Sandbox::faults`]).
    pub fault_api: bool,
}

impl Default for SandboxConfig {
    /// No clients, 25 records per stream, one-hour tokens, 50 requests per second.
    fn default() -> Self {
        SandboxConfig {
            clients: Vec::new(),
            seed: SeedSizes::default(),
            access_token_ttl: Duration::from_secs(3600),
            rate_limit_per_sec: 50,
            webhook_secret: "whsec_sandbox_demo".to_owned(),
            fault_api: false,
        }
    }
}

/// An OAuth client registered with the sandbox (the "app" a user grants access to).
#[derive(Debug, Clone)]
pub struct SandboxClient {
    /// The public client identifier.
    pub client_id: String,
    /// The confidential client secret.
    pub client_secret: String,
    /// Redirect URIs; `redirect_uri` must equal one of these exactly.
    pub redirect_uris: Vec<String>,
    /// Shown on the consent page ("`<name>` wants to access your Sandbox account").
    pub name: String,
}

/// Number of records each stream holds when the sandbox starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSizes {
    /// Sandbox Shop customers.
    pub customers: usize,
    /// Sandbox Shop orders.
    pub orders: usize,
    /// Sandbox CRM contacts.
    pub contacts: usize,
    /// Sandbox CRM companies.
    pub companies: usize,
}

impl SeedSizes {
    /// The same number of records in every stream.
    pub fn uniform(n: usize) -> Self {
        SeedSizes {
            customers: n,
            orders: n,
            contacts: n,
            companies: n,
        }
    }
}

impl Default for SeedSizes {
    /// 25 records per stream.
    fn default() -> Self {
        SeedSizes::uniform(25)
    }
}

/// The sandbox app: cheap to clone, every clone shares the same state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

/// Shared state behind every handler.
pub(crate) struct Inner {
    pub(crate) config: SandboxConfig,
    pub(crate) store: RwLock<store::Store>,
    pub(crate) tokens: Mutex<tokens::TokenStore>,
    pub(crate) faults: Faults,
    pub(crate) token_requests: AtomicU64,
    pub(crate) limiter: auth::RateLimiter,
    pub(crate) idempotency: Mutex<idempotency::IdempotencyStore>,
    pub(crate) webhooks: webhooks::Webhooks,
}

type AppState = Arc<Inner>;

impl Inner {
    /// Finds a registered client by id.
    pub(crate) fn client(&self, client_id: &str) -> Option<&SandboxClient> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the state consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Sandbox {
    /// Builds the sandbox and seeds its streams (deterministic data).
    pub fn new(config: SandboxConfig) -> Self {
        let store = store::Store::seeded(&config.seed);
        let inner = Inner {
            limiter: auth::RateLimiter::new(config.rate_limit_per_sec),
            webhooks: webhooks::Webhooks::new(config.webhook_secret.clone()),
            store: RwLock::new(store),
            tokens: Mutex::new(tokens::TokenStore::default()),
            faults: Faults::default(),
            token_requests: AtomicU64::new(0),
            idempotency: Mutex::new(idempotency::IdempotencyStore::default()),
            config,
        };
        Sandbox {
            inner: Arc::new(inner),
        }
    }

    /// The sandbox's HTTP surface (see the module documentation).
    pub fn router(&self) -> Router {
        self.inner.webhooks.remember_runtime();
        let state = self.inner.clone();
        let faulty = Router::new()
            .route("/api/me", get(api::me))
            .route("/shop/{stream}", get(api::list_shop).post(api::create_shop))
            .route(
                "/shop/{stream}/{id}",
                patch(api::update_shop).delete(api::delete_shop),
            )
            .route("/crm/{stream}", get(api::list_crm).post(api::create_crm))
            .route(
                "/crm/{stream}/{id}",
                patch(api::update_crm).delete(api::delete_crm),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                faults::inject,
            ));
        let hooks = Router::new()
            .route("/webhooks/subscriptions", post(webhooks::subscribe))
            .route(
                "/webhooks/subscriptions/{id}",
                axum::routing::delete(webhooks::unsubscribe),
            )
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ));
        let pages = Router::new()
            .route("/app", get(app_pages::home))
            .route("/app/{stream}", get(app_pages::list))
            .route(
                "/app/{stream}/{id}",
                get(app_pages::edit).post(app_pages::save),
            )
            .route("/app/{stream}/{id}/delete", post(app_pages::delete));
        let router = Router::new()
            .route(
                "/oauth/authorize",
                get(oauth::authorize_page).post(oauth::authorize_decision),
            )
            .route("/oauth/token", post(token_endpoint::token))
            .route("/oauth/revoke", post(token_endpoint::revoke))
            .merge(faulty)
            .merge(hooks)
            .merge(pages);
        let router = if state.config.fault_api {
            router.route(
                "/_sandbox/faults",
                get(faults::get_faults).post(faults::set_faults),
            )
        } else {
            router
        };
        router.with_state(state)
    }

    /// Binds 127.0.0.1 on a free port and serves the sandbox in a tokio task.
    pub async fn spawn(config: SandboxConfig) -> std::io::Result<SandboxHandle> {
        Self::spawn_at(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` and serves the sandbox in a tokio task.
    pub async fn spawn_at(
        config: SandboxConfig,
        addr: SocketAddr,
    ) -> std::io::Result<SandboxHandle> {
        let sandbox = Sandbox::new(config);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = sandbox.router();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox server stopped");
            }
        });
        Ok(SandboxHandle {
            base_url: format!("http://{local}"),
            sandbox,
            task,
        })
    }

    /// The fault switches; changes take effect on the next request.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// How many times `POST /oauth/token` was called (successful or not).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Revokes every authorization code, access token and refresh token issued so far.
    pub fn revoke_all_tokens(&self) {
        lock(&self.inner.tokens).revoke_all();
    }

    /// Changes a record (new version, fresh `updated_at`) as if a user edited it in the app, and
    /// fires webhooks. False if the stream or the id is unknown.
    pub fn touch(&self, stream: &str, id: &str) -> bool {
        let Some(kind) = StreamKind::parse(stream) else {
            return false;
        };
        let record = write(&self.inner.store).touch(kind, id, records::now_ms());
        match record {
            Some(record) => {
                self.inner.webhooks.emit(kind, "updated", record);
                true
            }
            None => false,
        }
    }

    /// Inserts a record as if a user created it in the app, and fires webhooks. `data` holds
    /// writable fields (see the module docs); missing ones get realistic fake values.
    ///
    /// # Panics
    /// If the stream is unknown or `data` is not a valid record for it — this is a test helper,
    /// and a wrong call is a bug in the test.
    pub fn insert(&self, stream: &str, data: serde_json::Value) -> String {
        let kind = StreamKind::parse(stream)
            .unwrap_or_else(|| panic!("Sandbox::insert: unknown stream `{stream}`"));
        let fields = records::validate(kind, &data, records::Mode::Insert)
            .unwrap_or_else(|e| panic!("Sandbox::insert into `{stream}`: {e}"));
        let record = write(&self.inner.store)
            .create(kind, fields, records::now_ms(), store::Fill::Fake)
            .unwrap_or_else(|e| panic!("Sandbox::insert into `{stream}`: {e}"));
        let id = record
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        self.inner.webhooks.emit(kind, "created", record);
        id
    }

    /// Deletes a record as if a user removed it in the app, and fires webhooks. False if the
    /// stream or the id is unknown.
    pub fn delete(&self, stream: &str, id: &str) -> bool {
        let Some(kind) = StreamKind::parse(stream) else {
            return false;
        };
        let record = write(&self.inner.store).delete(kind, id);
        match record {
            Some(record) => {
                self.inner.webhooks.emit(kind, "deleted", record);
                true
            }
            None => false,
        }
    }

    /// The current records of a stream, most recently changed first, at most `limit`.
    pub fn recent(&self, stream: &str, limit: usize) -> Vec<serde_json::Value> {
        StreamKind::parse(stream)
            .map_or_else(Vec::new, |kind| read(&self.inner.store).recent(kind, limit))
    }

    /// One current record, if it exists.
    pub fn get(&self, stream: &str, id: &str) -> Option<serde_json::Value> {
        StreamKind::parse(stream).and_then(|kind| read(&self.inner.store).get(kind, id))
    }

    /// Number of records in a stream (0 for an unknown stream).
    pub fn count(&self, stream: &str) -> usize {
        StreamKind::parse(stream).map_or(0, |kind| read(&self.inner.store).count(kind))
    }
}

/// A running sandbox server. Dropping it (or calling [`SandboxHandle::shutdown`]) stops
/// accepting connections.
pub struct SandboxHandle {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    /// The served sandbox, to flip faults or change data from tests.
    pub sandbox: Sandbox,
    task: tokio::task::JoinHandle<()>,
}

impl SandboxHandle {
    /// Stops the server and waits for its accept loop to end. Requests already in flight on
    /// open connections finish on their own.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The only possible outcome is "cancelled", which carries no information.
        let _cancelled = (&mut self.task).await;
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
