//! Failures from the sandbox's fault switches, and the rate budget: 5xx and timeouts are retried
//! with backoff, malformed JSON ends as a clear dead letter, a revoked grant pauses the install
//! until the customer reconnects, and a 429 storm is waited out without the request rate ever
//! going over the budget.

mod common;

use app::domain::sync::{EngineSettings, Settled};
use common::sync::*;
use connectors::sandbox::SeedSizes;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn fast() -> EngineSettings {
    EngineSettings {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(100),
        ..EngineSettings::default()
    }
}

/// Runs the install's jobs until none is left (waiting for retries to come due), at most `limit`.
async fn settle_all(
    env: &SyncEnv,
    install: Uuid,
    engine: &app::domain::sync::Engine,
    limit: Duration,
) -> Vec<Settled> {
    let start = Instant::now();
    let mut settled = Vec::new();
    while env.jobs(install).await > 0 {
        assert!(
            start.elapsed() < limit,
            "jobs still waiting after {limit:?}: {settled:?}"
        );
        settled.extend(env.drain(engine).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    settled
}

async fn errors(env: &SyncEnv, install: Uuid) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "select outcome, error_class, error_message from sync_runs where install_id = $1 order by id",
    )
    .bind(install)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn server_errors_and_timeouts_are_retried_with_backoff(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    env.sandbox.sandbox.faults().set_fail_next(2);
    let engine = env.engine("w1", fast());
    let settled = settle_all(&env, install, &engine, Duration::from_secs(20)).await;
    assert_eq!(settled.len(), 3, "{settled:?}");
    assert!(matches!(settled[0], Settled::Retrying(_)));
    assert_eq!(settled[2], Settled::Succeeded);
    let log = errors(&env, install).await;
    assert_eq!(log[0].0, "failed");
    assert_eq!(log[0].1.as_deref(), Some("transient"));
    assert!(log[0].2.as_deref().unwrap().contains("500"), "{log:?}");
    assert!(log[1].2.as_deref().unwrap().contains("502"), "{log:?}");
    assert_eq!(env.store(install).await.len(), 25);
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempt from sync_runs where install_id = $1 order by id")
            .bind(install)
            .fetch_all(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(attempts, [0, 1, 2], "one run, grouped attempts");
    let retry_events: i64 = sqlx::query_scalar(
        "select count(*) from run_events e join sync_runs r on r.id = e.run_id \
         where r.install_id = $1 and e.kind = 'error' and e.message like 'Failed, will retry%'",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(retry_events, 2);

    // A hung request times out (the client gives up after a second here) and is retried.
    let short = connect_settings(
        &env.app.public_url,
        &env.sandbox.base_url,
        Duration::from_secs(1),
    );
    let mut engine = env.engine("w2", fast());
    engine.connect = std::sync::Arc::new(short);
    env.sandbox.sandbox.faults().set_hang_next(1);
    env.action(install, "run_now").await;
    let settled = settle_all(&env, install, &engine, Duration::from_secs(20)).await;
    assert!(matches!(settled[0], Settled::Retrying(_)), "{settled:?}");
    assert_eq!(settled.last(), Some(&Settled::Succeeded));
    let log = errors(&env, install).await;
    assert!(log[3].2.as_deref().unwrap().contains("time"), "{log:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn malformed_json_ends_as_a_clear_dead_letter(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    env.sandbox.sandbox.faults().set_malformed_next(1000);
    let engine = env.engine("w1", fast());
    let settled = settle_all(&env, install, &engine, Duration::from_secs(30)).await;
    assert_eq!(settled.len(), 5, "five attempts: {settled:?}");
    assert_eq!(settled.last(), Some(&Settled::Dead));
    let log = errors(&env, install).await;
    let (outcome, class, message) = log.last().unwrap();
    assert_eq!(outcome, "dead");
    assert_eq!(class.as_deref(), Some("transient"));
    assert!(
        message.as_deref().unwrap().contains("not valid JSON"),
        "{message:?}"
    );
    let page = env.page(install).await;
    let newest = &page["history"][0]["attempts"][0];
    assert_eq!(newest["outcome"], "dead");
    assert_eq!(page["history"][0]["attempts"].as_array().unwrap().len(), 5);
    assert!(page["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("Gave up (dead letter)")));
    assert_eq!(env.store(install).await.len(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_revoked_grant_asks_for_reconnecting_and_pauses_the_install(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["schedule", "manual"], "1h")
        .await;
    let engine = env.engine("w1", fast());
    env.drain(&engine).await;
    env.sandbox.sandbox.revoke_all_tokens();
    env.action(install, "run_now").await;
    let settled = env.drain(&engine).await;
    assert_eq!(settled, [Settled::Paused]);
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("select status, status_reason from installs where id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(status, "paused");
    assert!(
        reason.as_deref().unwrap().contains("reconnecting"),
        "{reason:?}"
    );
    let connection: String = sqlx::query_scalar("select status from connections where id = $1")
        .bind(env.shop)
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(connection, "needs_reauth");
    let page = env.page(install).await;
    assert_eq!(page["summary"]["status"], "paused");
    assert!(page["summary"]["status_reason"]
        .as_str()
        .unwrap()
        .contains("reconnecting"));
    assert_eq!(page["history"][0]["attempts"][0]["error_class"], "auth");
    // Resuming is refused until the connection works again.
    let res = env
        .app
        .call(
            &env.customer,
            "installs/action",
            &[("id", &install.to_string()), ("action", "resume")],
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("reconnecting"));
    // Reconnect (same connection), resume, and it syncs again.
    let res = env
        .app
        .start_connect(
            &env.customer,
            &[
                ("provider", "sandbox-shop"),
                ("reconnect", &env.shop.to_string()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let (_, next) = env
        .app
        .call_json(&env.customer, "connections/continue", &[])
        .await;
    let back = env
        .app
        .consent(next["url"].as_str().unwrap(), "approve")
        .await;
    let again = common::connected_id(&env.app.callback(&env.customer, &back).await);
    assert_eq!(again, env.shop);
    env.action(install, "resume").await;
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
}

/// The most requests that arrived within any window of `window`.
fn busiest(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[sqlx::test(migrations = "../migrations")]
async fn a_429_storm_is_waited_out_and_the_budget_holds(db: PgPool) {
    // A documented quota of 10 requests a second per connection (burst 10).
    let spec = spec_with("sandbox-shop", |s| {
        let limit = s.rate_limit.as_mut().unwrap();
        limit.requests = 10;
        limit.per_secs = 1;
        for stream in &mut s.streams {
            stream.query.insert("limit".into(), "20".into());
        }
    });
    let env = sync_env(
        db,
        SyncOptions {
            seed: SeedSizes::uniform(600),
            specs: vec![spec],
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let faults = env.sandbox.sandbox.faults();
    faults.clear_request_times();
    // The first three calls answer 429 with Retry-After: 1.
    faults.set_rate_limit_next(3, 1);
    let engine = env.engine("w1", fast());
    let started = Instant::now();
    let settled = settle_all(&env, install, &engine, Duration::from_secs(60)).await;
    assert_eq!(settled.last(), Some(&Settled::Succeeded), "{settled:?}");
    assert_eq!(env.store(install).await.len(), 600);
    let times = faults.request_times();
    // 30 pages of 20, plus the three refused calls.
    assert_eq!(times.len(), 33, "{} requests", times.len());
    // Never over the budget: at most the burst plus a second's refill in any second.
    let peak = busiest(&times, Duration::from_secs(1));
    assert!(peak <= 20, "{peak} requests within one second");
    // Each 429 held every request back for its Retry-After.
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter()
            .take(3)
            .all(|g| *g >= Duration::from_millis(900)),
        "{gaps:?}"
    );
    // 30 pages at 10 a second (after a burst of 10) and three one-second waits take a while.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let log = errors(&env, install).await;
    assert!(
        log.iter()
            .any(|(_, class, _)| class.as_deref() == Some("rate_limited")),
        "{log:?}"
    );
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempt from sync_runs where install_id = $1 order by id")
            .bind(install)
            .fetch_all(&env.app.admin_pool)
            .await
            .unwrap();
    assert!(
        attempts.iter().all(|a| *a == 0),
        "429s do not use up attempts: {attempts:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn two_connections_share_their_apps_budget(db: PgPool) {
    // Each connection may make 100 requests a second, but the app only 8 across all of them.
    let spec = spec_with("sandbox-shop", |s| {
        let limit = s.rate_limit.as_mut().unwrap();
        limit.requests = 100;
        limit.per_secs = 1;
        limit.app_requests = Some(8);
        limit.app_per_secs = Some(1);
        for stream in &mut s.streams {
            stream.query.insert("limit".into(), "10".into());
        }
    });
    let env = sync_env(
        db,
        SyncOptions {
            seed: SeedSizes::uniform(160),
            specs: vec![spec],
            ..SyncOptions::default()
        },
    )
    .await;
    let first = env.install("shop-to-store", &["manual"], "manual").await;
    // A second customer, with their own connection through the same app.
    let other = env.app.user("Olga Other", "olga@other.test").await;
    env.app.create_org(&other, "Other Co", "customer").await;
    let shop = connect(&env.app, &other, "sandbox-shop").await;
    let res = env
        .app
        .call(
            &other,
            "installs/connections",
            &[("slug", "shop-to-store"), ("source", &shop.to_string())],
        )
        .await;
    let second: Uuid = res.headers()["location"]
        .to_str()
        .unwrap()
        .split('/')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let res = env
        .app
        .call(&other, "installs/activate", &[("id", &second.to_string())])
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    env.sandbox.sandbox.faults().clear_request_times();
    let workers = env.pool("w1", fast(), 4);
    env.until(Duration::from_secs(60), "both syncs", || async {
        env.store(first).await.len() == 160 && env.store(second).await.len() == 160
    })
    .await;
    workers.shutdown().await;
    let times = env.sandbox.sandbox.faults().request_times();
    assert!(times.len() >= 32, "{}", times.len());
    let peak = busiest(&times, Duration::from_secs(1));
    assert!(
        peak <= 16,
        "{peak} requests within one second for an app allowed 8/s (burst 8)"
    );
}
