//! Admin operations: the failures dashboard's grouping and filters against seeded runs, who may
//! see it (platform admins; vendors only their own listings' runs), every repair action audited
//! and actually requeueing or replaying until the sync succeeds against the sandbox, redacted
//! request summaries, the health page's figures, the append-only audit log, and retention.

mod common;

use app::domain::sync::{EngineSettings, Settled};
use common::sync::*;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

fn fast() -> EngineSettings {
    EngineSettings {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(100),
        ..EngineSettings::default()
    }
}

/// A second customer organization with an install of the same listing version (made in SQL: the
/// dashboard only needs its rows).
async fn other_tenant(env: &SyncEnv, install: Uuid, name: &str) -> (Uuid, Uuid) {
    let tenant = Uuid::new_v4();
    sqlx::query("insert into organizations (id, kind, name) values ($1, 'customer', $2)")
        .bind(tenant)
        .bind(name)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    let other: Uuid = sqlx::query_scalar(
        "insert into installs (tenant_id, listing_id, listing_version_id, status) \
         select $1, listing_id, listing_version_id, 'active' from installs where id = $2 \
         returning id",
    )
    .bind(tenant)
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    (tenant, other)
}

async fn failures(env: &SyncEnv, form: &[(&str, &str)]) -> Value {
    let (status, body) = env.app.call_json(&env.admin, "admin/failures", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// (class, hour, day, week, total, dead) of each group, in the dashboard's order.
fn group_counts(page: &Value) -> Vec<(String, i64, i64, i64, i64, i64)> {
    page["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["class"].as_str().unwrap_or("").to_owned(),
                g["last_hour"].as_i64().unwrap(),
                g["last_day"].as_i64().unwrap(),
                g["last_week"].as_i64().unwrap(),
                g["total"].as_i64().unwrap(),
                g["dead"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn failures_are_grouped_and_filtered(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    let (other, other_install) = other_tenant(&env, install, "Otto Co").await;
    let a = env.tenant;
    for ago in ["5 minutes", "20 minutes", "40 minutes"] {
        seed_run(
            &env,
            a,
            install,
            listing,
            "sandbox-shop",
            "failed",
            Some("transient"),
            ago,
        )
        .await;
    }
    seed_run(
        &env,
        a,
        install,
        listing,
        "sandbox-shop",
        "dead",
        Some("permanent"),
        "2 days",
    )
    .await;
    seed_run(
        &env,
        a,
        install,
        listing,
        "sandbox-shop",
        "succeeded",
        None,
        "1 minute",
    )
    .await;
    for ago in ["3 hours", "4 hours"] {
        seed_run(
            &env,
            other,
            other_install,
            listing,
            "sandbox-shop",
            "failed",
            Some("rate_limited"),
            ago,
        )
        .await;
    }
    seed_run(
        &env,
        other,
        other_install,
        listing,
        "sandbox-shop",
        "failed",
        Some("transient"),
        "10 days",
    )
    .await;

    let week = failures(&env, &[]).await;
    assert_eq!(
        group_counts(&week),
        [
            ("transient".into(), 3, 3, 3, 3, 0),
            ("rate_limited".into(), 0, 2, 2, 2, 0),
            ("permanent".into(), 0, 0, 1, 1, 1),
        ]
    );
    assert_eq!(week["groups"][0]["listing_slug"], "shop-to-store");
    assert_eq!(week["groups"][0]["provider"], "sandbox-shop");
    assert_eq!(
        week["runs"].as_array().unwrap().len(),
        6,
        "newest failures, no success"
    );
    assert_eq!(week["runs"][0]["message"], "seeded transient");
    let tenants: Vec<&str> = week["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[1].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["Cora Co", "Otto Co"]);

    let month = failures(&env, &[("range", "30d")]).await;
    assert_eq!(group_counts(&month)[0], ("transient".into(), 3, 3, 3, 4, 0));
    let hour = failures(&env, &[("range", "1h")]).await;
    assert_eq!(group_counts(&hour), [("transient".into(), 3, 3, 3, 3, 0)]);
    let of_other = failures(&env, &[("tenant", &other.to_string())]).await;
    assert_eq!(
        group_counts(&of_other),
        [("rate_limited".into(), 0, 2, 2, 2, 0)]
    );
    let dead = failures(&env, &[("outcome", "dead")]).await;
    assert_eq!(group_counts(&dead), [("permanent".into(), 0, 0, 1, 1, 1)]);
    let class = failures(
        &env,
        &[("class", "rate_limited"), ("listing", "shop-to-store")],
    )
    .await;
    assert_eq!(class["runs"].as_array().unwrap().len(), 2);
    let none = failures(&env, &[("provider", "github")]).await;
    assert!(none["groups"].as_array().unwrap().is_empty());
    let elsewhere = failures(&env, &[("listing", "shop-to-crm")]).await;
    assert!(elsewhere["groups"].as_array().unwrap().is_empty());

    // Filters that do not parse are the person's mistake, said plainly.
    let (status, body) = env
        .app
        .call_json(&env.admin, "admin/failures", &[("range", "2y")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("range"), "{body}");
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_routes_refuse_customers_and_vendors(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    for (who, client) in [("customer", &env.customer), ("vendor", &env.vendor)] {
        for (endpoint, form) in [
            ("admin/failures", vec![]),
            ("admin/health", vec![]),
            ("admin/audit", vec![("q", "")]),
            ("admin/runs/action", vec![("id", "1"), ("action", "retry")]),
            ("admin/failures/retry", vec![]),
        ] {
            let (status, body) = env.app.call_json(client, endpoint, &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} on {endpoint}: {body}");
        }
        for path in ["/admin/failures", "/admin/health", "/admin/audit"] {
            let res = client.get(env.app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} on {path}");
            let html = res.text().await.unwrap();
            assert!(html.contains("Not allowed"), "{who} on {path}");
        }
    }
    // A customer sees no vendor view either.
    let (status, _) = env
        .app
        .call_json(&env.customer, "vendor/failures", &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_vendor_sees_only_its_own_listings_runs(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    // Another vendor's listing, with a failure of its own.
    let rival = Uuid::new_v4();
    let rival_listing = Uuid::new_v4();
    sqlx::query("insert into organizations (id, kind, name) values ($1, 'vendor', 'Rival Inc')")
        .bind(rival)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into listings (id, vendor_org_id, slug, name, status) \
         values ($1, $2, 'rival-sync', 'Rival sync', 'published')",
    )
    .bind(rival_listing)
    .bind(rival)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    let own = seed_run(
        &env,
        env.tenant,
        install,
        listing,
        "sandbox-shop",
        "dead",
        Some("permanent"),
        "5 minutes",
    )
    .await;
    let theirs = seed_run(
        &env,
        env.tenant,
        install,
        rival_listing,
        "sandbox-crm",
        "failed",
        Some("transient"),
        "6 minutes",
    )
    .await;

    let (status, page) = env.app.call_json(&env.vendor, "vendor/failures", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let runs: Vec<i64> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, [own]);
    assert_eq!(page["runs"][0]["tenant_name"], "", "no customer's name");
    assert!(page["tenants"].as_array().unwrap().is_empty());
    assert_eq!(page["vendor"], true);
    // Asking for the rival's listing by name finds nothing.
    let (_, filtered) = env
        .app
        .call_json(&env.vendor, "vendor/failures", &[("listing", "rival-sync")])
        .await;
    assert!(filtered["runs"].as_array().unwrap().is_empty());
    // Its run detail: its own run, without requests or actions; the rival's is not found.
    let (status, detail) = env
        .app
        .call_json(&env.vendor, "admin/runs/get", &[("id", &own.to_string())])
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["vendor"], true);
    assert_eq!(detail["retry"], "None");
    assert_eq!(detail["tenant_name"], "");
    let (status, _) = env
        .app
        .call_json(
            &env.vendor,
            "admin/runs/get",
            &[("id", &theirs.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin sees both.
    let page = failures(&env, &[]).await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 2);
}

/// The audit entries of `action` in the customer's organization, by the platform admin.
async fn audited(env: &SyncEnv, action: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "select a.detail from audit_log a join users u on u.id = a.actor_user_id \
         where a.tenant_id = $1 and a.action = $2 and u.is_platform_admin \
           and a.actor_email = u.email order by a.id",
    )
    .bind(env.tenant)
    .bind(action)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap()
}

async fn act(env: &SyncEnv, run: i64, action: &str, message: Option<&str>) -> (StatusCode, Value) {
    let run = run.to_string();
    let mut form = vec![("id", run.as_str()), ("action", action)];
    if let Some(m) = message {
        form.push(("message", m));
    }
    env.app
        .call_json(&env.admin, "admin/runs/action", &form)
        .await
}

/// Makes the install's next sync a dead letter: malformed JSON every time, until it gives up.
async fn dead_letter(env: &SyncEnv, install: Uuid, engine: &app::domain::sync::Engine) {
    env.sandbox.sandbox.faults().set_malformed_next(1000);
    env.action(install, "run_now").await;
    let start = std::time::Instant::now();
    while env.jobs(install).await > 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "no dead letter");
        env.drain(engine).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    env.sandbox.sandbox.faults().set_malformed_next(0);
    assert_eq!(last_run(env, install).await.1, "dead");
}

async fn last_run(env: &SyncEnv, install: Uuid) -> (i64, String, String) {
    sqlx::query_as(
        "select id, outcome, trigger from sync_runs where install_id = $1 order by id desc limit 1",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn repair_actions_are_audited_and_work(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let engine = env.engine("w1", fast());

    // A dead job (malformed JSON, five times) is queued again and succeeds.
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    dead_letter(&env, install, &engine).await;
    let (dead, _, _) = last_run(&env, install).await;
    let (status, detail) = env
        .app
        .call_json(&env.admin, "admin/runs/get", &[("id", &dead.to_string())])
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["retry"], "Dead");
    assert!(
        detail["run"]["error_message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{detail}"
    );
    assert_eq!(
        detail["attempts"].as_array().unwrap().len(),
        5,
        "the job's attempts side by side"
    );
    let request = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["request"].as_str())
        .expect("the failed request's summary");
    assert!(request.starts_with("GET http://127.0.0.1:"), "{request}");
    assert!(request.contains("→ 200"), "{request}");
    let (status, body) = act(&env, dead, "retry", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(audited(&env, "admin.retry").await.len(), 1);
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    let (_, outcome, trigger) = last_run(&env, install).await;
    assert_eq!(
        (outcome.as_str(), trigger.as_str()),
        ("succeeded", "admin retry")
    );
    assert_eq!(env.store(install).await.len(), 25);
    // Retrying it again is refused: the install synced since.
    let (status, body) = act(&env, dead, "retry", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // A job waiting for a distant retry runs now.
    let slow = env.engine(
        "w2",
        EngineSettings {
            retry_base: Duration::from_secs(3600),
            retry_cap: Duration::from_secs(3600),
            ..EngineSettings::default()
        },
    );
    env.sandbox.sandbox.faults().set_fail_next(1);
    env.action(install, "run_now").await;
    let settled = env.drain(&slow).await;
    assert!(matches!(settled[..], [Settled::Retrying(_)]), "{settled:?}");
    let (failed, _, _) = last_run(&env, install).await;
    // (It drew a wait of up to an hour; make sure it is not due by chance.)
    sqlx::query("update sync_jobs set run_at = now() + interval '1 hour' where install_id = $1")
        .bind(install)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    assert!(env.drain(&slow).await.is_empty(), "not due yet");
    let (status, body) = act(&env, failed, "retry", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.drain(&slow).await, [Settled::Succeeded]);
    let how: Vec<String> = audited(&env, "admin.retry")
        .await
        .iter()
        .map(|d| d["how"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(how, ["requeued", "now"]);

    // A forced full resync.
    let (status, body) = act(&env, failed, "resync", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    let kind: String = sqlx::query_scalar(
        "select kind from sync_runs where install_id = $1 order by id desc limit 1",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(kind, "full");
    assert_eq!(audited(&env, "admin.resync").await.len(), 1);

    // Bulk retry of a filtered group's dead letters.
    dead_letter(&env, install, &engine).await;
    let page = failures(&env, &[("outcome", "dead"), ("class", "transient")]).await;
    assert_eq!(page["retryable_dead"], 1, "the newer dead letter only");
    let res = env
        .app
        .call(
            &env.admin,
            "admin/failures/retry",
            &[("outcome", "dead"), ("class", "transient")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    assert_eq!(audited(&env, "admin.bulk_retry").await.len(), 1);
    let page = failures(&env, &[("outcome", "dead")]).await;
    assert_eq!(page["retryable_dead"], 0);

    // Pause with a message the customer reads.
    let (last, _, _) = last_run(&env, install).await;
    let (status, body) = act(&env, last, "pause", Some("   ")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = act(
        &env,
        last,
        "pause",
        Some("Sandbox Shop is down; we resume it."),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = env.page(install).await;
    assert_eq!(page["summary"]["status"], "paused");
    assert!(page["summary"]["status_reason"]
        .as_str()
        .unwrap()
        .contains("Sandbox Shop is down; we resume it."));
    let paused = audited(&env, "admin.paused").await;
    assert_eq!(paused[0]["message"], "Sandbox Shop is down; we resume it.");
    assert_eq!(env.jobs(install).await, 0);
    // A paused install is not retried behind its customer's back.
    let (status, _) = act(&env, last, "resync", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Every admin action is in the log, newest first, and the log is searchable.
    let (status, log) = env
        .app
        .call_json(&env.admin, "admin/audit", &[("q", "")])
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("admin."))
        .collect();
    assert_eq!(
        actions,
        [
            "admin.paused",
            "admin.bulk_retry",
            "admin.resync",
            "admin.retry",
            "admin.retry"
        ]
    );
    let (_, log) = env
        .app
        .call_json(&env.admin, "admin/audit", &[("q", "admin.retry")])
        .await;
    let found: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["admin.retry", "admin.retry"]);
    assert_eq!(log["entries"][0]["actor"], "ada@admin.test");
    assert_eq!(log["entries"][0]["org_name"], "Cora Co");
}

#[sqlx::test(migrations = "../migrations")]
async fn quarantined_records_are_replayed_after_a_fix(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-crm", &["manual"], "manual").await;
    let mapping = |company: &'static str| {
        vec![
            ("id".to_owned(), install.to_string()),
            ("mapping[0][to]".to_owned(), "email".to_owned()),
            ("mapping[0][from]".to_owned(), "email".to_owned()),
            ("mapping[1][to]".to_owned(), company.to_owned()),
            ("mapping[1][from]".to_owned(), "last_name".to_owned()),
        ]
    };
    let save = |form: Vec<(String, String)>| {
        let env = &env;
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let res = env.app.call(&env.customer, "installs/mapping", &form).await;
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        }
    };
    // company_id must name an existing company: a last name never does.
    save(mapping("company_id")).await;
    let engine = env.engine("w1", fast());
    env.drain(&engine).await;
    assert_eq!(env.runs(install).await, [("succeeded".into(), 0, 0, 0, 25)]);
    let (run, _, _) = last_run(&env, install).await;
    let (_, detail) = env
        .app
        .call_json(&env.admin, "admin/runs/get", &[("id", &run.to_string())])
        .await;
    assert_eq!(detail["replayable"], 25);
    // The customer fixes the mapping: the last name goes to a field the CRM takes.
    save(mapping("name")).await;
    let (status, body) = act(&env, run, "replay", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, again) = act(&env, run, "replay", None).await;
    assert!(again.to_string().contains("Nothing to replay"), "{again}");
    assert_eq!(audited(&env, "admin.replay").await[0]["records"], 25);
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    assert_eq!(env.sandbox.sandbox.count("contacts"), 25 + 25);
    let waiting: i64 = sqlx::query_scalar(
        "select count(*) from quarantined_records where install_id = $1 and replayed_at is null",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(waiting, 0);
    let (replay_run, _, trigger) = last_run(&env, install).await;
    assert_eq!(trigger, "replay");
    let events: Vec<String> = sqlx::query_scalar(
        "select message from run_events where run_id = $1 and kind = 'replayed' order by id",
    )
    .bind(replay_run)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[1].starts_with("Replayed 25 quarantined records: 25 sent"),
        "{events:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn stored_request_summaries_hold_no_secrets(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-crm", &["manual"], "manual").await;
    let engine = env.engine("w1", fast());
    env.drain(&engine).await;
    let mut secrets: Vec<String> = Vec::new();
    for connection in [env.shop, env.crm] {
        let conn = app::domain::connections::refresh::credentials(
            &engine.pool,
            &engine.vault,
            &engine.connect,
            env.tenant,
            connection,
        )
        .await
        .unwrap();
        secrets.extend(conn.credentials.secrets().iter().map(|s| s.to_string()));
    }
    assert_eq!(secrets.len(), 2);
    let events: Vec<(String, Value)> = sqlx::query_as(
        "select e.message, e.detail from run_events e join sync_runs r on r.id = e.run_id \
         where r.install_id = $1",
    )
    .bind(install)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap();
    let requests: Vec<&Value> = events
        .iter()
        .filter_map(|(_, d)| d.get("request"))
        .collect();
    assert!(!requests.is_empty(), "page events carry request summaries");
    assert!(requests
        .iter()
        .all(|r| r["status"] == 200 && r["method"] == "GET"));
    assert!(
        requests[0]["url"].as_str().unwrap().contains("/shop/"),
        "{}",
        requests[0]
    );
    for (message, detail) in &events {
        for secret in &secrets {
            assert!(!message.contains(secret.as_str()), "{message}");
            assert!(!detail.to_string().contains(secret.as_str()), "{detail}");
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_health_page_counts_plots_and_lists_workers(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let pool = env.pool("health-test:1", fast(), 2);
    env.until(Duration::from_secs(30), "the first sync", || async {
        env.runs(install).await.iter().any(|r| r.0 == "succeeded")
    })
    .await;
    env.until(Duration::from_secs(10), "a worker heartbeat", || async {
        let (_, page) = env.app.call_json(&env.admin, "admin/health", &[]).await;
        page["workers"].as_array().is_some_and(|w| !w.is_empty())
    })
    .await;
    let (status, page) = env.app.call_json(&env.admin, "admin/health", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["workers"][0]["name"], "health-test:1");
    assert_eq!(page["workers"][0]["alive"], true);
    assert_eq!(page["succeeded_hour"], 1);
    assert!(page["claims_per_min"].as_f64().unwrap() > 0.0);
    let plots = page["plots"].as_array().unwrap();
    assert_eq!(plots.len(), 4);
    let runs = &plots[0]["series"][0];
    assert_eq!(runs["name"], "Succeeded");
    let points = runs["points"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    assert_eq!(points.iter().map(|p| p.as_f64().unwrap()).sum::<f64>(), 1.0);
    assert!(plots[1]["series"][0]["points"].as_array().unwrap().len() == 60);
    // The page renders the plots as SVG on the server.
    let html = env
        .admin
        .get(env.app.url("/admin/health"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("<svg").count(), 4, "four plots");
    assert!(html.contains("<polyline"), "with lines");
    pool.shutdown().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_audit_log_is_append_only(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    env.install("shop-to-store", &["manual"], "manual").await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from audit_log")
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap()
    };
    let before = count().await;
    assert!(before > 0);
    // Not as the application (no privilege), and not as the owner (the trigger).
    let mut tx = app::domain::db::begin(&env.app.pool, app::domain::db::Scope::System)
        .await
        .unwrap();
    let err = sqlx::query("delete from audit_log")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    drop(tx);
    for sql in [
        "update audit_log set action = 'nothing happened'",
        "delete from audit_log",
        "truncate audit_log",
    ] {
        let err = sqlx::query(sql)
            .execute(&env.app.admin_pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count().await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn retention_prunes_old_runs_in_batches(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    sqlx::query(
        "insert into sync_runs (tenant_id, install_id, job_id, attempt, kind, trigger, outcome, \
             started_at, finished_at, listing_id) \
         select $1, $2, g, 0, 'incremental', 'schedule', 'succeeded', \
                now() - interval '40 days', now() - interval '40 days', $3 \
         from generate_series(1, 4500) g",
    )
    .bind(env.tenant)
    .bind(install)
    .bind(listing)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into run_events (tenant_id, run_id, kind, message) \
         select tenant_id, id, 'finished', 'old' from sync_runs where install_id = $1",
    )
    .bind(install)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    let recent = seed_run(
        &env,
        env.tenant,
        install,
        listing,
        "sandbox-shop",
        "failed",
        Some("transient"),
        "1 day",
    )
    .await;
    // An old failure (counted in its hour), and alerts: one resolved long ago, one open; a
    // delivery settled long ago, one still pending.
    seed_run(
        &env,
        env.tenant,
        install,
        listing,
        "sandbox-shop",
        "failed",
        Some("auth"),
        "40 days",
    )
    .await;
    sqlx::raw_sql(
        "insert into alert_rules (id, name, kind, secret_enc) \
             values ('00000000-0000-0000-0000-0000000000a1', 'r', 'needs_reauth', '\\x00'); \
         insert into alerts (rule_id, subject, title, opened_at, resolved_at) values \
             ('00000000-0000-0000-0000-0000000000a1', 'old', 'old', now() - interval '41 days', now() - interval '40 days'), \
             ('00000000-0000-0000-0000-0000000000a1', 'open', 'open', now() - interval '41 days', null); \
         insert into alert_deliveries (rule_id, event, url, body, state, created_at) values \
             ('00000000-0000-0000-0000-0000000000a1', 'alert.test', 'https://x.test/', '{}', 'delivered', now() - interval '40 days'), \
             ('00000000-0000-0000-0000-0000000000a1', 'alert.test', 'https://x.test/', '{}', 'pending', now() - interval '40 days')",
    )
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    let keep = Duration::from_secs(30 * 86_400);
    // One batch at a time when asked for one.
    let pruned = app::domain::admin::retention::prune(&env.app.pool, keep, 1)
        .await
        .unwrap();
    assert_eq!(pruned, 2000);
    let pruned = app::domain::admin::retention::prune(&env.app.pool, keep, 100)
        .await
        .unwrap();
    assert_eq!(pruned, 2501);
    let left: Vec<i64> = sqlx::query_scalar("select id from sync_runs where install_id = $1")
        .bind(install)
        .fetch_all(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(left, [recent]);
    let events: i64 = sqlx::query_scalar("select count(*) from run_events where message = 'old'")
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(events, 0, "events go with their runs");
    let counted: Vec<String> = sqlx::query_scalar("select error_class from failure_counts")
        .fetch_all(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(counted, ["transient"], "the old hour's count goes too");
    let alerts: Vec<String> = sqlx::query_scalar("select subject from alerts")
        .fetch_all(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(alerts, ["open"]);
    let deliveries: Vec<String> = sqlx::query_scalar("select state from alert_deliveries")
        .fetch_all(&env.app.admin_pool)
        .await
        .unwrap();
    assert_eq!(deliveries, ["pending"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn installs_past_their_window_are_flagged_stale(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["schedule", "manual"], "1h")
        .await;
    let window: Option<i32> =
        sqlx::query_scalar("select window_secs from sync_schedules where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(window, Some(3600));
    env.drain(&env.engine("w1", fast())).await;
    // Fresh: synced just now.
    let page = env.page(install).await;
    assert_eq!(page["stale"], false);
    assert!(page["last_success_at"]["relative"].is_string(), "{page}");
    let dash = failures(&env, &[]).await;
    assert_eq!(dash["stale_total"], 0);

    // One missed hour is tolerated; a second is not.
    let db = env.app.admin_pool.clone();
    let set_synced = |ago: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query("update installs set last_synced_at = now() - $2::interval where id = $1")
                .bind(install)
                .bind(ago)
                .execute(&db)
                .await
                .unwrap();
        }
    };
    set_synced("90 minutes").await;
    assert_eq!(env.page(install).await["stale"], false);
    set_synced("3 hours").await;
    let page = env.page(install).await;
    assert_eq!(page["stale"], true);
    let html = env
        .customer
        .get(env.app.url(&format!("/installs/{install}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("the last two scheduled syncs did not succeed"),
        "the customer is told"
    );
    let dash = failures(&env, &[]).await;
    assert_eq!(dash["stale_total"], 1);
    assert_eq!(dash["stale"][0]["install_id"], install.to_string());
    assert_eq!(dash["stale"][0]["tenant_name"], "Cora Co");
    assert_eq!(dash["stale"][0]["window_secs"], 3600);
    let (_, health) = env.app.call_json(&env.admin, "admin/health", &[]).await;
    assert_eq!(health["stale_installs"], 1);
    // The vendor sees it among its listings' installs, without the customer's name.
    let (_, vendor) = env.app.call_json(&env.vendor, "vendor/failures", &[]).await;
    assert_eq!(vendor["stale_total"], 1);
    assert_eq!(vendor["stale"][0]["tenant_name"], "");

    // A successful sync makes it fresh again; a paused install is not stale.
    env.action(install, "run_now").await;
    env.drain(&env.engine("w1", fast())).await;
    assert_eq!(env.page(install).await["stale"], false);
    set_synced("3 hours").await;
    env.action(install, "pause").await;
    assert_eq!(env.page(install).await["stale"], false);
    assert_eq!(failures(&env, &[]).await["stale_total"], 0);
}

#[test]
fn a_cron_schedules_window_is_its_widest_gap() {
    use app::domain::schedules::window_secs;
    assert_eq!(window_secs(Some(300), None), Some(300));
    // Weekdays at 09:00: the weekend's gap, Friday to Monday.
    assert_eq!(window_secs(None, Some("0 9 * * 1-5")), Some(3 * 86_400));
    assert_eq!(window_secs(None, Some("*/15 * * * *")), Some(900));
    assert_eq!(window_secs(None, None), None);
}

#[sqlx::test(migrations = "../migrations")]
async fn hourly_failure_counts_agree_with_the_run_log(db: PgPool) {
    // Across tenants the dashboard adds up `failure_counts` (whole hours) and the run log (the
    // partial first hour of each window); for one tenant it reads the run log alone. Both must
    // give what the seeded failures say, for every range, at the windows' edges too.
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let listing = listing_of(&env, install).await;
    let mut ages: Vec<f64> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..400 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ages.push((seed % (35 * 86_400)) as f64);
    }
    // Two minutes either side of each window's start.
    for edge in [3600.0, 86_400.0, 604_800.0, 2_592_000.0] {
        ages.extend([edge - 120.0, edge + 120.0]);
    }
    let classes: Vec<&str> = (0..ages.len())
        .map(|i| ["transient", "auth", "permanent"][i % 3])
        .collect();
    let outcomes: Vec<&str> = (0..ages.len())
        .map(|i| if i % 4 == 0 { "dead" } else { "failed" })
        .collect();
    sqlx::query(
        "insert into sync_runs (tenant_id, install_id, job_id, attempt, kind, trigger, outcome, \
             started_at, finished_at, error_class, error_message, listing_id, provider) \
         select $1, $2, 1, 0, 'incremental', 'schedule', f.outcome, \
                now() - make_interval(secs => f.age + 1), now() - make_interval(secs => f.age), \
                f.class, 'seeded', $3, 'sandbox-shop' \
         from unnest($4::float8[], $5::text[], $6::text[]) as f(age, class, outcome)",
    )
    .bind(env.tenant)
    .bind(install)
    .bind(listing)
    .bind(&ages)
    .bind(&classes)
    .bind(&outcomes)
    .execute(&env.app.admin_pool)
    .await
    .unwrap();
    let tenant = env.tenant.to_string();
    for (range, secs) in [
        ("1h", 3600.0),
        ("24h", 86_400.0),
        ("7d", 604_800.0),
        ("30d", 2_592_000.0),
    ] {
        for (class, outcome) in [("", ""), ("auth", ""), ("", "dead")] {
            let expected: Vec<(String, i64, i64, i64, i64, i64)> =
                ["transient", "auth", "permanent"]
                    .iter()
                    .filter(|c| class.is_empty() || **c == class)
                    .map(|c| {
                        let of = |window: f64| {
                            (0..ages.len())
                                .filter(|&i| {
                                    classes[i] == *c
                                        && (outcome.is_empty() || outcomes[i] == outcome)
                                        && ages[i] < window.min(secs)
                                })
                                .count() as i64
                        };
                        let dead = (0..ages.len())
                            .filter(|&i| {
                                classes[i] == *c && outcomes[i] == "dead" && ages[i] < secs
                            })
                            .count() as i64;
                        (
                            c.to_string(),
                            of(3600.0),
                            of(86_400.0),
                            of(604_800.0),
                            of(secs),
                            dead,
                        )
                    })
                    .filter(|g| g.4 > 0)
                    .collect();
            let sorted = |mut v: Vec<(String, i64, i64, i64, i64, i64)>| {
                v.sort();
                v
            };
            let form = [("range", range), ("class", class), ("outcome", outcome)];
            let across = group_counts(&failures(&env, &form).await);
            let mut one = form.to_vec();
            one.push(("tenant", &tenant));
            let alone = group_counts(&failures(&env, &one).await);
            assert_eq!(
                sorted(across),
                sorted(expected.clone()),
                "counts, {range} {class} {outcome}"
            );
            assert_eq!(
                sorted(alone),
                sorted(expected),
                "run log, {range} {class} {outcome}"
            );
        }
    }
}
