//! Disconnecting: revoke the grant at the provider when its spec allows, forget the credentials,
//! keep the row (installs and history refer to it) as `revoked`.

use super::{apps, issuing_app, no_connection, require_manager, ConnectSettings, Fields, Secrets};
use crate::domain::audit;
use crate::domain::db;
use crate::domain::vault::Keyring;
use crate::error::AppError;
use connectors::spec::ProviderSpec;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a disconnect did at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Revocation {
    /// The provider confirmed the revocation.
    Revoked,
    /// The provider has no revocation endpoint (or the connection holds no token).
    NotSupported,
    /// The provider could not be reached or refused; the credentials are deleted anyway.
    Failed,
}

/// Disconnects: revokes the token at the provider when its spec allows, deletes the credentials,
/// and marks the connection `revoked`. Audited.
pub async fn disconnect(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<Revocation, AppError> {
    // The app that issued the tokens, read before the row lock is taken (see `refresh`).
    let app_id: Option<Uuid> = {
        let mut tx = db::tenant_tx(pool, tenant, user).await?;
        require_manager(&mut tx, tenant, user).await?;
        let app = issuing_app(&mut tx, tenant, id).await?;
        tx.commit().await?;
        app.ok_or_else(no_connection)?
    };
    let app = match app_id {
        Some(app) => apps::by_id(pool, vault, settings, app).await?,
        None => None,
    };
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    type Row = (
        String,
        Option<Uuid>,
        Option<Vec<u8>>,
        sqlx::types::Json<Fields>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select provider, provider_app_id, credentials_enc, vars from connections \
         where tenant_id = $1 and id = $2 for update",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (provider, locked_app, sealed, vars) = row.ok_or_else(no_connection)?;
    // Reconnected through another app meanwhile: the tokens are that app's.
    let app = app.filter(|_| locked_app == app_id);
    let revocation = match (sealed, settings.spec(&provider).ok()) {
        (Some(sealed), Some(spec)) => {
            revoke(
                vault,
                settings,
                spec,
                tenant,
                id,
                app.as_ref(),
                &vars.0,
                &sealed,
            )
            .await
        }
        _ => Revocation::NotSupported,
    };
    sqlx::query(
        "update connections set status = 'revoked', credentials_enc = null, expires_at = null, \
         status_reason = null where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        "connection.disconnected",
        serde_json::json!({ "connection": id, "provider": provider, "revocation": format!("{revocation:?}") }),
    )
    .await?;
    tx.commit().await?;
    Ok(revocation)
}

/// Revokes a connection's token at the provider, best effort.
#[expect(
    clippy::too_many_arguments,
    reason = "the connection's parts, read under its lock, each named"
)]
async fn revoke(
    vault: &Keyring,
    settings: &ConnectSettings,
    spec: &ProviderSpec,
    tenant: Uuid,
    id: Uuid,
    app: Option<&apps::ResolvedApp>,
    vars: &BTreeMap<String, String>,
    sealed: &[u8],
) -> Revocation {
    let Some(oauth) = spec.oauth2() else {
        return Revocation::NotSupported;
    };
    if oauth.revoke_url.is_none() {
        return Revocation::NotSupported;
    }
    let secrets = match Secrets::open(vault, sealed, tenant, id) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(connection = %id, error = %err, "credentials do not open; deleting without revoking");
            return Revocation::Failed;
        }
    };
    let Some(app) = app else {
        return Revocation::Failed;
    };
    let client = match settings.oauth_client(spec, &app.app, vars) {
        Ok(c) => c,
        Err(err) => {
            tracing::warn!(connection = %id, error = %err, "cannot build the OAuth client to revoke");
            return Revocation::Failed;
        }
    };
    // Revoking the refresh token ends the whole grant at providers that support it (RFC 7009
    // §2.1); the access token otherwise.
    let (token, is_refresh) = match (secrets.refresh_token(), &secrets.access_token) {
        (Some(refresh), _) => (refresh, true),
        (None, Some(access)) => (SecretString::from(access.clone()), false),
        (None, None) => return Revocation::NotSupported,
    };
    match client.revoke(&token, is_refresh).await {
        Ok(true) => Revocation::Revoked,
        Ok(false) => Revocation::NotSupported,
        Err(err) => {
            tracing::warn!(connection = %id, error = %err, "revocation at the provider failed");
            Revocation::Failed
        }
    }
}
