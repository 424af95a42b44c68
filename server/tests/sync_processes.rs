//! Reliability with real processes: `patchbay worker` children SIGKILLed mid-sync again and again
//! (after a final clean run the destination holds exactly the source's records), two workers on
//! one database sharing a backlog without ever running one job twice, a small tenant served
//! promptly while a large one drains, and a worker process's own `/metrics`. (Postgres restarted
//! under a running sync: `sync_postgres_restart.rs`.)
//!
//! `PATCHBAY_SOAK_KILLS=<n>` raises the number of kills of the kill tests (a soak run).

mod common;

use common::sync::*;
use connectors::sandbox::SeedSizes;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn kills(default: usize) -> usize {
    std::env::var("PATCHBAY_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn terminate(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the worker did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn written(pool: &PgPool, install: Uuid) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(records_written), 0)::bigint from sync_runs where install_id = $1",
    )
    .bind(install)
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

async fn running(pool: &PgPool, install: Uuid) -> bool {
    sqlx::query_scalar::<_, i64>(
        "select count(*) from sync_jobs where install_id = $1 and state = 'running'",
    )
    .bind(install)
    .fetch_one(pool)
    .await
    .map(|n| n > 0)
    .unwrap_or(false)
}

/// The source's customers as the store should hold them: id → (email, first, last, updated_at).
fn expected(env: &SyncEnv) -> BTreeMap<String, serde_json::Value> {
    env.sandbox
        .sandbox
        .recent("customers", usize::MAX)
        .into_iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap().to_owned();
            let want = serde_json::json!({
                "email": c["email"],
                "first_name": c["first_name"],
                "last_name": c["last_name"],
                "changed_at": c["updated_at"],
            });
            (id, want)
        })
        .collect()
}

/// Kills a worker while a sync of `install` runs and has written something since `seen`;
/// returns whether it died mid-sync, and the records written so far.
async fn kill_mid_sync(
    env: &SyncEnv,
    install: Uuid,
    seen: i64,
    extra: &[(&str, &str)],
) -> (bool, i64) {
    let mut child = env.worker_process(extra);
    let start = Instant::now();
    let mut progress = seen;
    while start.elapsed() < Duration::from_secs(15) {
        progress = written(&env.app.admin_pool, install).await;
        if progress > seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Somewhere inside the next batch.
    tokio::time::sleep(Duration::from_millis(rand_ms(120))).await;
    let mid = running(&env.app.admin_pool, install).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    (
        mid,
        written(&env.app.admin_pool, install).await.max(progress),
    )
}

fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % max
}

/// A final clean run: one worker until no job is left, then a graceful stop. It fails when the
/// sync stops moving (no page read for a minute), not after a fixed time: on a loaded machine
/// a 12,000-record read can take minutes and still be fine.
async fn clean_run(env: &SyncEnv, install: Uuid, extra: &[(&str, &str)]) {
    let mut child = env.worker_process(extra);
    let (mut pages, mut moved) = (-1, std::time::Instant::now());
    while env.jobs(install).await > 0 {
        let now: i64 = sqlx::query_scalar(
            "select coalesce(sum(pages), 0)::int8 from sync_runs where install_id = $1",
        )
        .bind(install)
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
        if now != pages {
            (pages, moved) = (now, std::time::Instant::now());
        }
        assert!(
            moved.elapsed() < Duration::from_secs(60),
            "the clean run read nothing for a minute ({pages} pages in all)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(&mut child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
}

#[sqlx::test(migrations = "../migrations")]
async fn killed_workers_lose_nothing_and_write_nothing_twice_into_the_store(db: PgPool) {
    let env = sync_env(
        db,
        SyncOptions {
            seed: SeedSizes {
                customers: 12_000,
                orders: 0,
                contacts: 0,
                companies: 0,
            },
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    env.sandbox.sandbox.faults().set_slow_ms(25);
    let extra = [("PATCHBAY_BATCH_RECORDS", "200"), ("PATCHBAY_WORKERS", "1")];
    let target = kills(20);
    let (mut mid_sync, mut seen, mut rounds) = (0, 0, 0);
    while mid_sync < target {
        rounds += 1;
        assert!(rounds < target * 4, "too few kills landed mid-sync");
        if env.jobs(install).await == 0 {
            // The sync finished between kills: change the source and start another, so the
            // kills go on landing mid-sync (deletes and inserts under kills too).
            for n in (rounds * 37 % 500..12_000).step_by(997) {
                env.sandbox
                    .sandbox
                    .touch("customers", &format!("cus_{:06}", n + 1));
            }
            env.sandbox
                .sandbox
                .delete("customers", &format!("cus_{:06}", rounds * 13 + 1));
            env.sandbox.sandbox.insert(
                "customers",
                serde_json::json!({ "email": format!("round{rounds}@shop.test") }),
            );
            env.action(install, "resync").await;
        }
        let (mid, progress) = kill_mid_sync(&env, install, seen, &extra).await;
        seen = progress;
        if mid {
            mid_sync += 1;
        }
    }
    env.sandbox.sandbox.faults().set_slow_ms(0);
    // Whatever the kills left (a dead attempt's lease still held) is taken back, and the job
    // finishes; then one more full resync proves the store matches a fresh full read.
    clean_run(&env, install, &extra).await;
    env.action(install, "resync").await;
    clean_run(&env, install, &extra).await;
    let store: BTreeMap<String, serde_json::Value> = env.store(install).await.into_iter().collect();
    let want = expected(&env);
    assert_eq!(store.len(), want.len(), "as many records as the source");
    assert!(
        store == want,
        "the store holds exactly the source's records"
    );
    let expired: i64 = sqlx::query_scalar(
        "select count(*) from sync_runs where install_id = $1 and error_class = 'lease_expired'",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    assert!(
        expired >= (target as i64) / 2,
        "{expired} attempts were taken back from killed workers"
    );
    let open: i64 = sqlx::query_scalar(
        "select count(*) from sync_runs where install_id = $1 and outcome = 'running'",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(
        open, 0,
        "every attempt of a killed worker is closed in the log"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn killed_workers_create_no_twins_at_a_crm(db: PgPool) {
    let env = sync_env(
        db,
        SyncOptions {
            seed: SeedSizes {
                customers: 1500,
                orders: 0,
                contacts: 0,
                companies: 0,
            },
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env.install("shop-to-crm", &["manual"], "manual").await;
    env.sandbox.sandbox.faults().set_slow_ms(3);
    let extra = [("PATCHBAY_BATCH_RECORDS", "100"), ("PATCHBAY_WORKERS", "1")];
    let target = kills(5);
    let (mut mid_sync, mut seen, mut rounds) = (0, 0, 0);
    while mid_sync < target && env.jobs(install).await > 0 {
        rounds += 1;
        assert!(rounds < target * 4);
        let (mid, progress) = kill_mid_sync(&env, install, seen, &extra).await;
        seen = progress;
        mid_sync += usize::from(mid);
    }
    assert!(
        mid_sync >= target.min(3),
        "only {mid_sync} kills landed mid-sync"
    );
    env.sandbox.sandbox.faults().set_slow_ms(0);
    clean_run(&env, install, &extra).await;
    assert_eq!(
        env.sandbox.sandbox.count("contacts"),
        1500,
        "none lost, none twice"
    );
    assert_eq!(
        env.sandbox_emails("contacts"),
        env.sandbox_emails("customers")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn two_worker_processes_share_a_backlog_and_never_run_a_job_twice(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let template = env.install("shop-to-store", &["manual"], "manual").await;
    sqlx::query("update tenant_slots set max_running = 8")
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    // Due in three seconds, when both processes are surely up; each sync takes a while.
    let installs = backlog(&env, template, 120, 3.0).await;
    env.sandbox.sandbox.faults().set_slow_ms(40);
    let extra = [("PATCHBAY_WORKERS", "4")];
    let mut a = env.worker_process(&extra);
    let mut b = env.worker_process(&extra);
    env.until(Duration::from_secs(90), "the backlog", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from sync_jobs")
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    terminate(&mut a);
    terminate(&mut b);
    assert!(wait_exit(&mut a, Duration::from_secs(20)).success());
    assert!(wait_exit(&mut b, Duration::from_secs(20)).success());

    let attempts: Vec<(
        i64,
        Uuid,
        String,
        String,
        time::OffsetDateTime,
        Option<time::OffsetDateTime>,
    )> = sqlx::query_as(
        "select job_id, lease_token, worker, outcome, started_at, finished_at from sync_runs \
             where install_id = any($1) order by job_id, started_at",
    )
    .bind(&installs)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap();
    // Every job ran, succeeded exactly once, under a lease token no other attempt had.
    let mut by_job: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for a in &attempts {
        by_job.entry(a.0).or_default().push(a);
    }
    assert_eq!(by_job.len(), 120);
    let tokens: std::collections::HashSet<Uuid> = attempts.iter().map(|a| a.1).collect();
    assert_eq!(
        tokens.len(),
        attempts.len(),
        "a lease token names one attempt"
    );
    for (job, runs) in &by_job {
        let ok = runs.iter().filter(|r| r.3 == "succeeded").count();
        assert_eq!(ok, 1, "job {job}: {runs:?}");
        // Attempts of one job never overlap in time.
        for pair in runs.windows(2) {
            let end = pair[0].5.expect("finished");
            assert!(end <= pair[1].4, "job {job} ran twice at once: {runs:?}");
        }
    }
    let workers: std::collections::HashSet<&str> = attempts.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(workers.len(), 2, "both processes took jobs: {workers:?}");
    let records: i64 =
        sqlx::query_scalar("select count(*) from store_records where install_id = any($1)")
            .bind(&installs)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(records, 120 * 25);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_small_tenant_starts_promptly_while_a_large_one_drains(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let template = env.install("shop-to-store", &["manual"], "manual").await;
    // Tenant A: 10,000 queued syncs.
    backlog(&env, template, 10_000, -60.0).await;
    // Tenant B: another customer with its own connection and 10 installs, queued after.
    let other = env.app.user("Bea Small", "bea@small.test").await;
    env.app.create_org(&other, "Small Co", "customer").await;
    let shop = connect(&env.app, &other, "sandbox-shop").await;
    let res = env
        .app
        .call(
            &other,
            "installs/connections",
            &[("slug", "shop-to-store"), ("source", &shop.to_string())],
        )
        .await;
    let b_template: Uuid = res.headers()["location"]
        .to_str()
        .unwrap()
        .split('/')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    let res = env
        .app
        .call(
            &other,
            "installs/activate",
            &[("id", &b_template.to_string())],
        )
        .await;
    assert_eq!(res.status(), 200);
    let mut b_installs = backlog(&env, b_template, 9, -1.0).await;
    b_installs.push(b_template);
    let workers = env.pool("w1", app::domain::sync::EngineSettings::default(), 4);
    env.until(Duration::from_secs(60), "tenant B's syncs", || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from sync_runs where install_id = any($1) and outcome = 'succeeded'",
        )
        .bind(&b_installs)
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap()
            == 10
    })
    .await;
    workers.shutdown().await;
    let waits: Vec<f64> = sqlx::query_scalar(
        "select extract(epoch from started_at - queued_at)::float8 from sync_runs \
         where install_id = any($1) and attempt = 0 order by 1",
    )
    .bind(&b_installs)
    .fetch_all(&env.app.admin_pool)
    .await
    .unwrap();
    assert_eq!(waits.len(), 10);
    let worst = waits.last().copied().unwrap();
    assert!(
        worst < 10.0,
        "tenant B waited up to {worst:.2} s behind 10,000 jobs: {waits:?}"
    );
    let a_left: i64 = sqlx::query_scalar("select count(*) from sync_jobs")
        .fetch_one(&env.app.admin_pool)
        .await
        .unwrap();
    assert!(
        a_left > 9_000,
        "B was served long before A drained ({a_left} left)"
    );
}

/// `patchbay worker --metrics-addr` serves the process's own counters behind the token: after a
/// sync it ran, its claims, its run outcomes and its calls to the provider.
#[sqlx::test(migrations = "../migrations")]
async fn a_worker_process_serves_its_own_metrics(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut child = env.worker_process(&[
        ("PATCHBAY_METRICS_ADDR", &addr),
        ("PATCHBAY_METRICS_TOKEN", METRICS_TOKEN),
    ]);
    env.until(Duration::from_secs(60), "the worker's sync", || async {
        env.runs(install).await.iter().any(|r| r.0 == "succeeded")
    })
    .await;
    let url = format!("http://{addr}/metrics");
    let refused = scrape(&url, "not-the-token").await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let res = scrape(&url, METRICS_TOKEN).await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let text = res.text().await.unwrap();
    for (metric, labels) in [
        ("patchbay_claims_total", &[][..]),
        ("patchbay_runs_total", &["outcome=\"succeeded\""]),
        (
            "patchbay_provider_requests_total",
            &["provider=\"sandbox-shop\""],
        ),
    ] {
        let value = metric_sample(&text, metric, labels)
            .unwrap_or_else(|| panic!("{metric} {labels:?} in:\n{text}"));
        assert!(value >= 1.0, "{metric} {labels:?} = {value}");
    }
    terminate(&mut child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
}

/// A metrics address without the token is refused at the start, saying what is missing.
#[test]
fn a_worker_metrics_address_needs_a_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["worker", "--metrics-addr", "127.0.0.1:9464"])
        .env_remove("PATCHBAY_METRICS_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--metrics-token"), "{stderr}");
}
