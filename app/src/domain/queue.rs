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

pub use claim::{claim, cycle};
pub use lease::{
    complete, complete_many, fail, heartbeat, reap, release, reschedule, retry, Reaped, Retried,
};

use crate::domain::db::{self, Scope};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The channel [`enqueue`] notifies.
pub const CHANNEL: &str = "patchbay_jobs";

/// What a sync job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
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
    /// Of those, the ones since the job last made progress: what `max_attempts` bounds, and
    /// what the backoff grows with.
    pub idle_attempts: i32,
    pub max_attempts: i32,
    /// Names this lease in every later call; a stale token gets [`QueueError::LeaseLost`].
    pub lease_token: Uuid,
    pub lease_until: OffsetDateTime,
    pub trigger: String,
    pub payload: serde_json::Value,
    /// When the job was first enqueued.
    pub created_at: OffsetDateTime,
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
    /// A concurrent enqueue of the same install and kind won the race; its job does the work.
    #[error("the same job was being enqueued at the same moment")]
    Busy,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Enqueues a job unless the same install and kind already waits, in a transaction of its own.
pub async fn enqueue(pool: &PgPool, job: NewJob) -> Result<Enqueued, QueueError> {
    // A twin committed while the statement ran is visible to the next one.
    for _ in 0..3 {
        let mut tx = db::begin(pool, Scope::System).await?;
        match enqueue_in(&mut tx, &job).await {
            Err(QueueError::Busy) => continue,
            done => {
                tx.commit().await?;
                return done;
            }
        }
    }
    Err(QueueError::Busy)
}

/// One statement: the insert (or nothing, when the same install and kind already waits), the
/// tenant's `queued` counter, and the notification, which Postgres delivers when the
/// transaction commits.
const ENQUEUE: &str = "\
with ins as (
    insert into sync_jobs (tenant_id, install_id, kind, state, trigger, run_at, payload)
    values ($1, $2, $3, 'queued', $4, coalesce($5, now()), $6)
    on conflict (install_id, kind, state) do nothing
    returning tenant_id, id
),
slot as (
    insert into tenant_slots (tenant_id, queued, next_run_at)
    select tenant_id, 1, coalesce($5, now()) from ins
    on conflict (tenant_id) do update set queued = tenant_slots.queued + 1,
        next_run_at = least(tenant_slots.next_run_at, excluded.next_run_at)
),
notified as (
    select pg_notify($7, tenant_id::text) from ins
)
select id, true from ins where (select count(*) from notified) >= 0
union all
select id, false from sync_jobs
where install_id = $2 and kind = $3 and state = 'queued' and not exists (select 1 from ins)";

/// [`enqueue`] inside the caller's transaction (system scope), so that a job is enqueued together
/// with what asked for it (a schedule moving on, an install activated, a webhook recorded).
pub async fn enqueue_in(conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, QueueError> {
    let row: Option<(i64, bool)> = sqlx::query_as(ENQUEUE)
        .bind(job.tenant)
        .bind(job.install)
        .bind(job.kind)
        .bind(&job.trigger)
        .bind(job.run_at)
        .bind(&job.payload)
        .bind(CHANNEL)
        .fetch_optional(&mut *conn)
        .await?;
    let job_ref = |id| JobRef {
        tenant: job.tenant,
        id,
    };
    match row {
        Some((id, true)) => Ok(Enqueued::Queued(job_ref(id))),
        Some((id, false)) => Ok(Enqueued::AlreadyQueued(job_ref(id))),
        // The queued twin that made the insert do nothing was committed after this statement's
        // snapshot (so it is not visible to it), or started running meanwhile: either way a job
        // for this install and kind is there, or is running, and it will do the work.
        None => Err(QueueError::Busy),
    }
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
        settle_slots(&mut tx, &[(job.tenant, 0, -1)]).await?;
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

type ViewRow = (Uuid, i64, Uuid, JobKind, String, OffsetDateTime, i32, bool);

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
                    kind,
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

/// Stops all work of an install (paused or uninstalled), in the caller's transaction: its
/// queued jobs are removed and a running one is asked to stop at its next heartbeat. Returns the
/// running job, if any.
pub async fn stop_install(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
) -> Result<Option<JobRef>, QueueError> {
    let removed: i64 = sqlx::query_scalar(
        "with gone as (delete from sync_jobs \
             where tenant_id = $1 and install_id = $2 and state = 'queued' returning 1) \
         select count(*) from gone",
    )
    .bind(tenant)
    .bind(install)
    .fetch_one(&mut *conn)
    .await?;
    if removed > 0 {
        settle_slots(conn, &[(tenant, 0, -(removed as i32))]).await?;
    }
    let running: Option<i64> = sqlx::query_scalar(
        "update sync_jobs set cancel_requested_at = coalesce(cancel_requested_at, now()) \
         where tenant_id = $1 and install_id = $2 and state = 'running' returning id",
    )
    .bind(tenant)
    .bind(install)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(running.map(|id| JobRef { tenant, id }))
}

/// Moves tenants' (running, queued) counters by the given amounts, summed per tenant (a tenant
/// that gets queued work back is looked at again by the next claim), locking
/// the slot rows in tenant order (as [`complete_many`] does) so concurrent settlements cannot
/// deadlock.
pub(super) async fn settle_slots(
    conn: &mut PgConnection,
    deltas: &[(Uuid, i32, i32)],
) -> sqlx::Result<()> {
    let mut sums: std::collections::BTreeMap<Uuid, (i32, i32)> = Default::default();
    for (tenant, running, queued) in deltas {
        let entry = sums.entry(*tenant).or_default();
        entry.0 += running;
        entry.1 += queued;
    }
    sums.retain(|_, (r, q)| *r != 0 || *q != 0);
    if sums.is_empty() {
        return Ok(());
    }
    let tenants: Vec<Uuid> = sums.keys().copied().collect();
    let running: Vec<i32> = sums.values().map(|(r, _)| *r).collect();
    let queued: Vec<i32> = sums.values().map(|(_, q)| *q).collect();
    sqlx::query(
        "with d as (select * from unnest($1::uuid[], $2::int[], $3::int[]) as d (tenant_id, r, q)), \
         locked as (select s.tenant_id from tenant_slots s \
                    where s.tenant_id in (select tenant_id from d) order by s.tenant_id for update) \
         update tenant_slots s set running = s.running + d.r, queued = s.queued + d.q, \
             next_run_at = case when d.q > 0 then '-infinity' else s.next_run_at end \
         from d, locked l where s.tenant_id = d.tenant_id and l.tenant_id = d.tenant_id",
    )
    .bind(&tenants)
    .bind(&running)
    .bind(&queued)
    .execute(conn)
    .await?;
    Ok(())
}
