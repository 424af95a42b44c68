//! The admin console's side of the domain: the failures dashboard, run detail, repair actions,
//! queue and worker health, alerts, the audit log, and retention of the run log.
//!
//! Reading across tenants is an explicit path, not a hole in tenant isolation: every function
//! here takes a [`Viewer`], which only [`Viewer::admin`] (the platform-admin flag) and
//! [`Viewer::vendor`] (a member of a vendor organization) make. Queries run in the system scope
//! and a vendor's are narrowed to runs of its own listings in the SQL itself. Repair actions are
//! for platform admins only, and each is written to the audit log of the tenant it touched, in
//! the transaction that made the change.

pub mod alerts;
pub mod audit;
pub mod detail;
pub mod failures;
pub mod health;
pub mod repair;
pub mod retention;

use crate::domain::db::{self, Scope};
use crate::error::AppError;
use crate::model::{OrgKind, UserInfo};
use sqlx::PgPool;
use uuid::Uuid;

/// Someone allowed to read failures across tenants: a platform admin (everything) or a vendor
/// (its own listings' runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    user: Uuid,
    vendor: Option<Uuid>,
}

impl Viewer {
    /// A platform admin, or `Forbidden`.
    pub fn admin(user: &UserInfo) -> Result<Viewer, AppError> {
        if user.is_platform_admin {
            Ok(Viewer {
                user: user.id,
                vendor: None,
            })
        } else {
            Err(AppError::forbidden(
                "Only platform admins see failures across organizations.",
            ))
        }
    }

    /// A member of the vendor organization `org`, or `Forbidden`.
    pub async fn vendor(pool: &PgPool, user: &UserInfo, org: Uuid) -> Result<Viewer, AppError> {
        let mut tx = db::tenant_tx(pool, org, user.id).await?;
        let role = crate::domain::orgs::member_role(&mut tx, org, user.id).await?;
        let kind: Option<String> =
            sqlx::query_scalar("select kind from organizations where id = $1")
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        if role.is_none() || kind.as_deref() != Some(OrgKind::Vendor.as_str()) {
            return Err(AppError::forbidden(
                "Switch to your vendor organization to see its listings' failures.",
            ));
        }
        Ok(Viewer {
            user: user.id,
            vendor: Some(org),
        })
    }

    /// The user acting.
    pub fn user(&self) -> Uuid {
        self.user
    }

    /// The vendor whose listings narrow every query; None for a platform admin.
    pub fn vendor_org(&self) -> Option<Uuid> {
        self.vendor
    }

    /// The acting platform admin, for repair actions; vendors get `Forbidden`.
    pub fn require_admin(&self) -> Result<Uuid, AppError> {
        match self.vendor {
            None => Ok(self.user),
            Some(_) => Err(AppError::forbidden(
                "Only platform admins repair syncs. Ask them, or the customer, to retry.",
            )),
        }
    }
}

/// Time format of the console's timestamps.
pub(crate) const STAMP: &str = "'YYYY-MM-DD HH24:MI:SS \"UTC\"'";

/// Begins a system-scoped transaction whose statements are planned for their parameters (the
/// dashboard's optional filters read as `$n is null or …`, which a generic plan handles badly).
async fn begin_read(pool: &PgPool) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = db::begin(pool, Scope::System).await?;
    sqlx::query("set local plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
