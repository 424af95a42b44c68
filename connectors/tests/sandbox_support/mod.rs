//! Shared helpers for the sandbox integration tests: a registered test client, PKCE values, and
//! the OAuth dance done over real HTTP against `Sandbox::spawn`.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
pub use connectors::sandbox::{Sandbox, SandboxClient, SandboxConfig, SandboxHandle, SeedSizes};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "patchbay-test";
pub const CLIENT_SECRET: &str = "s3cret+with/odd=chars";
pub const CLIENT_NAME: &str = "Patchbay Test";
/// Never contacted: the tests read the redirect's `Location` instead of following it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
pub const OTHER_REDIRECT_URI: &str = "http://localhost:9/oauth/callback";
pub const ALL_SCOPES: &str = "shop.read shop.write crm.read crm.write";

pub fn config() -> SandboxConfig {
    SandboxConfig {
        clients: vec![SandboxClient {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![REDIRECT_URI.into(), OTHER_REDIRECT_URI.into()],
            name: CLIENT_NAME.into(),
        }],
        rate_limit_per_sec: 0,
        fault_api: true,
        ..SandboxConfig::default()
    }
}

pub fn config_with_seed(seed: SeedSizes) -> SandboxConfig {
    SandboxConfig { seed, ..config() }
}

pub async fn spawn(config: SandboxConfig) -> SandboxHandle {
    Sandbox::spawn(config)
        .await
        .expect("sandbox binds 127.0.0.1:0")
}

/// A client that does not follow redirects, so tests can inspect them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// A fresh PKCE (verifier, S256 challenge) pair.
pub fn pkce() -> (String, String) {
    let verifier: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The query parameters of a redirect's `Location`, checking it goes to `redirect_uri`.
pub fn redirect_params(resp: &reqwest::Response, redirect_uri: &str) -> HashMap<String, String> {
    assert_eq!(
        resp.status(),
        reqwest::StatusCode::FOUND,
        "expected a redirect"
    );
    let location = resp.headers()["location"].to_str().expect("ASCII location");
    let url = url::Url::parse(location).expect("absolute location");
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        redirect_uri
    );
    url.query_pairs().into_owned().collect()
}

/// The authorization request's parameters.
pub fn authorize_params<'a>(
    scope: &'a str,
    challenge: &'a str,
    redirect_uri: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "xyz-state"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// Posts the consent form with `decision` and returns the redirect.
pub async fn decide(base: &str, params: &[(&str, &str)], decision: &str) -> reqwest::Response {
    let mut form = params.to_vec();
    form.push(("decision", decision));
    http()
        .post(format!("{base}/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("authorize POST")
}

/// Approves `scope` and returns the authorization code.
pub async fn approve(base: &str, scope: &str, challenge: &str) -> String {
    let resp = decide(
        base,
        &authorize_params(scope, challenge, REDIRECT_URI),
        "approve",
    )
    .await;
    let params = redirect_params(&resp, REDIRECT_URI);
    assert_eq!(params.get("state").map(String::as_str), Some("xyz-state"));
    params
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {params:?}"))
}

/// `POST /oauth/token` with client credentials in the body.
pub async fn token_request(base: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_id", CLIENT_ID));
    form.push(("client_secret", CLIENT_SECRET));
    http()
        .post(format!("{base}/oauth/token"))
        .form(&form)
        .send()
        .await
        .expect("token POST")
}

pub async fn exchange(base: &str, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub async fn refresh(base: &str, refresh_token: &str) -> reqwest::Response {
    token_request(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Access and refresh token of a successful grant.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

pub async fn tokens_of(resp: reqwest::Response) -> Tokens {
    assert_eq!(resp.status(), 200, "token request failed");
    let body: Value = resp.json().await.expect("token JSON");
    Tokens {
        access: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    }
}

/// The whole dance: approve `scope`, exchange the code with PKCE.
pub async fn login(base: &str, scope: &str) -> Tokens {
    let (verifier, challenge) = pkce();
    let code = approve(base, scope, &challenge).await;
    tokens_of(exchange(base, &code, &verifier).await).await
}

pub async fn api_get(base: &str, path: &str, access: &str) -> reqwest::Response {
    http()
        .get(format!("{base}{path}"))
        .bearer_auth(access)
        .send()
        .await
        .expect("API GET")
}

/// The `error` field of an error answer.
pub async fn error_code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("error JSON");
    body["error"].as_str().unwrap_or_default().to_owned()
}

/// Reads a whole stream by following cursors; returns every record and the number of pages.
pub async fn read_all(base: &str, path: &str, access: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let resp = http()
            .get(format!("{base}{path}"))
            .query(&query)
            .bearer_auth(access)
            .send()
            .await
            .expect("page");
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.expect("page JSON");
        pages += 1;
        records.extend(page["data"].as_array().expect("data array").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (records, pages),
        }
    }
}

pub fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}
