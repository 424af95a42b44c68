//! The run log: a row per attempt of a sync job (`sync_runs`), with its counters, outcome and
//! error, and the events of its timeline (`run_events`). Workers write it (system scope); the
//! customer reads their own (row-level security).
//!
//! Counters move inside the transaction that commits each written batch, so what the install
//! page shows while a sync runs is exactly what is committed at the destination.

use crate::domain::db::{self, Scope};
use crate::domain::queue::{ClaimedJob, JobRef};
use crate::model::install::{
    ErrorClass, EventKind, EventView, QuarantinedView, RunGroup, RunOutcome, RunView, Stamp,
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// Opens the attempt's row and its first event.
pub async fn start(pool: &PgPool, job: &ClaimedJob, worker: &str) -> sqlx::Result<i64> {
    let mut tx = db::begin(pool, Scope::System).await?;
    // The listing and provider are copied from the install (for grouping failures), and the
    // streams' cursors as they stand before the attempt reads anything.
    let id: i64 = sqlx::query_scalar(
        "insert into sync_runs (tenant_id, install_id, job_id, attempt, kind, trigger, worker, \
             lease_token, queued_at, phase, listing_id, provider, cursor_before) \
         select $1, $2, $3, $4, $5, $6, $7, $8, $9, 'Starting', i.listing_id, \
                v.recipe->>'source_provider', \
                (select jsonb_object_agg(s.stream, s.cursor) from sync_state s \
                 where s.tenant_id = $1 and s.install_id = $2) \
         from installs i join listing_versions v on v.id = i.listing_version_id \
         where i.tenant_id = $1 and i.id = $2 \
         returning id",
    )
    .bind(job.job.tenant)
    .bind(job.install)
    .bind(job.job.id)
    .bind(job.attempt)
    .bind(job.kind.as_str())
    .bind(&job.trigger)
    .bind(worker)
    .bind(job.lease_token)
    .bind(job.created_at)
    .fetch_one(&mut *tx)
    .await?;
    let message = if job.attempt == 0 {
        format!(
            "{} sync started ({})",
            kind_word(job.kind.as_str()),
            job.trigger
        )
    } else {
        format!(
            "Attempt {} of the {} sync started",
            job.attempt + 1,
            job.kind.as_str()
        )
    };
    event(&mut tx, job.job.tenant, id, EventKind::Started, &message).await?;
    tx.commit().await?;
    Ok(id)
}

fn kind_word(kind: &str) -> &'static str {
    if kind == "full" {
        "Full"
    } else {
        "Incremental"
    }
}

/// Counters to add to an attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages: i32,
    pub read: i64,
    pub written: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub failed: i64,
}

/// Adds to an attempt's counters and sets what it is doing, in the caller's transaction.
pub async fn progress(
    conn: &mut PgConnection,
    tenant: Uuid,
    run: i64,
    counts: Counts,
    phase: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sync_runs set pages = pages + $3, records_read = records_read + $4, \
             records_written = records_written + $5, records_unchanged = records_unchanged + $6, \
             records_deleted = records_deleted + $7, records_failed = records_failed + $8, \
             phase = $9 \
         where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(run)
    .bind(counts.pages)
    .bind(counts.read)
    .bind(counts.written)
    .bind(counts.unchanged)
    .bind(counts.deleted)
    .bind(counts.failed)
    .bind(phase)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds an event to an attempt's timeline, in the caller's transaction.
pub async fn event(
    conn: &mut PgConnection,
    tenant: Uuid,
    run: i64,
    kind: EventKind,
    message: &str,
) -> sqlx::Result<()> {
    events(
        conn,
        tenant,
        run,
        kind,
        &[(message.to_owned(), serde_json::json!({}))],
    )
    .await
}

/// Adds several events of one kind at once, each with its detail (`{}`, or a provider exchange as
/// `{"request": …}`).
pub async fn events(
    conn: &mut PgConnection,
    tenant: Uuid,
    run: i64,
    kind: EventKind,
    entries: &[(String, serde_json::Value)],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (messages, details): (Vec<&str>, Vec<&serde_json::Value>) =
        entries.iter().map(|(m, d)| (m.as_str(), d)).unzip();
    sqlx::query(
        "insert into run_events (tenant_id, run_id, kind, message, detail) \
         select $1, $2, $3, m, d from unnest($4::text[], $5::jsonb[]) as u (m, d)",
    )
    .bind(tenant)
    .bind(run)
    .bind(kind.as_str())
    .bind(&messages)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds the seconds an attempt waited for rate budgets (for the health page's plot).
pub async fn add_rate_wait(
    conn: &mut PgConnection,
    tenant: Uuid,
    run: i64,
    seconds: f64,
) -> sqlx::Result<()> {
    sqlx::query("update sync_runs set rate_wait_secs = rate_wait_secs + $3 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(run)
        .bind(seconds)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a provider request that failed, with its summary, before the attempt closes.
pub async fn failed_request(
    pool: &PgPool,
    tenant: Uuid,
    run: i64,
    exchange: &connectors::engine::Exchange,
) -> sqlx::Result<()> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let detail = serde_json::json!({ "request": exchange });
    events(
        &mut tx,
        tenant,
        run,
        EventKind::Request,
        &[(format!("Request failed: {}", exchange.summary()), detail)],
    )
    .await?;
    tx.commit().await
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub outcome: RunOutcome,
    pub error: Option<(ErrorClass, String)>,
    pub retry_at: Option<OffsetDateTime>,
}

impl Ending {
    pub fn ok(outcome: RunOutcome) -> Self {
        Ending {
            outcome,
            error: None,
            retry_at: None,
        }
    }
}

/// Closes an attempt with its outcome and a last event.
pub async fn finish(pool: &PgPool, tenant: Uuid, run: i64, ending: &Ending) -> sqlx::Result<()> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let (class, message) = match &ending.error {
        Some((class, message)) => (Some(class.as_str()), Some(message.as_str())),
        None => (None, None),
    };
    let counts: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "update sync_runs set outcome = $3, error_class = $4, error_message = $5, retry_at = $6, \
             finished_at = now(), phase = null, \
             cursor_after = (select jsonb_object_agg(s.stream, s.cursor) from sync_state s \
                             where s.tenant_id = $1 and s.install_id = sync_runs.install_id) \
         where tenant_id = $1 and id = $2 and outcome = 'running' \
         returning records_read, records_written, records_unchanged, records_deleted, records_failed",
    )
    .bind(tenant)
    .bind(run)
    .bind(ending.outcome.as_str())
    .bind(class)
    .bind(message)
    .bind(ending.retry_at)
    .fetch_optional(&mut *tx)
    .await?;
    if counts.is_some() && ending.outcome == RunOutcome::Succeeded {
        // Freshness: the install's data is as of now.
        sqlx::query(
            "update installs set last_synced_at = now() \
             where tenant_id = $1 and id = (select install_id from sync_runs where tenant_id = $1 and id = $2)",
        )
        .bind(tenant)
        .bind(run)
        .execute(&mut *tx)
        .await?;
    }
    if let Some((read, written, unchanged, deleted, failed)) = counts {
        let summary = format!(
            "{read} read, {written} written, {unchanged} unchanged, {deleted} deleted, {failed} failed"
        );
        let text = match (&ending.outcome, &ending.error) {
            (RunOutcome::Succeeded, _) => format!("Finished: {summary}"),
            (RunOutcome::Failed, Some((_, m))) if ending.retry_at.is_some() => {
                format!("Failed, will retry: {m}")
            }
            (RunOutcome::Dead, Some((_, m))) => format!("Gave up (dead letter): {m}"),
            (_, Some((_, m))) => format!("{}: {m}", ending.outcome.label()),
            (outcome, None) => format!("{}: {summary}", outcome.label()),
        };
        let kind = if ending.error.is_some() {
            EventKind::Error
        } else {
            EventKind::Finished
        };
        event(&mut tx, tenant, run, kind, &text).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Closes the attempts that ran under leases the reaper took back: their workers stopped
/// answering. Those whose job died with them are dead letters.
pub async fn close_expired(
    pool: &PgPool,
    leases: &[(JobRef, Uuid)],
    dead: &[JobRef],
) -> sqlx::Result<u64> {
    if leases.is_empty() {
        return Ok(0);
    }
    let tokens: Vec<Uuid> = leases.iter().map(|(_, t)| *t).collect();
    let dead_ids: Vec<i64> = dead.iter().map(|j| j.id).collect();
    let mut tx = db::begin(pool, Scope::System).await?;
    let closed: Vec<(Uuid, i64, String)> = sqlx::query_as(
        "update sync_runs set \
             outcome = case when job_id = any($2) then 'dead' else 'failed' end, \
             error_class = 'lease_expired', \
             error_message = 'The worker running this attempt stopped answering, so the job was taken back.', \
             finished_at = now(), phase = null \
         where lease_token = any($1) and outcome = 'running' \
         returning tenant_id, id, outcome",
    )
    .bind(&tokens)
    .bind(&dead_ids)
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, run, outcome) in &closed {
        let text = if outcome == "dead" {
            "The worker stopped answering on the last attempt allowed: dead letter."
        } else {
            "The worker stopped answering; the job goes back in the queue."
        };
        event(&mut tx, *tenant, *run, EventKind::Error, text).await?;
    }
    tx.commit().await?;
    Ok(closed.len() as u64)
}

/// Time format of every timestamp in the run log's views.
const STAMP: &str = "'YYYY-MM-DD HH24:MI:SS \"UTC\"'";

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    job_id: i64,
    attempt: i32,
    kind: String,
    trigger: String,
    outcome: String,
    phase: Option<String>,
    started: String,
    started_ago: f64,
    finished: Option<String>,
    finished_ago: Option<f64>,
    duration: f64,
    pages: i32,
    records_read: i64,
    records_written: i64,
    records_unchanged: i64,
    records_deleted: i64,
    records_failed: i64,
    error_class: Option<String>,
    error_message: Option<String>,
    retry: Option<String>,
    retry_ago: Option<f64>,
}

fn run_columns() -> String {
    format!(
        "r.id, r.job_id, r.attempt, r.kind, r.trigger, r.outcome, r.phase, \
         to_char(r.started_at at time zone 'utc', {STAMP}) as started, \
         extract(epoch from now() - r.started_at)::float8 as started_ago, \
         to_char(r.finished_at at time zone 'utc', {STAMP}) as finished, \
         extract(epoch from now() - r.finished_at)::float8 as finished_ago, \
         extract(epoch from coalesce(r.finished_at, now()) - r.started_at)::float8 as duration, \
         r.pages, r.records_read, r.records_written, r.records_unchanged, r.records_deleted, \
         r.records_failed, r.error_class, r.error_message, \
         to_char(r.retry_at at time zone 'utc', {STAMP}) as retry, \
         extract(epoch from now() - r.retry_at)::float8 as retry_ago"
    )
}

impl From<RunRow> for RunView {
    fn from(r: RunRow) -> Self {
        RunView {
            id: r.id,
            job_id: r.job_id,
            attempt: r.attempt,
            kind: r.kind,
            trigger: r.trigger,
            outcome: r.outcome.parse().unwrap_or(RunOutcome::Failed),
            phase: r.phase,
            started_at: Stamp::new(r.started, r.started_ago),
            finished_at: r
                .finished
                .zip(r.finished_ago)
                .map(|(t, ago)| Stamp::new(t, ago)),
            duration_ms: (r.duration * 1000.0).round() as i64,
            pages: r.pages,
            read: r.records_read,
            written: r.records_written,
            unchanged: r.records_unchanged,
            deleted: r.records_deleted,
            failed: r.records_failed,
            error_class: r.error_class.and_then(|c| c.parse().ok()),
            error_message: r.error_message,
            retry_at: r.retry.zip(r.retry_ago).map(|(t, ago)| Stamp::new(t, ago)),
        }
    }
}

/// An install's newest attempts (at most `limit`), grouped by run, newest first.
pub async fn history(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<RunGroup>> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "select {} from sync_runs r where r.tenant_id = $1 and r.install_id = $2 \
         order by r.id desc limit $3",
        run_columns()
    ))
    .bind(tenant)
    .bind(install)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let mut groups: Vec<RunGroup> = Vec::new();
    for view in rows.into_iter().map(RunView::from) {
        match groups.iter_mut().find(|g| g.job_id == view.job_id) {
            Some(group) => group.attempts.push(view),
            None => groups.push(RunGroup {
                job_id: view.job_id,
                attempts: vec![view],
            }),
        }
    }
    Ok(groups)
}

/// Every attempt of one job, newest first.
pub async fn attempts_of_job(
    conn: &mut PgConnection,
    tenant: Uuid,
    job: i64,
) -> sqlx::Result<Vec<RunView>> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "select {} from sync_runs r where r.tenant_id = $1 and r.job_id = $2 \
         order by r.attempt desc, r.id desc limit 100",
        run_columns()
    ))
    .bind(tenant)
    .bind(job)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(RunView::from).collect())
}

/// The newest attempt of each of the given installs that has one.
pub async fn latest(
    conn: &mut PgConnection,
    tenant: Uuid,
    installs: &[Uuid],
) -> sqlx::Result<Vec<(Uuid, RunView)>> {
    #[derive(sqlx::FromRow)]
    struct Latest {
        install_id: Uuid,
        #[sqlx(flatten)]
        run: RunRow,
    }
    let rows: Vec<Latest> = sqlx::query_as(&format!(
        "select distinct on (r.install_id) r.install_id, {} from sync_runs r \
         where r.tenant_id = $1 and r.install_id = any($2) order by r.install_id, r.id desc",
        run_columns()
    ))
    .bind(tenant)
    .bind(installs)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|l| (l.install_id, RunView::from(l.run)))
        .collect())
}

/// The timeline of one attempt, oldest first (at most the last `limit` events).
pub async fn timeline(
    conn: &mut PgConnection,
    tenant: Uuid,
    run: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventView>> {
    let rows: Vec<(String, f64, String, String)> = sqlx::query_as(&format!(
        "select t, ago, kind, message from (select id, to_char(at at time zone 'utc', {STAMP}) as t, \
                extract(epoch from now() - at)::float8 as ago, kind, message \
         from run_events where tenant_id = $1 and run_id = $2 order by id desc limit $3) e \
         order by id"
    ))
    .bind(tenant)
    .bind(run)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(at, ago, kind, message)| EventView {
            at: Stamp::new(at, ago),
            kind: kind.parse().unwrap_or(EventKind::Error),
            message,
        })
        .collect())
}

/// The records the install's newest runs quarantined, newest first.
pub async fn quarantined(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<QuarantinedView>> {
    let rows: Vec<(String, String, String, String, f64)> = sqlx::query_as(&format!(
        "select stream, external_id, reason, to_char(created_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - created_at)::float8 \
         from quarantined_records where tenant_id = $1 and install_id = $2 and replayed_at is null \
         order by id desc limit $3"
    ))
    .bind(tenant)
    .bind(install)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stream, external_id, reason, at, ago)| QuarantinedView {
            stream,
            external_id,
            reason,
            at: Stamp::new(at, ago),
        })
        .collect())
}
