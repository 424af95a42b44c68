//! Connecting with OAuth: [`start`] records a single-use flow and returns the provider's authorize
//! URL; [`finish`] takes the callback's parameters, checks the flow (its state, the session that
//! started it, its tenant and user, its expiry), consumes it, exchanges the code, checks the
//! account, and saves the connection.
//!
//! The `state` sent to the provider is 128 random bits (from the `oauth2` crate) and is stored
//! only as its SHA-256. The flow is bound to the browser session by a random value kept in the
//! session, also stored hashed. The PKCE verifier is sealed, bound to the flow. Flows live ten
//! minutes and are deleted when their callback arrives, whatever its outcome.

use super::{apps, check_fields, existing_provider, issuing_app, require_manager, save, Saved};
use super::{ConnectSettings, Secrets};
use crate::domain::db;
use crate::domain::vault::{Aad, Keyring};
use crate::error::AppError;
use crate::model::connection::{parse_return_to, AuthKind, ConnectFailure};
use connectors::engine::SpecSource;
use connectors::error::ErrorClass;
use connectors::oauth::OAuthClient;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

/// How long a started flow may wait for its callback.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

fn hash(value: &str) -> Vec<u8> {
    Sha256::digest(value.as_bytes()).to_vec()
}

/// A new random session binding (kept in the session under this module's care).
pub fn new_binding() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the connect form sent.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub provider: String,
    /// The listing the customer connects for: its vendor's own app is used when it set one.
    pub listing: Option<String>,
    /// Reconnecting this connection (same id).
    pub reconnect: Option<Uuid>,
    pub return_to: String,
    /// The spec's connection fields (a Shopify shop).
    pub fields: BTreeMap<String, String>,
}

/// Starts a flow; returns the URL to send the browser to.
pub async fn start(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    binding: &str,
    req: &StartRequest,
) -> Result<String, AppError> {
    let spec = settings.spec(&req.provider)?;
    if spec.oauth2().is_none() {
        return Err(AppError::invalid(
            "provider",
            format!(
                "{} connects with a form, not by signing in there.",
                spec.name
            ),
        ));
    }
    let return_to = parse_return_to(&req.return_to)?;
    let (vars, _secret) = check_fields(spec, &req.fields)?;
    // Reconnecting goes through the app the connection was made with, while it is registered.
    let previous_app: Option<Uuid> = {
        let mut tx = db::tenant_tx(pool, tenant, user).await?;
        require_manager(&mut tx, tenant, user).await?;
        let app = match req.reconnect {
            Some(id) => {
                existing_provider(&mut tx, tenant, id, &spec.id).await?;
                issuing_app(&mut tx, tenant, id).await?.flatten()
            }
            None => None,
        };
        tx.commit().await?;
        app
    };
    let previous = match previous_app {
        Some(app) => apps::by_id(pool, vault, settings, app).await?,
        None => None,
    };
    let app = match previous {
        Some(app) => Some(app),
        None => {
            let vendor = match &req.listing {
                Some(slug) => crate::domain::listings::catalog::vendor_of(pool, slug).await?,
                None => None,
            };
            apps::for_connect(pool, vault, settings, &spec.id, vendor).await?
        }
    };
    let app = app.ok_or_else(|| {
            AppError::invalid(
                "provider",
                format!(
                    "{} is not set up for connecting yet: an administrator must first register Patchbay's app with it.",
                    spec.name
                ),
            )
        })?;
    let client = settings
        .oauth_client(spec, &app.app, &vars)
        .map_err(|err| {
            tracing::error!(provider = %spec.id, error = %err, "cannot build the OAuth client");
            AppError::Internal
        })?;
    let authorize = client.authorize();
    let id = Uuid::new_v4();
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    // A customer's abandoned flows go when they start another.
    sqlx::query("delete from oauth_flows where tenant_id = $1 and expires_at < now()")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into oauth_flows (tenant_id, id, state_hash, binding_hash, user_id, provider, \
         provider_app_id, connection_id, vars, verifier_enc, return_to, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + make_interval(secs => $12))",
    )
    .bind(tenant)
    .bind(id)
    .bind(hash(&authorize.state))
    .bind(hash(binding))
    .bind(user)
    .bind(&spec.id)
    .bind(app.id)
    .bind(req.reconnect)
    .bind(sqlx::types::Json(&vars))
    .bind(
        authorize
            .pkce_verifier
            .as_ref()
            .map(|v| vault.seal_str(v, &Aad::oauth_flow(tenant, id))),
    )
    .bind(&return_to)
    .bind(FLOW_TTL.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(%tenant, flow = %id, provider = %spec.id, "OAuth flow started");
    Ok(authorize.url.to_string())
}

/// Revokes a grant that will not be kept (best effort): the refresh token when there is one, which
/// ends the whole grant at providers that support it.
async fn hand_back(client: &OAuthClient, tokens: &connectors::oauth::TokenSet) {
    let (token, is_refresh) = match &tokens.refresh_token {
        Some(refresh) => (refresh, true),
        None => (&tokens.access_token, false),
    };
    if let Err(err) = client.revoke(token, is_refresh).await {
        tracing::info!(error = %err, "could not hand back an unused grant");
    }
}

/// The callback's query parameters. Its `Debug` hides the state and the code.
#[derive(Clone, Default, serde::Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("state", &self.state.as_ref().map(|_| "…"))
            .field("code", &self.code.as_ref().map(|_| "…"))
            .field("error", &self.error)
            .finish()
    }
}

/// Where the callback sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// Connected: back to where the customer started, with the connection's id.
    Connected { connection: Uuid, return_to: String },
    /// Not connected, for this reason; `return_to` when the flow was found.
    Failed {
        failure: ConnectFailure,
        provider: Option<String>,
        return_to: Option<String>,
    },
}

fn failed(failure: ConnectFailure) -> Finished {
    Finished::Failed {
        failure,
        provider: None,
        return_to: None,
    }
}

/// Finishes a flow. `tenant` and `user` come from the session (the active organization and the
/// signed-in user), `binding` from the session too; a flow started by anyone else, in another
/// session or organization, is refused and nothing is stored.
pub async fn finish(
    pool: &PgPool,
    vault: &Keyring,
    settings: &ConnectSettings,
    tenant: Uuid,
    user: Uuid,
    binding: Option<&str>,
    params: &Callback,
) -> Result<Finished, AppError> {
    let Some(state) = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 512)
    else {
        return Ok(failed(ConnectFailure::BadState));
    };
    type FlowRow = (
        Uuid,
        Vec<u8>,
        Uuid,
        String,
        Uuid,
        Option<Uuid>,
        sqlx::types::Json<BTreeMap<String, String>>,
        Option<Vec<u8>>,
        String,
        bool,
    );
    // Consumed whatever happens next: a state works once. Row-level security hides other
    // tenants' flows, so one of theirs is neither found nor consumed.
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    let flow: Option<FlowRow> = sqlx::query_as(
        "delete from oauth_flows where tenant_id = $1 and state_hash = $2 \
         returning id, binding_hash, user_id, provider, provider_app_id, connection_id, vars, \
         verifier_enc, return_to, expires_at > now()",
    )
    .bind(tenant)
    .bind(hash(state))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let Some((
        id,
        binding_hash,
        flow_user,
        provider,
        app_id,
        reconnect,
        vars,
        verifier,
        return_to,
        fresh,
    )) = flow
    else {
        tracing::info!(%tenant, "OAuth callback with an unknown or used state");
        return Ok(failed(ConnectFailure::BadState));
    };
    let same_session = binding.is_some_and(|b| hash(b) == binding_hash);
    if flow_user != user || !same_session || !fresh {
        tracing::warn!(%tenant, flow = %id, same_user = flow_user == user, same_session, fresh, "OAuth callback refused");
        return Ok(failed(ConnectFailure::BadState));
    }
    let fail = |failure| Finished::Failed {
        failure,
        provider: Some(provider.clone()),
        return_to: Some(return_to.clone()),
    };
    if let Some(error) = &params.error {
        tracing::info!(%tenant, flow = %id, %provider, error = %error.chars().take(64).collect::<String>(), "the provider sent an error");
        return Ok(fail(if error == "access_denied" {
            ConnectFailure::Denied
        } else {
            ConnectFailure::ProviderError
        }));
    }
    let Some(code) = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Ok(fail(ConnectFailure::ProviderError));
    };
    let spec = settings.spec(&provider)?;
    let Some(app) = apps::by_id(pool, vault, settings, app_id).await? else {
        return Ok(fail(ConnectFailure::ProviderError));
    };
    let verifier: Option<SecretString> = match verifier {
        Some(sealed) => Some(
            vault
                .open_str(&sealed, &Aad::oauth_flow(tenant, id))
                .map_err(|err| {
                    tracing::error!(flow = %id, error = %err, "a flow's verifier does not open");
                    AppError::Internal
                })?,
        ),
        None => None,
    };
    let client = settings
        .oauth_client(spec, &app.app, &vars.0)
        .map_err(|err| {
            tracing::error!(provider = %spec.id, error = %err, "cannot build the OAuth client");
            AppError::Internal
        })?;
    let tokens = match client.exchange_code(code, verifier.as_ref()).await {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::info!(flow = %id, %provider, error = %err, "code exchange failed");
            return Ok(fail(match err.class {
                ErrorClass::Transient | ErrorClass::RateLimited { .. } => {
                    ConnectFailure::Unreachable
                }
                _ => ConnectFailure::ExchangeFailed,
            }));
        }
    };
    let mut kept = vars.0.clone();
    kept.extend(tokens.fields.clone());
    let secrets = Secrets {
        access_token: Some(tokens.access_token.expose_secret().to_owned()),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        fields: BTreeMap::new(),
    };
    let label = match SpecSource::new(
        super::engine_connection(settings, spec, &kept, &secrets),
        settings.http.clone(),
    )
    .check()
    .await
    {
        Ok(label) => label,
        Err(err) => {
            tracing::info!(flow = %id, %provider, error = %err, "the new connection's check call failed");
            hand_back(&client, &tokens).await;
            return Ok(fail(ConnectFailure::CheckFailed));
        }
    };
    let connection = reconnect.unwrap_or_else(Uuid::new_v4);
    let saved = async {
        let mut tx = db::tenant_tx(pool, tenant, user).await?;
        // The user may have lost the right to connect while at the provider.
        require_manager(&mut tx, tenant, user).await?;
        let saved = save(
            &mut tx,
            Saved {
                tenant,
                id: connection,
                user,
                provider: &provider,
                kind: AuthKind::OAuth2,
                app: Some(app.id),
                vars: &kept,
                scopes: &tokens.scopes,
                sealed: &secrets.seal(vault, tenant, connection),
                expires_in: tokens.expires_in,
                label: label.as_deref(),
                reconnect: reconnect.is_some(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, AppError>(saved)
    }
    .await;
    let saved = match saved {
        Ok(saved) => saved,
        Err(err) => {
            // Nothing kept: hand the grant back rather than leave it live at the provider.
            hand_back(&client, &tokens).await;
            return match err {
                AppError::Forbidden { .. } => Ok(fail(ConnectFailure::NotAllowed)),
                err => Err(err),
            };
        }
    };
    Ok(Finished::Connected {
        connection: saved,
        return_to,
    })
}
