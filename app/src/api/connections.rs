//! Connections: the tenant's connected accounts, connecting (OAuth through `/oauth/callback`, or a
//! form of API key fields checked with the provider), reconnecting, checking and disconnecting;
//! and the OAuth apps Patchbay is registered as (platform admins, and vendors for their listings).

use crate::error::AppError;
use crate::model::connection::{
    ConnectContinue, ConnectProvider, ConnectionsPage, ListingConnectPage, ProviderAppsPage,
};
use crate::model::Redacted;
use leptos::prelude::*;
use std::collections::BTreeMap;

#[cfg(feature = "ssr")]
mod server {
    pub use crate::api::ssr::*;
    use crate::error::AppError;
    use tower_sessions::Session;
    use uuid::Uuid;

    /// Session key of the random value that binds OAuth flows to this browser session.
    pub const BINDING_KEY: &str = "oauth_binding";
    /// Session key of the provider sign-in page the last started flow goes to.
    pub const NEXT_KEY: &str = "oauth_next";

    /// The session's flow binding, made on first use.
    pub async fn binding(session: &Session) -> Result<String, AppError> {
        let err = |e: tower_sessions::session::Error| {
            tracing::error!(error = %e, "session store error");
            AppError::Internal
        };
        if let Some(b) = session.get::<String>(BINDING_KEY).await.map_err(err)? {
            return Ok(b);
        }
        let b = crate::domain::connections::flows::new_binding();
        session.insert(BINDING_KEY, &b).await.map_err(err)?;
        Ok(b)
    }

    pub fn optional_id(field: &str, raw: Option<String>) -> Result<Option<Uuid>, AppError> {
        raw.filter(|s| !s.trim().is_empty())
            .map(|s| crate::model::parse_id(field, &s))
            .transpose()
    }

    /// `path` with `key=value` added to its query.
    pub fn with_param(path: &str, key: &str, value: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}{key}={value}")
    }
}

#[cfg(feature = "ssr")]
pub use server::{BINDING_KEY, NEXT_KEY};

/// The active organization's connections.
#[server(endpoint = "connections")]
pub async fn get_connections() -> Result<ConnectionsPage, AppError> {
    use super::ssr::respond;
    use crate::domain::connections;
    use crate::domain::listings::recipe::providers;
    use server::require_org;

    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let list = connections::list(&state.pool, org.id, user.id).await?;
            let mut all: Vec<(String, String)> = providers()
                .choices()
                .into_iter()
                .filter(|p| connections::provider_spec(&p.id).is_ok())
                .map(|p| (p.id, p.name))
                .collect();
            all.sort_by(|a, b| a.1.cmp(&b.1));
            Ok(ConnectionsPage {
                org_name: org.name,
                connections: list,
                providers: all,
                can_manage: org.role >= crate::model::Role::Admin,
            })
        }
        .await,
    )
}

/// What connecting for a listing needs, with the organization's existing connections.
#[server(endpoint = "connections/listing")]
pub async fn get_listing_connect(slug: String) -> Result<ListingConnectPage, AppError> {
    use super::ssr::respond;
    use crate::domain::connections::{self, apps};
    use crate::domain::listings::catalog;
    use server::require_org;

    respond(
        async move {
            // An unknown listing is a 404 for everyone; a known one asks visitors to log in.
            let target = catalog::connect_target(&super::ssr::state()?.pool, &slug).await?;
            let (state, _, user, org) = require_org().await?;
            let existing = connections::list(&state.pool, org.id, user.id).await?;
            let ready = apps::ready_providers(&state.pool, Some(target.vendor)).await?;
            let providers = target
                .providers
                .iter()
                .filter_map(|p| connections::provider_spec(p).ok())
                .filter_map(|spec| connections::connect_provider(spec, &ready, &existing))
                .collect();
            Ok(ListingConnectPage {
                slug,
                name: target.name,
                providers,
            })
        }
        .await,
    )
}

/// One provider's connect form, with the organization's connections to it.
/// With `reconnect`, the form is ready whenever the app that connection was made with still is.
#[server(endpoint = "connections/provider")]
pub async fn get_provider_connect(
    provider: String,
    reconnect: Option<String>,
) -> Result<ConnectProvider, AppError> {
    use super::ssr::respond;
    use crate::domain::connections::{self, apps};
    use server::{optional_id, require_org};

    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let spec = connections::provider_spec(&provider)?;
            let existing = connections::list(&state.pool, org.id, user.id).await?;
            let ready = apps::ready_providers(&state.pool, None).await?;
            let mut page =
                connections::connect_provider(spec, &ready, &existing).ok_or_else(|| {
                    AppError::not_found(format!("{} needs no connection.", spec.name))
                })?;
            if let Some(id) = optional_id("connection", reconnect)? {
                page.ready = page.ready
                    || connections::reconnect_ready(
                        &state.pool,
                        &state.vault,
                        &state.connect,
                        org.id,
                        user.id,
                        id,
                    )
                    .await?;
            }
            Ok(page)
        }
        .await,
    )
}

/// Starts connecting with OAuth: records the flow and sends the browser on to the provider (by
/// way of `/connect/continue`, since the page's `form-action 'self'` policy would stop a form's
/// redirect to another site).
#[server(endpoint = "connections/start")]
pub async fn start_connect(
    provider: String,
    listing: Option<String>,
    reconnect: Option<String>,
    return_to: String,
    fields: Option<BTreeMap<String, String>>,
) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections::flows::{self, StartRequest};
    use server::*;

    respond(
        async move {
            let (state, session, user, org) = require_org().await?;
            let binding = binding(&session).await?;
            let req = StartRequest {
                provider,
                listing: listing.filter(|s| !s.is_empty()),
                reconnect: optional_id("connection", reconnect)?,
                return_to,
                fields: fields.unwrap_or_default(),
            };
            let url = flows::start(
                &state.pool,
                &state.vault,
                &state.connect,
                org.id,
                user.id,
                &binding,
                &req,
            )
            .await?;
            let name = crate::domain::connections::provider_spec(&req.provider)?
                .name
                .clone();
            session.insert(NEXT_KEY, (name, url)).await.map_err(|e| {
                tracing::error!(error = %e, "session store error");
                AppError::Internal
            })?;
            leptos_axum::redirect("/connect/continue");
            Ok(())
        }
        .await,
    )
}

/// The provider sign-in page the last started flow goes to.
#[server(endpoint = "connections/continue")]
pub async fn get_connect_continue() -> Result<ConnectContinue, AppError> {
    use super::ssr::*;
    use server::NEXT_KEY;

    respond(
        async move {
            let (_, session, _) = require_user().await?;
            // Taken out of the session as it is used: it holds the flow's state in the clear.
            let next: Option<(String, String)> = session.remove(NEXT_KEY).await.map_err(|e| {
                tracing::error!(error = %e, "session store error");
                AppError::Internal
            })?;
            let (provider_name, url) = next.ok_or_else(|| {
                AppError::not_found(
                    "There is no sign-in waiting. Start again from the connect page.",
                )
            })?;
            Ok(ConnectContinue { provider_name, url })
        }
        .await,
    )
}

/// Connects with API key or username-and-password fields, checked with the provider first.
#[server(endpoint = "connections/connect_fields")]
pub async fn connect_fields(
    provider: String,
    reconnect: Option<String>,
    return_to: String,
    fields: Option<BTreeMap<String, Redacted<String>>>,
) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections;
    use crate::model::connection::parse_return_to;
    use server::*;

    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let return_to = parse_return_to(&return_to)?;
            let id = connections::connect_with_fields(
                &state.pool,
                &state.vault,
                &state.connect,
                org.id,
                user.id,
                &provider,
                optional_id("connection", reconnect)?,
                &fields
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            )
            .await?;
            leptos_axum::redirect(&with_param(&return_to, "connected", &id.to_string()));
            Ok(())
        }
        .await,
    )
}

/// Disconnects: revokes at the provider when it allows, and deletes the credentials.
#[server(endpoint = "connections/disconnect")]
pub async fn disconnect_connection(id: String) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections::{self, Revocation};
    use crate::model::parse_id;
    use server::*;

    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = parse_id("connection", &id)?;
            let outcome = connections::disconnect(
                &state.pool,
                &state.vault,
                &state.connect,
                org.id,
                user.id,
                id,
            )
            .await?;
            let code = match outcome {
                Revocation::Revoked => "revoked",
                Revocation::NotSupported => "deleted",
                Revocation::Failed => "unrevoked",
            };
            leptos_axum::redirect(&format!("/connections?disconnected={code}"));
            Ok(())
        }
        .await,
    )
}

/// Tests a connection with the provider's check call (refreshing its token if needed).
#[server(endpoint = "connections/check")]
pub async fn check_connection(id: String) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections;
    use crate::model::parse_id;
    use server::*;

    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = parse_id("connection", &id)?;
            connections::check(
                &state.pool,
                &state.vault,
                &state.connect,
                org.id,
                user.id,
                id,
            )
            .await?;
            leptos_axum::redirect(&format!("/connections?checked={id}"));
            Ok(())
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
async fn apps_owner(
    owner: &str,
) -> Result<
    (
        crate::domain::AppState,
        crate::model::UserInfo,
        crate::domain::connections::apps::Owner,
        Option<String>,
    ),
    AppError,
> {
    use crate::domain::connections::apps::Owner;
    use crate::model::{OrgKind, Role};
    match owner {
        "platform" => {
            let (state, _, user) = super::ssr::require_user().await?;
            if !user.is_platform_admin {
                return Err(AppError::forbidden(
                    "Only platform admins manage the platform's provider apps.",
                ));
            }
            Ok((state, user, Owner::Platform, None))
        }
        "vendor" => {
            let (state, _, user, org) = server::require_org().await?;
            if org.kind != OrgKind::Vendor || org.role < Role::Admin {
                return Err(AppError::forbidden(
                    "Owners and admins of a vendor organization manage its provider apps.",
                ));
            }
            Ok((state, user, Owner::Vendor(org.id), Some(org.name)))
        }
        _ => Err(AppError::not_found("No such page.")),
    }
}

/// The provider apps of the platform (`owner = "platform"`) or of the active vendor (`"vendor"`).
#[server(endpoint = "provider_apps")]
pub async fn get_provider_apps(owner: String) -> Result<ProviderAppsPage, AppError> {
    use super::ssr::respond;
    use crate::domain::connections::apps;

    respond(
        async move {
            let (state, _, who, vendor) = apps_owner(&owner).await?;
            apps::page(&state.pool, &state.connect, who, vendor).await
        }
        .await,
    )
}

/// Registers (or updates) the app for a provider; a blank secret keeps the stored one.
#[server(endpoint = "provider_apps/set")]
pub async fn set_provider_app(
    owner: String,
    provider: String,
    client_id: String,
    client_secret: Redacted<String>,
) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections::apps;
    use secrecy::SecretString;

    respond(
        async move {
            let (state, user, who, _) = apps_owner(&owner).await?;
            let secret = SecretString::from(client_secret.0);
            apps::set(
                &state.pool,
                &state.vault,
                who,
                user.id,
                &provider,
                &client_id,
                &secret,
            )
            .await?;
            leptos_axum::redirect(&format!("/{}/apps?saved={provider}", page_of(&owner)));
            Ok(())
        }
        .await,
    )
}

/// Removes the app for a provider.
#[server(endpoint = "provider_apps/remove")]
pub async fn remove_provider_app(owner: String, provider: String) -> Result<(), AppError> {
    use super::ssr::respond;
    use crate::domain::connections::apps;

    respond(
        async move {
            let (state, user, who, _) = apps_owner(&owner).await?;
            apps::remove(&state.pool, who, user.id, &provider).await?;
            leptos_axum::redirect(&format!("/{}/apps", page_of(&owner)));
            Ok(())
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
fn page_of(owner: &str) -> &'static str {
    if owner == "platform" {
        "admin"
    } else {
        "vendor"
    }
}
