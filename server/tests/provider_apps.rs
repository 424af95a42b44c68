//! Provider apps: platform admins set the platform's OAuth app per provider, a vendor's owners and
//! admins set the vendor's own; the secret is sealed and never comes back; a connect flow uses the
//! listing vendor's app when it has one.

mod common;

use app::domain::accounts;
use app::domain::connections::apps::{self, Owner};
use app::domain::connections::ConnectSettings;
use app::domain::db;
use app::domain::vault::{generate_key, Keyring};
use app::error::AppError;
use app::model::Email;
use common::spawn_app;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

fn settings() -> ConnectSettings {
    ConnectSettings::new(
        "http://patchbay.test",
        Default::default(),
        Default::default(),
    )
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_vendors_own_app_comes_before_the_platforms(admin_pool: PgPool) {
    let pool = db::connect_app_pool(admin_pool.connect_options().as_ref().clone(), 3)
        .await
        .unwrap();
    let vault = Keyring::new(&generate_key(1), &[]).unwrap();
    let settings = settings();
    let actor: Uuid = sqlx::query_scalar(
        "insert into users (id, email, display_name, password_hash) \
         values (gen_random_uuid(), 'a@example.com', 'A', 'x') returning id",
    )
    .fetch_one(&admin_pool)
    .await
    .unwrap();
    let vendor: Uuid = sqlx::query_scalar(
        "insert into organizations (id, name, kind) values (gen_random_uuid(), 'V', 'vendor') returning id",
    )
    .fetch_one(&admin_pool)
    .await
    .unwrap();
    let other: Uuid = sqlx::query_scalar(
        "insert into organizations (id, name, kind) values (gen_random_uuid(), 'W', 'vendor') returning id",
    )
    .fetch_one(&admin_pool)
    .await
    .unwrap();

    let secret = |s: &str| SecretString::from(s.to_owned());
    // A new app needs its secret; a provider without OAuth needs no app.
    let err = apps::set(
        &pool,
        &vault,
        Owner::Platform,
        actor,
        "hubspot",
        "hub-id",
        &secret(""),
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("client_secret"));
    let err = apps::set(
        &pool,
        &vault,
        Owner::Platform,
        actor,
        "stripe",
        "x",
        &secret("y"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("provider"));

    apps::set(
        &pool,
        &vault,
        Owner::Platform,
        actor,
        "hubspot",
        "platform-id",
        &secret("platform-secret"),
    )
    .await
    .unwrap();
    apps::set(
        &pool,
        &vault,
        Owner::Vendor(vendor),
        actor,
        "hubspot",
        "vendor-id",
        &secret("vendor-secret"),
    )
    .await
    .unwrap();

    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select client_secret_enc from provider_apps")
        .fetch_all(&admin_pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for sealed in &stored {
        assert!(
            !String::from_utf8_lossy(sealed).contains("secret"),
            "secrets are sealed"
        );
    }

    let pick = |v: Option<Uuid>| {
        let (pool, vault, settings) = (&pool, &vault, &settings);
        async move {
            let app = apps::for_connect(pool, vault, settings, "hubspot", v)
                .await
                .unwrap()
                .unwrap();
            (
                app.app.client_id,
                app.app.client_secret.expose_secret().to_owned(),
            )
        }
    };
    assert_eq!(
        pick(Some(vendor)).await,
        ("vendor-id".into(), "vendor-secret".into())
    );
    assert_eq!(
        pick(Some(other)).await,
        ("platform-id".into(), "platform-secret".into())
    );
    assert_eq!(
        pick(None).await,
        ("platform-id".into(), "platform-secret".into())
    );
    assert_eq!(
        apps::for_connect(&pool, &vault, &settings, "github", None)
            .await
            .unwrap()
            .map(|a| a.id),
        None
    );

    // A blank secret keeps the stored one; the callback URL is the one to register.
    apps::set(
        &pool,
        &vault,
        Owner::Platform,
        actor,
        "hubspot",
        "platform-id-2",
        &secret(""),
    )
    .await
    .unwrap();
    assert_eq!(
        pick(None).await,
        ("platform-id-2".into(), "platform-secret".into())
    );
    let page = apps::page(&pool, &settings, Owner::Platform, None)
        .await
        .unwrap();
    assert_eq!(
        page.apps.len(),
        1,
        "the platform's page lists only its apps"
    );
    assert_eq!(page.callback_url, "http://patchbay.test/oauth/callback");
    assert!(!format!("{page:?}").contains("platform-secret"));

    // One vendor cannot see or change another's apps.
    let page = apps::page(&pool, &settings, Owner::Vendor(other), None)
        .await
        .unwrap();
    assert!(page.apps.is_empty());
    let err = apps::remove(&pool, Owner::Vendor(other), actor, "hubspot")
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound { .. }));
    assert_eq!(pick(Some(vendor)).await.0, "vendor-id");

    // A ciphertext moved to another app's row does not open.
    sqlx::query(
        "update provider_apps set client_secret_enc = (select client_secret_enc from provider_apps \
         where vendor_org_id is null) where vendor_org_id is not null",
    )
    .execute(&admin_pool)
    .await
    .unwrap();
    assert!(
        apps::for_connect(&pool, &vault, &settings, "hubspot", Some(vendor))
            .await
            .is_err()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn only_platform_admins_and_vendor_managers_set_apps(admin_pool: PgPool) {
    let app = spawn_app(admin_pool.clone()).await;
    let form = |owner: &'static str| {
        [
            ("owner", owner),
            ("provider", "hubspot"),
            ("client_id", "id"),
            ("client_secret", "s3cret-value"),
        ]
    };

    // A customer: neither the platform's apps nor a vendor's.
    let customer = app.user("Cu", "cu@example.com").await;
    app.create_org(&customer, "Cust", "customer").await;
    for owner in ["platform", "vendor"] {
        let res = app.call(&customer, "provider_apps/set", &form(owner)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{owner}");
        let res = app
            .call(&customer, "provider_apps", &[("owner", owner)])
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{owner}");
    }

    // A vendor's owner sets the vendor's app, not the platform's.
    let vendor = app.user("Ve", "ve@example.com").await;
    app.create_org(&vendor, "Vend", "vendor").await;
    let res = app
        .call(&vendor, "provider_apps/set", &form("platform"))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .call(&vendor, "provider_apps/set", &form("vendor"))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let (status, body) = app
        .call_json(&vendor, "provider_apps", &[("owner", "vendor")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apps"][0]["client_id"], "id");
    assert!(
        !body.to_string().contains("s3cret-value"),
        "the secret never comes back"
    );

    // A platform admin sets the platform's.
    let admin = app.user("Ad", "ad@example.com").await;
    accounts::set_platform_admin(&app.pool, &Email::parse("ad@example.com").unwrap(), true)
        .await
        .unwrap();
    let res = app
        .call(&admin, "provider_apps/set", &form("platform"))
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let owners: Vec<Option<Uuid>> = sqlx::query_scalar(
        "select vendor_org_id from provider_apps order by vendor_org_id nulls first",
    )
    .fetch_all(&admin_pool)
    .await
    .unwrap();
    assert_eq!(owners.len(), 2);
    assert!(owners[0].is_none() && owners[1].is_some());
}
