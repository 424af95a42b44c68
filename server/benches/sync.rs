//! Sync-engine benchmarks, against the bundled sandbox over loopback and a fresh database, with
//! Patchbay served for real (the install made through the wizard's server functions, webhooks
//! delivered by the sandbox to `/hooks/...`):
//!
//! - `sync_records_per_sec`: one install's first full sync of 200,000 Sandbox Shop customers
//!   into the Patchbay store, by the engine (release build), records per second. The sandbox's
//!   documented quota is raised to 100,000 requests a second for this: the figure is the engine's,
//!   not a rate limit's.
//! - `webhook_to_record_p50_ms` / `_p99_ms`: 1,000 changes made in the sandbox at a steady 40 a
//!   second, each timed from the change to the changed record being visible in the store (the
//!   sandbox's signed webhook → `/hooks` → an incremental sync by the worker pool).
//! - `fairness_small_tenant_wait_p99_s`: tenant A has 10,000 queued syncs, then tenant B queues
//!   10; with the worker pool (4 at once) running, the p99 (here: the longest) of B's waits from
//!   enqueued to started.
//!
//! Run: `cargo bench -p server --bench sync` (DATABASE_URL's server; creates and drops
//! `patchbay_bench_sync`).

#[path = "../tests/common/mod.rs"]
mod common;

use anyhow::Context;
use app::domain::sync::EngineSettings;
use common::sync::*;
use connectors::sandbox::SeedSizes;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DB: &str = "patchbay_bench_sync";
/// Records of the full sync (`BENCH_RECORDS` overrides, for a quicker look).
fn records() -> usize {
    std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}
const EVENTS: usize = 1_000;
const EVENTS_PER_SEC: f64 = 40.0;

fn main() -> anyhow::Result<()> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&base).context("DATABASE_URL")?;
    let url = options.clone().database(DB).to_url_lossy().to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async {
        let mut admin = PgConnection::connect_with(&options).await?;
        sqlx::query(&format!("drop database if exists {DB} with (force)"))
            .execute(&mut admin)
            .await?;
        server::db::prepare(&url).await?;
        let pool = PgPool::connect(&url).await?;
        let figures = run(pool).await;
        if std::env::var("BENCH_KEEP").is_err() {
            sqlx::query(&format!("drop database if exists {DB} with (force)"))
                .execute(&mut admin)
                .await?;
        }
        figures
    })?;
    let (per_sec, p50, p99, fair) = figures;
    println!("bench: command = cargo bench -p server --bench sync");
    println!("bench: sync_records_per_sec = {per_sec:.0} records/s");
    println!("bench: webhook_to_record_p50_ms = {p50:.1} ms");
    println!("bench: webhook_to_record_p99_ms = {p99:.1} ms");
    println!("bench: fairness_small_tenant_wait_p99_s = {fair:.3} s");
    Ok(())
}

async fn run(db: PgPool) -> anyhow::Result<(f64, f64, f64, f64)> {
    let spec = spec_with("sandbox-shop", |s| {
        let limit = s.rate_limit.as_mut().unwrap();
        limit.requests = 100_000;
        limit.per_secs = 1;
    });
    let env = sync_env(
        db,
        SyncOptions {
            seed: SeedSizes {
                customers: records(),
                orders: 0,
                contacts: 0,
                companies: 0,
            },
            specs: vec![spec],
            pool_size: 24,
            ..SyncOptions::default()
        },
    )
    .await;

    // 1. The first full sync of 200,000 records.
    let install = env
        .install("shop-to-store", &["webhook", "manual"], "manual")
        .await;
    let batch = std::env::var("BENCH_BATCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(EngineSettings::default().batch_records);
    let engine = env.engine(
        "bench",
        EngineSettings {
            batch_records: batch,
            ..EngineSettings::default()
        },
    );
    let started = Instant::now();
    let settled = env.drain(&engine).await;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        settled == [app::domain::sync::Settled::Succeeded],
        "the sync did not succeed: {settled:?}"
    );
    let stored: i64 =
        sqlx::query_scalar("select count(*) from store_records where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await?;
    anyhow::ensure!(stored as usize == records(), "{stored} records stored");
    let per_sec = records() as f64 / elapsed;
    eprintln!("full sync: {} records in {elapsed:.2} s", records());

    // 2. Webhook to record visible.
    let workers = env.pool("bench", EngineSettings::default(), 4);
    let mut waits = Vec::with_capacity(EVENTS);
    let gap = Duration::from_secs_f64(1.0 / EVENTS_PER_SEC);
    let mut pending: Vec<(String, String, Instant)> = Vec::new();
    let mut next = Instant::now();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while waits.len() < EVENTS {
        anyhow::ensure!(Instant::now() < deadline, "changes did not arrive in time");
        if sent < EVENTS && Instant::now() >= next {
            let id = format!("cus_{:06}", 1 + (sent * 7919) % records());
            anyhow::ensure!(env.sandbox.sandbox.touch("customers", &id));
            let version = env
                .sandbox
                .sandbox
                .get("customers", &id)
                .and_then(|r| r["updated_at"].as_str().map(str::to_owned))
                .context("touched record")?;
            pending.push((id, version, Instant::now()));
            sent += 1;
            next += gap;
        }
        if !pending.is_empty() {
            let ids: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
            let seen: Vec<(String, Option<String>)> = sqlx::query_as(
                "select external_id, data->>'changed_at' from store_records \
                 where install_id = $1 and external_id = any($2)",
            )
            .bind(install)
            .bind(&ids)
            .fetch_all(&env.app.admin_pool)
            .await?;
            let now = Instant::now();
            pending.retain(|(id, version, at)| {
                let arrived = seen
                    .iter()
                    .any(|(k, v)| k == id && v.as_deref() == Some(version.as_str()));
                if arrived {
                    waits.push((now - *at).as_secs_f64() * 1000.0);
                }
                !arrived
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    workers.shutdown().await;
    waits.sort_by(f64::total_cmp);
    let pct = |p: f64| waits[((waits.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let (p50, p99) = (pct(0.50), pct(0.99));
    let webhook_runs: i64 = sqlx::query_scalar(
        "select count(*) from sync_runs where install_id = $1 and trigger = 'webhook'",
    )
    .bind(install)
    .fetch_one(&env.app.admin_pool)
    .await?;
    eprintln!("webhooks: {EVENTS} changes arrived through {webhook_runs} syncs (bursts coalesce)");

    // 3. Fairness: B's waits behind A's 10,000 (syncs of an empty stream: the queue is measured,
    // not the sync).
    env.app
        .publish(
            &env.vendor,
            &env.admin,
            "orders-to-store",
            &recipe_form("Orders to store", &ORDERS_TO_STORE),
        )
        .await;
    let template = env
        .install_reading("orders-to-store", "orders", &["manual"], "manual")
        .await;
    backlog(&env, template, 10_000, -60.0).await;
    let other = env.app.user("Bea Small", "bea@small.test").await;
    env.app.create_org(&other, "Small Co", "customer").await;
    let shop = connect(&env.app, &other, "sandbox-shop").await;
    let res = env
        .app
        .call(
            &other,
            "installs/connections",
            &[("slug", "orders-to-store"), ("source", &shop.to_string())],
        )
        .await;
    let b_template: Uuid = res.headers()["location"]
        .to_str()?
        .split('/')
        .nth(2)
        .context("install id")?
        .parse()?;
    let res = env
        .app
        .call(
            &other,
            "installs/activate",
            &[("id", &b_template.to_string())],
        )
        .await;
    anyhow::ensure!(res.status().is_success(), "activating B's install");
    let mut b = backlog(&env, b_template, 9, -1.0).await;
    b.push(b_template);
    let workers = env.pool("bench", EngineSettings::default(), 4);
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from sync_runs where install_id = any($1) and outcome = 'succeeded'",
        )
        .bind(&b)
        .fetch_one(&env.app.admin_pool)
        .await?;
        if done == 10 {
            break;
        }
        anyhow::ensure!(Instant::now() < limit, "B's syncs did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers.shutdown().await;
    let fair: f64 = sqlx::query_scalar(
        "select max(extract(epoch from started_at - queued_at))::float8 from sync_runs \
         where install_id = any($1) and attempt = 0",
    )
    .bind(&b)
    .fetch_one(&env.app.admin_pool)
    .await?;
    Ok((per_sec, p50, p99, fair))
}
