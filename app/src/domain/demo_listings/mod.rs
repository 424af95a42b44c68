//! The demo marketplace behind `patchbay serve --demo`: about thirty listings from two vendor
//! organizations, built on the built-in providers and the bundled sandbox apps, with generated
//! logos. They go through the same domain calls a vendor and a reviewer make (create, save, logo,
//! submit, approve, feature), so the demo shows exactly what the product would hold. Two listings
//! stay unpublished (one in review, one draft) so the vendor and admin logins see the workflow.
//!
//! The seed runs at every demo start: it looks up which slugs exist in one query and does nothing
//! more for those, so a second run costs a single round trip.

mod data;

use super::db::{self, Scope};
use super::listings::{self, review};
use super::{logos, orgs};
use crate::model::listing::{ConfigInput, ListingForm, MappingInput};
use crate::model::UserInfo;
use anyhow::Context;
use data::LISTINGS;
use sqlx::PgPool;
use std::collections::HashSet;
use uuid::Uuid;

/// A vendor organization of the demo (owned by the demo vendor login), with its links.
pub struct DemoVendor {
    pub org: &'static str,
    pub website: &'static str,
}

/// Northwind Apps, the first demo vendor.
pub const NORTHWIND: DemoVendor = DemoVendor {
    org: "Northwind Apps",
    website: "https://northwind-apps.example",
};

/// Bluebird Labs, the second demo vendor.
pub const BLUEBIRD: DemoVendor = DemoVendor {
    org: "Bluebird Labs",
    website: "https://bluebird-labs.example",
};

/// How far through the workflow a demo listing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Saved with a logo, never submitted.
    Draft,
    /// Submitted and waiting in the review queue.
    InReview,
    /// Approved by the platform admin.
    Published,
    /// Approved and featured in the catalog.
    Featured,
}

/// A setting the customer fills in at install time, as the editor's config table takes it.
struct Config {
    key: &'static str,
    kind: &'static str,
    label: &'static str,
    help: &'static str,
    required: bool,
    default: &'static str,
}

/// One demo listing, in the terms of the listing editor.
struct DemoListing {
    vendor: &'static DemoVendor,
    stage: Stage,
    name: &'static str,
    slug: &'static str,
    tagline: &'static str,
    /// Markdown.
    description: &'static str,
    categories: &'static [&'static str],
    /// Provider id and stream names.
    source: (&'static str, &'static [&'static str]),
    /// Provider id (or `patchbay`) and stream (or collection) name.
    destination: (&'static str, &'static str),
    /// `(to, from)` rename rows.
    mapping: &'static [(&'static str, &'static str)],
    config: &'static [Config],
    /// The default schedule and the others a customer may pick.
    schedule: (&'static str, &'static [&'static str]),
    triggers: &'static [&'static str],
}

impl DemoListing {
    fn form(&self) -> ListingForm {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let website = self.vendor.website;
        ListingForm {
            name: self.name.to_owned(),
            slug: self.slug.to_owned(),
            tagline: self.tagline.to_owned(),
            description: self.description.to_owned(),
            categories: strings(self.categories),
            docs_url: format!("{website}/docs/{}", self.slug),
            support_url: format!("{website}/support"),
            website_url: website.to_owned(),
            source_provider: self.source.0.to_owned(),
            source_streams: strings(self.source.1),
            destination_provider: self.destination.0.to_owned(),
            destination_stream: self.destination.1.to_owned(),
            mapping: self
                .mapping
                .iter()
                .map(|(to, from)| MappingInput {
                    to: (*to).to_owned(),
                    from: (*from).to_owned(),
                })
                .collect(),
            config: self
                .config
                .iter()
                .map(|c| ConfigInput {
                    key: c.key.to_owned(),
                    kind: c.kind.to_owned(),
                    label: c.label.to_owned(),
                    help: c.help.to_owned(),
                    required: c.required.then(|| "on".to_owned()),
                    default: c.default.to_owned(),
                })
                .collect(),
            default_schedule: self.schedule.0.to_owned(),
            allowed_schedules: strings(self.schedule.1),
            triggers: strings(self.triggers),
        }
    }
}

/// Creates the demo listings that do not exist yet (by slug) as `vendor_user`, an owner of both
/// demo vendor organizations, approving and featuring them as `admin`; returns how many it
/// created.
pub async fn seed(pool: &PgPool, vendor_user: Uuid, admin: &UserInfo) -> anyhow::Result<usize> {
    let existing = existing_slugs(pool).await?;
    let missing: Vec<(usize, &DemoListing)> = LISTINGS
        .iter()
        .enumerate()
        .filter(|(_, listing)| !existing.contains(listing.slug))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let vendor_orgs = orgs::list_for_user(pool, vendor_user)
        .await
        .context("listing the demo vendor's organizations")?;
    for (index, listing) in &missing {
        let vendor = vendor_orgs
            .iter()
            .find(|o| o.name == listing.vendor.org)
            .with_context(|| format!("the demo vendor owns no {}", listing.vendor.org))?
            .id;
        // The index picks the logo colour, so neighbours in the catalog differ.
        let seed = u64::try_from(*index).unwrap_or_default();
        create_listing(pool, vendor_user, vendor, admin, listing, seed)
            .await
            .with_context(|| format!("seeding the demo listing {}", listing.slug))?;
    }
    Ok(missing.len())
}

/// The slugs of the demo listings that exist, whoever owns them (hence the system scope).
async fn existing_slugs(pool: &PgPool) -> anyhow::Result<HashSet<String>> {
    let slugs: Vec<&str> = LISTINGS.iter().map(|l| l.slug).collect();
    let mut tx = db::begin(pool, Scope::System).await?;
    let existing: Vec<String> =
        sqlx::query_scalar("select slug from listings where slug = any($1)")
            .bind(&slugs)
            .fetch_all(&mut *tx)
            .await
            .context("looking up the demo listings")?;
    tx.commit().await?;
    Ok(existing.into_iter().collect())
}

/// Takes one listing as far as its stage, through the vendor's and the reviewer's own calls.
async fn create_listing(
    pool: &PgPool,
    actor: Uuid,
    vendor: Uuid,
    admin: &UserInfo,
    listing: &DemoListing,
    seed: u64,
) -> anyhow::Result<()> {
    let id = listings::create(pool, actor, vendor, listing.name, listing.slug)
        .await
        .context("creating")?;
    listings::save(pool, actor, vendor, id, &listing.form())
        .await
        .context("saving")?;
    let logo = logos::generate_png(listing.name, seed);
    listings::set_logo(pool, actor, vendor, id, &logo)
        .await
        .context("adding the logo")?;
    if listing.stage == Stage::Draft {
        return Ok(());
    }
    listings::submit(pool, actor, vendor, id)
        .await
        .context("submitting")?;
    if listing.stage == Stage::InReview {
        return Ok(());
    }
    let version = listings::editor(pool, actor, vendor, id)
        .await
        .context("reading the submitted version")?
        .version
        .id;
    review::approve(pool, admin, version, "")
        .await
        .context("approving")?;
    if listing.stage == Stage::Featured {
        review::set_featured(pool, admin, listing.slug, true)
            .await
            .context("featuring")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::demo;

    /// Counts over the whole database, read through the test's superuser pool (no RLS).
    async fn counts(db: &PgPool) -> (i64, i64, i64, i64, i64, i64) {
        sqlx::query_as(
            "select (select count(*) from listings), \
                    (select count(*) from listings where status = 'published'), \
                    (select count(*) from listing_versions where state = 'in_review'), \
                    (select count(*) from listings where status = 'draft'), \
                    (select count(*) from listings where status = 'published' and featured_rank is not null), \
                    (select count(*) from listings where status = 'published' and logo_hash is null)",
        )
        .fetch_one(db)
        .await
        .unwrap()
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn the_demo_marketplace_is_seeded_once_across_categories_and_vendors(db: PgPool) {
        let pool = db::connect_app_pool(db.connect_options().as_ref().clone(), 4)
            .await
            .unwrap();
        demo::seed(&pool).await.unwrap();
        let first = counts(&db).await;
        let (all, published, in_review, drafts, featured, without_logo) = first;
        assert_eq!(all, i64::try_from(LISTINGS.len()).unwrap());
        assert!(published >= 28, "{published} published");
        assert_eq!((in_review, drafts), (1, 1));
        assert!((4..=6).contains(&featured), "{featured} featured");
        assert_eq!(without_logo, 0);

        let per_category: Vec<(String, i64)> = sqlx::query_as(
            "select c.slug, count(l.id) from categories c \
             left join listings l on l.status = 'published' and c.slug = any(l.categories) \
             group by c.slug order by c.slug",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(per_category.len(), 8);
        for (category, count) in &per_category {
            assert!(*count >= 2, "{category}: {count} published listings");
        }
        let vendors: Vec<String> = sqlx::query_scalar(
            "select distinct o.name from listings l join organizations o on o.id = l.vendor_org_id \
             where l.status = 'published' order by o.name",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(vendors, [BLUEBIRD.org, NORTHWIND.org]);
        let unpublished_owner: Vec<String> = sqlx::query_scalar(
            "select distinct o.name from listings l join organizations o on o.id = l.vendor_org_id \
             where l.status <> 'published'",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(unpublished_owner, [NORTHWIND.org]);

        let admin = accounts_user(&pool, "admin@demo.patchbay.test").await;
        let queue = review::queue(&pool, &admin).await.unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].vendor, NORTHWIND.org);

        demo::seed(&pool).await.unwrap();
        assert_eq!(counts(&db).await, first);
        let vendor = accounts_user(&pool, "vendor@demo.patchbay.test").await;
        assert_eq!(seed(&pool, vendor.id, &admin).await.unwrap(), 0);
    }

    async fn accounts_user(pool: &PgPool, email: &str) -> UserInfo {
        let email = crate::model::Email::parse(email).unwrap();
        crate::domain::accounts::find_by_email(pool, &email)
            .await
            .unwrap()
            .unwrap()
    }
}
