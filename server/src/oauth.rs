//! `GET /oauth/callback`: where providers send the browser back after the customer allowed (or
//! refused) access. The flow itself is checked and finished in
//! `app::domain::connections::flows`; this handler takes who is asking from the session and turns
//! the outcome into a redirect: back to where the customer started, or to `/connect/failed` with
//! a reason code (never text from the provider or the URL).

use app::api::connections::BINDING_KEY;
use app::api::ssr::{active_org, current_user};
use app::domain::connections::flows::{self, Callback, Finished};
use app::domain::AppState;
use app::model::connection::ConnectFailure;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    // A malformed query is treated as one without a state: refused, nothing stored.
    let params = parse_callback(query.as_deref().unwrap_or(""));
    let outcome = finish(&state, &session, &params).await;
    let target = match outcome {
        Finished::Connected {
            connection,
            return_to,
        } => {
            let sep = if return_to.contains('?') { '&' } else { '?' };
            format!("{return_to}{sep}connected={connection}")
        }
        Finished::Failed {
            failure,
            provider,
            return_to,
        } => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            url.append_pair("reason", failure.code());
            if let Some(provider) = provider {
                url.append_pair("provider", &provider);
            }
            if let Some(back) = return_to {
                url.append_pair("back", &back);
            }
            format!("/connect/failed?{}", url.finish())
        }
    };
    let mut response = Redirect::to(&target).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn finish(state: &AppState, session: &Session, params: &Callback) -> Finished {
    let refused = |failure| Finished::Failed {
        failure,
        provider: None,
        return_to: None,
    };
    let user = match current_user(state, session).await {
        Ok(Some(user)) => user,
        Ok(None) => return refused(ConnectFailure::BadState),
        Err(_) => return refused(ConnectFailure::Internal),
    };
    let tenant = match active_org(state, session, user.id).await {
        Ok(Some(org)) => org,
        Ok(None) => return refused(ConnectFailure::BadState),
        Err(_) => return refused(ConnectFailure::Internal),
    };
    let binding: Option<String> = session.get(BINDING_KEY).await.unwrap_or(None);
    match flows::finish(
        &state.pool,
        &state.vault,
        &state.connect,
        tenant,
        user.id,
        binding.as_deref(),
        params,
    )
    .await
    {
        Ok(finished) => finished,
        Err(err) => {
            tracing::error!(error = %err, "OAuth callback failed");
            refused(ConnectFailure::Internal)
        }
    }
}

/// The callback's parameters; the first of each name wins and unknown ones are ignored.
fn parse_callback(query: &str) -> Callback {
    let mut out = Callback::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "state" => &mut out.state,
            "code" => &mut out.code,
            "error" => &mut out.error,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    out
}
