//! Queue throughput benchmark: no-op jobs through the fair claim and completion, against pgbench
//! on the same server as the yardstick.
//!
//! It creates two fresh databases on `DATABASE_URL`'s server: `patchbay_bench_queue` (migrated)
//! and `patchbay_bench_pgbench` (for `pgbench -i`). First `pgbench -N -c 16 -j 2 -T 10` (simple
//! write transactions: update one account, read it, insert a history row) gives the server's
//! transactions per second. Then 16 worker tasks over the application pool (16 connections, the
//! app role, row-level security on, `synchronous_commit` on) loop for 10 s as the worker pool
//! does: one `queue::cycle` per round, completing the batch claimed last round and claiming the
//! next (fair, across 50 tenants with a backlog of 4,000 jobs each; batches of 8, or
//! `BENCH_BATCH`) in one statement and one commit. For comparison it also runs the loop with a
//! claim and a separate `queue::complete_many` per batch (two commits), with each job completed
//! in its own transaction (`queue::complete`), and with batches of 1. The backlog is inserted in
//! bulk with the rows and counters `queue::enqueue` would write; enqueue itself is measured
//! separately for 5 s. Both databases are dropped at the end.
//!
//! Run: `cargo bench -p server --bench queue` (release build; needs `pgbench` on PATH).

use anyhow::{bail, Context};
use app::domain::queue::{self, JobKind, NewJob};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const QUEUE_DB: &str = "patchbay_bench_queue";
const PGBENCH_DB: &str = "patchbay_bench_pgbench";
/// pgbench's clients, and the queue's worker tasks unless `BENCH_WORKERS` says otherwise.
const WORKERS: usize = 16;
const TENANTS: i32 = 50;
const BACKLOG_PER_TENANT: i32 = 4_000;
const SECONDS: u64 = 10;
const LEASE: Duration = Duration::from_secs(60);

fn main() -> anyhow::Result<()> {
    if Command::new("pgbench").arg("--version").output().is_err() {
        bail!("pgbench is not installed: apt-get install -y postgresql-client");
    }
    let base_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&base_url).context("DATABASE_URL")?;
    let queue_url = options
        .clone()
        .database(QUEUE_DB)
        .to_url_lossy()
        .to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    runtime.block_on(recreate(&options, PGBENCH_DB))?;
    let pgbench_tps = pgbench(&options)?;

    let (jobs_per_sec, many_per_sec, single_per_sec, batch1_per_sec, enqueue_per_sec) = runtime.block_on(async {
        recreate(&options, QUEUE_DB).await?;
        server::db::prepare(&queue_url).await?;
        let mut admin = PgConnection::connect(&queue_url).await?;
        let sync: String = sqlx::query_scalar("show synchronous_commit")
            .fetch_one(&mut admin)
            .await?;
        anyhow::ensure!(sync == "on", "synchronous_commit is {sync}, not on");
        let pool = server::db::app_pool(&queue_url, WORKERS.max(drain_workers()) as u32).await?;
        tenants(&mut admin).await?;
        let for_enqueue = installs(&mut admin, 1_000).await?;

        let enqueue_per_sec = enqueue_rate(&pool, &for_enqueue).await?;
        reset(&mut admin).await?;
        seed(&mut admin).await?;
        let batch: usize = std::env::var("BENCH_BATCH").ok().and_then(|b| b.parse().ok()).unwrap_or(8);
        let jobs_per_sec = drain(&pool, batch, Complete::Cycle).await?;
        reset(&mut admin).await?;
        seed(&mut admin).await?;
        let many_per_sec = drain(&pool, batch, Complete::Many).await?;
        reset(&mut admin).await?;
        seed(&mut admin).await?;
        let single_per_sec = drain(&pool, 8, Complete::EachAlone).await?;
        reset(&mut admin).await?;
        seed(&mut admin).await?;
        let batch1_per_sec = drain(&pool, 1, Complete::EachAlone).await?;
        let bad: i64 = sqlx::query_scalar(
            "select count(*) from tenant_slots s where running <> (select count(*) from sync_jobs j \
             where j.tenant_id = s.tenant_id and state = 'running') \
             or queued <> (select count(*) from sync_jobs j \
             where j.tenant_id = s.tenant_id and state = 'queued')",
        )
        .fetch_one(&mut admin)
        .await?;
        anyhow::ensure!(bad == 0, "{bad} tenants' counters disagree with their jobs");
        pool.close().await;
        drop(admin);
        anyhow::Ok((jobs_per_sec, many_per_sec, single_per_sec, batch1_per_sec, enqueue_per_sec))
    })?;

    runtime.block_on(async {
        let mut conn = PgConnection::connect_with(&options).await?;
        for db in [QUEUE_DB, PGBENCH_DB] {
            sqlx::query(&format!("drop database if exists {db} with (force)"))
                .execute(&mut conn)
                .await?;
        }
        anyhow::Ok(())
    })?;

    println!("bench: command = cargo bench -p server --bench queue");
    println!("bench: queue_enqueue_per_sec = {enqueue_per_sec:.0} jobs/s");
    println!("bench: queue_jobs_per_sec_batch1 = {batch1_per_sec:.0} jobs/s");
    println!("bench: queue_jobs_per_sec_single_complete = {single_per_sec:.0} jobs/s");
    println!("bench: queue_jobs_per_sec_complete_many = {many_per_sec:.0} jobs/s");
    println!("bench: queue_jobs_per_sec = {jobs_per_sec:.0} jobs/s");
    println!("bench: pgbench_tps = {pgbench_tps:.0} tps");
    println!(
        "bench: queue_vs_pgbench = {:.2} ratio",
        jobs_per_sec / pgbench_tps
    );
    Ok(())
}

/// Drops and creates `name`.
async fn recreate(options: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// `pgbench -i` then `pgbench -N -c 16 -j 2 -T 10`; returns its tps.
fn pgbench(options: &PgConnectOptions) -> anyhow::Result<f64> {
    let port = options.get_port().to_string();
    let common = [
        "-h",
        options.get_host(),
        "-p",
        &port,
        "-U",
        options.get_username(),
    ];
    let init = Command::new("pgbench")
        .args(common)
        .args(["-i", "-q", PGBENCH_DB])
        .output()
        .context("running pgbench -i")?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let seconds = SECONDS.to_string();
    let clients = WORKERS.to_string();
    let args = ["-N", "-c", &clients, "-j", "2", "-T", &seconds, PGBENCH_DB];
    let out = Command::new("pgbench")
        .args(common)
        .args(args)
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("pgbench {}\n{text}", args.join(" "));
    anyhow::ensure!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("pgbench printed no tps")
}

/// [`TENANTS`] customer organizations.
async fn tenants(conn: &mut PgConnection) -> anyhow::Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "insert into organizations (id, kind, name) \
         select gen_random_uuid(), 'customer', 'Bench tenant ' || t from generate_series(1, $1) t \
         returning id",
    )
    .bind(TENANTS)
    .fetch_all(conn)
    .await?)
}

async fn reset(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("truncate sync_jobs, tenant_slots")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A stub listing (jobs belong to installs, and installs to a listing version the queue never
/// reads) and `per_tenant` installs for every bench tenant; returns them as (tenant, install).
async fn installs(conn: &mut PgConnection, per_tenant: i32) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "with v as (insert into organizations (id, kind, name) \
                    values (gen_random_uuid(), 'vendor', 'Bench vendor') returning id), \
         l as (insert into listings (id, vendor_org_id, slug, name) \
               select gen_random_uuid(), v.id, 'bench-' || substr(md5(random()::text), 1, 12), 'Bench' \
               from v returning id, vendor_org_id), \
         lv as (insert into listing_versions (id, listing_id, vendor_org_id, number, name, recipe) \
                select gen_random_uuid(), l.id, l.vendor_org_id, 1, 'Bench', '{}' from l \
                returning id, listing_id) \
         insert into installs (tenant_id, listing_id, listing_version_id, status) \
         select o.id, lv.listing_id, lv.id, 'active' \
         from organizations o cross join lv cross join generate_series(1, $1) \
         where o.kind = 'customer' returning tenant_id, id",
    )
    .bind(per_tenant)
    .fetch_all(conn)
    .await?)
}

/// The backlog: [`BACKLOG_PER_TENANT`] due jobs per tenant (one per install), interleaved in
/// time, with the counters enqueue keeps; then what autovacuum would do.
async fn seed(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query("delete from installs")
        .execute(&mut *conn)
        .await?;
    installs(conn, BACKLOG_PER_TENANT).await?;
    sqlx::query(
        "insert into sync_jobs (tenant_id, install_id, kind, state, trigger, run_at) \
         select tenant_id, id, 'incremental', 'queued', 'schedule', \
                now() - interval '1 hour' + \
                row_number() over (partition by tenant_id order by id) * interval '1 millisecond' \
         from installs",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into tenant_slots (tenant_id, queued) \
         select tenant_id, count(*) from sync_jobs group by tenant_id",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("vacuum analyze sync_jobs, tenant_slots")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How a worker completes the batch it claimed.
#[derive(Debug, Clone, Copy)]
enum Complete {
    /// The batch completed together with the next claim: `queue::cycle`, one commit per batch
    /// (what the worker pool does).
    Cycle,
    /// One `queue::complete_many` for the batch: one commit.
    Many,
    /// One `queue::complete` per job: one commit each.
    EachAlone,
}

/// Worker tasks of the drains (`BENCH_WORKERS`, default [`WORKERS`]).
fn drain_workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(WORKERS)
}

/// [`drain_workers`] workers claiming batches of `batch` and completing them as `how` says, for [`SECONDS`]:
/// jobs/s.
async fn drain(pool: &PgPool, batch: usize, how: Complete) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let empty = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for w in 0..drain_workers() {
        let pool = pool.clone();
        let done = done.clone();
        let empty = empty.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            // No-op jobs are done as soon as they are claimed; with `Cycle` they are completed
            // by the next claim.
            let mut finished: Vec<(queue::JobRef, Uuid)> = Vec::new();
            while Instant::now() < deadline {
                let jobs = match how {
                    Complete::Cycle => {
                        let (results, jobs) =
                            queue::cycle(&pool, &name, &finished, batch, LEASE).await?;
                        for result in results {
                            result?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        finished = jobs.iter().map(|j| (j.job, j.lease_token)).collect();
                        jobs
                    }
                    Complete::Many | Complete::EachAlone => {
                        queue::claim(&pool, &name, batch, LEASE).await?
                    }
                };
                if jobs.is_empty() {
                    // Every tenant with free slots is being claimed by others this instant; back
                    // off briefly, as the worker pool's poll would, instead of spinning.
                    empty.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                match how {
                    Complete::Cycle => {}
                    Complete::Many => {
                        let finished: Vec<_> =
                            jobs.iter().map(|j| (j.job, j.lease_token)).collect();
                        for result in queue::complete_many(&pool, &finished).await? {
                            result?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Complete::EachAlone => {
                        for job in jobs {
                            queue::complete(&pool, job.job, job.lease_token).await?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    eprintln!(
        "{} workers, batch {batch} ({how:?}): {n} jobs in {elapsed:.1} s, {} empty claims",
        drain_workers(),
        empty.load(Ordering::Relaxed)
    );
    anyhow::ensure!(
        n < (TENANTS * BACKLOG_PER_TENANT) as u64,
        "the backlog ran dry; the figure would be too low"
    );
    Ok(n as f64 / elapsed)
}

/// 16 tasks enqueueing distinct jobs (one per install) for 5 s: jobs/s.
async fn enqueue_rate(pool: &PgPool, installs: &[(Uuid, Uuid)]) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let pool = pool.clone();
        let done = done.clone();
        let installs = installs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let (tenant, install) = installs[i % installs.len()];
                anyhow::ensure!(i < installs.len(), "too few installs for the enqueue run");
                queue::enqueue(
                    &pool,
                    NewJob {
                        tenant,
                        install,
                        kind: JobKind::Incremental,
                        trigger: "schedule".into(),
                        run_at: None,
                        payload: serde_json::json!({}),
                    },
                )
                .await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += WORKERS;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
