//! The worker pool: claims sync jobs fairly from the queue and runs them, up to `concurrency` at
//! once per process, each with a heartbeat that renews its lease and carries cancellation; plus
//! the platform's periodic work — the reaper for leases nobody renews, the scheduler tick, the
//! token-refresh sweep, the pruning of old webhook deliveries, and the alert rules' evaluation
//! and delivery. `patchbay serve` runs one beside the web server; `patchbay worker` runs one
//! alone, for scaling out. Any number of pools share one database: every step claims with
//! `skip locked`, so none needs a leader.
//!
//! Wake-ups come from `pg_notify` with a poll every second as the fallback (a notification sent
//! while the listener reconnects is lost). A database that goes away (a restart) costs errors in
//! the log and retries, never the pool: every loop waits a second and tries again.
//!
//! Shutdown stops claiming, asks every running job to stop at its next safe point (after the
//! batch it is writing commits) and waits for them to hand their jobs back to the queue; after
//! the grace period, whatever still runs is left to its lease, which the reaper takes back.

use app::domain::admin::{alerts, health, retention};
use app::domain::connections::{refresh, ConnectSettings};
use app::domain::queue::{self, ClaimedJob, QueueError};
use app::domain::sync::{Control, Engine, Settled, Stop};
use app::domain::{runs, schedules, vault::Keyring, webhooks};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// How a pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Jobs run at once by this process; 0 runs only the periodic work.
    pub concurrency: usize,
    /// Most jobs claimed in one statement.
    pub claim_batch: usize,
    /// How often to look for work when no notification came.
    pub poll: Duration,
    /// How often the reaper looks for expired leases.
    pub reap_every: Duration,
    /// How often due schedules are turned into jobs.
    pub schedule_every: Duration,
    /// How long shutdown waits for running jobs to hand back.
    pub shutdown_grace: Duration,
    /// Whether this pool refreshes expiring OAuth tokens every minute.
    pub refresh_sweep: bool,
    /// How long the run log keeps an attempt after it ended.
    pub retention: Duration,
    /// How often the pool reports itself alive (and samples the queue's depth).
    pub report_every: Duration,
    /// How often the pool looks for alert rules to evaluate and deliveries to send.
    pub alert_every: Duration,
    /// How alerts are evaluated and delivered (the links in them use the engine's public URL).
    pub alerts: alerts::AlertSettings,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            concurrency: 4,
            claim_batch: 8,
            poll: Duration::from_secs(1),
            reap_every: Duration::from_secs(5),
            schedule_every: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
            refresh_sweep: true,
            retention: Duration::from_secs(30 * 86_400),
            report_every: Duration::from_secs(5),
            alert_every: Duration::from_secs(5),
            alerts: alerts::AlertSettings::default(),
        }
    }
}

/// A running pool. Dropping it without [`PoolHandle::shutdown`] aborts everything (leases then
/// expire and the reaper recovers the jobs).
pub struct PoolHandle {
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl PoolHandle {
    /// Stops claiming, hands running jobs back (or lets them finish their batch), and waits.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts a pool over `engine`. Its succeeded jobs are completed together with the pool's next
/// claim (one statement for both), so the engine leaves them to the pool.
pub fn spawn(mut engine: Engine, config: PoolConfig) -> PoolHandle {
    engine.settings.defer_completion = true;
    let (shutdown, watch_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if config.concurrency > 0 {
        tasks.spawn(claim_loop(engine.clone(), config.clone(), watch_rx.clone()));
    }
    tasks.spawn(every(config.reap_every, watch_rx.clone(), {
        let pool = engine.pool.clone();
        move || reap(pool.clone())
    }));
    tasks.spawn(every(config.schedule_every, watch_rx.clone(), {
        let pool = engine.pool.clone();
        move || tick(pool.clone())
    }));
    tasks.spawn(every(Duration::from_secs(3600), watch_rx.clone(), {
        let (pool, keep) = (engine.pool.clone(), config.retention);
        move || prune(pool.clone(), keep)
    }));
    tasks.spawn(every(config.report_every, watch_rx.clone(), {
        let (pool, name, concurrency) = (
            engine.pool.clone(),
            engine.settings.worker.clone(),
            config.concurrency,
        );
        move || report(pool.clone(), name.clone(), concurrency)
    }));
    tasks.spawn(every(config.alert_every, watch_rx.clone(), {
        let mut settings = config.alerts.clone();
        settings.public_url.clone_from(&engine.connect.public_url);
        let (pool, vault, connect) = (
            engine.pool.clone(),
            engine.vault.clone(),
            engine.connect.clone(),
        );
        move || {
            watch_alerts(
                pool.clone(),
                vault.clone(),
                connect.clone(),
                settings.clone(),
            )
        }
    }));
    if config.refresh_sweep {
        tasks.spawn(every(Duration::from_secs(60), watch_rx, {
            let (pool, vault, connect) = (
                engine.pool.clone(),
                engine.vault.clone(),
                engine.connect.clone(),
            );
            move || sweep(pool.clone(), vault.clone(), connect.clone())
        }));
    }
    PoolHandle { shutdown, tasks }
}

/// Runs `work` every `period` until shutdown.
async fn every<F, Fut>(period: Duration, mut shutdown: watch::Receiver<bool>, work: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => work().await,
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

async fn reap(pool: sqlx::PgPool) {
    match queue::reap(&pool, 100).await {
        Ok(reaped) if reaped.total() > 0 => {
            tracing::warn!(
                requeued = reaped.requeued,
                dropped = reaped.dropped,
                dead = reaped.dead.len(),
                "reaper took back expired leases"
            );
            let dead: Vec<queue::JobRef> = reaped.dead.iter().map(|d| d.job).collect();
            if let Err(err) = runs::close_expired(&pool, &reaped.leases, &dead).await {
                tracing::warn!(error = %err, "reaper: could not close the attempts' log rows");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "reaper failed"),
    }
}

async fn tick(pool: sqlx::PgPool) {
    match schedules::tick(&pool, 100).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(due = n, "scheduler enqueued due syncs"),
        Err(err) => tracing::warn!(error = %err, "scheduler tick failed"),
    }
}

async fn prune(pool: sqlx::PgPool, keep: Duration) {
    if let Err(err) = webhooks::prune(&pool, 7).await {
        tracing::warn!(error = %err, "pruning webhook deliveries failed");
    }
    // At most 100 batches an hour: a backlog (a lowered retention) drains over a few hours
    // instead of loading the database at once.
    match retention::prune(&pool, keep, 100).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "pruned old runs from the run log"),
        Err(err) => tracing::warn!(error = %err, "pruning the run log failed"),
    }
    if let Err(err) = health::prune(&pool).await {
        tracing::warn!(error = %err, "pruning old worker heartbeats and queue samples failed");
    }
}

/// The worker's heartbeat for the health page, and the queue's depth of this minute.
async fn report(pool: sqlx::PgPool, name: String, concurrency: usize) {
    if let Err(err) = health::report(&pool, &name, concurrency).await {
        tracing::warn!(error = %err, "could not report the worker's heartbeat");
    }
}

/// Evaluates the alert rules that are due, then sends the deliveries that are.
async fn watch_alerts(
    pool: sqlx::PgPool,
    vault: Arc<Keyring>,
    connect: Arc<ConnectSettings>,
    settings: alerts::AlertSettings,
) {
    if let Err(err) = alerts::evaluate(&pool, &settings).await {
        tracing::warn!(error = %err, "could not evaluate the alert rules");
    }
    match alerts::deliver(&pool, &vault, &connect.http, &settings).await {
        Ok(done) if done.delivered + done.retrying + done.failed > 0 => tracing::info!(
            delivered = done.delivered,
            retrying = done.retrying,
            failed = done.failed,
            "alert deliveries"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "could not send the alert deliveries"),
    }
}

async fn sweep(pool: sqlx::PgPool, vault: Arc<Keyring>, connect: Arc<ConnectSettings>) {
    match refresh::sweep(&pool, &vault, &connect, Duration::from_secs(600), 100).await {
        Ok(report) if report.refreshed + report.failed > 0 => tracing::info!(
            refreshed = report.refreshed,
            failed = report.failed,
            "token refresh sweep"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "token refresh sweep failed"),
    }
}

/// The stop signals of this pool's running jobs, by job id.
type Running = Arc<Mutex<HashMap<i64, watch::Sender<Option<Stop>>>>>;
/// Succeeded jobs waiting to be completed by the next cycle.
type Finished = Arc<Mutex<Vec<(queue::JobRef, uuid::Uuid)>>>;

fn take(finished: &Finished) -> Vec<(queue::JobRef, uuid::Uuid)> {
    std::mem::take(&mut *finished.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Completes `done` and claims up to `want` jobs; on a database error the completions are kept
/// for the next try.
async fn cycle(
    engine: &Engine,
    finished: &Finished,
    done: Vec<(queue::JobRef, uuid::Uuid)>,
    want: usize,
) -> Vec<ClaimedJob> {
    match queue::cycle(
        &engine.pool,
        &engine.settings.worker,
        &done,
        want,
        engine.settings.lease,
    )
    .await
    {
        Ok((completed, claimed)) => {
            for ((job, _), result) in done.iter().zip(completed) {
                if result.is_err() {
                    tracing::warn!(
                        job = job.id,
                        "a finished job's lease was lost before it was completed"
                    );
                }
            }
            metrics::counter!("patchbay_claims_total").increment(claimed.len() as u64);
            claimed
        }
        Err(err) => {
            tracing::warn!(error = %err, "claiming jobs failed; trying again shortly");
            finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(done);
            Vec::new()
        }
    }
}

async fn claim_loop(engine: Engine, config: PoolConfig, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let freed = Arc::new(Notify::new());
    let running: Running = Arc::default();
    let finished: Finished = Arc::default();
    let mut jobs = JoinSet::new();
    let mut wakeups = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if wakeups.is_none() {
            wakeups = queue::listen(&engine.pool)
                .await
                .map_err(|err| tracing::warn!(error = %err, "cannot listen for job notifications; polling"))
                .ok();
        }
        let free = slots.available_permits();
        let mut full_batch = false;
        let done = take(&finished);
        if free > 0 || !done.is_empty() {
            let want = free.min(config.claim_batch);
            let claimed = cycle(&engine, &finished, done, want).await;
            full_batch = want > 0 && claimed.len() == want;
            for job in claimed {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    // Cannot happen (we claimed at most the free slots); hand it back.
                    let _ = queue::release(&engine.pool, job.job, job.lease_token).await;
                    continue;
                };
                let (engine, running, freed, finished) = (
                    engine.clone(),
                    running.clone(),
                    freed.clone(),
                    finished.clone(),
                );
                jobs.spawn(async move {
                    let (job_ref, token) = (job.job, job.lease_token);
                    if run_job(&engine, job, &running).await == Settled::Succeeded {
                        finished
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((job_ref, token));
                    }
                    drop(permit);
                    freed.notify_one();
                });
            }
        }
        // Reap finished job tasks (their results are already settled).
        while jobs.try_join_next().is_some() {}
        if full_batch && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = freed.notified() => {}
            woke = next_wakeup(&mut wakeups) => {
                if let Err(err) = woke {
                    tracing::warn!(error = %err, "job notifications lost; reconnecting");
                    wakeups = None;
                }
            }
            _ = tokio::time::sleep(config.poll) => {}
        }
    }
    // Shutdown: every running job stops at its next safe point and hands its job back.
    for stop in running.lock().unwrap_or_else(|e| e.into_inner()).values() {
        let _ = stop.send(Some(Stop::Shutdown));
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_running = jobs.len(),
            "shutdown grace period over; the remaining jobs' leases will expire and the reaper takes them back"
        );
        jobs.abort_all();
    }
    // The jobs that succeeded meanwhile are completed before the pool goes.
    let done = take(&finished);
    if !done.is_empty() {
        cycle(&engine, &finished, done, 0).await;
    }
}

async fn next_wakeup(wakeups: &mut Option<queue::Wakeups>) -> sqlx::Result<()> {
    match wakeups {
        Some(w) => w.recv().await.map(drop),
        None => std::future::pending().await,
    }
}

/// One job with its heartbeat; returns how it settled.
async fn run_job(engine: &Engine, job: ClaimedJob, running: &Running) -> Settled {
    let (stop_tx, stop_rx) = watch::channel(None);
    let id = job.job.id;
    running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, stop_tx.clone());
    let beat = tokio::spawn(heartbeat(engine.clone(), job.job, job.lease_token, stop_tx));
    let control = Control::new(stop_rx);
    let started = std::time::Instant::now();
    let settled = engine.execute(job, &control).await;
    beat.abort();
    running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    match &settled {
        Settled::Succeeded => tracing::info!(
            job = id,
            ms = started.elapsed().as_millis() as u64,
            "sync succeeded"
        ),
        other => tracing::info!(job = id, outcome = ?other, "sync ended"),
    }
    settled
}

/// Renews the lease every third of its length and passes on cancellation and a lost lease.
async fn heartbeat(
    engine: Engine,
    job: queue::JobRef,
    token: uuid::Uuid,
    stop: watch::Sender<Option<Stop>>,
) {
    let lease = engine.settings.lease;
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        match queue::heartbeat(&engine.pool, job, token, lease).await {
            Ok(beat) if beat.cancel_requested => {
                stop.send_if_modified(|s| {
                    if s.is_none() {
                        *s = Some(Stop::Cancel);
                        true
                    } else {
                        false
                    }
                });
            }
            Ok(_) => {}
            Err(QueueError::LeaseLost) => {
                let _ = stop.send(Some(Stop::LeaseLost));
                return;
            }
            Err(err) => {
                tracing::warn!(job = job.id, error = %err, "heartbeat failed; trying again")
            }
        }
    }
}
