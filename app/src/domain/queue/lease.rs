//! What happens to a claimed job: heartbeats, completion, retry, failure, and the reaper for
//! leases nobody renewed. Every worker-side call names the lease token and gets
//! [`QueueError::LeaseLost`] when the job is no longer its own.

use super::{adjust_slots, DeadJob, Heartbeat, JobKind, JobRef, QueueError};
use crate::domain::db::{self, Scope};
use sqlx::{PgConnection, PgPool};
use std::collections::HashSet;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// The result of [`retry`].
#[derive(Debug, Clone, PartialEq)]
pub enum Retried {
    /// Back in the queue, due at the given time.
    Requeued,
    /// A queued twin (same install and kind) already waits and will do the work; this one was
    /// dropped.
    Merged,
    /// Cancellation had been asked; the job is gone.
    Cancelled,
    /// That was the last attempt allowed.
    Dead(DeadJob),
}

/// What one [`reap`] pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reaped {
    /// Expired leases put back in the queue.
    pub requeued: usize,
    /// Expired leases dropped: a queued twin will do the work, or cancellation had been asked.
    pub dropped: usize,
    /// Expired leases that used their last attempt, removed; record them as dead runs.
    pub dead: Vec<DeadJob>,
}

impl Reaped {
    /// Jobs this pass took away from their (presumed dead) workers.
    pub fn total(&self) -> usize {
        self.requeued + self.dropped + self.dead.len()
    }
}

/// A running job's row, as removed from the table.
struct Taken {
    job: JobRef,
    install: Uuid,
    kind: String,
    trigger: String,
    priority: i16,
    attempt: i32,
    max_attempts: i32,
    cancel_requested: bool,
    payload: serde_json::Value,
    created_at: OffsetDateTime,
}

type TakenRow = (
    Uuid,
    i64,
    Uuid,
    String,
    String,
    i16,
    i32,
    i32,
    bool,
    serde_json::Value,
    OffsetDateTime,
);

const TAKEN_COLUMNS: &str = "tenant_id, id, install_id, kind, trigger, priority, attempt, \
     max_attempts, cancel_requested_at is not null, payload, created_at";

impl Taken {
    fn from_row(r: TakenRow) -> Self {
        Taken {
            job: JobRef {
                tenant: r.0,
                id: r.1,
            },
            install: r.2,
            kind: r.3,
            trigger: r.4,
            priority: r.5,
            attempt: r.6,
            max_attempts: r.7,
            cancel_requested: r.8,
            payload: r.9,
            created_at: r.10,
        }
    }

    fn dead(self) -> Result<DeadJob, QueueError> {
        Ok(DeadJob {
            job: self.job,
            install: self.install,
            kind: JobKind::parse(&self.kind)?,
            attempts: self.attempt + 1,
            trigger: self.trigger,
            payload: self.payload,
            created_at: self.created_at,
        })
    }
}

/// Renews the lease for `lease` from now and reports whether cancellation was asked.
pub async fn heartbeat(
    pool: &PgPool,
    job: JobRef,
    lease_token: Uuid,
    lease: Duration,
) -> Result<Heartbeat, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let cancel: Option<Option<OffsetDateTime>> = sqlx::query_scalar(
        "update sync_jobs set lease_until = now() + $4 * interval '1 millisecond' \
         where tenant_id = $1 and id = $2 and lease_token = $3 and state = 'running' \
         returning cancel_requested_at",
    )
    .bind(job.tenant)
    .bind(job.id)
    .bind(lease_token)
    .bind(lease.as_millis() as f64)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    match cancel {
        Some(at) => Ok(Heartbeat {
            cancel_requested: at.is_some(),
        }),
        None => Err(QueueError::LeaseLost),
    }
}

/// Removes the finished job from the queue and frees its tenant's slot.
pub async fn complete(pool: &PgPool, job: JobRef, lease_token: Uuid) -> Result<(), QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    // One statement (the hot path: one per job). The job row is locked before the slot row, as
    // everywhere.
    let done = sqlx::query(
        "with gone as ( \
             delete from sync_jobs \
             where tenant_id = $1 and id = $2 and lease_token = $3 and state = 'running' \
             returning tenant_id) \
         update tenant_slots s set running = s.running - 1 \
         from gone where s.tenant_id = gone.tenant_id",
    )
    .bind(job.tenant)
    .bind(job.id)
    .bind(lease_token)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done != 1 {
        return Err(QueueError::LeaseLost);
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes the listed running jobs whose lease token still matches, then moves each such
/// tenant's `running` down by its count. The slot rows are locked in tenant order (`locked`,
/// whose rows the update's join must pass before it touches them), as the reaper does, so two
/// batches over the same tenants cannot deadlock.
const COMPLETE_MANY: &str = "\
with gone as (
    delete from sync_jobs
    where (tenant_id, id, lease_token) in (
              select * from unnest($1::uuid[], $2::bigint[], $3::uuid[]))
      and state = 'running'
    returning tenant_id, id, lease_token
),
counts as (
    select tenant_id, count(*)::int as n from gone group by tenant_id
),
locked as (
    select s.tenant_id from tenant_slots s
    where s.tenant_id in (select tenant_id from counts)
    order by s.tenant_id
    for update
),
bumped as (
    update tenant_slots s set running = s.running - c.n
    from counts c, locked l
    where s.tenant_id = c.tenant_id and l.tenant_id = c.tenant_id
)
select tenant_id, id, lease_token from gone";

/// Completes a worker's finished jobs together: one transaction, one statement, one commit for
/// the whole batch instead of one per job (see [`complete`]). The outer error is a database
/// error (nothing was completed); otherwise the answer holds one entry per input, in order:
/// `Ok(())` when that job was removed and its slot freed, `Err(QueueError::LeaseLost)` when its
/// token no longer held it (that row is left alone). A job listed twice counts once: the
/// repeat gets `LeaseLost`, as a second [`complete`] would.
pub async fn complete_many(
    pool: &PgPool,
    jobs: &[(JobRef, Uuid)],
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<Uuid> = jobs.iter().map(|(j, _)| j.tenant).collect();
    let ids: Vec<i64> = jobs.iter().map(|(j, _)| j.id).collect();
    let tokens: Vec<Uuid> = jobs.iter().map(|(_, t)| *t).collect();
    let mut tx = db::begin(pool, Scope::System).await?;
    let rows: Vec<(Uuid, i64, Uuid)> = sqlx::query_as(COMPLETE_MANY)
        .bind(&tenants)
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut gone: HashSet<(Uuid, i64, Uuid)> = rows.into_iter().collect();
    Ok(jobs
        .iter()
        .map(|(job, token)| {
            if gone.remove(&(job.tenant, job.id, *token)) {
                Ok(())
            } else {
                Err(QueueError::LeaseLost)
            }
        })
        .collect())
}

/// Gives up on the job for good (a permanent error): removes it and returns what the dead run's
/// record needs.
pub async fn fail(pool: &PgPool, job: JobRef, lease_token: Uuid) -> Result<DeadJob, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let taken = take(&mut tx, job, lease_token).await?;
    adjust_slots(&mut tx, job.tenant, -1, 0).await?;
    tx.commit().await?;
    taken.dead()
}

/// Puts the job back in the queue, due at `run_at`, one attempt further on — or, when that was
/// its last attempt, removes it as dead (or as cancelled, when cancellation was asked).
pub async fn retry(
    pool: &PgPool,
    job: JobRef,
    lease_token: Uuid,
    run_at: OffsetDateTime,
) -> Result<Retried, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let taken = take(&mut tx, job, lease_token).await?;
    let outcome = if taken.attempt + 1 >= taken.max_attempts {
        adjust_slots(&mut tx, job.tenant, -1, 0).await?;
        Retried::Dead(taken.dead()?)
    } else if taken.cancel_requested {
        adjust_slots(&mut tx, job.tenant, -1, 0).await?;
        Retried::Cancelled
    } else if requeue(&mut tx, &taken, Some(run_at)).await? {
        adjust_slots(&mut tx, job.tenant, -1, 1).await?;
        Retried::Requeued
    } else {
        adjust_slots(&mut tx, job.tenant, -1, 0).await?;
        Retried::Merged
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Takes back up to `limit` jobs whose lease expired: requeued one attempt further on, dropped
/// when a queued twin exists or cancellation was asked, dead after their last attempt.
pub async fn reap(pool: &PgPool, limit: usize) -> Result<Reaped, QueueError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut tx = db::begin(pool, Scope::System).await?;
    // Skip locked: a worker completing one of these right now keeps it (its token still
    // matches), and a second reaper takes other rows.
    let rows: Vec<TakenRow> = sqlx::query_as(&format!(
        "delete from sync_jobs where (tenant_id, id) in ( \
             select tenant_id, id from sync_jobs \
             where state = 'running' and lease_until < now() \
             order by lease_until limit $1 for update skip locked) \
         returning {TAKEN_COLUMNS}"
    ))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut taken: Vec<Taken> = rows.into_iter().map(Taken::from_row).collect();
    taken.sort_by_key(|t| (t.job.tenant, t.job.id));
    let mut reaped = Reaped::default();
    // The slot rows first, in tenant order, so two reapers cannot deadlock on them.
    let tenants: Vec<Uuid> = {
        let mut t: Vec<Uuid> = taken.iter().map(|t| t.job.tenant).collect();
        t.dedup();
        t
    };
    sqlx::query(
        "select 1 from tenant_slots where tenant_id = any($1) order by tenant_id for update",
    )
    .bind(&tenants)
    .execute(&mut *tx)
    .await?;
    for t in taken {
        let tenant = t.job.tenant;
        if t.attempt + 1 >= t.max_attempts {
            adjust_slots(&mut tx, tenant, -1, 0).await?;
            reaped.dead.push(t.dead()?);
        } else if !t.cancel_requested && requeue(&mut tx, &t, None).await? {
            adjust_slots(&mut tx, tenant, -1, 1).await?;
            reaped.requeued += 1;
        } else {
            adjust_slots(&mut tx, tenant, -1, 0).await?;
            reaped.dropped += 1;
        }
    }
    tx.commit().await?;
    Ok(reaped)
}

/// Deletes the running job if `lease_token` still holds it.
async fn take(
    conn: &mut PgConnection,
    job: JobRef,
    lease_token: Uuid,
) -> Result<Taken, QueueError> {
    let row: Option<TakenRow> = sqlx::query_as(&format!(
        "delete from sync_jobs \
         where tenant_id = $1 and id = $2 and lease_token = $3 and state = 'running' \
         returning {TAKEN_COLUMNS}"
    ))
    .bind(job.tenant)
    .bind(job.id)
    .bind(lease_token)
    .fetch_optional(conn)
    .await?;
    row.map(Taken::from_row).ok_or(QueueError::LeaseLost)
}

/// Puts a taken job back as queued under its own id, one attempt further on, unless a queued
/// twin exists. The row was deleted and is inserted again rather than updated: an update would
/// fail on the dedupe index when a twin was enqueued concurrently, whereas `on conflict do
/// nothing` waits for that twin's transaction and then simply yields. Returns whether it was
/// requeued.
async fn requeue(
    conn: &mut PgConnection,
    t: &Taken,
    run_at: Option<OffsetDateTime>,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into sync_jobs (tenant_id, id, install_id, kind, state, trigger, run_at, \
             priority, attempt, max_attempts, payload, created_at) \
         overriding system value \
         values ($1, $2, $3, $4, 'queued', $5, coalesce($6, now()), $7, $8, $9, $10, $11) \
         on conflict (install_id, kind, state) do nothing",
    )
    .bind(t.job.tenant)
    .bind(t.job.id)
    .bind(t.install)
    .bind(&t.kind)
    .bind(&t.trigger)
    .bind(run_at)
    .bind(t.priority)
    .bind(t.attempt + 1)
    .bind(t.max_attempts)
    .bind(&t.payload)
    .bind(t.created_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
