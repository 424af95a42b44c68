//! Organizations and their members. Every function here checks the actor's role itself, so a
//! server function cannot forget to.
//!
//! Rules: any member may read the member list; owners and admins add, change and remove members;
//! only owners grant, change or remove the owner role; the last owner can be neither demoted nor
//! removed; anyone may leave, unless they are the last owner.

use super::audit;
use super::db::{self, Scope};
use crate::error::{on_constraint, AppError};
use crate::model::{Email, Member, OrgDetail, OrgKind, OrgSummary, Role};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    name: String,
    kind: String,
    role: String,
}

impl TryFrom<OrgRow> for OrgSummary {
    type Error = AppError;
    fn try_from(row: OrgRow) -> Result<Self, AppError> {
        Ok(OrgSummary {
            id: row.id,
            name: row.name,
            kind: row.kind.parse()?,
            role: row.role.parse()?,
        })
    }
}

/// Creates an organization with `owner` as its first owner.
pub async fn create(
    pool: &PgPool,
    owner: Uuid,
    kind: OrgKind,
    name: &str,
) -> Result<OrgSummary, AppError> {
    let id = Uuid::new_v4();
    let mut tx = db::tenant_tx(pool, id, owner).await?;
    sqlx::query("insert into organizations (id, kind, name, created_by) values ($1, $2, $3, $4)")
        .bind(id)
        .bind(kind.as_str())
        .bind(name)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        id,
        Some(owner),
        "organization.created",
        json!({ "name": name, "kind": kind.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(OrgSummary {
        id,
        name: name.to_owned(),
        kind,
        role: Role::Owner,
    })
}

/// The organizations `user` belongs to, by name.
pub async fn list_for_user(pool: &PgPool, user: Uuid) -> Result<Vec<OrgSummary>, AppError> {
    let mut tx = db::begin(pool, Scope::User(user)).await?;
    let rows: Vec<OrgRow> = sqlx::query_as(
        "select o.id, o.name, o.kind, m.role from memberships m \
         join organizations o on o.id = m.tenant_id \
         where m.user_id = $1 order by lower(o.name), o.id",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A user's role in `tenant`, if they are a member.
pub(crate) async fn member_role(
    conn: &mut PgConnection,
    tenant: Uuid,
    user: Uuid,
) -> Result<Option<Role>, AppError> {
    let role: Option<String> =
        sqlx::query_scalar("select role from memberships where tenant_id = $1 and user_id = $2")
            .bind(tenant)
            .bind(user)
            .fetch_optional(conn)
            .await?;
    role.map(|r| r.parse()).transpose()
}

/// The actor's role in the tenant the transaction is bound to; not a member is "not found", so
/// that outsiders learn nothing about the organization.
async fn role_in(conn: &mut PgConnection, tenant: Uuid, user: Uuid) -> Result<Role, AppError> {
    member_role(conn, tenant, user).await?.ok_or_else(not_found)
}

fn not_found() -> AppError {
    AppError::not_found("No such organization, or you are not a member of it.")
}

/// An organization and its members, for one of its members.
pub async fn detail(pool: &PgPool, actor: Uuid, tenant: Uuid) -> Result<OrgDetail, AppError> {
    let mut tx = db::tenant_tx(pool, tenant, actor).await?;
    let role = role_in(&mut tx, tenant, actor).await?;
    let (name, kind): (String, String) =
        sqlx::query_as("select name, kind from organizations where id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
    let rows: Vec<(Uuid, String, String, String, String)> = sqlx::query_as(
        "select u.id, u.email, u.display_name, m.role, to_char(m.created_at, 'YYYY-MM-DD') \
         from memberships m join users u on u.id = m.user_id \
         where m.tenant_id = $1 \
         order by case m.role when 'owner' then 0 when 'admin' then 1 else 2 end, lower(u.email)",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let members = rows
        .into_iter()
        .map(|(user_id, email, display_name, role, joined_at)| {
            Ok(Member {
                user_id,
                email,
                display_name,
                role: role.parse()?,
                joined_at,
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(OrgDetail {
        org: OrgSummary {
            id: tenant,
            name,
            kind: kind.parse()?,
            role,
        },
        members,
    })
}

/// Adds an existing user to the organization.
pub async fn add_member(
    pool: &PgPool,
    actor: Uuid,
    tenant: Uuid,
    email: &Email,
    role: Role,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(pool, tenant, actor).await?;
    let actor_role = role_in(&mut tx, tenant, actor).await?;
    if !actor_role.can_manage_members() {
        return Err(AppError::forbidden(
            "Only owners and admins can add members.",
        ));
    }
    if !actor_role.can_assign(role) {
        return Err(AppError::forbidden(
            "Only owners can make someone an owner.",
        ));
    }
    let user: Option<Uuid> = sqlx::query_scalar("select id from users where lower(email) = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let user = user.ok_or_else(|| {
        AppError::invalid(
            "email",
            "No Patchbay account uses this email. Ask them to sign up first, then add them.",
        )
    })?;
    sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)")
        .bind(tenant)
        .bind(user)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(on_constraint("memberships_pkey", || {
            AppError::conflict("email", "This person is already a member.")
        }))?;
    audit::record(
        &mut tx,
        tenant,
        Some(actor),
        "member.added",
        json!({ "user_id": user, "role": role }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Locks the organization's owner rows and counts them. Holding the locks until commit makes two
/// concurrent demotions of the last two owners queue behind each other, so one of them sees a
/// single owner left and is refused.
async fn lock_owner_count(conn: &mut PgConnection, tenant: Uuid) -> Result<usize, AppError> {
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "select user_id from memberships where tenant_id = $1 and role = 'owner' \
         order by user_id for update",
    )
    .bind(tenant)
    .fetch_all(conn)
    .await?;
    Ok(owners.len())
}

/// The role of the member an action targets.
async fn target_role(conn: &mut PgConnection, tenant: Uuid, user: Uuid) -> Result<Role, AppError> {
    member_role(conn, tenant, user)
        .await?
        .ok_or_else(|| AppError::not_found("That person is not a member of this organization."))
}

/// Changes a member's role.
pub async fn change_role(
    pool: &PgPool,
    actor: Uuid,
    tenant: Uuid,
    user: Uuid,
    role: Role,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(pool, tenant, actor).await?;
    // Outsiders are turned away before they can lock anything; then lock, then read the roles
    // that count, so a concurrent change commits before we look, not after.
    role_in(&mut tx, tenant, actor).await?;
    let owners = lock_owner_count(&mut tx, tenant).await?;
    let actor_role = role_in(&mut tx, tenant, actor).await?;
    if !actor_role.can_manage_members() {
        return Err(AppError::forbidden(
            "Only owners and admins can change roles.",
        ));
    }
    let current = target_role(&mut tx, tenant, user).await?;
    if !actor_role.can_assign(current) || !actor_role.can_assign(role) {
        return Err(AppError::forbidden(
            "Only owners can grant or change the owner role.",
        ));
    }
    if current == Role::Owner && role != Role::Owner && owners <= 1 {
        return Err(AppError::invalid(
            "role",
            "An organization needs at least one owner. Make someone else an owner first.",
        ));
    }
    sqlx::query("update memberships set role = $3 where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        tenant,
        Some(actor),
        "member.role_changed",
        json!({ "user_id": user, "from": current, "to": role }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member (or lets a member leave).
pub async fn remove_member(
    pool: &PgPool,
    actor: Uuid,
    tenant: Uuid,
    user: Uuid,
) -> Result<(), AppError> {
    let mut tx = db::tenant_tx(pool, tenant, actor).await?;
    role_in(&mut tx, tenant, actor).await?;
    let owners = lock_owner_count(&mut tx, tenant).await?;
    let actor_role = role_in(&mut tx, tenant, actor).await?;
    let current = target_role(&mut tx, tenant, user).await?;
    let leaving = actor == user;
    if !leaving && !actor_role.can_assign(current) {
        return Err(AppError::forbidden(if actor_role.can_manage_members() {
            "Only owners can remove an owner."
        } else {
            "Only owners and admins can remove members."
        }));
    }
    if current == Role::Owner && owners <= 1 {
        return Err(AppError::invalid(
            "member",
            "The last owner cannot be removed. Make someone else an owner first.",
        ));
    }
    sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        tenant,
        Some(actor),
        "member.removed",
        json!({ "user_id": user, "role": current }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether `user` belongs to `tenant` (used before making it the active organization).
pub async fn is_member(pool: &PgPool, user: Uuid, tenant: Uuid) -> Result<bool, AppError> {
    let mut tx = db::tenant_tx(pool, tenant, user).await?;
    let found = member_role(&mut tx, tenant, user).await?.is_some();
    tx.commit().await?;
    Ok(found)
}
