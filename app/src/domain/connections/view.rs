//! How connections are shown: the tenant's list, one connection, and a provider as a connect page
//! offers it. Secrets are never read here.

use super::{auth_kind, member_role, no_connection, STAMP};
use crate::domain::db;
use crate::domain::listings::recipe::providers;
use crate::error::AppError;
use crate::model::connection::{AuthKind, ConnectField, ConnectProvider, ConnectionView};
use connectors::spec::ProviderSpec;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

type ViewRow = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    sqlx::types::Json<BTreeMap<String, String>>,
    Vec<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn view_select() -> String {
    format!(
        "select id, provider, auth_kind, status, status_reason, account_label, vars, scopes, \
         to_char(created_at at time zone 'UTC', {STAMP}), to_char(last_used_at at time zone 'UTC', {STAMP}), \
         to_char(refreshed_at at time zone 'UTC', {STAMP}), to_char(expires_at at time zone 'UTC', {STAMP}) \
         from connections"
    )
}

fn to_view(row: ViewRow) -> Result<ConnectionView, AppError> {
    let (
        id,
        provider,
        kind,
        status,
        reason,
        label,
        vars,
        scopes,
        created,
        used,
        refreshed,
        expires,
    ) = row;
    let spec = providers().get(&provider);
    let details = spec
        .map(|s| {
            s.connection_fields
                .iter()
                .filter(|f| !f.secret)
                .filter_map(|f| vars.0.get(&f.name).map(|v| (f.label.clone(), v.clone())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ConnectionView {
        id,
        provider_name: providers().name_of(&provider),
        provider,
        auth_kind: kind.parse()?,
        status: status.parse()?,
        status_reason: reason,
        account_label: label,
        details,
        scopes,
        created_at: created,
        last_used_at: used,
        refreshed_at: refreshed,
        expires_at: expires,
    })
}

/// The tenant's connections, by provider.
pub async fn list(
    pool: &PgPool,
    tenant: Uuid,
    user: Uuid,
) -> Result<Vec<ConnectionView>, AppError> {
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    member_role(&mut tx, tenant, user).await?;
    let rows: Vec<ViewRow> = sqlx::query_as(&format!(
        "{} where tenant_id = $1 order by provider, created_at",
        view_select()
    ))
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter().map(to_view).collect()
}

/// One of the tenant's connections.
pub async fn get(
    pool: &PgPool,
    tenant: Uuid,
    user: Uuid,
    id: Uuid,
) -> Result<ConnectionView, AppError> {
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    member_role(&mut tx, tenant, user).await?;
    let row: Option<ViewRow> = sqlx::query_as(&format!(
        "{} where tenant_id = $1 and id = $2",
        view_select()
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    to_view(row.ok_or_else(no_connection)?)
}

/// A provider as a connect page offers it, with the tenant's connections to it.
pub fn connect_provider(
    spec: &ProviderSpec,
    ready_apps: &[String],
    connections: &[ConnectionView],
) -> Option<ConnectProvider> {
    let kind = auth_kind(spec)?;
    let permissions = spec
        .oauth2()
        .map(|o| {
            o.scopes
                .iter()
                .map(|s| {
                    o.scope_descriptions
                        .get(s)
                        .cloned()
                        .unwrap_or_else(|| s.clone())
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ConnectProvider {
        id: spec.id.clone(),
        name: spec.name.clone(),
        description: spec.description.clone(),
        auth_kind: kind,
        fields: spec
            .connection_fields
            .iter()
            .map(|f| ConnectField {
                name: f.name.clone(),
                label: f.label.clone(),
                help: f.help.clone(),
                secret: f.secret,
                max_len: f.max_len,
            })
            .collect(),
        permissions,
        ready: kind != AuthKind::OAuth2 || ready_apps.contains(&spec.id),
        connections: connections
            .iter()
            .filter(|c| c.provider == spec.id)
            .cloned()
            .collect(),
    })
}
