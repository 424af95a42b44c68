//! The sandbox's fault switches, each observed over real HTTP: 5xx in turn, slowness, hangs
//! (with a client timeout), truncated JSON, and tokens revoked from the provider's side.

mod sandbox_support;

use std::time::{Duration, Instant};

use connectors::sandbox::FaultSettings;
use sandbox_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn fail_next_answers_500_502_503_in_turn_then_recovers() {
    let sb = spawn(config()).await;
    let tokens = login(&sb.base_url, "crm.read").await;
    sb.sandbox.faults().set_fail_next(4);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            api_get(&sb.base_url, "/crm/contacts", &tokens.access)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [500, 502, 503, 500, 200]);
    assert_eq!(sb.sandbox.faults().settings().fail_next, 0);
}

#[tokio::test]
async fn slow_ms_delays_every_api_response() {
    let sb = spawn(config()).await;
    let tokens = login(&sb.base_url, "crm.read").await;
    sb.sandbox.faults().set_slow_ms(300);
    for _ in 0..2 {
        let started = Instant::now();
        let resp = api_get(&sb.base_url, "/api/me", &tokens.access).await;
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "took {:?}",
            started.elapsed()
        );
    }
    sb.sandbox.faults().set_slow_ms(0);
    let started = Instant::now();
    api_get(&sb.base_url, "/api/me", &tokens.access).await;
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn hang_next_never_answers_so_clients_time_out() {
    let sb = spawn(config()).await;
    let tokens = login(&sb.base_url, "crm.read").await;
    sb.sandbox.faults().set_hang_next(1);
    let started = Instant::now();
    let err = http()
        .get(format!("{}/crm/contacts", sb.base_url))
        .bearer_auth(&tokens.access)
        .timeout(Duration::from_millis(400))
        .send()
        .await
        .expect_err("the hung call must not answer");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        api_get(&sb.base_url, "/crm/contacts", &tokens.access)
            .await
            .status(),
        200,
        "only the next call hangs"
    );
}

#[tokio::test]
async fn malformed_next_answers_200_with_truncated_json() {
    let sb = spawn(config()).await;
    let tokens = login(&sb.base_url, "crm.read").await;
    sb.sandbox.faults().set_malformed_next(2);
    for path in ["/crm/contacts", "/api/me"] {
        let resp = api_get(&sb.base_url, path, &tokens.access).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("body");
        assert!(!text.is_empty());
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{path} answered valid JSON: {text}"
        );
    }
    let resp = api_get(&sb.base_url, "/crm/contacts", &tokens.access).await;
    assert!(resp.json::<Value>().await.is_ok());
}

#[tokio::test]
async fn revoke_tokens_invalidates_access_and_refresh_tokens() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read").await;
    let resp = http()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"revoke_tokens": true}))
        .send()
        .await
        .expect("set");
    assert_eq!(resp.status(), 200);

    assert_eq!(
        api_get(base, "/crm/contacts", &tokens.access)
            .await
            .status(),
        401
    );
    let refreshed = refresh(base, &tokens.refresh).await;
    assert_eq!(refreshed.status(), 400);
    assert_eq!(error_code(refreshed).await, "invalid_grant");

    // The user reconnects: new grants work.
    let again = login(base, "crm.read").await;
    assert_eq!(
        api_get(base, "/crm/contacts", &again.access).await.status(),
        200
    );

    // `revoke_all_tokens` does the same from a test.
    sb.sandbox.revoke_all_tokens();
    assert_eq!(
        api_get(base, "/crm/contacts", &again.access).await.status(),
        401
    );
}

#[tokio::test]
async fn faults_are_read_and_set_over_http() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let set = http()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"fail_next": 2, "slow_ms": 5}))
        .send()
        .await
        .expect("set");
    assert_eq!(set.status(), 200);
    let read: FaultSettings = http()
        .get(format!("{base}/_sandbox/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        read,
        FaultSettings {
            fail_next: 2,
            slow_ms: 5,
            ..FaultSettings::default()
        }
    );
    assert_eq!(sb.sandbox.faults().settings(), read);

    let unknown = http()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"explode": true}))
        .send()
        .await
        .expect("set");
    assert_eq!(unknown.status(), 422);
    let body: Value = unknown.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("explode"),
        "{body}"
    );

    sb.sandbox.faults().clear();
    assert_eq!(sb.sandbox.faults().settings(), FaultSettings::default());
}

#[tokio::test]
async fn faults_spare_the_oauth_endpoints() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    sb.sandbox.faults().set_fail_next(1);
    sb.sandbox.faults().set_malformed_next(1);
    let tokens = login(base, "crm.read").await;
    assert_eq!(
        api_get(base, "/crm/contacts", &tokens.access)
            .await
            .status(),
        500,
        "the API call takes the fault"
    );
    let resp = api_get(base, "/crm/contacts", &tokens.access).await;
    assert!(
        resp.json::<Value>().await.is_err(),
        "then the malformed one"
    );
}

#[tokio::test]
async fn the_fault_api_is_off_unless_configured() {
    let sb = spawn(SandboxConfig {
        fault_api: false,
        ..config()
    })
    .await;
    let res = http()
        .post(format!("{}/_sandbox/faults", sb.base_url))
        .json(&serde_json::json!({"hang_next": 5}))
        .send()
        .await
        .expect("request");
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(sb.sandbox.faults().settings().hang_next, 0);
}

#[tokio::test]
async fn a_429_storm_answers_with_retry_after_and_every_call_is_counted() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read").await;
    sb.sandbox.faults().clear_request_times();
    sb.sandbox.faults().set_rate_limit_next(2, 3);
    for _ in 0..2 {
        let res = api_get(base, "/crm/contacts", &tokens.access).await;
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()["retry-after"], "3");
    }
    assert_eq!(
        api_get(base, "/crm/contacts", &tokens.access)
            .await
            .status(),
        200
    );
    let times = sb.sandbox.faults().request_times();
    assert_eq!(times.len(), 3, "faulted calls count too");
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // Over HTTP as well.
    let set = http()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"rate_limit_next": 1}))
        .send()
        .await
        .expect("set");
    let read: FaultSettings = set.json().await.expect("JSON");
    assert_eq!(read.rate_limit_next, 1);
    let res = api_get(base, "/crm/contacts", &tokens.access).await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        res.headers()["retry-after"],
        "3",
        "a patch leaves the other switches alone"
    );
}
