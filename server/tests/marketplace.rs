//! The listing workflow over HTTP, as the vendor console and the review pages drive it: who may do
//! each transition, and what each one changes (status, versions, catalog, audit log).

mod common;

use common::market::{full_form, with};
use common::spawn_app;
use reqwest::StatusCode;
use sqlx::PgPool;

fn form() -> Vec<(String, String)> {
    full_form(
        "CRM contacts sync",
        "Keep your CRM contacts in Patchbay",
        "## What it does\n\nCopies contacts every hour.",
        "crm",
    )
}

async fn audit_actions(app: &common::TestApp) -> Vec<String> {
    sqlx::query_scalar("select action from audit_log where action like 'listing.%' order by id")
        .fetch_all(&app.admin_pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_listing_goes_from_draft_through_rejection_to_published(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;

    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-contacts-sync")
        .await;
    let (status, editor) = app.editor(&vendor, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(editor["status"], "draft");
    assert_eq!(editor["version"]["state"], "draft");

    // An empty draft cannot be submitted; the complaint names the field.
    let (status, body) = app.submit(&vendor, &id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "tagline");

    let (status, body) = app.save_listing(&vendor, &id, &form()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, editor) = app.editor(&vendor, &id).await;
    let recipe = &editor["content"]["recipe"];
    assert_eq!(recipe["source_streams"], serde_json::json!(["contacts"]));
    assert_eq!(recipe["mapping"]["fields"][1]["to"], "full_name");
    assert_eq!(recipe["config_fields"][0]["required"], true);
    assert_eq!(
        recipe["allowed_schedules"],
        serde_json::json!(["1h", "24h"])
    );

    let (status, body) = app.submit(&vendor, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["status"], "in_review");

    // In review, the version cannot change under the reviewer.
    let (status, body) = app.save_listing(&vendor, &id, &form()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The queue shows it; a reviewer must say why they reject.
    let (status, queue) = app.call_json(&admin, "admin/reviews", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let version = queue[0]["version_id"].as_str().unwrap().to_owned();
    let (status, body) = app.reject(&admin, &version, "  ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "notes");
    let (status, _) = app
        .reject(&admin, &version, "Please add a support link.")
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["status"], "rejected");
    assert_eq!(editor["review_notes"], "Please add a support link.");
    assert!(
        app.catalog_names("", "").await.is_empty(),
        "nothing published yet"
    );

    // Fixed and resubmitted: the notes stay visible until the next decision.
    let fixed = with(form(), "form[support_url]", "https://support.example.com");
    let (status, body) = app.save_listing(&vendor, &id, &fixed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["version"]["state"], "draft");
    assert_eq!(editor["review_notes"], "Please add a support link.");
    assert_eq!(app.submit(&vendor, &id).await.0, StatusCode::OK);
    let (status, body) = app.approve(&admin, &version).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Deciding twice is refused.
    assert_eq!(app.approve(&admin, &version).await.0, StatusCode::CONFLICT);

    assert_eq!(app.catalog_names("", "").await, ["CRM contacts sync"]);
    let (status, page) = app
        .call_json(
            &common::client(),
            "marketplace/listing",
            &[("slug", "crm-contacts-sync")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["support_url"], "https://support.example.com");
    assert_eq!(page["streams"][0]["label"], "Contacts");
    assert_eq!(page["permissions"][0]["scope"], "crm.read");

    assert_eq!(
        audit_actions(&app).await,
        [
            "listing.created",
            "listing.edited",
            "listing.submitted",
            "listing.rejected",
            "listing.edited",
            "listing.submitted",
            "listing.approved",
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn editing_a_published_listing_makes_a_draft_version_the_catalog_ignores(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    let id = app.publish(&vendor, &admin, "crm-sync", &form()).await;

    // Saving it unchanged opens no new version.
    assert_eq!(
        app.save_listing(&vendor, &id, &form()).await.0,
        StatusCode::OK
    );
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(
        (
            editor["version"]["number"].as_i64(),
            editor["version"]["state"].as_str()
        ),
        (Some(1), Some("published"))
    );

    let renamed = with(form(), "form[name]", "CRM contacts sync v2");
    assert_eq!(
        app.save_listing(&vendor, &id, &renamed).await.0,
        StatusCode::OK
    );
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["status"], "published");
    assert_eq!(editor["version"]["number"], 2);
    assert_eq!(editor["version"]["state"], "draft");
    assert_eq!(
        app.catalog_names("", "").await,
        ["CRM contacts sync"],
        "customers keep version 1"
    );

    // A published slug stays put.
    let moved = with(form(), "form[slug]", "elsewhere");
    let (status, body) = app.save_listing(&vendor, &id, &moved).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "slug");

    assert_eq!(app.submit(&vendor, &id).await.0, StatusCode::OK);
    let (_, queue) = app.call_json(&admin, "admin/reviews", &[]).await;
    assert_eq!(queue[0]["is_update"], true);
    let version = queue[0]["version_id"].as_str().unwrap().to_owned();
    let (status, detail) = app
        .call_json(&admin, "admin/reviews/detail", &[("version_id", &version)])
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["diff"][0]["field"], "Name");
    assert_eq!(app.approve(&admin, &version).await.0, StatusCode::OK);
    assert_eq!(app.catalog_names("", "").await, ["CRM contacts sync v2"]);

    let states: Vec<(i32, String)> =
        sqlx::query_as("select number, state from listing_versions order by number")
            .fetch_all(&app.admin_pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [(1, "superseded".to_owned()), (2, "published".to_owned())]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn withdrawing_takes_a_version_back_to_draft(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-sync")
        .await;
    app.save_listing(&vendor, &id, &form()).await;
    assert_eq!(app.submit(&vendor, &id).await.0, StatusCode::OK);
    assert_eq!(
        app.submit(&vendor, &id).await.0,
        StatusCode::CONFLICT,
        "already in review"
    );
    let (status, _) = app
        .call_json(&vendor, "vendor/listings/withdraw", &[("id", &id)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["status"], "draft");
    let (status, _) = app
        .call_json(&vendor, "vendor/listings/withdraw", &[("id", &id)])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let actions = audit_actions(&app).await;
    assert!(
        actions.ends_with(&[
            "listing.submitted".to_owned(),
            "listing.withdrawn".to_owned()
        ]),
        "{actions:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn other_vendors_customers_and_non_admins_are_kept_out(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let (rival, _) = app.vendor("Rita", "rita@rival.test", "Rival").await;
    let customer = app.user("Cass", "cass@customer.test").await;
    app.create_org(&customer, "Acme", "customer").await;
    let nobody = app.user("Nora", "nora@none.test").await;

    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-sync")
        .await;
    app.save_listing(&vendor, &id, &form()).await;

    // Another vendor can neither see nor touch the draft.
    assert_eq!(app.editor(&rival, &id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.save_listing(&rival, &id, &form()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.submit(&rival, &id).await.0, StatusCode::NOT_FOUND);
    let (_, listings) = app.call_json(&rival, "vendor/listings", &[]).await;
    assert_eq!(listings, serde_json::json!([]));
    let (status, _) = app
        .call_json(&rival, "vendor/listings/preview", &[("id", &id)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Customers and people without an organization are not vendors.
    for outsider in [&customer, &nobody] {
        let res = app
            .call(
                outsider,
                "vendor/listings/create",
                &[("name", "Mine"), ("slug", "mine")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.editor(outsider, &id).await.0, StatusCode::FORBIDDEN);
    }

    // Drafts are nowhere public.
    assert!(app.catalog_names("", "").await.is_empty());
    let (status, _) = app
        .call_json(&customer, "marketplace/listing", &[("slug", "crm-sync")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Reviewing is for platform admins only, vendors included.
    assert_eq!(app.submit(&vendor, &id).await.0, StatusCode::OK);
    let version = app.version_id(&vendor, &id).await;
    for who in [&vendor, &rival, &customer] {
        assert_eq!(
            app.call_json(who, "admin/reviews", &[]).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(app.approve(who, &version).await.0, StatusCode::FORBIDDEN);
        assert_eq!(
            app.reject(who, &version, "no").await.0,
            StatusCode::FORBIDDEN
        );
    }
    let anonymous = common::client();
    assert_eq!(
        app.approve(&anonymous, &version).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Nor may others withdraw or archive the vendor's listing, or feature anything.
    for who in [&rival, &customer] {
        let (status, _) = app
            .call_json(who, "vendor/listings/withdraw", &[("id", &id)])
            .await;
        assert!(
            matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{status}"
        );
        let (status, _) = app
            .call_json(
                who,
                "vendor/listings/archive",
                &[("id", &id), ("archived", "true")],
            )
            .await;
        assert!(
            matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{status}"
        );
        let (status, _) = app
            .call_json(
                who,
                "admin/featured",
                &[("slug", "crm-sync"), ("featured", "true")],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = app
        .call_json(
            &anonymous,
            "admin/featured",
            &[("slug", "crm-sync"), ("featured", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A platform admin reviews, but does not edit a vendor's listing.
    let admin = app.admin("ada@admin.test").await;
    assert_eq!(
        app.save_listing(&admin, &id, &form()).await.0,
        StatusCode::FORBIDDEN
    );
    let (_, editor) = app.editor(&vendor, &id).await;
    assert_eq!(editor["status"], "in_review");
}

#[sqlx::test(migrations = "../migrations")]
async fn archiving_hides_a_listing_and_needs_an_owner_or_admin(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, org) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    let id = app.publish(&vendor, &admin, "crm-sync", &form()).await;

    // A plain member of the vendor edits but does not archive.
    let member = app.user("Mo", "mo@vendor.test").await;
    let (status, _) = app
        .call_json(
            &vendor,
            "orgs/members/add",
            &[
                ("org_id", &org),
                ("email", "mo@vendor.test"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.call_json(&member, "orgs/switch", &[("org_id", &org)])
        .await;
    assert_eq!(app.editor(&member, &id).await.0, StatusCode::OK);
    let (status, _) = app
        .call_json(
            &member,
            "vendor/listings/archive",
            &[("id", &id), ("archived", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = app
        .call_json(
            &vendor,
            "vendor/listings/archive",
            &[("id", &id), ("archived", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.catalog_names("", "").await.is_empty());
    let (status, _) = app
        .call_json(
            &common::client(),
            "marketplace/listing",
            &[("slug", "crm-sync")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The published version itself stays readable, for the installs that run it.
    let published: i64 =
        sqlx::query_scalar("select count(*) from listing_versions where state = 'published'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(published, 1);

    let (status, _) = app
        .call_json(
            &vendor,
            "vendor/listings/archive",
            &[("id", &id), ("archived", "false")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.catalog_names("", "").await, ["CRM contacts sync"]);
    let actions = audit_actions(&app).await;
    assert!(
        actions.ends_with(&[
            "listing.archived".to_owned(),
            "listing.unarchived".to_owned()
        ]),
        "{actions:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_input_is_refused_beside_its_field_and_nothing_is_half_saved(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-sync")
        .await;
    assert_eq!(
        app.save_listing(&vendor, &id, &form()).await.0,
        StatusCode::OK
    );
    let (_, before) = app.editor(&vendor, &id).await;

    // A slug another listing has.
    let res = app
        .call(
            &vendor,
            "vendor/listings/create",
            &[("name", "Other"), ("slug", "crm-sync")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["field"], "slug");
    assert!(body["message"].as_str().unwrap().contains("taken"));
    let other = app.create_listing(&vendor, "Other", "other").await;
    let (status, body) = app
        .save_listing(&vendor, &other, &with(form(), "form[slug]", "crm-sync"))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::CONFLICT, Some("slug"))
    );

    let cases: [(&str, &str, &str); 9] = [
        ("form[description]", "nul \u{0} byte", "description"),
        ("form[mapping][0][to]", "tab\tin a cell", "mapping"),
        ("form[source_streams][1]", "deals", "source_streams"),
        ("form[mapping][0][from]", "favourite_colour", "mapping"),
        (
            "form[destination_stream]",
            "Not A Name",
            "destination_stream",
        ),
        ("form[categories][0]", "astrology", "categories"),
        ("form[docs_url]", "javascript:alert(1)", "docs_url"),
        ("form[config][0][default]", "seven", "config"),
        ("form[name]", "", "name"),
    ];
    for (key, value, field) in cases {
        // Every case also changes the tagline: a half-saved form would leave it behind.
        let bad = with(with(form(), key, value), "form[tagline]", "changed");
        let (status, body) = app.save_listing(&vendor, &id, &bad).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key}={value}: {body}"
        );
        assert_eq!(body["field"], field, "{key}={value}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    let (_, after) = app.editor(&vendor, &id).await;
    assert_eq!(
        before["content"], after["content"],
        "nothing was half-saved"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn descriptions_are_sanitized_on_the_listing_page(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    let description = "# Hello\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3))\n\n**safe** text";
    app.publish(
        &vendor,
        &admin,
        "xss",
        &full_form("XSS attempt", "t", description, "crm"),
    )
    .await;
    let html = reqwest::get(app.url("/marketplace/xss"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html
        .find("class=\"prose\"")
        .expect("the description is on the page");
    let prose = &html[start..start + html[start..].find("</div>").unwrap()];
    assert!(prose.contains("<strong>safe</strong>"), "{prose}");
    // Raw HTML is shown as text (escaped), never as markup.
    assert!(prose.contains("&lt;script&gt;"), "{prose}");
    for bad in ["<script", "<img", "href=\"javascript"] {
        assert!(!prose.to_lowercase().contains(bad), "{bad} in {prose}");
    }
}

/// The console and review pages render on the server, complete (these are what a browser without
/// JavaScript gets).
#[sqlx::test(migrations = "../migrations")]
async fn the_console_and_review_pages_render_on_the_server(db: PgPool) {
    let app = spawn_app(db).await;
    let (vendor, _) = app.vendor("Val", "val@vendor.test", "Northwind").await;
    let admin = app.admin("ada@admin.test").await;
    let id = app
        .create_listing(&vendor, "CRM contacts sync", "crm-sync")
        .await;
    app.save_listing(&vendor, &id, &form()).await;
    app.submit(&vendor, &id).await;
    let version = app.version_id(&vendor, &id).await;
    app.reject(&admin, &version, "Needs a support link.").await;
    let page = |client: &reqwest::Client, path: String| {
        let request = client
            .get(app.url(&path))
            .header(reqwest::header::ACCEPT, "text/html");
        async move {
            let res = request.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };

    let (status, html) = page(&vendor, "/vendor".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("CRM contacts sync") && html.contains("Changes requested"));
    let (status, html) = page(&vendor, format!("/vendor/listings/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Needs a support link."),
        "the reviewer's notes"
    );
    assert!(html.contains("name=\"form[mapping][0][from]\"") && html.contains("value=\"email\""));
    assert!(html.contains("Resubmit for review"));

    app.save_listing(&vendor, &id, &form()).await;
    app.submit(&vendor, &id).await;
    let (status, html) = page(&admin, "/admin/reviews".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/admin/reviews/{version}")));
    let (status, html) = page(&admin, format!("/admin/reviews/{version}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Approve and publish") && html.contains("What syncs"));

    // Not for vendors.
    let (status, _) = page(&vendor, format!("/admin/reviews/{version}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Another vendor's editor is not found.
    let (rival, _) = app.vendor("Rita", "rita@rival.test", "Rival").await;
    let (status, _) = page(&rival, format!("/vendor/listings/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
