//! Provider apps: the OAuth client Patchbay is registered as at each provider. Platform admins set
//! the platform's app per provider; a vendor may set its own, which its listings' connect flows use
//! instead. The client secret is sealed and bound to the app's row.

use super::{provider_spec, ConnectSettings};
use crate::domain::audit;
use crate::domain::db::{self, Scope};
use crate::domain::listings::recipe::providers;
use crate::domain::vault::{Aad, Keyring};
use crate::error::AppError;
use crate::model::connection::{ProviderAppView, ProviderAppsPage};
use connectors::oauth::OAuthApp;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

/// Whose apps: the platform's, or one vendor organization's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Platform,
    Vendor(Uuid),
}

impl Owner {
    fn scope(self) -> Scope {
        match self {
            Owner::Platform => Scope::System,
            Owner::Vendor(tenant) => Scope::Tenant { tenant, user: None },
        }
    }

    fn vendor(self) -> Option<Uuid> {
        match self {
            Owner::Platform => None,
            Owner::Vendor(v) => Some(v),
        }
    }
}

/// An app ready to use: its row id and the OAuth client settings.
pub struct ResolvedApp {
    pub id: Uuid,
    pub app: OAuthApp,
}

/// The providers an app can be registered for: those that connect with OAuth.
pub fn oauth_providers() -> Vec<(String, String)> {
    providers()
        .choices()
        .into_iter()
        .filter(|p| providers().get(&p.id).is_some_and(|s| s.oauth2().is_some()))
        .map(|p| (p.id, p.name))
        .collect()
}

/// The page of an owner's apps.
pub async fn page(
    pool: &PgPool,
    settings: &ConnectSettings,
    owner: Owner,
    vendor_name: Option<String>,
) -> Result<ProviderAppsPage, AppError> {
    let mut tx = db::begin(pool, owner.scope()).await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select provider, client_id, to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"') \
         from provider_apps where vendor_org_id is not distinct from $1 order by provider",
    )
    .bind(owner.vendor())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ProviderAppsPage {
        vendor: vendor_name,
        apps: rows
            .into_iter()
            .map(|(provider, client_id, updated_at)| ProviderAppView {
                provider_name: providers().name_of(&provider),
                provider,
                client_id,
                updated_at,
            })
            .collect(),
        oauth_providers: oauth_providers(),
        callback_url: settings.callback_url.clone(),
    })
}

fn check_client_id(client_id: &str) -> Result<&str, AppError> {
    let client_id = client_id.trim();
    if client_id.is_empty() {
        return Err(AppError::invalid("client_id", "Enter the client ID."));
    }
    if client_id.len() > 512 || client_id.chars().any(|c| c.is_control()) {
        return Err(AppError::invalid(
            "client_id",
            "A client ID is at most 512 characters, without line breaks.",
        ));
    }
    Ok(client_id)
}

/// Sets (or replaces) an owner's app for `provider`. A blank secret keeps the stored one; a new
/// app needs one.
pub async fn set(
    pool: &PgPool,
    vault: &Keyring,
    owner: Owner,
    actor: Uuid,
    provider: &str,
    client_id: &str,
    client_secret: &SecretString,
) -> Result<(), AppError> {
    let spec = provider_spec(provider)?;
    if spec.oauth2().is_none() {
        return Err(AppError::invalid(
            "provider",
            format!(
                "{} does not connect with OAuth, so it needs no app.",
                spec.name
            ),
        ));
    }
    let client_id = check_client_id(client_id)?;
    let secret = client_secret.expose_secret().trim();
    if secret.len() > 1024 || secret.chars().any(|c| c.is_control()) {
        return Err(AppError::invalid(
            "client_secret",
            "A client secret is at most 1024 characters, without line breaks.",
        ));
    }
    let mut tx = db::begin(pool, owner.scope()).await?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "select id from provider_apps where provider = $1 and vendor_org_id is not distinct from $2 \
         for update",
    )
    .bind(provider)
    .bind(owner.vendor())
    .fetch_optional(&mut *tx)
    .await?;
    let sealed = |id: Uuid| vault.seal(secret.as_bytes(), &Aad::provider_app(id));
    match existing {
        Some(id) if secret.is_empty() => {
            sqlx::query("update provider_apps set client_id = $2, updated_by = $3 where id = $1")
                .bind(id)
                .bind(client_id)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
        }
        Some(id) => {
            sqlx::query(
                "update provider_apps set client_id = $2, client_secret_enc = $3, updated_by = $4 \
                 where id = $1",
            )
            .bind(id)
            .bind(client_id)
            .bind(sealed(id))
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        }
        None if secret.is_empty() => {
            return Err(AppError::invalid(
                "client_secret",
                "Enter the client secret the provider gave you.",
            ));
        }
        None => {
            let id = Uuid::new_v4();
            sqlx::query(
                "insert into provider_apps (id, provider, vendor_org_id, client_id, client_secret_enc, updated_by) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(provider)
            .bind(owner.vendor())
            .bind(client_id)
            .bind(sealed(id))
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        }
    }
    if let Owner::Vendor(vendor) = owner {
        audit::record(
            &mut tx,
            vendor,
            Some(actor),
            "provider_app.set",
            serde_json::json!({ "provider": provider, "client_id": client_id }),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(provider, ?owner, "provider app set");
    Ok(())
}

/// Removes an owner's app. Connections made through it keep working until their tokens need
/// refreshing, which then fails and asks the customer to reconnect.
pub async fn remove(
    pool: &PgPool,
    owner: Owner,
    actor: Uuid,
    provider: &str,
) -> Result<(), AppError> {
    let mut tx = db::begin(pool, owner.scope()).await?;
    let done = sqlx::query(
        "delete from provider_apps where provider = $1 and vendor_org_id is not distinct from $2",
    )
    .bind(provider)
    .bind(owner.vendor())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(AppError::not_found(
            "No app is registered for that provider.",
        ));
    }
    if let Owner::Vendor(vendor) = owner {
        audit::record(
            &mut tx,
            vendor,
            Some(actor),
            "provider_app.removed",
            serde_json::json!({ "provider": provider }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Registers (or re-registers) the platform app for `provider`: the bundled sandbox's in demo
/// mode, sealed again under the current key at every start.
pub async fn set_platform_app(
    pool: &PgPool,
    vault: &Keyring,
    provider: &str,
    client_id: &str,
    client_secret: &SecretString,
) -> Result<(), AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "select id from provider_apps where provider = $1 and vendor_org_id is null for update",
    )
    .bind(provider)
    .fetch_optional(&mut *tx)
    .await?;
    // The secret is sealed for the row's id, so an existing row keeps its id.
    let id = existing.unwrap_or_else(Uuid::new_v4);
    sqlx::query(
        "insert into provider_apps (id, provider, client_id, client_secret_enc) values ($1, $2, $3, $4) \
         on conflict (id) do update set client_id = excluded.client_id, client_secret_enc = excluded.client_secret_enc",
    )
    .bind(id)
    .bind(provider)
    .bind(client_id)
    .bind(vault.seal_str(client_secret, &Aad::provider_app(id)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

type AppRow = (Uuid, String, Vec<u8>);

fn resolve(
    vault: &Keyring,
    settings: &ConnectSettings,
    (id, client_id, sealed): AppRow,
) -> Result<ResolvedApp, AppError> {
    let client_secret = vault
        .open_str(&sealed, &Aad::provider_app(id))
        .map_err(|err| {
            tracing::error!(app = %id, error = %err, "a provider app's secret does not open");
            AppError::Internal
        })?;
    Ok(ResolvedApp {
        id,
        app: OAuthApp {
            client_id,
            client_secret,
            redirect_url: settings.callback_url.clone(),
        },
    })
}

/// The app a connect flow uses: the listing vendor's own for `provider` if it set one, else the
/// platform's. Platform work: a customer's flow reads an app it does not own.
pub async fn for_connect(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    provider: &str,
    vendor: Option<Uuid>,
) -> Result<Option<ResolvedApp>, AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let row: Option<AppRow> = sqlx::query_as(
        "select id, client_id, client_secret_enc from provider_apps \
         where provider = $1 and (vendor_org_id = $2 or vendor_org_id is null) \
         order by vendor_org_id nulls last limit 1",
    )
    .bind(provider)
    .bind(vendor)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    row.map(|row| resolve(vault, settings, row)).transpose()
}

/// Which providers have an app a connect flow could use, for `vendor`'s listings.
pub async fn ready_providers(pool: &PgPool, vendor: Option<Uuid>) -> Result<Vec<String>, AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let rows: Vec<String> = sqlx::query_scalar(
        "select distinct provider from provider_apps where vendor_org_id = $1 or vendor_org_id is null",
    )
    .bind(vendor)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// The app that issued a connection's tokens, to refresh or revoke them.
pub async fn by_id(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    id: Uuid,
) -> Result<Option<ResolvedApp>, AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let row: Option<AppRow> =
        sqlx::query_as("select id, client_id, client_secret_enc from provider_apps where id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    row.map(|row| resolve(vault, settings, row)).transpose()
}
