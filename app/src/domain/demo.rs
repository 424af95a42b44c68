//! The demo seed behind `patchbay serve --demo`: a customer organization, two vendor organizations
//! and a platform admin, each login printed at start-up, and a marketplace of listings from the
//! vendors (see [`demo_listings`]). Running it again resets the demo passwords and adds nothing
//! twice.

use super::accounts;
use super::db::{self, Scope};
use super::demo_listings::{self, BLUEBIRD, NORTHWIND};
use super::orgs;
use crate::error::AppError;
use crate::model::{Email, NewPassword, OrgKind, UserInfo};
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

/// The demo vendor, owner of both vendor organizations.
const VENDOR_EMAIL: &str = "vendor@demo.patchbay.test";
/// The demo platform admin, who reviews and features the demo listings.
const ADMIN_EMAIL: &str = "admin@demo.patchbay.test";

struct Seed {
    who: &'static str,
    email: &'static str,
    name: &'static str,
    /// The organizations the login owns.
    orgs: &'static [(OrgKind, &'static str)],
    platform_admin: bool,
}

const SEEDS: [Seed; 3] = [
    Seed {
        who: "customer (owner of Acme Outfitters)",
        email: "customer@demo.patchbay.test",
        name: "Casey Customer",
        orgs: &[(OrgKind::Customer, "Acme Outfitters")],
        platform_admin: false,
    },
    Seed {
        who: "vendor (owner of Northwind Apps and Bluebird Labs)",
        email: VENDOR_EMAIL,
        name: "Val Vendor",
        orgs: &[
            (OrgKind::Vendor, NORTHWIND.org),
            (OrgKind::Vendor, BLUEBIRD.org),
        ],
        platform_admin: false,
    },
    Seed {
        who: "platform admin",
        email: ADMIN_EMAIL,
        name: "Ada Admin",
        orgs: &[],
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
        for &(kind, name) in seed.orgs {
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
    let vendor = find_user(pool, VENDOR_EMAIL).await?;
    let admin = find_user(pool, ADMIN_EMAIL).await?;
    let created = demo_listings::seed(pool, vendor.id, &admin).await?;
    if created > 0 {
        tracing::info!(created, "seeded demo listings");
    }
    Ok(logins)
}

/// A demo user, who exists once the logins are seeded.
async fn find_user(pool: &PgPool, email: &str) -> anyhow::Result<UserInfo> {
    let email = Email::parse(email).map_err(to_anyhow)?;
    accounts::find_by_email(pool, &email)
        .await
        .map_err(to_anyhow)?
        .with_context(|| format!("demo seed: no user {}", email.as_str()))
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
