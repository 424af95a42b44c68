//! Catalog pages kept in memory between catalog changes.
//!
//! Every visitor of `/marketplace` asks for one of a few pages (the front page, a category, a
//! popular search), and the catalog changes only when a listing is approved, archived or
//! featured. A trigger bumps `catalog_state.generation` on each such change. Pages are served from
//! here while the generation they were computed at is current. The generation is read from the
//! database at most every [`RECHECK`]; the server functions that change the catalog call
//! [`CatalogCache::invalidate`], so this process sees its own changes at once, and another process
//! (a second server) sees them within [`RECHECK`].

use crate::model::listing::{CatalogPage, Category};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a generation read from the database is trusted.
pub const RECHECK: Duration = Duration::from_millis(250);

/// At most this many pages are kept; past it the cache starts over (a flood of distinct searches
/// cannot grow it without bound).
const MAX_PAGES: usize = 1024;

/// A page of the catalog is keyed by its normalized filters: search words, category, page.
pub type PageKey = (String, String, u32);

#[derive(Debug, Default)]
pub struct CatalogCache {
    pages: Mutex<Pages>,
    categories: OnceLock<Vec<Category>>,
    /// The last generation read, and when.
    checked: Mutex<Option<(i64, Instant)>>,
}

#[derive(Debug, Default)]
struct Pages {
    generation: i64,
    pages: HashMap<PageKey, CatalogPage>,
}

impl CatalogCache {
    /// The catalog's generation: from the database when the last read is older than [`RECHECK`]
    /// or was invalidated.
    pub async fn generation(&self, pool: &PgPool) -> sqlx::Result<i64> {
        if let Some((generation, at)) = self.checked.lock().ok().and_then(|c| *c) {
            if at.elapsed() < RECHECK {
                return Ok(generation);
            }
        }
        let generation: i64 = sqlx::query_scalar("select generation from catalog_state")
            .fetch_one(pool)
            .await?;
        if let Ok(mut checked) = self.checked.lock() {
            *checked = Some((generation, Instant::now()));
        }
        Ok(generation)
    }

    /// Forgets the generation read last, so the next request reads it again (after a change made
    /// by this process).
    pub fn invalidate(&self) {
        if let Ok(mut checked) = self.checked.lock() {
            *checked = None;
        }
    }

    /// The page for `key`, if it was stored at this `generation`.
    pub fn get(&self, generation: i64, key: &PageKey) -> Option<CatalogPage> {
        let pages = self.pages.lock().ok()?;
        (pages.generation == generation)
            .then(|| pages.pages.get(key).cloned())
            .flatten()
    }

    /// Keeps a page computed at `generation`; pages of older generations are dropped.
    pub fn put(&self, generation: i64, key: PageKey, page: CatalogPage) {
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        if pages.generation != generation {
            if generation < pages.generation {
                // Computed before a change another request already saw: not worth keeping.
                return;
            }
            pages.pages.clear();
            pages.generation = generation;
        }
        if pages.pages.len() >= MAX_PAGES {
            pages.pages.clear();
        }
        pages.pages.insert(key, page);
    }

    /// The categories, which migrations define and nothing changes at run time.
    pub fn categories(&self) -> Option<&Vec<Category>> {
        self.categories.get()
    }

    pub fn set_categories(&self, categories: Vec<Category>) {
        let _ = self.categories.set(categories);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(total: i64) -> CatalogPage {
        CatalogPage {
            cards: vec![],
            featured: vec![],
            categories: vec![],
            total,
            page: 1,
            pages: 1,
        }
    }

    #[test]
    fn pages_live_until_the_generation_moves() {
        let cache = CatalogCache::default();
        let key: PageKey = (String::new(), "crm".into(), 1);
        cache.put(3, key.clone(), page(7));
        assert_eq!(cache.get(3, &key).map(|p| p.total), Some(7));
        assert!(cache.get(4, &key).is_none(), "a newer generation misses");
        cache.put(4, ("x".into(), String::new(), 1), page(1));
        assert!(cache.get(3, &key).is_none(), "older pages are gone");
        cache.put(2, key.clone(), page(9));
        assert!(
            cache.get(2, &key).is_none(),
            "a page from before the current generation is not kept"
        );
    }
}
