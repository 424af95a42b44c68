//! The sync executor: runs one claimed job of an install to its end and settles it with the
//! queue and the run log.
//!
//! A run loads the install, gets usable credentials (through the vault's single-flight refresh),
//! then reads each chosen stream page by page — taking from the shared rate budget before every
//! request, a reader task fetching the next page while the last is written — maps each record,
//! skips those whose content hash is unchanged, and writes the rest in batches. Each batch commits
//! together with the read position that follows it, the run's counters and its events, fenced by
//! the job's lease token: a crash (or a kill) resumes from the last committed batch and never
//! writes a batch twice, and a worker whose lease was taken over writes nothing more. A full read
//! ends with the delete sweep (records of older generations).
//!
//! Failures are classified: transient ones (network, 5xx, timeouts, our database) retry with
//! exponential backoff and full jitter; a 429 blocks the rate buckets until its Retry-After and
//! reschedules the job then, without counting an attempt; refused credentials are refreshed
//! once, and if that fails the connection needs reconnecting and the install is paused with the
//! reason; anything permanent (a malformed stream, a refused configuration) is a dead letter.
//! Records the destination refuses, or the mapping cannot produce, are quarantined with the
//! reason and the run goes on.

mod provider;
mod replay;
mod run;
pub mod state;
pub mod store;

use crate::domain::connections::ConnectSettings;
use crate::domain::installs;
use crate::domain::queue::{self, ClaimedJob, QueueError, Retried};
use crate::domain::runs::{self, Ending};
use crate::domain::vault::Keyring;
use crate::model::install::{ErrorClass, RunOutcome};
use connectors::error::{ConnectorError, ErrorClass as Class};
use connectors::ContentHash;
use rand::Rng;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How the executor behaves.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Names this worker in the run log and on leases.
    pub worker: String,
    /// How long a lease lasts without renewal; every committed batch renews it too.
    pub lease: Duration,
    /// Records per committed batch (pages are gathered up to this).
    pub batch_records: usize,
    /// Backoff after the first failed attempt; doubles each attempt, up to `retry_cap`, and the
    /// actual wait is drawn uniformly below it (full jitter).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Longest a request waits for the rate budget before the job is rescheduled instead.
    pub max_rate_wait: Duration,
    /// Leave a succeeded job in the queue for the caller to complete (the worker pool completes
    /// finished jobs together with its next claim, one statement for both).
    pub defer_completion: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            worker: "worker".into(),
            lease: Duration::from_secs(30),
            batch_records: 1000,
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(600),
            max_rate_wait: Duration::from_secs(30),
            defer_completion: false,
        }
    }
}

/// Why a running job should stop at its next safe point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone asked (pause, uninstall): the job ends.
    Cancel,
    /// The worker shuts down: the job goes back to the queue, unfinished.
    Shutdown,
    /// The lease went to another worker: write nothing more.
    LeaseLost,
}

/// What the worker pool hands a running job: the stop signal its heartbeat and shutdown send.
#[derive(Debug, Clone)]
pub struct Control {
    stop: watch::Receiver<Option<Stop>>,
}

impl Control {
    pub fn new(stop: watch::Receiver<Option<Stop>>) -> Self {
        Control { stop }
    }

    /// A control nobody stops (tests, one-off runs).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(None);
        std::mem::forget(tx);
        Control { stop: rx }
    }

    pub fn stopped(&self) -> Option<Stop> {
        *self.stop.borrow()
    }
}

/// How a job ended, after it was settled with the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Done; with `defer_completion` the job still waits to be completed by the caller.
    Succeeded,
    /// Failed this attempt; queued again for this time (a 429 too).
    Retrying(OffsetDateTime),
    /// Out of attempts, or failed for good: a dead letter.
    Dead,
    Cancelled,
    /// Handed back unfinished (shutdown).
    Released,
    /// A connection needs reconnecting; the install is paused.
    Paused,
    /// Another worker holds the job now; nothing was settled here.
    LeaseLost,
}

impl Settled {
    /// The `outcome` label of `patchbay_runs_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Settled::Succeeded => "succeeded",
            Settled::Retrying(_) => "retrying",
            Settled::Dead => "dead",
            Settled::Cancelled => "cancelled",
            Settled::Released => "released",
            Settled::Paused => "paused",
            Settled::LeaseLost => "lease_lost",
        }
    }
}

/// A record ready for the destination: its source key, mapped data and the hash of that data.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub data: serde_json::Value,
    pub hash: ContentHash,
}

/// Why a run stopped early.
#[derive(Debug)]
enum Failure {
    /// A provider's error, classified by the connectors.
    Provider(ConnectorError),
    /// A connection needs reconnecting; the message is for the customer.
    Auth(String),
    /// Our side (database, a credential that does not open): retried.
    Internal(String),
    /// Nothing a retry fixes (an install whose recipe names a missing stream).
    Permanent(String),
    Stopped(Stop),
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Failure::Internal(format!("database: {err}"))
    }
}

impl From<QueueError> for Failure {
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::LeaseLost => Failure::Stopped(Stop::LeaseLost),
            other => Failure::Internal(format!("queue: {other}")),
        }
    }
}

impl From<crate::error::AppError> for Failure {
    fn from(err: crate::error::AppError) -> Self {
        Failure::Internal(format!("{err}"))
    }
}

/// Runs claimed jobs.
#[derive(Clone)]
pub struct Engine {
    pub pool: PgPool,
    pub vault: Arc<Keyring>,
    pub connect: Arc<ConnectSettings>,
    pub settings: EngineSettings,
}

impl Engine {
    /// Runs `job` to its end and settles it (queue and run log). Never panics on a failure of
    /// the job itself; database errors while settling are logged, and the lease then expires
    /// and the reaper settles it.
    pub async fn execute(&self, job: ClaimedJob, control: &Control) -> Settled {
        let tenant = job.job.tenant;
        let run_id = match runs::start(&self.pool, &job, &self.settings.worker).await {
            Ok(id) => id,
            Err(err) => {
                tracing::error!(%tenant, job = job.job.id, error = %err, "could not open the run log; the job goes back");
                let _ = queue::release(&self.pool, job.job, job.lease_token).await;
                return Settled::Released;
            }
        };
        let result = run::sync(self, &job, run_id, control).await;
        match self.settle(&job, run_id, result).await {
            Ok(settled) => {
                metrics::counter!("patchbay_runs_total", "outcome" => settled.metric_label())
                    .increment(1);
                settled
            }
            Err(err) => {
                tracing::error!(%tenant, job = job.job.id, error = ?err, "could not settle the job; its lease will expire");
                Settled::LeaseLost
            }
        }
    }

    fn backoff(&self, attempt: i32) -> Duration {
        let base = self.settings.retry_base.as_secs_f64();
        let ceiling =
            (base * 2f64.powi(attempt.clamp(0, 30))).min(self.settings.retry_cap.as_secs_f64());
        Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=ceiling))
    }

    async fn settle(
        &self,
        job: &ClaimedJob,
        run_id: i64,
        result: Result<(), Failure>,
    ) -> Result<Settled, Failure> {
        let tenant = job.job.tenant;
        let (job_ref, token) = (job.job, job.lease_token);
        let finish =
            |ending: Ending| async move { runs::finish(&self.pool, tenant, run_id, &ending).await };
        let failure = match result {
            Ok(()) => {
                // The run log first: once the queue lets the job go, its install may run again.
                finish(Ending::ok(RunOutcome::Succeeded)).await?;
                if !self.settings.defer_completion {
                    queue::complete(&self.pool, job_ref, token).await?;
                }
                return Ok(Settled::Succeeded);
            }
            Err(failure) => failure,
        };
        if let Failure::Provider(ConnectorError {
            exchange: Some(exchange),
            ..
        }) = &failure
        {
            runs::failed_request(&self.pool, tenant, run_id, exchange).await?;
        }
        match failure {
            Failure::Stopped(Stop::LeaseLost) => {
                tracing::warn!(%tenant, job = job_ref.id, "lease lost: another worker has the job");
                Ok(Settled::LeaseLost)
            }
            Failure::Stopped(Stop::Shutdown) => {
                queue::release(&self.pool, job_ref, token).await?;
                finish(Ending {
                    outcome: RunOutcome::Released,
                    error: None,
                    retry_at: Some(OffsetDateTime::now_utc()),
                })
                .await?;
                Ok(Settled::Released)
            }
            Failure::Stopped(Stop::Cancel) => {
                queue::complete(&self.pool, job_ref, token).await?;
                finish(Ending::ok(RunOutcome::Cancelled)).await?;
                Ok(Settled::Cancelled)
            }
            Failure::Auth(reason) => {
                installs::pause_for_reauth(&self.pool, tenant, job.install, &reason).await?;
                queue::complete(&self.pool, job_ref, token).await?;
                finish(Ending {
                    outcome: RunOutcome::Failed,
                    error: Some((ErrorClass::Auth, reason)),
                    retry_at: None,
                })
                .await?;
                Ok(Settled::Paused)
            }
            Failure::Permanent(message) => {
                queue::fail(&self.pool, job_ref, token).await?;
                finish(Ending {
                    outcome: RunOutcome::Dead,
                    error: Some((ErrorClass::Permanent, message)),
                    retry_at: None,
                })
                .await?;
                Ok(Settled::Dead)
            }
            Failure::Provider(err) => {
                let message = err.message.clone();
                match err.class {
                    Class::Permanent => {
                        queue::fail(&self.pool, job_ref, token).await?;
                        finish(Ending {
                            outcome: RunOutcome::Dead,
                            error: Some((ErrorClass::Permanent, message)),
                            retry_at: None,
                        })
                        .await?;
                        Ok(Settled::Dead)
                    }
                    Class::RateLimited { retry_after } => {
                        let wait = retry_after.unwrap_or(Duration::from_secs(30));
                        let at = OffsetDateTime::now_utc() + wait;
                        let retried = queue::reschedule(&self.pool, job_ref, token, at).await?;
                        self.after_retry(
                            tenant,
                            run_id,
                            retried,
                            at,
                            ErrorClass::RateLimited,
                            message,
                        )
                        .await
                    }
                    Class::Auth => {
                        // Credentials that still fail after a refresh, without the connection
                        // being marked: treat as a transient refusal, once more later.
                        self.retry(job, run_id, ErrorClass::Auth, message).await
                    }
                    Class::Transient => {
                        self.retry(job, run_id, ErrorClass::Transient, message)
                            .await
                    }
                }
            }
            Failure::Internal(message) => {
                tracing::error!(%tenant, job = job_ref.id, error = %message, "sync failed on our side");
                self.retry(
                    job,
                    run_id,
                    ErrorClass::Internal,
                    "Patchbay could not finish this attempt because of a problem on its side; it will retry.".into(),
                )
                .await
            }
        }
    }

    async fn retry(
        &self,
        job: &ClaimedJob,
        run_id: i64,
        class: ErrorClass,
        message: String,
    ) -> Result<Settled, Failure> {
        let at = OffsetDateTime::now_utc() + self.backoff(job.idle_attempts);
        let retried = queue::retry(&self.pool, job.job, job.lease_token, at).await?;
        self.after_retry(job.job.tenant, run_id, retried, at, class, message)
            .await
    }

    async fn after_retry(
        &self,
        tenant: uuid::Uuid,
        run_id: i64,
        retried: Retried,
        at: OffsetDateTime,
        class: ErrorClass,
        message: String,
    ) -> Result<Settled, Failure> {
        let (ending, settled) = match retried {
            Retried::Requeued => (
                Ending {
                    outcome: RunOutcome::Failed,
                    error: Some((class, message)),
                    retry_at: Some(at),
                },
                Settled::Retrying(at),
            ),
            // A twin waits in the queue and does the work soon.
            Retried::Merged => (
                Ending {
                    outcome: RunOutcome::Failed,
                    error: Some((class, message)),
                    retry_at: None,
                },
                Settled::Retrying(at),
            ),
            Retried::Cancelled => (Ending::ok(RunOutcome::Cancelled), Settled::Cancelled),
            Retried::Dead(_) => (
                Ending {
                    outcome: RunOutcome::Dead,
                    error: Some((class, message)),
                    retry_at: None,
                },
                Settled::Dead,
            ),
        };
        runs::finish(&self.pool, tenant, run_id, &ending).await?;
        Ok(settled)
    }
}
