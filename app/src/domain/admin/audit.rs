//! The audit log across organizations, newest first, searchable by action, actor, organization
//! or anything in the entry's detail (an install's id, a run's), paged by id.

use super::{begin_read, Viewer, STAMP};
use crate::error::AppError;
use crate::model::admin::{AuditEntry, AuditPage};
use crate::model::install::Stamp;
use sqlx::PgPool;
use uuid::Uuid;

/// Entries per page.
pub const PAGE: i64 = 50;
/// The longest search text.
const MAX_QUERY: usize = 200;

/// One page of the log, older than `before` when given (platform admins only).
pub async fn page(
    pool: &PgPool,
    viewer: &Viewer,
    q: &str,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    viewer.require_admin()?;
    let q = q.trim();
    if q.chars().count() > MAX_QUERY {
        return Err(AppError::invalid(
            "q",
            format!("Search for at most {MAX_QUERY} characters."),
        ));
    }
    // A literal substring search: the user's text never acts as a pattern.
    let pattern = (!q.is_empty()).then(|| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let mut tx = begin_read(pool).await?;
    type Row = (
        i64,
        String,
        f64,
        Uuid,
        String,
        Option<String>,
        String,
        serde_json::Value,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select a.id, to_char(a.created_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - a.created_at)::float8, a.tenant_id, o.name, \
                coalesce(a.actor_email, u.email), a.action, a.detail \
         from audit_log a join organizations o on o.id = a.tenant_id \
         left join users u on u.id = a.actor_user_id \
         where ($1::int8 is null or a.id < $1) \
           and ($2::text is null or a.action ilike $2 or o.name ilike $2 \
                or coalesce(a.actor_email, u.email, '') ilike $2 or a.detail::text ilike $2) \
         order by a.id desc limit $3"
    ))
    .bind(before)
    .bind(pattern.as_deref())
    .bind(PAGE + 1)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let more = rows.len() as i64 > PAGE;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .take(PAGE as usize)
        .map(
            |(id, at, ago, org_id, org_name, actor, action, detail)| AuditEntry {
                id,
                at: Stamp::new(at, ago),
                org_id,
                org_name,
                actor: actor.unwrap_or_else(|| "Patchbay".to_owned()),
                action,
                detail: detail.to_string(),
            },
        )
        .collect();
    let older = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        q: q.to_owned(),
        entries,
        older,
    })
}
