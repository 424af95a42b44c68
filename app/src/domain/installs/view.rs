//! How installs are shown: the organization's list and one install's page (its live progress,
//! history, timeline, quarantined records, and what it wrote to the Patchbay store).

use super::{hooks, no_install, role, Install};
use crate::domain::db;
use crate::domain::listings::recipe::providers;
use crate::domain::runs;
use crate::domain::schedules;
use crate::domain::AppState;
use crate::error::AppError;
use crate::model::install::{
    InstallPage, InstallStatus, InstallSummary, InstallsPage, RunOutcome, RunView, Stamp,
    StorePreview,
};
use crate::model::listing::{STORE_NAME, STORE_PROVIDER};
use crate::model::Role;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

fn summary(
    install: &Install,
    last_run: Option<RunView>,
    next: Option<OffsetDateTime>,
) -> InstallSummary {
    let recipe = &install.recipe;
    InstallSummary {
        id: install.id,
        listing_slug: install.listing_slug.clone().unwrap_or_default(),
        listing_name: install.listing_name.clone(),
        status: install.status,
        status_reason: install.status_reason.clone(),
        source_name: providers().name_of(&recipe.source_provider),
        destination_name: if recipe.destination_provider == STORE_PROVIDER {
            STORE_NAME.to_owned()
        } else {
            providers().name_of(&recipe.destination_provider)
        },
        schedule: install.schedule.label(),
        last_run,
        next_run_at: next.map(|t| {
            let now = OffsetDateTime::now_utc();
            Stamp::new(stamp(t), (now - t).as_seconds_f64())
        }),
    }
}

fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `/installs`: the organization's installs (drafts too), newest first.
pub async fn list(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    org_name: String,
) -> Result<InstallsPage, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    role(&mut tx, tenant, user).await?;
    let installs = super::list(&mut tx, tenant, false).await?;
    let ids: Vec<Uuid> = installs.iter().map(|i| i.id).collect();
    let mut latest = runs::latest(&mut tx, tenant, &ids).await?;
    let mut rows = Vec::with_capacity(installs.len());
    for install in &installs {
        let next = schedules::next_run(&mut tx, tenant, install.id).await?;
        let last = latest
            .iter()
            .position(|(id, _)| *id == install.id)
            .map(|at| latest.swap_remove(at).1);
        rows.push(summary(install, last, next));
    }
    tx.commit().await?;
    Ok(InstallsPage {
        org_name,
        installs: rows,
    })
}

async fn account(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> sqlx::Result<String> {
    let row: Option<(String, Option<String>, String)> = sqlx::query_as(
        "select provider, account_label, status from connections where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((provider, label, status)) => {
            let name = providers().name_of(&provider);
            let who = label.map(|l| format!("{name} · {l}")).unwrap_or(name);
            if status == "active" {
                who
            } else {
                format!("{who} (needs reconnecting)")
            }
        }
        None => "(gone)".to_owned(),
    })
}

/// The store's records of an install, most recently changed first.
async fn store_preview(conn: &mut PgConnection, install: &Install) -> sqlx::Result<StorePreview> {
    let total: i64 = sqlx::query_scalar(
        "select count(*) from store_records where tenant_id = $1 and install_id = $2",
    )
    .bind(install.tenant)
    .bind(install.id)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "select external_id, data from store_records where tenant_id = $1 and install_id = $2 \
         order by updated_at desc, external_id limit 10",
    )
    .bind(install.tenant)
    .bind(install.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(StorePreview {
        collection: install.recipe.destination_stream.clone(),
        total,
        records: rows
            .into_iter()
            .map(|(id, data)| (id, serde_json::to_string_pretty(&data).unwrap_or_default()))
            .collect(),
    })
}

/// `/installs/{id}`.
pub async fn page(
    state: &AppState,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<InstallPage, AppError> {
    let mut tx = db::tenant_tx(&state.pool, tenant, user).await?;
    let can_manage = role(&mut tx, tenant, user).await? >= Role::Admin;
    let install = super::load(&mut tx, tenant, id, false)
        .await?
        .ok_or_else(no_install)?;
    let history = runs::history(&mut tx, tenant, id, 40).await?;
    let newest = history.first().and_then(|g| g.attempts.first()).cloned();
    let events = match &newest {
        Some(run) => runs::timeline(&mut tx, tenant, run.id, 60).await?,
        None => Vec::new(),
    };
    let current = newest.clone().filter(|r| r.outcome == RunOutcome::Running);
    let next = schedules::next_run(&mut tx, tenant, id).await?;
    let mut connections = Vec::new();
    if let Some(c) = install.source_connection {
        connections.push(("Reads from".to_owned(), account(&mut tx, tenant, c).await?));
    }
    match install.destination_connection {
        Some(c) => connections.push(("Writes to".to_owned(), account(&mut tx, tenant, c).await?)),
        None => connections.push((
            "Writes to".to_owned(),
            format!(
                "{STORE_NAME}, collection {}",
                install.recipe.destination_stream
            ),
        )),
    }
    let upgrade_to: Option<i32> = sqlx::query_scalar(
        "select v.number from listings l join listing_versions v on v.id = l.published_version_id \
         where l.id = $1 and l.status = 'published'",
    )
    .bind(install.listing_id)
    .fetch_optional(&mut *tx)
    .await?
    .filter(|n| *n > install.version);
    let store = if install.to_store() {
        Some(store_preview(&mut tx, &install).await?)
    } else {
        None
    };
    let quarantined = runs::quarantined(&mut tx, tenant, id, 20).await?;
    let (last_success_at, stale) = super::freshness::of_install(&mut tx, tenant, id).await?;
    tx.commit().await?;
    let webhook_url = (install.listens_for_webhooks()
        && install.status != InstallStatus::Uninstalled)
        .then(|| {
            hooks::url(
                &state.connect.public_url,
                &install.recipe.source_provider,
                id,
            )
        });
    Ok(InstallPage {
        summary: summary(&install, newest, next),
        version: install.version,
        upgrade_to: upgrade_to.filter(|_| install.status != InstallStatus::Uninstalled),
        triggers: install.triggers.clone(),
        connections,
        webhook_url,
        webhook_manual: install.listens_for_webhooks()
            && !hooks::automatic(&state.connect, &install),
        webhook_ready: install.has_webhook_secret,
        streams: install.streams.clone(),
        current,
        history,
        events,
        quarantined,
        store,
        last_success_at,
        stale,
        can_manage,
    })
}
