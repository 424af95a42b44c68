//! `POST /hooks/{provider}/{install}`: webhooks in. The raw body (at most
//! `app::domain::webhooks::MAX_BODY`, larger is 413 before anything reads it) and the headers go
//! to `app::domain::webhooks::receive`, which verifies, dedupes and enqueues; this handler turns
//! its answer into a status and a small JSON body with a stable code (never internal text).

use app::domain::webhooks::{self, Accepted, Refused};
use app::domain::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use uuid::Uuid;

pub async fn receive(
    State(state): State<AppState>,
    Path((provider, install)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(install) = Uuid::parse_str(&install) else {
        return answer(StatusCode::NOT_FOUND, "not_found");
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match webhooks::receive(&state, &provider, install, &headers, &body, now).await {
        Ok(Accepted::Enqueued) => answer(StatusCode::ACCEPTED, "queued"),
        // Already taken: acknowledged, so that a provider retrying a delivery we took stops.
        Ok(Accepted::Duplicate) => answer(StatusCode::OK, "duplicate"),
        Ok(Accepted::Paused) => answer(StatusCode::ACCEPTED, "paused"),
        Err(refused) => {
            tracing::info!(%provider, %install, reason = %refused, "webhook refused");
            match refused {
                Refused::NotFound => answer(StatusCode::NOT_FOUND, "not_found"),
                Refused::Gone => answer(StatusCode::GONE, "uninstalled"),
                Refused::NotReady => answer(StatusCode::CONFLICT, "not_configured"),
                Refused::Signature(_) => answer(StatusCode::UNAUTHORIZED, "bad_signature"),
                Refused::NoDeliveryId => answer(StatusCode::BAD_REQUEST, "no_delivery_id"),
                Refused::TooLarge => answer(StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                Refused::Internal => answer(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            }
        }
    }
}

fn answer(status: StatusCode, code: &str) -> Response {
    let key = if status.is_success() {
        "status"
    } else {
        "error"
    };
    (status, Json(json!({ key: code }))).into_response()
}
