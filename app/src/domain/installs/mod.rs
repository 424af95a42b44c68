//! Installs: a customer's configured copy of one listing version — which connections it uses, the
//! listing's settings filled in, the streams it reads, its field mapping, schedule and triggers —
//! and what the customer does with it afterwards: pause, resume, run now, resync, upgrade,
//! uninstall.
//!
//! - [`wizard`]: the install wizard's steps (a draft until the last one), also used to edit.
//! - [`hooks`]: the source's webhook subscription for an install.
//! - [`view`]: the installs list and an install's page.
//!
//! An install runs the listing version it was made from until the customer upgrades. Stopping
//! work (pause, uninstall) removes its schedule, its queued jobs and asks a running one to stop,
//! in the same transaction as the status change; uninstalling keeps the run history.

pub mod freshness;
pub mod hooks;
pub mod view;
pub mod wizard;

use crate::domain::audit;
use crate::domain::db::{self, Scope};
use crate::domain::queue::{self, JobKind, NewJob, QueueError};
use crate::domain::schedules;
use crate::domain::AppState;
use crate::error::AppError;
use crate::model::install::{InstallStatus, Schedule};
use crate::model::listing::{FieldMapping, Recipe, Trigger, STORE_PROVIDER};
use crate::model::{OrgKind, Role};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

/// An install as stored, with the recipe of its listing version.
#[derive(Debug, Clone)]
pub struct Install {
    pub tenant: Uuid,
    pub id: Uuid,
    pub listing_id: Uuid,
    /// None when the listing is no longer in the catalog (archived).
    pub listing_slug: Option<String>,
    pub listing_name: String,
    pub vendor: Uuid,
    pub version_id: Uuid,
    pub version: i32,
    pub status: InstallStatus,
    pub status_reason: Option<String>,
    pub source_connection: Option<Uuid>,
    pub destination_connection: Option<Uuid>,
    pub config: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, String>,
    pub streams: Vec<String>,
    pub mapping: FieldMapping,
    pub schedule: Schedule,
    pub triggers: Vec<Trigger>,
    pub webhook_subscription: Option<String>,
    /// Whether a webhook signing secret is stored.
    pub has_webhook_secret: bool,
    pub recipe: Recipe,
}

impl Install {
    /// Whether the destination is the Patchbay store.
    pub fn to_store(&self) -> bool {
        self.recipe.destination_provider == STORE_PROVIDER
    }

    pub fn listens_for_webhooks(&self) -> bool {
        self.triggers.contains(&Trigger::Webhook)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: Uuid,
    id: Uuid,
    listing_id: Uuid,
    slug: Option<String>,
    name: String,
    vendor_org_id: Uuid,
    listing_version_id: Uuid,
    number: i32,
    status: String,
    status_reason: Option<String>,
    source_connection_id: Option<Uuid>,
    destination_connection_id: Option<Uuid>,
    config: sqlx::types::Json<BTreeMap<String, String>>,
    inputs: sqlx::types::Json<BTreeMap<String, String>>,
    streams: Vec<String>,
    mapping: sqlx::types::Json<FieldMapping>,
    schedule_interval: Option<String>,
    schedule_cron: Option<String>,
    triggers: Vec<String>,
    webhook_subscription_id: Option<String>,
    has_webhook_secret: bool,
    recipe: sqlx::types::Json<Recipe>,
}

const SELECT: &str = "select i.tenant_id, i.id, i.listing_id, l.slug, v.name, v.vendor_org_id, \
     i.listing_version_id, v.number, i.status, i.status_reason, i.source_connection_id, \
     i.destination_connection_id, i.config, i.inputs, i.streams, i.mapping, i.schedule_interval, \
     i.schedule_cron, i.triggers, i.webhook_subscription_id, \
     i.webhook_secret_enc is not null as has_webhook_secret, v.recipe \
     from installs i join listing_versions v on v.id = i.listing_version_id \
     left join listings l on l.id = i.listing_id";

impl TryFrom<Row> for Install {
    type Error = AppError;
    fn try_from(r: Row) -> Result<Self, AppError> {
        let schedule = match (r.schedule_interval, r.schedule_cron) {
            (Some(i), _) => Schedule::Every(i.parse()?),
            (None, Some(c)) => Schedule::Cron(c),
            (None, None) => Schedule::Manual,
        };
        Ok(Install {
            tenant: r.tenant_id,
            id: r.id,
            listing_id: r.listing_id,
            listing_slug: r.slug,
            listing_name: r.name,
            vendor: r.vendor_org_id,
            version_id: r.listing_version_id,
            version: r.number,
            status: r.status.parse()?,
            status_reason: r.status_reason,
            source_connection: r.source_connection_id,
            destination_connection: r.destination_connection_id,
            config: r.config.0,
            inputs: r.inputs.0,
            streams: r.streams,
            mapping: r.mapping.0,
            schedule,
            triggers: r.triggers.iter().filter_map(|t| t.parse().ok()).collect(),
            webhook_subscription: r.webhook_subscription_id,
            has_webhook_secret: r.has_webhook_secret,
            recipe: r.recipe.0,
        })
    }
}

/// Loads an install of the transaction's tenant; `lock` takes its row lock (changes to one
/// install are serialized by it).
pub async fn load(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<Install>, AppError> {
    let sql = format!(
        "{SELECT} where i.tenant_id = $1 and i.id = $2{}",
        if lock { " for update of i" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(Install::try_from).transpose()
}

/// The tenant's installs (not uninstalled ones unless `all`), newest first.
pub async fn list(
    conn: &mut PgConnection,
    tenant: Uuid,
    all: bool,
) -> Result<Vec<Install>, AppError> {
    let sql = format!(
        "{SELECT} where i.tenant_id = $1{} order by i.created_at desc",
        if all {
            ""
        } else {
            " and i.status <> 'uninstalled'"
        }
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(tenant).fetch_all(conn).await?;
    rows.into_iter().map(Install::try_from).collect()
}

/// An install for the sync engine (system scope), by id alone.
pub async fn load_for_sync(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<Install>, AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let found = load(&mut tx, tenant, id, false).await?;
    tx.commit().await?;
    Ok(found)
}

fn no_install() -> AppError {
    AppError::not_found("No such install in this organization.")
}

/// Who may do what with installs: members see them; owners and admins change them. Only
/// customer organizations install.
pub(crate) async fn role(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Role, AppError> {
    let role = crate::domain::orgs::member_role(conn, tenant, user)
        .await?
        .ok_or_else(|| AppError::forbidden("Switch to an organization you belong to."))?;
    let kind: String = sqlx::query_scalar("select kind from organizations where id = $1")
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await?;
    if kind != OrgKind::Customer.as_str() {
        return Err(AppError::forbidden(
            "Integrations are installed by customer organizations. Switch to one in the header.",
        ));
    }
    Ok(role)
}

pub(crate) async fn require_manager(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<(), AppError> {
    if role(conn, tenant, user).await? >= Role::Admin {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "Only owners and admins of the organization install and change integrations.",
        ))
    }
}

/// An install of the tenant for one of its managers, locked for a change.
async fn for_change(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<Install, AppError> {
    require_manager(conn, tenant, user).await?;
    load(conn, tenant, id, true).await?.ok_or_else(no_install)
}

fn queue_error(err: QueueError) -> AppError {
    match err {
        QueueError::Db(e) => AppError::from(e),
        other => {
            tracing::error!(error = %other, "queue error");
            AppError::Internal
        }
    }
}

/// Enqueues a sync of an active install now, in the caller's (system-scoped) transaction.
pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    install: &Install,
    kind: JobKind,
    trigger: &str,
) -> Result<(), AppError> {
    let job = NewJob {
        tenant: install.tenant,
        install: install.id,
        kind,
        trigger: trigger.to_owned(),
        run_at: None,
        payload: serde_json::json!({}),
    };
    match queue::enqueue_in(conn, &job).await {
        Ok(_) | Err(QueueError::Busy) => Ok(()),
        Err(err) => Err(queue_error(err)),
    }
}

/// Sets the transaction's scope to the platform's, for the queue's tables (every queue change
/// is platform work; the caller has already checked the customer's right to ask for it).
async fn as_system(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("select set_config('app.system', 'on', true)")
        .execute(conn)
        .await?;
    Ok(())
}

/// "Run now" (an incremental sync) or "Resync everything" (a full one). A run already waiting
/// is the same request.
pub async fn run_now(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
    kind: JobKind,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status != InstallStatus::Active {
        return Err(AppError::invalid(
            "install",
            match install.status {
                InstallStatus::Paused => "The install is paused. Resume it first.",
                InstallStatus::Draft => "Finish setting up the install first.",
                _ => "The install was uninstalled.",
            },
        ));
    }
    if kind == JobKind::Incremental && !install.triggers.contains(&Trigger::Manual) {
        return Err(AppError::invalid(
            "install",
            "This integration does not offer runs by hand; it runs on its schedule.",
        ));
    }
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        if kind == JobKind::Full {
            "install.resync"
        } else {
            "install.run_now"
        },
        serde_json::json!({ "install": id }),
    )
    .await?;
    as_system(&mut tx).await?;
    enqueue(&mut tx, &install, kind, "manual").await?;
    tx.commit().await?;
    Ok(())
}

/// Pauses an install: no schedule, no queued job, a running one stops at its next heartbeat.
pub async fn pause(state: &AppState, tenant: Uuid, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status != InstallStatus::Active {
        return Err(AppError::invalid(
            "install",
            "Only an active install can be paused.",
        ));
    }
    set_status(&mut tx, &install, InstallStatus::Paused, None).await?;
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        "install.paused",
        serde_json::json!({ "install": id }),
    )
    .await?;
    stop_work(&mut tx, &install).await?;
    tx.commit().await?;
    Ok(())
}

/// Pauses an install because a connection it uses needs reconnecting (the sync engine calls this
/// when a provider refused the credentials and a refresh could not fix it). `reason` is for the
/// customer.
pub async fn pause_for_reauth(
    pool: &sqlx::PgPool,
    tenant: Uuid,
    id: Uuid,
    reason: &str,
) -> Result<(), AppError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let Some(install) = load(&mut tx, tenant, id, true).await? else {
        return Ok(());
    };
    if install.status == InstallStatus::Active {
        set_status(&mut tx, &install, InstallStatus::Paused, Some(reason)).await?;
        stop_work(&mut tx, &install).await?;
        tracing::warn!(%tenant, install = %id, reason, "install paused: a connection needs reconnecting");
    }
    tx.commit().await?;
    Ok(())
}

/// Resumes a paused install: its schedule again (a window missed while paused runs once, soon),
/// provided its connections work.
pub async fn resume(state: &AppState, tenant: Uuid, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status != InstallStatus::Paused {
        return Err(AppError::invalid(
            "install",
            "Only a paused install can be resumed.",
        ));
    }
    wizard::check_connections_active(&mut tx, &install).await?;
    set_status(&mut tx, &install, InstallStatus::Active, None).await?;
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        "install.resumed",
        serde_json::json!({ "install": id }),
    )
    .await?;
    as_system(&mut tx).await?;
    schedules::set(&mut tx, tenant, id, &install.schedule).await?;
    // Catch up on what changed while paused.
    enqueue(&mut tx, &install, JobKind::Incremental, "resume").await?;
    tx.commit().await?;
    Ok(())
}

/// Uninstalls: all work stops, the webhook subscription is removed at the provider, and the run
/// history stays. The Patchbay store's records of the install stay too, until the organization
/// deletes them.
pub async fn uninstall(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<(), AppError> {
    let subscription = {
        let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
        let install = for_change(&mut tx, tenant, user, id).await?;
        if install.status == InstallStatus::Uninstalled {
            return Err(AppError::invalid(
                "install",
                "This integration is already uninstalled.",
            ));
        }
        set_status(&mut tx, &install, InstallStatus::Uninstalled, None).await?;
        sqlx::query(
            "update installs set uninstalled_at = now(), webhook_subscription_id = null, \
             webhook_secret_enc = null where tenant_id = $1 and id = $2",
        )
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            tenant,
            Some(user),
            "install.uninstalled",
            serde_json::json!({ "install": id }),
        )
        .await?;
        stop_work(&mut tx, &install).await?;
        tx.commit().await?;
        install
            .webhook_subscription
            .clone()
            .zip(install.source_connection)
            .map(|sub| (install, sub))
    };
    // After the commit: the install is uninstalled whatever the provider answers, and a
    // delivery that still arrives finds no active install and is refused.
    if let Some((install, (subscription, connection))) = subscription {
        hooks::unsubscribe(state, &install, connection, &subscription).await;
    }
    Ok(())
}

/// Moves the install to the listing's newest published version: the new default mapping when the
/// customer kept the old default, the customer's own otherwise; the streams that still exist. A
/// full sync follows, since the mapping may have changed every record.
pub async fn upgrade(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<i32, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let install = for_change(&mut tx, tenant, user, id).await?;
    if install.status == InstallStatus::Uninstalled {
        return Err(AppError::invalid(
            "install",
            "This integration is uninstalled.",
        ));
    }
    let newest: Option<(Uuid, i32, sqlx::types::Json<Recipe>)> = sqlx::query_as(
        "select v.id, v.number, v.recipe from listings l \
         join listing_versions v on v.id = l.published_version_id \
         where l.id = $1 and l.status = 'published'",
    )
    .bind(install.listing_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((version_id, number, recipe)) = newest.filter(|(_, n, _)| *n > install.version) else {
        return Err(AppError::invalid(
            "install",
            "The install already runs the newest version of this integration.",
        ));
    };
    let recipe = recipe.0;
    let mapping = if install.mapping == install.recipe.mapping {
        recipe.mapping.clone()
    } else {
        install.mapping.clone()
    };
    let mut streams: Vec<String> = install
        .streams
        .iter()
        .filter(|s| recipe.source_streams.contains(s))
        .cloned()
        .collect();
    if streams.is_empty() {
        streams = recipe.source_streams.clone();
    }
    let triggers: Vec<String> = install
        .triggers
        .iter()
        .filter(|t| recipe.triggers.contains(t))
        .map(|t| t.as_str().to_owned())
        .collect();
    sqlx::query(
        "update installs set listing_version_id = $3, mapping = $4, streams = $5, triggers = $6 \
         where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(version_id)
    .bind(sqlx::types::Json(&mapping))
    .bind(&streams)
    .bind(&triggers)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        tenant,
        Some(user),
        "install.upgraded",
        serde_json::json!({ "install": id, "from": install.version, "to": number }),
    )
    .await?;
    if install.status == InstallStatus::Active {
        as_system(&mut tx).await?;
        enqueue(&mut tx, &install, JobKind::Full, "upgrade").await?;
    }
    tx.commit().await?;
    Ok(number)
}

pub(crate) async fn set_status(
    conn: &mut PgConnection,
    install: &Install,
    status: InstallStatus,
    reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update installs set status = $3, status_reason = $4 where tenant_id = $1 and id = $2",
    )
    .bind(install.tenant)
    .bind(install.id)
    .bind(status.as_str())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the schedule and the queued jobs, and flags a running job, in the caller's
/// transaction (which it turns to system scope: the queue is platform work).
pub(crate) async fn stop_work(conn: &mut PgConnection, install: &Install) -> Result<(), AppError> {
    as_system(conn).await?;
    schedules::remove(conn, install.tenant, install.id).await?;
    queue::stop_install(conn, install.tenant, install.id)
        .await
        .map_err(queue_error)?;
    Ok(())
}
