//! The HTTP edge: CSRF refusal, security headers, health check, pages and their status codes.

mod common;

use common::*;
use reqwest::{header, StatusCode};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn cross_site_posts_are_refused_and_change_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let form = [
        ("display_name", "Mallory"),
        ("email", "mallory@example.com"),
        ("password", PASSWORD),
    ];
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let res = client()
            .post(app.url("/api/signup"))
            .header(name, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(res.text().await.unwrap().contains("came from another site"));
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(users, 0);

    // A signed-in user's session does not help a cross-site request either.
    let alice = app.user("Alice", "alice@example.com").await;
    let res = alice
        .post(app.url("/api/orgs/create"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("name", "Evil Org"), ("kind", "customer")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let orgs: i64 = sqlx::query_scalar("select count(*) from organizations")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(orgs, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn same_origin_posts_pass(db: PgPool) {
    let app = spawn_app(db).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let form = [
        ("display_name", "Alice"),
        ("email", "alice@example.com"),
        ("password", PASSWORD),
    ];
    let res = client()
        .post(app.url("/api/signup"))
        .header(header::ORIGIN, app.base.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "origin matching the Host header ({host})"
    );
    let res = client()
        .post(app.url("/api/login"))
        .header(header::ORIGIN, "http://patchbay.test")
        .form(&[("email", "alice@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "origin matching the public URL"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_carry_security_headers_and_a_nonce_csp(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client().get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("x-request-id"));
    let csp = h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce")
        .to_owned();
    let body = res.text().await.unwrap();
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );

    // Every inline script carries it: count scripts with and without.
    let scripts = body.matches("<script").count();
    let with_nonce = body.matches(&format!("<script nonce=\"{nonce}\"")).count()
        + body
            .matches(&format!("<script type=\"module\" nonce=\"{nonce}\""))
            .count();
    assert_eq!(scripts, with_nonce, "{body}");

    // A second page gets a different nonce.
    let again = client().get(app.url("/login")).send().await.unwrap();
    let csp2 = again.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(csp, csp2);

    // Non-page responses get the policy too.
    let health = client().get(app.url("/healthz")).send().await.unwrap();
    assert!(health
        .headers()
        .contains_key(header::CONTENT_SECURITY_POLICY));
}

#[sqlx::test(migrations = "../migrations")]
async fn request_ids_are_kept_when_given(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client()
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
}

#[sqlx::test(migrations = "../migrations")]
async fn healthz_checks_the_database(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["database"],
        "ok"
    );

    app.pool.close().await;
    let res = client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_https_public_url_makes_cookies_secure(db: PgPool) {
    let app = spawn_app_with(
        db,
        "https://market.example.com",
        std::time::Duration::from_secs(3600),
    )
    .await;
    let res = app
        .call(
            &client(),
            "signup",
            &[
                ("display_name", "Alice"),
                ("email", "alice@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_pages_are_a_finished_404(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = res.text().await.unwrap();
    assert!(body.contains("We could not find that page"));
    assert!(
        body.contains("class=\"site-header\""),
        "the 404 page has the layout"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn navigation_follows_roles(db: PgPool) {
    let app = spawn_app(db).await;
    let nav = |html: String| {
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("nav.nav a").unwrap();
        doc.select(&sel)
            .map(|a| a.text().collect::<String>())
            .collect::<Vec<_>>()
    };
    let page = |c: reqwest::Client, path: &'static str| {
        let url = app.url(path);
        async move { c.get(url).send().await.unwrap() }
    };

    assert_eq!(
        nav(page(client(), "/").await.text().await.unwrap()),
        ["Marketplace"]
    );
    let alice = app.user("Alice", "alice@example.com").await;
    let customer = app.create_org(&alice, "Acme", "customer").await;
    assert_eq!(
        nav(page(alice.clone(), "/").await.text().await.unwrap()),
        ["Marketplace", "My installs", "Connections"]
    );
    app.create_org(&alice, "Alice Apps", "vendor").await;
    assert_eq!(
        nav(page(alice.clone(), "/").await.text().await.unwrap()),
        ["Marketplace", "Connections", "Vendor"]
    );
    app.call_json(&alice, "orgs/switch", &[("org_id", &customer)])
        .await;
    assert_eq!(
        nav(page(alice.clone(), "/").await.text().await.unwrap()),
        ["Marketplace", "My installs", "Connections"]
    );

    // The admin console is for platform admins only.
    let res = page(alice.clone(), "/admin").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    sqlx::query("update users set is_platform_admin = true")
        .execute(&app.admin_pool)
        .await
        .unwrap();
    let res = page(alice.clone(), "/admin").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        nav(res.text().await.unwrap()),
        ["Marketplace", "My installs", "Connections", "Admin"]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn responses_are_compressed_when_the_client_accepts_gzip(db: PgPool) {
    let app = spawn_app(db).await;
    let res = client()
        .get(app.url("/login"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
}
