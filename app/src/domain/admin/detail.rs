//! One attempt in detail: its timeline with the requests' summaries (credentials were redacted
//! when they were recorded), the cursors before and after, every attempt of the same job, the
//! records it quarantined, and what can be done about it.

use super::{begin_read, Viewer, STAMP};
use crate::domain::runs;
use crate::error::AppError;
use crate::model::admin::{DetailEvent, RetryState, RunDetail};
use crate::model::install::{EventKind, QuarantinedView, RunOutcome, RunView, Stamp};
use connectors::engine::Exchange;
use sqlx::PgPool;
use uuid::Uuid;

/// Most events shown (the newest ones of a longer run).
const MAX_EVENTS: i64 = 500;
/// Most quarantined records listed.
const MAX_QUARANTINED: i64 = 50;

/// (time, seconds ago, kind, message, the request's summary).
type EventRow = (
    String,
    f64,
    String,
    String,
    Option<sqlx::types::Json<Exchange>>,
);

#[derive(sqlx::FromRow)]
struct Head {
    tenant_id: Uuid,
    tenant_name: String,
    install_id: Uuid,
    install_status: String,
    install_reason: Option<String>,
    job_id: i64,
    kind: String,
    outcome: String,
    slug: Option<String>,
    name: Option<String>,
    provider: Option<String>,
    cursor_before: Option<sqlx::types::Json<serde_json::Map<String, serde_json::Value>>>,
    cursor_after: Option<sqlx::types::Json<serde_json::Map<String, serde_json::Value>>>,
}

fn cursors(
    map: Option<sqlx::types::Json<serde_json::Map<String, serde_json::Value>>>,
) -> Vec<(String, String)> {
    map.map(|m| {
        m.0.into_iter()
            .map(|(stream, cursor)| {
                let text = match cursor {
                    serde_json::Value::Null => "(none yet: reads everything)".to_owned(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (stream, text)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The attempt `run`, if the viewer may see it (a vendor: a run of its own listing).
pub async fn run_detail(pool: &PgPool, viewer: &Viewer, run: i64) -> Result<RunDetail, AppError> {
    let mut tx = begin_read(pool).await?;
    let head: Option<Head> = sqlx::query_as(
        "select r.tenant_id, o.name as tenant_name, r.install_id, i.status as install_status, \
                i.status_reason as install_reason, r.job_id, r.kind, r.outcome, l.slug, l.name, \
                r.provider, r.cursor_before, r.cursor_after \
         from sync_runs r join organizations o on o.id = r.tenant_id \
         join installs i on i.tenant_id = r.tenant_id and i.id = r.install_id \
         left join listings l on l.id = r.listing_id \
         where r.id = $1 \
           and ($2::uuid is null or l.vendor_org_id = $2)",
    )
    .bind(run)
    .bind(viewer.vendor_org())
    .fetch_optional(&mut *tx)
    .await?;
    let head = head.ok_or_else(|| AppError::not_found("No such run."))?;
    let tenant = head.tenant_id;
    let mut attempts = runs::attempts_of_job(&mut tx, tenant, head.job_id).await?;
    let this: RunView = attempts
        .iter()
        .find(|a| a.id == run)
        .cloned()
        .ok_or_else(|| AppError::not_found("No such run."))?;
    attempts.sort_by_key(|a| a.attempt);

    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "select t, ago, kind, message, request from ( \
               select id, to_char(at at time zone 'utc', {STAMP}) as t, \
                      extract(epoch from now() - at)::float8 as ago, kind, message, \
                      detail->'request' as request \
               from run_events where tenant_id = $1 and run_id = $2 \
               order by id desc limit $3) e order by id"
    ))
    .bind(tenant)
    .bind(run)
    .bind(MAX_EVENTS)
    .fetch_all(&mut *tx)
    .await?;
    let vendor = viewer.vendor_org().is_some();
    let events = rows
        .into_iter()
        .map(|(at, ago, kind, message, request)| DetailEvent {
            at: Stamp::new(at, ago),
            kind: kind.parse().unwrap_or(EventKind::Error),
            message,
            // Request URLs name the customer's account at the provider: for admins only.
            request: if vendor {
                None
            } else {
                request.map(|r| r.0.summary())
            },
        })
        .collect();

    let quarantined: Vec<(String, String, String, String, f64)> = sqlx::query_as(&format!(
        "select stream, external_id, reason, to_char(created_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - created_at)::float8 \
         from quarantined_records where tenant_id = $1 and run_id = $2 order by id limit $3"
    ))
    .bind(tenant)
    .bind(run)
    .bind(MAX_QUARANTINED)
    .fetch_all(&mut *tx)
    .await?;
    let (replayable, replay_pending): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where replay_requested_at is null), \
                count(*) filter (where replay_requested_at is not null) \
         from quarantined_records where tenant_id = $1 and run_id = $2 and replayed_at is null",
    )
    .bind(tenant)
    .bind(run)
    .fetch_one(&mut *tx)
    .await?;

    let newest: Option<(i64, String)> = sqlx::query_as(
        "select id, outcome from sync_runs where tenant_id = $1 and install_id = $2 \
         order by id desc limit 1",
    )
    .bind(tenant)
    .bind(head.install_id)
    .fetch_optional(&mut *tx)
    .await?;
    let retry = retry_state(
        &mut tx,
        tenant,
        head.install_id,
        &head.kind,
        &head.outcome,
        run,
        &head.install_status,
    )
    .await?;
    tx.commit().await?;
    Ok(RunDetail {
        run: this,
        tenant_id: tenant,
        tenant_name: if vendor {
            String::new()
        } else {
            head.tenant_name
        },
        install_id: head.install_id,
        install_status: head.install_status,
        install_reason: head.install_reason,
        listing_slug: head.slug.unwrap_or_default(),
        listing_name: head.name.unwrap_or_else(|| "(unknown listing)".into()),
        provider: head.provider.unwrap_or_default(),
        cursor_before: cursors(head.cursor_before),
        cursor_after: cursors(head.cursor_after),
        events,
        attempts,
        quarantined: quarantined
            .into_iter()
            .map(|(stream, external_id, reason, at, ago)| QuarantinedView {
                stream,
                external_id,
                reason,
                at: Stamp::new(at, ago),
            })
            .collect(),
        replayable,
        replay_pending,
        retry: if vendor { RetryState::None } else { retry },
        newest: newest.map(|(id, outcome)| (id, outcome.parse().unwrap_or(RunOutcome::Failed))),
        vendor,
    })
}

/// Whether the attempt's job waits for a retry (it can run now), is dead with nothing after it
/// (it can be queued again), or neither.
pub(crate) async fn retry_state(
    conn: &mut sqlx::PgConnection,
    tenant: Uuid,
    install: Uuid,
    kind: &str,
    outcome: &str,
    run: i64,
    install_status: &str,
) -> sqlx::Result<RetryState> {
    if install_status != "active" {
        return Ok(RetryState::None);
    }
    let live: Option<String> = sqlx::query_scalar(
        "select state from sync_jobs where tenant_id = $1 and install_id = $2 and kind = $3 \
         order by state desc limit 1",
    )
    .bind(tenant)
    .bind(install)
    .bind(kind)
    .fetch_optional(&mut *conn)
    .await?;
    match live.as_deref() {
        Some("queued") => return Ok(RetryState::Waiting),
        Some(_) => return Ok(RetryState::None),
        None => {}
    }
    if outcome != RunOutcome::Dead.as_str() {
        return Ok(RetryState::None);
    }
    let later: bool = sqlx::query_scalar(
        "select exists (select 1 from sync_runs where tenant_id = $1 and install_id = $2 \
                        and id > $3 and outcome in ('succeeded', 'running'))",
    )
    .bind(tenant)
    .bind(install)
    .bind(run)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if later {
        RetryState::None
    } else {
        RetryState::Dead
    })
}
