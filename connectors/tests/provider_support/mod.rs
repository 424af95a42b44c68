//! Shared helpers for the built-in provider tests: load a shipped spec and point it at a
//! wiremock fake on 127.0.0.1, build connections and clients, read whole streams, and compute
//! webhook MACs independently of `connectors::webhooks`.
#![allow(
    dead_code,
    reason = "each provider test binary uses a different subset of these helpers"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use connectors::engine::{read_all, Connection, Credentials, SpecSource};
use connectors::http::{HttpConfig, OutboundClient};
use connectors::oauth::OAuthApp;
use connectors::spec::{builtin_specs, AuthSpec, ProviderSpec};
use connectors::{ConnectorError, ErrorClass, Record};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use wiremock::{Match, MockServer, Request};

pub const CLIENT_ID: &str = "patchbay-client-id";
pub const CLIENT_SECRET: &str = "patchbay-client-secret";
/// Patchbay's registered callback. Never contacted: the tests only read the authorize URL.
pub const REDIRECT_URL: &str = "https://app.patchbay.test/oauth/callback";

/// A shipped spec, exactly as `builtin_specs` loads it.
pub fn builtin(id: &str) -> ProviderSpec {
    builtin_specs()
        .expect("built-in specs load")
        .into_iter()
        .find(|s| s.id == id)
        .expect("spec is built in")
}

/// The shipped spec with the origin of `base_url` and of every OAuth URL replaced by `uri`
/// (paths kept). A `base_url` with no scheme, like Salesforce's `{instance_url}/…`, takes its
/// origin from a variable and is left alone.
pub fn retarget(spec: &ProviderSpec, uri: &str) -> ProviderSpec {
    let mut spec = spec.clone();
    spec.base_url = rehost(&spec.base_url, uri);
    if let AuthSpec::OAuth2(o) = &mut spec.auth {
        o.authorize_url = rehost(&o.authorize_url, uri);
        o.token_url = rehost(&o.token_url, uri);
        o.revoke_url = o.revoke_url.as_deref().map(|u| rehost(u, uri));
    }
    spec
}

fn rehost(url: &str, origin: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => format!("{origin}{}", rest.find('/').map_or("", |i| &rest[i..])),
        None => url.to_owned(),
    }
}

/// The outbound client with loopback allowed, so that wiremock can be reached.
pub fn http() -> OutboundClient {
    OutboundClient::new(HttpConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..HttpConfig::default()
    })
    .expect("client builds")
}

pub fn oauth_token(token: &str) -> Credentials {
    Credentials::OAuth2 {
        access_token: SecretString::from(token.to_owned()),
    }
}

pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn connection(
    spec: ProviderSpec,
    credentials: Credentials,
    vars: BTreeMap<String, String>,
) -> Connection {
    Connection {
        spec: Arc::new(spec),
        credentials,
        vars,
    }
}

pub fn source(conn: Connection) -> SpecSource {
    SpecSource::new(conn, http())
}

pub fn app() -> OAuthApp {
    OAuthApp {
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET.to_owned()),
        redirect_url: REDIRECT_URL.into(),
    }
}

/// Reads a stream to its end from `cursor`: the records in order and the new high-water mark.
pub async fn read_stream(
    source: &SpecSource,
    stream: &str,
    cursor: Option<&str>,
) -> Result<(Vec<Record>, Option<String>), ConnectorError> {
    let mut records = Vec::new();
    let high_water = read_all(source, stream, cursor.map(str::to_owned), |page| {
        records.extend(page.records);
        Ok(())
    })
    .await?;
    Ok((records, high_water))
}

/// Asserts each expected key arrived exactly once and nothing else did.
pub fn assert_each_once(records: &[Record], expected: impl IntoIterator<Item = String>) {
    let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
    let unique: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "a record arrived twice");
    let expected: BTreeSet<String> = expected.into_iter().collect();
    let got: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
    assert_eq!(got, expected);
}

/// Reads the first page and returns its error (the test expects one).
pub async fn read_error(source: &SpecSource, stream: &str) -> ConnectorError {
    read_stream(source, stream, None)
        .await
        .expect_err("the read should fail")
}

pub fn rate_limited_for(secs: u64) -> ErrorClass {
    ErrorClass::RateLimited {
        retry_after: Some(std::time::Duration::from_secs(secs)),
    }
}

/// The query string of an authorize URL, as a map (each name must appear once).
pub fn query_map(url: &url::Url) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "`{k}` appears twice in {url}"
        );
    }
    out
}

/// A request's form-encoded body, as a map.
pub fn form(req: &Request) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The requests the fake received at `path`, in order.
pub async fn requests_to(server: &MockServer, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// Matches a request whose whole query string is exactly `query` (`None`: no query at all).
pub struct QueryIs(pub Option<String>);

impl QueryIs {
    pub fn exactly(query: &str) -> Self {
        QueryIs(Some(query.to_owned()))
    }
    pub fn empty() -> Self {
        QueryIs(None)
    }
}

impl Match for QueryIs {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == self.0.as_deref()
    }
}

/// HMAC-SHA256, computed here rather than by the code under test.
pub fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

pub fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::try_from(*k).unwrap(),
                http::HeaderValue::try_from(*v).unwrap(),
            )
        })
        .collect()
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The authorize URL carries an S256 PKCE challenge of the verifier kept for the callback.
pub fn assert_pkce_s256(params: &BTreeMap<String, String>, verifier: &secrecy::SecretString) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use secrecy::ExposeSecret;
    use sha2::{Digest, Sha256};
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(
        params["code_challenge"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
    );
}
