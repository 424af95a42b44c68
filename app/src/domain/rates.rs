//! Rate budgets shared by every worker process: a token bucket per provider app and one per
//! connection, kept in Postgres (`rate_buckets`, taken by `take_rate_tokens`) so that ten
//! workers on three machines together stay inside what the provider allows. A sync takes from
//! its buckets before every request and waits when they are empty, instead of running into 429s;
//! a 429 that comes anyway blocks the buckets until its Retry-After, for every worker.

use async_trait::async_trait;
use connectors::error::{ConnectorError, ErrorClass};
use connectors::http::RateBudget;
use connectors::spec::ProviderSpec;
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// One bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub key: String,
    pub rate: f64,
    pub burst: f64,
}

/// The share of a documented quota Patchbay spends. Requests taken evenly from a bucket do not
/// arrive evenly at the provider (scheduling and network jitter bunch them), and a budget set
/// exactly at the provider's limit runs into 429s at those bunches; the rest also leaves room for
/// the account's other clients.
pub const QUOTA_SHARE: f64 = 0.9;

/// The buckets a connection's requests take from: its own, from the spec's documented quota,
/// and its OAuth app's, when the spec documents an app-wide quota; each at [`QUOTA_SHARE`].
pub fn buckets(spec: &ProviderSpec, connection: Uuid, app: Option<Uuid>) -> Vec<Bucket> {
    let Some(limit) = &spec.rate_limit else {
        return Vec::new();
    };
    let bucket = |key: String, requests: u32, per_secs: u32| Bucket {
        key,
        rate: QUOTA_SHARE * f64::from(requests) / f64::from(per_secs),
        burst: (QUOTA_SHARE * f64::from(requests)).floor().max(1.0),
    };
    let mut out = vec![bucket(
        format!("conn:{connection}"),
        limit.requests,
        limit.per_secs,
    )];
    if let (Some(app), Some(n), Some(secs)) = (app, limit.app_requests, limit.app_per_secs) {
        out.push(bucket(format!("app:{app}"), n, secs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_keep_a_margin_under_the_documented_quota() {
        let spec = connectors::spec::builtin_specs()
            .unwrap()
            .into_iter()
            .find(|s| s.id == "sandbox-shop")
            .unwrap();
        let (conn, app) = (Uuid::nil(), Uuid::max());
        let b = buckets(&spec, conn, Some(app));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].key, format!("conn:{conn}"));
        assert!(
            (b[0].rate - 45.0).abs() < 1e-9 && b[0].burst == 45.0,
            "{b:?}"
        );
        assert!(
            (b[1].rate - 180.0).abs() < 1e-9 && b[1].burst == 180.0,
            "{b:?}"
        );
        assert_eq!(buckets(&spec, conn, None).len(), 1, "no app, no app bucket");
    }
}

/// How long a sync spent waiting for its budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Waited {
    pub times: u32,
    pub seconds: f64,
}

/// A [`RateBudget`] over Postgres buckets.
pub struct PgBudget {
    pool: PgPool,
    keys: Vec<String>,
    rates: Vec<f64>,
    bursts: Vec<f64>,
    /// Longest single wait before the request is given up as rate limited (the job is then
    /// rescheduled rather than holding a worker).
    max_wait: Duration,
    waited: Mutex<Waited>,
}

impl std::fmt::Debug for PgBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBudget")
            .field("keys", &self.keys)
            .finish()
    }
}

impl PgBudget {
    pub fn new(pool: PgPool, buckets: &[Bucket], max_wait: Duration) -> Self {
        PgBudget {
            pool,
            keys: buckets.iter().map(|b| b.key.clone()).collect(),
            rates: buckets.iter().map(|b| b.rate).collect(),
            bursts: buckets.iter().map(|b| b.burst).collect(),
            max_wait,
            waited: Mutex::new(Waited::default()),
        }
    }

    /// The waits so far, and resets the count.
    pub fn take_waited(&self) -> Waited {
        std::mem::take(&mut *self.waited.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Holds every bucket until `retry_after` from now: the provider said to wait.
    pub async fn block_for(&self, retry_after: Duration) -> sqlx::Result<()> {
        block(&self.pool, &self.keys, retry_after).await
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Holds the buckets `keys` until `retry_after` from now.
pub async fn block(pool: &PgPool, keys: &[String], retry_after: Duration) -> sqlx::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query("select block_rate_buckets($1, clock_timestamp() + $2 * interval '1 millisecond')")
        .bind(keys)
        .bind(retry_after.as_millis() as f64)
        .execute(pool)
        .await?;
    Ok(())
}

#[async_trait]
impl RateBudget for PgBudget {
    async fn take(&self, _url: &url::Url) -> Result<(), ConnectorError> {
        if self.keys.is_empty() {
            return Ok(());
        }
        loop {
            // One statement in its own (asynchronously committed) transaction.
            let wait: f64 = sqlx::query_scalar("select take_rate_tokens($1, $2, $3)")
                .bind(&self.keys)
                .bind(&self.rates)
                .bind(&self.bursts)
                .fetch_one(&self.pool)
                .await
                .map_err(|err| {
                    tracing::warn!(error = %err, "rate budget: database error");
                    ConnectorError::transient("could not take from the rate budget")
                })?;
            if wait <= 0.0 {
                return Ok(());
            }
            let wait = Duration::from_secs_f64(wait);
            if wait > self.max_wait {
                return Err(ConnectorError::new(
                    ErrorClass::RateLimited {
                        retry_after: Some(wait),
                    },
                    format!(
                        "the rate budget is spent for {} s; waiting for it later",
                        wait.as_secs()
                    ),
                ));
            }
            {
                let mut waited = self.waited.lock().unwrap_or_else(|e| e.into_inner());
                waited.times += 1;
                waited.seconds += wait.as_secs_f64();
            }
            tokio::time::sleep(wait).await;
        }
    }
}
