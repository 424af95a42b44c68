//! The fair claim: a batch of due jobs spread round-robin over the tenants that waited longest.

use super::{ClaimedJob, JobKind, JobRef, QueueError};
use crate::domain::db::{self, Scope};
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// One statement, so the transaction around it lives for one round trip:
///
/// - `tenants`: up to `$1` tenants with a free slot (`running < max_running`) and due queued work,
///   the longest unserved first, locked `skip locked` — a concurrent claimer takes the next
///   tenants instead of waiting, and no two claimers serve one tenant at the same moment, so
///   `max_running` holds.
/// - `picks`: from each such tenant its oldest due jobs (the `(tenant_id, run_at, id)` index, in
///   order), at most its free slots and at most `$1 - (tenants - 1)` (every other chosen tenant
///   has due work, so more could not make the batch), locked `skip locked`. Jobs whose install and kind already run are skipped: they wait for that run (the
///   dedupe index allows one running).
/// - `chosen`: the picks taken in turns — every tenant's first job, then every tenant's second —
///   up to `$1`, and at most one per install (its full and incremental jobs may both be due).
/// - the jobs become running with a fresh random lease token; the served tenants' counters move
///   and their `last_served` becomes now, which sends them to the back of the line.
///
/// Measured (EXPLAIN ANALYZE over tenant A with 10,000 due jobs and B with 10; and
/// `server/benches/queue.rs`, 16 workers over 50 tenants, 2 cores — see docs/benchmarks.md):
/// - the due-work test on tenants as `exists (...)` was turned by the planner into a semi-join that
///   read every due job of every tenant (14 ms per claim at 10,000 jobs); the scalar "oldest
///   queued job of this tenant is due" subquery reads one index entry per tenant (0.06 ms);
/// - with `app_is_system()` alone as the update policy's `using` (applied by `for update`), the
///   planner sorted the tenant's whole backlog instead of reading the index in order: 110 ms per
///   claim against 1.6 ms (see the migration's policy comment);
/// - taking at most `$1 - (tenants - 1)` per tenant rather than `ceil($1 / tenants)` keeps batches
///   full when a tenant has fewer due jobs than its share (2 tenants, one with 2 left: 8 jobs,
///   not 6);
/// - batches of 8 against batches of 1 through claim + complete: 1.5 to 2.8 times the jobs/s
///   (1,130-1,366 against 480-736 jobs/s over two runs).
const CLAIM: &str = "\
with tenants as (
    select s.tenant_id, s.max_running - s.running as free, s.last_served
    from tenant_slots s
    where s.running < s.max_running and s.queued > 0
      and (select d.run_at from sync_jobs d
           where d.tenant_id = s.tenant_id and d.state = 'queued'
           order by d.run_at, d.id limit 1) <= now()
    order by s.last_served, s.tenant_id
    limit $1
    for update of s skip locked
),
share as (
    select $1 - count(*) + 1 as n from tenants
),
picks as (
    select t.tenant_id, j.id, j.install_id, t.last_served,
           row_number() over (partition by t.tenant_id order by j.run_at, j.id) as turn
    from tenants t
    cross join share
    cross join lateral (
        select q.id, q.run_at, q.install_id
        from sync_jobs q
        where q.tenant_id = t.tenant_id and q.state = 'queued' and q.run_at <= now()
          and not exists (select 1 from sync_jobs r
                          where r.install_id = q.install_id and r.state = 'running')
        order by q.run_at, q.id
        limit least(t.free, share.n)
        for update of q skip locked
    ) j
),
chosen as (
    select tenant_id, id from (
        select p.*, row_number() over (partition by install_id order by turn) as nth from picks p
    ) p
    where nth = 1
    order by turn, last_served, tenant_id limit $1
),
claimed as (
    update sync_jobs j
    set state = 'running', lease_token = gen_random_uuid(),
        lease_until = now() + $2 * interval '1 millisecond', worker = $3
    from chosen c
    where j.tenant_id = c.tenant_id and j.id = c.id
    returning j.tenant_id, j.id, j.install_id, j.kind, j.attempt, j.max_attempts, j.lease_token,
              j.lease_until, j.trigger, j.payload, j.created_at, j.idle_attempts
),
served as (
    select tenant_id, count(*)::int as n from claimed group by tenant_id
),
bumped as (
    update tenant_slots s
    set running = s.running + served.n, queued = s.queued - served.n, last_served = now()
    from served
    where s.tenant_id = served.tenant_id
)
select * from claimed";

type Row = (
    Uuid,
    i64,
    Uuid,
    JobKind,
    i32,
    i32,
    Uuid,
    OffsetDateTime,
    String,
    serde_json::Value,
    OffsetDateTime,
    i32,
);

/// Claims up to `max` due jobs for `worker`, fairly across tenants, each leased for `lease`. The
/// transaction commits before this returns: the caller works with no transaction open.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    max: usize,
    lease: Duration,
) -> Result<Vec<ClaimedJob>, QueueError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let mut tx = db::begin(pool, Scope::System).await?;
    let rows: Vec<Row> = sqlx::query_as(CLAIM)
        .bind(max)
        .bind(lease.as_millis() as f64)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(
            |(
                tenant,
                id,
                install,
                kind,
                attempt,
                max_attempts,
                lease_token,
                lease_until,
                trigger,
                payload,
                created_at,
                idle_attempts,
            )| {
                Ok(ClaimedJob {
                    job: JobRef { tenant, id },
                    install,
                    kind,
                    attempt,
                    idle_attempts,
                    max_attempts,
                    lease_token,
                    lease_until,
                    trigger,
                    payload,
                    created_at,
                })
            },
        )
        .collect()
}
