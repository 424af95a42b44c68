//! Review by platform admins: the queue of submitted versions, a version beside the published one
//! (a diff per part), approve or reject with notes, and featuring listings in the catalog.
//!
//! Reviewers work across vendors, so these run in the system scope, after checking the platform
//! admin flag. Each decision is written to the vendor's own audit log.

use super::catalog::{self, page_of, vendor_name};
use super::versions::{self, VersionRow};
use crate::domain::audit;
use crate::domain::db::{self, Scope};
use crate::error::AppError;
use crate::model::listing::{
    DiffLine, DiffSection, ListingStatus, ReviewDetail, ReviewItem, VersionContent, VersionState,
};
use crate::model::UserInfo;
use serde_json::json;
use similar::{ChangeTag, TextDiff};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The longest reviewer's note.
pub const MAX_NOTES: usize = 4000;

fn require_admin(user: &UserInfo) -> Result<(), AppError> {
    if user.is_platform_admin {
        Ok(())
    } else {
        Err(AppError::forbidden("Only platform admins review listings."))
    }
}

/// Versions waiting for review, oldest submission first.
pub async fn queue(pool: &PgPool, admin: &UserInfo) -> Result<Vec<ReviewItem>, AppError> {
    require_admin(admin)?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let rows: Vec<(Uuid, String, String, String, i32, String, bool)> = sqlx::query_as(
        "select v.id, l.slug, v.name, o.name, v.number, \
                to_char(v.submitted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'), \
                l.published_version_id is not null \
         from listing_versions v join listings l on l.id = v.listing_id \
         join organizations o on o.id = v.vendor_org_id \
         where v.state = 'in_review' order by v.submitted_at, v.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(
            |(version_id, listing_slug, name, vendor, number, submitted_at, is_update)| {
                ReviewItem {
                    version_id,
                    listing_slug,
                    name,
                    vendor,
                    number,
                    submitted_at,
                    is_update,
                }
            },
        )
        .collect())
}

/// A submitted (or decided) version as the reviewer sees it: its page, and what changed against
/// the published version.
pub async fn detail(
    pool: &PgPool,
    admin: &UserInfo,
    version: Uuid,
) -> Result<ReviewDetail, AppError> {
    require_admin(admin)?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let row = versions::by_id(&mut tx, version).await?;
    let (slug, published): (String, Option<Uuid>) =
        sqlx::query_as("select slug, published_version_id from listings where id = $1")
            .bind(row.listing_id)
            .fetch_one(&mut *tx)
            .await?;
    let before = match published.filter(|p| *p != row.id) {
        Some(id) => Some(versions::by_id(&mut tx, id).await?),
        None => None,
    };
    let vendor = vendor_name(&mut *tx, row.vendor_org_id).await?;
    let all = catalog::categories(&mut *tx).await?;
    tx.commit().await?;
    let diff = before
        .as_ref()
        .map(|b| diff(&b.content(), &row.content()))
        .unwrap_or_default();
    Ok(ReviewDetail {
        item: ReviewItem {
            version_id: row.id,
            listing_slug: slug.clone(),
            name: row.name.clone(),
            vendor: vendor.clone(),
            number: row.number,
            submitted_at: row.submitted_at.clone().unwrap_or_default(),
            is_update: before.is_some(),
        },
        state: row.state.parse()?,
        preview: page_of(&row, &slug, vendor, &all),
        diff,
    })
}

/// Locks the listing, then the version, and checks the version is still in review.
async fn lock_in_review(conn: &mut PgConnection, version: Uuid) -> Result<VersionRow, AppError> {
    let listing: Uuid = sqlx::query_scalar("select listing_id from listing_versions where id = $1")
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| AppError::not_found("No such version."))?;
    sqlx::query("select 1 from listings where id = $1 for update")
        .bind(listing)
        .execute(&mut *conn)
        .await?;
    let sql = format!(
        "select {} from listing_versions v where v.id = $1 for update",
        versions::COLUMNS
    );
    let row: VersionRow = sqlx::query_as(&sql)
        .bind(version)
        .fetch_one(&mut *conn)
        .await?;
    if row.state != VersionState::InReview.as_str() {
        return Err(AppError::conflict(
            "",
            "This version is no longer in review: it was withdrawn or already decided.",
        ));
    }
    Ok(row)
}

fn parse_notes(notes: &str, required: bool) -> Result<Option<String>, AppError> {
    let notes = notes.replace("\r\n", "\n").trim().to_owned();
    if notes.chars().count() > MAX_NOTES {
        return Err(AppError::invalid(
            "notes",
            format!("Keep the notes under {MAX_NOTES} characters."),
        ));
    }
    if notes.is_empty() {
        if required {
            return Err(AppError::invalid(
                "notes",
                "Tell the vendor what to change before they resubmit.",
            ));
        }
        return Ok(None);
    }
    Ok(Some(notes))
}

/// Publishes a version: the catalog shows it from now on; the version it replaces is superseded
/// (installs on it keep running it until they upgrade).
pub async fn approve(
    pool: &PgPool,
    admin: &UserInfo,
    version: Uuid,
    notes: &str,
) -> Result<(), AppError> {
    require_admin(admin)?;
    let notes = parse_notes(notes, false)?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let row = lock_in_review(&mut tx, version).await?;
    sqlx::query("update listing_versions set state = 'superseded' where listing_id = $1 and state = 'published'")
        .bind(row.listing_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "update listing_versions set state = 'published', review_notes = $2, reviewed_at = now(), \
         reviewed_by = $3, published_at = now() where id = $1",
    )
    .bind(row.id)
    .bind(&notes)
    .bind(admin.id)
    .execute(&mut *tx)
    .await?;
    // The catalog copy. An archived listing stays archived: it gets the new version for when it
    // is shown again.
    sqlx::query(
        "update listings set published_version_id = $2, \
            status = case when status = 'archived' then 'archived' else 'published' end, \
            name = $3, tagline = $4, description = $5, categories = $6, logo_hash = $7, \
            published_at = coalesce(published_at, now()) \
         where id = $1",
    )
    .bind(row.listing_id)
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.tagline)
    .bind(&row.description)
    .bind(&row.categories)
    .bind(&row.logo_hash)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        row.vendor_org_id,
        Some(admin.id),
        "listing.approved",
        json!({ "listing": row.listing_id, "version": row.number, "notes": notes }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a version back to its vendor with notes saying what to change.
pub async fn reject(
    pool: &PgPool,
    admin: &UserInfo,
    version: Uuid,
    notes: &str,
) -> Result<(), AppError> {
    require_admin(admin)?;
    let notes = parse_notes(notes, true)?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let row = lock_in_review(&mut tx, version).await?;
    sqlx::query(
        "update listing_versions set state = 'rejected', review_notes = $2, reviewed_at = now(), \
         reviewed_by = $3 where id = $1",
    )
    .bind(row.id)
    .bind(&notes)
    .bind(admin.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update listings set status = $2 where id = $1 and published_version_id is null")
        .bind(row.listing_id)
        .bind(ListingStatus::Rejected.as_str())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        row.vendor_org_id,
        Some(admin.id),
        "listing.rejected",
        json!({ "listing": row.listing_id, "version": row.number, "notes": notes }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Features a published listing in the catalog (after the ones featured before it), or stops
/// featuring it.
pub async fn set_featured(
    pool: &PgPool,
    admin: &UserInfo,
    slug: &str,
    featured: bool,
) -> Result<(), AppError> {
    require_admin(admin)?;
    let mut tx = db::begin(pool, Scope::System).await?;
    let listing: Option<(Uuid, Uuid)> = sqlx::query_as(
        "select id, vendor_org_id from listings where slug = $1 and status = 'published' for update",
    )
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, vendor)) = listing else {
        return Err(AppError::not_found("No published listing with that slug."));
    };
    sqlx::query(
        "update listings set featured_rank = case when $2 then \
            coalesce(featured_rank, (select coalesce(max(featured_rank), 0) + 1 from listings)) end \
         where id = $1",
    )
    .bind(id)
    .bind(featured)
    .execute(&mut *tx)
    .await?;
    let action = if featured {
        "listing.featured"
    } else {
        "listing.unfeatured"
    };
    audit::record(
        &mut tx,
        vendor,
        Some(admin.id),
        action,
        json!({ "listing": id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What changed from `before` to `after`, part by part; unchanged parts are left out.
pub fn diff(before: &VersionContent, after: &VersionContent) -> Vec<DiffSection> {
    let recipe = |c: &VersionContent| serde_json::to_string_pretty(&c.recipe).unwrap_or_default();
    let links = |c: &VersionContent| {
        [
            ("Docs", &c.docs_url),
            ("Support", &c.support_url),
            ("Website", &c.website_url),
        ]
        .iter()
        .map(|(label, link)| format!("{label}: {}", link.as_deref().unwrap_or("—")))
        .collect::<Vec<_>>()
        .join("\n")
    };
    let parts: [(&str, String, String); 7] = [
        ("Name", before.name.clone(), after.name.clone()),
        ("Tagline", before.tagline.clone(), after.tagline.clone()),
        (
            "Description",
            before.description.clone(),
            after.description.clone(),
        ),
        (
            "Categories",
            before.categories.join("\n"),
            after.categories.join("\n"),
        ),
        (
            "Logo",
            before.logo_hash.clone().unwrap_or_default(),
            after.logo_hash.clone().unwrap_or_default(),
        ),
        ("Links", links(before), links(after)),
        ("Recipe", recipe(before), recipe(after)),
    ];
    parts
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| DiffSection {
            field: field.to_owned(),
            lines: line_diff(&old, &new),
        })
        .collect()
}

fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|change| DiffLine {
            sign: match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            },
            text: change.value().trim_end_matches('\n').to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::listing::Recipe;

    fn content(name: &str, description: &str) -> VersionContent {
        VersionContent {
            name: name.into(),
            tagline: "t".into(),
            description: description.into(),
            categories: vec!["crm".into()],
            logo_hash: None,
            docs_url: None,
            support_url: None,
            website_url: None,
            recipe: Recipe::default(),
        }
    }

    #[test]
    fn the_diff_shows_only_changed_parts_line_by_line() {
        let diff = diff(&content("A", "one\ntwo\n"), &content("A", "one\nthree\n"));
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].field, "Description");
        let signs: Vec<(char, &str)> = diff[0]
            .lines
            .iter()
            .map(|l| (l.sign, l.text.as_str()))
            .collect();
        assert_eq!(signs, [(' ', "one"), ('-', "two"), ('+', "three")]);
    }
}
