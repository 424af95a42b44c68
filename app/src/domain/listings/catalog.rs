//! The public catalog: published listings by category and by full-text search, and listing pages.
//!
//! Anyone may read it, signed in or not. Reads run straight on the pool, outside a transaction:
//! the scope settings are transaction-local, so a pooled connection carries none, and row-level
//! security then shows published listings only — the same rows `Scope::Public` would.

use super::recipe;
use super::versions::{VersionRow, COLUMNS};
use crate::domain::{logos, markdown};
use crate::error::AppError;
use crate::model::listing::{CatalogCard, CatalogPage, CatalogQuery, Category, ListingPage};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// Cards per catalog page.
pub const PER_PAGE: u32 = 24;
/// The longest search text taken into account.
const MAX_QUERY_WORDS: usize = 8;

/// Every category, in rail order.
pub async fn categories<'c>(conn: impl PgExecutor<'c>) -> Result<Vec<Category>, AppError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select slug, name from categories order by position")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(slug, name)| Category { slug, name })
        .collect())
}

/// A search text as a prefix-matching `tsquery`: each word, lowercased, must start a word of the
/// listing (`hub spo` finds "HubSpot sync"). Punctuation is dropped, so the text cannot inject
/// `tsquery` operators. `None` when nothing searchable is left.
pub fn prefix_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

#[derive(sqlx::FromRow)]
struct CardRow {
    slug: String,
    name: String,
    tagline: String,
    vendor: String,
    categories: Vec<String>,
    logo_hash: Option<String>,
    featured: bool,
}

fn card(row: CardRow, all: &[Category]) -> CatalogCard {
    CatalogCard {
        slug: row.slug,
        name: row.name,
        tagline: row.tagline,
        vendor: row.vendor,
        categories: named(&row.categories, all),
        logo_url: row.logo_hash.as_deref().map(logos::url),
        featured: row.featured,
    }
}

fn named(slugs: &[String], all: &[Category]) -> Vec<Category> {
    slugs
        .iter()
        .filter_map(|s| all.iter().find(|c| &c.slug == s).cloned())
        .collect()
}

const CARD_COLUMNS: &str = "l.slug, l.name, l.tagline, o.name as vendor, l.categories, \
    l.logo_hash, l.featured_rank is not null as featured";

/// One page of the catalog: published listings, filtered by category and search text. Without
/// search they come by name; with it, by rank (name counts most, then tagline, then description).
pub async fn page(pool: &PgPool, query: &CatalogQuery) -> Result<CatalogPage, AppError> {
    let all = categories(pool).await?;
    let category = query.category.trim();
    if !category.is_empty() && !all.iter().any(|c| c.slug == category) {
        return Err(AppError::not_found("No such category."));
    }
    let search = prefix_query(&query.q);
    let page = query.page.max(1);
    let offset = i64::from(page - 1) * i64::from(PER_PAGE);

    // Two statements rather than one with a conditional ORDER BY, so that browsing by name walks
    // the `listings_catalog` index instead of sorting every listing.
    let filter = "l.status = 'published' \
        and ($1 = '' or l.categories @> array[$1]) \
        and ($2::text is null or l.search @@ to_tsquery('english', $2))";
    let sql = if search.is_some() {
        format!(
            "select {CARD_COLUMNS} from listings l join organizations o on o.id = l.vendor_org_id \
             where {filter} \
             order by ts_rank_cd(l.search, to_tsquery('english', $2)) desc, lower(l.name), l.id \
             limit $3 offset $4"
        )
    } else {
        format!(
            "select {CARD_COLUMNS} from listings l join organizations o on o.id = l.vendor_org_id \
             where {filter} order by lower(l.name), l.id limit $3 offset $4"
        )
    };
    let rows: Vec<CardRow> = sqlx::query_as(&sql)
        .bind(category)
        .bind(&search)
        .bind(i64::from(PER_PAGE))
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar(&format!("select count(*) from listings l where {filter}"))
        .bind(category)
        .bind(&search)
        .fetch_one(pool)
        .await?;
    let featured = if search.is_none() && category.is_empty() && page == 1 {
        let rows: Vec<CardRow> = sqlx::query_as(&format!(
            "select {CARD_COLUMNS} from listings l join organizations o on o.id = l.vendor_org_id \
             where l.status = 'published' and l.featured_rank is not null \
             order by l.featured_rank limit 6"
        ))
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(|r| card(r, &all)).collect()
    } else {
        Vec::new()
    };
    let pages = u32::try_from((total + i64::from(PER_PAGE) - 1) / i64::from(PER_PAGE))
        .unwrap_or(u32::MAX)
        .max(1);
    Ok(CatalogPage {
        cards: rows.into_iter().map(|r| card(r, &all)).collect(),
        featured,
        categories: all,
        total,
        page,
        pages,
    })
}

/// The page of a published listing.
pub async fn listing_page(pool: &PgPool, slug: &str) -> Result<ListingPage, AppError> {
    let sql = format!(
        "select {COLUMNS} from listings l join listing_versions v on v.id = l.published_version_id \
         where l.slug = $1 and l.status = 'published'"
    );
    let row: VersionRow = sqlx::query_as(&sql)
        .bind(slug)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("No such listing in the marketplace."))?;
    let vendor = vendor_name(pool, row.vendor_org_id).await?;
    let featured: bool =
        sqlx::query_scalar("select featured_rank is not null from listings where id = $1")
            .bind(row.listing_id)
            .fetch_one(pool)
            .await?;
    let all = categories(pool).await?;
    Ok(ListingPage {
        featured,
        ..page_of(&row, slug, vendor, &all)
    })
}

pub(super) async fn vendor_name<'c>(
    conn: impl PgExecutor<'c>,
    vendor: Uuid,
) -> Result<String, AppError> {
    Ok(
        sqlx::query_scalar("select name from organizations where id = $1")
            .bind(vendor)
            .fetch_one(conn)
            .await?,
    )
}

/// A version rendered as its listing page (also the vendor's preview and the reviewer's view).
pub(super) fn page_of(
    row: &VersionRow,
    slug: &str,
    vendor: String,
    all: &[Category],
) -> ListingPage {
    let recipe = &row.recipe.0;
    let providers = recipe::providers();
    ListingPage {
        slug: slug.to_owned(),
        name: row.name.clone(),
        tagline: row.tagline.clone(),
        vendor,
        logo_url: row.logo_hash.as_deref().map(logos::url),
        categories: named(&row.categories, all),
        description_html: markdown::render(&row.description),
        docs_url: row.docs_url.clone(),
        support_url: row.support_url.clone(),
        website_url: row.website_url.clone(),
        source_name: providers.name_of(&recipe.source_provider),
        destination_name: providers.name_of(&recipe.destination_provider),
        destination_stream: recipe.destination_stream.clone(),
        streams: recipe::synced_streams(recipe),
        mapped_fields: recipe.mapping.fields.clone(),
        permissions: recipe::permissions(recipe),
        auth_kinds: recipe::auth_kinds(recipe),
        default_schedule: recipe.default_schedule,
        allowed_schedules: recipe.allowed_schedules.clone(),
        triggers: recipe.triggers.clone(),
        config_fields: recipe.config_fields.clone(),
        version: row.number,
        featured: false,
    }
}

/// The vendor's preview of the version in the editor.
pub async fn preview(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    listing: Uuid,
) -> Result<ListingPage, AppError> {
    let editor = super::editor(pool, actor, vendor, listing).await?;
    let mut tx = crate::domain::db::tenant_tx(pool, vendor, actor).await?;
    let row = super::versions::by_id(&mut tx, editor.version.id).await?;
    let vendor_name = vendor_name(&mut *tx, vendor).await?;
    tx.commit().await?;
    Ok(page_of(&row, &editor.slug, vendor_name, &editor.categories))
}

#[cfg(test)]
mod tests {
    use super::prefix_query;

    #[test]
    fn search_text_becomes_a_prefix_query_without_operators() {
        assert_eq!(prefix_query("Hub Spo").as_deref(), Some("hub:* & spo:*"));
        assert_eq!(
            prefix_query("a & !b | c:*'").as_deref(),
            Some("a:* & b:* & c:*")
        );
        assert_eq!(prefix_query(" !&| "), None);
    }
}
