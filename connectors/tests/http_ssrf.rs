//! The SSRF guard end to end: names resolved by a test resolver, IP literals, redirects. Every
//! refusal here happens before a connection is opened; the only address ever contacted is the
//! wiremock server on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use connectors::http::{HttpConfig, NameLookup, OutboundClient, OutboundRequest, RateBudget};
use connectors::{ConnectorError, ErrorClass};
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Fixed answers; counts lookups so tests can see the resolver was consulted.
#[derive(Default)]
struct TestLookup {
    names: HashMap<&'static str, Vec<&'static str>>,
    calls: AtomicUsize,
}

impl TestLookup {
    fn standard() -> Arc<Self> {
        let mut names = HashMap::new();
        names.insert("metadata.test", vec!["169.254.169.254"]);
        names.insert("internal.test", vec!["10.0.0.5"]);
        names.insert("mixed.test", vec!["10.0.0.5", "127.0.0.1"]);
        names.insert("api.test", vec!["127.0.0.1"]);
        Arc::new(TestLookup {
            names,
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl NameLookup for TestLookup {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ips = self
            .names
            .get(host)
            .ok_or_else(|| std::io::Error::other("unknown test name"))?;
        Ok(ips
            .iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
            .collect())
    }
}

#[derive(Default)]
struct CountingBudget(AtomicUsize);

#[async_trait]
impl RateBudget for CountingBudget {
    async fn take(&self, _url: &Url) -> Result<(), ConnectorError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn client(lookup: &Arc<TestLookup>, allow: &[&str]) -> OutboundClient {
    OutboundClient::new(HttpConfig {
        resolver: Some(lookup.clone()),
        allow: allow.iter().map(|net| net.parse().unwrap()).collect(),
        ..HttpConfig::default()
    })
    .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn assert_refused(err: &ConnectorError, class: &str) {
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(
        err.message.contains(class),
        "expected {class:?} in {:?}",
        err.message
    );
    assert_eq!(err.status, None);
}

#[tokio::test]
async fn names_resolving_to_refused_addresses_are_refused() {
    let lookup = TestLookup::standard();
    let client = client(&lookup, &[]);
    for (u, class) in [
        ("http://metadata.test/latest/meta-data", "cloud metadata"),
        ("https://internal.test/admin?token=secret", "private"),
        ("http://mixed.test:8080/", "private"),
    ] {
        let err = client.send(OutboundRequest::get(url(u))).await.unwrap_err();
        assert_refused(&err, class);
        assert!(!err.message.contains("secret"), "{}", err.message);
    }
    assert_eq!(lookup.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn localhost_is_refused_by_default() {
    let client = OutboundClient::new(HttpConfig::default()).unwrap();
    let err = client
        .send(OutboundRequest::get(url("http://localhost:9/")))
        .await
        .unwrap_err();
    assert_refused(&err, "loopback");
}

#[tokio::test]
async fn ip_literals_are_refused_before_sending() {
    let lookup = TestLookup::standard();
    let client = client(&lookup, &[]);
    let budget = CountingBudget::default();
    for (u, class) in [
        ("http://127.0.0.1:9/", "loopback"),
        ("http://[::1]:9/", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "cloud metadata"),
        ("http://0.0.0.0:9/", "unspecified"),
    ] {
        let err = client
            .send_with_budget(OutboundRequest::get(url(u)), &budget)
            .await
            .unwrap_err();
        assert_refused(&err, class);
    }
    assert_eq!(
        budget.0.load(Ordering::SeqCst),
        0,
        "refused URLs spend no budget"
    );
    assert_eq!(
        lookup.calls.load(Ordering::SeqCst),
        0,
        "IP literals never reach the resolver"
    );
    assert!(client.check_url(&url("ftp://example.com/")).is_err());
    assert!(client.check_url(&url("file:///etc/passwd")).is_err());
}

#[tokio::test]
async fn wiremock_is_reachable_only_when_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_string("pong"))
        .mount(&server)
        .await;
    let lookup = TestLookup::standard();
    let target = url(&format!("{}/ping", server.uri()));

    let err = client(&lookup, &[])
        .send(OutboundRequest::get(target.clone()))
        .await
        .unwrap_err();
    assert_refused(&err, "loopback");
    assert!(server.received_requests().await.unwrap().is_empty());

    let allowed = client(&lookup, &["127.0.0.1/32"]);
    let resp = allowed.send(OutboundRequest::get(target)).await.unwrap();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"pong"[..]));

    // By name too; and from a mixed answer only the allowed address is used.
    let port = server.address().port();
    for name in ["api.test", "mixed.test"] {
        let resp = allowed
            .send(OutboundRequest::get(url(&format!(
                "http://{name}:{port}/ping"
            ))))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{name}");
    }
    let err = client(&lookup, &["127.0.0.2/32"])
        .send(OutboundRequest::get(url(&format!(
            "http://api.test:{port}/ping"
        ))))
        .await
        .unwrap_err();
    assert_refused(&err, "loopback");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn redirects_to_refused_addresses_are_refused_before_connecting() {
    let server = MockServer::start().await;
    Mock::given(path("/literal"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "http://169.254.169.254/latest/meta-data"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/name"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "http://metadata.test/latest/meta-data"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/scheme"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "file:///etc/passwd"))
        .mount(&server)
        .await;
    let lookup = TestLookup::standard();
    let client = client(&lookup, &["127.0.0.1/32"]);

    let budget = CountingBudget::default();
    let err = client
        .send_with_budget(
            OutboundRequest::get(url(&format!("{}/literal", server.uri()))),
            &budget,
        )
        .await
        .unwrap_err();
    assert_refused(&err, "169.254.169.254: cloud metadata");
    assert_eq!(
        budget.0.load(Ordering::SeqCst),
        1,
        "the refused hop was never sent"
    );

    let err = client
        .send(OutboundRequest::get(url(&format!("{}/name", server.uri()))))
        .await
        .unwrap_err();
    assert_refused(&err, "cloud metadata");
    assert_eq!(lookup.calls.load(Ordering::SeqCst), 1);

    let err = client
        .send(OutboundRequest::get(url(&format!(
            "{}/scheme",
            server.uri()
        ))))
        .await
        .unwrap_err();
    assert_refused(&err, "scheme 'file'");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}
