//! Writes to the sandbox API (validation, 404s, scopes, idempotency keys) and its per-token
//! rate limit.

mod sandbox_support;

use std::time::Duration;

use sandbox_support::*;
use serde_json::{json, Value};

async fn post(
    base: &str,
    path: &str,
    access: &str,
    key: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{base}{path}"))
        .bearer_auth(access)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    req.send().await.expect("POST")
}

#[tokio::test]
async fn creates_updates_and_refuses_bad_writes_clearly() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read crm.write shop.read").await;

    let created = post(
        base,
        "/crm/contacts",
        &tokens.access,
        None,
        r#"{"email":"ada@example.com","name":"Ada"}"#,
    )
    .await;
    assert_eq!(created.status(), 201);
    let contact: Value = created.json().await.expect("JSON");
    assert_eq!(
        contact["id"], "con_000026",
        "ids continue after the 25 seeded contacts"
    );
    assert_eq!(contact["name"], "Ada");
    assert_eq!(contact["phone"], Value::Null, "fields left out are null");
    assert_eq!(sb.sandbox.count("contacts"), 26);

    let patched = http()
        .patch(format!("{base}/crm/contacts/con_000026"))
        .bearer_auth(&tokens.access)
        .json(&json!({"phone": "+1-415-555-0100", "company_id": "com_000003"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.expect("JSON");
    assert_eq!(
        (patched["name"].as_str(), patched["company_id"].as_str()),
        (Some("Ada"), Some("com_000003"))
    );
    assert!(
        patched["updated_at"].as_str() >= contact["updated_at"].as_str(),
        "fixed-width timestamps sort as text"
    );

    let missing = http()
        .patch(format!("{base}/crm/contacts/con_999999"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "Nobody"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(missing.status(), 404);

    let cases = [
        (
            r#"{"email":"b@example.com","nickname":"B"}"#,
            422,
            "unknown field `nickname`",
        ),
        (r#"{"name":"No Email"}"#, 422, "field `email` is required"),
        (
            r#"{"email":"b@example.com","id":"con_1"}"#,
            422,
            "field `id` is read-only",
        ),
        (
            r#"{"email":42}"#,
            422,
            "field `email` must be an email address",
        ),
        (
            r#"{"email":"b@example.com","company_id":"com_404"}"#,
            422,
            "no company with id `com_404`",
        ),
        (r#"{"email": "#, 400, "not valid JSON"),
    ];
    for (body, status, message) in cases {
        let resp = post(base, "/crm/contacts", &tokens.access, None, body).await;
        assert_eq!(resp.status(), status, "{body}");
        let err: Value = resp.json().await.expect("JSON error");
        assert!(
            err["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{body}: {err}"
        );
    }

    let orders = post(base, "/shop/orders", &tokens.access, None, "{}").await;
    assert_eq!(orders.status(), 403, "shop.write was not granted");
    let all = login(base, ALL_SCOPES).await;
    assert_eq!(
        post(base, "/shop/orders", &all.access, None, "{}")
            .await
            .status(),
        405,
        "orders are read-only"
    );
    let customer = post(
        base,
        "/shop/customers",
        &all.access,
        None,
        r#"{"email":"c@example.com","first_name":"Cy"}"#,
    )
    .await;
    assert_eq!(customer.status(), 201);
    assert_eq!(
        sb.sandbox.count("contacts"),
        26,
        "refused writes changed nothing"
    );
}

#[tokio::test]
async fn idempotent_create_replays_and_conflicting_reuse_is_422() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.write").await;
    let body = r#"{"name":"Acme Rockets","domain":"acme.example.com"}"#;

    let first = post(base, "/crm/companies", &tokens.access, Some("key-1"), body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("JSON");

    // Same key, same JSON (other spacing and key order): the original answer.
    let same = r#"{ "domain": "acme.example.com", "name": "Acme Rockets" }"#;
    let replay = post(base, "/crm/companies", &tokens.access, Some("key-1"), same).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.expect("JSON"), first);
    assert_eq!(sb.sandbox.count("companies"), 26, "created once");

    let conflict = post(
        base,
        "/crm/companies",
        &tokens.access,
        Some("key-1"),
        r#"{"name":"Other"}"#,
    )
    .await;
    assert_eq!(conflict.status(), 422);
    assert_eq!(error_code(conflict).await, "idempotency_key_reused");

    // A refused write is not remembered: the key can be reused with a corrected body.
    assert_eq!(
        post(
            base,
            "/crm/companies",
            &tokens.access,
            Some("key-2"),
            r#"{"name":""}"#
        )
        .await
        .status(),
        422
    );
    assert_eq!(
        post(
            base,
            "/crm/companies",
            &tokens.access,
            Some("key-2"),
            r#"{"name":"Fixed"}"#
        )
        .await
        .status(),
        201
    );
    assert_eq!(sb.sandbox.count("companies"), 27);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sb = spawn(SandboxConfig {
        rate_limit_per_sec: 5,
        ..config()
    })
    .await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read").await;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let resp = api_get(base, "/crm/contacts?limit=1", &tokens.access).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "5");
        remaining.push(
            resp.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap_or_default()
                .parse::<u32>()
                .unwrap_or(99),
        );
    }
    assert!(
        remaining.windows(2).all(|w| w[1] <= w[0]) && remaining[0] >= 3,
        "{remaining:?}"
    );

    let limited = api_get(base, "/crm/contacts?limit=1", &tokens.access).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap_or_default()
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(error_code(limited).await, "rate_limited");

    // Another token has its own bucket; the first recovers after Retry-After.
    let other = login(base, "crm.read").await;
    assert_eq!(
        api_get(base, "/crm/contacts?limit=1", &other.access)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        api_get(base, "/crm/contacts?limit=1", &tokens.access)
            .await
            .status(),
        200
    );
}
