//! The HTTP router: Leptos pages and server functions, static files, `/healthz`, `/metrics`, and
//! the middleware stack (request metrics, request ids and tracing, security headers, CSRF guard,
//! sessions).

use crate::middleware::{self, OriginPolicy};
use app::domain::AppState;
use app::{shell, App};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use serde_json::json;
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tower_http::CompressionLevel;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;
use tracing::Level;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "patchbay_session";

/// Everything the router needs.
#[derive(Clone, Debug)]
pub struct ServerState {
    /// The application pool (connections run as the app role).
    pub pool: PgPool,
    pub public_url: String,
    pub site_root: PathBuf,
    pub session_idle: Duration,
    /// The credential vault's keys.
    pub vault: std::sync::Arc<app::domain::vault::Keyring>,
    /// How connections reach providers.
    pub connect: std::sync::Arc<app::domain::connections::ConnectSettings>,
    /// The token `/metrics` asks for; without one it is not served.
    pub metrics_token: Option<secrecy::SecretString>,
}

/// Builds the whole application.
pub fn build_router(state: ServerState) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name("patchbay")
        .site_root(state.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .build();
    let app_state = AppState::new(
        state.pool.clone(),
        state.vault.clone(),
        state.connect.clone(),
    );
    let app_state_for_routes = app_state.clone();
    let page_cache =
        crate::page_cache::PageCache::new(state.pool.clone(), app_state.catalog.clone());
    let routes = generate_route_list(App);
    let context = move || provide_context(app_state.clone());

    let secure_cookies = state.public_url.starts_with("https://");
    let idle = tower_sessions::cookie::time::Duration::seconds(state.session_idle.as_secs() as i64);
    let sessions = SessionManagerLayer::new(PostgresStore::new(state.pool.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(idle));

    let pool = state.pool.clone();
    let logo_routes = Router::new()
        .route("/logos/{hash}", get(crate::logos::serve))
        .with_state(state.pool.clone())
        .merge(
            Router::new()
                .route(
                    "/vendor/listings/{id}/logo",
                    axum::routing::post(crate::logos::upload),
                )
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::logos::UPLOAD_BODY_LIMIT,
                ))
                .with_state(app_state_for_routes.clone()),
        )
        .merge(
            Router::new()
                .route("/oauth/callback", get(crate::oauth::callback))
                .with_state(app_state_for_routes.clone()),
        )
        .merge(
            Router::new()
                .route(
                    "/hooks/{provider}/{install}",
                    axum::routing::post(crate::hooks::receive),
                )
                // Larger bodies are refused (413) before they are read whole.
                .layer(axum::extract::DefaultBodyLimit::max(
                    app::domain::webhooks::MAX_BODY,
                ))
                .with_state(app_state_for_routes),
        );
    let site = Router::new()
        .leptos_routes_with_context(&leptos_options, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            context, shell,
        ))
        .with_state(leptos_options);

    let metrics = crate::metrics::router(state.pool.clone(), state.metrics_token.clone());

    Router::new()
        .route("/healthz", get(move || healthz(pool.clone())))
        .merge(metrics)
        .route("/favicon.svg", get(favicon))
        .merge(logo_routes)
        .merge(site)
        .layer(sessions)
        // Outside the session layer: a stored anonymous page needs no session at all.
        .layer(axum::middleware::from_fn_with_state(
            page_cache,
            crate::page_cache::page_cache,
        ))
        .layer(axum::middleware::from_fn_with_state(
            OriginPolicy::new(&state.public_url),
            middleware::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            // The path only: query strings can carry codes and tokens.
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                // The wasm bundle shrinks to about a third with gzip. The fastest level: pages
                // are compressed on every request, and level 1 costs a fraction of the default's
                // CPU for a few percent more bytes.
                .layer(CompressionLayer::new().quality(CompressionLevel::Fastest)),
        )
        .layer(axum::middleware::from_fn(crate::metrics::track))
}

/// Liveness and readiness: 200 when the database answers, 503 when it does not.
async fn healthz(pool: PgPool) -> impl IntoResponse {
    match sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(&pool)
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok" })),
        ),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        include_str!("../assets/favicon.svg"),
    )
}
