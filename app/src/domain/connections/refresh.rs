//! Usable credentials for a connection, refreshing OAuth tokens when they are about to expire,
//! when a call was refused with 401, and from a periodic sweep.
//!
//! One refresh runs per connection at a time across every process: the refresh takes the
//! connection's row lock (`select … for update`), then reads the row again. Whoever waited finds
//! the tokens the first one stored and uses them instead of refreshing again (which, with refresh
//! token rotation, would present a spent token and lose the grant). A rotated refresh token is
//! stored in the same transaction as the new access token. A refusal (`invalid_grant`) marks the
//! connection `needs_reauth`, with a reason the customer sees.
//!
//! The app that issued the tokens is read before the lock is taken, so that a transaction holding
//! the lock never waits for a second pooled connection (with every pooled connection held by a
//! waiter, it would never get one). And the refresh runs in a task of its own: once the provider
//! has rotated the refresh token, the new one is stored even if the caller is cancelled (a closed
//! browser tab, a timeout), since the old one no longer works.

use super::{apps, engine_connection, issuing_app, ConnectSettings, Secrets};
use crate::domain::db::{self, Scope};
use crate::domain::vault::Keyring;
use connectors::engine::{Connection, Credentials};
use connectors::error::{ConnectorError, ErrorClass};
use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Tokens expiring within this are refreshed before use. A token that lives less than twice as
/// long is refreshed when half its life is left, not as soon as it is issued: otherwise every
/// caller arriving after a renewal would find the fresh token due and renew it again.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(120);

/// Why credentials could not be had.
#[derive(Debug)]
pub enum UseError {
    /// No such connection in the tenant.
    NotFound,
    /// Our side failed (the database, or credentials that do not open); details are logged.
    Internal,
    /// The provider, or the connection's state: `Auth` means the customer must reconnect.
    Provider(ConnectorError),
}

impl From<sqlx::Error> for UseError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error while loading credentials");
        UseError::Internal
    }
}

impl std::fmt::Display for UseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UseError::NotFound => f.write_str("no such connection"),
            UseError::Internal => f.write_str("internal error"),
            UseError::Provider(err) => write!(f, "{err}"),
        }
    }
}

/// Why a refresh is asked for.
enum Why {
    /// The token expires within `ahead`; `seen` is when it was last renewed, as read before
    /// waiting for the lock (a change means someone else renewed it meanwhile).
    Expiring {
        ahead: Duration,
        seen: Option<OffsetDateTime>,
    },
    /// The provider refused this access token (401).
    Rejected(String),
}

struct Loaded {
    provider: String,
    auth_kind: String,
    app: Option<Uuid>,
    status: String,
    reason: Option<String>,
    vars: BTreeMap<String, String>,
    sealed: Option<Vec<u8>>,
    due: bool,
    refreshed_at: Option<OffsetDateTime>,
}

async fn load(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    ahead: Duration,
    lock: bool,
) -> Result<Option<Loaded>, sqlx::Error> {
    type Row = (
        String,
        String,
        Option<Uuid>,
        String,
        Option<String>,
        sqlx::types::Json<BTreeMap<String, String>>,
        Option<Vec<u8>>,
        bool,
        Option<OffsetDateTime>,
    );
    let sql = format!(
        "select provider, auth_kind, provider_app_id, status, status_reason, vars, credentials_enc, \
         coalesce(expires_at < now() + least(make_interval(secs => $3), \
                  greatest(coalesce((expires_at - refreshed_at) / 2, make_interval(secs => $3)), interval '0')), \
                  false), \
         refreshed_at \
         from connections where tenant_id = $1 and id = $2{}",
        if lock { " for update" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(tenant)
        .bind(id)
        .bind(ahead.as_secs_f64())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(
        |(provider, auth_kind, app, status, reason, vars, sealed, due, refreshed_at)| Loaded {
            provider,
            auth_kind,
            app,
            status,
            reason,
            vars: vars.0,
            sealed,
            due,
            refreshed_at,
        },
    ))
}

impl Loaded {
    fn spec<'s>(
        &self,
        settings: &'s ConnectSettings,
    ) -> Result<&'s connectors::spec::ProviderSpec, UseError> {
        settings.spec(&self.provider).map_err(|_| {
            tracing::error!(provider = %self.provider, "a connection names an unknown provider");
            UseError::Internal
        })
    }

    /// Refuses a connection that is not active, in the words stored for the customer.
    fn usable(&self) -> Result<(), UseError> {
        if self.status == "active" {
            return Ok(());
        }
        let message = self.reason.clone().unwrap_or_else(|| {
            if self.status == "revoked" {
                "The connection was disconnected.".to_owned()
            } else {
                "The connection needs reconnecting.".to_owned()
            }
        });
        Err(UseError::Provider(ConnectorError::auth(message)))
    }

    fn secrets(&self, vault: &Keyring, tenant: Uuid, id: Uuid) -> Result<Secrets, UseError> {
        let sealed = self.sealed.as_deref().ok_or(UseError::Internal)?;
        Secrets::open(vault, sealed, tenant, id).map_err(|err| {
            // Moved from another row, tampered with, or sealed under a key no longer held.
            tracing::error!(%tenant, connection = %id, error = %err, "connection credentials do not open");
            UseError::Internal
        })
    }
}

/// The connection ready for requests. OAuth tokens that expire within [`REFRESH_AHEAD`] are
/// refreshed first.
pub async fn credentials(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    id: Uuid,
) -> Result<Connection, UseError> {
    let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
    let row = load(&mut tx, tenant, id, REFRESH_AHEAD, false)
        .await?
        .ok_or(UseError::NotFound)?;
    row.usable()?;
    if row.auth_kind == "oauth2" && row.due {
        tx.commit().await?;
        let why = Why::Expiring {
            ahead: REFRESH_AHEAD,
            seen: row.refreshed_at,
        };
        return detached(pool, vault, settings, tenant, id, why).await;
    }
    let secrets = row.secrets(vault, tenant, id)?;
    // Written at most once a minute, so a busy connection does not write on every call.
    sqlx::query(
        "update connections set last_used_at = now() where tenant_id = $1 and id = $2 \
         and (last_used_at is null or last_used_at < now() - interval '1 minute')",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(engine_connection(
        settings,
        row.spec(settings)?,
        &row.vars,
        &secrets,
    ))
}

/// New credentials after the provider refused `failed` with a 401: a refresh, unless another job
/// already refreshed since.
pub async fn after_unauthorized(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    id: Uuid,
    failed: &Connection,
) -> Result<Connection, UseError> {
    let Credentials::OAuth2 { access_token } = &failed.credentials else {
        // A key or password the provider refuses cannot be refreshed: the customer must enter
        // a new one.
        let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
        mark_needs_reauth(
            &mut tx,
            tenant,
            id,
            "The provider no longer accepts these credentials. Reconnect with new ones.",
        )
        .await?;
        tx.commit().await?;
        return Err(UseError::Provider(ConnectorError::auth(
            "the provider refused the connection's credentials",
        )));
    };
    let why = Why::Rejected(access_token.expose_secret().to_owned());
    detached(pool, vault, settings, tenant, id, why).await
}

/// [`refresh`] in a task of its own, so that it runs to the end (storing what the provider
/// returned) even if the caller is dropped.
async fn detached(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    id: Uuid,
    why: Why,
) -> Result<Connection, UseError> {
    let (pool, vault, settings) = (pool.clone(), vault.clone(), settings.clone());
    tokio::spawn(async move { refresh(&pool, &vault, &settings, tenant, id, why).await })
        .await
        .unwrap_or_else(|err| {
            tracing::error!(%tenant, connection = %id, error = %err, "the refresh task failed");
            Err(UseError::Internal)
        })
}

/// Runs `call` with the connection's credentials; after a 401, refreshes once and runs it again.
pub async fn with_credentials<T, F, Fut>(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    id: Uuid,
    call: F,
) -> Result<T, UseError>
where
    F: Fn(Connection) -> Fut,
    Fut: Future<Output = Result<T, ConnectorError>>,
{
    let conn = credentials(pool, vault, settings, tenant, id).await?;
    match call(conn.clone()).await {
        Err(err) if err.class == ErrorClass::Auth => {
            let fresh = after_unauthorized(pool, vault, settings, tenant, id, &conn).await?;
            call(fresh).await.map_err(UseError::Provider)
        }
        other => other.map_err(UseError::Provider),
    }
}

async fn mark_needs_reauth(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update connections set status = 'needs_reauth', status_reason = $3 \
         where tenant_id = $1 and id = $2 and status = 'active'",
    )
    .bind(tenant)
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    tracing::warn!(%tenant, connection = %id, reason, "connection needs reconnecting");
    Ok(())
}

/// The refresh itself, under the connection's row lock.
async fn refresh(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    id: Uuid,
    why: Why,
) -> Result<Connection, UseError> {
    let ahead = match why {
        Why::Expiring { ahead, .. } => ahead,
        Why::Rejected(_) => REFRESH_AHEAD,
    };
    // The app first, outside the lock (see the module docs).
    let app_id: Option<Uuid> = {
        let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
        let app = issuing_app(&mut tx, tenant, id)
            .await?
            .ok_or(UseError::NotFound)?;
        tx.commit().await?;
        app
    };
    let app = match app_id {
        Some(app) => apps::by_id(pool, vault, settings, app)
            .await
            .map_err(|_| UseError::Internal)?,
        None => None,
    };
    let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
    // Waits here while another process refreshes this connection.
    let row = load(&mut tx, tenant, id, ahead, true)
        .await?
        .ok_or(UseError::NotFound)?;
    row.usable()?;
    let spec = row.spec(settings)?;
    let secrets = row.secrets(vault, tenant, id)?;
    let already_done = row.app != app_id
        || match &why {
            Why::Expiring { seen, .. } => !row.due || row.refreshed_at != *seen,
            Why::Rejected(failed) => secrets.access_token.as_deref() != Some(failed.as_str()),
        };
    if already_done {
        tx.commit().await?;
        return Ok(engine_connection(settings, spec, &row.vars, &secrets));
    }
    let Some(refresh_token) = secrets.refresh_token() else {
        let reason = format!(
            "{} gave no way to renew access when this account was connected. Reconnect to continue.",
            spec.name
        );
        mark_needs_reauth(&mut tx, tenant, id, &reason).await?;
        tx.commit().await?;
        return Err(UseError::Provider(ConnectorError::auth(reason)));
    };
    let Some(app) = app else {
        let reason = "The app this account was connected through is no longer registered. Reconnect to continue.";
        mark_needs_reauth(&mut tx, tenant, id, reason).await?;
        tx.commit().await?;
        return Err(UseError::Provider(ConnectorError::auth(reason)));
    };
    let client = settings
        .oauth_client(spec, &app.app, &row.vars)
        .map_err(UseError::Provider)?;
    match client.refresh(&refresh_token).await {
        Ok(tokens) => {
            let fresh = Secrets {
                access_token: Some(tokens.access_token.expose_secret().to_owned()),
                refresh_token: tokens
                    .refresh_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                fields: secrets.fields.clone(),
            };
            let mut kept = row.vars.clone();
            kept.extend(tokens.fields.clone());
            sqlx::query(
                "update connections set credentials_enc = $3, vars = $4, \
                 scopes = case when cardinality($5::text[]) = 0 then scopes else $5 end, \
                 expires_at = now() + make_interval(secs => $6), refreshed_at = now(), last_used_at = now(), \
                 refresh_failed_at = null \
                 where tenant_id = $1 and id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(fresh.seal(vault, tenant, id))
            .bind(sqlx::types::Json(&kept))
            .bind(&tokens.scopes)
            .bind(tokens.expires_in.map(|d| d.as_secs_f64()))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(%tenant, connection = %id, provider = %spec.id, "access token refreshed");
            metrics::counter!("patchbay_token_refreshes_total", "provider" => spec.id.clone(), "outcome" => "refreshed").increment(1);
            Ok(engine_connection(settings, spec, &kept, &fresh))
        }
        Err(err) if err.class == ErrorClass::Auth => {
            let reason = format!(
                "{} no longer accepts this connection (its access was revoked or expired). Reconnect to continue.",
                spec.name
            );
            mark_needs_reauth(&mut tx, tenant, id, &reason).await?;
            tx.commit().await?;
            metrics::counter!("patchbay_token_refreshes_total", "provider" => spec.id.clone(), "outcome" => "refused").increment(1);
            Err(UseError::Provider(err))
        }
        // Transient or unexpected: nothing changes; the caller retries later.
        Err(err) => {
            metrics::counter!("patchbay_token_refreshes_total", "provider" => spec.id.clone(), "outcome" => "failed").increment(1);
            Err(UseError::Provider(err))
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub refreshed: usize,
    pub failed: usize,
}

/// Refreshes up to `limit` active OAuth connections whose tokens expire within `ahead`, and
/// deletes expired OAuth flows. Any number of processes may sweep at once: each connection's
/// refresh re-checks under its lock. A connection whose refresh fails (the provider down, an app
/// the provider no longer knows) is left alone for ten minutes, so that a few failing ones cannot
/// keep the sweep from the others.
pub async fn sweep(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    ahead: Duration,
    limit: i64,
) -> Result<SweepReport, sqlx::Error> {
    let mut tx = db::begin(pool, Scope::System).await?;
    sqlx::query("delete from oauth_flows where expires_at < now()")
        .execute(&mut *tx)
        .await?;
    let due: Vec<(Uuid, Uuid, Option<OffsetDateTime>)> = sqlx::query_as(
        "select tenant_id, id, refreshed_at from connections \
         where status = 'active' and auth_kind = 'oauth2' and expires_at < now() + make_interval(secs => $1) \
         and (refresh_failed_at is null or refresh_failed_at < now() - interval '10 minutes') \
         order by expires_at limit $2",
    )
    .bind(ahead.as_secs_f64())
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut report = SweepReport::default();
    for (tenant, id, seen) in due {
        match refresh(
            pool,
            vault,
            settings,
            tenant,
            id,
            Why::Expiring { ahead, seen },
        )
        .await
        {
            Ok(_) => report.refreshed += 1,
            Err(err) => {
                tracing::info!(%tenant, connection = %id, error = %err, "sweep: refresh failed");
                report.failed += 1;
                let mut tx = db::begin(pool, Scope::Tenant { tenant, user: None }).await?;
                sqlx::query(
                    "update connections set refresh_failed_at = now() where tenant_id = $1 and id = $2",
                )
                .bind(tenant)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
    }
    Ok(report)
}
