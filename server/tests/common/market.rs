//! Marketplace helpers: vendors, admins, a complete listing form, and the workflow calls.

use super::TestApp;
use reqwest::{header, Client, StatusCode};
use serde_json::Value;

/// A complete editor form for the sandbox CRM → Patchbay store recipe, as the browser posts it.
pub fn full_form(
    name: &str,
    tagline: &str,
    description: &str,
    category: &str,
) -> Vec<(String, String)> {
    [
        ("form[name]", name),
        ("form[tagline]", tagline),
        ("form[description]", description),
        ("form[categories][0]", category),
        ("form[docs_url]", "https://docs.example.com/sync"),
        ("form[support_url]", ""),
        ("form[website_url]", ""),
        ("form[source_provider]", "sandbox-crm"),
        ("form[source_streams][1]", "contacts"),
        ("form[destination_provider]", "patchbay"),
        ("form[destination_stream]", "contacts"),
        ("form[mapping][0][from]", "email"),
        ("form[mapping][0][to]", "email"),
        ("form[mapping][1][from]", "name"),
        ("form[mapping][1][to]", "full_name"),
        ("form[mapping][2][from]", ""),
        ("form[mapping][2][to]", ""),
        ("form[config][0][key]", "list_id"),
        ("form[config][0][kind]", "number"),
        ("form[config][0][label]", "List"),
        ("form[config][0][help]", "Which list to fill"),
        ("form[config][0][default]", "7"),
        ("form[config][0][required]", "on"),
        ("form[default_schedule]", "1h"),
        ("form[allowed_schedules][2]", "1h"),
        ("form[allowed_schedules][4]", "24h"),
        ("form[triggers][0]", "schedule"),
        ("form[triggers][2]", "manual"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Replaces (or adds) one field of a form.
pub fn with(mut form: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    form.retain(|(k, _)| k != key);
    form.push((key.to_owned(), value.to_owned()));
    form
}

impl TestApp {
    /// A signed-in member of a new vendor organization.
    pub async fn vendor(&self, name: &str, email: &str, org: &str) -> (Client, String) {
        let client = self.user(name, email).await;
        let org = self.create_org(&client, org, "vendor").await;
        (client, org)
    }

    /// A signed-in platform admin.
    pub async fn admin(&self, email: &str) -> Client {
        let client = self.user("Ada Admin", email).await;
        let email = app::model::Email::parse(email).unwrap();
        assert!(
            app::domain::accounts::set_platform_admin(&self.pool, &email, true)
                .await
                .unwrap()
        );
        client
    }

    /// Creates a listing and returns its id.
    pub async fn create_listing(&self, vendor: &Client, name: &str, slug: &str) -> String {
        let res = self
            .call(
                vendor,
                "vendor/listings/create",
                &[("name", name), ("slug", slug)],
            )
            .await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
        let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
        location
            .strip_prefix("/vendor/listings/")
            .unwrap()
            .to_owned()
    }

    pub async fn save_listing(
        &self,
        client: &Client,
        id: &str,
        form: &[(String, String)],
    ) -> (StatusCode, Value) {
        let mut pairs: Vec<(&str, &str)> = vec![("id", id)];
        pairs.extend(form.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.call_json(client, "vendor/listings/save", &pairs).await
    }

    pub async fn editor(&self, client: &Client, id: &str) -> (StatusCode, Value) {
        self.call_json(client, "vendor/listings/editor", &[("id", id)])
            .await
    }

    pub async fn submit(&self, client: &Client, id: &str) -> (StatusCode, Value) {
        self.call_json(client, "vendor/listings/submit", &[("id", id)])
            .await
    }

    /// The id of the version in the editor.
    pub async fn version_id(&self, client: &Client, id: &str) -> String {
        let (status, editor) = self.editor(client, id).await;
        assert_eq!(status, StatusCode::OK, "{editor}");
        editor["version"]["id"].as_str().unwrap().to_owned()
    }

    pub async fn approve(&self, admin: &Client, version: &str) -> (StatusCode, Value) {
        self.call_json(
            admin,
            "admin/reviews/approve",
            &[("version_id", version), ("notes", "")],
        )
        .await
    }

    pub async fn reject(&self, admin: &Client, version: &str, notes: &str) -> (StatusCode, Value) {
        self.call_json(
            admin,
            "admin/reviews/reject",
            &[("version_id", version), ("notes", notes)],
        )
        .await
    }

    /// Creates, fills, submits and approves a listing; returns its id.
    pub async fn publish(
        &self,
        vendor: &Client,
        admin: &Client,
        slug: &str,
        form: &[(String, String)],
    ) -> String {
        let name = form
            .iter()
            .find(|(k, _)| k == "form[name]")
            .map(|(_, v)| v.clone())
            .unwrap();
        let id = self.create_listing(vendor, &name, slug).await;
        let (status, body) = self.save_listing(vendor, &id, form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.submit(vendor, &id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let version = self.version_id(vendor, &id).await;
        let (status, body) = self.approve(admin, &version).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    /// The catalog as anyone sees it.
    pub async fn catalog(&self, q: &str, category: &str, page: &str) -> Value {
        let (status, body) = self
            .call_json(
                &super::client(),
                "marketplace/catalog",
                &[("q", q), ("category", category), ("page", page)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The names on a catalog page, in order.
    pub async fn catalog_names(&self, q: &str, category: &str) -> Vec<String> {
        self.catalog(q, category, "1").await["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }
}
