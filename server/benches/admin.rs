//! Admin dashboard benchmark: the failures dashboard's and the health page's queries over a big
//! run log.
//!
//! It creates a fresh database `patchbay_bench_admin` on `DATABASE_URL`'s server (migrated) and
//! seeds it in SQL: 1,000 customer tenants, 20 listings of one vendor over 5 providers, 100,000
//! active installs on hourly schedules (one in fifty stale), and 10,000,000 runs
//! (`BENCH_RUNS`) over the last 30 days — 96% succeeded, 3% failed, 1% dead, with four error
//! classes. Then, through the application pool (the app role, row-level security on), it times
//! 50 calls each of what the pages call: the dashboard unfiltered (7 days), filtered by one
//! tenant, by error class and the last 24 hours, and by outcome over 30 days; and the health
//! page. It prints p50 and p99 of each, and the `EXPLAIN (ANALYZE, BUFFERS)` plans of the
//! dashboard's grouping and newest-failures queries and of the stale-install count. The same run
//! measures a one-row primary-key read as the machine's baseline. The database is dropped at the
//! end (`BENCH_KEEP=1` keeps it, and a later run reuses it).
//!
//! Run: `cargo bench -p server --bench admin` (release build).

use anyhow::Context;
use app::domain::admin::{failures, health, Viewer};
use app::model::admin::FailureQuery;
use app::model::UserInfo;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DB: &str = "patchbay_bench_admin";
const TENANTS: i64 = 1_000;
const INSTALLS: i64 = 100_000;
const LISTINGS: i64 = 20;
const CALLS: usize = 50;

fn main() -> anyhow::Result<()> {
    let base_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let runs: i64 = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000_000);
    let keep = std::env::var("BENCH_KEEP").is_ok_and(|k| k == "1");
    let options = PgConnectOptions::from_str(&base_url).context("DATABASE_URL")?;
    let url = options.clone().database(DB).to_url_lossy().to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut server = PgConnection::connect_with(&options).await?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(DB)
                .fetch_one(&mut server)
                .await?;
        let mut admin = if exists && keep {
            PgConnection::connect(&url).await?
        } else {
            sqlx::query(&format!("drop database if exists {DB} with (force)"))
                .execute(&mut server)
                .await?;
            sqlx::query(&format!("create database {DB}"))
                .execute(&mut server)
                .await?;
            PgConnection::connect(&url).await?
        };
        server::db::prepare(&url).await?;
        let seeded: i64 = sqlx::query_scalar("select count(*) from sync_runs")
            .fetch_one(&mut admin)
            .await?;
        if seeded != runs {
            let started = Instant::now();
            seed(&mut admin, runs).await?;
            println!(
                "seeded {runs} runs in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        // As autovacuum would have by then: statistics, and the visibility map that lets the
        // failures index answer without visiting the table.
        for sql in ["vacuum (analyze) sync_runs", "analyze"] {
            sqlx::raw_sql(sql).execute(&mut admin).await?;
        }
        let pool = server::db::app_pool(&url, 4).await?;
        let viewer = Viewer::admin(&UserInfo {
            id: Uuid::nil(),
            email: "bench@patchbay.test".into(),
            display_name: "Bench".into(),
            is_platform_admin: true,
        })?;
        let tenants: Vec<Uuid> =
            sqlx::query_scalar("select id from organizations where kind = 'customer'")
                .fetch_all(&mut admin)
                .await?;

        let baseline = time(CALLS, |i| {
            let pool = pool.clone();
            let tenant = tenants[i % tenants.len()];
            async move {
                sqlx::query("select name from organizations where id = $1")
                    .bind(tenant)
                    .fetch_one(&pool)
                    .await?;
                Ok(())
            }
        })
        .await?;
        let page = |q: FailureQuery| {
            let (pool, q) = (pool.clone(), q);
            async move {
                failures::page(&pool, &viewer, q).await?;
                Ok(())
            }
        };
        let dashboard = time(CALLS, |_| page(FailureQuery::default())).await?;
        let by_tenant = time(CALLS, |i| {
            page(FailureQuery {
                tenant: tenants[(i * 37) % tenants.len()].to_string(),
                ..FailureQuery::default()
            })
        })
        .await?;
        let by_class = time(CALLS, |_| {
            page(FailureQuery {
                class: "rate_limited".into(),
                range: "24h".into(),
                ..FailureQuery::default()
            })
        })
        .await?;
        let dead_month = time(CALLS, |_| {
            page(FailureQuery {
                outcome: "dead".into(),
                range: "30d".into(),
                ..FailureQuery::default()
            })
        })
        .await?;
        let health = time(CALLS, |_| {
            let pool = pool.clone();
            async move {
                health::page(&pool, &viewer).await?;
                Ok(())
            }
        })
        .await?;

        for (name, sql) in plans() {
            println!("EXPLAIN {name}:");
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("explain (analyze, buffers, costs off) {sql}"))
                    .fetch_all(&mut admin)
                    .await?;
            for row in rows {
                println!("    {row}");
            }
        }
        for (name, (p50, p99)) in [
            ("baseline_pk_read", baseline),
            ("dashboard_7d", dashboard),
            ("dashboard_tenant", by_tenant),
            ("dashboard_class_24h", by_class),
            ("dashboard_dead_30d", dead_month),
            ("health_page", health),
        ] {
            println!("bench: admin_{name}_p50 = {:.1} ms", ms(p50));
            println!("bench: admin_{name}_p99 = {:.1} ms", ms(p99));
        }
        drop(admin);
        if !keep {
            pool.close().await;
            sqlx::query(&format!("drop database if exists {DB} with (force)"))
                .execute(&mut server)
                .await?;
        }
        anyhow::Ok(())
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `call` `n` times (after two warm-up calls); returns (p50, p99).
async fn time<F, Fut>(n: usize, call: F) -> anyhow::Result<(Duration, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for i in 0..2 {
        call(i).await?;
    }
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        call(i).await?;
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    Ok((at(0.5), at(0.99)))
}

/// The queries whose plans go into docs/benchmarks.md, with the default filter's parameters.
fn plans() -> Vec<(&'static str, String)> {
    let bound = |sql: &str| {
        sql.replace("$1", "604800")
            .replace("$2::uuid", "null::uuid")
            .replace("$3::text", "null::text")
            .replace("$4::text", "null::text")
            .replace("$5::text", "null::text")
            .replace("$6::text", "null::text")
            .replace("$7::uuid", "null::uuid")
            .replace("$2", "null")
            .replace("$3", "null")
            .replace("$4", "null")
            .replace("$5", "null")
            .replace("$6", "null")
            .replace("$7", "null")
    };
    let filter = bound(failures::FILTER);
    vec![
        (
            "failure groups (7 days)",
            format!(
                "select r.error_class, r.listing_id, r.provider, count(*), max(r.finished_at) \
                 from sync_runs r where {filter} group by 1, 2, 3"
            ),
        ),
        (
            "newest failures (7 days)",
            format!(
                "select r.id from sync_runs r where {filter} order by r.finished_at desc limit 50"
            ),
        ),
        (
            "stale installs (count)",
            format!(
                "select count(*) from sync_schedules s join installs i \
                 on i.tenant_id = s.tenant_id and i.id = s.install_id where {}",
                app::domain::installs::freshness::STALE
            ),
        ),
    ]
}

/// The big run log, in SQL. Foreign-key triggers are off for the seed (`replica`): every row
/// points at rows inserted just before.
async fn seed(db: &mut PgConnection, runs: i64) -> anyhow::Result<()> {
    let statements = [
        "set session_replication_role = replica".to_owned(),
        "truncate sync_runs, sync_schedules, installs, listing_versions, listings, organizations cascade".to_owned(),
        "insert into organizations (id, kind, name) values ('00000000-0000-0000-0000-00000000000v', 'vendor', 'Bench vendor')"
            .replace("000v", "0001"),
        format!(
            "insert into organizations (id, kind, name) \
             select gen_random_uuid(), 'customer', 'Tenant ' || g from generate_series(1, {TENANTS}) g"
        ),
        format!(
            "insert into listings (id, vendor_org_id, slug, name, status) \
             select gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'listing-' || g, \
                    'Listing ' || g, 'published' from generate_series(1, {LISTINGS}) g"
        ),
        "insert into listing_versions (id, listing_id, vendor_org_id, number, state, name, recipe) \
         select gen_random_uuid(), l.id, l.vendor_org_id, 1, 'published', l.name, \
                jsonb_build_object('source_provider', 'provider-' || (row_number() over () % 5)) \
         from listings l"
            .to_owned(),
        format!(
            "create temporary table t as select id, row_number() over (order by id) - 1 as n \
             from organizations where kind = 'customer'; \
             create temporary table l as select l.id, v.id as version, v.recipe->>'source_provider' as provider, \
                    row_number() over (order by l.id) - 1 as n \
             from listings l join listing_versions v on v.listing_id = l.id; \
             insert into installs (tenant_id, id, listing_id, listing_version_id, status, installed_at, last_synced_at) \
             select t.id, gen_random_uuid(), l.id, l.version, 'active', now() - interval '40 days', \
                    now() - case when g % 50 = 0 then interval '5 hours' else interval '20 minutes' end \
             from generate_series(0, {INSTALLS} - 1) g \
             join t on t.n = g % {TENANTS} join l on l.n = g % {LISTINGS}"
        ),
        "insert into sync_schedules (tenant_id, install_id, every_secs, next_run_at, window_secs) \
         select tenant_id, id, 3600, now() + interval '30 minutes', 3600 from installs"
            .to_owned(),
        "create temporary table i as select tenant_id, id, listing_id, row_number() over (order by id) - 1 as n from installs"
            .to_owned(),
    ];
    for sql in statements {
        sqlx::raw_sql(&sql).execute(&mut *db).await?;
    }
    // The runs, a million at a time.
    let chunk = 1_000_000i64;
    let mut from = 0;
    while from < runs {
        let to = (from + chunk).min(runs);
        sqlx::raw_sql(&format!(
            "insert into sync_runs (tenant_id, install_id, job_id, attempt, kind, trigger, outcome, \
                 started_at, finished_at, error_class, error_message, listing_id, provider, records_read) \
             select i.tenant_id, i.id, g, 0, 'incremental', 'schedule', o.outcome, \
                    o.at, o.at + interval '4 seconds', o.class, \
                    case when o.class is null then null else 'provider answered HTTP 500' end, \
                    i.listing_id, 'provider-' || (i.n % {LISTINGS} % 5), 100 \
             from generate_series({from}, {to} - 1) g \
             join i on i.n = g % {INSTALLS} \
             cross join lateral (select \
                 case when g % 100 < 96 then 'succeeded' when g % 100 < 99 then 'failed' else 'dead' end as outcome, \
                 case when g % 100 < 96 then null \
                      else (array['transient', 'rate_limited', 'auth', 'permanent'])[1 + (g / 100) % 4] end as class, \
                 now() - (g::float8 / {runs} * 30) * interval '1 day' as at) o"
        ))
        .execute(&mut *db)
        .await?;
        from = to;
    }
    sqlx::raw_sql("set session_replication_role = origin")
        .execute(&mut *db)
        .await?;
    Ok(())
}
