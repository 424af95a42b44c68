//! The vendor console's server functions: the organization's listings, the editor (save, logo
//! through `/vendor/listings/{id}/logo`, preview), submit, withdraw and archive.

use crate::error::AppError;
use crate::model::listing::{ListingEditor, ListingForm, ListingPage, VendorListingRow};
use leptos::prelude::*;

/// The active vendor organization's listings.
#[server(endpoint = "vendor/listings")]
pub async fn vendor_listings() -> Result<Vec<VendorListingRow>, AppError> {
    use super::ssr::*;
    use crate::domain::listings;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            listings::list(&state.pool, user.id, vendor).await
        }
        .await,
    )
}

/// Creates a listing in the active vendor organization and opens its editor.
#[server(endpoint = "vendor/listings/create")]
pub async fn create_listing(name: String, slug: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::listing::slug_from_name;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let slug = if slug.trim().is_empty() {
                slug_from_name(&name)
            } else {
                slug
            };
            let id = listings::create(&state.pool, user.id, vendor, &name, &slug).await?;
            leptos_axum::redirect(&format!("/vendor/listings/{id}"));
            Ok(())
        }
        .await,
    )
}

/// A listing as the editor shows it.
#[server(endpoint = "vendor/listings/editor")]
pub async fn get_listing_editor(id: String) -> Result<ListingEditor, AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let id = parse_id("listing", &id)?;
            listings::editor(&state.pool, user.id, vendor, id).await
        }
        .await,
    )
}

/// Saves the editor's form.
#[server(endpoint = "vendor/listings/save")]
pub async fn save_listing(id: String, form: ListingForm) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let listing = parse_id("listing", &id)?;
            listings::save(&state.pool, user.id, vendor, listing, &form).await?;
            leptos_axum::redirect(&format!("/vendor/listings/{listing}?saved=1"));
            Ok(())
        }
        .await,
    )
}

/// The listing page of the version in the editor.
#[server(endpoint = "vendor/listings/preview")]
pub async fn preview_listing(id: String) -> Result<ListingPage, AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let id = parse_id("listing", &id)?;
            listings::catalog::preview(&state.pool, user.id, vendor, id).await
        }
        .await,
    )
}

/// Markdown rendered and sanitized as the listing page will show it, for the editor's live
/// preview.
#[server(endpoint = "vendor/markdown")]
pub async fn render_markdown(text: String) -> Result<String, AppError> {
    use super::ssr::*;
    use crate::domain::{listings::MAX_DESCRIPTION, markdown};

    respond(
        async move {
            require_user().await?;
            if text.chars().count() > MAX_DESCRIPTION {
                return Err(AppError::invalid(
                    "description",
                    format!("Keep the description under {MAX_DESCRIPTION} characters."),
                ));
            }
            Ok(markdown::render(&text))
        }
        .await,
    )
}

/// Sends the open version to review.
#[server(endpoint = "vendor/listings/submit")]
pub async fn submit_listing(id: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let listing = parse_id("listing", &id)?;
            listings::submit(&state.pool, user.id, vendor, listing).await?;
            leptos_axum::redirect(&format!("/vendor/listings/{listing}?submitted=1"));
            Ok(())
        }
        .await,
    )
}

/// Takes the version in review back to draft.
#[server(endpoint = "vendor/listings/withdraw")]
pub async fn withdraw_listing(id: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let listing = parse_id("listing", &id)?;
            listings::withdraw(&state.pool, user.id, vendor, listing).await?;
            leptos_axum::redirect(&format!("/vendor/listings/{listing}"));
            Ok(())
        }
        .await,
    )
}

/// Archives a published listing, or shows an archived one again (`archived` is "true" or
/// "false").
#[server(endpoint = "vendor/listings/archive")]
pub async fn archive_listing(id: String, archived: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, user, vendor) = require_vendor().await?;
            let listing = parse_id("listing", &id)?;
            let archived = archived == "true";
            listings::set_archived(&state.pool, user.id, vendor, listing, archived).await?;
            state.catalog.invalidate();
            leptos_axum::redirect(&format!("/vendor/listings/{listing}"));
            Ok(())
        }
        .await,
    )
}
