//! Listing logos over plain HTTP: serving them by content hash, and the editor's upload form.
//!
//! The upload is a multipart form post (it works without JavaScript) answered with a redirect
//! back to the editor; a refused file comes back as a `logo_error` code the editor words. Only
//! codes travel in the URL, never text, so a crafted link cannot put words in the editor's mouth.

use app::api::ssr::{active_org, current_user};
use app::domain::{listings, logos, AppState};
use app::error::AppError;
use app::model::listing::LogoProblem;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sqlx::PgPool;
use tower_sessions::Session;
use uuid::Uuid;

/// The upload's request body limit: the largest logo plus room for the form around it.
pub const UPLOAD_BODY_LIMIT: usize = logos::MAX_LOGO_BYTES + 64 * 1024;

/// `GET /logos/{hash}`: the image, cached for good (the URL changes when the image does).
pub async fn serve(State(pool): State<PgPool>, Path(hash): Path<String>) -> Response {
    match logos::load(&pool, &hash).await {
        Ok(Some((content_type, bytes))) => {
            let content_type = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let etag = HeaderValue::from_str(&format!("\"{hash}\""))
                .unwrap_or(HeaderValue::from_static("\"logo\""));
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=31536000, immutable"),
                    ),
                    (header::ETAG, etag),
                    // An image is never a document: nothing in it may run if opened directly.
                    (
                        header::CONTENT_SECURITY_POLICY,
                        HeaderValue::from_static("default-src 'none'; sandbox"),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "No such logo.").into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        )
            .into_response(),
    }
}

/// `POST /vendor/listings/{id}/logo`: the editor's logo form (field `logo`).
pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Response {
    let Ok(listing) = Uuid::parse_str(&id) else {
        return (StatusCode::NOT_FOUND, "No such listing.").into_response();
    };
    let editor = format!("/vendor/listings/{listing}");
    let user = match current_user(&state, &session).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to(&format!("/login?next={editor}")).into_response(),
        Err(_) => return back(&editor, LogoProblem::Failed),
    };
    let vendor = match active_org(&state, &session, user.id).await {
        Ok(Some(org)) => org,
        Ok(None) => {
            return (StatusCode::FORBIDDEN, "Switch to a vendor organization.").into_response()
        }
        Err(_) => return back(&editor, LogoProblem::Failed),
    };
    let bytes = match read_logo(multipart).await {
        Ok(bytes) => bytes,
        Err(problem) => return back(&editor, problem),
    };
    if let Err(problem) = logos::classify(&bytes) {
        return back(&editor, problem);
    }
    match listings::set_logo(&state.pool, user.id, vendor, listing, &bytes).await {
        Ok(_) => Redirect::to(&format!("{editor}?saved=1")).into_response(),
        Err(AppError::Conflict { .. }) => back(&editor, LogoProblem::InReview),
        Err(AppError::NotFound { message } | AppError::Forbidden { message }) => {
            (StatusCode::NOT_FOUND, message).into_response()
        }
        Err(err) => {
            tracing::warn!(error = %err, "logo upload failed");
            back(&editor, LogoProblem::Failed)
        }
    }
}

/// The bytes of the form's `logo` field.
async fn read_logo(mut multipart: Multipart) -> Result<Vec<u8>, LogoProblem> {
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("logo") => {
                // The body limit stops a huge upload; reading past it fails here.
                return field
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|_| LogoProblem::TooLarge);
            }
            Ok(Some(_)) => continue,
            Ok(None) => return Err(LogoProblem::Missing),
            Err(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(LogoProblem::TooLarge)
            }
            Err(_) => return Err(LogoProblem::Missing),
        }
    }
}

fn back(editor: &str, problem: LogoProblem) -> Response {
    Redirect::to(&format!("{editor}?logo_error={}", problem.as_str())).into_response()
}
