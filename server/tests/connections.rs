//! Connections over real HTTP, against the real Postgres and the bundled sandbox OAuth server: the
//! OAuth dance and every way its callback can be abused, credentials sealed and bound to their
//! row, key rotation, single-flight token refresh, reconnecting, disconnecting, tenant isolation,
//! and logs that never carry a secret.

mod common;

use app::domain::connections::{self, apps, refresh, refresh::UseError};
use app::domain::vault::{generate_key, Aad, Keyring};
use app::error::AppError;
use common::*;
use connectors::engine::{Connection, Credentials};
use connectors::error::ErrorClass;
use connectors::sandbox::SandboxHandle;
use reqwest::{Client, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

/// A signed-in owner of a new customer organization (which is their active one).
struct Customer {
    client: Client,
    email: String,
    user: Uuid,
    org: Uuid,
}

async fn customer(app: &TestApp, name: &str, email: &str, org: &str) -> Customer {
    let client = app.user(name, email).await;
    let org = app
        .create_org(&client, org, "customer")
        .await
        .parse()
        .unwrap();
    let user = app.session(&client).await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    Customer {
        client,
        email: email.to_owned(),
        user,
        org,
    }
}

async fn alice(app: &TestApp) -> Customer {
    customer(app, "Alice Adams", "alice@example.com", "Acme Outfitters").await
}

async fn bob(app: &TestApp) -> Customer {
    customer(app, "Bob Brown", "bob@example.com", "Bobcat Supplies").await
}

async fn sandbox_app(db: PgPool) -> (TestApp, SandboxHandle) {
    spawn_app_with_sandbox(db, SandboxOptions::default()).await
}

// Checks through the owner pool, which sees every tenant's rows.

async fn scalar_i64(admin: &PgPool, sql: &str, tenant: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_one(admin)
        .await
        .unwrap()
}

async fn connections_of(app: &TestApp, tenant: Uuid) -> i64 {
    scalar_i64(
        &app.admin_pool,
        "select count(*) from connections where tenant_id = $1",
        tenant,
    )
    .await
}

async fn all_connections(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from connections")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap()
}

async fn flows_of(app: &TestApp, tenant: Uuid) -> i64 {
    scalar_i64(
        &app.admin_pool,
        "select count(*) from oauth_flows where tenant_id = $1",
        tenant,
    )
    .await
}

async fn audit_of(app: &TestApp, tenant: Uuid) -> i64 {
    scalar_i64(
        &app.admin_pool,
        "select count(*) from audit_log where tenant_id = $1",
        tenant,
    )
    .await
}

async fn audited(app: &TestApp, tenant: Uuid, action: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_log where tenant_id = $1 and action = $2")
        .bind(tenant)
        .bind(action)
        .fetch_one(&app.admin_pool)
        .await
        .unwrap()
}

/// (status, status_reason, credentials_enc, account_label) of a connection.
async fn row(app: &TestApp, id: Uuid) -> (String, Option<String>, Option<Vec<u8>>, Option<String>) {
    sqlx::query_as(
        "select status, status_reason, credentials_enc, account_label from connections where id = $1",
    )
    .bind(id)
    .fetch_one(&app.admin_pool)
    .await
    .unwrap()
}

async fn sealed_of(app: &TestApp, id: Uuid) -> Vec<u8> {
    row(app, id).await.2.expect("credentials stored")
}

/// The stored secrets of a connection, opened with `vault`: (access token, refresh token).
async fn stored_tokens(app: &TestApp, vault: &Keyring, tenant: Uuid, id: Uuid) -> (String, String) {
    let sealed = sealed_of(app, id).await;
    let opened = vault
        .open(&sealed, &Aad::connection(tenant, id))
        .expect("the stored credentials open");
    let json: Value = serde_json::from_slice(opened.expose_secret()).unwrap();
    (
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Makes a connection's access token count as expired.
async fn expire(app: &TestApp, id: Uuid) {
    sqlx::query("update connections set expires_at = now() - interval '1 minute' where id = $1")
        .bind(id)
        .execute(&app.admin_pool)
        .await
        .unwrap();
}

fn access_token(conn: &Connection) -> String {
    match &conn.credentials {
        Credentials::OAuth2 { access_token } => access_token.expose_secret().to_owned(),
        _ => panic!("not OAuth credentials"),
    }
}

/// The access tokens `jobs` concurrent `refresh::credentials` calls get, each in its own task.
async fn concurrent_access_tokens(
    app: &TestApp,
    tenant: Uuid,
    id: Uuid,
    jobs: usize,
) -> Vec<String> {
    let tasks: Vec<_> = (0..jobs)
        .map(|_| {
            let (pool, vault, connect) = (app.pool.clone(), app.vault.clone(), app.connect.clone());
            tokio::spawn(async move {
                refresh::credentials(&pool, &vault, &connect, tenant, id)
                    .await
                    .map(|c| access_token(&c))
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap().expect("credentials"));
    }
    seen
}

/// `refresh::credentials` with the server's own vault and settings.
async fn credentials(app: &TestApp, tenant: Uuid, id: Uuid) -> Result<Connection, UseError> {
    refresh::credentials(&app.pool, &app.vault, &app.connect, tenant, id).await
}

fn expect_internal(result: Result<Connection, UseError>, what: &str) {
    match result {
        Err(UseError::Internal) => {}
        Err(other) => panic!("{what}: expected Internal, got {other:?}"),
        Ok(_) => panic!("{what}: the credentials opened"),
    }
}

/// `GET {sandbox}/api/me` with a bearer token: the status.
async fn sandbox_me(sandbox: &SandboxHandle, token: &str) -> StatusCode {
    client()
        .get(format!("{}/api/me", sandbox.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// A callback URL with its `state` (or `code`) replaced.
fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        out.append_pair(&k, if k == name { value } else { &v });
    }
    format!("{base}?{}", out.finish())
}

fn random_state() -> String {
    Uuid::new_v4().simple().to_string() + &Uuid::new_v4().simple().to_string()
}

#[sqlx::test(migrations = "../migrations")]
async fn connecting_stores_a_sealed_active_connection_and_consumes_the_flow(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;

    let authorize = app.begin_connect(&alice.client, &[]).await;
    assert!(authorize.starts_with(&format!("{}/oauth/authorize?", sandbox.base_url)));
    assert_eq!(
        query_param(&authorize, "code_challenge_method").unwrap(),
        "S256"
    );
    assert_eq!(flows_of(&app, alice.org).await, 1);

    let back = app.consent(&authorize, "approve").await;
    let res = app.callback(&alice.client, &back).await;
    let id = connected_id(&res);
    assert_eq!(location(&res), format!("/connections?connected={id}"));
    assert_eq!(res.headers()["cache-control"], "no-store");

    let (tenant, status, label, auth_kind, created_by): (Uuid, String, Option<String>, String, Uuid) =
        sqlx::query_as(
            "select tenant_id, status, account_label, auth_kind, created_by from connections where id = $1",
        )
        .bind(id)
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(tenant, alice.org);
    assert_eq!(status, "active");
    assert_eq!(label.as_deref(), Some("Sandbox Demo Co"));
    assert_eq!(auth_kind, "oauth2");
    assert_eq!(created_by, alice.user);

    // The tokens are stored, usable, and only as ciphertext.
    let sealed = sealed_of(&app, id).await;
    let (access, refresh_token) = stored_tokens(&app, &app.vault, alice.org, id).await;
    assert!(!access.is_empty() && !refresh_token.is_empty());
    for secret in [&access, &refresh_token] {
        assert!(
            !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a token is stored in plaintext"
        );
    }
    assert_eq!(sealed[0], app.vault.current_id());
    assert_eq!(sandbox_me(&sandbox, &access).await, StatusCode::OK);

    // The flow is gone, the connection audited and listed.
    assert_eq!(flows_of(&app, alice.org).await, 0);
    assert_eq!(audited(&app, alice.org, "connection.created").await, 1);
    let (status, page) = app.call_json(&alice.client, "connections", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = &page["connections"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{page}");
    assert_eq!(listed[0]["id"], id.to_string());
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(listed[0]["account_label"], "Sandbox Demo Co");
    // No secret travels to the browser.
    assert!(!page.to_string().contains(&access));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_forged_state_is_refused_and_stores_nothing(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let authorize = app.begin_connect(&alice.client, &[]).await;
    let back = app.consent(&authorize, "approve").await;
    let tokens_before = sandbox.sandbox.token_requests();

    // A real code with a made-up state, and a code with no state at all.
    let forged = with_query_param(&back, "state", &random_state());
    let res = app.callback(&alice.client, &forged).await;
    assert_eq!(failure_reason(&res), "bad_state");
    let code = query_param(&back, "code").unwrap();
    let stateless = format!(
        "{}/oauth/callback?{}",
        app.public_url,
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .finish()
    );
    let res = app.callback(&alice.client, &stateless).await;
    assert_eq!(failure_reason(&res), "bad_state");

    // The code was never exchanged, nothing stored, and the real flow is untouched.
    assert_eq!(sandbox.sandbox.token_requests(), tokens_before);
    assert_eq!(connections_of(&app, alice.org).await, 0);
    assert_eq!(flows_of(&app, alice.org).await, 1);

    // The very same code with its real state connects: the state alone made the difference.
    let res = app.callback(&alice.client, &back).await;
    connected_id(&res);
    assert_eq!(connections_of(&app, alice.org).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_replayed_callback_is_refused(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let (id, back) = app.connect_sandbox(&alice.client, &[]).await;
    let sealed = sealed_of(&app, id).await;
    let audit = audit_of(&app, alice.org).await;
    let tokens = sandbox.sandbox.token_requests();

    let res = app.callback(&alice.client, &back).await;
    assert_eq!(failure_reason(&res), "bad_state");

    assert_eq!(connections_of(&app, alice.org).await, 1);
    assert_eq!(audit_of(&app, alice.org).await, audit);
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
    assert_eq!(sealed_of(&app, id).await, sealed);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_expired_flow_is_refused(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let authorize = app.begin_connect(&alice.client, &[]).await;
    let back = app.consent(&authorize, "approve").await;
    sqlx::query("update oauth_flows set expires_at = now() - interval '1 second'")
        .execute(&app.admin_pool)
        .await
        .unwrap();
    let tokens = sandbox.sandbox.token_requests();

    let res = app.callback(&alice.client, &back).await;
    assert_eq!(failure_reason(&res), "bad_state");
    assert_eq!(connections_of(&app, alice.org).await, 0);
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
    // Used up all the same.
    assert_eq!(flows_of(&app, alice.org).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_callback_in_another_session_of_the_same_user_is_refused(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let authorize = app.begin_connect(&alice.client, &[]).await;
    let back = app.consent(&authorize, "approve").await;

    // The same user, signed in a second time, with a flow (so a binding) of that session's own.
    let second = client();
    app.log_in(&second, &alice.email).await;
    assert_eq!(
        app.session(&second).await["user"]["id"],
        alice.user.to_string()
    );
    app.begin_connect(&second, &[]).await;
    let tokens = sandbox.sandbox.token_requests();

    let res = app.callback(&second, &back).await;
    assert_eq!(failure_reason(&res), "bad_state");
    assert_eq!(connections_of(&app, alice.org).await, 0);
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_code_from_another_flow_is_refused(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let (first, back_a) = app.connect_sandbox(&alice.client, &[]).await;

    let authorize_b = app.begin_connect(&alice.client, &[]).await;
    let back_b = app.consent(&authorize_b, "approve").await;
    let code_a = query_param(&back_a, "code").unwrap();
    let tokens = sandbox.sandbox.token_requests();

    let res = app
        .callback(&alice.client, &with_query_param(&back_b, "code", &code_a))
        .await;
    assert_eq!(failure_reason(&res), "exchange_failed");
    let target = location(&res);
    assert_eq!(
        query_param(&target, "provider").as_deref(),
        Some("sandbox-crm")
    );
    assert_eq!(
        query_param(&target, "back").as_deref(),
        Some("/connections")
    );
    // The provider was asked, and refused.
    assert_eq!(sandbox.sandbox.token_requests(), tokens + 1);

    assert_eq!(connections_of(&app, alice.org).await, 1);
    let only: Uuid = sqlx::query_scalar("select id from connections")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(only, first);
    assert_eq!(flows_of(&app, alice.org).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn return_to_must_stay_on_this_site(db: PgPool) {
    let (app, _sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;

    for bad in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "",
    ] {
        let res = app
            .start_connect(&alice.client, &[("return_to", bad)])
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(body["field"], "return_to", "{bad:?}: {body}");
        assert_eq!(flows_of(&app, alice.org).await, 0, "{bad:?} started a flow");
        // Nothing waits at /connect/continue either.
        let (status, _) = app
            .call_json(&alice.client, "connections/continue", &[])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad:?}");
    }

    // A page of this site is accepted and is where the callback returns, query kept.
    let authorize = app
        .begin_connect(
            &alice.client,
            &[("return_to", "/marketplace/sync/connect?step=2")],
        )
        .await;
    let back = app.consent(&authorize, "approve").await;
    let res = app.callback(&alice.client, &back).await;
    let id = connected_id(&res);
    assert_eq!(
        location(&res),
        format!("/marketplace/sync/connect?step=2&connected={id}")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_callback_in_another_organization_is_refused(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let org_a = alice.org;
    let org_b: Uuid = app
        .create_org(&alice.client, "Second Shop", "customer")
        .await
        .parse()
        .unwrap();
    let switch = |org: Uuid| {
        let app = &app;
        let client = &alice.client;
        async move {
            let (status, body) = app
                .call_json(client, "orgs/switch", &[("org_id", &org.to_string())])
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };

    switch(org_a).await;
    let authorize = app.begin_connect(&alice.client, &[]).await;
    assert_eq!(flows_of(&app, org_a).await, 1);
    let back = app.consent(&authorize, "approve").await;

    switch(org_b).await;
    let tokens = sandbox.sandbox.token_requests();
    let res = app.callback(&alice.client, &back).await;
    assert_eq!(failure_reason(&res), "bad_state");
    assert_eq!(connections_of(&app, org_a).await, 0);
    assert_eq!(connections_of(&app, org_b).await, 0);
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
    // Organization B could neither see nor consume A's flow.
    assert_eq!(flows_of(&app, org_a).await, 1);

    // Back in A, the same callback connects A: only the organization was wrong.
    switch(org_a).await;
    let res = app.callback(&alice.client, &back).await;
    connected_id(&res);
    assert_eq!(connections_of(&app, org_a).await, 1);
    assert_eq!(connections_of(&app, org_b).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_denial_at_the_provider_is_reported_as_such(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let authorize = app.begin_connect(&alice.client, &[]).await;
    let back = app.consent(&authorize, "deny").await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let tokens = sandbox.sandbox.token_requests();

    let res = app.callback(&alice.client, &back).await;
    assert_eq!(failure_reason(&res), "denied");
    assert_eq!(
        location(&res),
        "/connect/failed?reason=denied&provider=sandbox-crm&back=%2Fconnections"
    );
    assert_eq!(connections_of(&app, alice.org).await, 0);
    assert_eq!(flows_of(&app, alice.org).await, 0);
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
}

#[sqlx::test(migrations = "../migrations")]
async fn credentials_are_bound_to_their_row_and_tamper_evident(db: PgPool) {
    let (app, _sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let bob = bob(&app).await;
    let (a1, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (a2, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (b1, _) = app.connect_sandbox(&bob.client, &[]).await;
    for (tenant, id) in [(alice.org, a1), (alice.org, a2), (bob.org, b1)] {
        credentials(&app, tenant, id)
            .await
            .expect("opens before tampering");
    }

    let copy = |from: Uuid, to: Uuid| {
        let admin = app.admin_pool.clone();
        async move {
            sqlx::query(
                "update connections set credentials_enc = \
                 (select credentials_enc from connections where id = $1) where id = $2",
            )
            .bind(from)
            .bind(to)
            .execute(&admin)
            .await
            .unwrap();
        }
    };
    // Onto another connection of the same tenant, and onto another tenant's.
    copy(a1, a2).await;
    expect_internal(
        credentials(&app, alice.org, a2).await,
        "moved within a tenant",
    );
    copy(a1, b1).await;
    expect_internal(credentials(&app, bob.org, b1).await, "moved across tenants");
    // The original still opens where it belongs.
    credentials(&app, alice.org, a1)
        .await
        .expect("a1 still opens");

    // One flipped bit anywhere (key id aside) is detected: in the nonce, the body, the tag.
    let sealed = sealed_of(&app, a1).await;
    for at in [5, 20, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x01;
        sqlx::query("update connections set credentials_enc = $2 where id = $1")
            .bind(a1)
            .bind(&tampered)
            .execute(&app.admin_pool)
            .await
            .unwrap();
        expect_internal(
            credentials(&app, alice.org, a1).await,
            &format!("byte {at} flipped"),
        );
    }
    // Restored, it opens again: the failures were the tampering.
    sqlx::query("update connections set credentials_enc = $2 where id = $1")
        .bind(a1)
        .bind(&sealed)
        .execute(&app.admin_pool)
        .await
        .unwrap();
    credentials(&app, alice.org, a1).await.expect("restored");
}

/// Keys as `<id>:<base64>`, and keyrings of them.
struct Keys {
    one: SecretString,
    two: SecretString,
}

impl Keys {
    fn new() -> Self {
        Keys {
            one: generate_key(1),
            two: generate_key(2),
        }
    }
    fn old_only(&self) -> Keyring {
        Keyring::new(&self.one, &[]).unwrap()
    }
    fn rotating(&self) -> Keyring {
        Keyring::new(&self.two, std::slice::from_ref(&self.one)).unwrap()
    }
    fn new_only(&self) -> Keyring {
        Keyring::new(&self.two, &[]).unwrap()
    }
}

async fn key_ids(app: &TestApp, connection: Uuid) -> (i32, i32) {
    sqlx::query_as(
        "select get_byte(c.credentials_enc, 0), \
         (select get_byte(client_secret_enc, 0) from provider_apps where vendor_org_id is null) \
         from connections c where id = $1",
    )
    .bind(connection)
    .fetch_one(&app.admin_pool)
    .await
    .unwrap()
}

async fn platform_app_id(app: &TestApp) -> Uuid {
    sqlx::query_scalar("select id from provider_apps where vendor_org_id is null")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn rotating_keys_reseals_every_secret_under_the_new_key(db: PgPool) {
    let keys = Keys::new();
    let (app, _sandbox) = spawn_app_with_sandbox(
        db,
        SandboxOptions {
            vault: Some(Arc::new(keys.old_only())),
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    // A flow left waiting, its verifier sealed under key 1.
    app.begin_connect(&alice.client, &[]).await;
    let before = access_token(&credentials(&app, alice.org, id).await.unwrap());
    assert_eq!(key_ids(&app, id).await, (1, 1));
    // An alert rule's signing secret, sealed under key 1 too.
    let rule = Uuid::new_v4();
    let rule_secret = SecretString::from("pbsec_rotation-test");
    sqlx::query(
        "insert into alert_rules (id, name, kind, secret_enc) values ($1, 'r', 'needs_reauth', $2)",
    )
    .bind(rule)
    .bind(
        keys.old_only()
            .seal_str(&rule_secret, &Aad::alert_rule(rule)),
    )
    .execute(&app.admin_pool)
    .await
    .unwrap();

    // Key 2 alone cannot open what key 1 sealed…
    let new_only = keys.new_only();
    expect_internal(
        refresh::credentials(&app.pool, &new_only, &app.connect, alice.org, id).await,
        "before rotation",
    );

    let count = connections::rotate_keys(&app.pool, &keys.rotating())
        .await
        .unwrap();
    assert_eq!(
        count, 3,
        "the connection's credentials, the app's secret and the alert rule's"
    );
    let sealed: Vec<u8> = sqlx::query_scalar("select secret_enc from alert_rules where id = $1")
        .bind(rule)
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(
        new_only
            .open_str(&sealed, &Aad::alert_rule(rule))
            .unwrap()
            .expose_secret(),
        "pbsec_rotation-test"
    );
    assert_eq!(key_ids(&app, id).await, (2, 2));
    assert_eq!(
        flows_of(&app, alice.org).await,
        0,
        "flows under the old key go"
    );

    // …and can once rotated: the same secrets, under the new key.
    let after = refresh::credentials(&app.pool, &new_only, &app.connect, alice.org, id)
        .await
        .unwrap();
    assert_eq!(access_token(&after), before);
    let resolved = apps::by_id(
        &app.pool,
        &new_only,
        &app.connect,
        platform_app_id(&app).await,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        resolved.app.client_secret.expose_secret(),
        SANDBOX_CLIENT_SECRET
    );
    // The old key alone no longer opens anything.
    expect_internal(
        refresh::credentials(&app.pool, &keys.old_only(), &app.connect, alice.org, id).await,
        "old key after rotation",
    );

    // Nothing left to do a second time.
    assert_eq!(
        connections::rotate_keys(&app.pool, &keys.rotating())
            .await
            .unwrap(),
        0
    );
}

/// A URL for the test's own database, built from the pool's options.
fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap()
    )
}

fn patchbay_keys_rotate(
    db: &PgPool,
    current: &SecretString,
    old: Option<&SecretString>,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"));
    cmd.args(["keys", "rotate"])
        .env("DATABASE_URL", database_url(db))
        .env("PATCHBAY_SECRET_KEY", current.expose_secret())
        .env_remove("PATCHBAY_OLD_SECRET_KEYS")
        .env_remove("RUST_LOG");
    if let Some(old) = old {
        cmd.env("PATCHBAY_OLD_SECRET_KEYS", old.expose_secret());
    }
    cmd.output().expect("run patchbay")
}

#[sqlx::test(migrations = "../migrations")]
async fn the_keys_rotate_command_reseals_stored_secrets(db: PgPool) {
    let keys = Keys::new();
    let (app, _sandbox) = spawn_app_with_sandbox(
        db.clone(),
        SandboxOptions {
            vault: Some(Arc::new(keys.old_only())),
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    let before = access_token(&credentials(&app, alice.org, id).await.unwrap());

    // Without the old key the command cannot open anything: it fails and changes nothing.
    let out = patchbay_keys_rotate(&db, &keys.two, None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert_eq!(key_ids(&app, id).await, (1, 1));
    for key in [&keys.one, &keys.two] {
        let b64 = key.expose_secret().split_once(':').unwrap().1;
        assert!(
            !stdout.contains(b64) && !stderr.contains(b64),
            "a key was printed"
        );
    }

    let out = patchbay_keys_rotate(&db, &keys.two, Some(&keys.one));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Re-encrypted 2 stored secrets"), "{stdout}");
    assert_eq!(key_ids(&app, id).await, (2, 2));
    let after = refresh::credentials(&app.pool, &keys.new_only(), &app.connect, alice.org, id)
        .await
        .unwrap();
    assert_eq!(access_token(&after), before);

    let out = patchbay_keys_rotate(&db, &keys.two, Some(&keys.one));
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Re-encrypted 0 stored secrets"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_users_of_an_expired_token_refresh_it_once(db: PgPool) {
    let (app, sandbox) = spawn_app_with_sandbox(
        db,
        // Fewer pooled connections than jobs: the refresh holding the row lock must never need
        // a second one, or it would wait for connections its own waiters hold.
        SandboxOptions {
            pool_size: 6,
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (access0, refresh0) = stored_tokens(&app, &app.vault, alice.org, id).await;
    expire(&app, id).await;
    let tokens = sandbox.sandbox.token_requests();

    let seen = concurrent_access_tokens(&app, alice.org, id, 20).await;

    assert_eq!(
        sandbox.sandbox.token_requests(),
        tokens + 1,
        "exactly one refresh at the provider"
    );
    assert!(
        seen.iter().all(|t| *t == seen[0]),
        "everyone got the same token"
    );
    assert_ne!(seen[0], access0);
    let (access1, refresh1) = stored_tokens(&app, &app.vault, alice.org, id).await;
    assert_eq!(access1, seen[0]);
    assert_ne!(refresh1, refresh0, "the rotated refresh token is stored");
    assert_eq!(sandbox_me(&sandbox, &access1).await, StatusCode::OK);

    // The stored (rotated) refresh token works for the next refresh.
    expire(&app, id).await;
    let access2 = access_token(&credentials(&app, alice.org, id).await.unwrap());
    assert_eq!(sandbox.sandbox.token_requests(), tokens + 2);
    assert_ne!(access2, access1);
    assert_eq!(row(&app, id).await.0, "active");

    // Once the provider revokes the grant, the connection needs reconnecting, with a reason.
    sandbox.sandbox.revoke_all_tokens();
    expire(&app, id).await;
    match credentials(&app, alice.org, id).await {
        Err(UseError::Provider(err)) => assert_eq!(err.class, ErrorClass::Auth, "{err}"),
        Err(other) => panic!("expected an auth error, got {other:?}"),
        Ok(_) => panic!("a revoked grant still refreshed"),
    }
    let (status, reason, sealed, _) = row(&app, id).await;
    assert_eq!(status, "needs_reauth");
    assert!(reason.is_some_and(|r| !r.is_empty()));
    assert!(sealed.is_some());
    // And is refused from then on without asking the provider again.
    let tokens = sandbox.sandbox.token_requests();
    assert!(matches!(
        credentials(&app, alice.org, id).await,
        Err(UseError::Provider(ref e)) if e.class == ErrorClass::Auth
    ));
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
}

#[sqlx::test(migrations = "../migrations")]
async fn reconnecting_keeps_the_connection_id(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;

    // The provider drops the grant; a check finds out and asks for reconnecting.
    sandbox.sandbox.revoke_all_tokens();
    expire(&app, id).await;
    let res = app
        .call(
            &alice.client,
            "connections/check",
            &[("id", &id.to_string())],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let (status, reason, _, _) = row(&app, id).await;
    assert_eq!(status, "needs_reauth");
    assert!(reason.is_some());

    let (again, _) = app
        .connect_sandbox(&alice.client, &[("reconnect", &id.to_string())])
        .await;
    assert_eq!(again, id);
    let (status, reason, _, label) = row(&app, id).await;
    assert_eq!(status, "active");
    assert_eq!(reason, None);
    assert_eq!(label.as_deref(), Some("Sandbox Demo Co"));
    assert_eq!(connections_of(&app, alice.org).await, 1);
    assert_eq!(audited(&app, alice.org, "connection.reconnected").await, 1);
    assert_eq!(audited(&app, alice.org, "connection.created").await, 1);

    let conn = credentials(&app, alice.org, id)
        .await
        .expect("usable again");
    assert_eq!(
        sandbox_me(&sandbox, &access_token(&conn)).await,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn disconnecting_revokes_at_the_provider_and_forgets_the_credentials(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (access, refresh_token) = stored_tokens(&app, &app.vault, alice.org, id).await;
    assert_eq!(sandbox_me(&sandbox, &access).await, StatusCode::OK);

    let res = app
        .call(
            &alice.client,
            "connections/disconnect",
            &[("id", &id.to_string())],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(location(&res), "/connections?disconnected=revoked");

    let (status, _, sealed, _) = row(&app, id).await;
    assert_eq!(status, "revoked");
    assert_eq!(sealed, None);
    let expires: Option<time::OffsetDateTime> =
        sqlx::query_scalar("select expires_at from connections where id = $1")
            .bind(id)
            .fetch_one(&app.admin_pool)
            .await
            .unwrap();
    assert_eq!(expires, None);
    assert_eq!(audited(&app, alice.org, "connection.disconnected").await, 1);

    // The provider no longer honours either token.
    assert_eq!(
        sandbox_me(&sandbox, &access).await,
        StatusCode::UNAUTHORIZED
    );
    let res = client()
        .post(format!("{}/oauth/token", sandbox.base_url))
        .basic_auth(SANDBOX_CLIENT_ID, Some(SANDBOX_CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // And Patchbay will not use the connection.
    assert!(matches!(
        credentials(&app, alice.org, id).await,
        Err(UseError::Provider(ref e)) if e.class == ErrorClass::Auth
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn another_tenants_connections_are_out_of_reach(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let bob = bob(&app).await;
    let (mine, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (theirs, _) = app.connect_sandbox(&bob.client, &[]).await;
    let (bob_access, _) = stored_tokens(&app, &app.vault, bob.org, theirs).await;
    let snapshot = || async {
        sqlx::query_as::<_, (String, Option<Vec<u8>>, time::OffsetDateTime)>(
            "select status, credentials_enc, updated_at from connections where id = $1",
        )
        .bind(theirs)
        .fetch_one(&app.admin_pool)
        .await
        .unwrap()
    };
    let before = snapshot().await;
    let theirs_text = theirs.to_string();
    let tokens = sandbox.sandbox.token_requests();

    // Listing shows Alice's own connection and not Bob's.
    let (status, page) = app.call_json(&alice.client, "connections", &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.to_string().as_str()]);

    // Checking, reconnecting and disconnecting Bob's connection all find nothing.
    let (status, body) = app
        .call_json(&alice.client, "connections/check", &[("id", &theirs_text)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let res = app
        .start_connect(&alice.client, &[("reconnect", &theirs_text)])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "{}",
        res.text().await.unwrap()
    );
    let flows: i64 = sqlx::query_scalar("select count(*) from oauth_flows")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(flows, 0);
    let (status, body) = app
        .call_json(
            &alice.client,
            "connections/disconnect",
            &[("id", &theirs_text)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Bob's connection is as it was, and still works at the provider.
    assert_eq!(snapshot().await, before);
    assert_eq!(before.0, "active");
    assert_eq!(sandbox.sandbox.token_requests(), tokens);
    assert_eq!(sandbox_me(&sandbox, &bob_access).await, StatusCode::OK);
    assert_eq!(all_connections(&app).await, 2);

    // The domain agrees: in Alice's tenant there is no such connection, and she is no member of
    // Bob's.
    assert!(matches!(
        connections::get(&app.pool, alice.org, alice.user, theirs).await,
        Err(AppError::NotFound { .. })
    ));
    assert!(matches!(
        connections::get(&app.pool, bob.org, alice.user, theirs).await,
        Err(AppError::Forbidden { .. })
    ));
    assert!(matches!(
        credentials(&app, alice.org, theirs).await,
        Err(UseError::NotFound)
    ));
    // Bob, of course, still sees it.
    let view = connections::get(&app.pool, bob.org, bob.user, theirs)
        .await
        .unwrap();
    assert_eq!(view.id, theirs);
}

// Logs: every event at every level, from every task of this test, captured in memory.

#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn no_secret_reaches_the_logs(db: PgPool) {
    // `#[sqlx::test]` runs the test on a current-thread runtime, so the server's, the sandbox's
    // and the HTTP clients' tasks all run on this thread, under this thread's subscriber.
    assert_eq!(
        tokio::runtime::Handle::current().runtime_flavor(),
        tokio::runtime::RuntimeFlavor::CurrentThread
    );
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_target(true)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Records of the `log` crate (reqwest's, for one) are forwarded to the current subscriber,
    // which on this thread is the one above. This installs a global subscriber too, with no
    // layers, so other tests' events are dropped as before; it can fail only if something else
    // set one first, which the markers below would show.
    {
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry().try_init();
    }

    let key = generate_key(1);
    let vault = Arc::new(Keyring::new(&key, &[]).unwrap());
    let (app, sandbox) = spawn_app_with_sandbox(
        db,
        SandboxOptions {
            vault: Some(vault.clone()),
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;

    // Connect, noting the state, the PKCE verifier (sealed in the flow row) and the code.
    let authorize = app.begin_connect(&alice.client, &[]).await;
    let state = query_param(&authorize, "state").unwrap();
    let (flow_tenant, flow_id, verifier_enc): (Uuid, Uuid, Vec<u8>) =
        sqlx::query_as("select tenant_id, id, verifier_enc from oauth_flows")
            .fetch_one(&app.admin_pool)
            .await
            .unwrap();
    let verifier = vault
        .open_str(&verifier_enc, &Aad::oauth_flow(flow_tenant, flow_id))
        .unwrap();
    let back = app.consent(&authorize, "approve").await;
    let code = query_param(&back, "code").unwrap();
    let res = app.callback(&alice.client, &back).await;
    let id = connected_id(&res);
    let (access0, refresh0) = stored_tokens(&app, &vault, alice.org, id).await;

    // Check, then a forced refresh, then disconnect.
    let res = app
        .call(
            &alice.client,
            "connections/check",
            &[("id", &id.to_string())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    expire(&app, id).await;
    let tokens = sandbox.sandbox.token_requests();
    let access1 = access_token(&credentials(&app, alice.org, id).await.unwrap());
    assert_eq!(
        sandbox.sandbox.token_requests(),
        tokens + 1,
        "it did refresh"
    );
    let (_, refresh1) = stored_tokens(&app, &vault, alice.org, id).await;
    let res = app
        .call(
            &alice.client,
            "connections/disconnect",
            &[("id", &id.to_string())],
        )
        .await;
    assert_eq!(location(&res), "/connections?disconnected=revoked");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The capture saw the server, the domain and the sandbox at work.
    for marker in [
        "OAuth flow started",
        "connection saved",
        "access token refreshed",
        "/oauth/callback",
    ] {
        assert!(
            text.contains(marker),
            "{marker:?} missing from the logs:\n{text}"
        );
    }
    let key_b64 = key.expose_secret().split_once(':').unwrap().1.to_owned();
    for (what, secret) in [
        ("first access token", access0.as_str()),
        ("first refresh token", refresh0.as_str()),
        ("refreshed access token", access1.as_str()),
        ("rotated refresh token", refresh1.as_str()),
        ("client secret", SANDBOX_CLIENT_SECRET),
        ("vault key", key_b64.as_str()),
        ("authorization code", code.as_str()),
        ("PKCE verifier", verifier.expose_secret()),
        ("OAuth state", state.as_str()),
    ] {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        assert!(!text.contains(secret), "the {what} is in the logs:\n{text}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn tokens_shorter_lived_than_the_refresh_window_are_refreshed_once_too(db: PgPool) {
    // The sandbox's tokens live 60 s, less than the two minutes ahead of expiry in which tokens
    // are renewed: such a token is renewed when half its life is left, so that callers arriving
    // after a renewal do not find the fresh token due and renew it again.
    let (app, sandbox) = spawn_app_with_sandbox(
        db,
        SandboxOptions {
            access_token_ttl: std::time::Duration::from_secs(60),
            pool_size: 6,
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    let before = sandbox.sandbox.token_requests();
    // Just issued: used as it is.
    let issued = concurrent_access_tokens(&app, alice.org, id, 3).await;
    assert_eq!(sandbox.sandbox.token_requests(), before);
    expire(&app, id).await;
    let mut seen = concurrent_access_tokens(&app, alice.org, id, 10).await;
    assert_eq!(sandbox.sandbox.token_requests(), before + 1);
    seen.dedup();
    assert_eq!(seen.len(), 1, "every job got the one renewed token");
    assert_ne!(seen, issued[..1]);
    // Callers after the renewal use the renewed token too.
    let mut later = concurrent_access_tokens(&app, alice.org, id, 10).await;
    assert_eq!(sandbox.sandbox.token_requests(), before + 1);
    later.dedup();
    assert_eq!(later, seen);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_sweep_renews_what_expires_soon_and_backs_off_from_failures(db: PgPool) {
    let (app, sandbox) = sandbox_app(db).await;
    let alice = alice(&app).await;
    let (id, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (old_access, _) = stored_tokens(&app, &app.vault, alice.org, id).await;
    let ahead = std::time::Duration::from_secs(600);

    // Not due: nothing to do.
    let report = refresh::sweep(&app.pool, &app.vault, &app.connect, ahead, 100)
        .await
        .unwrap();
    assert_eq!((report.refreshed, report.failed), (0, 0));

    // Due: renewed, with a new access token.
    expire(&app, id).await;
    let report = refresh::sweep(&app.pool, &app.vault, &app.connect, ahead, 100)
        .await
        .unwrap();
    assert_eq!((report.refreshed, report.failed), (1, 0));
    let (new_access, _) = stored_tokens(&app, &app.vault, alice.org, id).await;
    assert_ne!(new_access, old_access);

    // The provider unreachable: the refresh fails, the connection stays active, and the next
    // sweeps leave it alone for a while instead of failing on it every minute.
    expire(&app, id).await;
    sandbox.shutdown().await;
    let report = refresh::sweep(&app.pool, &app.vault, &app.connect, ahead, 100)
        .await
        .unwrap();
    assert_eq!((report.refreshed, report.failed), (0, 1));
    let report = refresh::sweep(&app.pool, &app.vault, &app.connect, ahead, 100)
        .await
        .unwrap();
    assert_eq!((report.refreshed, report.failed), (0, 0));
    let (status, failed_at): (String, Option<String>) =
        sqlx::query_as("select status, refresh_failed_at::text from connections where id = $1")
            .bind(id)
            .fetch_one(&app.admin_pool)
            .await
            .unwrap();
    assert_eq!(status, "active");
    assert!(failed_at.is_some());
    // Ten minutes later it is tried again.
    sqlx::query("update connections set refresh_failed_at = now() - interval '11 minutes'")
        .execute(&app.admin_pool)
        .await
        .unwrap();
    let report = refresh::sweep(&app.pool, &app.vault, &app.connect, ahead, 100)
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn rotation_skips_a_value_that_does_not_open_and_names_it(db: PgPool) {
    let keys = Keys::new();
    let (app, _sandbox) = spawn_app_with_sandbox(
        db,
        SandboxOptions {
            vault: Some(Arc::new(keys.old_only())),
            ..SandboxOptions::default()
        },
    )
    .await;
    let alice = alice(&app).await;
    let (good, _) = app.connect_sandbox(&alice.client, &[]).await;
    let (bad, _) = app.connect_sandbox(&alice.client, &[]).await;
    // One ciphertext corrupted (a flipped bit in its tag).
    let mut sealed = sealed_of(&app, bad).await;
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    sqlx::query("update connections set credentials_enc = $2 where id = $1")
        .bind(bad)
        .bind(&sealed)
        .execute(&app.admin_pool)
        .await
        .unwrap();
    let err = connections::rotate_keys(&app.pool, &keys.rotating())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("connection {bad}")), "{text}");
    assert!(!text.contains(&good.to_string()), "{text}");
    // The good one (and the app's secret) were re-sealed all the same, under key 2.
    assert_eq!(key_ids(&app, good).await, (2, 2));
    let opened =
        refresh::credentials(&app.pool, &keys.new_only(), &app.connect, alice.org, good).await;
    assert!(
        opened.is_ok(),
        "key 2 alone opens the re-sealed credentials"
    );
}
