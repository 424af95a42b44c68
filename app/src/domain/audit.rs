//! The audit log: who did what, when, in which organization — append-only at the database level
//! (a trigger refuses changes; the app role holds no update or delete privilege). Entries keep
//! the actor's email, so that they still say who after the user is gone. Platform admins read
//! and search it across organizations (`admin::audit`).

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
        "insert into audit_log (tenant_id, actor_user_id, action, detail, actor_email) \
         select $1, $2, $3, $4, (select email from users where id = $2)",
    )
    .bind(tenant)
    .bind(actor)
    .bind(action)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}
