//! Test harness: serves the real router, on port 0, over a fresh database that `#[sqlx::test]`
//! created and migrated for the test.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod market;

use reqwest::{header, redirect, Client, Response, StatusCode};
use serde_json::Value;
use server::{build_router, ServerState};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    /// The app-role pool the server uses (row-level security applies).
    pub pool: PgPool,
    /// The test database's owner pool, for set-up and checks that must see everything.
    pub admin_pool: PgPool,
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
    let options = admin_pool.connect_options().as_ref().clone();
    let pool = app::domain::db::connect_app_pool(options, 5)
        .await
        .expect("app pool");
    let router = build_router(ServerState {
        pool: pool.clone(),
        public_url: public_url.into(),
        site_root: "target/site".into(),
        session_idle: idle,
        vault: std::sync::Arc::new(
            app::domain::vault::Keyring::new(&app::domain::vault::generate_key(1), &[]).unwrap(),
        ),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
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
        pool,
        admin_pool,
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
