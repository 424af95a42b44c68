//! API-key connections: the form's fields are checked with the provider's own check call before
//! anything is saved, a refused key saves nothing, and a saved key is sealed and usable. Stripe's
//! documented API (`GET /v1/balance` with `Authorization: Bearer <secret key>`) is played by a
//! local wiremock fake that the shipped spec is pointed at.

use app::domain::connections::{self, refresh, ConnectSettings, Revocation};
use app::domain::db;
use app::domain::vault::{generate_key, Keyring};
use app::domain::{accounts, orgs};
use app::error::AppError;
use app::model::{Email, NewPassword, OrgKind};
use connectors::engine::Credentials;
use connectors::http::HttpConfig;
use connectors::spec::{builtin_specs, ProviderSpec};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GOOD_KEY: &str = "rk_test_51GoodKeyThatStripeAccepts";

/// The shipped Stripe spec with its API at `origin` (path kept).
fn stripe_at(origin: &str) -> ProviderSpec {
    let mut spec = builtin_specs()
        .unwrap()
        .into_iter()
        .find(|s| s.id == "stripe")
        .unwrap();
    let path = spec.base_url.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    spec.base_url = format!("{origin}{path}");
    spec
}

/// A fake of Stripe's balance endpoint: 200 for the good key, Stripe's 401 body otherwise.
async fn fake_stripe() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .and(header(
            "authorization",
            format!("Bearer {GOOD_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "object": "balance",
            "available": [{ "amount": 0, "currency": "usd" }],
            "livemode": false
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/balance"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": { "message": "Invalid API Key provided: rk_test_***", "type": "invalid_request_error" }
        })))
        .with_priority(5)
        .mount(&server)
        .await;
    server
}

struct World {
    pool: PgPool,
    vault: Keyring,
    settings: ConnectSettings,
    tenant: Uuid,
    owner: Uuid,
    member: Uuid,
    _stripe: MockServer,
}

async fn world(admin_pool: &PgPool) -> World {
    let pool = db::connect_app_pool(admin_pool.connect_options().as_ref().clone(), 4)
        .await
        .unwrap();
    let password = NewPassword::parse("password", "long enough password".into()).unwrap();
    let owner = accounts::sign_up(
        &pool,
        &Email::parse("o@example.com").unwrap(),
        "O",
        &password,
    )
    .await
    .unwrap();
    let member = accounts::sign_up(
        &pool,
        &Email::parse("m@example.com").unwrap(),
        "M",
        &password,
    )
    .await
    .unwrap();
    let tenant = orgs::create(&pool, owner.id, OrgKind::Customer, "Keyed Co")
        .await
        .unwrap()
        .id;
    sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'member')")
        .bind(tenant)
        .bind(member.id)
        .execute(admin_pool)
        .await
        .unwrap();
    let stripe = fake_stripe().await;
    let mut http = HttpConfig::default();
    http.allow.push("127.0.0.1/32".parse().unwrap());
    let settings = ConnectSettings::new("http://patchbay.test", http, BTreeMap::new())
        .unwrap()
        .with_spec(stripe_at(&stripe.uri()));
    World {
        pool,
        vault: Keyring::new(&generate_key(1), &[]).unwrap(),
        settings,
        tenant,
        owner: owner.id,
        member: member.id,
        _stripe: stripe,
    }
}

fn key(value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("api_key".to_owned(), value.to_owned())])
}

async fn connect(w: &World, user: Uuid, value: &str) -> Result<Uuid, AppError> {
    connections::connect_with_fields(
        &w.pool,
        &w.vault,
        &w.settings,
        w.tenant,
        user,
        "stripe",
        None,
        &key(value),
    )
    .await
}

async fn stored(admin_pool: &PgPool) -> Vec<(Uuid, String, Option<Vec<u8>>)> {
    sqlx::query_as("select id, status, credentials_enc from connections")
        .fetch_all(admin_pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_the_provider_refuses_is_not_saved(admin_pool: PgPool) {
    let w = world(&admin_pool).await;
    let err = connect(&w, w.owner, "rk_test_wrong").await.unwrap_err();
    assert_eq!(err.to_string(), "Stripe did not accept these credentials.");
    assert!(stored(&admin_pool).await.is_empty());

    // An empty or malformed field never reaches the provider.
    let err = connect(&w, w.owner, "").await.unwrap_err();
    assert_eq!(err.field(), Some("fields.api_key"));
    let err = connect(&w, w.owner, "rk_test\u{7}bell").await.unwrap_err();
    assert_eq!(err.field(), Some("fields.api_key"));
    assert!(stored(&admin_pool).await.is_empty());
    let calls = w._stripe.received_requests().await.unwrap();
    assert_eq!(
        calls.len(),
        1,
        "only the well-formed key was checked with Stripe"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_good_key_is_checked_then_sealed_and_usable(admin_pool: PgPool) {
    let w = world(&admin_pool).await;
    let id = connect(&w, w.owner, GOOD_KEY).await.unwrap();

    let rows = stored(&admin_pool).await;
    assert_eq!(rows.len(), 1);
    let (row_id, status, sealed) = &rows[0];
    assert_eq!((*row_id, status.as_str()), (id, "active"));
    let sealed = sealed.as_ref().unwrap();
    assert!(
        !sealed
            .windows(GOOD_KEY.len())
            .any(|w| w == GOOD_KEY.as_bytes()),
        "the key is stored encrypted"
    );

    // The sync engine gets the key back as the spec's credentials.
    let conn = refresh::credentials(&w.pool, &w.vault, &w.settings, w.tenant, id)
        .await
        .unwrap();
    match &conn.credentials {
        Credentials::ApiKey { key } => assert_eq!(key.expose_secret(), GOOD_KEY),
        other => panic!("expected an API key, got {other:?}"),
    }

    // The page shows it, without the key.
    let view = connections::get(&w.pool, w.tenant, w.owner, id)
        .await
        .unwrap();
    assert_eq!(view.provider_name, "Stripe");
    assert!(!format!("{view:?}").contains(GOOD_KEY));
    assert!(view.last_used_at.is_some());

    // Disconnecting an API key deletes it; Stripe has no revocation endpoint for keys.
    let outcome = connections::disconnect(&w.pool, &w.vault, &w.settings, w.tenant, w.owner, id)
        .await
        .unwrap();
    assert_eq!(outcome, Revocation::NotSupported);
    let rows = stored(&admin_pool).await;
    assert_eq!(rows[0].1, "revoked");
    assert!(rows[0].2.is_none());
    assert!(
        refresh::credentials(&w.pool, &w.vault, &w.settings, w.tenant, id)
            .await
            .is_err(),
        "a disconnected connection gives no credentials"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn members_see_connections_but_only_owners_and_admins_connect(admin_pool: PgPool) {
    let w = world(&admin_pool).await;
    let err = connect(&w, w.member, GOOD_KEY).await.unwrap_err();
    assert!(matches!(err, AppError::Forbidden { .. }), "{err:?}");
    assert!(stored(&admin_pool).await.is_empty());

    let id = connect(&w, w.owner, GOOD_KEY).await.unwrap();
    let list = connections::list(&w.pool, w.tenant, w.member)
        .await
        .unwrap();
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    let err = connections::disconnect(&w.pool, &w.vault, &w.settings, w.tenant, w.member, id)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::Forbidden { .. }), "{err:?}");
    assert_eq!(stored(&admin_pool).await[0].1, "active");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_reconnect_keeps_the_connection(admin_pool: PgPool) {
    let w = world(&admin_pool).await;
    let id = connect(&w, w.owner, GOOD_KEY).await.unwrap();
    sqlx::query("update connections set status = 'needs_reauth', status_reason = 'x'")
        .execute(&admin_pool)
        .await
        .unwrap();
    // A wrong key leaves it as it was.
    let err = connections::connect_with_fields(
        &w.pool,
        &w.vault,
        &w.settings,
        w.tenant,
        w.owner,
        "stripe",
        Some(id),
        &key("rk_bad"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AppError::Invalid { .. }));
    assert_eq!(stored(&admin_pool).await[0].1, "needs_reauth");
    let again = connections::connect_with_fields(
        &w.pool,
        &w.vault,
        &w.settings,
        w.tenant,
        w.owner,
        "stripe",
        Some(id),
        &key(GOOD_KEY),
    )
    .await
    .unwrap();
    assert_eq!(again, id);
    let rows = stored(&admin_pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "active");
}

#[sqlx::test(migrations = "../migrations")]
async fn inputs_asked_before_the_provider_sign_in_are_checked(admin_pool: PgPool) {
    use app::domain::connections::{apps, flows};
    let w = world(&admin_pool).await;
    let start = |shop: &str| flows::StartRequest {
        provider: "shopify".into(),
        return_to: "/connections".into(),
        fields: BTreeMap::from([("shop".to_owned(), shop.to_owned())]),
        ..Default::default()
    };
    let go = |req: flows::StartRequest| {
        let w = &w;
        async move {
            flows::start(
                &w.pool,
                &w.vault,
                &w.settings,
                w.tenant,
                w.owner,
                "binding",
                &req,
            )
            .await
        }
    };
    // A shop name that would move the request (and the code) to another host is refused.
    for bad in [
        "evil.example/x",
        "acme.myshopify.com@evil",
        "Acme Outfitters",
        "",
    ] {
        let err = go(start(bad)).await.unwrap_err();
        assert_eq!(err.field(), Some("fields.shop"), "{bad:?}: {err:?}");
    }
    // Without an app registered for Shopify, connecting is not possible yet, and says so.
    let err = go(start("acme-outfitters")).await.unwrap_err();
    assert_eq!(err.field(), Some("provider"));
    assert!(
        err.to_string().contains("not set up for connecting"),
        "{err}"
    );

    apps::set_platform_app(
        &w.pool,
        &w.vault,
        "shopify",
        "shopify-client",
        &secrecy::SecretString::from("shopify-secret"),
    )
    .await
    .unwrap();
    let url = go(start("acme-outfitters")).await.unwrap();
    let url = url::Url::parse(&url).unwrap();
    assert_eq!(url.host_str(), Some("acme-outfitters.myshopify.com"));
    assert_eq!(url.path(), "/admin/oauth/authorize");
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "shopify-client");
    assert_eq!(query["redirect_uri"], "http://patchbay.test/oauth/callback");
    // Shopify rejects PKCE, and its spec says so; every other OAuth spec keeps it on.
    assert!(!query.contains_key("code_challenge"));
    assert!(query["state"].len() >= 16);
    assert!(!url.as_str().contains("shopify-secret"));
    // The flow keeps the shop for the callback, and only the state's hash.
    let (vars, state_hash): (serde_json::Value, Vec<u8>) =
        sqlx::query_as("select vars, state_hash from oauth_flows")
            .fetch_one(&admin_pool)
            .await
            .unwrap();
    assert_eq!(vars["shop"], "acme-outfitters");
    assert!(!state_hash
        .windows(query["state"].len())
        .any(|w| w == query["state"].as_bytes()));
}
