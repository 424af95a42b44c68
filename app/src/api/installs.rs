//! Installs: the installs list and page, the install wizard's steps (each a plain form post that
//! goes on to the next step), and what a customer does with an install (run now, resync, pause,
//! resume, upgrade, uninstall, discard a draft, paste a webhook signing secret).

use crate::error::AppError;
use crate::model::install::{InstallPage, InstallsPage, WizardPage};
use crate::model::listing::MappingInput;
use crate::model::Redacted;
use leptos::prelude::*;
use std::collections::BTreeMap;

/// Where the wizard's step `step` of install `id` is.
pub fn step_path(id: &str, step: &str) -> String {
    format!("/installs/{id}/setup/{step}")
}

#[cfg(feature = "ssr")]
mod server {
    use crate::error::AppError;
    use crate::model::install::WizardStep;
    use uuid::Uuid;

    pub fn id(raw: &str) -> Result<Uuid, AppError> {
        crate::model::parse_id("install", raw)
    }

    pub fn optional(field: &str, raw: Option<String>) -> Result<Option<Uuid>, AppError> {
        raw.filter(|s| !s.trim().is_empty())
            .map(|s| crate::model::parse_id(field, &s))
            .transpose()
    }

    /// On to the step after `step`.
    pub fn next(id: Uuid, step: WizardStep) {
        let to = step.next().unwrap_or(WizardStep::Review);
        leptos_axum::redirect(&super::step_path(&id.to_string(), to.as_str()));
    }
}

/// The active organization's installs.
#[server(endpoint = "installs")]
pub async fn get_installs() -> Result<InstallsPage, AppError> {
    use super::ssr::{require_org, respond};
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            crate::domain::installs::view::list(&state, org.id, user.id, org.name).await
        }
        .await,
    )
}

/// One install's page: status, live progress, history.
#[server(endpoint = "installs/get")]
pub async fn get_install(id: String) -> Result<InstallPage, AppError> {
    use super::ssr::{require_org, respond};
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            crate::domain::installs::view::page(&state, org.id, user.id, server::id(&id)?).await
        }
        .await,
    )
}

/// The wizard at `step`: of install `id`, or of a new install of the listing `slug`.
#[server(endpoint = "installs/wizard")]
pub async fn get_wizard(
    id: Option<String>,
    slug: Option<String>,
    step: String,
) -> Result<WizardPage, AppError> {
    use super::ssr::{require_org, respond};
    use crate::domain::installs::wizard;
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            match server::optional("install", id)? {
                Some(id) => {
                    let step: WizardStep = step
                        .parse()
                        .map_err(|_| AppError::not_found("No such step of the install."))?;
                    wizard::page(&state, org.id, user.id, id, step).await
                }
                None => {
                    wizard::page_new(&state, org.id, user.id, slug.as_deref().unwrap_or("")).await
                }
            }
        }
        .await,
    )
}

/// Step 1: the connections (creates the install as a draft when `id` is empty).
#[server(endpoint = "installs/connections")]
pub async fn save_install_connections(
    id: Option<String>,
    slug: String,
    source: Option<String>,
    destination: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = crate::domain::installs::wizard::save_connections(
                &state,
                org.id,
                user.id,
                server::optional("install", id)?,
                &slug,
                server::optional("connection", source)?,
                server::optional("connection", destination)?,
            )
            .await?;
            server::next(id, WizardStep::Connections);
            Ok(())
        }
        .await,
    )
}

/// Step 2: the listing's settings and the source's stream inputs.
#[server(endpoint = "installs/settings")]
pub async fn save_install_settings(
    id: String,
    config: Option<BTreeMap<String, String>>,
    inputs: Option<BTreeMap<String, String>>,
) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            crate::domain::installs::wizard::save_settings(
                &state,
                org.id,
                user.id,
                id,
                &config.unwrap_or_default(),
                &inputs.unwrap_or_default(),
            )
            .await?;
            server::next(id, WizardStep::Settings);
            Ok(())
        }
        .await,
    )
}

/// Step 3: the streams to read.
#[server(endpoint = "installs/streams")]
pub async fn save_install_streams(
    id: String,
    streams: Option<Vec<String>>,
) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            crate::domain::installs::wizard::save_streams(
                &state,
                org.id,
                user.id,
                id,
                &streams.unwrap_or_default(),
            )
            .await?;
            server::next(id, WizardStep::Streams);
            Ok(())
        }
        .await,
    )
}

/// Step 4: the field mapping (`reset` puts the listing's default back).
#[server(endpoint = "installs/mapping")]
pub async fn save_install_mapping(
    id: String,
    mapping: Option<Vec<MappingInput>>,
    reset: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            let reset = reset.is_some_and(|r| !r.is_empty());
            crate::domain::installs::wizard::save_mapping(
                &state,
                org.id,
                user.id,
                id,
                &mapping.unwrap_or_default(),
                reset,
            )
            .await?;
            if reset {
                leptos_axum::redirect(&step_path(&id.to_string(), "mapping"));
            } else {
                server::next(id, WizardStep::Mapping);
            }
            Ok(())
        }
        .await,
    )
}

/// Step 5: the schedule (an interval, `cron` with an expression, or `manual`) and triggers.
#[server(endpoint = "installs/schedule")]
pub async fn save_install_schedule(
    id: String,
    schedule: Option<String>,
    cron: Option<String>,
    triggers: Option<Vec<String>>,
) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::model::install::WizardStep;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            crate::domain::installs::wizard::save_schedule(
                &state,
                org.id,
                user.id,
                id,
                schedule.as_deref().unwrap_or("manual"),
                cron.as_deref().unwrap_or(""),
                &triggers.unwrap_or_default(),
            )
            .await?;
            server::next(id, WizardStep::Schedule);
            Ok(())
        }
        .await,
    )
}

/// The review step's button: installs (a draft) and starts the first sync.
#[server(endpoint = "installs/activate")]
pub async fn activate_install(id: String) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            crate::domain::installs::wizard::activate(&state, org.id, user.id, id).await?;
            leptos_axum::redirect(&format!("/installs/{id}?installed=1"));
            Ok(())
        }
        .await,
    )
}

/// What a customer does with an install: `run_now`, `resync`, `pause`, `resume`, `upgrade`,
/// `uninstall`, or `discard` (a draft).
#[server(endpoint = "installs/action")]
pub async fn install_action(id: String, action: String) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    use crate::domain::installs::{self, wizard};
    use crate::domain::queue::JobKind;
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            let (tenant, user) = (org.id, user.id);
            match action.as_str() {
                "run_now" => {
                    installs::run_now(&state, tenant, user, id, JobKind::Incremental).await?
                }
                "resync" => installs::run_now(&state, tenant, user, id, JobKind::Full).await?,
                "pause" => installs::pause(&state, tenant, user, id).await?,
                "resume" => installs::resume(&state, tenant, user, id).await?,
                "uninstall" => installs::uninstall(&state, tenant, user, id).await?,
                "upgrade" => {
                    installs::upgrade(&state, tenant, user, id).await?;
                }
                "discard" => {
                    wizard::discard(&state, tenant, user, id).await?;
                    leptos_axum::redirect("/installs?discarded=1");
                    return Ok(());
                }
                _ => return Err(AppError::invalid("action", "Unknown action.")),
            }
            leptos_axum::redirect(&format!("/installs/{id}?done={action}"));
            Ok(())
        }
        .await,
    )
}

/// Stores the webhook signing secret of a provider that has no API for registering webhooks.
#[server(endpoint = "installs/webhook_secret")]
pub async fn set_webhook_secret(id: String, secret: Redacted<String>) -> Result<(), AppError> {
    use super::ssr::{require_org, respond};
    respond(
        async move {
            let (state, _, user, org) = require_org().await?;
            let id = server::id(&id)?;
            let secret = secrecy::SecretString::from(secret.0);
            crate::domain::installs::hooks::set_secret(&state, org.id, user.id, id, &secret)
                .await?;
            leptos_axum::redirect(&format!("/installs/{id}?done=webhook_secret"));
            Ok(())
        }
        .await,
    )
}
