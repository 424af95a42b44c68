//! The fair claim: a batch of due jobs from the tenants that waited longest, each as far as its
//! free slots go, in turns.
//!
//! The claim runs in one statement (the function `queue_cycle`, last defined by the migration
//! `queue_claim_quantum`, after the completions of the same cycle), so that no transaction lives longer than its round trip;
//! `$1` below is the batch size (`p_max` there):
//!
//! - the line: tenants with a free slot (`running < max_running`) and due queued work
//!   (`next_run_at`, the `run_at` of the tenant's oldest queued job, is past), the longest
//!   unserved first, locked one at a time `skip locked` as a cursor reaches them (migration
//!   `queue_claim_quantum`) until their room — free slots, at most their queued jobs — covers
//!   `$1`. A concurrent claimer takes the next tenants instead of waiting, and no two claimers
//!   serve one tenant at the same moment, so `max_running` holds. (Locking only as many tenants
//!   as an unlocked read said were needed made every claimer pick the same first few and skip
//!   them: 0.4 of pgbench instead of 1.4. Locking `$1` tenants and taking one job from each cost
//!   every job two tenant-row updates, one at its claim and one at its completion.)
//! - `picks`: from each such tenant its oldest due jobs (the `(tenant_id, run_at, id)` index, in
//!   order), at most its free slots and at most `$1`, locked `skip locked`. Jobs whose install
//!   already runs a job (of either kind) are skipped: one install's syncs never overlap, since
//!   they share its sync state and destination records.
//! - `chosen`: the picks taken in turns — every tenant's first job, then every tenant's second —
//!   up to `$1`, and at most one per install (its full and incremental jobs may both be due).
//! - the jobs become running with a fresh random lease token; the served tenants' counters move
//!   and their `last_served` becomes now, which sends them to the back of the line; every locked
//!   tenant's `next_run_at` is read again from its queue (one index entry), so a tenant whose
//!   remaining work is not due yet leaves the line until it is.
//!
//! Measured (EXPLAIN ANALYZE over tenant A with 10,000 due jobs and B with 10; and
//! `server/benches/queue.rs`, 16 workers over 50 tenants, 2 cores — see docs/benchmarks.md):
//! - the due-work test on tenants as `exists (...)` was turned by the planner into a semi-join that
//!   read every due job of every tenant (14 ms per claim at 10,000 jobs); a scalar "oldest queued
//!   job of this tenant is due" subquery read one index entry per tenant, but for every tenant,
//!   at every claim (0.65 of 1.75 ms with 50 tenants); `next_run_at`, kept on the slot row, costs
//!   one index entry per locked tenant instead;
//! - with `app_is_system()` alone as the update policy's `using` (applied by `for update`), the
//!   planner sorted the tenant's whole backlog instead of reading the index in order: 110 ms per
//!   claim against 1.6 ms (see the migration's policy comment);
//! - batches of 8 against batches of 1 through claim + complete: 1.5 to 2.8 times the jobs/s
//!   (1,130-1,366 against 480-736 jobs/s over two runs).

use super::{ClaimedJob, JobKind, JobRef, QueueError};
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Claims up to `max` due jobs for `worker`, fairly across tenants, each leased for `lease`. The
/// claim commits before this returns: the caller works with no transaction open.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    max: usize,
    lease: Duration,
) -> Result<Vec<ClaimedJob>, QueueError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    Ok(cycle(pool, worker, &[], max, lease).await?.1)
}

/// Completes a worker's finished jobs and claims its next ones: one statement (the function
/// `queue_cycle` of the sync-engine migration, which runs the completion of
/// [`complete_many`](super::complete_many) and then [`CLAIM`]) outside any transaction, so one
/// round trip and one commit for both, where a worker of short jobs would otherwise pay two
/// transactions of several round trips per batch. The claim sees the slots the completion freed.
/// Returns the completions' results (as `complete_many` does) and the claimed jobs.
pub async fn cycle(
    pool: &PgPool,
    worker: &str,
    finished: &[(JobRef, Uuid)],
    max: usize,
    lease: Duration,
) -> Result<(Vec<Result<(), QueueError>>, Vec<ClaimedJob>), QueueError> {
    let tenants: Vec<Uuid> = finished.iter().map(|(j, _)| j.tenant).collect();
    let ids: Vec<i64> = finished.iter().map(|(j, _)| j.id).collect();
    let tokens: Vec<Uuid> = finished.iter().map(|(_, t)| *t).collect();
    let mut tries = 0;
    let rows: Vec<CycleRow> = loop {
        let result = sqlx::query_as("select * from queue_cycle($1, $2, $3, $4, $5, $6)")
            .bind(worker)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .bind(lease.as_millis() as f64)
            .bind(&tenants)
            .bind(&ids)
            .bind(&tokens)
            .fetch_all(pool)
            .await;
        match result {
            // Locking a tenant row that a concurrent completion has just updated makes Postgres
            // wait for that completion even under `skip locked` (it follows the row's update
            // chain in read committed), and a rare cycle of such waits is a deadlock, which
            // Postgres breaks by failing one side. Nothing was done: do it again.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") && tries < 3 => {
                tries += 1;
                tracing::debug!(
                    tries,
                    "queue cycle chosen as a deadlock victim; trying again"
                );
            }
            other => break other?,
        }
    };
    let mut gone = std::collections::HashSet::new();
    let mut claimed = Vec::new();
    for row in rows {
        if row.done {
            gone.insert((row.tenant_id, row.id, row.lease_token));
        } else {
            claimed.push(ClaimedJob {
                job: JobRef {
                    tenant: row.tenant_id,
                    id: row.id,
                },
                install: row.install_id.unwrap_or_default(),
                kind: row.kind.unwrap_or(JobKind::Incremental),
                attempt: row.attempt.unwrap_or(0),
                idle_attempts: row.idle_attempts.unwrap_or(0),
                max_attempts: row.max_attempts.unwrap_or(0),
                lease_token: row.lease_token,
                lease_until: row.lease_until.unwrap_or(OffsetDateTime::UNIX_EPOCH),
                trigger: row.trigger.unwrap_or_default(),
                payload: row.payload.unwrap_or_default(),
                created_at: row.created_at.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            });
        }
    }
    let completed = finished
        .iter()
        .map(|(job, token)| {
            if gone.remove(&(job.tenant, job.id, *token)) {
                Ok(())
            } else {
                Err(QueueError::LeaseLost)
            }
        })
        .collect();
    Ok((completed, claimed))
}

/// A row of `queue_cycle`: a completion (`done`) or a claimed job.
#[derive(sqlx::FromRow)]
struct CycleRow {
    done: bool,
    tenant_id: Uuid,
    id: i64,
    install_id: Option<Uuid>,
    kind: Option<JobKind>,
    attempt: Option<i32>,
    idle_attempts: Option<i32>,
    max_attempts: Option<i32>,
    lease_token: Uuid,
    lease_until: Option<OffsetDateTime>,
    trigger: Option<String>,
    payload: Option<serde_json::Value>,
    created_at: Option<OffsetDateTime>,
}
