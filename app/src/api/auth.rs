//! Sign-up, log-in, log-out, password change, and the session the UI renders from.

use crate::error::AppError;
use crate::model::SessionInfo;
use leptos::prelude::*;

/// Who is signed in (None when nobody is), with their organizations and the active one.
#[server(endpoint = "session")]
pub async fn get_session() -> Result<Option<SessionInfo>, AppError> {
    use super::ssr::*;
    use crate::domain::orgs;

    respond(
        async move {
            let state = state()?;
            let session = session().await?;
            let Some(user) = current_user(&state, &session).await? else {
                return Ok(None);
            };
            let orgs = orgs::list_for_user(&state.pool, user.id).await?;
            let active_org = pick_active_org(&session, &orgs).await?;
            Ok(Some(SessionInfo {
                user,
                orgs,
                active_org,
            }))
        }
        .await,
    )
}

/// Creates an account and signs it in.
#[server(endpoint = "signup")]
pub async fn sign_up(
    display_name: String,
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::accounts;
    use crate::model::{parse_name, Email, NewPassword};

    respond(
        async move {
            let display_name = parse_name("display_name", &display_name)?;
            let email = Email::parse(&email)?;
            let password = NewPassword::parse("password", password)?;
            let state = state()?;
            let session = session().await?;
            let user = accounts::sign_up(&state.pool, &email, &display_name, &password).await?;
            start_session(&state, &session, user.id, None).await?;
            tracing::info!(user_id = %user.id, "account created");
            leptos_axum::redirect(&safe_return_path(next.as_deref()));
            Ok(())
        }
        .await,
    )
}

/// Signs in. Failures say the same thing whether or not the email exists, and are throttled per
/// account and per address.
#[server(endpoint = "login")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::{accounts, orgs};

    respond(
        async move {
            let state = state()?;
            let session = session().await?;
            let user =
                accounts::authenticate(&state.pool, &email, &password, client_ip().await).await?;
            let first_org = orgs::list_for_user(&state.pool, user.id)
                .await?
                .first()
                .map(|o| o.id);
            start_session(&state, &session, user.id, first_org).await?;
            tracing::info!(user_id = %user.id, "signed in");
            leptos_axum::redirect(&safe_return_path(next.as_deref()));
            Ok(())
        }
        .await,
    )
}

/// Signs out and deletes the session.
#[server(endpoint = "logout")]
pub async fn log_out() -> Result<(), AppError> {
    use super::ssr::*;

    respond(
        async move {
            let session = session().await?;
            end_session(&session).await?;
            leptos_axum::redirect("/login");
            Ok(())
        }
        .await,
    )
}

/// Changes the signed-in user's password; the session id is cycled afterwards.
#[server(endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::accounts;
    use crate::model::NewPassword;

    respond(
        async move {
            let (state, session, user) = require_user().await?;
            let new = NewPassword::parse("new_password", new_password)?;
            if new.expose() != confirm_password {
                return Err(AppError::invalid(
                    "confirm_password",
                    "The two new passwords differ.",
                ));
            }
            accounts::change_password(&state.pool, user.id, &current_password, &new).await?;
            let active = session_get(&session, ACTIVE_ORG_KEY).await?;
            start_session(&state, &session, user.id, active).await?;
            tracing::info!(user_id = %user.id, "password changed");
            leptos_axum::redirect("/account?saved=password");
            Ok(())
        }
        .await,
    )
}
