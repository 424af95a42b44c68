//! Listing review for platform admins: the queue, one submitted version, approve, reject, and
//! featuring listings in the catalog.

use crate::error::AppError;
use crate::model::listing::{ReviewDetail, ReviewItem};
use leptos::prelude::*;

/// Versions waiting for review.
#[server(endpoint = "admin/reviews")]
pub async fn review_queue() -> Result<Vec<ReviewItem>, AppError> {
    use super::ssr::*;
    use crate::domain::listings::review;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            review::queue(&state.pool, &user).await
        }
        .await,
    )
}

/// One version as the reviewer sees it.
#[server(endpoint = "admin/reviews/detail")]
pub async fn get_review_detail(version_id: String) -> Result<ReviewDetail, AppError> {
    use super::ssr::*;
    use crate::domain::listings::review;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let version = parse_id("version", &version_id)?;
            review::detail(&state.pool, &user, version).await
        }
        .await,
    )
}

/// Publishes a version in review.
#[server(endpoint = "admin/reviews/approve")]
pub async fn approve_version(version_id: String, notes: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings::review;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let version = parse_id("version", &version_id)?;
            review::approve(&state.pool, &user, version, &notes).await?;
            state.catalog.invalidate();
            leptos_axum::redirect("/admin/reviews?decided=approved");
            Ok(())
        }
        .await,
    )
}

/// Sends a version in review back to its vendor with notes.
#[server(endpoint = "admin/reviews/reject")]
pub async fn reject_version(version_id: String, notes: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings::review;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let version = parse_id("version", &version_id)?;
            review::reject(&state.pool, &user, version, &notes).await?;
            leptos_axum::redirect("/admin/reviews?decided=rejected");
            Ok(())
        }
        .await,
    )
}

/// Features a published listing in the catalog, or stops featuring it (`featured` is "true" or
/// "false").
#[server(endpoint = "admin/featured")]
pub async fn set_featured(slug: String, featured: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::listings::review;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            review::set_featured(&state.pool, &user, &slug, featured == "true").await?;
            state.catalog.invalidate();
            Ok(())
        }
        .await,
    )
}
