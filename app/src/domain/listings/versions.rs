//! Listing versions: the rows and the small queries the vendor and review paths share.

use crate::error::AppError;
use crate::model::listing::{Recipe, VersionContent, VersionSummary};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

/// The columns of [`VersionRow`], for `select`.
pub(super) const COLUMNS: &str = "v.id, v.listing_id, v.vendor_org_id, v.number, v.state, v.name, \
    v.tagline, v.description, v.categories, v.logo_hash, v.docs_url, v.support_url, v.website_url, \
    v.recipe, v.review_notes, \
    to_char(v.submitted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"') as submitted_at, \
    to_char(v.reviewed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"') as reviewed_at";

/// One version as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct VersionRow {
    pub id: Uuid,
    pub listing_id: Uuid,
    pub vendor_org_id: Uuid,
    pub number: i32,
    pub state: String,
    pub name: String,
    pub tagline: String,
    pub description: String,
    pub categories: Vec<String>,
    pub logo_hash: Option<String>,
    pub docs_url: Option<String>,
    pub support_url: Option<String>,
    pub website_url: Option<String>,
    pub recipe: Json<Recipe>,
    pub review_notes: Option<String>,
    pub submitted_at: Option<String>,
    pub reviewed_at: Option<String>,
}

impl VersionRow {
    pub fn content(&self) -> VersionContent {
        VersionContent {
            name: self.name.clone(),
            tagline: self.tagline.clone(),
            description: self.description.clone(),
            categories: self.categories.clone(),
            logo_hash: self.logo_hash.clone(),
            docs_url: self.docs_url.clone(),
            support_url: self.support_url.clone(),
            website_url: self.website_url.clone(),
            recipe: self.recipe.0.clone(),
        }
    }

    pub fn summary(&self) -> Result<VersionSummary, AppError> {
        Ok(VersionSummary {
            id: self.id,
            number: self.number,
            state: self.state.parse()?,
            review_notes: self.review_notes.clone(),
            submitted_at: self.submitted_at.clone(),
            reviewed_at: self.reviewed_at.clone(),
        })
    }
}

/// The version being worked on (draft, in review or rejected), if any; `lock` takes its row lock
/// (after the caller has locked the listing).
pub(super) async fn open_version(
    conn: &mut PgConnection,
    listing: Uuid,
    lock: bool,
) -> Result<Option<VersionRow>, AppError> {
    let sql = format!(
        "select {COLUMNS} from listing_versions v \
         where v.listing_id = $1 and v.state in ('draft', 'in_review', 'rejected'){}",
        if lock { " for update" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(listing)
        .fetch_optional(conn)
        .await?)
}

/// A version by id, as the transaction's scope may see it.
pub(super) async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<VersionRow, AppError> {
    let sql = format!("select {COLUMNS} from listing_versions v where v.id = $1");
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| AppError::not_found("No such version."))
}

/// Every version of a listing, newest first.
pub(super) async fn history(
    conn: &mut PgConnection,
    listing: Uuid,
) -> Result<Vec<VersionSummary>, AppError> {
    let sql = format!(
        "select {COLUMNS} from listing_versions v where v.listing_id = $1 order by v.number desc"
    );
    let rows: Vec<VersionRow> = sqlx::query_as(&sql).bind(listing).fetch_all(conn).await?;
    rows.iter().map(VersionRow::summary).collect()
}

/// Inserts a draft version with `content`, numbered after the listing's last one, and returns
/// it.
pub(super) async fn insert(
    conn: &mut PgConnection,
    listing: Uuid,
    vendor: Uuid,
    content: &VersionContent,
) -> Result<VersionRow, AppError> {
    let sql = format!(
        "insert into listing_versions as v (id, listing_id, vendor_org_id, number, name, tagline, \
         description, categories, logo_hash, docs_url, support_url, website_url, recipe) \
         values ($10, $11, $12, \
            (select coalesce(max(number), 0) + 1 from listing_versions where listing_id = $11), \
            $1, $2, $3, $4, $5, $6, $7, $8, $9) \
         returning {COLUMNS}"
    );
    let query = bind_content(sqlx::query_as(&sql), content)
        .bind(Uuid::new_v4())
        .bind(listing)
        .bind(vendor);
    Ok(query.fetch_one(conn).await?)
}

/// Binds a version's content as `$1`…`$9`, in the order both statements here name it.
fn bind_content<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    content: &'q VersionContent,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    query
        .bind(&content.name)
        .bind(&content.tagline)
        .bind(&content.description)
        .bind(&content.categories)
        .bind(&content.logo_hash)
        .bind(&content.docs_url)
        .bind(&content.support_url)
        .bind(&content.website_url)
        .bind(Json(&content.recipe))
}

/// Replaces a version's content; an edited version is a draft again (a rejected one keeps the
/// reviewer's notes until it is resubmitted).
pub(super) async fn update_content(
    conn: &mut PgConnection,
    id: Uuid,
    content: &VersionContent,
) -> Result<(), AppError> {
    let _: (Uuid,) = bind_content(
        sqlx::query_as(
            "update listing_versions set state = 'draft', name = $1, tagline = $2, \
             description = $3, categories = $4, logo_hash = $5, docs_url = $6, support_url = $7, \
             website_url = $8, recipe = $9 where id = $10 returning id",
        ),
        content,
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(())
}
