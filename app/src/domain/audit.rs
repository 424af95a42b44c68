//! The audit log: who did what to a tenant's settings, append-only.

use sqlx::PgConnection;
use uuid::Uuid;

/// Records `action` in the current tenant's log. Call inside the transaction that made the change,
/// so that the entry and the change commit together.
pub async fn record(
    conn: &mut PgConnection,
    tenant: Uuid,
    actor: Option<Uuid>,
    action: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into audit_log (tenant_id, actor_user_id, action, detail) values ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}
