//! The install wizard: connections → settings → what syncs → field mapping → schedule → review.
//!
//! The first step creates the install as a draft; each later step saves into it, so the wizard
//! can be left and resumed, and works as plain form posts. The last step activates the install:
//! its webhook subscription is registered at the source, its schedule set and a first full sync
//! enqueued. An active install is edited through the same steps, each saving at once.
//!
//! Every step's input is checked when it is saved; what is still missing for the whole install
//! (a connection not chosen, a required setting left empty) is listed as its problems, and the
//! install cannot be activated while there are any.

use super::{as_system, enqueue, for_change, hooks, no_install, role, Install};
use crate::domain::audit;
use crate::domain::connections::{self, apps};
use crate::domain::db;
use crate::domain::listings::recipe::providers;
use crate::domain::queue::JobKind;
use crate::domain::schedules;
use crate::domain::AppState;
use crate::error::AppError;
use crate::model::connection::ConnectionStatus;
use crate::model::install::{
    interval_secs, ConnectionSlot, InputField, InstallStatus, MappingRow, Schedule, StreamOption,
    WizardPage, WizardStep,
};
use crate::model::listing::{
    parse_link, ConfigKind, FieldMapping, MappedField, MappingInput, Recipe, Trigger, STORE_NAME,
    STORE_PROVIDER,
};
use crate::model::Role;
use connectors::mapping::Mapping;
use connectors::spec::ProviderSpec;
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// The published version of a listing in the catalog: (listing id, version id, number, recipe).
async fn published(
    conn: &mut PgConnection,
    slug: &str,
) -> Result<(Uuid, Uuid, i32, String, Recipe), AppError> {
    let row: Option<(Uuid, Uuid, i32, String, sqlx::types::Json<Recipe>)> = sqlx::query_as(
        "select l.id, v.id, v.number, v.name, v.recipe from listings l \
         join listing_versions v on v.id = l.published_version_id \
         where l.slug = $1 and l.status = 'published'",
    )
    .bind(slug)
    .fetch_optional(conn)
    .await?;
    let (listing, version, number, name, recipe) =
        row.ok_or_else(|| AppError::not_found("No such listing in the marketplace."))?;
    Ok((listing, version, number, name, recipe.0))
}

/// The wizard for a new install of `slug` (nothing is stored until its first step is saved).
pub async fn page_new(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    slug: &str,
) -> Result<WizardPage, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let can_manage = role(&mut tx, tenant, user).await? >= Role::Admin;
    let (listing_id, version_id, version, name, recipe) = published(&mut tx, slug).await?;
    let vendor: Uuid = sqlx::query_scalar("select vendor_org_id from listings where id = $1")
        .bind(listing_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let install = draft_of(
        tenant, listing_id, version_id, version, name, vendor, recipe, slug,
    );
    build(
        state,
        tenant,
        user,
        &install,
        None,
        WizardStep::Connections,
        can_manage,
    )
    .await
}

/// What a new draft starts from: the listing's defaults.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of a listing version, each named"
)]
fn draft_of(
    tenant: Uuid,
    listing_id: Uuid,
    version_id: Uuid,
    version: i32,
    name: String,
    vendor: Uuid,
    recipe: Recipe,
    slug: &str,
) -> Install {
    Install {
        tenant,
        id: Uuid::nil(),
        listing_id,
        listing_slug: Some(slug.to_owned()),
        listing_name: name,
        vendor,
        version_id,
        version,
        status: InstallStatus::Draft,
        status_reason: None,
        source_connection: None,
        destination_connection: None,
        config: recipe
            .config_fields
            .iter()
            .filter(|f| !f.default.is_empty())
            .map(|f| (f.key.clone(), f.default.clone()))
            .collect(),
        inputs: BTreeMap::new(),
        streams: recipe.source_streams.clone(),
        mapping: recipe.mapping.clone(),
        schedule: if recipe.triggers.contains(&Trigger::Schedule) {
            Schedule::Every(recipe.default_schedule)
        } else {
            Schedule::Manual
        },
        triggers: recipe.triggers.clone(),
        webhook_subscription: None,
        has_webhook_secret: false,
        recipe,
    }
}

/// The wizard at `step` for an existing install.
pub async fn page(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    step: WizardStep,
) -> Result<WizardPage, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let can_manage = role(&mut tx, tenant, user).await? >= Role::Admin;
    let install = super::load(&mut tx, tenant, id, false)
        .await?
        .ok_or_else(no_install)?;
    tx.commit().await?;
    if install.status == InstallStatus::Uninstalled {
        return Err(AppError::not_found("This integration was uninstalled."));
    }
    build(state, tenant, user, &install, Some(id), step, can_manage).await
}

fn spec_of(id: &str) -> Option<&'static ProviderSpec> {
    providers().get(id)
}

/// The fields the chosen source streams have.
fn source_fields(install: &Install) -> BTreeSet<String> {
    let Some(spec) = spec_of(&install.recipe.source_provider) else {
        return BTreeSet::new();
    };
    install
        .streams
        .iter()
        .filter_map(|s| spec.stream(s))
        .flat_map(|s| s.fields.iter().cloned())
        .collect()
}

/// The fields the destination accepts, when it says: a provider stream whose body is not
/// wrapped in a key (HubSpot's `properties` takes any field the account defines).
fn destination_fields(recipe: &Recipe) -> Option<BTreeSet<String>> {
    if recipe.destination_provider == STORE_PROVIDER {
        return None;
    }
    let stream = spec_of(&recipe.destination_provider)?.stream(&recipe.destination_stream)?;
    match &stream.write {
        Some(w) if w.body_key.is_none() => Some(stream.fields.iter().cloned().collect()),
        _ => None,
    }
}

fn mapping_rows(install: &Install) -> Vec<MappingRow> {
    let source = source_fields(install);
    let destination = destination_fields(&install.recipe);
    install
        .mapping
        .fields
        .iter()
        .map(|m| {
            let root = |path: &str| {
                path.trim_start_matches('/')
                    .split(['.', '/'])
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            };
            MappingRow {
                to: m.to.clone(),
                from: m.from.clone(),
                source_missing: !source.contains(&root(&m.from)),
                destination_missing: destination
                    .as_ref()
                    .is_some_and(|d| !d.contains(&root(&m.to))),
                default: install.recipe.mapping.fields.contains(m),
            }
        })
        .collect()
}

/// The stream inputs the chosen source streams ask for (a GitHub repository's owner and name).
fn stream_inputs(install: &Install) -> Vec<&'static connectors::spec::ConnectionField> {
    let Some(spec) = spec_of(&install.recipe.source_provider) else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    install
        .streams
        .iter()
        .filter_map(|s| spec.stream(s))
        .flat_map(|s| s.inputs.iter())
        .filter(|f| seen.insert(f.name.clone()))
        .collect()
}

/// The roles (source, destination) the install needs connections for, with their providers.
fn roles(recipe: &Recipe) -> Vec<(&'static str, String)> {
    let mut out = vec![("source", recipe.source_provider.clone())];
    if recipe.destination_provider != STORE_PROVIDER {
        out.push(("destination", recipe.destination_provider.clone()));
    }
    out
}

async fn build(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    install: &Install,
    id: Option<Uuid>,
    step: WizardStep,
    can_manage: bool,
) -> Result<WizardPage, AppError> {
    let existing = connections::list(&state.pool, tenant, user).await?;
    let ready = apps::ready_providers(&state.pool, Some(install.vendor)).await?;
    let mut slots = Vec::new();
    for (role, provider) in roles(&install.recipe) {
        let Some(spec) = spec_of(&provider) else {
            continue;
        };
        let Some(offer) = connections::connect_provider(spec, &ready, &existing) else {
            continue;
        };
        let selected = if role == "source" {
            install.source_connection
        } else {
            install.destination_connection
        };
        // One active connection and nothing chosen yet: that one.
        let selected = selected.or_else(|| {
            let mut active = offer
                .connections
                .iter()
                .filter(|c| c.status == ConnectionStatus::Active);
            match (active.next(), active.next()) {
                (Some(only), None) => Some(only.id),
                _ => None,
            }
        });
        slots.push(ConnectionSlot {
            role: role.to_owned(),
            provider: offer,
            selected,
        });
    }
    let recipe = &install.recipe;
    let spec = spec_of(&recipe.source_provider);
    let streams = recipe
        .source_streams
        .iter()
        .map(|name| {
            let stream = spec.and_then(|s| s.stream(name));
            StreamOption {
                name: name.clone(),
                label: stream
                    .map(|s| {
                        if s.label.is_empty() {
                            s.name.clone()
                        } else {
                            s.label.clone()
                        }
                    })
                    .unwrap_or_else(|| name.clone()),
                fields: stream.map(|s| s.fields.clone()).unwrap_or_default(),
                selected: install.streams.contains(name),
            }
        })
        .collect();
    let inputs = stream_inputs(install)
        .into_iter()
        .map(|f| InputField {
            name: f.name.clone(),
            label: f.label.clone(),
            help: f.help.clone(),
            value: install.inputs.get(&f.name).cloned().unwrap_or_default(),
        })
        .collect();
    let destination_name = if recipe.destination_provider == STORE_PROVIDER {
        format!("{STORE_NAME} ({})", recipe.destination_stream)
    } else {
        format!(
            "{} {}",
            providers().name_of(&recipe.destination_provider),
            recipe.destination_stream
        )
    };
    Ok(WizardPage {
        id,
        listing_slug: install.listing_slug.clone().unwrap_or_default(),
        listing_name: install.listing_name.clone(),
        version: install.version,
        status: install.status,
        step,
        problems: problems(install, &slots),
        connections: slots,
        config_fields: recipe.config_fields.clone(),
        config: install.config.clone(),
        inputs,
        streams,
        mapping: mapping_rows(install),
        source_name: providers().name_of(&recipe.source_provider),
        destination_name,
        source_fields: source_fields(install).into_iter().collect(),
        destination_fields: destination_fields(recipe).map(|d| d.into_iter().collect()),
        allowed_schedules: recipe.allowed_schedules.clone(),
        schedule: install.schedule.clone(),
        recipe_triggers: recipe.triggers.clone(),
        triggers: install.triggers.clone(),
        can_manage,
    })
}

/// What still stops the install from running, by step.
fn problems(install: &Install, slots: &[ConnectionSlot]) -> Vec<(WizardStep, String)> {
    let mut out = Vec::new();
    for slot in slots {
        let chosen = if slot.role == "source" {
            install.source_connection
        } else {
            install.destination_connection
        };
        match chosen.and_then(|id| slot.provider.connections.iter().find(|c| c.id == id)) {
            None => out.push((
                WizardStep::Connections,
                format!(
                    "Choose the {} account to {}.",
                    slot.provider.name,
                    if slot.role == "source" {
                        "read from"
                    } else {
                        "write to"
                    }
                ),
            )),
            Some(c) if c.status != ConnectionStatus::Active => out.push((
                WizardStep::Connections,
                format!("The {} connection needs reconnecting.", slot.provider.name),
            )),
            Some(_) => {}
        }
    }
    for field in &install.recipe.config_fields {
        if field.required
            && install
                .config
                .get(&field.key)
                .is_none_or(|v| v.trim().is_empty())
        {
            out.push((WizardStep::Settings, format!("Fill in {}.", field.label)));
        }
    }
    for field in stream_inputs(install) {
        if install.inputs.get(&field.name).is_none_or(|v| v.is_empty()) {
            out.push((WizardStep::Settings, format!("Fill in {}.", field.label)));
        }
    }
    if install.streams.is_empty() {
        out.push((
            WizardStep::Streams,
            "Choose at least one stream to sync.".into(),
        ));
    }
    if install.mapping.fields.is_empty() {
        out.push((WizardStep::Mapping, "Map at least one field.".into()));
    }
    for row in mapping_rows(install)
        .iter()
        .filter(|r| r.destination_missing)
    {
        out.push((
            WizardStep::Mapping,
            format!(
                "The destination has no field \u{201c}{}\u{201d}: it would refuse every record.",
                row.to
            ),
        ));
    }
    if install.triggers.is_empty() {
        out.push((
            WizardStep::Schedule,
            "Choose at least one way the sync starts.".into(),
        ));
    }
    out
}

/// The connections the install uses must be active (resuming, activating).
pub(crate) async fn check_connections_active(
    conn: &mut PgConnection,
    install: &Install,
) -> Result<(), AppError> {
    for (role, id) in [
        ("source", install.source_connection),
        ("destination", install.destination_connection),
    ] {
        let Some(id) = id else { continue };
        let status: Option<(String, String)> = sqlx::query_as(
            "select status, provider from connections where tenant_id = $1 and id = $2",
        )
        .bind(install.tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        match status {
            Some((s, _)) if s == "active" => {}
            Some((_, provider)) => {
                return Err(AppError::invalid(
                    "connections",
                    format!(
                        "The {} connection ({role}) needs reconnecting first.",
                        providers().name_of(&provider)
                    ),
                ))
            }
            None => {
                return Err(AppError::invalid(
                    "connections",
                    "Choose the connections again.",
                ))
            }
        }
    }
    Ok(())
}

/// A connection chosen for `role`: the tenant's, to the right provider, not disconnected.
async fn check_choice(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    provider: &str,
) -> Result<(), AppError> {
    let found: Option<(String, String)> =
        sqlx::query_as("select provider, status from connections where tenant_id = $1 and id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    match found {
        Some((p, status)) if p == provider && status != "revoked" => Ok(()),
        Some((p, _)) if p == provider => Err(AppError::invalid(
            "connections",
            "That connection was disconnected. Connect the account again.",
        )),
        _ => Err(AppError::invalid(
            "connections",
            format!("Choose a {} connection.", providers().name_of(provider)),
        )),
    }
}

/// Saves the connections step; creates the draft when `id` is None. Returns the install's id.
pub async fn save_connections(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Option<Uuid>,
    slug: &str,
    source: Option<Uuid>,
    destination: Option<Uuid>,
) -> Result<Uuid, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = match id {
        Some(id) => for_change(&mut tx, tenant, user, id).await?,
        None => {
            super::require_manager(&mut tx, tenant, user).await?;
            let (listing_id, version_id, version, name, recipe) = published(&mut tx, slug).await?;
            let vendor: Uuid =
                sqlx::query_scalar("select vendor_org_id from listings where id = $1")
                    .bind(listing_id)
                    .fetch_one(&mut *tx)
                    .await?;
            draft_of(
                tenant, listing_id, version_id, version, name, vendor, recipe, slug,
            )
        }
    };
    if install.status == InstallStatus::Uninstalled {
        return Err(no_install());
    }
    let recipe = &install.recipe;
    let Some(source) = source else {
        return Err(AppError::invalid(
            "connections",
            format!(
                "Choose the {} account to read from.",
                providers().name_of(&recipe.source_provider)
            ),
        ));
    };
    check_choice(&mut tx, tenant, source, &recipe.source_provider).await?;
    let destination = if recipe.destination_provider == STORE_PROVIDER {
        None
    } else {
        let chosen = destination.ok_or_else(|| {
            AppError::invalid(
                "connections",
                format!(
                    "Choose the {} account to write to.",
                    providers().name_of(&recipe.destination_provider)
                ),
            )
        })?;
        check_choice(&mut tx, tenant, chosen, &recipe.destination_provider).await?;
        Some(chosen)
    };
    let id = match id {
        Some(id) => {
            sqlx::query(
                "update installs set source_connection_id = $3, destination_connection_id = $4 \
                 where tenant_id = $1 and id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(source)
            .bind(destination)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let (interval, cron) = schedule_columns(&install.schedule);
            let id: Uuid = sqlx::query_scalar(
                "insert into installs (tenant_id, listing_id, listing_version_id, status, \
                     source_connection_id, destination_connection_id, config, streams, mapping, \
                     schedule_interval, schedule_cron, triggers, created_by) \
                 values ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11, $12) returning id",
            )
            .bind(tenant)
            .bind(install.listing_id)
            .bind(install.version_id)
            .bind(source)
            .bind(destination)
            .bind(sqlx::types::Json(&install.config))
            .bind(&install.streams)
            .bind(sqlx::types::Json(&install.mapping))
            .bind(interval)
            .bind(cron)
            .bind(trigger_texts(&install.triggers))
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                tenant,
                Some(user),
                "install.started",
                serde_json::json!({ "install": id, "listing": slug, "version": install.version }),
            )
            .await?;
            id
        }
    };
    tx.commit().await?;
    // A webhook subscription belongs to the source account it was made with: move it along.
    let moved = install.status == InstallStatus::Active
        && install.source_connection != Some(source)
        && install.webhook_subscription.is_some();
    if moved {
        hooks::drop_subscription(state, &install).await?;
        let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
        let fresh = super::load(&mut tx, tenant, id, false)
            .await?
            .ok_or_else(no_install)?;
        tx.commit().await?;
        hooks::subscribe(state, &fresh).await?;
    }
    Ok(id)
}

fn schedule_columns(schedule: &Schedule) -> (Option<&'static str>, Option<String>) {
    match schedule {
        Schedule::Every(i) => (Some(i.as_str()), None),
        Schedule::Cron(c) => (None, Some(c.clone())),
        Schedule::Manual => (None, None),
    }
}

fn trigger_texts(triggers: &[Trigger]) -> Vec<String> {
    triggers.iter().map(|t| t.as_str().to_owned()).collect()
}

/// Saves the settings step: the listing's config fields, typed, and the source's stream inputs.
pub async fn save_settings(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    config: &BTreeMap<String, String>,
    inputs: &BTreeMap<String, String>,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    let mut values = BTreeMap::new();
    for field in &install.recipe.config_fields {
        let field_name = format!("config.{}", field.key);
        let raw = config.get(&field.key).map(|v| v.trim()).unwrap_or("");
        let value = match field.kind {
            // An unticked checkbox sends nothing.
            ConfigKind::Boolean => if raw.is_empty() || raw == "false" {
                "false"
            } else {
                "true"
            }
            .to_owned(),
            _ => raw.to_owned(),
        };
        if value.is_empty() {
            if field.required {
                return Err(AppError::invalid(
                    &field_name,
                    format!("Fill in {}.", field.label),
                ));
            }
            continue;
        }
        let ok = match field.kind {
            ConfigKind::Text => {
                value.chars().count() <= 500 && !value.chars().any(char::is_control)
            }
            ConfigKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
            ConfigKind::Boolean => true,
            ConfigKind::Email => {
                value.len() <= 254
                    && value
                        .split_once('@')
                        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'))
                    && !value.contains(char::is_whitespace)
            }
            ConfigKind::Url => parse_link(&field_name, &value).is_ok(),
        };
        if !ok {
            return Err(AppError::invalid(
                &field_name,
                match field.kind {
                    ConfigKind::Text => format!(
                        "Keep {} to one line of at most 500 characters.",
                        field.label
                    ),
                    ConfigKind::Number => format!("{} must be a number.", field.label),
                    ConfigKind::Email => format!("{} must be an email address.", field.label),
                    ConfigKind::Url => format!(
                        "{} must be a full link starting with https://.",
                        field.label
                    ),
                    ConfigKind::Boolean => String::new(),
                },
            ));
        }
        values.insert(field.key.clone(), value);
    }
    let mut kept_inputs = BTreeMap::new();
    for field in stream_inputs(&install) {
        let value = inputs.get(&field.name).map(|v| v.trim()).unwrap_or("");
        field
            .check(value)
            .map_err(|message| AppError::invalid(&format!("inputs.{}", field.name), message))?;
        kept_inputs.insert(field.name.clone(), value.to_owned());
    }
    sqlx::query("update installs set config = $3, inputs = $4 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .bind(sqlx::types::Json(&values))
        .bind(sqlx::types::Json(&kept_inputs))
        .execute(&mut *tx)
        .await?;
    edited(&mut tx, &install, user, "settings").await?;
    tx.commit().await?;
    Ok(())
}

/// Saves which of the recipe's streams the install reads.
pub async fn save_streams(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    chosen: &[String],
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    let streams: Vec<String> = install
        .recipe
        .source_streams
        .iter()
        .filter(|s| chosen.iter().any(|c| c.trim() == s.as_str()))
        .cloned()
        .collect();
    if let Some(unknown) = chosen
        .iter()
        .map(|c| c.trim())
        .find(|c| !c.is_empty() && !install.recipe.source_streams.iter().any(|s| s == c))
    {
        return Err(AppError::invalid(
            "streams",
            format!("This integration has no stream \u{201c}{unknown}\u{201d}."),
        ));
    }
    if streams.is_empty() {
        return Err(AppError::invalid(
            "streams",
            "Choose at least one stream to sync.",
        ));
    }
    sqlx::query("update installs set streams = $3 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .bind(&streams)
        .execute(&mut *tx)
        .await?;
    edited(&mut tx, &install, user, "streams").await?;
    tx.commit().await?;
    Ok(())
}

/// Saves the field mapping (blank rows ignored), or the listing's default when `reset`.
pub async fn save_mapping(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    rows: &[MappingInput],
    reset: bool,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    let mapping = if reset {
        install.recipe.mapping.clone()
    } else {
        parse_mapping(rows)?
    };
    sqlx::query("update installs set mapping = $3 where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .bind(sqlx::types::Json(&mapping))
        .execute(&mut *tx)
        .await?;
    edited(&mut tx, &install, user, "mapping").await?;
    tx.commit().await?;
    Ok(())
}

/// A mapping from the wizard's rows, checked by the sync engine's own parser.
fn parse_mapping(rows: &[MappingInput]) -> Result<FieldMapping, AppError> {
    if rows.len() > crate::domain::listings::recipe::MAX_MAPPED_FIELDS * 2 {
        return Err(AppError::invalid("mapping", "Send at most 400 rows."));
    }
    let mut fields = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let (to, from) = (row.to.trim(), row.from.trim());
        if to.chars().any(char::is_control)
            || from.chars().any(char::is_control)
            || to.len() > 500
            || from.len() > 500
        {
            return Err(AppError::invalid(
                "mapping",
                "Keep each cell to one line of at most 500 characters.",
            ));
        }
        match (to.is_empty(), from.is_empty()) {
            (true, true) => continue,
            (true, false) => {
                return Err(AppError::invalid(
                    "mapping",
                    format!(
                        "Row {} copies {from} but names no destination field.",
                        index + 1
                    ),
                ))
            }
            (false, true) => {
                return Err(AppError::invalid(
                    "mapping",
                    format!("Row {} ({to}) names no source field.", index + 1),
                ))
            }
            (false, false) => fields.push(MappedField {
                to: to.to_owned(),
                op: "rename".to_owned(),
                from: from.to_owned(),
            }),
        }
    }
    if fields.is_empty() {
        return Err(AppError::invalid("mapping", "Map at least one field."));
    }
    let mapping = FieldMapping { fields };
    let engine: Mapping = serde_json::to_value(&mapping)
        .and_then(serde_json::from_value)
        .map_err(|err| {
            tracing::error!(error = %err, "a mapping the engine cannot read");
            AppError::Internal
        })?;
    engine
        .validate(None)
        .map_err(|err| AppError::invalid("mapping", format!("The mapping is not valid: {err}.")))?;
    Ok(mapping)
}

/// Saves the schedule and the triggers. An active install's schedule and webhook subscription
/// follow at once.
pub async fn save_schedule(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    schedule: &str,
    cron: &str,
    triggers: &[String],
) -> Result<(), AppError> {
    let (install, triggers) = {
        let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
        let install = for_change(&mut tx, tenant, user, id).await?;
        let recipe = &install.recipe;
        let mut chosen: Vec<Trigger> = Vec::new();
        for text in triggers.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            let trigger: Trigger = text.parse()?;
            if !recipe.triggers.contains(&trigger) {
                return Err(AppError::invalid(
                    "triggers",
                    format!(
                        "This integration does not start syncs {}.",
                        trigger.label().to_lowercase()
                    ),
                ));
            }
            if !chosen.contains(&trigger) {
                chosen.push(trigger);
            }
        }
        let schedule = if chosen.contains(&Trigger::Schedule) {
            match schedule.trim() {
                "cron" => {
                    let shortest = recipe
                        .allowed_schedules
                        .iter()
                        .map(|i| interval_secs(*i))
                        .min()
                        .unwrap_or(3600);
                    Schedule::Cron(schedules::check_cron(cron, shortest)?)
                }
                other => match other.parse::<Schedule>()? {
                    Schedule::Every(i) if recipe.allowed_schedules.contains(&i) => {
                        Schedule::Every(i)
                    }
                    _ => {
                        return Err(AppError::invalid(
                            "schedule",
                            "Choose one of the schedules this integration offers.",
                        ))
                    }
                },
            }
        } else {
            Schedule::Manual
        };
        if chosen.is_empty() {
            return Err(AppError::invalid(
                "triggers",
                "Choose at least one way the sync starts.",
            ));
        }
        chosen.sort_by_key(|t| Trigger::ALL.iter().position(|a| a == t));
        let (interval, cron) = schedule_columns(&schedule);
        sqlx::query(
            "update installs set schedule_interval = $3, schedule_cron = $4, triggers = $5 \
             where tenant_id = $1 and id = $2",
        )
        .bind(tenant)
        .bind(id)
        .bind(interval)
        .bind(cron)
        .bind(trigger_texts(&chosen))
        .execute(&mut *tx)
        .await?;
        edited(&mut tx, &install, user, "schedule").await?;
        if install.status == InstallStatus::Active {
            as_system(&mut tx).await?;
            schedules::set(&mut tx, tenant, id, &schedule).await?;
        }
        tx.commit().await?;
        (install, chosen)
    };
    if install.status == InstallStatus::Active {
        let wants = triggers.contains(&Trigger::Webhook);
        match (wants, install.webhook_subscription.is_some()) {
            (true, false) => hooks::subscribe(state, &install).await?,
            (false, true) => hooks::drop_subscription(state, &install).await?,
            _ => {}
        }
    }
    Ok(())
}

/// Records a change to a step of an active install (drafts are audited when they activate).
async fn edited(
    conn: &mut PgConnection,
    install: &Install,
    user: Uuid,
    step: &str,
) -> sqlx::Result<()> {
    if install.status == InstallStatus::Draft {
        return Ok(());
    }
    audit::record(
        conn,
        install.tenant,
        Some(user),
        "install.changed",
        serde_json::json!({ "install": install.id, "step": step }),
    )
    .await
}

/// The last step: activates a draft. Its webhook subscription is registered first (so that a
/// provider refusing it leaves the draft as it was, with the reason), then, in one transaction,
/// the install becomes active, its schedule is set and a first full sync is enqueued.
pub async fn activate(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<(), AppError> {
    let install = {
        let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
        let install = for_change(&mut tx, tenant, user, id).await?;
        tx.commit().await?;
        install
    };
    if install.status != InstallStatus::Draft {
        return Err(AppError::invalid(
            "install",
            "This integration is already installed.",
        ));
    }
    let page = build(
        state,
        tenant,
        user,
        &install,
        Some(id),
        WizardStep::Review,
        true,
    )
    .await?;
    if let Some((step, problem)) = page.problems.first() {
        return Err(AppError::invalid(
            "install",
            format!("{problem} (step \u{201c}{}\u{201d})", step.label()),
        ));
    }
    if install.listens_for_webhooks() {
        hooks::subscribe(state, &install).await?;
    }
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status != InstallStatus::Draft {
        return Err(AppError::invalid(
            "install",
            "This integration is already installed.",
        ));
    }
    check_connections_active(&mut tx, &install).await?;
    sqlx::query(
        "update installs set status = 'active', installed_at = now() where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        "install.installed",
        serde_json::json!({
            "install": id,
            "listing": install.listing_slug,
            "version": install.version,
        }),
    )
    .await?;
    as_system(&mut tx).await?;
    schedules::set(&mut tx, tenant, id, &install.schedule).await?;
    enqueue(&mut tx, &install, JobKind::Full, "install").await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a draft the customer gave up on.
pub async fn discard(state: &AppState, tenant: Uuid, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status != InstallStatus::Draft {
        return Err(AppError::invalid(
            "install",
            "Only an install still being set up can be discarded; uninstall this one instead.",
        ));
    }
    sqlx::query("delete from installs where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
