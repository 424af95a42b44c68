//! The public catalog against known data: search ranking with prefix matching, category filters,
//! pagination, and the listing page; and logos (upload checks, serving).

mod common;

use common::market::full_form;
use common::{spawn_app, TestApp};
use reqwest::{header, Client, StatusCode};
use sqlx::PgPool;

/// Publishes `[slug, name, tagline, description, category]`.
async fn publish(app: &TestApp, vendor: &Client, admin: &Client, listing: [&str; 5]) {
    let [slug, name, tagline, description, category] = listing;
    app.publish(
        vendor,
        admin,
        slug,
        &full_form(name, tagline, description, category),
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn search_ranks_name_over_tagline_over_description_and_matches_prefixes(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    publish(
        &app,
        &vendor,
        &admin,
        [
            "c",
            "Ledger export",
            "Daily totals",
            "Sends every invoice to your ledger.",
            "payments",
        ],
    )
    .await;
    publish(
        &app,
        &vendor,
        &admin,
        [
            "a",
            "Invoice sync",
            "Bills, fast",
            "Nothing more to say.",
            "payments",
        ],
    )
    .await;
    publish(
        &app,
        &vendor,
        &admin,
        [
            "b",
            "Billing bridge",
            "Copies invoices to your CRM",
            "A bridge.",
            "crm",
        ],
    )
    .await;
    publish(
        &app,
        &vendor,
        &admin,
        [
            "d",
            "Contacts mirror",
            "People, everywhere",
            "Mirrors contacts.",
            "crm",
        ],
    )
    .await;

    assert_eq!(
        app.catalog_names("invoice", "").await,
        ["Invoice sync", "Billing bridge", "Ledger export"]
    );
    // The start of a word is enough, and case does not matter.
    assert_eq!(
        app.catalog_names("INV", "").await,
        ["Invoice sync", "Billing bridge", "Ledger export"]
    );
    // A prefix that is an English stop word still finds its words.
    assert_eq!(app.catalog_names("in", "").await[0], "Invoice sync");
    // Every word must match.
    assert_eq!(
        app.catalog_names("invoice crm", "").await,
        ["Billing bridge"]
    );
    assert!(app.catalog_names("zzz", "").await.is_empty());
    // Operators are text, not syntax.
    assert!(
        app.catalog_names("!&|:*()'", "").await.len() == 4,
        "punctuation alone searches nothing"
    );

    // Categories filter, alone and with search.
    assert_eq!(
        app.catalog_names("", "crm").await,
        ["Billing bridge", "Contacts mirror"]
    );
    assert_eq!(
        app.catalog_names("", "payments").await,
        ["Invoice sync", "Ledger export"]
    );
    assert_eq!(
        app.catalog_names("invoice", "crm").await,
        ["Billing bridge"]
    );
    assert!(app.catalog_names("", "support").await.is_empty());
    let (status, body) = app
        .call_json(
            &common::client(),
            "marketplace/catalog",
            &[("q", ""), ("category", "nope"), ("page", "1")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Without search: by name.
    assert_eq!(
        app.catalog_names("", "").await,
        [
            "Billing bridge",
            "Contacts mirror",
            "Invoice sync",
            "Ledger export"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_catalog_pages_and_features(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, org) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    // Published listings straight through the domain, to keep the test quick.
    let vendor_id: uuid::Uuid = app.session(&vendor).await["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let org: uuid::Uuid = org.parse().unwrap();
    let admin_info: app::model::UserInfo =
        serde_json::from_value(app.session(&admin).await["user"].clone()).unwrap();
    let form = app::model::listing::ListingForm {
        tagline: "t".into(),
        description: "d".into(),
        categories: vec!["crm".into()],
        source_provider: "sandbox-crm".into(),
        source_streams: vec!["contacts".into()],
        destination_provider: "patchbay".into(),
        destination_stream: "contacts".into(),
        mapping: vec![app::model::listing::MappingInput {
            to: "email".into(),
            from: "email".into(),
        }],
        triggers: vec!["manual".into()],
        ..Default::default()
    };
    use app::domain::listings;
    for n in 0..30 {
        let name = format!("Listing {n:02}");
        let id = listings::create(&app.pool, vendor_id, org, &name, &format!("listing-{n:02}"))
            .await
            .unwrap();
        let form = app::model::listing::ListingForm {
            name: name.clone(),
            ..form.clone()
        };
        listings::save(&app.pool, vendor_id, org, id, &form)
            .await
            .unwrap();
        listings::submit(&app.pool, vendor_id, org, id)
            .await
            .unwrap();
    }
    for item in listings::review::queue(&app.pool, &admin_info)
        .await
        .unwrap()
    {
        listings::review::approve(&app.pool, &admin_info, item.version_id, "")
            .await
            .unwrap();
    }

    let first = app.catalog("", "", "1").await;
    assert_eq!(
        (first["total"].as_i64(), first["pages"].as_u64()),
        (Some(30), Some(2))
    );
    assert_eq!(first["cards"].as_array().unwrap().len(), 24);
    assert_eq!(first["featured"], serde_json::json!([]));
    let second = app.catalog("", "", "2").await;
    let names: Vec<&str> = second["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Listing 24",
            "Listing 25",
            "Listing 26",
            "Listing 27",
            "Listing 28",
            "Listing 29"
        ]
    );
    assert_eq!(
        app.catalog("", "", "9").await["cards"],
        serde_json::json!([])
    );

    // Featuring is for admins, and shows on the unfiltered first page.
    let (status, _) = app
        .call_json(
            &vendor,
            "admin/featured",
            &[("slug", "listing-07"), ("featured", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for slug in ["listing-07", "listing-03"] {
        let (status, body) = app
            .call_json(
                &admin,
                "admin/featured",
                &[("slug", slug), ("featured", "true")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let first = app.catalog("", "", "1").await;
    let featured: Vec<&str> = first["featured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        featured,
        ["Listing 07", "Listing 03"],
        "in the order they were featured"
    );
    assert_eq!(
        app.catalog("", "", "2").await["featured"],
        serde_json::json!([])
    );
    app.call_json(
        &admin,
        "admin/featured",
        &[("slug", "listing-07"), ("featured", "false")],
    )
    .await;
    assert_eq!(
        app.catalog("", "", "1").await["featured"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The pages themselves render without JavaScript: filters and pages are links.
    let html = reqwest::get(app.url("/marketplace?category=crm&page=2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Listing 29"), "page 2 is server-rendered");
    assert!(
        html.contains("href=\"/marketplace?category=crm\""),
        "the previous page keeps the filter"
    );
    assert!(html.contains("aria-current=\"page\""));
    let res = reqwest::get(app.url("/marketplace/no-such-listing"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // "Connect" answers for catalog listings only.
    let res = reqwest::get(app.url("/marketplace/no-such-listing/connect"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = reqwest::get(app.url("/marketplace/listing-03/connect"))
        .await
        .unwrap();
    // A visitor is asked to log in: connections belong to an organization.
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let html = res.text().await.unwrap();
    assert!(html.contains("Log in to connect your accounts"));
    assert!(html.contains("/login?next=/marketplace/listing-03/connect"));
}

fn multipart(bytes: Vec<u8>, file_name: &str, mime: &str) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(file_name.to_owned())
        .mime_str(mime)
        .unwrap();
    reqwest::multipart::Form::new().part("logo", part)
}

#[sqlx::test(migrations = "../migrations")]
async fn logos_are_checked_by_content_and_served_for_good(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let (rival, _) = app.vendor("Rita", "rita@rival.test", "Rival").await;
    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-sync")
        .await;
    let upload = |client: &Client, form| {
        client
            .post(app.url(&format!("/vendor/listings/{id}/logo")))
            .header(header::ORIGIN, "http://patchbay.test")
            .multipart(form)
            .send()
    };
    let location =
        |res: &reqwest::Response| res.headers()[header::LOCATION].to_str().unwrap().to_owned();

    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let mut big = app::domain::logos::generate_png("Big", 1);
    big.resize(600 * 1024, 0);
    for (bytes, name, mime, code) in [
        (svg, "logo.svg", "image/svg+xml", "svg"),
        (
            b"plain text, not a picture".to_vec(),
            "logo.png",
            "image/png",
            "not_image",
        ),
        (big, "logo.png", "image/png", "too_large"),
        (Vec::new(), "logo.png", "image/png", "missing"),
    ] {
        let res = upload(&vendor, multipart(bytes, name, mime)).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{name}");
        assert_eq!(
            location(&res),
            format!("/vendor/listings/{id}?logo_error={code}")
        );
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from logos")
        .fetch_one(&app.admin_pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing refused was stored");

    // Another vendor cannot put a logo on the listing.
    let png = app::domain::logos::generate_png("CRM sync", 3);
    let res = upload(&rival, multipart(png.clone(), "logo.png", "image/png"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // A real PNG, named wrongly: judged by its content.
    let res = upload(&vendor, multipart(png.clone(), "logo.gif", "image/gif"))
        .await
        .unwrap();
    assert_eq!(location(&res), format!("/vendor/listings/{id}?saved=1"));
    let logged: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action = 'listing.logo_changed'")
            .fetch_one(&app.admin_pool)
            .await
            .unwrap();
    assert_eq!(logged, 1);
    let (_, editor) = app.editor(&vendor, &id).await;
    let hash = editor["content"]["logo_hash"].as_str().unwrap().to_owned();
    let res = reqwest::get(app.url(&format!("/logos/{hash}")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "image/png");
    assert!(res.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), png.as_slice());
    assert_eq!(
        reqwest::get(app.url("/logos/not-a-hash"))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Cross-site uploads are refused like any other state change.
    let res = vendor
        .post(app.url(&format!("/vendor/listings/{id}/logo")))
        .header(header::ORIGIN, "https://evil.test")
        .multipart(multipart(png, "logo.png", "image/png"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

fn nonce(res: &reqwest::Response) -> String {
    let policy = res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    let start = policy.find("'nonce-").unwrap() + 7;
    policy[start..start + policy[start..].find('\'').unwrap()].to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn anonymous_pages_are_stored_with_a_fresh_nonce_until_the_catalog_changes(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    app.publish(
        &vendor,
        &admin,
        "first",
        &full_form("First listing", "t", "d", "crm"),
    )
    .await;

    let anonymous = common::client();
    let get = |client: &Client, path: &str| client.get(app.url(path)).send();
    let one = get(&anonymous, "/marketplace").await.unwrap();
    let (n1, body1) = (nonce(&one), one.text().await.unwrap());
    let two = get(&anonymous, "/marketplace").await.unwrap();
    let (n2, body2) = (nonce(&two), two.text().await.unwrap());
    assert_ne!(n1, n2, "every response has its own nonce");
    assert!(body2.contains(&format!("nonce=\"{n2}\"")) && !body2.contains(&n1));
    assert_eq!(
        body1.replace(&n1, "N"),
        body2.replace(&n2, "N"),
        "the same page otherwise"
    );
    assert!(body2.contains("First listing"));

    // A signed-in visitor gets their own page, which is not stored for others.
    let page = get(&vendor, "/marketplace")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Account menu"), "the signed-in header");
    let page = get(&anonymous, "/marketplace")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("Account menu"),
        "no one's header leaks to visitors"
    );
    assert!(page.contains("Log in"));

    // A change to the catalog shows at once.
    app.publish(
        &vendor,
        &admin,
        "second",
        &full_form("Second listing", "t", "d", "crm"),
    )
    .await;
    let page = get(&anonymous, "/marketplace")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Second listing"),
        "the stored page was dropped"
    );
    let page = get(&anonymous, "/marketplace?category=crm")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Second listing"));
}
