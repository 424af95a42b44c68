//! Request plumbing for server functions: the app state, the session and the signed-in user.

use crate::domain::{accounts, AppState};
use crate::error::AppError;
use crate::model::UserInfo;
use axum::extract::ConnectInfo;
use leptos::prelude::use_context;
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;
use uuid::Uuid;

/// Session key of the signed-in user's id.
pub const USER_KEY: &str = "user_id";
/// Session key of the active organization's id.
pub const ACTIVE_ORG_KEY: &str = "active_org";
/// Session key of the user's session epoch when the session started.
pub const EPOCH_KEY: &str = "epoch";

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server function context");
        AppError::Internal
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|err| {
        tracing::error!(error = %err, "session layer missing");
        AppError::Internal
    })
}

/// The client's address, when the server was started with connection info.
pub async fn client_ip() -> Option<IpAddr> {
    leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(addr)| addr.ip())
}

fn session_err(err: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %err, "session store error");
    AppError::Internal
}

pub async fn session_get(session: &Session, key: &str) -> Result<Option<Uuid>, AppError> {
    session.get::<Uuid>(key).await.map_err(session_err)
}

pub async fn session_set(session: &Session, key: &str, value: Uuid) -> Result<(), AppError> {
    session.insert(key, value).await.map_err(session_err)
}

/// Starts a fresh session for `user`: a new id (so a planted session id is worthless), the user,
/// their session epoch, and their active organization.
pub async fn start_session(
    state: &AppState,
    session: &Session,
    user: Uuid,
    active_org: Option<Uuid>,
) -> Result<(), AppError> {
    let epoch = accounts::session_epoch(&state.pool, user)
        .await?
        .ok_or(AppError::Unauthorized)?;
    session.cycle_id().await.map_err(session_err)?;
    session.clear().await;
    session_set(session, USER_KEY, user).await?;
    session
        .insert(EPOCH_KEY, epoch)
        .await
        .map_err(session_err)?;
    if let Some(org) = active_org {
        session_set(session, ACTIVE_ORG_KEY, org).await?;
    }
    Ok(())
}

pub async fn end_session(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(session_err)
}

/// The signed-in user, if any. A session whose user was deleted, or that started before the
/// user's password last changed, counts as signed out.
pub async fn current_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<UserInfo>, AppError> {
    let Some(id) = session_get(session, USER_KEY).await? else {
        return Ok(None);
    };
    let started: Option<i32> = session.get(EPOCH_KEY).await.map_err(session_err)?;
    match accounts::find_with_epoch(&state.pool, id).await? {
        Some((user, epoch)) if started == Some(epoch) => Ok(Some(user)),
        _ => Ok(None),
    }
}

/// The signed-in user, or `Unauthorized`.
pub async fn require_user() -> Result<(AppState, Session, UserInfo), AppError> {
    let state = state()?;
    let session = session().await?;
    let user = current_user(&state, &session)
        .await?
        .ok_or(AppError::Unauthorized)?;
    Ok((state, session, user))
}

/// The user's active organization: the one chosen in the header while they still belong to it,
/// else their first.
pub async fn active_org(
    state: &AppState,
    session: &Session,
    user: Uuid,
) -> Result<Option<Uuid>, AppError> {
    let orgs = crate::domain::orgs::list_for_user(&state.pool, user).await?;
    pick_active_org(session, &orgs).await
}

/// Of the user's organizations, the one chosen in the header while they still belong to it, else
/// the first.
pub async fn pick_active_org(
    session: &Session,
    orgs: &[crate::model::OrgSummary],
) -> Result<Option<Uuid>, AppError> {
    let stored = session_get(session, ACTIVE_ORG_KEY).await?;
    Ok(stored
        .filter(|id| orgs.iter().any(|o| o.id == *id))
        .or_else(|| orgs.first().map(|o| o.id)))
}

/// The signed-in user and their active organization.
pub async fn require_org(
) -> Result<(AppState, Session, UserInfo, crate::model::OrgSummary), AppError> {
    let (state, session, user) = require_user().await?;
    let orgs = crate::domain::orgs::list_for_user(&state.pool, user.id).await?;
    let active = pick_active_org(&session, &orgs).await?;
    let org = orgs
        .into_iter()
        .find(|o| Some(o.id) == active)
        .ok_or_else(|| AppError::forbidden("Create an organization to connect accounts."))?;
    Ok((state, session, user, org))
}

/// The signed-in user and their active organization, for the vendor console (the domain checks
/// that the organization is a vendor and that the user belongs to it).
pub async fn require_vendor() -> Result<(AppState, UserInfo, Uuid), AppError> {
    let (state, session, user) = require_user().await?;
    let org = active_org(&state, &session, user.id)
        .await?
        .ok_or_else(|| AppError::forbidden("Create a vendor organization to publish listings."))?;
    Ok((state, user, org))
}

/// A same-site path to return to after a form, or `/`. Refuses anything that could leave the site
/// (`//host`, `/\host`, absolute URLs).
pub fn safe_return_path(next: Option<&str>) -> String {
    match next.map(str::trim) {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Gives a failed server function the HTTP status its error means. A plain HTML form post is left
/// alone: it gets the redirect back to its page, with the error in the URL.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(err) = &result {
        let accepts_html = use_context::<http::request::Parts>()
            .and_then(|parts| {
                parts
                    .headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.contains("text/html"))
            })
            .unwrap_or(false);
        if let (false, Some(response)) =
            (accepts_html, use_context::<leptos_axum::ResponseOptions>())
        {
            response.set_status(status_of(err));
        }
    }
    result
}

/// The HTTP status of an error.
pub fn status_of(err: &AppError) -> http::StatusCode {
    use http::StatusCode;
    match err {
        AppError::Unauthorized => StatusCode::UNAUTHORIZED,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Request { .. } => StatusCode::BAD_REQUEST,
        AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_return_path(Some("/orgs/new")), "/orgs/new");
        for bad in [
            "https://evil.test/",
            "//evil.test",
            "/\\evil.test",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path(None), "/");
    }
}
