//! The admin console's operations: the failures dashboard, run detail, repair actions, queue and
//! worker health, and the audit log; and the vendor console's view of its own listings'
//! failures. Who may see what is decided by `domain::admin::Viewer`.

use crate::error::AppError;
use crate::model::admin::{
    AlertsPage, AuditPage, FailureQuery, FailuresPage, HealthPage, RunDetail,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod server {
    use crate::domain::admin::Viewer;
    use crate::domain::AppState;
    use crate::error::AppError;

    /// A platform admin.
    pub async fn admin() -> Result<(AppState, Viewer), AppError> {
        let (state, _, user) = crate::api::ssr::require_user().await?;
        let viewer = Viewer::admin(&user)?;
        Ok((state, viewer))
    }

    /// A member of the active vendor organization.
    pub async fn vendor() -> Result<(AppState, Viewer), AppError> {
        let (state, user, org) = crate::api::ssr::require_vendor().await?;
        let viewer = Viewer::vendor(&state.pool, &user, org).await?;
        Ok((state, viewer))
    }

    /// A platform admin, else a member of the active vendor organization.
    pub async fn anyone() -> Result<(AppState, Viewer), AppError> {
        let (state, session, user) = crate::api::ssr::require_user().await?;
        if user.is_platform_admin {
            return Ok((state, Viewer::admin(&user)?));
        }
        let org = crate::api::ssr::active_org(&state, &session, user.id)
            .await?
            .ok_or_else(|| {
                AppError::forbidden("Only platform admins and vendors see runs here.")
            })?;
        let viewer = Viewer::vendor(&state.pool, &user, org).await?;
        Ok((state, viewer))
    }

    pub fn run_id(raw: &str) -> Result<i64, AppError> {
        raw.trim()
            .parse()
            .map_err(|_| AppError::invalid("run", "That is not a run number."))
    }

    /// The dashboard's URL for a filter.
    pub fn failures_url(query: &crate::model::admin::FailureQuery, extra: &str) -> String {
        let pairs = [
            ("tenant", &query.tenant),
            ("listing", &query.listing),
            ("provider", &query.provider),
            ("class", &query.class),
            ("outcome", &query.outcome),
            ("range", &query.range),
        ];
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            url.append_pair(k, v);
        }
        let text = url.finish();
        match (text.is_empty(), extra.is_empty()) {
            (true, true) => "/admin/failures".to_owned(),
            (true, false) => format!("/admin/failures?{extra}"),
            (false, true) => format!("/admin/failures?{text}"),
            (false, false) => format!("/admin/failures?{text}&{extra}"),
        }
    }
}

/// The dashboard's filters from the URL's (or a form's) fields.
pub fn failure_query(
    tenant: Option<String>,
    listing: Option<String>,
    provider: Option<String>,
    class: Option<String>,
    outcome: Option<String>,
    range: Option<String>,
) -> FailureQuery {
    let text = |v: Option<String>| v.map(|s| s.trim().to_owned()).unwrap_or_default();
    FailureQuery {
        tenant: text(tenant),
        listing: text(listing),
        provider: text(provider),
        class: text(class),
        outcome: text(outcome),
        range: text(range),
    }
}

/// The failures dashboard for the filters (platform admins).
#[server(endpoint = "admin/failures")]
pub async fn get_failures(
    tenant: Option<String>,
    listing: Option<String>,
    provider: Option<String>,
    class: Option<String>,
    outcome: Option<String>,
    range: Option<String>,
) -> Result<FailuresPage, AppError> {
    use crate::api::ssr::respond;
    let query = failure_query(tenant, listing, provider, class, outcome, range);
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            crate::domain::admin::failures::page(&state.pool, &viewer, query).await
        }
        .await,
    )
}

/// The failures of the active vendor organization's listings.
#[server(endpoint = "vendor/failures")]
pub async fn get_vendor_failures(
    listing: Option<String>,
    provider: Option<String>,
    class: Option<String>,
    outcome: Option<String>,
    range: Option<String>,
) -> Result<FailuresPage, AppError> {
    use crate::api::ssr::respond;
    let query = failure_query(None, listing, provider, class, outcome, range);
    respond(
        async move {
            let (state, viewer) = server::vendor().await?;
            crate::domain::admin::failures::page(&state.pool, &viewer, query).await
        }
        .await,
    )
}

/// One attempt in detail (platform admins; vendors for their own listings).
#[server(endpoint = "admin/runs/get")]
pub async fn get_run_detail(id: String) -> Result<RunDetail, AppError> {
    use crate::api::ssr::respond;
    respond(
        async move {
            let (state, viewer) = server::anyone().await?;
            crate::domain::admin::detail::run_detail(&state.pool, &viewer, server::run_id(&id)?)
                .await
        }
        .await,
    )
}

/// A repair action on a run: `retry` or `replay`; or on its install: `resync`, or `pause` with
/// `message` for the customer.
#[server(endpoint = "admin/runs/action")]
pub async fn admin_run_action(
    id: String,
    action: String,
    message: Option<String>,
) -> Result<(), AppError> {
    use crate::api::ssr::respond;
    use crate::domain::admin::repair;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            let run = server::run_id(&id)?;
            let done = match action.as_str() {
                "retry" => match repair::retry(&state.pool, &viewer, run).await? {
                    repair::Retried::Now => "retry_now".to_owned(),
                    repair::Retried::Requeued => "retry".to_owned(),
                },
                "replay" => {
                    let n = repair::replay(&state.pool, &viewer, run).await?;
                    format!("replay&records={n}")
                }
                "resync" | "pause" => {
                    let (tenant, install) =
                        repair::install_of_run(&state.pool, &viewer, run).await?;
                    if action == "resync" {
                        repair::resync(&state.pool, &viewer, tenant, install).await?;
                    } else {
                        let message = message.as_deref().unwrap_or_default();
                        repair::pause(&state.pool, &viewer, tenant, install, message).await?;
                    }
                    action.clone()
                }
                _ => return Err(AppError::invalid("action", "Unknown action.")),
            };
            leptos_axum::redirect(&format!("/admin/runs/{run}?done={done}"));
            Ok(())
        }
        .await,
    )
}

/// Queues again every dead job of the dashboard's filter.
#[server(endpoint = "admin/failures/retry")]
pub async fn bulk_retry(
    tenant: Option<String>,
    listing: Option<String>,
    provider: Option<String>,
    class: Option<String>,
    outcome: Option<String>,
    range: Option<String>,
) -> Result<(), AppError> {
    use crate::api::ssr::respond;
    let query = failure_query(tenant, listing, provider, class, outcome, range);
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            let n = crate::domain::admin::repair::bulk_retry(&state.pool, &viewer, query.clone())
                .await?;
            leptos_axum::redirect(&server::failures_url(&query, &format!("retried={n}")));
            Ok(())
        }
        .await,
    )
}

/// Queue and worker health.
#[server(endpoint = "admin/health")]
pub async fn get_health() -> Result<HealthPage, AppError> {
    use crate::api::ssr::respond;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            crate::domain::admin::health::page(&state.pool, &viewer).await
        }
        .await,
    )
}

/// The audit log, searched for `q`, older than entry `before`.
#[server(endpoint = "admin/audit")]
pub async fn get_audit(q: String, before: Option<i64>) -> Result<AuditPage, AppError> {
    use crate::api::ssr::respond;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            crate::domain::admin::audit::page(&state.pool, &viewer, &q, before).await
        }
        .await,
    )
}

/// Alert rules, open and resolved alerts, and webhook deliveries (platform admins).
#[server(endpoint = "admin/alerts")]
pub async fn get_alerts() -> Result<AlertsPage, AppError> {
    use crate::api::ssr::respond;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            crate::domain::admin::alerts::page(&state.pool, &state.vault, &viewer).await
        }
        .await,
    )
}

/// Adds an alert rule.
#[server(endpoint = "admin/alerts/create")]
pub async fn create_alert_rule(
    name: String,
    kind: String,
    threshold: Option<String>,
    window_minutes: Option<String>,
    webhook_url: Option<String>,
) -> Result<(), AppError> {
    use crate::api::ssr::respond;
    use crate::domain::admin::alerts;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            let rule = alerts::NewRule {
                name,
                kind,
                threshold: threshold.unwrap_or_default(),
                window_minutes: window_minutes.unwrap_or_default(),
                webhook_url: webhook_url.unwrap_or_default(),
            };
            let id = alerts::create_rule(
                &state.pool,
                &state.vault,
                &state.connect.http,
                &viewer,
                rule,
            )
            .await?;
            leptos_axum::redirect(&format!("/admin/alerts?done=created#rule-{id}"));
            Ok(())
        }
        .await,
    )
}

/// `enable`, `disable`, `delete`, `test` (a test delivery) or `rotate` (a new secret) a rule.
#[server(endpoint = "admin/alerts/rule")]
pub async fn alert_rule_action(id: String, action: String) -> Result<(), AppError> {
    use crate::api::ssr::respond;
    use crate::domain::admin::alerts;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            let rule = uuid::Uuid::parse_str(id.trim())
                .map_err(|_| AppError::not_found("That alert rule does not exist."))?;
            let what: alerts::RuleAction = action.parse()?;
            alerts::rule_action(
                &state.pool,
                &state.vault,
                &state.connect.public_url,
                &viewer,
                rule,
                what,
            )
            .await?;
            leptos_axum::redirect(&format!("/admin/alerts?done={action}"));
            Ok(())
        }
        .await,
    )
}

/// Acknowledges an open alert.
#[server(endpoint = "admin/alerts/ack")]
pub async fn acknowledge_alert(id: String) -> Result<(), AppError> {
    use crate::api::ssr::respond;
    respond(
        async move {
            let (state, viewer) = server::admin().await?;
            let alert = id
                .trim()
                .parse()
                .map_err(|_| AppError::not_found("That alert does not exist."))?;
            crate::domain::admin::alerts::acknowledge(&state.pool, &viewer, alert).await?;
            leptos_axum::redirect("/admin/alerts?done=acknowledged");
            Ok(())
        }
        .await,
    )
}
