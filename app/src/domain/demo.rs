//! The demo seed behind `patchbay serve --demo`: a customer organization, a vendor organization and
//! a platform admin, each with a login that is printed at start-up. Running it again resets the
//! demo passwords and adds nothing twice.

use super::accounts;
use super::db::{self, Scope};
use super::orgs;
use crate::error::AppError;
use crate::model::{Email, NewPassword, OrgKind};
use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "patchbay-demo";

/// One demo login, as printed.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub who: &'static str,
    pub email: &'static str,
    pub password: &'static str,
}

struct Seed {
    who: &'static str,
    email: &'static str,
    name: &'static str,
    org: Option<(OrgKind, &'static str)>,
    platform_admin: bool,
}

const SEEDS: [Seed; 3] = [
    Seed {
        who: "customer (owner of Acme Outfitters)",
        email: "customer@demo.patchbay.test",
        name: "Casey Customer",
        org: Some((OrgKind::Customer, "Acme Outfitters")),
        platform_admin: false,
    },
    Seed {
        who: "vendor (owner of Northwind Apps)",
        email: "vendor@demo.patchbay.test",
        name: "Val Vendor",
        org: Some((OrgKind::Vendor, "Northwind Apps")),
        platform_admin: false,
    },
    Seed {
        who: "platform admin",
        email: "admin@demo.patchbay.test",
        name: "Ada Admin",
        org: None,
        platform_admin: true,
    },
];

/// Seeds the demo data and returns the logins to print.
pub async fn seed(pool: &PgPool) -> anyhow::Result<Vec<DemoLogin>> {
    let password = NewPassword::parse("password", DEMO_PASSWORD.to_owned()).map_err(to_anyhow)?;
    let mut logins = Vec::new();
    for seed in &SEEDS {
        let email = Email::parse(seed.email).map_err(to_anyhow)?;
        let user = match accounts::find_by_email(pool, &email)
            .await
            .map_err(to_anyhow)?
        {
            Some(user) => {
                let hash = accounts::hash_password(DEMO_PASSWORD).await?;
                sqlx::query("update users set password_hash = $2 where id = $1")
                    .bind(user.id)
                    .bind(hash)
                    .execute(pool)
                    .await
                    .context("resetting a demo password")?;
                user
            }
            None => accounts::sign_up(pool, &email, seed.name, &password)
                .await
                .map_err(to_anyhow)?,
        };
        if seed.platform_admin {
            accounts::set_platform_admin(pool, &email, true).await?;
        }
        if let Some((kind, name)) = seed.org {
            if !owns_org_named(pool, user.id, name).await? {
                orgs::create(pool, user.id, kind, name)
                    .await
                    .map_err(to_anyhow)?;
            }
        }
        logins.push(DemoLogin {
            who: seed.who,
            email: seed.email,
            password: DEMO_PASSWORD,
        });
    }
    Ok(logins)
}

async fn owns_org_named(pool: &PgPool, user: Uuid, name: &str) -> anyhow::Result<bool> {
    let mut tx = db::begin(pool, Scope::User(user)).await?;
    let found: bool = sqlx::query_scalar(
        "select exists (select 1 from memberships m join organizations o on o.id = m.tenant_id \
         where m.user_id = $1 and o.name = $2)",
    )
    .bind(user)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

fn to_anyhow(err: AppError) -> anyhow::Error {
    anyhow::anyhow!("demo seed: {err}")
}
