//! `/metrics`: closed without a token setting, refused without the token, and with it the
//! Prometheus text of what happened — requests, the queue's depth, claims, run outcomes, provider
//! calls by provider and status, and token refreshes — after a real sync against the sandbox.

mod common;

use common::sync::*;
use reqwest::StatusCode;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrations = "../migrations")]
async fn metrics_are_not_served_without_a_token_setting(db: PgPool) {
    let app = common::spawn_app(db).await;
    let res = common::client()
        .get(app.url("/metrics"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_need_the_token_and_report_what_happened(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let url = env.app.url("/metrics");
    let http = common::client();
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = scrape(&url, "not-the-token").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!res.text().await.unwrap().contains("patchbay_"));

    // A sync whose source token has expired: it is refreshed first.
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    sqlx::query("update connections set expires_at = now() - interval '1 minute' where id = $1")
        .bind(env.shop)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    let pool = env.pool("metrics-test:1", Default::default(), 2);
    env.until(Duration::from_secs(30), "the first sync", || async {
        env.runs(install).await.iter().any(|r| r.0 == "succeeded")
    })
    .await;
    pool.shutdown().await;

    let res = scrape(&url, METRICS_TOKEN).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let at_least_one = |metric: &str, labels: &[&str]| {
        let value = metric_sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("{metric} {labels:?} in:\n{text}"));
        assert!(value >= 1.0, "{metric} {labels:?} = {value}");
    };
    at_least_one(
        "patchbay_http_requests_total",
        &["area=\"api\"", "status=\"200\""],
    );
    at_least_one(
        "patchbay_http_request_duration_seconds_count",
        &["area=\"api\""],
    );
    at_least_one("patchbay_claims_total", &[]);
    at_least_one("patchbay_runs_total", &["outcome=\"succeeded\""]);
    at_least_one(
        "patchbay_provider_requests_total",
        &["provider=\"sandbox-shop\"", "status=\"200\""],
    );
    at_least_one(
        "patchbay_token_refreshes_total",
        &["provider=\"sandbox-shop\"", "outcome=\"refreshed\""],
    );
    assert_eq!(
        metric_sample(&text, "patchbay_queue_jobs", &["state=\"running\""]),
        Some(0.0)
    );
    assert!(metric_sample(&text, "patchbay_queue_jobs", &["state=\"queued\""]).is_some());
    // The histogram has the buckets set for it.
    assert!(
        text.contains("patchbay_http_request_duration_seconds_bucket"),
        "{text}"
    );
}
