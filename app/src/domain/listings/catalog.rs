//! The public catalog: published listings by category and by full-text search, and listing pages.
//!
//! Anyone may read it, signed in or not. Reads run straight on the pool, outside a transaction:
//! the scope settings are transaction-local, so a pooled connection carries none, and row-level
//! security then shows published listings only — the same rows `Scope::Public` would.

use super::cache::CatalogCache;
use super::recipe;
use super::versions::{VersionRow, COLUMNS};
use crate::domain::{logos, markdown};
use crate::error::AppError;
use crate::model::listing::{CatalogCard, CatalogPage, CatalogQuery, Category, ListingPage};
use sqlx::{FromRow, PgExecutor, PgPool, Postgres, QueryBuilder, Row};
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

/// The words of a search text, lowercased: letters and digits only, so that nothing typed can
/// become `tsquery` syntax. The database turns them into a prefix query (`catalog_query`).
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_lowercase)
        .collect()
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

const CARD_COLUMNS: &str = "c.slug, c.name, c.tagline, c.vendor_name as vendor, c.categories, \
    c.logo_hash, c.featured_rank is not null as featured";

/// `select <columns> from catalog_entries c … where <filters>`. Each combination of filters is its
/// own statement (rather than one with `$1 is null or …` branches), so that Postgres plans it
/// with the right index: by name, by category (GIN) or by search (GIN). The search query is built
/// once, in a materialized CTE, not once per matching row.
fn select<'a>(columns: &str, category: &'a str, words: &'a [String]) -> QueryBuilder<'a, Postgres> {
    let mut sql = if words.is_empty() {
        QueryBuilder::new(format!(
            "select {columns} from catalog_entries c where true"
        ))
    } else {
        let mut sql = QueryBuilder::new("with q as materialized (select catalog_query(");
        sql.push_bind(words);
        sql.push(format!(
            ") as q) select {columns} from catalog_entries c, q where c.search @@ q.q"
        ));
        sql
    };
    if !category.is_empty() {
        sql.push(" and c.categories @> array[")
            .push_bind(category)
            .push("]");
    }
    sql
}

/// One page of the catalog: published listings, filtered by category and search text. Without
/// search they come by name; with it, listings whose name matches come first, then those whose
/// tagline matches, then the rest (the description matched), each group by name.
/// Reads `catalog_entries`, the public copy of published listings (see its migration for why),
/// and keeps the pages it computes in `cache` until the catalog changes.
pub async fn page(
    pool: &PgPool,
    cache: &CatalogCache,
    query: &CatalogQuery,
) -> Result<CatalogPage, AppError> {
    let all = match cache.categories() {
        Some(all) => all.clone(),
        None => {
            let all = categories(pool).await?;
            cache.set_categories(all.clone());
            all
        }
    };
    let category = query.category.trim();
    if !category.is_empty() && !all.iter().any(|c| c.slug == category) {
        return Err(AppError::not_found("No such category."));
    }
    let words = search_words(&query.q);
    let page = query.page.max(1);
    let key = (words.join(" "), category.to_owned(), page);
    let generation = cache.generation(pool).await?;
    if let Some(cached) = cache.get(generation, &key) {
        return Ok(cached);
    }
    let result = compute(pool, all, category, &words, page).await?;
    cache.put(generation, key, result.clone());
    Ok(result)
}

async fn compute(
    pool: &PgPool,
    all: Vec<Category>,
    category: &str,
    words: &[String],
    page: u32,
) -> Result<CatalogPage, AppError> {
    let offset = i64::from(page - 1) * i64::from(PER_PAGE);

    let mut sql = select(CARD_COLUMNS, category, words);
    if words.is_empty() {
        sql.push(" order by lower(c.name), c.listing_id");
    } else {
        sql.push(
            " order by (c.name_search @@ q.q)::int * 2 + (c.tagline_search @@ q.q)::int desc, \
             lower(c.name), c.listing_id",
        );
    }
    sql.push(" limit ").push_bind(i64::from(PER_PAGE));
    sql.push(" offset ").push_bind(offset);
    let rows: Vec<CardRow> = sql.build_query_as().fetch_all(pool).await?;

    let total: i64 = if offset == 0 && rows.len() < PER_PAGE as usize {
        // The whole result fits on the first page: no need to count.
        rows.len() as i64
    } else {
        let mut count = select("count(*)", category, words);
        count.build_query_scalar().fetch_one(pool).await?
    };
    let featured = if words.is_empty() && category.is_empty() && page == 1 {
        let rows: Vec<CardRow> = sqlx::query_as(&format!(
            "select {CARD_COLUMNS} from catalog_entries c where c.featured_rank is not null \
             order by c.featured_rank limit 6"
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
    // The version, its vendor's name and the featured flag in one round trip.
    let sql = format!(
        "select {COLUMNS}, o.name as vendor_name, l.featured_rank is not null as featured \
         from listings l join listing_versions v on v.id = l.published_version_id \
         join organizations o on o.id = l.vendor_org_id \
         where l.slug = $1 and l.status = 'published'"
    );
    let found = sqlx::query(&sql)
        .bind(slug)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| AppError::not_found("No such listing in the marketplace."))?;
    let row = VersionRow::from_row(&found)?;
    let vendor: String = found.try_get("vendor_name")?;
    let featured: bool = found.try_get("featured")?;
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
    let mut tx = crate::domain::db::tenant_tx(pool, vendor, actor).await?;
    super::vendor_role(&mut tx, vendor, actor).await?;
    let (listing, version) = super::shown_version(&mut tx, vendor, listing).await?;
    let vendor_name = vendor_name(&mut *tx, vendor).await?;
    let all = categories(&mut *tx).await?;
    tx.commit().await?;
    Ok(page_of(&version, &listing.slug, vendor_name, &all))
}

/// What connecting for a published listing needs: its name, its vendor (whose own OAuth apps
/// come first) and the providers its recipe reads and writes, in that order (the built-in store
/// needs no connection and is left out).
pub struct ConnectTarget {
    pub name: String,
    pub vendor: Uuid,
    pub providers: Vec<String>,
}

/// The connect target of a published listing.
pub async fn connect_target(pool: &PgPool, slug: &str) -> Result<ConnectTarget, AppError> {
    let row: Option<(String, Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "select l.name, l.vendor_org_id, v.recipe->>'source_provider', v.recipe->>'destination_provider' \
         from listings l join listing_versions v on v.id = l.published_version_id \
         where l.slug = $1 and l.status = 'published'",
    )
    .bind(slug)
    .fetch_optional(pool)
    .await?;
    let (name, vendor, source, destination) =
        row.ok_or_else(|| AppError::not_found("No such listing in the marketplace."))?;
    let mut providers: Vec<String> = Vec::new();
    for p in [source, destination].into_iter().flatten() {
        if p != crate::model::listing::STORE_PROVIDER && !providers.contains(&p) {
            providers.push(p);
        }
    }
    Ok(ConnectTarget {
        name,
        vendor,
        providers,
    })
}

/// The vendor of a published listing, or None when there is no such listing.
pub async fn vendor_of(pool: &PgPool, slug: &str) -> Result<Option<Uuid>, AppError> {
    Ok(sqlx::query_scalar(
        "select vendor_org_id from listings where slug = $1 and status = 'published'",
    )
    .bind(slug)
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::search_words;

    #[test]
    fn search_text_becomes_words_without_operators() {
        assert_eq!(search_words("Hub Spo"), ["hub", "spo"]);
        assert_eq!(search_words("a & !b | c:*'"), ["a", "b", "c"]);
        assert!(search_words(" !&| ").is_empty());
        assert_eq!(search_words("1 2 3 4 5 6 7 8 9 10").len(), 8);
    }
}
