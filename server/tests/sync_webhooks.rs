//! Webhooks in, and what a customer does with an install: the sandbox's signed deliveries reach
//! `/hooks/{provider}/{install}` and become incremental syncs; unsigned, badly signed, replayed,
//! oversized and misdirected deliveries are refused with nothing enqueued; pausing, resuming and
//! uninstalling stop and restart the work.

mod common;

use app::domain::sync::EngineSettings;
use common::sync::*;
use connectors::sandbox::signature_scheme;
use connectors::webhooks::sign;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const SECRET: &str = "whsec_sandbox_demo";

fn fast() -> EngineSettings {
    EngineSettings {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        ..EngineSettings::default()
    }
}

async fn updated_at_in_store(env: &SyncEnv, install: Uuid, id: &str) -> Option<String> {
    sqlx::query_scalar(
        "select data->>'changed_at' from store_records where install_id = $1 and external_id = $2",
    )
    .bind(install)
    .bind(id)
    .fetch_optional(&env.app.admin_pool)
    .await
    .unwrap()
    .flatten()
}

async fn post_hook(
    env: &SyncEnv,
    install: Uuid,
    body: &str,
    headers: &[(&str, String)],
) -> (StatusCode, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(env.app.url(&format!("/hooks/sandbox-shop/{install}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

fn signed(body: &str, secret: &str, delivery: &str) -> Vec<(&'static str, String)> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (name, value) = sign(&signature_scheme(), secret.as_bytes(), body.as_bytes(), now);
    assert_eq!(name.as_str(), "x-sandbox-signature");
    vec![
        ("x-sandbox-signature", value.to_str().unwrap().to_owned()),
        ("x-sandbox-delivery", delivery.to_owned()),
    ]
}

#[sqlx::test(migrations = "../migrations")]
async fn a_change_in_the_sandbox_arrives_through_its_webhook(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["webhook", "manual"], "manual")
        .await;
    let subscription: Option<String> =
        sqlx::query_scalar("select webhook_subscription_id from installs where id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert!(subscription.is_some_and(|s| s.starts_with("whs_")));
    let page = env.page(install).await;
    assert_eq!(
        page["webhook_url"],
        format!("{}/hooks/sandbox-shop/{install}", env.app.public_url)
    );
    let workers = env.pool("w1", fast(), 2);
    env.until(Duration::from_secs(20), "the first sync", || async {
        env.store(install).await.len() == 25
    })
    .await;

    let browser = reqwest::Client::new();
    browser
        .post(format!("{}/app/customers/cus_000005", env.sandbox.base_url))
        .form(&[("email", "hooked@shop.test"), ("first_name", "Hooked")])
        .send()
        .await
        .unwrap();
    let fresh = env.sandbox.sandbox.get("customers", "cus_000005").unwrap();
    env.until(Duration::from_secs(20), "the change to arrive", || async {
        updated_at_in_store(&env, install, "cus_000005")
            .await
            .as_deref()
            == fresh["updated_at"].as_str()
    })
    .await;
    let triggers: Vec<String> =
        sqlx::query_scalar("select trigger from sync_runs where install_id = $1 order by id")
            .bind(install)
            .fetch_all(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(triggers.first().map(String::as_str), Some("install"));
    assert!(triggers.iter().any(|t| t == "webhook"), "{triggers:?}");
    let deliveries: i64 =
        sqlx::query_scalar("select count(*) from webhook_deliveries where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(deliveries, 1);
    workers.shutdown().await;

    // Uninstalling removes the subscription at the sandbox: a later change sends nothing here.
    env.action(install, "uninstall").await;
    assert!(env.sandbox.sandbox.touch("customers", "cus_000006"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries: i64 =
        sqlx::query_scalar("select count(*) from webhook_deliveries where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(deliveries, 1);
    assert_eq!(env.jobs(install).await, 0);
    let page = env.page(install).await;
    assert_eq!(page["summary"]["status"], "uninstalled");
    assert!(
        !page["history"].as_array().unwrap().is_empty(),
        "the history stays"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_deliveries_are_refused_and_enqueue_nothing(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["webhook", "manual"], "manual")
        .await;
    // The first full sync's job is queued; take it away so any enqueue would show.
    env.drain(&env.engine("w1", fast())).await;
    assert_eq!(env.jobs(install).await, 0);
    let body = json!({"id": "evt_1", "type": "customer.updated", "data": {"id": "cus_000001"}})
        .to_string();

    let (status, answer) = post_hook(
        &env,
        install,
        &body,
        &[("x-sandbox-delivery", "evt_1".into())],
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature")),
        "unsigned"
    );
    let (status, _) = post_hook(&env, install, &body, &signed(&body, "whsec_wrong", "evt_1")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "signed with another secret"
    );
    let mut tampered = signed(&body, SECRET, "evt_1");
    let (status, _) = post_hook(
        &env,
        install,
        &body.replace("cus_000001", "cus_000002"),
        &tampered,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a body changed after signing"
    );
    let old = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let (_, stale) = sign(&signature_scheme(), SECRET.as_bytes(), body.as_bytes(), old);
    tampered[0].1 = stale.to_str().unwrap().to_owned();
    let (status, _) = post_hook(&env, install, &body, &tampered).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a signature from an hour ago (a replay)"
    );
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let (status, _) = post_hook(&env, install, &big, &signed(&big, SECRET, "evt_big")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "oversized");
    let (status, _) = post_hook(&env, Uuid::new_v4(), &body, &signed(&body, SECRET, "evt_1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such install");
    let wrong_provider = reqwest::Client::new()
        .post(env.app.url(&format!("/hooks/sandbox-crm/{install}")))
        .body(body.clone())
        .headers(
            signed(&body, SECRET, "evt_1")
                .into_iter()
                .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_provider.status(),
        StatusCode::NOT_FOUND,
        "another provider's address"
    );
    assert_eq!(env.jobs(install).await, 0, "nothing was enqueued");
    let deliveries: i64 = sqlx::query_scalar("select count(*) from webhook_deliveries")
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(deliveries, 0, "nothing was recorded");

    // A good delivery enqueues one sync; the same delivery again (a replay within the
    // tolerance, or the provider retrying) is acknowledged and does nothing.
    let (status, answer) = post_hook(&env, install, &body, &signed(&body, SECRET, "evt_1")).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::ACCEPTED, Some("queued"))
    );
    assert_eq!(env.jobs(install).await, 1);
    env.drain(&env.engine("w1", fast())).await;
    let (status, answer) = post_hook(&env, install, &body, &signed(&body, SECRET, "evt_1")).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert_eq!(env.jobs(install).await, 0, "a replay enqueues nothing");

    // A burst coalesces into the one queued sync.
    for n in 2..12 {
        let id = format!("evt_{n}");
        let (status, _) = post_hook(&env, install, &body, &signed(&body, SECRET, &id)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert_eq!(env.jobs(install).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn pausing_stops_the_work_and_resuming_brings_it_back(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["schedule", "webhook", "manual"], "5m")
        .await;
    let scheduled: i64 =
        sqlx::query_scalar("select count(*) from sync_schedules where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(scheduled, 1);
    assert_eq!(env.jobs(install).await, 1, "the first sync waits");

    env.action(install, "pause").await;
    assert_eq!(env.jobs(install).await, 0, "its queued job is gone");
    let scheduled: i64 =
        sqlx::query_scalar("select count(*) from sync_schedules where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(scheduled, 0, "and its schedule");
    let body = json!({"id": "evt_p"}).to_string();
    let (status, answer) = post_hook(&env, install, &body, &signed(&body, SECRET, "evt_p")).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::ACCEPTED, Some("paused"))
    );
    assert_eq!(
        env.jobs(install).await,
        0,
        "a paused install takes no work from webhooks"
    );
    let refused = env
        .app
        .call(
            &env.customer,
            "installs/action",
            &[("id", &install.to_string()), ("action", "run_now")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    env.action(install, "resume").await;
    assert_eq!(env.jobs(install).await, 1, "resuming catches up at once");
    // A window missed while nothing ticked runs once, not once per window.
    sqlx::query(
        "update sync_schedules set next_run_at = now() - interval '1 day' where install_id = $1",
    )
    .bind(install)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(
        app::domain::schedules::tick(&env.app.pool, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        app::domain::schedules::tick(&env.app.pool, 100)
            .await
            .unwrap(),
        0
    );
    let next: time::OffsetDateTime =
        sqlx::query_scalar("select next_run_at from sync_schedules where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    let ahead = next - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::minutes(4) && ahead <= time::Duration::minutes(5),
        "{ahead}"
    );
    // The scheduled run joined the queued one (the same install and kind wait once).
    assert_eq!(env.jobs(install).await, 1);

    // Members see installs but do not change them; other organizations do not see them at all.
    let outsider = env.app.user("Otto Outsider", "otto@elsewhere.test").await;
    env.app.create_org(&outsider, "Elsewhere", "customer").await;
    let (status, _) = env
        .app
        .call_json(&outsider, "installs/get", &[("id", &install.to_string())])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = env
        .app
        .call(
            &outsider,
            "installs/action",
            &[("id", &install.to_string()), ("action", "pause")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(env.page(install).await["summary"]["status"], "active");
}

#[sqlx::test(migrations = "../migrations")]
async fn without_a_subscription_api_the_customer_pastes_the_signing_secret(db: PgPool) {
    // A provider that signs its webhooks but has no API to register them: the customer registers
    // the address at the provider and pastes the secret it shows.
    let manual = spec_with("sandbox-shop", |spec| {
        spec.webhooks.as_mut().unwrap().subscribe = None;
    });
    let env = sync_env(
        db,
        SyncOptions {
            specs: vec![manual],
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env
        .install("shop-to-store", &["webhook", "manual"], "manual")
        .await;
    env.drain(&env.engine("w1", fast())).await;
    let page = env.page(install).await;
    assert_eq!(page["webhook_manual"], true);
    assert_eq!(page["webhook_ready"], false);
    assert_eq!(
        page["webhook_url"],
        format!("{}/hooks/sandbox-shop/{install}", env.app.public_url)
    );
    let body = json!({"id": "evt_m1", "type": "customer.updated"}).to_string();
    let pasted = "whsec_pasted_by_the_customer_0123";
    let (status, answer) = post_hook(&env, install, &body, &signed(&body, pasted, "evt_m1")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_configured")),
        "no secret yet: nothing can be verified"
    );

    let id = install.to_string();
    let set = |secret: &'static str| {
        let id = id.clone();
        let (app, customer) = (&env.app, &env.customer);
        async move {
            app.call(
                customer,
                "installs/webhook_secret",
                &[("id", id.as_str()), ("secret", secret)],
            )
            .await
        }
    };
    let res = set("short").await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert!(res.text().await.unwrap().contains("8 to 512 characters"));
    assert_eq!(env.page(install).await["webhook_ready"], false);
    let res = set(pasted).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let page = env.page(install).await;
    assert_eq!(page["webhook_ready"], true);
    let sealed: Vec<u8> =
        sqlx::query_scalar("select webhook_secret_enc from installs where id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert!(
        !sealed.windows(pasted.len()).any(|w| w == pasted.as_bytes()),
        "the secret is stored sealed"
    );
    let (status, _) = post_hook(&env, install, &body, &signed(&body, SECRET, "evt_m1")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another secret is refused"
    );
    let (status, answer) = post_hook(&env, install, &body, &signed(&body, pasted, "evt_m1")).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::ACCEPTED, Some("queued"))
    );
    assert_eq!(env.jobs(install).await, 1);
}
