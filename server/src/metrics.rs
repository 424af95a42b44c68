//! `/metrics`: Prometheus' text format, through the `metrics` facade and its Prometheus
//! exporter. Closed unless a token is configured (`--metrics-token`), and then only for requests
//! that carry it (`Authorization: Bearer <token>`).
//!
//! Counters are this process's: request latencies and statuses (middleware here), claims and
//! run outcomes (the worker pool and the sync engine), provider HTTP calls by provider and status
//! (`connectors`), rate-limit waits and token refreshes (`app`). The queue's depth is the whole
//! platform's, read from Postgres at every scrape, so that any process answers it truly.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::sync::OnceLock;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// Request durations' histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first use (a process has one; tests start many apps).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("patchbay_http_request_duration_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .expect("the buckets are not empty")
                .install_recorder()
                .expect("a metrics recorder is installed once, here")
        })
        .clone()
}

/// What `/metrics` needs.
#[derive(Clone)]
pub struct MetricsState {
    pub pool: PgPool,
    pub token: Option<SecretString>,
    pub handle: PrometheusHandle,
}

/// `/metrics` on its own, with its state: merged into `serve`'s router, and all that
/// `patchbay worker --metrics-addr` serves.
pub fn router(pool: PgPool, token: Option<SecretString>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(serve))
        .with_state(MetricsState {
            pool,
            token,
            handle: handle(),
        })
}

/// `GET /metrics`.
pub async fn serve(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = token.expose_secret().as_bytes();
    if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "A metrics token is needed: Authorization: Bearer <token>.",
        )
            .into_response();
    }
    if let Err(err) = queue_gauges(&state.pool).await {
        tracing::warn!(error = %err, "metrics: could not read the queue's depth");
    }
    state.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.handle.render(),
    )
        .into_response()
}

/// The queue's depth by state, platform-wide.
async fn queue_gauges(pool: &PgPool) -> sqlx::Result<()> {
    let mut tx = app::domain::db::begin(pool, app::domain::db::Scope::System).await?;
    let (queued, running, due): (i64, i64, i64) = sqlx::query_as(
        "select coalesce(sum(queued), 0)::int8, coalesce(sum(running), 0)::int8, \
                (select count(*) from sync_jobs where state = 'queued' and run_at <= now()) \
         from tenant_slots",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::gauge!("patchbay_queue_jobs", "state" => "queued").set(queued as f64);
    metrics::gauge!("patchbay_queue_jobs", "state" => "running").set(running as f64);
    metrics::gauge!("patchbay_queue_jobs", "state" => "due").set(due as f64);
    Ok(())
}

/// Which part of the site a path is, for the request metrics' labels (paths themselves carry
/// ids: too many series).
fn area(path: &str) -> &'static str {
    match path {
        p if p.starts_with("/api/") => "api",
        p if p.starts_with("/hooks/") => "hooks",
        p if p.starts_with("/oauth/") => "oauth",
        p if p.starts_with("/pkg/") || p.starts_with("/logos/") || p == "/favicon.svg" => "static",
        "/metrics" | "/healthz" => "ops",
        _ => "page",
    }
}

/// Counts every request and times it, by area, method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let area = area(req.uri().path());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!("patchbay_http_request_duration_seconds", "area" => area, "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("patchbay_http_requests_total", "area" => area, "method" => method, "status" => status)
        .increment(1);
    res
}

#[cfg(test)]
mod tests {
    use super::area;

    #[test]
    fn paths_fall_into_few_areas() {
        assert_eq!(area("/api/installs/get"), "api");
        assert_eq!(area("/hooks/sandbox-shop/0b4e"), "hooks");
        assert_eq!(area("/installs/0b4e"), "page");
        assert_eq!(area("/pkg/patchbay.wasm"), "static");
        assert_eq!(area("/metrics"), "ops");
    }
}
