//! What happens to a claimed job: heartbeats, completion, retry, failure, and the reaper for
//! leases nobody renewed. Every worker-side call names the lease token and gets
//! [`QueueError::LeaseLost`] when the job is no longer its own.

use super::{settle_slots, DeadJob, Heartbeat, JobKind, JobRef, QueueError};
use crate::domain::db::{self, Scope};
use sqlx::{PgConnection, PgPool};
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
    /// Every lease taken back, with its token: the attempts that ran under them are over.
    pub leases: Vec<(JobRef, Uuid)>,
}

impl Reaped {
    /// Jobs this pass took away from their (presumed dead) workers.
    pub fn total(&self) -> usize {
        self.leases.len()
    }
}

/// A running job's row, as removed from the table.
struct Taken {
    job: JobRef,
    lease_token: Uuid,
    install: Uuid,
    kind: JobKind,
    trigger: String,
    priority: i16,
    attempt: i32,
    idle_attempts: i32,
    max_attempts: i32,
    cancel_requested: bool,
    payload: serde_json::Value,
    created_at: OffsetDateTime,
}

type TakenRow = (
    Uuid,
    i64,
    Uuid,
    JobKind,
    String,
    i16,
    i32,
    i32,
    bool,
    serde_json::Value,
    OffsetDateTime,
    Uuid,
    i32,
);

const TAKEN_COLUMNS: &str = "tenant_id, id, install_id, kind, trigger, priority, attempt, \
     max_attempts, cancel_requested_at is not null, payload, created_at, lease_token, idle_attempts";

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
            lease_token: r.11,
            idle_attempts: r.12,
        }
    }

    fn dead(self) -> Result<DeadJob, QueueError> {
        Ok(DeadJob {
            job: self.job,
            install: self.install,
            kind: self.kind,
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

/// Completes a worker's finished jobs together: one statement (the completion part of
/// `queue_cycle`, see [`cycle`](super::cycle)) and one commit for the whole batch instead of one
/// per job (see [`complete`]). The statement deletes the listed running jobs whose lease token
/// still matches, then moves each such tenant's `running` down by its count, locking the slot
/// rows in tenant order, as the reaper does, so two batches over the same tenants cannot
/// deadlock. The outer error is a database error (nothing was completed); otherwise the answer
/// holds one entry per input, in order: `Ok(())` when that job was removed and its slot freed,
/// `Err(QueueError::LeaseLost)` when its token no longer held it (that row is left alone). A job
/// listed twice counts once: the repeat gets `LeaseLost`, as a second [`complete`] would.
pub async fn complete_many(
    pool: &PgPool,
    jobs: &[(JobRef, Uuid)],
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(super::cycle(pool, "", jobs, 0, Duration::ZERO).await?.0)
}

/// Gives up on the job for good (a permanent error): removes it and returns what the dead run's
/// record needs.
pub async fn fail(pool: &PgPool, job: JobRef, lease_token: Uuid) -> Result<DeadJob, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let taken = take(&mut tx, job, lease_token).await?;
    settle_slots(&mut tx, &[(job.tenant, -1, 0)]).await?;
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
    settle_one(pool, job, lease_token, Some(run_at), true).await
}

/// Puts the job back in the queue at `run_at` without counting an attempt: the provider asked us
/// to wait (a 429), which says nothing about whether the job can succeed.
pub async fn reschedule(
    pool: &PgPool,
    job: JobRef,
    lease_token: Uuid,
    run_at: OffsetDateTime,
) -> Result<Retried, QueueError> {
    settle_one(pool, job, lease_token, Some(run_at), false).await
}

/// Hands a job back unfinished (the worker is shutting down): queued again at once, the attempt
/// not counted, so another worker picks it up where the sync state left it.
pub async fn release(pool: &PgPool, job: JobRef, lease_token: Uuid) -> Result<Retried, QueueError> {
    settle_one(pool, job, lease_token, None, false).await
}

async fn settle_one(
    pool: &PgPool,
    job: JobRef,
    lease_token: Uuid,
    run_at: Option<OffsetDateTime>,
    count_attempt: bool,
) -> Result<Retried, QueueError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let taken = take(&mut tx, job, lease_token).await?;
    let (outcome, delta) = settle(&mut tx, taken, run_at, count_attempt).await?;
    settle_slots(&mut tx, &[delta]).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Decides a taken job's fate and carries it out on the job rows: dead after its last counted
/// attempt, gone when cancellation was asked, requeued (unless a queued twin will do the work).
/// Returns the outcome and the change to its tenant's (running, queued) counters, which the
/// caller applies last, after every job row it touches (the lock order of the module docs).
async fn settle(
    conn: &mut PgConnection,
    taken: Taken,
    run_at: Option<OffsetDateTime>,
    count_attempt: bool,
) -> Result<(Retried, (Uuid, i32, i32)), QueueError> {
    let tenant = taken.job.tenant;
    if count_attempt && taken.idle_attempts + 1 >= taken.max_attempts {
        return Ok((Retried::Dead(taken.dead()?), (tenant, -1, 0)));
    }
    if taken.cancel_requested {
        return Ok((Retried::Cancelled, (tenant, -1, 0)));
    }
    let counted = i32::from(count_attempt);
    if requeue(conn, &taken, counted, run_at).await? {
        Ok((Retried::Requeued, (tenant, -1, 1)))
    } else {
        Ok((Retried::Merged, (tenant, -1, 0)))
    }
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
    let mut deltas = Vec::with_capacity(taken.len());
    for t in taken {
        reaped.leases.push((t.job, t.lease_token));
        let (outcome, delta) = settle(&mut tx, t, None, true).await?;
        deltas.push(delta);
        match outcome {
            Retried::Requeued => reaped.requeued += 1,
            Retried::Merged | Retried::Cancelled => reaped.dropped += 1,
            Retried::Dead(dead) => reaped.dead.push(dead),
        }
    }
    settle_slots(&mut tx, &deltas).await?;
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

/// Puts a taken job back as queued under its own id, `counted` (0 or 1) attempts further on,
/// unless a queued
/// twin exists. The row was deleted and is inserted again rather than updated: an update would
/// fail on the dedupe index when a twin was enqueued concurrently, whereas `on conflict do
/// nothing` waits for that twin's transaction and then simply yields. Returns whether it was
/// requeued.
async fn requeue(
    conn: &mut PgConnection,
    t: &Taken,
    counted: i32,
    run_at: Option<OffsetDateTime>,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into sync_jobs (tenant_id, id, install_id, kind, state, trigger, run_at, \
             priority, attempt, idle_attempts, max_attempts, payload, created_at) \
         overriding system value \
         values ($1, $2, $3, $4, 'queued', $5, coalesce($6, now()), $7, $8, $9, $10, $11, $12) \
         on conflict (install_id, kind, state) do nothing",
    )
    .bind(t.job.tenant)
    .bind(t.job.id)
    .bind(t.install)
    .bind(t.kind)
    .bind(&t.trigger)
    .bind(run_at)
    .bind(t.priority)
    .bind(t.attempt + counted)
    .bind(t.idle_attempts + counted)
    .bind(t.max_attempts)
    .bind(&t.payload)
    .bind(t.created_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
