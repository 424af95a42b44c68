//! The sandbox's OAuth server over real HTTP: consent page, code + PKCE exchange, refresh
//! rotation, revocation, and the ways an authorization can go wrong.

mod sandbox_support;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sandbox_support::*;
use serde_json::Value;

#[tokio::test]
async fn full_oauth_dance_refreshes_with_rotation_and_revokes() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (verifier, challenge) = pkce();
    let params = authorize_params("crm.read shop.read", &challenge, REDIRECT_URI);

    let page = http()
        .get(format!("{base}/oauth/authorize"))
        .query(&params)
        .send()
        .await
        .expect("GET authorize");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers().get("set-cookie").is_none(),
        "the consent page sets no cookie"
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Patchbay Test wants to access your Sandbox account"),
        "{html}"
    );
    assert!(html.contains("See your Sandbox CRM contacts and companies"));
    assert!(html.contains("See your Sandbox Shop customers and orders"));
    assert!(
        !html.contains("Create and edit"),
        "only the requested scopes are listed"
    );
    assert!(
        html.contains("name=\"decision\" value=\"approve\"") && html.contains("value=\"deny\"")
    );
    assert!(
        html.contains(&challenge),
        "the form echoes the request's parameters"
    );

    let code = approve(base, "crm.read shop.read", &challenge).await;

    // Exchange with HTTP Basic client authentication (form-urlencoded id and secret).
    let basic = STANDARD.encode(format!(
        "{CLIENT_ID}:{}",
        url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()
    ));
    let resp = http()
        .post(format!("{base}/oauth/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "shop.read crm.read");
    let first = Tokens {
        access: body["access_token"].as_str().expect("access").to_owned(),
        refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
    };

    let me = api_get(base, "/api/me", &first.access).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("me JSON");
    assert_eq!(me["account_id"], "acct_demo");
    assert_eq!(me["account_name"], "Sandbox Demo Co");

    let second = tokens_of(refresh(base, &first.refresh).await).await;
    assert_ne!(
        second.refresh, first.refresh,
        "refresh rotates the refresh token"
    );
    assert_ne!(second.access, first.access);
    assert_eq!(
        api_get(base, "/crm/contacts", &second.access)
            .await
            .status(),
        200
    );

    // Revoking the access token revokes its family: the API and the refresh token stop working.
    let revoke = http()
        .post(format!("{base}/oauth/revoke"))
        .basic_auth(
            CLIENT_ID,
            Some(
                CLIENT_SECRET
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D"),
            ),
        )
        .form(&[("token", second.access.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 200);
    let denied = api_get(base, "/crm/contacts", &second.access).await;
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(error_code(denied).await, "invalid_token");
    assert_eq!(
        error_code(refresh(base, &second.refresh).await).await,
        "invalid_grant"
    );
    assert_eq!(sb.sandbox.token_requests(), 3);
}

#[tokio::test]
async fn a_rotated_refresh_token_fails_and_revokes_the_grant() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let first = login(base, "crm.read").await;
    let second = tokens_of(refresh(base, &first.refresh).await).await;

    let reused = refresh(base, &first.refresh).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(error_code(reused).await, "invalid_grant");
    // Reuse detection: the tokens that replaced it are revoked too.
    assert_eq!(
        api_get(base, "/crm/contacts", &second.access)
            .await
            .status(),
        401
    );
    assert_eq!(
        error_code(refresh(base, &second.refresh).await).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn revoking_unknown_tokens_is_ok_but_bad_client_credentials_are_not() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let ok = http()
        .post(format!("{base}/oauth/revoke"))
        .form(&[
            ("token", "never-issued"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(ok.status(), 200);
    let bad = http()
        .post(format!("{base}/oauth/revoke"))
        .form(&[
            ("token", "never-issued"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(bad.status(), 401);
    assert_eq!(error_code(bad).await, "invalid_client");
}

#[tokio::test]
async fn pkce_mismatch_is_invalid_grant() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (_, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let code = approve(base, "crm.read", &challenge).await;
    let resp = exchange(base, &code, &other_verifier).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("error JSON");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"]
        .as_str()
        .unwrap_or_default()
        .contains("code_verifier"));
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (verifier, challenge) = pkce();
    let code = approve(base, "crm.read", &challenge).await;
    let tokens = tokens_of(exchange(base, &code, &verifier).await).await;
    assert_eq!(
        api_get(base, "/crm/contacts", &tokens.access)
            .await
            .status(),
        200
    );

    let again = exchange(base, &code, &verifier).await;
    assert_eq!(again.status(), 400);
    assert_eq!(error_code(again).await, "invalid_grant");
    assert_eq!(
        api_get(base, "/crm/contacts", &tokens.access)
            .await
            .status(),
        401
    );
    assert_eq!(
        error_code(refresh(base, &tokens.refresh).await).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_redirect_uri_gets_a_page_or_invalid_grant_never_a_redirect() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (verifier, challenge) = pkce();
    let evil = authorize_params(
        "crm.read",
        &challenge,
        "http://127.0.0.1:9/oauth/callback/../evil",
    );
    for resp in [
        http()
            .get(format!("{base}/oauth/authorize"))
            .query(&evil)
            .send()
            .await
            .expect("GET"),
        decide(base, &evil, "approve").await,
    ] {
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        assert!(resp
            .text()
            .await
            .expect("html")
            .contains("Invalid redirect URI"));
    }

    // A code bound to one registered URI cannot be redeemed with another registered URI.
    let code = approve(base, "crm.read", &challenge).await;
    let resp = token_request(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", OTHER_REDIRECT_URI),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(error_code(resp).await, "invalid_grant");
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_not_a_redirect() {
    let sb = spawn(config()).await;
    let (_, challenge) = pkce();
    let mut params = authorize_params("crm.read", &challenge, REDIRECT_URI);
    params[1] = ("client_id", "who-is-this");
    let resp = http()
        .get(format!("{}/oauth/authorize", sb.base_url))
        .query(&params)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    assert!(resp
        .text()
        .await
        .expect("html")
        .contains("Unknown application"));
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let sb = spawn(config()).await;
    let (_, challenge) = pkce();
    let resp = decide(
        &sb.base_url,
        &authorize_params("crm.read", &challenge, REDIRECT_URI),
        "deny",
    )
    .await;
    let params = redirect_params(&resp, REDIRECT_URI);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(params.get("state").map(String::as_str), Some("xyz-state"));
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn missing_or_plain_pkce_and_unknown_scopes_redirect_with_errors() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (_, challenge) = pkce();
    let cases: [(&str, &str, &str); 4] = [
        ("code_challenge_method", "plain", "invalid_request"),
        ("code_challenge", "", "invalid_request"),
        ("scope", "crm.read admin", "invalid_scope"),
        ("response_type", "token", "unsupported_response_type"),
    ];
    for (name, value, expected) in cases {
        let params: Vec<(&str, &str)> = authorize_params("crm.read", &challenge, REDIRECT_URI)
            .into_iter()
            .map(|(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect();
        let resp = http()
            .get(format!("{base}/oauth/authorize"))
            .query(&params)
            .send()
            .await
            .expect("GET");
        let got = redirect_params(&resp, REDIRECT_URI);
        assert_eq!(
            got.get("error").map(String::as_str),
            Some(expected),
            "{name}={value}"
        );
        assert_eq!(got.get("state").map(String::as_str), Some("xyz-state"));
    }
}

#[tokio::test]
async fn wrong_client_secret_is_401_invalid_client() {
    let sb = spawn(config()).await;
    let resp = http()
        .post(format!("{}/oauth/token", sb.base_url))
        .basic_auth(CLIENT_ID, Some("nope"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(error_code(resp).await, "invalid_client");
    assert_eq!(sb.sandbox.token_requests(), 1, "failed calls count too");
}

#[tokio::test]
async fn expired_access_tokens_are_401_and_refresh_brings_a_new_one() {
    let sb = spawn(SandboxConfig {
        access_token_ttl: Duration::from_millis(300),
        ..config()
    })
    .await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "shop.read").await;
    assert_eq!(
        api_get(base, "/shop/orders", &tokens.access).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        api_get(base, "/shop/orders", &tokens.access).await.status(),
        401
    );
    let fresh = tokens_of(refresh(base, &tokens.refresh).await).await;
    assert_eq!(
        api_get(base, "/shop/orders", &fresh.access).await.status(),
        200
    );
}

#[tokio::test]
async fn calls_outside_the_granted_scopes_are_403() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "shop.read").await;
    let resp = api_get(base, "/crm/contacts", &tokens.access).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(error_code(resp).await, "insufficient_scope");
    let narrower = token_request(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh),
            ("scope", "shop.read crm.read"),
        ],
    )
    .await;
    assert_eq!(
        error_code(narrower).await,
        "invalid_scope",
        "refresh cannot widen the grant"
    );
}
