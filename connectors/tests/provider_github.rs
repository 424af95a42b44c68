//! The shipped GitHub spec against a fake that answers as GitHub's REST and OAuth docs show:
//! repository issues (a bare JSON array) paged by `Link` headers, `since` on the next sync,
//! primary and secondary rate limits, expiring user tokens refreshed with a rotated refresh
//! token (and GitHub's habit of reporting token errors with a 200), and `X-Hub-Signature-256`
//! webhooks, including GitHub's published test vector.

mod provider_support;

use connectors::engine::SpecSource;
use connectors::oauth::OAuthClient;
use connectors::webhooks::{verify, SignatureScheme, WebhookError};
use connectors::ErrorClass;
use provider_support::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ISSUES: &str = "/repos/octocat/Hello-World/issues";
/// GitHub's next links name the repository by id.
const BY_ID: &str = "/repositories/1296269/issues";
const TOKEN: &str = "/login/oauth/access_token";

fn github_source(server: &MockServer, token: &str) -> SpecSource {
    let vars = vars(&[("owner", "octocat"), ("repo", "Hello-World")]);
    source(connection(
        retarget(&builtin("github"), &server.uri()),
        oauth_token(token),
        vars,
    ))
}

/// Issue `n`, updated `n` minutes after 09:00 on 22 April 2011.
fn issue(n: u64) -> Value {
    json!({
        "id": 1_000_000 + n,
        "node_id": "MDU6SXNzdWUx",
        "url": format!("https://api.github.com/repos/octocat/Hello-World/issues/{n}"),
        "number": n,
        "state": if n.is_multiple_of(3) { "closed" } else { "open" },
        "title": "Found a bug",
        "body": "I'm having a problem with this.",
        "user": { "login": "octocat", "id": 1, "type": "User", "site_admin": false },
        "labels": [{ "id": 208_045_946, "name": "bug", "color": "f29513", "default": true }],
        "assignees": [],
        "locked": false,
        "comments": 0,
        "closed_at": null,
        "created_at": "2011-04-22T09:00:00Z",
        "updated_at": format!("2011-04-22T{:02}:{:02}:00Z", 9 + n / 60, n % 60),
        "author_association": "COLLABORATOR",
    })
}

fn issues(ids: std::ops::Range<u64>) -> Value {
    Value::Array(ids.map(issue).collect())
}

fn link(server: &MockServer, page: u32, rel: &str) -> String {
    format!(
        "<{}{BY_ID}?state=all&sort=updated&direction=asc&per_page=100&page={page}>; rel=\"{rel}\"",
        server.uri()
    )
}

#[tokio::test]
async fn reads_issues_by_link_header_then_only_since_the_last_update() {
    let server = MockServer::start().await;
    let auth = || {
        header(
            "authorization",
            "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a",
        )
    };
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .and(query_param("state", "all"))
        .and(query_param("sort", "updated"))
        .and(query_param("direction", "asc"))
        .and(query_param("per_page", "100"))
        .and(query_param_is_missing("since"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!("{}, {}", link(&server, 2, "next"), link(&server, 3, "last")),
                )
                .set_body_json(issues(1..101)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(BY_ID))
        .and(QueryIs::exactly(
            "state=all&sort=updated&direction=asc&per_page=100&page=2",
        ))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    [
                        link(&server, 1, "prev"),
                        link(&server, 3, "next"),
                        link(&server, 3, "last"),
                        link(&server, 1, "first"),
                    ]
                    .join(", "),
                )
                .set_body_json(issues(101..201)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(BY_ID))
        .and(query_param("page", "3"))
        .and(auth())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!(
                        "{}, {}",
                        link(&server, 2, "prev"),
                        link(&server, 1, "first")
                    ),
                )
                .set_body_json(issues(201..246)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let source = github_source(&server, "gho_16C7e42F292c6912E7710c838347Ae178B4a");
    let (records, high_water) = read_stream(&source, "issues", None).await.unwrap();
    assert_each_once(&records, (1..246).map(|n| (1_000_000 + n).to_string()));
    assert_eq!(records[0].data["number"], 1);
    assert_eq!(
        high_water.as_deref(),
        Some("2011-04-22T13:05:00Z"),
        "issue 245's updated_at"
    );

    Mock::given(method("GET"))
        .and(path(ISSUES))
        .and(query_param("since", "2011-04-22T13:05:00Z"))
        .and(query_param("state", "all"))
        .and(query_param("per_page", "100"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(issues(12..13)))
        .expect(1)
        .mount(&server)
        .await;
    let (records, _) = read_stream(&source, "issues", high_water.as_deref())
        .await
        .unwrap();
    assert_each_once(&records, ["1000012".to_owned()]);
}

#[tokio::test]
async fn primary_and_secondary_rate_limits() {
    let server = MockServer::start().await;
    let reset = now_unix() + 120;
    let primary = |status: u16| {
        ResponseTemplate::new(status)
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-used", "5000")
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .insert_header("x-ratelimit-resource", "core")
            .set_body_json(json!({
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }))
    };
    let when = |token: &str| {
        Mock::given(method("GET"))
            .and(path(ISSUES))
            .and(header("authorization", format!("Bearer {token}").as_str()))
    };
    when("primary-403")
        .respond_with(primary(403))
        .mount(&server)
        .await;
    when("primary-429")
        .respond_with(primary(429))
        .mount(&server)
        .await;
    when("secondary")
        .respond_with(ResponseTemplate::new(403).insert_header("retry-after", "60").insert_header("x-ratelimit-remaining", "4990").set_body_json(json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        })))
        .mount(&server)
        .await;
    when("forbidden")
        .respond_with(ResponseTemplate::new(403).insert_header("x-ratelimit-remaining", "4999").set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/issues/issues#list-repository-issues",
        })))
        .mount(&server)
        .await;

    for token in ["primary-403", "primary-429"] {
        let err = read_error(&github_source(&server, token), "issues").await;
        let ErrorClass::RateLimited {
            retry_after: Some(wait),
        } = err.class
        else {
            panic!("{token}: {err:?}")
        };
        assert!(
            (Duration::from_secs(118)..=Duration::from_secs(120)).contains(&wait),
            "{token}: waits until the reset, not {wait:?}"
        );
    }
    let err = read_error(&github_source(&server, "secondary"), "issues").await;
    assert_eq!(err.class, rate_limited_for(60));
    let err = read_error(&github_source(&server, "forbidden"), "issues").await;
    assert_eq!((err.class, err.status), (ErrorClass::Permanent, Some(403)));
}

#[tokio::test]
async fn bad_credentials_are_refreshed_with_a_rotated_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .and(header("authorization", "Bearer ghu_expired"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401",
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(ISSUES))
        .and(header("authorization", "Bearer ghu_fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(issues(1..3)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ghu_fresh",
            "expires_in": 28800,
            "refresh_token": "ghr_rotated",
            "refresh_token_expires_in": 15_811_200,
            "scope": "",
            "token_type": "bearer",
        })))
        .expect(1)
        .mount(&server)
        .await;

    let err = read_error(&github_source(&server, "ghu_expired"), "issues").await;
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));

    let oauth = OAuthClient::new(
        &retarget(&builtin("github"), &server.uri()),
        &app(),
        &vars(&[]),
        http(),
    )
    .unwrap();
    let tokens = oauth
        .refresh(&SecretString::from("ghr_original"))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "ghu_fresh");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "ghr_rotated"
    );
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(28800)));
    assert!(tokens.scopes.is_empty());
    let sent = &requests_to(&server, TOKEN).await[0];
    assert_eq!(
        form(sent),
        vars(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "ghr_original"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );

    let (records, _) = read_stream(&github_source(&server, "ghu_fresh"), "issues", None)
        .await
        .unwrap();
    assert_each_once(&records, ["1000001", "1000002"].map(String::from));
}

/// GitHub answers token errors with HTTP 200 and an `error` field. A spent refresh token means
/// the user must reconnect, which is what `Auth` tells the caller.
#[tokio::test]
async fn a_bad_refresh_token_reported_with_a_200_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "error": "bad_refresh_token",
            "error_description": "The refresh token passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
        })))
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(
        &retarget(&builtin("github"), &server.uri()),
        &app(),
        &vars(&[]),
        http(),
    )
    .unwrap();
    let err = oauth
        .refresh(&SecretString::from("ghr_used_twice"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth, "{err}");
    assert!(err.message.contains("bad_refresh_token"), "{err}");
    assert!(!err.message.contains("ghr_used_twice"), "{err}");
}

#[tokio::test]
async fn authorize_with_pkce_then_exchange() {
    let start = OAuthClient::new(&builtin("github"), &app(), &vars(&[]), http())
        .unwrap()
        .authorize();
    assert_eq!(
        start.url.origin().ascii_serialization(),
        "https://github.com"
    );
    assert_eq!(start.url.path(), "/login/oauth/authorize");
    let params = query_map(&start.url);
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], REDIRECT_URL);
    assert_eq!(params["scope"], "repo");
    assert_eq!(params["state"], start.state);
    let verifier = start.pkce_verifier.expect("PKCE is on for GitHub");
    assert_pkce_s256(&params, &verifier);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "scope": "repo,gist",
            "token_type": "bearer",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(
        &retarget(&builtin("github"), &server.uri()),
        &app(),
        &vars(&[]),
        http(),
    )
    .unwrap();
    let tokens = oauth
        .exchange_code("a1b2c3d4e5f6a7b8c9d0", Some(&verifier))
        .await
        .unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(tokens.scopes, ["repo", "gist"]);
    assert!(tokens.refresh_token.is_none());
    let body = form(&requests_to(&server, TOKEN).await[0]);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert_eq!(body["code"], "a1b2c3d4e5f6a7b8c9d0");
    assert_eq!(body["redirect_uri"], REDIRECT_URL);
    assert_eq!(body["code_verifier"], verifier.expose_secret());
}

#[test]
fn webhooks_verify_with_githubs_published_vector() {
    let spec = builtin("github");
    let hooks = spec.webhooks.as_ref().unwrap();
    assert!(matches!(&hooks.signature, SignatureScheme::Github { .. }));
    assert_eq!(
        hooks.delivery_id_header.as_deref(),
        Some("X-GitHub-Delivery")
    );
    assert_eq!(hooks.event_type_header.as_deref(), Some("X-GitHub-Event"));

    let secret = b"It's a Secret to Everybody";
    let payload = b"Hello, World!";
    let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        format!("sha256={}", hex::encode(hmac_sha256(secret, &[payload]))),
        documented
    );
    let delivery = |sig: &str| {
        headers(&[
            ("X-GitHub-Event", "issues"),
            ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-GitHub-Hook-ID", "292430182"),
            ("X-Hub-Signature-256", sig),
        ])
    };
    let check =
        |sig: &str, body: &[u8]| verify(&hooks.signature, secret, &delivery(sig), body, now_unix());
    assert_eq!(check(documented, payload), Ok(()));
    assert_eq!(
        check(documented, b"Hello, World?"),
        Err(WebhookError::BadSignature)
    );
    let body = serde_json::to_vec(&json!({"action": "opened", "issue": issue(7)})).unwrap();
    let signed = format!("sha256={}", hex::encode(hmac_sha256(secret, &[&body])));
    assert_eq!(check(&signed, &body), Ok(()));
    // The legacy SHA-1 form, or the bare hex without its prefix, is not accepted.
    assert!(matches!(
        check(&signed["sha256=".len()..], &body),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        check("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6", &body),
        Err(WebhookError::Malformed(_))
    ));
}
