//! Connections: a tenant's linked accounts at third-party providers.
//!
//! A connection holds its secrets (OAuth tokens, or the API key or password the customer typed)
//! sealed by the vault and bound to its tenant and id, its non-secret inputs (a Shopify shop), the
//! account label the provider's check call gave, and a status: `active`, `needs_reauth` (the
//! provider refused its tokens: the customer must reconnect, which keeps the id so installs go on)
//! or `revoked` (disconnected, no credentials kept).
//!
//! - [`apps`]: the OAuth apps Patchbay is registered as.
//! - [`flows`]: connecting with OAuth (start, callback).
//! - [`refresh`]: usable credentials for the sync engine, with single-flight token refresh.
//! - `disconnect`: revoking at the provider and forgetting the credentials; `rotate`: re-sealing
//!   every stored secret under a new key.

pub mod apps;
mod disconnect;
pub mod flows;
pub mod refresh;
mod rotate;
mod view;

pub use disconnect::{disconnect, Revocation};
pub use rotate::rotate_keys;
pub use view::{connect_provider, get, list};

use crate::domain::audit;
use crate::domain::db;
use crate::domain::listings::recipe::providers;
use crate::domain::vault::{Aad, Keyring, VaultError};
use crate::error::AppError;
use crate::model::connection::{AuthKind, ConnectionView};
use crate::model::Role;
use connectors::engine::{Connection, Credentials, SpecSource};
use connectors::error::{ConnectorError, ErrorClass};
use connectors::http::{HttpConfig, OutboundClient};
use connectors::spec::{AuthSpec, ProviderSpec};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// How connections reach providers: the provider specs, the outbound HTTP client, the platform's
/// template variables (`sandbox_url`), and the OAuth callback URL registered at providers.
#[derive(Clone, Debug)]
pub struct ConnectSettings {
    pub http: OutboundClient,
    pub platform_vars: BTreeMap<String, String>,
    /// `{public_url}/oauth/callback`, exactly as registered at each provider.
    pub callback_url: String,
    /// Where people and providers reach Patchbay, without a trailing slash (webhook addresses
    /// are made from it).
    pub public_url: String,
    /// The specs connections use, by id: the built-in ones unless replaced with
    /// [`ConnectSettings::with_spec`] (a provider's API at another address, such as a local fake
    /// of its documented API in tests, or a regional endpoint).
    specs: BTreeMap<String, Arc<ProviderSpec>>,
}

impl ConnectSettings {
    pub fn new(
        public_url: &str,
        http: HttpConfig,
        platform_vars: BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        Ok(ConnectSettings {
            http: OutboundClient::new(http)
                .map_err(|e| anyhow::anyhow!("the outbound HTTP client: {e}"))?,
            platform_vars,
            callback_url: format!("{}/oauth/callback", public_url.trim_end_matches('/')),
            public_url: public_url.trim_end_matches('/').to_owned(),
            specs: providers()
                .all()
                .map(|s| (s.id.clone(), Arc::new(s.clone())))
                .collect(),
        })
    }

    /// Uses `spec` for its provider id instead of the built-in one.
    pub fn with_spec(mut self, spec: ProviderSpec) -> Self {
        self.specs.insert(spec.id.clone(), Arc::new(spec));
        self
    }

    /// The platform's variables with a connection's (or a flow's) own on top: what provider
    /// templates are rendered with.
    pub fn vars_with(&self, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut all = self.platform_vars.clone();
        all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }

    /// An OAuth client for `spec` through `app`, with a connection's variables.
    pub fn oauth_client(
        &self,
        spec: &ProviderSpec,
        app: &connectors::oauth::OAuthApp,
        vars: &BTreeMap<String, String>,
    ) -> Result<connectors::oauth::OAuthClient, ConnectorError> {
        connectors::oauth::OAuthClient::new(spec, app, &self.vars_with(vars), self.http.clone())
    }

    /// The spec of a provider, or NotFound.
    pub fn spec(&self, id: &str) -> Result<&ProviderSpec, AppError> {
        self.specs
            .get(id)
            .map(|s| s.as_ref())
            .ok_or_else(|| AppError::not_found("Patchbay does not know that provider."))
    }
}

/// Time format of every timestamp shown on connection pages.
const STAMP: &str = "'YYYY-MM-DD HH24:MI \"UTC\"'";

/// A built-in provider's spec, or NotFound.
pub fn provider_spec(id: &str) -> Result<&'static ProviderSpec, AppError> {
    providers()
        .get(id)
        .ok_or_else(|| AppError::not_found("Patchbay does not know that provider."))
}

fn auth_kind(spec: &ProviderSpec) -> Option<AuthKind> {
    match spec.auth {
        AuthSpec::OAuth2(_) => Some(AuthKind::OAuth2),
        AuthSpec::ApiKey { .. } => Some(AuthKind::ApiKey),
        AuthSpec::Basic => Some(AuthKind::Basic),
        AuthSpec::None => None,
    }
}

/// The secrets of a connection, as sealed (JSON). Short-lived: opened, turned into
/// [`Credentials`], dropped. Its `Debug` shows nothing.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Secret inputs by field name (an API key, a password).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(…)")
    }
}

impl Secrets {
    fn seal(&self, vault: &Keyring, tenant: Uuid, id: Uuid) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("secrets serialize");
        vault.seal(&json, &Aad::connection(tenant, id))
    }

    fn open(vault: &Keyring, sealed: &[u8], tenant: Uuid, id: Uuid) -> Result<Self, VaultError> {
        let bytes = vault.open(sealed, &Aad::connection(tenant, id))?;
        serde_json::from_slice(bytes.expose_secret()).map_err(|_| VaultError::Forged)
    }

    fn refresh_token(&self) -> Option<SecretString> {
        self.refresh_token.clone().map(SecretString::from)
    }

    /// Credentials for requests, as the spec authenticates.
    fn credentials(&self, spec: &ProviderSpec, vars: &BTreeMap<String, String>) -> Credentials {
        let secret =
            |name: &str| SecretString::from(self.fields.get(name).cloned().unwrap_or_default());
        match &spec.auth {
            AuthSpec::OAuth2(_) => Credentials::OAuth2 {
                access_token: SecretString::from(self.access_token.clone().unwrap_or_default()),
            },
            AuthSpec::ApiKey { .. } => Credentials::ApiKey {
                key: secret(&key_field(spec)),
            },
            AuthSpec::Basic => Credentials::Basic {
                username: vars
                    .get("username")
                    .or_else(|| self.fields.get("username"))
                    .cloned()
                    .unwrap_or_default(),
                password: secret("password"),
            },
            AuthSpec::None => Credentials::None,
        }
    }
}

/// The connection field that holds an API key: the spec's first secret field.
fn key_field(spec: &ProviderSpec) -> String {
    spec.connection_fields
        .iter()
        .find(|f| f.secret)
        .map(|f| f.name.clone())
        .unwrap_or_else(|| "api_key".to_owned())
}

/// The engine's view of a connection: spec, credentials and template variables.
fn engine_connection(
    settings: &ConnectSettings,
    spec: &ProviderSpec,
    vars: &BTreeMap<String, String>,
    secrets: &Secrets,
) -> Connection {
    let all = settings.vars_with(vars);
    Connection {
        credentials: secrets.credentials(spec, &all),
        spec: Arc::new(spec.clone()),
        vars: all,
    }
}

/// The user's role in `tenant`; Forbidden when they do not belong to it.
async fn member_role(conn: &mut PgConnection, tenant: Uuid, user: Uuid) -> Result<Role, AppError> {
    crate::domain::orgs::member_role(conn, tenant, user)
        .await?
        .ok_or_else(|| AppError::forbidden("Switch to an organization you belong to."))
}

/// Owners and admins connect and disconnect accounts; members see them.
async fn require_manager(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<(), AppError> {
    if member_role(conn, tenant, user).await? >= Role::Admin {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "Only owners and admins of the organization connect and disconnect accounts.",
        ))
    }
}

/// The app that issued a connection's tokens: None when there is no such connection in the
/// tenant, Some(None) when it was made without one (API keys).
async fn issuing_app(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<Option<Uuid>>> {
    sqlx::query_scalar("select provider_app_id from connections where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await
}

fn no_connection() -> AppError {
    AppError::not_found("No such connection in this organization.")
}

type Fields = BTreeMap<String, String>;

/// Whether reconnecting `id` can go through the app it was made with (still registered), even
/// where no app would serve a new connection.
pub async fn reconnect_ready(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<bool, AppError> {
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    let app = issuing_app(&mut tx, tenant, id).await?;
    tx.commit().await?;
    Ok(match app.flatten() {
        Some(app) => apps::by_id(pool, vault, settings, app).await?.is_some(),
        None => false,
    })
}

/// Checks the inputs a connect form sent for `spec`: every field present and well-formed. Returns
/// (non-secret values, secret values).
fn check_fields(
    spec: &ProviderSpec,
    inputs: &BTreeMap<String, String>,
) -> Result<(Fields, Fields), AppError> {
    let mut plain = BTreeMap::new();
    let mut secret = BTreeMap::new();
    for field in &spec.connection_fields {
        let raw = inputs.get(&field.name).map(String::as_str).unwrap_or("");
        let value = if field.secret { raw } else { raw.trim() };
        field
            .check(value)
            .map_err(|message| AppError::invalid(&format!("fields.{}", field.name), message))?;
        if field.secret {
            secret.insert(field.name.clone(), value.to_owned());
        } else {
            plain.insert(field.name.clone(), value.to_owned());
        }
    }
    Ok((plain, secret))
}

/// Words for a failed check call, without the provider's own text (which may echo input).
fn check_failure(spec: &ProviderSpec, err: &ConnectorError) -> AppError {
    tracing::info!(provider = %spec.id, error = %err, "connection check failed");
    let message = match err.class {
        ErrorClass::Auth => format!("{} did not accept these credentials.", spec.name),
        ErrorClass::Permanent if err.status == Some(403) => format!(
            "{} accepted these credentials but refused the test call: they may lack a permission.",
            spec.name
        ),
        ErrorClass::Permanent => format!(
            "{} refused the test call with these credentials. Check them and try again.",
            spec.name
        ),
        ErrorClass::Transient | ErrorClass::RateLimited { .. } => format!(
            "Could not reach {} to check these credentials. Try again in a moment.",
            spec.name
        ),
    };
    AppError::invalid("fields", message)
}

/// Connects (or, with `reconnect`, re-keys) an API-key or username-and-password account: checks
/// the credentials with the provider's check call, then saves them sealed.
#[expect(
    clippy::too_many_arguments,
    reason = "a connect form's parts and who sent it, each named at the call"
)]
pub async fn connect_with_fields(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    provider: &str,
    reconnect: Option<Uuid>,
    inputs: &BTreeMap<String, String>,
) -> Result<Uuid, AppError> {
    let spec = settings.spec(provider)?;
    let kind = match auth_kind(spec) {
        Some(AuthKind::OAuth2) => {
            return Err(AppError::invalid(
                "provider",
                format!(
                    "{} connects by signing in there, not with a form.",
                    spec.name
                ),
            ));
        }
        Some(kind) => kind,
        None => {
            return Err(AppError::invalid(
                "provider",
                format!("{} needs no connection.", spec.name),
            ));
        }
    };
    {
        let mut tx = db::tenant_tx(pool, tenant, user).await?;
        require_manager(&mut tx, tenant, user).await?;
        if let Some(id) = reconnect {
            existing_provider(&mut tx, tenant, id, provider).await?;
        }
        tx.commit().await?;
    }
    let (plain, secret) = check_fields(spec, inputs)?;
    let secrets = Secrets {
        fields: secret,
        ..Secrets::default()
    };
    let connection = engine_connection(settings, spec, &plain, &secrets);
    let label = SpecSource::new(connection, settings.http.clone())
        .check()
        .await
        .map_err(|err| check_failure(spec, &err))?;

    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    let id = reconnect.unwrap_or_else(Uuid::new_v4);
    let sealed = secrets.seal(vault, tenant, id);
    let saved = save(
        &mut tx,
        Saved {
            tenant,
            id,
            user,
            provider,
            kind,
            app: None,
            vars: &plain,
            scopes: &[],
            sealed: &sealed,
            expires_in: None,
            label: label.as_deref(),
            reconnect: reconnect.is_some(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Checks that `id` is one of the tenant's connections to `provider`.
async fn existing_provider(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    provider: &str,
) -> Result<(), AppError> {
    let found: Option<String> =
        sqlx::query_scalar("select provider from connections where tenant_id = $1 and id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    match found {
        Some(p) if p == provider => Ok(()),
        Some(_) => Err(AppError::invalid(
            "connection",
            "That connection is to another provider.",
        )),
        None => Err(no_connection()),
    }
}

/// What a successful connect stores.
pub(crate) struct Saved<'a> {
    tenant: Uuid,
    id: Uuid,
    user: Uuid,
    provider: &'a str,
    kind: AuthKind,
    app: Option<Uuid>,
    vars: &'a BTreeMap<String, String>,
    scopes: &'a [String],
    sealed: &'a [u8],
    expires_in: Option<std::time::Duration>,
    label: Option<&'a str>,
    reconnect: bool,
}

/// Inserts a new connection, or brings an existing one (same id) back to `active` with new
/// credentials. Audited.
async fn save(conn: &mut PgConnection, s: Saved<'_>) -> Result<Uuid, AppError> {
    let expires = s.expires_in.map(|d| d.as_secs_f64());
    let vars = sqlx::types::Json(s.vars);
    if s.reconnect {
        let done = sqlx::query(
            "update connections set status = 'active', status_reason = null, auth_kind = $3, \
             provider_app_id = $4, vars = $5, scopes = $6, credentials_enc = $7, \
             expires_at = now() + make_interval(secs => $8), refreshed_at = now(), \
             account_label = coalesce($9, account_label), last_used_at = now() \
             where tenant_id = $1 and id = $2",
        )
        .bind(s.tenant)
        .bind(s.id)
        .bind(s.kind.as_str())
        .bind(s.app)
        .bind(vars)
        .bind(s.scopes)
        .bind(s.sealed)
        .bind(expires)
        .bind(s.label)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(no_connection());
        }
    } else {
        sqlx::query(
            "insert into connections (tenant_id, id, provider, auth_kind, provider_app_id, vars, \
             scopes, credentials_enc, expires_at, refreshed_at, account_label, created_by, last_used_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9), \
             case when $9 is null then null else now() end, $10, $11, now())",
        )
        .bind(s.tenant)
        .bind(s.id)
        .bind(s.provider)
        .bind(s.kind.as_str())
        .bind(s.app)
        .bind(vars)
        .bind(s.scopes)
        .bind(s.sealed)
        .bind(expires)
        .bind(s.label)
        .bind(s.user)
        .execute(&mut *conn)
        .await?;
    }
    audit::record(
        conn,
        s.tenant,
        Some(s.user),
        if s.reconnect {
            "connection.reconnected"
        } else {
            "connection.created"
        },
        serde_json::json!({ "connection": s.id, "provider": s.provider, "account": s.label }),
    )
    .await?;
    tracing::info!(tenant = %s.tenant, connection = %s.id, provider = s.provider, reconnect = s.reconnect, "connection saved");
    Ok(s.id)
}

/// Calls the provider's check endpoint with the connection's credentials (refreshing them first
/// if they are about to expire, and once more after a 401), and records the account label and the
/// time of use. A refused refresh marks the connection `needs_reauth`.
pub async fn check(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<ConnectionView, AppError> {
    {
        let mut tx = db::tenant_tx(pool, tenant, user).await?;
        member_role(&mut tx, tenant, user).await?;
        tx.commit().await?;
    }
    let outcome = async {
        let conn = refresh::credentials(pool, vault, settings, tenant, id).await?;
        match SpecSource::new(conn.clone(), settings.http.clone())
            .check()
            .await
        {
            Err(err) if err.class == ErrorClass::Auth => {
                let fresh =
                    refresh::after_unauthorized(pool, vault, settings, tenant, id, &conn).await?;
                SpecSource::new(fresh, settings.http.clone())
                    .check()
                    .await
                    .map_err(refresh::UseError::Provider)
            }
            other => other.map_err(refresh::UseError::Provider),
        }
    }
    .await;
    match outcome {
        Ok(Some(label)) => {
            let mut tx = db::tenant_tx(pool, tenant, user).await?;
            sqlx::query(
                "update connections set account_label = $3 where tenant_id = $1 and id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(label)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(None) => {}
        Err(refresh::UseError::NotFound) => return Err(no_connection()),
        Err(refresh::UseError::Internal) => return Err(AppError::Internal),
        // Refused: the page shows the new status (needs reconnecting) and its reason. A fresh
        // token refused all the same leaves the connection active: say the check failed.
        Err(refresh::UseError::Provider(err)) if err.class == ErrorClass::Auth => {
            let view = get(pool, tenant, user, id).await?;
            if view.status == crate::model::connection::ConnectionStatus::Active {
                return Err(check_failure(settings.spec(&view.provider)?, &err));
            }
        }
        Err(refresh::UseError::Provider(err)) => {
            let spec = settings.spec(&get(pool, tenant, user, id).await?.provider)?;
            return Err(check_failure(spec, &err));
        }
    }
    get(pool, tenant, user, id).await
}
