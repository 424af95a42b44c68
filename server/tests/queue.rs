//! The sync job queue against real Postgres, under the application role: dedupe, lease tokens,
//! the reaper, cancellation, fairness between tenants, and counters that stay true.

use app::domain::db;
use app::domain::queue::{
    self, Cancel, ClaimedJob, Enqueued, JobKind, JobRef, NewJob, QueueError, Retried,
};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);
/// A lease that is over by the time the reaper looks.
const EXPIRED: Duration = Duration::from_millis(1);

async fn app_pool(admin_pool: &PgPool, size: u32) -> PgPool {
    db::connect_app_pool(admin_pool.connect_options().as_ref().clone(), size)
        .await
        .unwrap()
}

async fn tenant(admin_pool: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar(
        "insert into organizations (id, kind, name) values (gen_random_uuid(), 'customer', $1) \
         returning id",
    )
    .bind(name)
    .fetch_one(admin_pool)
    .await
    .unwrap()
}

/// Creates a stub listing (its own vendor, one version) and `count` installs of it for `tenant`,
/// in one statement, and returns what the statement `tail` (which sees the installs as `i`)
/// returns. Jobs need installs (a foreign key); the queue never looks inside them.
const STUB_INSTALLS: &str = "\
with v as (
    insert into organizations (id, kind, name) values (gen_random_uuid(), 'vendor', 'Stub vendor')
    returning id
),
l as (
    insert into listings (id, vendor_org_id, slug, name)
    select gen_random_uuid(), v.id, 'stub-' || substr(md5(random()::text), 1, 16), 'Stub' from v
    returning id, vendor_org_id
),
lv as (
    insert into listing_versions (id, listing_id, vendor_org_id, number, name, recipe)
    select gen_random_uuid(), l.id, l.vendor_org_id, 1, 'Stub', '{}' from l
    returning id, listing_id
),
i as (
    insert into installs (tenant_id, listing_id, listing_version_id, status)
    select $1, lv.listing_id, lv.id, 'active' from lv cross join generate_series(1, $2)
    returning id
)";

/// An install of `tenant` for jobs to belong to.
async fn install(admin_pool: &PgPool, tenant: Uuid) -> Uuid {
    sqlx::query_scalar(&format!("{STUB_INSTALLS} select id from i"))
        .bind(tenant)
        .bind(1)
        .fetch_one(admin_pool)
        .await
        .unwrap()
}

fn job(tenant: Uuid, install: Uuid, kind: JobKind) -> NewJob {
    NewJob {
        tenant,
        install,
        kind,
        trigger: "manual".into(),
        run_at: None,
        payload: serde_json::json!({}),
    }
}

/// `count` queued jobs for `tenant`, due an hour ago (older than anything enqueued later), in one
/// statement, with the tenant's counter moved to match.
async fn seed(admin_pool: &PgPool, tenant: Uuid, count: i32) {
    sqlx::query(&format!(
        "{STUB_INSTALLS} insert into sync_jobs (tenant_id, install_id, kind, state, run_at) \
         select $1, i.id, 'full', 'queued', \
                now() - interval '1 hour' + row_number() over () * interval '1 millisecond' \
         from i"
    ))
    .bind(tenant)
    .bind(count)
    .execute(admin_pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into tenant_slots (tenant_id, queued) values ($1, $2) \
         on conflict (tenant_id) do update set queued = tenant_slots.queued + $2, next_run_at = '-infinity'",
    )
    .bind(tenant)
    .bind(count)
    .execute(admin_pool)
    .await
    .unwrap();
}

async fn set_max_running(admin_pool: &PgPool, tenant: Uuid, max: i32) {
    sqlx::query("update tenant_slots set max_running = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(max)
        .execute(admin_pool)
        .await
        .unwrap();
}

/// Every tenant's counters against the rows: (tenant, running, queued, rows running, rows
/// queued) for each mismatch.
async fn slot_mismatches(admin_pool: &PgPool) -> Vec<(Uuid, i32, i32, i64, i64)> {
    sqlx::query_as(
        "select s.tenant_id, s.running, s.queued, \
                count(j.id) filter (where j.state = 'running'), \
                count(j.id) filter (where j.state = 'queued') \
         from tenant_slots s left join sync_jobs j on j.tenant_id = s.tenant_id \
         group by s.tenant_id, s.running, s.queued \
         having s.running <> count(j.id) filter (where j.state = 'running') \
             or s.queued <> count(j.id) filter (where j.state = 'queued')",
    )
    .fetch_all(admin_pool)
    .await
    .unwrap()
}

async fn job_count(admin_pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from sync_jobs")
        .fetch_one(admin_pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_second_enqueue_while_one_waits_is_the_same_job(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let install = install(&admin_pool, a).await;

    let Enqueued::Queued(first) = queue::enqueue(&pool, job(a, install, JobKind::Full))
        .await
        .unwrap()
    else {
        panic!("the first enqueue queues");
    };
    assert_eq!(
        queue::enqueue(&pool, job(a, install, JobKind::Full))
            .await
            .unwrap(),
        Enqueued::AlreadyQueued(first)
    );
    // Another kind for the same install is other work.
    assert!(matches!(
        queue::enqueue(&pool, job(a, install, JobKind::Incremental))
            .await
            .unwrap(),
        Enqueued::Queued(_)
    ));

    // One job of an install runs at a time, whatever its kind: the older one first.
    let claimed = queue::claim(&pool, "w1", 10, LEASE).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job).collect::<Vec<_>>(),
        vec![first]
    );
    // Once the first runs, one more may wait behind it, but only one.
    let Enqueued::Queued(second) = queue::enqueue(&pool, job(a, install, JobKind::Full))
        .await
        .unwrap()
    else {
        panic!("one queued beside one running is allowed");
    };
    assert_ne!(second, first);
    assert_eq!(
        queue::enqueue(&pool, job(a, install, JobKind::Full))
            .await
            .unwrap(),
        Enqueued::AlreadyQueued(second)
    );
    // The waiting one is not claimed while its twin runs.
    assert!(queue::claim(&pool, "w2", 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    let running = claimed.iter().find(|c| c.job == first).unwrap();
    queue::complete(&pool, first, running.lease_token)
        .await
        .unwrap();
    let next = queue::claim(&pool, "w2", 10, LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].kind,
        JobKind::Incremental,
        "the older of the two waiting"
    );
    queue::complete(&pool, next[0].job, next[0].lease_token)
        .await
        .unwrap();
    let last = queue::claim(&pool, "w2", 10, LEASE).await.unwrap();
    assert_eq!(last.iter().map(|c| c.job).collect::<Vec<_>>(), vec![second]);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn parallel_claimers_never_get_the_same_job(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 8).await;
    let mut tenants = Vec::new();
    for n in 0..5 {
        let t = tenant(&admin_pool, &format!("T{n}")).await;
        seed(&admin_pool, t, 400).await;
        set_max_running(&admin_pool, t, 10_000).await;
        tenants.push(t);
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue::claim(&pool, &format!("w{w}"), 8, LEASE)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    // Empty can mean "the others hold every tenant right now".
                    if queue_empty(&pool).await {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                mine.extend(batch);
            }
            mine
        }));
    }
    let mut all: Vec<ClaimedJob> = Vec::new();
    let mut per_worker = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        per_worker.push(mine.len());
        all.extend(mine);
    }
    let ids: HashSet<i64> = all.iter().map(|c| c.job.id).collect();
    assert_eq!(all.len(), 2000, "every job claimed once: {per_worker:?}");
    assert_eq!(ids.len(), 2000, "no job claimed twice");
    let tokens: HashSet<Uuid> = all.iter().map(|c| c.lease_token).collect();
    assert_eq!(tokens.len(), 2000, "every lease has its own token");
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// Whether any job still waits (system scope, as workers see it).
async fn queue_empty(pool: &PgPool) -> bool {
    let mut tx = db::begin(pool, db::Scope::System).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from sync_jobs where state = 'queued'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n == 0
}

#[sqlx::test(migrations = "../migrations")]
async fn only_the_current_lease_token_may_touch_a_job(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    queue::enqueue(&pool, job(a, install(&admin_pool, a).await, JobKind::Full))
        .await
        .unwrap();
    let old = queue::claim(&pool, "w1", 1, EXPIRED)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(old.attempt, 0);

    let wrong = Uuid::new_v4();
    assert!(matches!(
        queue::complete(&pool, old.job, wrong).await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        queue::heartbeat(&pool, old.job, wrong, LEASE).await,
        Err(QueueError::LeaseLost)
    ));

    tokio::time::sleep(Duration::from_millis(20)).await;
    let reaped = queue::reap(&pool, 100).await.unwrap();
    assert_eq!((reaped.requeued, reaped.total()), (1, 1));
    let new = queue::claim(&pool, "w2", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(new.job, old.job, "the requeued job keeps its id");
    assert_eq!(new.attempt, 1);
    assert_ne!(new.lease_token, old.lease_token);

    // The first holder, back from a long pause, has lost the job.
    assert!(matches!(
        queue::heartbeat(&pool, old.job, old.lease_token, LEASE).await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        queue::complete(&pool, old.job, old.lease_token).await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        queue::retry(
            &pool,
            old.job,
            old.lease_token,
            time::OffsetDateTime::now_utc()
        )
        .await,
        Err(QueueError::LeaseLost)
    ));
    assert!(matches!(
        queue::fail(&pool, old.job, old.lease_token).await,
        Err(QueueError::LeaseLost)
    ));
    // The new holder is unaffected.
    queue::heartbeat(&pool, new.job, new.lease_token, LEASE)
        .await
        .unwrap();
    queue::complete(&pool, new.job, new.lease_token)
        .await
        .unwrap();
    assert!(matches!(
        queue::complete(&pool, new.job, new.lease_token).await,
        Err(QueueError::LeaseLost)
    ));
    assert_eq!(job_count(&admin_pool).await, 0);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// A batch completion removes exactly the jobs whose tokens still hold them, frees their slots,
/// and reports the rest as lost without touching them.
#[sqlx::test(migrations = "../migrations")]
async fn complete_many_completes_only_the_jobs_whose_token_matches(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let b = tenant(&admin_pool, "B").await;
    seed(&admin_pool, a, 5).await;
    seed(&admin_pool, b, 5).await;
    assert!(queue::complete_many(&pool, &[]).await.unwrap().is_empty());
    let claimed = queue::claim(&pool, "w", 6, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 6);
    let stale = &claimed[1];
    let kept = &claimed[5];
    let mut batch: Vec<(JobRef, Uuid)> = claimed[..5]
        .iter()
        .map(|c| (c.job, c.lease_token))
        .collect();
    batch[1].1 = Uuid::new_v4();
    // The same job twice: completed once, the repeat is lost.
    batch.push(batch[0]);
    // A job that does not exist.
    batch.push((
        JobRef {
            tenant: a,
            id: 999_999,
        },
        Uuid::new_v4(),
    ));
    let results = queue::complete_many(&pool, &batch).await.unwrap();
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, vec![true, false, true, true, true, false, false]);
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(QueueError::LeaseLost))));
    // The stale-token job still runs under its real token; the job outside the batch too.
    let running: Vec<(i64, Uuid)> =
        sqlx::query_as("select id, lease_token from sync_jobs where state = 'running' order by id")
            .fetch_all(&admin_pool)
            .await
            .unwrap();
    let mut expected = vec![
        (stale.job.id, stale.lease_token),
        (kept.job.id, kept.lease_token),
    ];
    expected.sort();
    assert_eq!(running, expected);
    assert_eq!(job_count(&admin_pool).await, 10 - 4);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
    // The survivors complete with their real tokens.
    let results = queue::complete_many(
        &pool,
        &[(stale.job, stale.lease_token), (kept.job, kept.lease_token)],
    )
    .await
    .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(job_count(&admin_pool).await, 4);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_reaper_dead_letters_after_the_last_attempt(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let install = install(&admin_pool, a).await;
    queue::enqueue(&pool, job(a, install, JobKind::Incremental))
        .await
        .unwrap();
    sqlx::query("update sync_jobs set max_attempts = 3")
        .execute(&admin_pool)
        .await
        .unwrap();
    // A lease that is not expired is left alone.
    let held = queue::claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(queue::reap(&pool, 100).await.unwrap().total(), 0);
    sqlx::query("update sync_jobs set lease_until = now() - interval '1 second'")
        .execute(&admin_pool)
        .await
        .unwrap();

    let mut reaps = vec![queue::reap(&pool, 100).await.unwrap()];
    let mut attempts = vec![held.attempt];
    for _ in 0..2 {
        let c = queue::claim(&pool, "w", 1, EXPIRED)
            .await
            .unwrap()
            .remove(0);
        attempts.push(c.attempt);
        tokio::time::sleep(Duration::from_millis(20)).await;
        reaps.push(queue::reap(&pool, 100).await.unwrap());
    }
    assert_eq!(attempts, vec![0, 1, 2]);
    assert_eq!(
        reaps.iter().map(|r| r.requeued).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );
    let dead = &reaps[2].dead;
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].install, dead[0].attempts), (install, 3));
    assert_eq!(dead[0].kind, JobKind::Incremental);
    assert_eq!(job_count(&admin_pool).await, 0);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn cancellation_reaches_the_worker_through_its_heartbeat(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    queue::enqueue(&pool, job(a, install(&admin_pool, a).await, JobKind::Full))
        .await
        .unwrap();
    let Enqueued::Queued(waiting) =
        queue::enqueue(&pool, job(a, install(&admin_pool, a).await, JobKind::Full))
            .await
            .unwrap()
    else {
        panic!("queued");
    };
    // A waiting job is simply removed.
    assert_eq!(
        queue::request_cancel(&pool, waiting).await.unwrap(),
        Cancel::Removed
    );
    let c = queue::claim(&pool, "w", 5, LEASE).await.unwrap().remove(0);
    let beat = queue::heartbeat(&pool, c.job, c.lease_token, LEASE)
        .await
        .unwrap();
    assert!(!beat.cancel_requested);
    assert_eq!(
        queue::request_cancel(&pool, c.job).await.unwrap(),
        Cancel::Requested
    );
    let beat = queue::heartbeat(&pool, c.job, c.lease_token, LEASE)
        .await
        .unwrap();
    assert!(beat.cancel_requested);
    // A cancelled job is not retried.
    assert_eq!(
        queue::retry(&pool, c.job, c.lease_token, time::OffsetDateTime::now_utc())
            .await
            .unwrap(),
        Retried::Cancelled
    );
    assert_eq!(
        queue::request_cancel(&pool, c.job).await.unwrap(),
        Cancel::NotFound
    );
    assert_eq!(job_count(&admin_pool).await, 0);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// Claims batches of 8, completing each batch before the next (as workers that finish their
/// jobs would), until B's jobs are all claimed; returns how many of B's each batch held.
async fn b_per_batch(pool: &PgPool, b: Uuid, b_jobs: usize) -> Vec<usize> {
    let mut per_batch = Vec::new();
    let mut seen = 0;
    while seen < b_jobs && per_batch.len() < 50 {
        let batch = queue::claim(pool, "w", 8, LEASE).await.unwrap();
        assert_eq!(batch.len(), 8, "a full batch while A has thousands waiting");
        let from_b = batch.iter().filter(|c| c.job.tenant == b).count();
        seen += from_b;
        per_batch.push(from_b);
        for c in batch {
            queue::complete(pool, c.job, c.lease_token).await.unwrap();
        }
    }
    per_batch
}

/// Tenant A has 10,000 jobs waiting, all older than tenant B's 10. A FIFO queue would serve B
/// after 1,250 batches of 8; the fair claim serves the tenant that waited longest first, as far
/// as its room goes (here 1,000 slots, so a whole batch), and sends it to the back of the line:
/// the two tenants take turns, B's 10 go out in its first two turns, within 4 batches.
#[sqlx::test(migrations = "../migrations")]
async fn a_small_tenant_is_served_while_a_large_one_drains(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let b = tenant(&admin_pool, "B").await;
    seed(&admin_pool, a, 10_000).await;
    for _ in 0..10 {
        queue::enqueue(&pool, job(b, install(&admin_pool, b).await, JobKind::Full))
            .await
            .unwrap();
    }
    // Slots large enough that only the turns, not the per-tenant cap, spread the work.
    set_max_running(&admin_pool, a, 1_000).await;
    set_max_running(&admin_pool, b, 1_000).await;
    let per_batch = b_per_batch(&pool, b, 10).await;
    assert!(
        per_batch.len() <= 4,
        "B waited {} batches: {per_batch:?}",
        per_batch.len()
    );
    // Turns: a batch is B's (8, then the 2 left with 6 of A's) or A's, never two of A's running.
    let turns: Vec<usize> = per_batch.iter().copied().filter(|&n| n > 0).collect();
    assert_eq!(turns, vec![8, 2], "{per_batch:?}");
    assert!(
        !per_batch.windows(2).any(|w| w == [0, 0]),
        "A served twice in a row while B waited: {per_batch:?}"
    );
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// With the default slots (4 each), a claim of 8 takes 4 from each of the two tenants that
/// waited longest, and the next claim the next two: every tenant is served once before any is
/// served twice.
#[sqlx::test(migrations = "../migrations")]
async fn a_claim_serves_the_longest_waiting_tenants_up_to_their_slots(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    for n in 0..4 {
        let t = tenant(&admin_pool, &format!("T{n}")).await;
        seed(&admin_pool, t, 20).await;
    }
    let first = queue::claim(&pool, "w", 8, LEASE).await.unwrap();
    let second = queue::claim(&pool, "w", 8, LEASE).await.unwrap();
    let count = |batch: &[ClaimedJob]| {
        let mut per: HashMap<Uuid, usize> = HashMap::new();
        for c in batch {
            *per.entry(c.job.tenant).or_default() += 1;
        }
        per
    };
    let (one, two) = (count(&first), count(&second));
    assert_eq!(
        one.values().copied().collect::<Vec<_>>(),
        vec![4, 4],
        "{one:?}"
    );
    assert_eq!(
        two.values().copied().collect::<Vec<_>>(),
        vec![4, 4],
        "{two:?}"
    );
    assert!(
        one.keys().all(|t| !two.contains_key(t)),
        "the second claim served other tenants"
    );
    // All four at their cap: nothing more until a job completes.
    assert!(queue::claim(&pool, "w", 8, LEASE).await.unwrap().is_empty());
    let done = &first[0];
    queue::complete(&pool, done.job, done.lease_token)
        .await
        .unwrap();
    let next = queue::claim(&pool, "w", 8, LEASE).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.job.tenant).collect::<Vec<_>>(),
        vec![done.job.tenant]
    );
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// The per-tenant cap: A's 10,000 jobs never hold more than its `max_running` (4) at once, even
/// with B idle, and B's first job goes out in the next claim.
#[sqlx::test(migrations = "../migrations")]
async fn a_tenant_never_runs_more_than_its_slots(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let b = tenant(&admin_pool, "B").await;
    seed(&admin_pool, a, 10_000).await;
    let first = queue::claim(&pool, "w", 8, LEASE).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(queue::claim(&pool, "w", 8, LEASE).await.unwrap().is_empty());
    queue::enqueue(&pool, job(b, install(&admin_pool, b).await, JobKind::Full))
        .await
        .unwrap();
    let next = queue::claim(&pool, "w", 8, LEASE).await.unwrap();
    assert_eq!(
        next.iter().map(|c| c.job.tenant).collect::<Vec<_>>(),
        vec![b]
    );
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}

/// A tiny deterministic generator (xorshift), so a failure replays.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn slot_counters_match_the_rows_after_any_mix_of_operations(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let mut tenants = Vec::new();
    for n in 0..3 {
        tenants.push(tenant(&admin_pool, &format!("T{n}")).await);
    }
    let mut installs: Vec<(Uuid, Uuid)> = Vec::new();
    for i in 0..12 {
        let t = tenants[i % 3];
        installs.push((t, install(&admin_pool, t).await));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut held: Vec<ClaimedJob> = Vec::new();
    let mut ops: HashMap<&str, usize> = HashMap::new();
    for step in 0..400 {
        let op = match rng.below(9) {
            0..=2 => {
                let (t, i) = installs[rng.below(installs.len())];
                let kind = [JobKind::Full, JobKind::Incremental][rng.below(2)];
                queue::enqueue(&pool, job(t, i, kind)).await.unwrap();
                "enqueue"
            }
            3 => {
                let lease = [LEASE, EXPIRED][rng.below(2)];
                held.extend(
                    queue::claim(&pool, "w", 1 + rng.below(5), lease)
                        .await
                        .unwrap(),
                );
                "claim"
            }
            4 | 5 if !held.is_empty() => {
                let c = held.swap_remove(rng.below(held.len()));
                // The lease may have been reaped meanwhile: LeaseLost is a fine answer.
                let r = match rng.below(4) {
                    0 => queue::complete(&pool, c.job, c.lease_token).await,
                    3 => {
                        // A batch: this job, up to two more held ones, and now and then a
                        // stale token for one of them.
                        let mut batch = vec![(c.job, c.lease_token)];
                        for _ in 0..rng.below(3) {
                            if held.is_empty() {
                                break;
                            }
                            let more = held.swap_remove(rng.below(held.len()));
                            batch.push((more.job, more.lease_token));
                        }
                        let stale = rng.below(3) == 0;
                        if stale {
                            batch.push((c.job, Uuid::new_v4()));
                        }
                        let results = queue::complete_many(&pool, &batch).await.unwrap();
                        assert_eq!(results.len(), batch.len());
                        if stale {
                            let stale = &results[results.len() - 1];
                            assert!(matches!(stale, Err(QueueError::LeaseLost)), "{stale:?}");
                        }
                        *ops.entry("complete_many").or_default() += 1;
                        results.into_iter().find(|r| r.is_err()).unwrap_or(Ok(()))
                    }
                    1 => queue::fail(&pool, c.job, c.lease_token).await.map(drop),
                    _ => queue::retry(&pool, c.job, c.lease_token, time::OffsetDateTime::now_utc())
                        .await
                        .map(drop),
                };
                assert!(matches!(r, Ok(()) | Err(QueueError::LeaseLost)), "{r:?}");
                "finish"
            }
            6 if !held.is_empty() => {
                let c = &held[rng.below(held.len())];
                queue::request_cancel(&pool, c.job).await.unwrap();
                "cancel"
            }
            7 => {
                tokio::time::sleep(Duration::from_millis(2)).await;
                queue::reap(&pool, 1 + rng.below(4)).await.unwrap();
                "reap"
            }
            _ => {
                let (t, _) = installs[rng.below(installs.len())];
                queue::request_cancel(
                    &pool,
                    JobRef {
                        tenant: t,
                        id: 1 + rng.below(200) as i64,
                    },
                )
                .await
                .unwrap();
                "cancel_any"
            }
        };
        *ops.entry(op).or_default() += 1;
        let bad = slot_mismatches(&admin_pool).await;
        assert!(bad.is_empty(), "after step {step} ({op}): {bad:?}");
    }
    // Every kind of operation ran a fair number of times.
    for op in [
        "enqueue",
        "claim",
        "finish",
        "complete_many",
        "cancel",
        "reap",
        "cancel_any",
    ] {
        assert!(ops.get(op).copied().unwrap_or(0) >= 10, "{ops:?}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_tenant_reads_only_its_own_jobs_and_cannot_write_them(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let b = tenant(&admin_pool, "B").await;
    queue::enqueue(&pool, job(a, install(&admin_pool, a).await, JobKind::Full))
        .await
        .unwrap();
    queue::enqueue(&pool, job(b, install(&admin_pool, b).await, JobKind::Full))
        .await
        .unwrap();
    let seen = queue::list_for_tenant(&pool, a).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].job.tenant, a);

    let tenant_scope = db::Scope::Tenant {
        tenant: a,
        user: None,
    };
    let mut tx = db::begin(&pool, tenant_scope).await.unwrap();
    let slots: i64 = sqlx::query_scalar("select count(*) from tenant_slots")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(slots, 1, "its own counters only");
    let deleted = sqlx::query("delete from sync_jobs")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "a tenant cannot remove jobs, even its own");
    tx.rollback().await.unwrap();
    // Each of these must fail; each gets a transaction of its own, as an error aborts one.
    for sql in [
        "update sync_jobs set priority = 9",
        "update tenant_slots set max_running = 100",
        "insert into sync_jobs (tenant_id, install_id, kind, state) \
         values (app_tenant(), gen_random_uuid(), 'full', 'queued')",
    ] {
        let mut tx = db::begin(&pool, tenant_scope).await.unwrap();
        let result = sqlx::query(sql).execute(&mut *tx).await;
        assert!(result.is_err(), "a tenant may not: {sql}");
        tx.rollback().await.unwrap();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn enqueue_wakes_listeners(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let mut wakeups = queue::listen(&pool).await.unwrap();
    queue::enqueue(&pool, job(a, install(&admin_pool, a).await, JobKind::Full))
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(5), wakeups.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    assert_eq!(woke, Some(a));
}

#[sqlx::test(migrations = "../migrations")]
async fn rescheduling_and_handing_back_keep_the_attempt_count(admin_pool: PgPool) {
    let pool = app_pool(&admin_pool, 3).await;
    let a = tenant(&admin_pool, "A").await;
    let install = install(&admin_pool, a).await;
    queue::enqueue(&pool, job(a, install, JobKind::Full))
        .await
        .unwrap();
    let c = queue::claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);
    // A 429: back in the queue for later, the attempt not counted.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert_eq!(
        queue::reschedule(&pool, c.job, c.lease_token, later)
            .await
            .unwrap(),
        Retried::Requeued
    );
    assert!(
        queue::claim(&pool, "w", 1, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );
    // As if the hour had passed.
    sqlx::query(
        "with j as (update sync_jobs set run_at = now() returning tenant_id) \
         update tenant_slots set next_run_at = now() where tenant_id in (select tenant_id from j)",
    )
    .execute(&admin_pool)
    .await
    .unwrap();
    let c = queue::claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!((c.job.id, c.attempt), (c.job.id, 0));
    // A shutdown: handed back, due at once, still attempt 0.
    assert_eq!(
        queue::release(&pool, c.job, c.lease_token).await.unwrap(),
        Retried::Requeued
    );
    let again = queue::claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!((again.job, again.attempt), (c.job, 0));
    // A failure counts.
    let soon = time::OffsetDateTime::now_utc();
    queue::retry(&pool, again.job, again.lease_token, soon)
        .await
        .unwrap();
    let third = queue::claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(third.attempt, 1);
    // The reaper names the leases it takes back.
    queue::release(&pool, third.job, third.lease_token)
        .await
        .unwrap();
    let short = queue::claim(&pool, "w", 1, EXPIRED)
        .await
        .unwrap()
        .remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reaped = queue::reap(&pool, 10).await.unwrap();
    assert_eq!(reaped.leases, vec![(short.job, short.lease_token)]);
    assert!(slot_mismatches(&admin_pool).await.is_empty());
}
