//! Repair actions of platform admins: retry a job (now, when it waits for its next attempt; again,
//! when it is dead), replay a run's quarantined records, pause an install with a message to its
//! customer, force a full resync, and retry every dead job of a filtered group. Each is written
//! to the audit log of the tenant it touched, in the transaction that made the change, with the
//! admin as the actor.

use super::detail::retry_state;
use super::failures::{bind, FILTER, RETRYABLE_DEAD};
use super::Viewer;
use crate::domain::audit;
use crate::domain::db::{self, Scope};
use crate::domain::installs::{self, Install};
use crate::domain::queue::{JobKind, CHANNEL};
use crate::error::AppError;
use crate::model::admin::{FailureQuery, RetryState, MAX_BULK_RETRY};
use crate::model::install::{InstallStatus, OPERATOR_PAUSE};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The longest message to a customer.
pub const MAX_MESSAGE: usize = 500;

/// What a retry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// The waiting job runs now instead of at its retry time.
    Now,
    /// The dead job was queued again.
    Requeued,
}

struct RunRef {
    tenant: Uuid,
    install: Uuid,
    kind: JobKind,
    outcome: String,
    job: i64,
}

async fn run_ref(conn: &mut PgConnection, run: i64) -> Result<RunRef, AppError> {
    let row: Option<(Uuid, Uuid, JobKind, String, i64)> = sqlx::query_as(
        "select tenant_id, install_id, kind, outcome, job_id from sync_runs where id = $1",
    )
    .bind(run)
    .fetch_optional(&mut *conn)
    .await?;
    let (tenant, install, kind, outcome, job) =
        row.ok_or_else(|| AppError::not_found("No such run."))?;
    Ok(RunRef {
        tenant,
        install,
        kind,
        outcome,
        job,
    })
}

async fn install_of(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> Result<Install, AppError> {
    installs::load(conn, tenant, id, true)
        .await?
        .ok_or_else(|| AppError::not_found("No such install."))
}

fn require_active(install: &Install) -> Result<(), AppError> {
    match install.status {
        InstallStatus::Active => Ok(()),
        InstallStatus::Paused => Err(AppError::invalid(
            "install",
            "The install is paused. It runs again when its customer resumes it.",
        )),
        _ => Err(AppError::invalid(
            "install",
            "The install does not run any more.",
        )),
    }
}

/// The tenant and install of attempt `run`, for the install-wide actions taken from its page.
pub async fn install_of_run(
    pool: &PgPool,
    viewer: &Viewer,
    run: i64,
) -> Result<(Uuid, Uuid), AppError> {
    viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let r = run_ref(&mut tx, run).await?;
    tx.commit().await?;
    Ok((r.tenant, r.install))
}

/// Retries the job of attempt `run`: a job waiting for its next attempt runs now; a dead job is
/// queued again (a fresh job of the same kind, its attempts counted from zero).
pub async fn retry(pool: &PgPool, viewer: &Viewer, run: i64) -> Result<Retried, AppError> {
    let admin = viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let r = run_ref(&mut tx, run).await?;
    let install = install_of(&mut tx, r.tenant, r.install).await?;
    require_active(&install)?;
    let state = retry_state(
        &mut tx,
        r.tenant,
        r.install,
        r.kind.as_str(),
        &r.outcome,
        run,
        install.status.as_str(),
    )
    .await?;
    let done = match state {
        RetryState::Waiting => {
            run_now(&mut tx, r.tenant, r.install, r.kind).await?;
            Retried::Now
        }
        RetryState::Dead => {
            installs::enqueue(&mut tx, &install, r.kind, "admin retry").await?;
            Retried::Requeued
        }
        RetryState::None => {
            return Err(AppError::invalid(
                "run",
                "Nothing to retry: the job runs now, or the install synced since.",
            ))
        }
    };
    audit::record(
        &mut tx,
        r.tenant,
        Some(admin),
        "admin.retry",
        json!({ "run": run, "job": r.job, "install": r.install,
                "how": if done == Retried::Now { "now" } else { "requeued" } }),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// Moves a queued job's next attempt to now, and wakes the workers.
async fn run_now(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    kind: JobKind,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sync_jobs set run_at = now() \
         where tenant_id = $1 and install_id = $2 and kind = $3 and state = 'queued'",
    )
    .bind(tenant)
    .bind(install)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    // The claim looks at a tenant again once its next due time has come.
    sqlx::query(
        "update tenant_slots set next_run_at = least(next_run_at, now()) where tenant_id = $1",
    )
    .bind(tenant)
    .execute(&mut *conn)
    .await?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(tenant.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Queues the quarantined records of attempt `run` for replay, and a sync of its install that
/// replays them first. Returns how many records wait for it.
pub async fn replay(pool: &PgPool, viewer: &Viewer, run: i64) -> Result<u64, AppError> {
    let admin = viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let r = run_ref(&mut tx, run).await?;
    let install = install_of(&mut tx, r.tenant, r.install).await?;
    require_active(&install)?;
    let marked = sqlx::query(
        "update quarantined_records set replay_requested_at = now() \
         where tenant_id = $1 and run_id = $2 and replayed_at is null \
           and replay_requested_at is null",
    )
    .bind(r.tenant)
    .bind(run)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if marked == 0 {
        return Err(AppError::invalid(
            "run",
            "Nothing to replay: the run quarantined no records, or they were replayed already.",
        ));
    }
    installs::enqueue(&mut tx, &install, JobKind::Incremental, "replay").await?;
    audit::record(
        &mut tx,
        r.tenant,
        Some(admin),
        "admin.replay",
        json!({ "run": run, "install": r.install, "records": marked }),
    )
    .await?;
    tx.commit().await?;
    Ok(marked)
}

/// Pauses an install, telling its customer why (`message` shows on their install page).
pub async fn pause(
    pool: &PgPool,
    viewer: &Viewer,
    tenant: Uuid,
    install: Uuid,
    message: &str,
) -> Result<(), AppError> {
    let admin = viewer.require_admin()?;
    let message = message.trim();
    if message.is_empty() {
        return Err(AppError::invalid(
            "message",
            "Tell the customer why their install is paused.",
        ));
    }
    if message.chars().count() > MAX_MESSAGE {
        return Err(AppError::invalid(
            "message",
            format!("Keep the message under {MAX_MESSAGE} characters."),
        ));
    }
    let mut tx = db::begin(pool, Scope::System).await?;
    let found = install_of(&mut tx, tenant, install).await?;
    if found.status != InstallStatus::Active {
        return Err(AppError::invalid(
            "install",
            "Only an active install can be paused.",
        ));
    }
    let reason = format!("{OPERATOR_PAUSE}{message}");
    installs::set_status(&mut tx, &found, InstallStatus::Paused, Some(&reason)).await?;
    installs::stop_work(&mut tx, &found).await?;
    audit::record(
        &mut tx,
        tenant,
        Some(admin),
        "admin.paused",
        json!({ "install": install, "message": message }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues a full resync of an install (everything read again; what the source no longer has is
/// deleted at the destination).
pub async fn resync(
    pool: &PgPool,
    viewer: &Viewer,
    tenant: Uuid,
    install: Uuid,
) -> Result<(), AppError> {
    let admin = viewer.require_admin()?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let found = install_of(&mut tx, tenant, install).await?;
    require_active(&found)?;
    installs::enqueue(&mut tx, &found, JobKind::Full, "admin resync").await?;
    audit::record(
        &mut tx,
        tenant,
        Some(admin),
        "admin.resync",
        json!({ "install": install }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Queues again every dead job of the filter whose install can run (at most [`MAX_BULK_RETRY`]), each
/// audited in its tenant. Returns how many were queued.
pub async fn bulk_retry(
    pool: &PgPool,
    viewer: &Viewer,
    query: FailureQuery,
) -> Result<usize, AppError> {
    let admin = viewer.require_admin()?;
    let filter = query.parse()?;
    let mut tx = super::begin_read(pool).await?;
    let sql = format!(
        "{} limit {MAX_BULK_RETRY}",
        RETRYABLE_DEAD.replace("FILTER", FILTER)
    );
    let dead: Vec<(Uuid, Uuid, JobKind, i64)> = bind(sqlx::query_as(&sql), viewer, &filter)
        .fetch_all(&mut *tx)
        .await?;
    let mut queued = 0;
    for (tenant, install, kind, run) in dead {
        let Some(found) = installs::load(&mut tx, tenant, install, true).await? else {
            continue;
        };
        if found.status != InstallStatus::Active {
            continue;
        }
        installs::enqueue(&mut tx, &found, kind, "admin retry").await?;
        audit::record(
            &mut tx,
            tenant,
            Some(admin),
            "admin.bulk_retry",
            json!({ "run": run, "install": install, "filter": query }),
        )
        .await?;
        queued += 1;
    }
    tx.commit().await?;
    Ok(queued)
}
