//! The shipped Stripe spec against a fake that answers as Stripe's API reference shows: list
//! objects paged with `has_more` and `starting_after=<last id>`, 429 and 401 errors for a secret
//! key, and `Stripe-Signature` webhooks checked against signatures computed here.

mod provider_support;

use connectors::engine::{Credentials, SpecSource};
use connectors::webhooks::{verify, SignatureScheme, WebhookError};
use connectors::ErrorClass;
use provider_support::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const WEBHOOK_SECRET: &str = "whsec_7cb5f0b1b0b4d6c0c1c2c3c4c5c6c7c8";

fn stripe_source(server: &MockServer, key: &str) -> SpecSource {
    let creds = Credentials::ApiKey {
        key: SecretString::from(key.to_owned()),
    };
    source(connection(
        retarget(&builtin("stripe"), &server.uri()),
        creds,
        vars(&[("api_key", key)]),
    ))
}

fn customer_id(n: u32) -> String {
    format!("cus_P{n:013}")
}

fn customer(n: u32) -> Value {
    json!({
        "id": customer_id(n),
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": 1_680_893_993 - i64::from(n),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "email": format!("jenny{n}@example.com"),
        "invoice_prefix": "0759376C",
        "livemode": false,
        "metadata": {},
        "name": "Jenny Rosen",
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

fn list(ids: std::ops::Range<u32>, has_more: bool) -> Value {
    json!({
        "object": "list",
        "url": "/v1/customers",
        "has_more": has_more,
        "data": ids.map(customer).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn reads_customers_with_starting_after_the_last_id() {
    let server = MockServer::start().await;
    let get = || {
        Mock::given(method("GET"))
            .and(path("/v1/customers"))
            .and(query_param("limit", "100"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
    };
    get()
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(0..100, true)))
        .expect(1)
        .mount(&server)
        .await;
    get()
        .and(query_param("starting_after", customer_id(99)))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(100..200, true)))
        .expect(1)
        .mount(&server)
        .await;
    get()
        .and(query_param("starting_after", customer_id(199)))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(200..242, false)))
        .expect(1)
        .mount(&server)
        .await;

    let (records, high_water) = read_stream(&stripe_source(&server, KEY), "customers", None)
        .await
        .unwrap();
    assert_each_once(&records, (0..242).map(customer_id));
    assert_eq!(records[241].data["email"], "jenny241@example.com");
    assert_eq!(high_water, None, "Stripe streams are full reads");
}

#[tokio::test]
async fn an_empty_list_ends_the_read() {
    let server = MockServer::start().await;
    // An account with no charges yet: one request, no records, no error.
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "url": "/v1/charges", "has_more": false, "data": []}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (records, _) = read_stream(&stripe_source(&server, KEY), "charges", None)
        .await
        .unwrap();
    assert!(records.is_empty());
}

#[tokio::test]
async fn a_429_is_rate_limited() {
    let server = MockServer::start().await;
    let body = json!({"error": {
        "code": "rate_limit",
        "message": "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
        "type": "invalid_request_error",
    }});
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_json(&body),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(&body),
        )
        .mount(&server)
        .await;

    let err = read_error(&stripe_source(&server, KEY), "customers").await;
    assert_eq!((err.class, err.status), (rate_limited_for(3), Some(429)));
    let err = read_error(&stripe_source(&server, KEY), "invoices").await;
    assert_eq!(err.class, ErrorClass::RateLimited { retry_after: None });
}

#[tokio::test]
async fn a_bad_key_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(header("authorization", "Bearer sk_test_revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": "Invalid API Key provided: sk_test_*****oked",
            "type": "invalid_request_error",
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let err = read_error(&stripe_source(&server, "sk_test_revoked"), "customers").await;
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));
    assert!(
        !err.message.contains("sk_test_revoked"),
        "the key must not reach the message: {}",
        err.message
    );
}

fn event() -> Value {
    json!({
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_686_089_970,
        "data": { "object": customer(7) },
        "livemode": false,
        "pending_webhooks": 0,
        "request": { "id": "req_2Rh1mS8vnXn0Wl", "idempotency_key": "9b1c2d3e-aaaa-4bbb-8ccc-0123456789ab" },
        "type": "customer.created",
    })
}

/// Stripe's scheme: `v1` is hex HMAC-SHA256 of `"{t}.{raw body}"` keyed with the whole
/// `whsec_…` string.
fn stripe_v1(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(hmac_sha256(
        secret.as_bytes(),
        &[t.to_string().as_bytes(), b".", body],
    ))
}

#[tokio::test]
async fn webhooks_verify_as_stripe_signs_them() {
    let spec = builtin("stripe");
    let hooks = spec.webhooks.as_ref().unwrap();
    let scheme = &hooks.signature;
    assert!(
        matches!(
            scheme,
            SignatureScheme::Stripe {
                tolerance_secs: 300,
                ..
            }
        ),
        "{scheme:?}"
    );
    let body = serde_json::to_vec_pretty(&event()).unwrap();
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        parsed.pointer(hooks.delivery_id_pointer.as_deref().unwrap()),
        Some(&json!("evt_1NG8Du2eZvKYlo2CUI79vXWy"))
    );
    assert_eq!(
        parsed.pointer(hooks.event_type_pointer.as_deref().unwrap()),
        Some(&json!("customer.created"))
    );

    let now = now_unix();
    let check = |value: String, body: &[u8], now: i64| {
        verify(
            scheme,
            WEBHOOK_SECRET.as_bytes(),
            &headers(&[("Stripe-Signature", &value)]),
            body,
            now,
        )
    };
    let v1 = stripe_v1(WEBHOOK_SECRET, now, &body);
    assert_eq!(check(format!("t={now},v1={v1}"), &body, now), Ok(()));
    // Test-mode deliveries also carry a `v0`; during secret rotation there are two `v1`s.
    let old = stripe_v1("whsec_old_secret_rolled_yesterday", now, &body);
    let v0 = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
    assert_eq!(
        check(format!("t={now},v1={old},v1={v1},v0={v0}"), &body, now),
        Ok(())
    );

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        check(format!("t={now},v1={v1}"), &tampered, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        check(format!("t={now},v1={old}"), &body, now),
        Err(WebhookError::BadSignature)
    );
    // The timestamp is signed: moving it breaks the signature...
    assert_eq!(
        check(format!("t={},v1={v1}", now + 1), &body, now),
        Err(WebhookError::BadSignature)
    );
    // ...and an authentic delivery older than the 300 s tolerance is a replay.
    let stale = now - 301;
    assert_eq!(
        check(
            format!("t={stale},v1={}", stripe_v1(WEBHOOK_SECRET, stale, &body)),
            &body,
            now
        ),
        Err(WebhookError::Expired { age_secs: 301 })
    );
    assert_eq!(
        verify(scheme, WEBHOOK_SECRET.as_bytes(), &headers(&[]), &body, now),
        Err(WebhookError::MissingHeader("stripe-signature".into()))
    );
}
