//! Webhooks in: `/hooks/{provider}/{install}`. A delivery is checked on its raw bytes against the
//! install's signing secret (constant-time, with the scheme's timestamp tolerance) before anything
//! reads it; then its delivery id is recorded once per install (a replay, or a provider's retry of
//! a delivery we already took, changes nothing) and an incremental sync is enqueued in the same
//! transaction. Bursts coalesce: while one sync of the install waits in the queue, more deliveries
//! join it rather than queue more.

use crate::domain::db::{self, Scope};
use crate::domain::installs::hooks;
use crate::domain::queue::{self, JobKind, NewJob, QueueError};
use crate::domain::AppState;
use connectors::webhooks::{verify, WebhookError};
use http::HeaderMap;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use uuid::Uuid;

/// Largest delivery body accepted (providers send single events, far smaller).
pub const MAX_BODY: usize = 256 * 1024;

/// What became of an accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A sync was enqueued (or one already waiting will take the change).
    Enqueued,
    /// This delivery id was received before: nothing more happens.
    Duplicate,
    /// Authentic, but the install is paused: the change is read when it resumes.
    Paused,
}

/// Why a delivery was refused. Nothing was recorded or enqueued for any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such install listening for this provider's webhooks.
    #[error("no install listens for these webhooks here")]
    NotFound,
    /// The install was uninstalled: the provider should stop sending.
    #[error("the install was uninstalled")]
    Gone,
    /// The install has no signing secret yet (the customer has not pasted it).
    #[error("the install has no signing secret yet")]
    NotReady,
    #[error("signature: {0}")]
    Signature(WebhookError),
    /// No delivery id in the header or body the provider's spec names.
    #[error("the delivery carries no id")]
    NoDeliveryId,
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// Our side failed; the provider should retry.
    #[error("internal error")]
    Internal,
}

impl From<sqlx::Error> for Refused {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "webhook: database error");
        Refused::Internal
    }
}

/// Checks and takes one delivery.
pub async fn receive(
    state: &AppState,
    provider: &str,
    install: Uuid,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<Accepted, Refused> {
    if body.len() > MAX_BODY {
        return Err(Refused::TooLarge);
    }
    let (pool, vault) = (&state.pool, &*state.vault);
    let spec = state
        .connect
        .spec(provider)
        .ok()
        .and_then(|s| s.webhooks.as_ref())
        .ok_or(Refused::NotFound)?;
    type Row = (Uuid, String, Vec<String>, Option<Vec<u8>>, Option<String>);
    let row: Option<Row> = {
        let mut tx = db::begin(pool, Scope::System).await?;
        let row = sqlx::query_as(
            "select i.tenant_id, i.status, i.triggers, i.webhook_secret_enc, \
                    v.recipe->>'source_provider' \
             from installs i join listing_versions v on v.id = i.listing_version_id \
             where i.id = $1",
        )
        .bind(install)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row
    };
    let (tenant, status, triggers, sealed, source) = row.ok_or(Refused::NotFound)?;
    if source.as_deref() != Some(provider) || !triggers.iter().any(|t| t == "webhook") {
        return Err(Refused::NotFound);
    }
    if status == "uninstalled" {
        return Err(Refused::Gone);
    }
    let secret = sealed
        .and_then(|s| hooks::open_secret(vault, tenant, install, &s))
        .ok_or(Refused::NotReady)?;
    verify(
        &spec.signature,
        secret.expose_secret().as_bytes(),
        headers,
        body,
        now_unix,
    )
    .map_err(Refused::Signature)?;
    // Authentic from here on: the body may be read.
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let pick = |header: &Option<String>, pointer: &Option<String>| -> Option<String> {
        header
            .as_deref()
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                let p = pointer.as_deref()?;
                let v = parsed.as_ref()?.pointer(p)?;
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.len() <= 200)
    };
    let delivery =
        pick(&spec.delivery_id_header, &spec.delivery_id_pointer).ok_or(Refused::NoDeliveryId)?;
    let event_type = pick(&spec.event_type_header, &spec.event_type_pointer);
    if status != "active" {
        return Ok(Accepted::Paused);
    }
    let mut tx = db::begin(pool, Scope::System).await?;
    let fresh = sqlx::query(
        "insert into webhook_deliveries (tenant_id, install_id, delivery_id, event_type) \
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(tenant)
    .bind(install)
    .bind(&delivery)
    .bind(&event_type)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        tx.commit().await?;
        return Ok(Accepted::Duplicate);
    }
    let job = NewJob {
        tenant,
        install,
        kind: JobKind::Incremental,
        trigger: "webhook".into(),
        run_at: None,
        payload: serde_json::json!({}),
    };
    match queue::enqueue_in(&mut tx, &job).await {
        Ok(_) | Err(QueueError::Busy) => {}
        Err(QueueError::Db(err)) => return Err(err.into()),
        Err(other) => {
            tracing::error!(error = %other, "webhook: enqueue failed");
            return Err(Refused::Internal);
        }
    }
    tx.commit().await?;
    Ok(Accepted::Enqueued)
}

/// Forgets deliveries older than `days` (dedupe only needs the providers' retry window).
pub async fn prune(pool: &PgPool, days: i32) -> sqlx::Result<u64> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let n = sqlx::query(
        "delete from webhook_deliveries where received_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n)
}
