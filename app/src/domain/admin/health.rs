//! Queue and worker health: depth by state and by tenant, the age of the oldest due job, the
//! claim rate, success and failure over the last hour, the workers heard from (their heartbeats)
//! with what they run, and per-minute plots of the last hour — runs by outcome, queue depth,
//! p95 run duration and rate-limit waits. Workers write what the plots need as they go: the run
//! log (`sync_runs`, read by `sync_runs_finished`) and one queue sample a minute.

use super::{begin_read, Viewer, STAMP};
use crate::error::AppError;
use crate::model::admin::{HealthPage, Plot, Series, TenantLoad, WorkerView};
use crate::model::install::Stamp;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// Minutes the plots cover.
pub const PLOT_MINUTES: usize = 60;
/// A worker not heard from for this long counts as gone.
pub const ALIVE_SECS: f64 = 30.0;
/// Tenants listed by their share of the queue.
const TOP_TENANTS: i64 = 10;

/// The health page (platform admins only).
pub async fn page(pool: &PgPool, viewer: &Viewer) -> Result<HealthPage, AppError> {
    viewer.require_admin()?;
    let mut tx = begin_read(pool).await?;
    let (queued, running): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(queued), 0)::int8, coalesce(sum(running), 0)::int8 from tenant_slots",
    )
    .fetch_one(&mut *tx)
    .await?;
    let (due, oldest_due_secs): (i64, Option<f64>) = sqlx::query_as(
        "select count(*), extract(epoch from now() - min(run_at))::float8 \
         from sync_jobs where state = 'queued' and run_at <= now()",
    )
    .fetch_one(&mut *tx)
    .await?;
    // Attempts started in the last five minutes: those that finished since, and those running.
    let started_5m: i64 = sqlx::query_scalar(
        "select (select count(*) from sync_runs where finished_at > now() - interval '5 minutes' \
                    and started_at > now() - interval '5 minutes') \
              + (select count(*) from sync_runs where outcome = 'running' \
                    and lease_token is not null and started_at > now() - interval '5 minutes')",
    )
    .fetch_one(&mut *tx)
    .await?;
    let stale_installs: i64 = sqlx::query_scalar(&format!(
        "select count(*) from installs i where {}",
        crate::domain::installs::freshness::STALE
    ))
    .fetch_one(&mut *tx)
    .await?;
    let top_tenants = top_tenants(&mut tx).await?;
    let workers = workers(&mut tx).await?;
    let (plots, succeeded_hour, failed_hour) = plots(&mut tx).await?;
    tx.commit().await?;
    Ok(HealthPage {
        queued,
        due,
        running,
        oldest_due_secs,
        claims_per_min: started_5m as f64 / 5.0,
        succeeded_hour,
        failed_hour,
        stale_installs,
        top_tenants,
        workers,
        plots,
    })
}

async fn top_tenants(conn: &mut PgConnection) -> sqlx::Result<Vec<TenantLoad>> {
    let rows: Vec<(Uuid, String, i32, i32)> = sqlx::query_as(
        "select s.tenant_id, o.name, s.queued, s.running from tenant_slots s \
         join organizations o on o.id = s.tenant_id \
         where s.queued + s.running > 0 \
         order by s.queued + s.running desc, o.name limit $1",
    )
    .bind(TOP_TENANTS)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant_id, name, queued, running)| TenantLoad {
            tenant_id,
            name,
            queued: queued.into(),
            running: running.into(),
        })
        .collect())
}

async fn workers(conn: &mut PgConnection) -> sqlx::Result<Vec<WorkerView>> {
    type Row = (String, i32, String, f64, String, f64);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select name, concurrency, \
                to_char(started_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - started_at)::float8, \
                to_char(heartbeat_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - heartbeat_at)::float8 \
         from workers where heartbeat_at > now() - interval '1 day' \
         order by heartbeat_at desc, name limit 200"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let current: Vec<(String, i64, String)> = sqlx::query_as(
        "select r.worker, r.id, coalesce(l.name, 'a sync') || ' for ' || o.name \
                || coalesce(': ' || r.phase, '') \
         from sync_runs r join organizations o on o.id = r.tenant_id \
         left join listings l on l.id = r.listing_id \
         where r.outcome = 'running' and r.lease_token is not null and r.worker is not null \
         order by r.id limit 1000",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_worker: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (worker, run, what) in current {
        by_worker.entry(worker).or_default().push((run, what));
    }
    Ok(rows
        .into_iter()
        .map(
            |(name, concurrency, started, started_ago, beat, beat_ago)| WorkerView {
                current: by_worker.remove(&name).unwrap_or_default(),
                name,
                concurrency,
                started_at: Stamp::new(started, started_ago),
                heartbeat_at: Stamp::new(beat, beat_ago),
                alive: beat_ago < ALIVE_SECS,
            },
        )
        .collect())
}

/// Minute `m` of the plots counts back from now: 0 is the current minute.
fn index(minutes_ago: i32) -> Option<usize> {
    let m = usize::try_from(minutes_ago).ok()?;
    (m < PLOT_MINUTES).then(|| PLOT_MINUTES - 1 - m)
}

/// The plots, with the last hour's succeeded and failed (or dead) attempts, from one pass over
/// the hour's attempts (the `sync_runs_finished` index holds what it reads).
async fn plots(conn: &mut PgConnection) -> sqlx::Result<(Vec<Plot>, i64, i64)> {
    type Minute = (i32, i64, i64, i64, Option<f64>, Option<f64>);
    let minutes: Vec<Minute> = sqlx::query_as(
        "select floor(extract(epoch from now() - finished_at) / 60)::int4, \
                count(*) filter (where outcome = 'succeeded'), \
                count(*) filter (where outcome = 'failed'), \
                count(*) filter (where outcome = 'dead'), \
                percentile_cont(0.95) within group \
                    (order by extract(epoch from finished_at - started_at))::float8, \
                sum(rate_wait_secs)::float8 \
         from sync_runs where finished_at > now() - make_interval(mins => $1) \
         group by 1",
    )
    .bind(PLOT_MINUTES as i32)
    .fetch_all(&mut *conn)
    .await?;
    let samples: Vec<(i32, i32, i32)> = sqlx::query_as(
        "select floor(extract(epoch from now() - at) / 60)::int4, queued, running \
         from queue_samples where at > now() - make_interval(mins => $1)",
    )
    .bind(PLOT_MINUTES as i32)
    .fetch_all(&mut *conn)
    .await?;

    let zeros = || vec![0.0; PLOT_MINUTES];
    let (mut ok, mut failed, mut dead) = (zeros(), zeros(), zeros());
    let (mut p95, mut waits) = (zeros(), zeros());
    let (mut succeeded_hour, mut failed_hour) = (0, 0);
    for (m, s, f, d, p, w) in minutes {
        succeeded_hour += s;
        failed_hour += f + d;
        let Some(i) = index(m) else { continue };
        ok[i] += s as f64;
        failed[i] += f as f64;
        dead[i] += d as f64;
        p95[i] = p.unwrap_or(0.0);
        waits[i] = w.unwrap_or(0.0);
    }
    let (mut queued, mut running) = (zeros(), zeros());
    for (m, q, r) in samples {
        let Some(i) = index(m) else { continue };
        queued[i] = q.into();
        running[i] = r.into();
    }
    let series = |name: &str, class: &str, points: Vec<f64>| Series {
        name: name.to_owned(),
        class: class.to_owned(),
        points,
    };
    let plot = |id: &str, title: &str, unit: &str, series: Vec<Series>| Plot {
        id: id.to_owned(),
        title: title.to_owned(),
        unit: unit.to_owned(),
        minutes: PLOT_MINUTES,
        series,
    };
    let plots = vec![
        plot(
            "runs",
            "Runs per minute by outcome",
            "runs",
            vec![
                series("Succeeded", "series-succeeded", ok),
                series("Failed", "series-failed", failed),
                series("Dead", "series-dead", dead),
            ],
        ),
        plot(
            "depth",
            "Queue depth",
            "jobs",
            vec![
                series("Queued", "series-queued", queued),
                series("Running", "series-running", running),
            ],
        ),
        plot(
            "duration",
            "p95 run duration",
            "s",
            vec![series("p95", "series-duration", p95)],
        ),
        plot(
            "waits",
            "Rate-limit waits",
            "s waited",
            vec![series("Waited", "series-waits", waits)],
        ),
    ];
    Ok((plots, succeeded_hour, failed_hour))
}

/// Records that worker `name` is alive, and the queue's depth for the current minute (the first
/// worker to get there in a minute writes it).
pub async fn report(pool: &PgPool, name: &str, concurrency: usize) -> sqlx::Result<()> {
    let mut tx = crate::domain::db::begin(pool, crate::domain::db::Scope::System).await?;
    sqlx::query(
        "insert into workers (name, concurrency) values ($1, $2) \
         on conflict (name) do update set heartbeat_at = now(), concurrency = excluded.concurrency",
    )
    .bind(name)
    .bind(i32::try_from(concurrency).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into queue_samples (at, queued, running) \
         select date_trunc('minute', now()), coalesce(sum(queued), 0), coalesce(sum(running), 0) \
         from tenant_slots \
         on conflict (at) do nothing",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Forgets workers gone for a week and queue samples older than a day: of no use to the page.
pub async fn prune(pool: &PgPool) -> sqlx::Result<()> {
    let mut tx = crate::domain::db::begin(pool, crate::domain::db::Scope::System).await?;
    sqlx::query("delete from workers where heartbeat_at < now() - interval '7 days'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from queue_samples where at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
