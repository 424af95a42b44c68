//! Alerts: rules set through the admin console's server functions, evaluated against seeded runs,
//! stale installs and connections needing reauthorization; webhook deliveries to a local receiver
//! (wiremock) carrying valid signatures, retried with backoff while the receiver fails and marked
//! failed when it never recovers; the worker pool doing both on its own; who may touch rules.

mod common;

use app::domain::admin::alerts::{self, AlertSettings};
use common::sync::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn settings(max_attempts: i32) -> AlertSettings {
    AlertSettings {
        evaluate_every: Duration::ZERO,
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(50),
        max_attempts,
        public_url: "https://patchbay.example".into(),
    }
}

/// Seeds one ended attempt of the env's tenant's `install` (`seed_run` with what these tests share).
async fn seed(
    env: &SyncEnv,
    install: Uuid,
    listing: Uuid,
    outcome: &str,
    class: &str,
    ago: &str,
) -> i64 {
    seed_run(
        env,
        env.tenant,
        install,
        listing,
        "sandbox-shop",
        outcome,
        Some(class),
        ago,
    )
    .await
}

async fn alerts_page(env: &SyncEnv) -> Value {
    let (status, page) = env.app.call_json(&env.admin, "admin/alerts", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

/// Adds a rule through the console's form; returns its id and signing secret.
async fn add_rule(env: &SyncEnv, form: &[(&str, &str)]) -> (Uuid, String) {
    let (status, body) = env
        .app
        .call_json(&env.admin, "admin/alerts/create", form)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = alerts_page(env).await;
    let name = form.iter().find(|(k, _)| *k == "name").unwrap().1;
    let rule = page["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("rule {name} not listed: {page}"));
    (
        rule["id"].as_str().unwrap().parse().unwrap(),
        rule["secret"].as_str().unwrap().to_owned(),
    )
}

/// Sends due deliveries until none is pending (each retry waits out its short backoff).
async fn deliver_all(env: &SyncEnv, settings: &AlertSettings) {
    let start = Instant::now();
    loop {
        alerts::deliver(
            &env.app.pool,
            &env.app.vault,
            &env.app.connect.http,
            settings,
        )
        .await
        .unwrap();
        let pending: i64 =
            sqlx::query_scalar("select count(*) from alert_deliveries where state = 'pending'")
                .fetch_one(&env.app.admin_pool)
                .await
                .unwrap();
        if pending == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "deliveries never settled"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Checks the request's signature with `secret`, and that another secret fails it.
fn assert_signed(req: &Request, secret: &str) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let scheme = alerts::signature_scheme();
    connectors::webhooks::verify(&scheme, secret.as_bytes(), &req.headers, &req.body, now)
        .unwrap_or_else(|e| {
            panic!(
                "bad signature ({e:?}) on {}",
                String::from_utf8_lossy(&req.body)
            )
        });
    assert!(
        connectors::webhooks::verify(&scheme, b"pbsec_another", &req.headers, &req.body, now)
            .is_err(),
        "a signature that any secret passes proves nothing"
    );
    let mut tampered = req.body.clone();
    tampered.push(b' ');
    assert!(
        connectors::webhooks::verify(&scheme, secret.as_bytes(), &req.headers, &tampered, now)
            .is_err()
    );
    assert_eq!(req.headers["content-type"], "application/json");
    assert!(req.headers.contains_key("patchbay-delivery"));
    serde_json::from_slice(&req.body).unwrap()
}

async fn delivery_rows(env: &SyncEnv) -> Vec<(String, String, i32, Option<i32>, Option<String>)> {
    sqlx::query_as(
        "select event, state, attempts, last_status, last_error from alert_deliveries order by id",
    )
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn dead_letter_alerts_are_signed_retried_and_resolved(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    for _ in 0..3 {
        seed(&env, install, listing, "dead", "permanent", "5 minutes").await;
    }
    // An old dead letter and a retrying failure do not count.
    seed(&env, install, listing, "dead", "permanent", "3 hours").await;
    seed(&env, install, listing, "failed", "transient", "1 minute").await;

    // The receiver fails twice, then takes the delivery.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(500).set_body_string("receiver down"))
        .up_to_n_times(2)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let url = format!("{}/alerts", receiver.uri());
    let (rule, secret) = add_rule(
        &env,
        &[
            ("name", "Dead letters"),
            ("kind", "dead_letters"),
            ("threshold", "2"),
            ("window_minutes", "60"),
            ("webhook_url", &url),
        ],
    )
    .await;
    assert!(secret.starts_with("pbsec_"), "{secret}");
    let stored: Vec<u8> = sqlx::query_scalar("select secret_enc from alert_rules where id = $1")
        .bind(rule)
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert!(
        !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the signing secret is stored sealed"
    );

    let s = settings(8);
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!((done.rules, done.opened, done.resolved), (1, 1, 0));
    // Evaluating again keeps the one open alert, queues nothing new.
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!((done.opened, done.resolved), (0, 0));

    deliver_all(&env, &s).await;
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two failures, then the delivery");
    let ids: Vec<_> = requests
        .iter()
        .map(|r| r.headers["patchbay-delivery"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one delivery, retried: {ids:?}"
    );
    for req in &requests {
        let body = assert_signed(req, &secret);
        assert_eq!(body["event"], "alert.opened");
        assert_eq!(req.headers["patchbay-event"], "alert.opened");
        assert_eq!(body["rule"]["kind"], "dead_letters");
        assert_eq!(body["alert"]["detail"]["count"], 3, "{body}");
        assert_eq!(
            body["alert"]["detail"]["top"][0]["error_class"],
            "permanent"
        );
        assert_eq!(
            body["alert"]["link"],
            "https://patchbay.example/admin/failures?outcome=dead&range=1h"
        );
        assert!(
            body["alert"]["title"]
                .as_str()
                .unwrap()
                .starts_with("3 dead letters"),
            "{body}"
        );
    }
    assert_eq!(
        delivery_rows(&env).await,
        vec![(
            "alert.opened".into(),
            "delivered".into(),
            3,
            Some(204),
            None
        )]
    );

    // The in-app list has it; an admin acknowledges it.
    let page = alerts_page(&env).await;
    assert_eq!(page["open"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["rules"][0]["open"], 1);
    assert_eq!(page["deliveries"][0]["state"], "delivered");
    let alert = page["open"][0]["id"].as_i64().unwrap().to_string();
    let (status, body) = env
        .app
        .call_json(&env.admin, "admin/alerts/ack", &[("id", &alert)])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = alerts_page(&env).await;
    assert!(page["open"][0]["acknowledged"].is_array(), "{page}");
    let res = env
        .admin
        .get(env.app.url("/admin/alerts"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("3 dead letters in the last hour (more than 2)"),
        "{html}"
    );
    assert!(html.contains("data-state=\"acknowledged\""));

    // The dead letters age out of the window: resolved, and the receiver told.
    sqlx::query("update sync_runs set finished_at = finished_at - interval '2 hours' where outcome = 'dead'")
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!((done.opened, done.resolved), (0, 1));
    deliver_all(&env, &s).await;
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4);
    let body = assert_signed(&requests[3], &secret);
    assert_eq!(body["event"], "alert.resolved");
    assert!(body["alert"]["resolved_at"].is_string(), "{body}");
    let page = alerts_page(&env).await;
    assert_eq!(page["open"].as_array().unwrap().len(), 0);
    assert_eq!(page["resolved"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_receiver_that_never_recovers_ends_in_a_failed_delivery(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&receiver)
        .await;
    let url = format!("{}/hook", receiver.uri());
    let (rule, secret) = add_rule(
        &env,
        &[
            ("name", "Reauth"),
            ("kind", "needs_reauth"),
            ("webhook_url", &url),
        ],
    )
    .await;
    // A test delivery from the console, to a receiver in maintenance.
    let (status, body) = env
        .app
        .call_json(
            &env.admin,
            "admin/alerts/rule",
            &[("id", &rule.to_string()), ("action", "test")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let s = settings(3);
    deliver_all(&env, &s).await;
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "max_attempts");
    for req in &requests {
        assert_eq!(assert_signed(req, &secret)["event"], "alert.test");
    }
    let rows = delivery_rows(&env).await;
    assert_eq!(rows.len(), 1);
    let (event, state, attempts, last_status, error) = &rows[0];
    assert_eq!(
        (event.as_str(), state.as_str(), *attempts, *last_status),
        ("alert.test", "failed", 3, Some(503))
    );
    assert!(error.as_deref().unwrap().contains("HTTP 503"), "{error:?}");
    let page = alerts_page(&env).await;
    assert_eq!(page["deliveries"][0]["state"], "failed");

    // A new secret signs the next delivery; the old one no longer verifies it.
    let (status, _) = env
        .app
        .call_json(
            &env.admin,
            "admin/alerts/rule",
            &[("id", &rule.to_string()), ("action", "rotate")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = alerts_page(&env).await;
    let rotated = page["rules"][0]["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);
    env.app
        .call_json(
            &env.admin,
            "admin/alerts/rule",
            &[("id", &rule.to_string()), ("action", "test")],
        )
        .await;
    alerts::deliver(&env.app.pool, &env.app.vault, &env.app.connect.http, &s)
        .await
        .unwrap();
    let requests = receiver.received_requests().await.unwrap();
    let last = requests.last().unwrap();
    assert_signed(last, &rotated);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(connectors::webhooks::verify(
        &alerts::signature_scheme(),
        secret.as_bytes(),
        &last.headers,
        &last.body,
        now
    )
    .is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn stale_installs_and_reauth_connections_raise_one_alert_each(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["schedule", "manual"], "1h")
        .await;
    add_rule(&env, &[("name", "Stale"), ("kind", "stale_installs")]).await;
    add_rule(&env, &[("name", "Reauth"), ("kind", "needs_reauth")]).await;
    let s = settings(8);
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!(
        (done.rules, done.opened),
        (2, 0),
        "fresh install, healthy connections"
    );

    sqlx::query("update installs set installed_at = now() - interval '1 day', last_synced_at = now() - interval '3 hours' where id = $1")
        .bind(install)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    sqlx::query("update connections set status = 'needs_reauth', status_reason = 'The provider refused the refresh token.' where id = $1")
        .bind(env.shop)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!((done.opened, done.resolved), (2, 0));
    let page = alerts_page(&env).await;
    let open = page["open"].as_array().unwrap();
    assert_eq!(open.len(), 2, "{page}");
    assert_eq!(page["open_total"], 2);
    let kinds: Vec<&str> = open.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"stale_installs") && kinds.contains(&"needs_reauth"),
        "{kinds:?}"
    );
    for a in open {
        assert!(a["org_name"].is_string(), "names the customer: {a}");
        assert_eq!(a["link"], format!("/admin/failures?tenant={}", env.tenant));
    }
    let subjects: Vec<String> = sqlx::query_scalar("select subject from alerts order by subject")
        .fetch_all(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(
        subjects,
        vec![
            format!("connection:{}", env.shop),
            format!("install:{install}")
        ]
    );
    // No delivery without a webhook URL.
    assert!(delivery_rows(&env).await.is_empty());

    // Fixed: both resolve.
    sqlx::query("update installs set last_synced_at = now() where id = $1")
        .bind(install)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    sqlx::query("update connections set status = 'active', status_reason = null where id = $1")
        .bind(env.shop)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!((done.opened, done.resolved), (0, 2));

    // A rule turned off is not evaluated.
    let page = alerts_page(&env).await;
    let stale_rule = page["rules"][0]["id"].as_str().unwrap().to_owned();
    env.app
        .call_json(
            &env.admin,
            "admin/alerts/rule",
            &[("id", &stale_rule), ("action", "disable")],
        )
        .await;
    let done = alerts::evaluate(&env.app.pool, &s).await.unwrap();
    assert_eq!(done.rules, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn rules_are_checked_and_for_platform_admins_only(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    for (form, field) in [
        (vec![("name", ""), ("kind", "dead_letters")], "name"),
        (vec![("name", "x"), ("kind", "everything")], "kind"),
        (
            vec![("name", "x"), ("kind", "dead_letters"), ("threshold", "-1")],
            "threshold",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "dead_letters"),
                ("window_minutes", "0"),
            ],
            "window_minutes",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "dead_letters"),
                ("webhook_url", "ftp://hooks.example.com/"),
            ],
            "webhook_url",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "dead_letters"),
                ("webhook_url", "http://169.254.169.254/latest"),
            ],
            "webhook_url",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "dead_letters"),
                ("webhook_url", "http://10.0.0.5/hook"),
            ],
            "webhook_url",
        ),
        (
            vec![
                ("name", "x"),
                ("kind", "dead_letters"),
                ("webhook_url", "https://user:pw@hooks.example.com/"),
            ],
            "webhook_url",
        ),
    ] {
        let (status, body) = env
            .app
            .call_json(&env.admin, "admin/alerts/create", &form)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}: {body}");
        assert!(body.to_string().contains(field), "{form:?}: {body}");
        assert!(!body.to_string().contains("sqlx"), "{body}");
    }
    let count: i64 = sqlx::query_scalar("select count(*) from alert_rules")
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing saved from bad input");

    let (rule, _) = add_rule(&env, &[("name", "Ok"), ("kind", "dead_letters")]).await;
    let rule = rule.to_string();
    for (who, client) in [("customer", &env.customer), ("vendor", &env.vendor)] {
        for (endpoint, form) in [
            ("admin/alerts", vec![]),
            (
                "admin/alerts/create",
                vec![("name", "Mine"), ("kind", "dead_letters")],
            ),
            (
                "admin/alerts/rule",
                vec![("id", rule.as_str()), ("action", "delete")],
            ),
            ("admin/alerts/ack", vec![("id", "1")]),
        ] {
            let (status, body) = env.app.call_json(client, endpoint, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} on {endpoint}: {body}");
        }
        let res = client
            .get(env.app.url("/admin/alerts"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who}");
    }
    assert_eq!(
        alerts_page(&env).await["rules"].as_array().unwrap().len(),
        1
    );
    let (status, _) = env
        .app
        .call_json(
            &env.admin,
            "admin/alerts/rule",
            &[("id", &rule), ("action", "delete")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(alerts_page(&env).await["rules"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_worker_pool_evaluates_rules_and_delivers(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    seed(&env, install, listing, "dead", "auth", "1 minute").await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let (_, secret) = add_rule(
        &env,
        &[
            ("name", "Any dead letter"),
            ("kind", "dead_letters"),
            ("threshold", "0"),
            ("webhook_url", &receiver.uri()),
        ],
    )
    .await;
    let pool = env.pool("alerts-w1", Default::default(), 0);
    let start = Instant::now();
    let req = loop {
        if let Some(req) = receiver
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            break req;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the pool never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pool.shutdown().await;
    let body = assert_signed(&req, &secret);
    assert_eq!(body["event"], "alert.opened");
    assert_eq!(body["alert"]["detail"]["top"][0]["error_class"], "auth");
    assert!(
        body["alert"]["link"]
            .as_str()
            .unwrap()
            .starts_with(&env.app.public_url),
        "{body}"
    );
}
