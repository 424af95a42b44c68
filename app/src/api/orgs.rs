//! Organizations: create, switch the active one, and manage members.

use crate::error::AppError;
use crate::model::OrgDetail;
use leptos::prelude::*;

/// Creates an organization owned by the signed-in user and makes it the active one.
#[server(endpoint = "orgs/create")]
pub async fn create_org(name: String, kind: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::{parse_name, OrgKind};

    respond(
        async move {
            let (state, session, user) = require_user().await?;
            let name = parse_name("name", &name)?;
            let kind: OrgKind = kind.parse()?;
            let org = orgs::create(&state.pool, user.id, kind, &name).await?;
            session_set(&session, ACTIVE_ORG_KEY, org.id).await?;
            leptos_axum::redirect(&format!("/orgs/{}", org.id));
            Ok(())
        }
        .await,
    )
}

/// Makes one of the user's organizations the active one.
#[server(endpoint = "orgs/switch")]
pub async fn switch_org(org_id: String, next: Option<String>) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, session, user) = require_user().await?;
            let org = parse_id("organization", &org_id)?;
            if !orgs::is_member(&state.pool, user.id, org).await? {
                return Err(AppError::not_found(
                    "No such organization, or you are not a member of it.",
                ));
            }
            session_set(&session, ACTIVE_ORG_KEY, org).await?;
            if let Some(next) = next {
                leptos_axum::redirect(&safe_return_path(Some(&next)));
            }
            Ok(())
        }
        .await,
    )
}

/// An organization with its members, for one of its members.
#[server(endpoint = "orgs/detail")]
pub async fn get_org(org_id: String) -> Result<OrgDetail, AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let org = parse_id("organization", &org_id)?;
            orgs::detail(&state.pool, user.id, org).await
        }
        .await,
    )
}

/// Adds an existing account to an organization.
#[server(endpoint = "orgs/members/add")]
pub async fn add_member(org_id: String, email: String, role: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::{parse_id, Email, Role};

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let org = parse_id("organization", &org_id)?;
            let email = Email::parse(&email)?;
            let role: Role = role.parse()?;
            orgs::add_member(&state.pool, user.id, org, &email, role).await
        }
        .await,
    )
}

/// Changes a member's role.
#[server(endpoint = "orgs/members/role")]
pub async fn change_role(org_id: String, user_id: String, role: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::{parse_id, Role};

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let org = parse_id("organization", &org_id)?;
            let target = parse_id("member", &user_id)?;
            let role: Role = role.parse()?;
            orgs::change_role(&state.pool, user.id, org, target, role).await
        }
        .await,
    )
}

/// Removes a member, or lets the signed-in user leave.
#[server(endpoint = "orgs/members/remove")]
pub async fn remove_member(org_id: String, user_id: String) -> Result<(), AppError> {
    use super::ssr::*;
    use crate::domain::orgs;
    use crate::model::parse_id;

    respond(
        async move {
            let (state, _, user) = require_user().await?;
            let org = parse_id("organization", &org_id)?;
            let target = parse_id("member", &user_id)?;
            orgs::remove_member(&state.pool, user.id, org, target).await?;
            if target == user.id {
                leptos_axum::redirect("/");
            }
            Ok(())
        }
        .await,
    )
}
