//! The outbound client against a wiremock server on 127.0.0.1: redirects, size cap, timeouts,
//! the rate budget and status classification.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use connectors::http::{HttpConfig, NameLookup, OutboundClient, OutboundRequest, RateBudget};
use connectors::{ConnectorError, ErrorClass};
use url::Url;
use wiremock::matchers::{body_string, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// "api.test" and "other.test" both point at 127.0.0.1, so a redirect can change host while
/// staying on the wiremock server.
struct LoopbackNames;

#[async_trait]
impl NameLookup for LoopbackNames {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let names: HashMap<&str, &str> =
            [("api.test", "127.0.0.1"), ("other.test", "127.0.0.1")].into();
        let ip = names
            .get(host)
            .ok_or_else(|| std::io::Error::other("unknown test name"))?;
        Ok(vec![SocketAddr::new(ip.parse().unwrap(), port)])
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

fn config() -> HttpConfig {
    HttpConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        resolver: Some(Arc::new(LoopbackNames)),
        ..HttpConfig::default()
    }
}

fn client() -> OutboundClient {
    OutboundClient::new(config()).unwrap()
}

fn at(server: &MockServer, p: &str) -> Url {
    Url::parse(&format!("{}{p}", server.uri())).unwrap()
}

fn redirect_to(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(302).insert_header("location", location)
}

#[tokio::test]
async fn relative_redirects_are_followed_and_the_budget_is_taken_per_hop() {
    let server = MockServer::start().await;
    Mock::given(path("/a/start"))
        .respond_with(redirect_to("next"))
        .mount(&server)
        .await;
    Mock::given(path("/a/next"))
        .respond_with(redirect_to("/done?x=1"))
        .mount(&server)
        .await;
    Mock::given(path("/done"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;

    let budget = CountingBudget::default();
    let resp = client()
        .send_with_budget(OutboundRequest::get(at(&server, "/a/start")), &budget)
        .await
        .unwrap();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"ok"[..]));
    assert_eq!(resp.url, at(&server, "/done?x=1"));
    assert_eq!(budget.0.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refusing_budget_stops_the_exchange() {
    struct Empty;
    #[async_trait]
    impl RateBudget for Empty {
        async fn take(&self, _url: &Url) -> Result<(), ConnectorError> {
            Err(ConnectorError::new(
                ErrorClass::RateLimited { retry_after: None },
                "budget spent",
            ))
        }
    }
    let server = MockServer::start().await;
    let err = client()
        .send_with_budget(OutboundRequest::get(at(&server, "/x")), &Empty)
        .await
        .unwrap_err();
    assert_eq!(err.message, "budget spent");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn too_many_redirects_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/loop"))
        .respond_with(redirect_to("/loop"))
        .mount(&server)
        .await;
    let client = OutboundClient::new(HttpConfig {
        max_redirects: 3,
        ..config()
    })
    .unwrap();
    let err = client
        .send(OutboundRequest::get(at(&server, "/loop")))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(
        err.message.contains("too many redirects"),
        "{}",
        err.message
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn post_becomes_get_on_303_and_stays_post_on_307() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/see-other"))
        .respond_with(ResponseTemplate::new(303).insert_header("location", "/got"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/temporary"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/posted"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/got"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/posted"))
        .and(body_string("{\"n\":1}"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;

    let body = serde_json::json!({"n": 1});
    let resp = client()
        .send(OutboundRequest::post_json(at(&server, "/see-other"), &body))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let resp = client()
        .send(OutboundRequest::post_json(at(&server, "/temporary"), &body))
        .await
        .unwrap();
    assert_eq!(resp.status, 201);
}

#[tokio::test]
async fn authorization_is_dropped_when_a_redirect_changes_host() {
    let server = MockServer::start().await;
    let port = server.address().port();
    Mock::given(path("/same"))
        .respond_with(redirect_to(&format!("http://api.test:{port}/kept")))
        .mount(&server)
        .await;
    Mock::given(path("/cross"))
        .respond_with(redirect_to(&format!("http://other.test:{port}/dropped")))
        .mount(&server)
        .await;
    Mock::given(path("/kept"))
        .and(header("authorization", "Bearer t0ken"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(path("/dropped"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(418))
        .mount(&server)
        .await;
    Mock::given(path("/dropped"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    let client = client();
    let start = |p: &str| {
        OutboundRequest::get(Url::parse(&format!("http://api.test:{port}{p}")).unwrap())
            .bearer("t0ken")
    };
    assert_eq!(client.send(start("/same")).await.unwrap().status, 200);
    assert_eq!(client.send(start("/cross")).await.unwrap().status, 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_permanent_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4096]))
        .mount(&server)
        .await;
    Mock::given(path("/fits"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 1024]))
        .mount(&server)
        .await;
    let client = OutboundClient::new(HttpConfig {
        max_body_bytes: 1024,
        ..config()
    })
    .unwrap();
    let err = client
        .send(OutboundRequest::get(at(&server, "/big")))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("larger than"), "{}", err.message);
    assert_eq!(
        client
            .send(OutboundRequest::get(at(&server, "/fits")))
            .await
            .unwrap()
            .body
            .len(),
        1024
    );
}

#[tokio::test]
async fn slow_responses_time_out_as_transient() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let client = OutboundClient::new(HttpConfig {
        total_timeout: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .send(OutboundRequest::get(at(&server, "/slow?key=secret")))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err.class, ErrorClass::Transient);
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(!err.message.contains("secret"), "{}", err.message);
}

#[tokio::test]
async fn connection_failures_are_transient_without_the_query() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = Url::parse(&format!("http://127.0.0.1:{port}/x?token=secret")).unwrap();
    let err = client().send(OutboundRequest::get(url)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient);
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}/x")),
        "{}",
        err.message
    );
    assert!(!err.message.contains("secret"), "{}", err.message);
}

#[tokio::test]
async fn send_ok_classifies_failures() {
    let server = MockServer::start().await;
    Mock::given(path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "17"))
        .mount(&server)
        .await;
    Mock::given(path("/auth"))
        .respond_with(ResponseTemplate::new(401).set_body_string("token expired"))
        .mount(&server)
        .await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404).set_body_string("y".repeat(5000)))
        .mount(&server)
        .await;
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    Mock::given(path("/fine"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\":7}"))
        .mount(&server)
        .await;
    let client = client();
    let get = |p: &str| OutboundRequest::get(at(&server, p)).bearer("sekrit-token");

    let err = client.send_ok(get("/limited"), None).await.unwrap_err();
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(17))
        }
    );
    assert_eq!(err.status, Some(429));
    let err = client.send_ok(get("/auth"), None).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth);
    assert!(
        err.message.contains("401") && err.message.contains("token expired"),
        "{}",
        err.message
    );
    let err = client
        .send_ok(get("/gone?q=secret"), None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.class.clone(), err.status),
        (ErrorClass::Permanent, Some(404))
    );
    assert!(err.message.len() < 300, "{}", err.message);
    assert!(!err.message.contains("secret"), "{}", err.message);
    assert_eq!(
        client.send_ok(get("/flaky"), None).await.unwrap_err().class,
        ErrorClass::Transient
    );

    assert_eq!(
        client.send(get("/gone")).await.unwrap().status,
        404,
        "send returns any status"
    );
    let resp = client.send_ok(get("/fine"), None).await.unwrap();
    assert_eq!(resp.json::<serde_json::Value>().unwrap()["id"], 7);
}

#[tokio::test]
async fn sends_the_configured_user_agent() {
    let server = MockServer::start().await;
    let expected = concat!("Patchbay/", env!("CARGO_PKG_VERSION"));
    Mock::given(header("user-agent", expected))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    assert_eq!(
        client()
            .send(OutboundRequest::get(at(&server, "/")))
            .await
            .unwrap()
            .status,
        204
    );
}

#[tokio::test]
async fn send_http_is_one_guarded_hop_for_oauth2() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string("grant_type=x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"access_token\":\"a\"}"))
        .mount(&server)
        .await;
    Mock::given(path("/moved"))
        .respond_with(redirect_to("/token"))
        .mount(&server)
        .await;
    let client = client();
    let request = |uri: &str| {
        http::Request::builder()
            .method("POST")
            .uri(uri)
            .body(b"grant_type=x".to_vec())
            .unwrap()
    };

    let resp = client
        .send_http(request(at(&server, "/token").as_str()))
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), &resp.body()[..]),
        (200, &b"{\"access_token\":\"a\"}"[..])
    );
    let resp = client
        .send_http(request(at(&server, "/moved").as_str()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302, "redirects are not followed");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    let err = client
        .send_http(request("http://169.254.169.254/token"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("cloud metadata"), "{}", err.message);

    // The closure form is what oauth2's `request_async` accepts.
    fn is_oauth2_client<'c, C: oauth2::AsyncHttpClient<'c>>(_: &'c C) {}
    is_oauth2_client(&|r| client.send_http(r));
}
