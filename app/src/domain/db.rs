//! Database access under row-level security.
//!
//! The app pool switches every connection to the `patchbay_app` role, which has no BYPASSRLS. Work
//! runs in a transaction that first states its scope with `set_config(..., true)` (local to the
//! transaction, so a pooled connection never carries one request's tenant into the next). A query
//! that forgets its scope sees no tenant rows at all.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The database role the application runs as (created by the first migration).
pub const APP_ROLE: &str = "patchbay_app";

/// Opens a pool whose connections run as [`APP_ROLE`].
pub async fn connect_app_pool(
    options: PgConnectOptions,
    max_connections: u32,
) -> sqlx::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("set role patchbay_app").await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// Whose data a transaction may touch.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One tenant's rows, on behalf of a user (or of no user, for background work).
    Tenant { tenant: Uuid, user: Option<Uuid> },
    /// A user's own rows across tenants (their memberships), and no tenant's data.
    User(Uuid),
    /// Platform-wide: platform admins, workers and the demo seed. Policies name this flag.
    System,
    /// No tenant and no user: what anyone may read, such as the published catalog.
    Public,
}

/// Begins a transaction bound to `scope`. This is the one way domain code reaches tenant data.
///
/// The scope is set in the same round trip as `BEGIN` (one simple query of two statements): every
/// transaction of the application pays one round trip less. The values written into it are UUIDs
/// (hex digits and dashes) and a constant, never text from outside.
pub async fn begin(pool: &PgPool, scope: Scope) -> sqlx::Result<Transaction<'static, Postgres>> {
    let (tenant, user, system) = match scope {
        Scope::Tenant { tenant, user } => (Some(tenant), user, false),
        Scope::User(user) => (None, Some(user), false),
        Scope::System => (None, None, true),
        Scope::Public => (None, None, false),
    };
    let text = |id: Option<Uuid>| id.map(|u| u.hyphenated().to_string()).unwrap_or_default();
    pool.begin_with(format!(
        "BEGIN; SELECT set_config('app.tenant_id', '{}', true), \
         set_config('app.user_id', '{}', true), set_config('app.system', '{}', true)",
        text(tenant),
        text(user),
        if system { "on" } else { "" }
    ))
    .await
}

/// A tenant's transaction on behalf of `user`.
pub async fn tenant_tx(
    pool: &PgPool,
    tenant: Uuid,
    user: Uuid,
) -> sqlx::Result<Transaction<'static, Postgres>> {
    begin(
        pool,
        Scope::Tenant {
            tenant,
            user: Some(user),
        },
    )
    .await
}
