//! The public catalog's server functions: a page of listings, and one listing's page. Anyone may
//! call them, signed in or not.

use crate::error::AppError;
use crate::model::listing::{CatalogPage, ListingPage};
use leptos::prelude::*;

/// A page of published listings, filtered by category and search text.
#[server(endpoint = "marketplace/catalog")]
pub async fn catalog(q: String, category: String, page: u32) -> Result<CatalogPage, AppError> {
    use super::ssr::*;
    use crate::domain::listings::catalog;
    use crate::model::listing::CatalogQuery;

    respond(
        async move {
            let state = state()?;
            catalog::page(
                &state.pool,
                &state.catalog,
                &CatalogQuery { q, category, page },
            )
            .await
        }
        .await,
    )
}

/// The page of a published listing.
#[server(endpoint = "marketplace/listing")]
pub async fn get_listing_page(slug: String) -> Result<ListingPage, AppError> {
    use super::ssr::*;
    use crate::domain::listings::catalog;

    respond(
        async move {
            let state = state()?;
            catalog::listing_page(&state.pool, &slug).await
        }
        .await,
    )
}
