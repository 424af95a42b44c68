//! Test harness: serves the real router, on port 0, over a fresh database that `#[sqlx::test]`
//! created and migrated for the test.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod market;
pub mod sync;

use app::domain::connections::ConnectSettings;
use app::domain::vault::{generate_key, Keyring};
use reqwest::{header, redirect, Client, Response, StatusCode};
use serde_json::Value;
use server::{build_router, ServerState};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    /// The URL the server believes it is reached at (`http://patchbay.test` unless told).
    pub public_url: String,
    /// The app-role pool the server uses (row-level security applies).
    pub pool: PgPool,
    /// The test database's owner pool, for set-up and checks that must see everything.
    pub admin_pool: PgPool,
    /// The credential vault the server seals with.
    pub vault: Arc<Keyring>,
    /// How the server reaches providers.
    pub connect: Arc<ConnectSettings>,
}

/// How [`spawn_app_full`] starts Patchbay.
pub struct AppOptions {
    pub public_url: String,
    pub idle: Duration,
    pub vault: Arc<Keyring>,
    pub connect: Arc<ConnectSettings>,
    /// Connections of the app-role pool.
    pub pool_size: u32,
    /// `/metrics`' token (None: not served).
    pub metrics_token: Option<String>,
}

impl AppOptions {
    /// A fresh key (id 1), no provider reachable on loopback, one-hour sessions.
    pub fn new(public_url: &str) -> Self {
        AppOptions {
            public_url: public_url.into(),
            idle: Duration::from_secs(3600),
            vault: Arc::new(Keyring::new(&generate_key(1), &[]).unwrap()),
            connect: Arc::new(
                ConnectSettings::new(public_url, Default::default(), Default::default()).unwrap(),
            ),
            pool_size: 5,
            metrics_token: None,
        }
    }
}

/// Starts Patchbay on `127.0.0.1:0` over the test's database.
pub async fn spawn_app(admin_pool: PgPool) -> TestApp {
    spawn_app_with(
        admin_pool,
        "http://patchbay.test",
        Duration::from_secs(3600),
    )
    .await
}

/// Starts Patchbay as if it were reached at `public_url`, with sessions that expire after `idle`.
pub async fn spawn_app_with(admin_pool: PgPool, public_url: &str, idle: Duration) -> TestApp {
    spawn_app_full(
        admin_pool,
        AppOptions {
            idle,
            ..AppOptions::new(public_url)
        },
    )
    .await
}

/// Starts Patchbay with the given keyring and connect settings (which the returned [`TestApp`]
/// holds too, so that tests can open what the server sealed and call the domain directly).
pub async fn spawn_app_full(admin_pool: PgPool, options: AppOptions) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_app_on(listener, admin_pool, options).await
}

/// [`spawn_app_full`] on a listener bound beforehand (so that its address can be the public URL
/// given to a provider before the app starts).
pub async fn spawn_app_on(
    listener: tokio::net::TcpListener,
    admin_pool: PgPool,
    options: AppOptions,
) -> TestApp {
    let db_options = admin_pool.connect_options().as_ref().clone();
    let pool = app::domain::db::connect_app_pool(db_options, options.pool_size)
        .await
        .expect("app pool");
    let router = build_router(ServerState {
        pool: pool.clone(),
        public_url: options.public_url.clone(),
        site_root: "target/site".into(),
        session_idle: options.idle,
        vault: options.vault.clone(),
        connect: options.connect.clone(),
        metrics_token: options.metrics_token.clone().map(Into::into),
    });
    let addr = listener.local_addr().unwrap();
    // As `patchbay serve` does: without TCP_NODELAY a response's last small segment waits for the
    // client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        public_url: options.public_url,
        pool,
        admin_pool,
        vault: options.vault,
        connect: options.connect,
    }
}

/// A browser-like client with its own cookie jar that does not follow redirects.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Calls a server function the way the hydrated app does (form-encoded, JSON back).
    pub async fn call(&self, client: &Client, endpoint: &str, form: &[(&str, &str)]) -> Response {
        client
            .post(self.url(&format!("/api/{endpoint}")))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Calls a server function and returns the status and the JSON body.
    pub async fn call_json(
        &self,
        client: &Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let res = self.call(client, endpoint, form).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Signs up a new account on `client` (which is then signed in).
    pub async fn sign_up(&self, client: &Client, name: &str, email: &str) {
        let (status, body) = self
            .call_json(
                client,
                "signup",
                &[
                    ("display_name", name),
                    ("email", email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "sign-up of {email} failed: {body}");
    }

    /// A new signed-in client for a fresh account.
    pub async fn user(&self, name: &str, email: &str) -> Client {
        let client = client();
        self.sign_up(&client, name, email).await;
        client
    }

    /// Creates an organization as `client` and returns its id.
    pub async fn create_org(&self, client: &Client, name: &str, kind: &str) -> String {
        let res = self
            .call(client, "orgs/create", &[("name", name), ("kind", kind)])
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        location
            .strip_prefix("/orgs/")
            .expect("redirect to the new organization")
            .to_owned()
    }

    pub async fn session(&self, client: &Client) -> Value {
        self.call_json(client, "session", &[]).await.1
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// The session cookie's value in a response, if it sets one.
pub fn session_cookie(res: &Response) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.strip_prefix("patchbay_session=")
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
}

// Connections: the bundled sandbox as the provider, and the OAuth dance over real HTTP.

/// Patchbay's OAuth client at the test sandbox.
pub const SANDBOX_CLIENT_ID: &str = "patchbay-test-client";
/// Distinctive, so that a leak into logs or storage is recognisable.
pub const SANDBOX_CLIENT_SECRET: &str = "sandbox-client-secret-Zq8v1Lr4Xw7Kp2";
/// The URL the server believes it is reached at, whose callback the sandbox redirects to.
pub const PUBLIC_URL: &str = "http://patchbay.test";

/// How [`spawn_app_with_sandbox`] sets things up.
pub struct SandboxOptions {
    /// Lifetime of the sandbox's access tokens.
    pub access_token_ttl: Duration,
    /// The server's keyring; a fresh key 1 when None.
    pub vault: Option<Arc<Keyring>>,
    /// Connections of the app-role pool.
    pub pool_size: u32,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            access_token_ttl: Duration::from_secs(3600),
            vault: None,
            pool_size: 5,
        }
    }
}

/// Starts the sandbox provider (with Patchbay registered as an OAuth client whose redirect URI is
/// `{PUBLIC_URL}/oauth/callback`) and Patchbay with loopback let through its outbound guard and
/// `{sandbox_url}` set, and registers the platform app for `sandbox-crm` in the database.
pub async fn spawn_app_with_sandbox(
    admin_pool: PgPool,
    options: SandboxOptions,
) -> (TestApp, connectors::sandbox::SandboxHandle) {
    use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig};
    let sandbox = Sandbox::spawn(SandboxConfig {
        clients: vec![SandboxClient {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{PUBLIC_URL}/oauth/callback")],
            name: "Patchbay".into(),
        }],
        access_token_ttl: options.access_token_ttl,
        rate_limit_per_sec: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let mut http = connectors::http::HttpConfig::default();
    http.allow.push("127.0.0.1/32".parse().unwrap());
    let vars =
        std::collections::BTreeMap::from([("sandbox_url".to_owned(), sandbox.base_url.clone())]);
    let connect = Arc::new(ConnectSettings::new(PUBLIC_URL, http, vars).unwrap());
    let defaults = AppOptions::new(PUBLIC_URL);
    let app = spawn_app_full(
        admin_pool,
        AppOptions {
            vault: options.vault.unwrap_or(defaults.vault.clone()),
            connect,
            pool_size: options.pool_size,
            ..defaults
        },
    )
    .await;
    app::domain::connections::apps::set_platform_app(
        &app.pool,
        &app.vault,
        "sandbox-crm",
        SANDBOX_CLIENT_ID,
        &secrecy::SecretString::from(SANDBOX_CLIENT_SECRET),
    )
    .await
    .expect("register the sandbox app");
    (app, sandbox)
}

/// A response's `Location`.
pub fn location(res: &Response) -> String {
    res.headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} response", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The value of a query parameter of a URL or of a path with a query.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The connection id of a callback that connected (303 to `…?connected=<id>`).
pub fn connected_id(res: &Response) -> uuid::Uuid {
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "callback did not redirect"
    );
    let target = location(res);
    assert!(
        !target.starts_with("/connect/failed"),
        "the callback failed: {target}"
    );
    query_param(&target, "connected")
        .unwrap_or_else(|| panic!("no connection id in {target}"))
        .parse()
        .unwrap()
}

/// The reason code of a callback that failed (303 to `/connect/failed?reason=…`).
pub fn failure_reason(res: &Response) -> String {
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "callback did not redirect"
    );
    let target = location(res);
    assert!(
        target.starts_with("/connect/failed?"),
        "expected a failure, got {target}"
    );
    query_param(&target, "reason").unwrap()
}

impl TestApp {
    /// Signs `client` in as an existing account.
    pub async fn log_in(&self, client: &Client, email: &str) {
        let res = self
            .call(client, "login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "log-in of {email} failed: {}",
            res.text().await.unwrap()
        );
    }

    /// `POST /api/connections/start` for the sandbox CRM, returning to `/connections`; `extra`
    /// adds or replaces form fields.
    pub async fn start_connect(&self, client: &Client, extra: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> =
            vec![("provider", "sandbox-crm"), ("return_to", "/connections")];
        for (key, value) in extra {
            form.retain(|(k, _)| k != key);
            form.push((key, value));
        }
        self.call(client, "connections/start", &form).await
    }

    /// Starts a flow and returns the provider's sign-in URL, as `/connect/continue` gives it.
    pub async fn begin_connect(&self, client: &Client, extra: &[(&str, &str)]) -> String {
        let res = self.start_connect(client, extra).await;
        let status = res.status();
        let target = res.headers().get(header::LOCATION).cloned();
        assert_eq!(status, StatusCode::OK, "{}", res.text().await.unwrap());
        assert_eq!(target.unwrap(), "/connect/continue");
        let (status, body) = self.call_json(client, "connections/continue", &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["provider_name"], "Sandbox CRM");
        body["url"].as_str().unwrap().to_owned()
    }

    /// Answers the sandbox's consent form for `authorize_url` (`approve` or `deny`), as the
    /// browser would post it, and returns where the sandbox sends the browser back to: our
    /// callback at the public URL.
    pub async fn consent(&self, authorize_url: &str, decision: &str) -> String {
        let mut url = url::Url::parse(authorize_url).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("decision".into(), decision.into()));
        url.set_query(None);
        let res = client().post(url).form(&form).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FOUND,
            "{}",
            res.text().await.unwrap()
        );
        let back = location(&res);
        assert!(
            back.starts_with(&format!("{}/oauth/callback?", self.public_url)),
            "{back}"
        );
        back
    }

    /// Follows the provider's redirect to our `/oauth/callback` with `client` (the public URL's
    /// origin replaced by the test server's address).
    pub async fn callback(&self, client: &Client, provider_redirect: &str) -> Response {
        let path = provider_redirect
            .strip_prefix(&self.public_url)
            .unwrap_or_else(|| panic!("{provider_redirect} is not ours"));
        client.get(self.url(path)).send().await.unwrap()
    }

    /// The whole OAuth dance with the sandbox CRM: start, approve, callback. Returns the new (or
    /// reconnected) connection's id and the callback URL the provider sent.
    pub async fn connect_sandbox(
        &self,
        client: &Client,
        extra: &[(&str, &str)],
    ) -> (uuid::Uuid, String) {
        let authorize = self.begin_connect(client, extra).await;
        let back = self.consent(&authorize, "approve").await;
        let res = self.callback(client, &back).await;
        (connected_id(&res), back)
    }
}
