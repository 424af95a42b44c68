//! Freshness: how old an install's data is against its schedule. An active, scheduled install is
//! **stale** when its last successful sync (or, before the first, its installation) is older than
//! two of its schedule's windows — the interval, or a cron expression's widest gap — so one late
//! or failed run is tolerated and a second is flagged. The customer's install page says "data as
//! of …" and warns; the admin dashboard and the health page list and count the stale installs.

use crate::model::install::Stamp;
use sqlx::PgConnection;
use uuid::Uuid;

/// The rule, over `installs i`: its `stale_after` (kept by triggers from the install's status,
/// its last successful sync or installation, and its schedule's window — null when the install
/// is not active or has no window; migration `dashboard_speed`) has passed. Indexed
/// (`installs_stale`).
pub const STALE: &str = "i.stale_after < now()";

/// When the install's data is as of (its last successful sync), and whether it is stale.
pub async fn of_install(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
) -> sqlx::Result<(Option<Stamp>, bool)> {
    let row: Option<(Option<String>, Option<f64>, bool)> = sqlx::query_as(&format!(
        "select to_char(i.last_synced_at at time zone 'utc', {}), \
                extract(epoch from now() - i.last_synced_at)::float8, \
                coalesce({STALE}, false) \
         from installs i left join sync_schedules s \
              on s.tenant_id = i.tenant_id and s.install_id = i.id \
         where i.tenant_id = $1 and i.id = $2",
        crate::domain::admin::STAMP
    ))
    .bind(tenant)
    .bind(install)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some((at, ago, stale)) => (at.zip(ago).map(|(t, a)| Stamp::new(t, a)), stale),
        None => (None, false),
    })
}
