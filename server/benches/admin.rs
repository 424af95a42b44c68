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
//! page; and one evaluation of three alert rules (dead letters, stale installs, reauth). It
//! prints p50 and p99 of each, and the `EXPLAIN (ANALYZE, BUFFERS)` plans and execution times of
//! the pages' main statements (`bench: admin_query_…`). The same run measures a one-row
//! primary-key read as the machine's baseline. The database is dropped at the
//! end (`BENCH_KEEP=1` keeps it, and a later run reuses it).
//!
//! Run: `cargo bench -p server --bench admin` (release build).

use anyhow::Context;
use app::domain::admin::{alerts, failures, health, Viewer};
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
        for sql in [
            "vacuum (analyze) sync_runs",
            "vacuum (analyze) installs",
            "vacuum (analyze) failure_counts",
            "vacuum (analyze) failure_counts_daily",
            "vacuum (analyze) failure_sources",
            "vacuum (analyze) failure_tenants",
            "analyze",
        ] {
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

        // Three alert rules, evaluated as the workers do (their first evaluation opens the stale
        // installs' alerts; the timed ones find them open).
        sqlx::raw_sql(
            "delete from alert_rules; \
             insert into alert_rules (name, kind, threshold, window_minutes, secret_enc) values \
                 ('dead', 'dead_letters', 100, 60, '\\x00'), ('stale', 'stale_installs', 0, 60, '\\x00'), \
                 ('reauth', 'needs_reauth', 0, 60, '\\x00')",
        )
        .execute(&mut admin)
        .await?;
        let settings = alerts::AlertSettings {
            evaluate_every: Duration::ZERO,
            ..Default::default()
        };
        let evaluate = time(CALLS, |_| {
            let (pool, settings) = (pool.clone(), settings.clone());
            async move {
                alerts::evaluate(&pool, &settings).await?;
                Ok(())
            }
        })
        .await?;

        let mut queries = Vec::new();
        for (name, sql) in plans() {
            println!("EXPLAIN {name}:");
            // As the pages run it: the app role, row-level security on, the system scope.
            let mut tx = app::domain::db::begin(&pool, app::domain::db::Scope::System).await?;
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("explain (analyze, buffers, costs off) {sql}"))
                    .fetch_all(&mut *tx)
                    .await?;
            tx.rollback().await?;
            for row in &rows {
                println!("    {row}");
            }
            if let Some(ms) = rows.iter().find_map(|r| {
                r.trim()
                    .strip_prefix("Execution Time: ")
                    .and_then(|t| t.trim_end_matches(" ms").parse::<f64>().ok())
            }) {
                queries.push((name, ms));
            }
        }
        for (name, (p50, p99)) in [
            ("baseline_pk_read", baseline),
            ("dashboard_7d", dashboard),
            ("dashboard_tenant", by_tenant),
            ("dashboard_class_24h", by_class),
            ("dashboard_dead_30d", dead_month),
            ("health_page", health),
            ("alerts_evaluate", evaluate),
        ] {
            println!("bench: admin_{name}_p50 = {:.1} ms", ms(p50));
            println!("bench: admin_{name}_p99 = {:.1} ms", ms(p99));
        }
        for (name, ms) in queries {
            println!("bench: admin_query_{name} = {ms:.2} ms");
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
    let dead_30d = bound(&failures::RETRYABLE_DEAD.replace("FILTER", failures::FILTER))
        .replace("604800", "2592000");
    vec![
        ("groups_7d", bound(&failures::groups_from_counts())),
        (
            "groups_tenant",
            bound(&failures::groups_from_runs()).replace(
                "null::uuid is null or r.tenant_id = null",
                "false or r.tenant_id = (select id from organizations where kind = 'customer' \
                 order by id limit 1)",
            ),
        ),
        (
            "newest_failures_7d",
            format!(
                "select r.id from sync_runs r where {filter} order by r.finished_at desc limit 50"
            ),
        ),
        (
            "tenants_with_failures_7d",
            "select o.id, o.name from failure_tenants f join organizations o on o.id = f.tenant_id \
             where f.last_at > now() - interval '7 days' order by o.name limit 500"
                .to_owned(),
        ),
        (
            "retryable_dead_30d",
            format!("select count(*) from ({dead_30d} limit 501) d"),
        ),
        (
            "stale_count",
            format!(
                "select count(*) from installs i where {}",
                app::domain::installs::freshness::STALE
            ),
        ),
        (
            "health_minutes",
            "select floor(extract(epoch from now() - finished_at) / 60)::int4, \
                    count(*) filter (where outcome = 'succeeded'), \
                    percentile_cont(0.95) within group \
                        (order by extract(epoch from finished_at - started_at))::float8, \
                    sum(rate_wait_secs)::float8 \
             from sync_runs where finished_at > now() - interval '60 minutes' group by 1"
                .to_owned(),
        ),
    ]
}

/// The big run log, in SQL. Foreign-key triggers are off for the seed (`replica`): every row
/// points at rows inserted just before.
async fn seed(db: &mut PgConnection, runs: i64) -> anyhow::Result<()> {
    let statements = [
        "set session_replication_role = replica".to_owned(),
        "truncate sync_runs, failure_counts, failure_counts_daily, failure_sources, failure_tenants, sync_schedules, installs, listing_versions, listings, organizations cascade".to_owned(),
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
                 now() - (({runs} - 1 - g)::float8 / {runs} * 30) * interval '1 day' as at) o \
             order by g"
        ))
        .execute(&mut *db)
        .await?;
        from = to;
    }
    // Triggers keep these; the seed ran without them (`replica`). The same statements as the
    // migration's backfill.
    sqlx::raw_sql(
        "insert into failure_counts \
             (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run) \
         select date_trunc('hour', finished_at, 'UTC'), listing_id, provider, error_class, outcome, \
                count(*), min(finished_at), max(finished_at), max(id) \
         from sync_runs where outcome in ('failed', 'dead') and finished_at is not null \
         group by 1, 2, 3, 4, 5; \
         insert into failure_counts_daily \
             (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run) \
         select date_trunc('day', bucket, 'UTC'), listing_id, provider, error_class, outcome, \
                sum(n), min(first_at), max(last_at), max(last_run) \
         from failure_counts group by 1, 2, 3, 4, 5; \
         insert into failure_sources (listing_id, provider, last_at) \
         select listing_id, provider, max(finished_at) from sync_runs \
         where outcome in ('failed', 'dead') and finished_at is not null group by 1, 2; \
         insert into failure_tenants (tenant_id, last_at) \
         select tenant_id, max(finished_at) from sync_runs \
         where outcome in ('failed', 'dead') and finished_at is not null group by 1; \
         update installs i set stale_after = coalesce(i.last_synced_at, i.installed_at) \
                 + make_interval(secs => 2 * s.window_secs) \
         from sync_schedules s \
         where s.tenant_id = i.tenant_id and s.install_id = i.id and i.status = 'active'",
    )
    .execute(&mut *db)
    .await?;
    sqlx::raw_sql("set session_replication_role = origin")
        .execute(&mut *db)
        .await?;
    Ok(())
}
