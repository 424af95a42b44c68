//! The shipped Salesforce spec against a fake that answers as Salesforce's REST API and OAuth
//! web-server-flow docs show: SOQL results paged by `nextRecordsUrl` until `done`, the
//! `{cursor}` written into the SOQL of the next sync, the org's `instance_url` taken from the
//! token response, `INVALID_SESSION_ID` refreshed without a new refresh token, and rate limits.

mod provider_support;

use connectors::engine::SpecSource;
use connectors::oauth::OAuthClient;
use connectors::ErrorClass;
use provider_support::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const QUERY: &str = "/services/data/v61.0/query";
const NEXT: &str = "/services/data/v61.0/query/01gD0000002HU6KIAW-2000";
const TOKEN: &str = "/services/oauth2/token";

fn soql(since: &str) -> String {
    format!("SELECT Id, Name, Industry, Website, Phone, LastModifiedDate FROM Account WHERE LastModifiedDate >= {since} ORDER BY LastModifiedDate")
}

fn account_id(n: u32) -> String {
    format!("001D0000{n:010}")
}

/// Account `n`, modified `n` seconds after midnight on 1 May 2024, in Salesforce's format.
fn account(n: u32) -> Value {
    let id = account_id(n);
    json!({
        "attributes": { "type": "Account", "url": format!("/services/data/v61.0/sobjects/Account/{id}") },
        "Id": id,
        "Name": format!("Edge Communications {n}"),
        "Industry": "Electronics",
        "Website": "http://edgecomm.com",
        "Phone": "(512) 757-6000",
        "LastModifiedDate": format!("2024-05-01T{:02}:{:02}:{:02}.000+0000", n / 3600, n / 60 % 60, n % 60),
    })
}

fn batch(ids: std::ops::Range<u32>, total: u32, next: Option<&str>) -> Value {
    let mut body = json!({ "totalSize": total, "done": next.is_none(), "records": ids.map(account).collect::<Vec<_>>() });
    if let Some(next) = next {
        body["nextRecordsUrl"] = json!(next);
    }
    body
}

fn salesforce_source(server: &MockServer, token: &str) -> SpecSource {
    source(connection(
        builtin("salesforce"),
        oauth_token(token),
        vars(&[("instance_url", &server.uri())]),
    ))
}

#[tokio::test]
async fn reads_accounts_by_next_records_url_then_only_changes() {
    let server = MockServer::start().await;
    let auth = || header("authorization", "Bearer 00Dxx0000001gPL!AR8AQ");
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(query_param("q", soql("1970-01-01T00:00:00Z")))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(0..2000, 2250, Some(NEXT))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(NEXT))
        .and(QueryIs::empty())
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(2000..2250, 2250, None)))
        .expect(1)
        .mount(&server)
        .await;

    let source = salesforce_source(&server, "00Dxx0000001gPL!AR8AQ");
    let (records, high_water) = read_stream(&source, "accounts", None).await.unwrap();
    assert_each_once(&records, (0..2250).map(account_id));
    assert_eq!(records[0].data["attributes"]["type"], "Account");
    let high_water = high_water.expect("an incremental stream has a high-water mark");
    assert_eq!(high_water, "2024-05-01T00:37:29.000+0000");

    Mock::given(method("GET"))
        .and(path(QUERY))
        // Sent back as a SOQL dateTime literal: UTC, whole seconds, compared with `>=`.
        .and(query_param("q", soql("2024-05-01T00:37:29Z")))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(2250..2251, 1, None)))
        .expect(1)
        .mount(&server)
        .await;
    let (records, next_mark) = read_stream(&source, "accounts", Some(&high_water))
        .await
        .unwrap();
    assert_each_once(&records, [account_id(2250)]);
    assert_eq!(next_mark.as_deref(), Some("2024-05-01T00:37:30.000+0000"));
}

#[tokio::test]
async fn a_next_records_url_on_another_host_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(
            0..1,
            2,
            Some("https://evil.example/services/data/v61.0/query/x-1"),
        )))
        .mount(&server)
        .await;
    let err = read_error(&salesforce_source(&server, "t"), "accounts").await;
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("another host"), "{}", err.message);
}

#[tokio::test]
async fn rate_limits() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header("authorization", "Bearer throttled"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(json!([
                    { "message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED" }
                ])),
        )
        .mount(&server)
        .await;
    // The documented answer once the org's rolling 24-hour allowance is spent: a 403 with no
    // Retry-After. Retrying later helps, so it must not be Permanent.
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header("authorization", "Bearer daily-limit"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([
            { "message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED" }
        ])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header("authorization", "Bearer no-access"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([
            { "message": "The REST API is not enabled for this Organization.", "errorCode": "API_DISABLED_FOR_ORG" }
        ])))
        .mount(&server)
        .await;

    let err = read_error(&salesforce_source(&server, "throttled"), "accounts").await;
    assert_eq!((err.class, err.status), (rate_limited_for(30), Some(429)));
    let err = read_error(&salesforce_source(&server, "daily-limit"), "accounts").await;
    assert_eq!(
        (err.class, err.status),
        (ErrorClass::RateLimited { retry_after: None }, Some(403))
    );
    let err = read_error(&salesforce_source(&server, "no-access"), "accounts").await;
    assert_eq!(
        err.class,
        ErrorClass::Permanent,
        "other 403s stay permanent"
    );
}

#[tokio::test]
async fn an_invalid_session_is_refreshed_keeping_the_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header("authorization", "Bearer expired"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!([
            { "message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID" }
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header("authorization", "Bearer 00Dxx0000001gPL!fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(0..3, 3, None)))
        .expect(1)
        .mount(&server)
        .await;
    // Salesforce's refresh response carries no refresh_token: the old one stays valid.
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "00Dxx0000001gPL!fresh",
            "signature": "SSSbLO/gBhmmyNUvN18ODBDFYHzakxOMgqYtu+hDPsc=",
            "scope": "refresh_token api",
            "instance_url": server.uri(),
            "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            "token_type": "Bearer",
            "issued_at": "1278448384422",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let err = read_error(&salesforce_source(&server, "expired"), "accounts").await;
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));

    let spec = retarget(&builtin("salesforce"), &server.uri());
    let oauth = OAuthClient::new(&spec, &app(), &vars(&[]), http()).unwrap();
    let tokens = oauth
        .refresh(&SecretString::from(
            "5Aep861KIwKdekr90I4iHdtDgWwRoG7O_6uHrgJ",
        ))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "00Dxx0000001gPL!fresh");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "5Aep861KIwKdekr90I4iHdtDgWwRoG7O_6uHrgJ"
    );
    assert_eq!(tokens.fields.get("instance_url"), Some(&server.uri()));
    let sent = &requests_to(&server, TOKEN).await[0];
    assert_eq!(
        form(sent),
        vars(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "5Aep861KIwKdekr90I4iHdtDgWwRoG7O_6uHrgJ"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );
    assert!(sent.headers.get("authorization").is_none());

    let (records, _) = read_stream(
        &salesforce_source(&server, tokens.access_token.expose_secret()),
        "accounts",
        None,
    )
    .await
    .unwrap();
    assert_each_once(&records, (0..3).map(account_id));
}

#[tokio::test]
async fn authorize_with_pkce_then_exchange_gives_the_instance_url() {
    let start = OAuthClient::new(&builtin("salesforce"), &app(), &vars(&[]), http())
        .unwrap()
        .authorize();
    assert_eq!(
        start.url.origin().ascii_serialization(),
        "https://login.salesforce.com"
    );
    assert_eq!(start.url.path(), "/services/oauth2/authorize");
    let params = query_map(&start.url);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], REDIRECT_URL);
    assert_eq!(params["scope"], "api refresh_token");
    assert_eq!(params["state"], start.state);
    let verifier = start.pkce_verifier.expect("PKCE is on for Salesforce");
    assert_pkce_s256(&params, &verifier);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog",
            "refresh_token": "5Aep861KIwKdekr90I4iHdtDgWwRoG7O_6uHrgJ",
            "signature": "CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=",
            "scope": "refresh_token api",
            "instance_url": server.uri(),
            "id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
            "token_type": "Bearer",
            "issued_at": "1278448101416",
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY))
        .and(header(
            "authorization",
            "Bearer 00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(batch(0..1, 1, None)))
        .expect(1)
        .mount(&server)
        .await;

    let oauth = OAuthClient::new(
        &retarget(&builtin("salesforce"), &server.uri()),
        &app(),
        &vars(&[]),
        http(),
    )
    .unwrap();
    let tokens = oauth
        .exchange_code(
            "aPrxsmIEeqM9PiQroGEWx1UiMQd95_5JUZVEhsOFhS8EVvbfYBBJli2W5fn3zbo.8hojaNW_1g==",
            Some(&verifier),
        )
        .await
        .unwrap();
    assert_eq!(tokens.scopes, ["refresh_token", "api"]);
    let sent = &requests_to(&server, TOKEN).await[0];
    assert_eq!(
        form(sent),
        vars(&[
            ("grant_type", "authorization_code"),
            (
                "code",
                "aPrxsmIEeqM9PiQroGEWx1UiMQd95_5JUZVEhsOFhS8EVvbfYBBJli2W5fn3zbo.8hojaNW_1g=="
            ),
            ("code_verifier", verifier.expose_secret()),
            ("redirect_uri", REDIRECT_URL),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );

    // The org's API host is whatever the token response named, kept as a connection variable.
    let conn = connection(
        builtin("salesforce"),
        oauth_token(tokens.access_token.expose_secret()),
        tokens.fields.clone(),
    );
    let (records, _) = read_stream(&source(conn), "accounts", None).await.unwrap();
    assert_each_once(&records, [account_id(0)]);
}
