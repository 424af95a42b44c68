//! Marketplace listings, from the vendor's side: create, edit, add a logo, submit for review,
//! withdraw, archive. Review lives in [`review`], the public catalog in [`catalog`], and the check
//! of recipes against provider specs in [`recipe`].
//!
//! Every function here checks that the actor belongs to the vendor organization that owns the
//! listing, and runs in that tenant's transaction, so row-level security backs the check. Locks
//! are always taken listing row first, then version row, here and in review, so that a vendor's
//! edit and a reviewer's decision on the same listing serialize instead of deadlocking.

pub mod cache;
pub mod catalog;
pub mod recipe;
pub mod review;
mod versions;

use super::audit;
use super::db;
use super::logos;
use crate::error::{on_constraint, AppError};
use crate::model::listing::{
    parse_line, parse_link, parse_slug, ListingEditor, ListingForm, ListingStatus, Recipe,
    VendorListingRow, VersionContent, VersionState,
};
use crate::model::{parse_name, Role};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use versions::{open_version, VersionRow};

/// At most this many categories per listing.
pub const MAX_CATEGORIES: usize = 3;
/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 20_000;

/// The actor's role in a vendor organization; anyone else is refused.
async fn vendor_role(conn: &mut PgConnection, vendor: Uuid, user: Uuid) -> Result<Role, AppError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "select m.role, o.kind from memberships m join organizations o on o.id = m.tenant_id \
         where m.tenant_id = $1 and m.user_id = $2",
    )
    .bind(vendor)
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Err(AppError::forbidden(
            "Switch to a vendor organization you belong to.",
        )),
        Some((_, kind)) if kind != "vendor" => Err(AppError::forbidden(
            "Only vendor organizations publish listings. Create one, or switch to one in the header.",
        )),
        Some((role, _)) => role.parse(),
    }
}

/// The listing row a vendor works on.
#[derive(sqlx::FromRow)]
struct ListingRow {
    id: Uuid,
    slug: String,
    status: String,
    published_version_id: Option<Uuid>,
}

fn no_listing() -> AppError {
    AppError::not_found("No such listing in this organization.")
}

/// Locks a listing of `vendor` for a change. Other vendors' listings are "not found", even
/// published ones (which row-level security lets anyone read).
async fn lock_listing(
    conn: &mut PgConnection,
    vendor: Uuid,
    listing: Uuid,
) -> Result<ListingRow, AppError> {
    sqlx::query_as(
        "select id, slug, status, published_version_id from listings \
         where id = $1 and vendor_org_id = $2 for update",
    )
    .bind(listing)
    .bind(vendor)
    .fetch_optional(conn)
    .await?
    .ok_or_else(no_listing)
}

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// A vendor member's transaction on one of the vendor's listings: membership checked, the
/// listing row locked (before any version row, as everywhere).
async fn open_listing(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
) -> Result<(Tx, Role, ListingRow), AppError> {
    let mut tx = db::tenant_tx(pool, vendor, actor).await?;
    let role = vendor_role(&mut tx, vendor, actor).await?;
    let row = lock_listing(&mut tx, vendor, listing).await?;
    Ok((tx, role, row))
}

/// Ends a step of the workflow: a never-published listing's status follows its version
/// (`status`), the step is written to the vendor's audit log, and the transaction commits.
async fn finish(
    mut tx: Tx,
    row: &ListingRow,
    actor: Uuid,
    vendor: Uuid,
    status: Option<ListingStatus>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), AppError> {
    if let (None, Some(status)) = (row.published_version_id, status) {
        set_status(&mut tx, row.id, status).await?;
    }
    audit::record(&mut tx, vendor, Some(actor), action, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates a listing with a first draft version, and returns its id.
pub async fn create(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    name: &str,
    slug: &str,
) -> Result<Uuid, AppError> {
    let name = parse_name("name", name)?;
    let slug = parse_slug(slug)?;
    let mut tx = db::tenant_tx(pool, vendor, actor).await?;
    vendor_role(&mut tx, vendor, actor).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into listings (id, vendor_org_id, slug, name, created_by) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(vendor)
    .bind(&slug)
    .bind(&name)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(on_constraint("listings_slug_key", || slug_taken(&slug)))?;
    let content = VersionContent {
        name: name.clone(),
        tagline: String::new(),
        description: String::new(),
        categories: Vec::new(),
        logo_hash: None,
        docs_url: None,
        support_url: None,
        website_url: None,
        recipe: Recipe::default(),
    };
    versions::insert(&mut tx, id, vendor, &content).await?;
    audit::record(
        &mut tx,
        vendor,
        Some(actor),
        "listing.created",
        json!({ "listing": id, "slug": slug }),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn slug_taken(slug: &str) -> AppError {
    AppError::conflict(
        "slug",
        format!("The slug \u{201c}{slug}\u{201d} is taken by another listing; choose another."),
    )
}

/// The vendor's listings, newest first.
pub async fn list(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
) -> Result<Vec<VendorListingRow>, AppError> {
    let mut tx = db::tenant_tx(pool, vendor, actor).await?;
    vendor_role(&mut tx, vendor, actor).await?;
    let rows: Vec<(Uuid, String, String, String, Option<String>, String)> = sqlx::query_as(
        "select l.id, l.slug, coalesce(v.name, l.name), l.status, v.state, \
                to_char(greatest(l.updated_at, v.updated_at) at time zone 'UTC', 'YYYY-MM-DD HH24:MI') \
         from listings l \
         left join listing_versions v on v.listing_id = l.id and v.state in ('draft', 'in_review', 'rejected') \
         where l.vendor_org_id = $1 order by l.created_at desc, l.id",
    )
    .bind(vendor)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter()
        .map(|(id, slug, name, status, state, updated_at)| {
            let status: ListingStatus = status.parse()?;
            let pending = match (status, state) {
                (ListingStatus::Published | ListingStatus::Archived, Some(state)) => {
                    Some(state.parse()?)
                }
                _ => None,
            };
            Ok(VendorListingRow {
                id,
                slug,
                name,
                status,
                pending,
                updated_at,
            })
        })
        .collect()
}

/// A vendor's listing and the version its editor shows: the open one, or else the published one.
async fn shown_version(
    conn: &mut PgConnection,
    vendor: Uuid,
    listing: Uuid,
) -> Result<(ListingRow, VersionRow), AppError> {
    let row: ListingRow = sqlx::query_as(
        "select id, slug, status, published_version_id from listings \
         where id = $1 and vendor_org_id = $2",
    )
    .bind(listing)
    .bind(vendor)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(no_listing)?;
    let version = match open_version(conn, listing, false).await? {
        Some(v) => v,
        None => versions::by_id(conn, row.published_version_id.ok_or_else(no_listing)?).await?,
    };
    Ok((row, version))
}

/// A listing in the editor: its open version (or the published one), history and choices.
pub async fn editor(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
) -> Result<ListingEditor, AppError> {
    let mut tx = db::tenant_tx(pool, vendor, actor).await?;
    let role = vendor_role(&mut tx, vendor, actor).await?;
    let (row, version) = shown_version(&mut tx, vendor, listing).await?;
    let history = versions::history(&mut tx, listing).await?;
    let categories = catalog::categories(&mut *tx).await?;
    tx.commit().await?;
    let review_notes = match version.state.parse()? {
        VersionState::Rejected | VersionState::Draft => version.review_notes.clone(),
        _ => None,
    };
    Ok(ListingEditor {
        id: row.id,
        slug: row.slug,
        status: row.status.parse()?,
        slug_locked: row.published_version_id.is_some(),
        version: version.summary()?,
        content: version.content(),
        review_notes,
        history,
        can_archive: role.can_manage_members(),
        providers: recipe::providers().choices(),
        categories,
    })
}

/// The content of an editor's form, checked.
async fn parse_content(
    conn: &mut PgConnection,
    form: &ListingForm,
) -> Result<VersionContent, AppError> {
    // Bounds first, so that an absurd form costs nothing to refuse.
    if form.categories.len() > 50 {
        return Err(AppError::invalid(
            "categories",
            format!("Choose at most {MAX_CATEGORIES} categories."),
        ));
    }
    let name = parse_name("name", &form.name)?;
    let tagline = parse_line("tagline", &form.tagline, 140, "tagline")?;
    let description = form.description.replace("\r\n", "\n").trim().to_owned();
    if description
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::invalid(
            "description",
            "The description contains control characters; paste it as plain text.",
        ));
    }
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(AppError::invalid(
            "description",
            format!("Keep the description under {MAX_DESCRIPTION} characters."),
        ));
    }
    let mut categories: Vec<String> = Vec::new();
    for slug in form
        .categories
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        if !categories.iter().any(|c| c == slug) {
            categories.push(slug.to_owned());
        }
    }
    if categories.len() > MAX_CATEGORIES {
        return Err(AppError::invalid(
            "categories",
            format!("Choose at most {MAX_CATEGORIES} categories."),
        ));
    }
    let known: Vec<String> = sqlx::query_scalar("select slug from categories where slug = any($1)")
        .bind(&categories)
        .fetch_all(&mut *conn)
        .await?;
    if let Some(unknown) = categories.iter().find(|c| !known.contains(c)) {
        return Err(AppError::invalid(
            "categories",
            format!("There is no category \u{201c}{unknown}\u{201d}."),
        ));
    }
    Ok(VersionContent {
        name,
        tagline,
        description,
        categories,
        logo_hash: None,
        docs_url: parse_link("docs_url", &form.docs_url)?,
        support_url: parse_link("support_url", &form.support_url)?,
        website_url: parse_link("website_url", &form.website_url)?,
        recipe: recipe::parse_recipe(form)?,
    })
}

/// The version an edit goes into: the open draft or rejected one, or a new draft copied from the
/// published version. A version in review cannot change under its reviewer.
async fn editable_version(
    conn: &mut PgConnection,
    listing: &ListingRow,
    vendor: Uuid,
    open: Option<VersionRow>,
) -> Result<VersionRow, AppError> {
    match open {
        Some(v) if v.state == "in_review" => Err(AppError::conflict(
            "",
            "This version is in review. Withdraw it from review to make changes.",
        )),
        Some(v) => Ok(v),
        None => {
            let published =
                versions::by_id(conn, listing.published_version_id.ok_or_else(no_listing)?).await?;
            versions::insert(conn, listing.id, vendor, &published.content()).await
        }
    }
}

/// Saves the editor's form into the open version (creating a new draft version when the listing is
/// published and none is open). Nothing is written unless all of it is valid.
pub async fn save(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
    form: &ListingForm,
) -> Result<(), AppError> {
    let (mut tx, _, row) = open_listing(pool, actor, vendor, listing).await?;
    let mut content = parse_content(&mut tx, form).await?;
    let slug = form.slug.trim();
    if !slug.is_empty() && slug != row.slug {
        if row.published_version_id.is_some() {
            return Err(AppError::invalid(
                "slug",
                "The slug of a published listing stays the same, so that links to it keep working.",
            ));
        }
        let slug = parse_slug(slug)?;
        sqlx::query("update listings set slug = $2 where id = $1")
            .bind(listing)
            .bind(&slug)
            .execute(&mut *tx)
            .await
            .map_err(on_constraint("listings_slug_key", || slug_taken(&slug)))?;
    }
    let version = match open_version(&mut tx, listing, true).await? {
        None => {
            // A published listing with nothing open: the change becomes the next version, unless
            // there is no change (a reviewer would get an empty diff).
            let published =
                versions::by_id(&mut tx, row.published_version_id.ok_or_else(no_listing)?).await?;
            content.logo_hash = published.logo_hash.clone();
            if content == published.content() {
                tx.commit().await?;
                return Ok(());
            }
            versions::insert(&mut tx, listing, vendor, &content).await?
        }
        open => {
            let version = editable_version(&mut tx, &row, vendor, open).await?;
            content.logo_hash = version.logo_hash.clone();
            versions::update_content(&mut tx, version.id, &content).await?;
            version
        }
    };
    if row.published_version_id.is_none() {
        sqlx::query("update listings set name = $2 where id = $1")
            .bind(listing)
            .bind(&content.name)
            .execute(&mut *tx)
            .await?;
    }
    let detail = json!({ "listing": listing, "version": version.number });
    finish(
        tx,
        &row,
        actor,
        vendor,
        Some(ListingStatus::Draft),
        "listing.edited",
        detail,
    )
    .await
}

/// Checks and stores a logo, and puts it on the open version.
pub async fn set_logo(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
    bytes: &[u8],
) -> Result<String, AppError> {
    logos::check(bytes)?;
    let (mut tx, _, row) = open_listing(pool, actor, vendor, listing).await?;
    let open = open_version(&mut tx, listing, true).await?;
    let version = editable_version(&mut tx, &row, vendor, open).await?;
    let hash = logos::store(&mut tx, bytes).await?;
    sqlx::query("update listing_versions set logo_hash = $2, state = 'draft' where id = $1")
        .bind(version.id)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    // A rejected first version is a draft again once changed, as after a save.
    let detail = json!({ "listing": listing, "version": version.number, "logo": hash });
    finish(
        tx,
        &row,
        actor,
        vendor,
        Some(ListingStatus::Draft),
        "listing.logo_changed",
        detail,
    )
    .await?;
    Ok(hash)
}

/// Sends the open version to review, once it is complete.
pub async fn submit(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
) -> Result<(), AppError> {
    let (mut tx, _, row) = open_listing(pool, actor, vendor, listing).await?;
    let Some(version) = open_version(&mut tx, listing, true).await? else {
        return Err(AppError::conflict(
            "",
            "There are no changes to submit: edit the listing first.",
        ));
    };
    if version.state == "in_review" {
        return Err(AppError::conflict("", "This version is already in review."));
    }
    check_complete(&version.content())?;
    sqlx::query(
        "update listing_versions set state = 'in_review', submitted_at = now(), submitted_by = $2 where id = $1",
    )
    .bind(version.id)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let detail = json!({ "listing": listing, "version": version.number });
    finish(
        tx,
        &row,
        actor,
        vendor,
        Some(ListingStatus::InReview),
        "listing.submitted",
        detail,
    )
    .await
}

/// What a customer-facing page needs before a version goes to review.
fn check_complete(content: &VersionContent) -> Result<(), AppError> {
    if content.tagline.is_empty() {
        return Err(AppError::invalid(
            "tagline",
            "Write a tagline: one line saying what the integration does.",
        ));
    }
    if content.description.is_empty() {
        return Err(AppError::invalid(
            "description",
            "Write a description for the listing page.",
        ));
    }
    if content.categories.is_empty() {
        return Err(AppError::invalid(
            "categories",
            "Choose at least one category.",
        ));
    }
    recipe::check_complete(&content.recipe)
}

/// Takes the version in review back to draft.
pub async fn withdraw(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
) -> Result<(), AppError> {
    let (mut tx, _, row) = open_listing(pool, actor, vendor, listing).await?;
    let version = match open_version(&mut tx, listing, true).await? {
        Some(v) if v.state == "in_review" => v,
        _ => {
            return Err(AppError::conflict(
                "",
                "Nothing of this listing is in review.",
            ))
        }
    };
    sqlx::query("update listing_versions set state = 'draft' where id = $1")
        .bind(version.id)
        .execute(&mut *tx)
        .await?;
    let detail = json!({ "listing": listing, "version": version.number });
    finish(
        tx,
        &row,
        actor,
        vendor,
        Some(ListingStatus::Draft),
        "listing.withdrawn",
        detail,
    )
    .await
}

async fn set_status(
    conn: &mut PgConnection,
    listing: Uuid,
    status: ListingStatus,
) -> Result<(), AppError> {
    sqlx::query("update listings set status = $2 where id = $1")
        .bind(listing)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

/// Hides a published listing from the catalog (`archived = true`) or shows it again. Installs of
/// an archived listing keep running the version they installed. Owners and admins of the vendor
/// may do it.
pub async fn set_archived(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
    archived: bool,
) -> Result<(), AppError> {
    let (mut tx, role, row) = open_listing(pool, actor, vendor, listing).await?;
    if !role.can_manage_members() {
        return Err(AppError::forbidden(
            "Only owners and admins of the vendor can archive a listing.",
        ));
    }
    let (from, to, action) = if archived {
        ("published", ListingStatus::Archived, "listing.archived")
    } else {
        ("archived", ListingStatus::Published, "listing.unarchived")
    };
    if row.status != from {
        return Err(AppError::conflict(
            "",
            if archived {
                "Only a published listing can be archived."
            } else {
                "This listing is not archived."
            },
        ));
    }
    sqlx::query(
        "update listings set status = $2, archived_at = case when $3 then now() end where id = $1",
    )
    .bind(listing)
    .bind(to.as_str())
    .bind(archived)
    .execute(&mut *tx)
    .await?;
    finish(
        tx,
        &row,
        actor,
        vendor,
        None,
        action,
        json!({ "listing": listing }),
    )
    .await
}
