//! An install's webhook subscription at its source: registered through the provider's API when
//! its spec says how (the sandbox apps), removed when the install stops listening or is
//! uninstalled. The signing secret the provider gives is sealed, bound to the install. For a
//! provider without such an API the customer registers the address at the provider and pastes
//! the signing secret ([`set_secret`]).

use super::{for_change, Install};
use crate::domain::connections::refresh::{self, UseError};
use crate::domain::connections::ConnectSettings;
use crate::domain::db::{self, Scope};
use crate::domain::vault::{Aad, Keyring};
use crate::domain::AppState;
use crate::error::AppError;
use connectors::engine::SpecSource;
use connectors::error::ErrorClass;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

/// The address a provider delivers an install's webhooks to.
pub fn url(public_url: &str, provider: &str, install: Uuid) -> String {
    format!("{public_url}/hooks/{provider}/{install}")
}

/// Whether the source's spec can register subscriptions itself.
pub fn automatic(settings: &ConnectSettings, install: &Install) -> bool {
    settings
        .spec(&install.recipe.source_provider)
        .ok()
        .and_then(|s| s.webhooks.as_ref())
        .is_some_and(|w| w.subscribe.is_some())
}

fn sealed_secret(vault: &Keyring, install: &Install, secret: &SecretString) -> Vec<u8> {
    vault.seal_str(secret, &Aad::install_webhook(install.tenant, install.id))
}

/// Opens an install's webhook signing secret.
pub fn open_secret(
    vault: &Keyring,
    tenant: Uuid,
    install: Uuid,
    sealed: &[u8],
) -> Option<SecretString> {
    vault
        .open_str(sealed, &Aad::install_webhook(tenant, install))
        .map_err(|err| {
            tracing::error!(%tenant, %install, error = %err, "an install's webhook secret does not open");
        })
        .ok()
}

/// Registers the install's webhook address at its source, when the source can do that over its
/// API, and stores the subscription. Without such an API nothing happens here: the install page
/// shows the address and asks for the signing secret.
pub async fn subscribe(state: &AppState, install: &Install) -> Result<(), AppError> {
    if !automatic(&state.connect, install) {
        return Ok(());
    }
    let Some(connection) = install.source_connection else {
        return Err(AppError::invalid(
            "connections",
            "Choose the source account first.",
        ));
    };
    let target = url(
        &state.connect.public_url,
        &install.recipe.source_provider,
        install.id,
    );
    let http = state.connect.http.clone();
    let result = refresh::with_credentials(
        &state.pool,
        &state.vault,
        &state.connect,
        install.tenant,
        connection,
        |conn| {
            let source = SpecSource::new(conn, http.clone());
            let target = target.clone();
            async move { source.subscribe_webhooks(&target).await }
        },
    )
    .await;
    let name =
        crate::domain::listings::recipe::providers().name_of(&install.recipe.source_provider);
    let subscription = match result {
        Ok(sub) => sub,
        Err(UseError::Provider(err)) => {
            tracing::warn!(install = %install.id, error = %err, "webhook subscription refused");
            return Err(AppError::invalid(
                "triggers",
                match err.class {
                    ErrorClass::Auth => format!("{name} refused the connection: reconnect it, then try again."),
                    ErrorClass::Transient | ErrorClass::RateLimited { .. } => {
                        format!("Could not reach {name} to register webhooks. Try again in a moment.")
                    }
                    ErrorClass::Permanent => format!(
                        "{name} would not register Patchbay's webhook address. Choose another trigger, or try again later."
                    ),
                },
            ));
        }
        Err(UseError::NotFound) => {
            return Err(AppError::invalid(
                "connections",
                "Choose the source account again.",
            ))
        }
        Err(UseError::Internal) => return Err(AppError::Internal),
    };
    let mut tx = db::begin(
        &state.pool,
        Scope::Tenant {
            tenant: install.tenant,
            user: None,
        },
    )
    .await?;
    sqlx::query(
        "update installs set webhook_subscription_id = $3, webhook_secret_enc = $4 \
         where tenant_id = $1 and id = $2",
    )
    .bind(install.tenant)
    .bind(install.id)
    .bind(&subscription.id)
    .bind(sealed_secret(&state.vault, install, &subscription.secret))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(install = %install.id, provider = %install.recipe.source_provider, "webhooks registered");
    Ok(())
}

/// Removes the subscription at the provider, as well as it can: a provider that cannot be
/// reached keeps sending to an address that refuses everything for an install that no longer
/// listens, which is harmless.
pub async fn unsubscribe(
    state: &AppState,
    install: &Install,
    connection: Uuid,
    subscription: &str,
) {
    let http = state.connect.http.clone();
    let result = refresh::with_credentials(
        &state.pool,
        &state.vault,
        &state.connect,
        install.tenant,
        connection,
        |conn| {
            let source = SpecSource::new(conn, http.clone());
            async move { source.unsubscribe_webhooks(subscription).await }
        },
    )
    .await;
    if let Err(err) = result {
        tracing::warn!(install = %install.id, error = %err, "could not remove the webhook subscription at the provider");
    }
}

/// Stops listening: the subscription removed at the provider and forgotten here.
pub async fn drop_subscription(state: &AppState, install: &Install) -> Result<(), AppError> {
    if let (Some(sub), Some(connection)) =
        (&install.webhook_subscription, install.source_connection)
    {
        unsubscribe(state, install, connection, sub).await;
    }
    let mut tx = db::begin(
        &state.pool,
        Scope::Tenant {
            tenant: install.tenant,
            user: None,
        },
    )
    .await?;
    sqlx::query(
        "update installs set webhook_subscription_id = null, webhook_secret_enc = null \
         where tenant_id = $1 and id = $2",
    )
    .bind(install.tenant)
    .bind(install.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores the signing secret a customer copied from a provider that has no subscription API.
pub async fn set_secret(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    secret: &SecretString,
) -> Result<(), AppError> {
    let value = secret.expose_secret().trim();
    if value.len() < 8
        || value.len() > 512
        || value.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(AppError::invalid(
            "secret",
            "Paste the signing secret exactly as the provider shows it (8 to 512 characters, no spaces).",
        ));
    }
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if !install.listens_for_webhooks() || automatic(&state.connect, &install) {
        return Err(AppError::invalid(
            "secret",
            "This install does not take a signing secret from you.",
        ));
    }
    sqlx::query("update installs set webhook_secret_enc = $3 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .bind(sealed_secret(
            &state.vault,
            &install,
            &SecretString::from(value.to_owned()),
        ))
        .execute(&mut *tx)
        .await?;
    crate::domain::audit::record(
        &mut tx,
        tenant,
        Some(user),
        "install.webhook_secret_set",
        serde_json::json!({ "install": id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Re-seals every install's webhook secret under the vault's current key, in batches (part of
/// `patchbay keys rotate`). Returns (re-sealed, the ids of those that did not open).
pub async fn rotate(pool: &PgPool, vault: &Keyring) -> anyhow::Result<(u64, Vec<Uuid>)> {
    const BATCH: i64 = 200;
    let current = i32::from(vault.current_id());
    let mut count = 0;
    let mut skip: Vec<Uuid> = Vec::new();
    loop {
        let mut tx = db::begin(pool, Scope::System).await?;
        let rows: Vec<(Uuid, Uuid, Vec<u8>)> = sqlx::query_as(
            "select tenant_id, id, webhook_secret_enc from installs \
             where webhook_secret_enc is not null and get_byte(webhook_secret_enc, 0) <> $1 \
             and id <> all($2) order by id limit $3 for update",
        )
        .bind(current)
        .bind(&skip)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        for (tenant, id, sealed) in rows {
            match vault.reseal(&sealed, &Aad::install_webhook(tenant, id)) {
                Ok(Some(new)) => {
                    sqlx::query("update installs set webhook_secret_enc = $3 where tenant_id = $1 and id = $2")
                        .bind(tenant)
                        .bind(id)
                        .bind(new)
                        .execute(&mut *tx)
                        .await?;
                    count += 1;
                }
                Ok(None) => {}
                Err(_) => skip.push(id),
            }
        }
        tx.commit().await?;
    }
    Ok((count, skip))
}
