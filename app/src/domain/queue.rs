//! The sync job queue: our own, on Postgres, because none of the crates we checked gives
//! per-tenant fairness (design §4).
//!
//! `sync_jobs` holds only live jobs (queued or running). A worker [`claim`]s a batch fairly across
//! tenants in one short transaction, then works without any transaction open, holding a lease
//! (`lease_token`, `lease_until`) that it renews with [`heartbeat`]. Every later change
//! ([`complete`], [`complete_many`], [`retry`], [`fail`]) names the token and fails with [`QueueError::LeaseLost`]
//! when the lease went to someone else — typically after [`reap`] requeued an expired lease.
//! `tenant_slots` counts each tenant's running and queued jobs; every function here keeps those
//! counts equal to the rows.
//!
//! Wake-ups: [`enqueue`] notifies channel [`CHANNEL`] (payload: the tenant id) in its transaction;
//! workers wait on [`listen`] and also poll every second, since a notification is lost while a
//! listener reconnects.
//!
//! Lock order, to stay free of deadlocks: a job row, then its tenant's slot row ([`complete_many`]:
//! its job rows, then their slot rows in tenant order). The claim takes
//! slot rows first, but only with `skip locked`, so it never waits; the reaper locks the slot rows
//! it needs in tenant order.

mod claim;
mod lease;

pub use claim::claim;
pub use lease::{complete, complete_many, fail, heartbeat, reap, retry, Reaped, Retried};

use crate::domain::db::{self, Scope};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The channel [`enqueue`] notifies.
pub const CHANNEL: &str = "patchbay_jobs";

/// What a sync job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Read everything again.
    Full,
    /// Read what changed since the last cursor.
    Incremental,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Incremental => "incremental",
        }
    }

    fn parse(text: &str) -> Result<Self, QueueError> {
        match text {
            "full" => Ok(JobKind::Full),
            "incremental" => Ok(JobKind::Incremental),
            other => Err(QueueError::Corrupt(format!("unknown job kind {other:?}"))),
        }
    }
}

/// A job's identity: its tenant and id (the table's primary key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobRef {
    pub tenant: Uuid,
    pub id: i64,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant: Uuid,
    pub install: Uuid,
    pub kind: JobKind,
    /// What asked for it: "manual", "schedule", "webhook".
    pub trigger: String,
    /// Not before this time; `None` is now.
    pub run_at: Option<OffsetDateTime>,
    pub payload: serde_json::Value,
}

/// The result of [`enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued(JobRef),
    /// The same install and kind already waits; that job will do the work.
    AlreadyQueued(JobRef),
}

/// A job a worker holds, as [`claim`] hands it out.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub job: JobRef,
    pub install: Uuid,
    pub kind: JobKind,
    /// Attempts that already ended without success (0 on the first run).
    pub attempt: i32,
    pub max_attempts: i32,
    /// Names this lease in every later call; a stale token gets [`QueueError::LeaseLost`].
    pub lease_token: Uuid,
    pub lease_until: OffsetDateTime,
    pub trigger: String,
    pub payload: serde_json::Value,
}

/// What [`heartbeat`] learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Someone asked to cancel the job: stop at the next safe point and complete it.
    pub cancel_requested: bool,
}

/// A job that ran out of attempts (or was failed for good) and was removed from the queue: what
/// the caller needs to record the dead run.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadJob {
    pub job: JobRef,
    pub install: Uuid,
    pub kind: JobKind,
    /// Attempts made, this last one included.
    pub attempts: i32,
    pub trigger: String,
    pub payload: serde_json::Value,
    pub created_at: OffsetDateTime,
}

/// The result of [`request_cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The job was waiting and is gone.
    Removed,
    /// The job runs; its worker sees the request at its next heartbeat.
    Requested,
    /// No such live job.
    NotFound,
}

/// A live job as its tenant sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub job: JobRef,
    pub install: Uuid,
    pub kind: JobKind,
    pub running: bool,
    pub run_at: OffsetDateTime,
    pub attempt: i32,
    pub cancel_requested: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lease expired and went elsewhere, or the job is gone: the caller no longer owns it and
    /// must stop without writing anything.
    #[error("the job's lease was lost")]
    LeaseLost,
    #[error("unexpected queue data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Enqueues a job unless the same install and kind already waits. Keeps `tenant_slots.queued` in
/// step and notifies [`CHANNEL`], all in one transaction.
pub async fn enqueue(pool: &PgPool, job: NewJob) -> Result<Enqueued, QueueError> {
    // The queued twin can start running between the insert that conflicted with it and the
    // select that looks for it; the insert then succeeds on the next round.
    for _ in 0..3 {
        let mut tx = db::begin(pool, Scope::System).await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "insert into sync_jobs (tenant_id, install_id, kind, state, trigger, run_at, payload) \
             values ($1, $2, $3, 'queued', $4, coalesce($5, now()), $6) \
             on conflict (install_id, kind, state) do nothing returning id",
        )
        .bind(job.tenant)
        .bind(job.install)
        .bind(job.kind.as_str())
        .bind(&job.trigger)
        .bind(job.run_at)
        .bind(&job.payload)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = inserted {
            sqlx::query(
                "insert into tenant_slots (tenant_id, queued) values ($1, 1) \
                 on conflict (tenant_id) do update set queued = tenant_slots.queued + 1",
            )
            .bind(job.tenant)
            .execute(&mut *tx)
            .await?;
            sqlx::query("select pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(job.tenant.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Enqueued::Queued(JobRef {
                tenant: job.tenant,
                id,
            }));
        }
        let existing: Option<(Uuid, i64)> = sqlx::query_as(
            "select tenant_id, id from sync_jobs \
             where install_id = $1 and kind = $2 and state = 'queued'",
        )
        .bind(job.install)
        .bind(job.kind.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some((tenant, id)) = existing {
            return Ok(Enqueued::AlreadyQueued(JobRef { tenant, id }));
        }
    }
    Err(QueueError::Corrupt(
        "enqueue kept conflicting with a job that vanished".into(),
    ))
}

/// Asks for a job to stop: a queued job is removed, a running one is flagged for its worker's next
/// heartbeat.
pub async fn request_cancel(pool: &PgPool, job: JobRef) -> Result<Cancel, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let removed =
        sqlx::query("delete from sync_jobs where tenant_id = $1 and id = $2 and state = 'queued'")
            .bind(job.tenant)
            .bind(job.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let outcome = if removed == 1 {
        adjust_slots(&mut tx, job.tenant, 0, -1).await?;
        Cancel::Removed
    } else {
        let flagged = sqlx::query(
            "update sync_jobs set cancel_requested_at = coalesce(cancel_requested_at, now()) \
             where tenant_id = $1 and id = $2 and state = 'running'",
        )
        .bind(job.tenant)
        .bind(job.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if flagged == 1 {
            Cancel::Requested
        } else {
            Cancel::NotFound
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

type ViewRow = (Uuid, i64, Uuid, String, String, OffsetDateTime, i32, bool);

/// A tenant's live jobs, read under its own scope (row-level security keeps others' out).
pub async fn list_for_tenant(pool: &PgPool, tenant: Uuid) -> Result<Vec<JobView>, QueueError> {
    let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
    let rows: Vec<ViewRow> = sqlx::query_as(
        "select tenant_id, id, install_id, kind, state, run_at, attempt, \
                cancel_requested_at is not null \
         from sync_jobs order by run_at, id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(
            |(tenant, id, install, kind, state, run_at, attempt, cancel)| {
                Ok(JobView {
                    job: JobRef { tenant, id },
                    install,
                    kind: JobKind::parse(&kind)?,
                    running: state == "running",
                    run_at,
                    attempt,
                    cancel_requested: cancel,
                })
            },
        )
        .collect()
}

/// Notifications that a tenant has new work. Each is a hint, not a job: claim after one, and poll
/// every second anyway.
pub struct Wakeups {
    listener: PgListener,
}

impl Wakeups {
    /// Waits for the next notification and returns the tenant it names. Reconnects by itself
    /// after a lost connection (notifications sent meanwhile are lost, hence the poll).
    pub async fn recv(&mut self) -> sqlx::Result<Option<Uuid>> {
        let notification = self.listener.recv().await?;
        Ok(notification.payload().parse().ok())
    }
}

/// Listens on [`CHANNEL`] over a connection of its own.
pub async fn listen(pool: &PgPool) -> sqlx::Result<Wakeups> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(Wakeups { listener })
}

/// Moves a tenant's counters by the given amounts.
async fn adjust_slots(
    conn: &mut PgConnection,
    tenant: Uuid,
    running: i32,
    queued: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "update tenant_slots set running = running + $2, queued = queued + $3 \
         where tenant_id = $1",
    )
    .bind(tenant)
    .bind(running)
    .bind(queued)
    .execute(conn)
    .await?;
    Ok(())
}
