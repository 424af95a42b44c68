//! The shipped HubSpot spec against a fake that answers as HubSpot's CRM v3 and OAuth docs show:
//! `paging.next.after` cursors, 429s, an expired token refreshed with a rotated refresh token,
//! the authorize URL and code exchange, and contact writes through `SpecDestination`.

mod provider_support;

use connectors::engine::{Destination, SpecDestination, WriteOp};
use connectors::oauth::OAuthClient;
use connectors::ErrorClass;
use provider_support::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CONTACTS: &str = "/crm/v3/objects/contacts";
const PROPERTIES: &str = "email,firstname,lastname,phone,company,lastmodifieddate";
const TOKEN: &str = "/oauth/v1/token";

fn contact(id: u32) -> Value {
    json!({
        "id": id.to_string(),
        "properties": {
            "createdate": "2024-01-10T10:00:00.000Z",
            "email": format!("contact{id}@example.com"),
            "firstname": "Ada",
            "hs_object_id": id.to_string(),
            "lastmodifieddate": "2024-02-01T08:30:00.000Z",
            "lastname": format!("Lovelace {id}"),
        },
        "createdAt": "2024-01-10T10:00:00.000Z",
        "updatedAt": "2024-02-01T08:30:00.000Z",
        "archived": false,
    })
}

/// A page of contacts; `after` names the next page as HubSpot does.
fn page(ids: std::ops::Range<u32>, after: Option<&str>) -> Value {
    let mut body = json!({ "results": ids.map(contact).collect::<Vec<_>>() });
    if let Some(after) = after {
        body["paging"] = json!({ "next": { "after": after, "link": format!("https://api.hubapi.com{CONTACTS}?after={after}") } });
    }
    body
}

fn hubspot_source(server: &MockServer, token: &str) -> connectors::engine::SpecSource {
    source(connection(
        retarget(&builtin("hubspot"), &server.uri()),
        oauth_token(token),
        vars(&[]),
    ))
}

#[tokio::test]
async fn reads_contacts_across_pages_with_the_after_cursor() {
    let server = MockServer::start().await;
    let list = || {
        Mock::given(method("GET"))
            .and(path(CONTACTS))
            .and(query_param("limit", "100"))
            .and(query_param("properties", PROPERTIES))
            .and(header("authorization", "Bearer access-1"))
    };
    // The docs' `after` values are opaque and may hold `%`: they must come back byte for byte.
    list()
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1..101, Some("NTI1Cg%3D%3D"))))
        .expect(1)
        .mount(&server)
        .await;
    list()
        .and(query_param("after", "NTI1Cg%3D%3D"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(101..201, Some("MjAw"))))
        .expect(1)
        .mount(&server)
        .await;
    list()
        .and(query_param("after", "MjAw"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(201..238, None)))
        .expect(1)
        .mount(&server)
        .await;

    let (records, high_water) = read_stream(&hubspot_source(&server, "access-1"), "contacts", None)
        .await
        .unwrap();
    assert_each_once(&records, (1..238).map(|i| i.to_string()));
    assert_eq!(
        records[0].data["properties"]["email"],
        "contact1@example.com"
    );
    assert_eq!(high_water, None, "the contacts stream is not incremental");
}

#[tokio::test]
async fn a_429_is_rate_limited_for_the_retry_after_given() {
    let server = MockServer::start().await;
    let body = json!({
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
        "policyName": "TEN_SECONDLY_ROLLING",
    });
    Mock::given(method("GET"))
        .and(path(CONTACTS))
        .and(header("authorization", "Bearer with-retry-after"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-HubSpot-RateLimit-Max", "110")
                .insert_header("X-HubSpot-RateLimit-Remaining", "0")
                .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
                .insert_header("Retry-After", "10")
                .set_body_json(&body),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CONTACTS))
        .and(header("authorization", "Bearer without"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-HubSpot-RateLimit-Remaining", "0")
                .set_body_json(&body),
        )
        .mount(&server)
        .await;

    let err = read_error(&hubspot_source(&server, "with-retry-after"), "contacts").await;
    assert_eq!(err.class, rate_limited_for(10));
    assert_eq!(err.status, Some(429));
    let err = read_error(&hubspot_source(&server, "without"), "contacts").await;
    assert_eq!(err.class, ErrorClass::RateLimited { retry_after: None });
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_refresh_token_rotated() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CONTACTS))
        .and(header("authorization", "Bearer old-access"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "status": "error",
            "message": "The OAuth token used to make this call expired 1 hour(s) ago.",
            "correlationId": "7e6a4a3b-4a1f-4a4e-9f0e-6a0b5b0a2d01",
            "category": "EXPIRED_AUTHENTICATION",
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CONTACTS))
        .and(header("authorization", "Bearer new-access"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1..4, None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer",
            "refresh_token": "new-refresh",
            "access_token": "new-access",
            "expires_in": 1800,
        })))
        .expect(1)
        .mount(&server)
        .await;

    let err = read_error(&hubspot_source(&server, "old-access"), "contacts").await;
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));

    let spec = retarget(&builtin("hubspot"), &server.uri());
    let oauth = OAuthClient::new(&spec, &app(), &vars(&[]), http()).unwrap();
    let tokens = oauth
        .refresh(&SecretString::from("old-refresh"))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "new-access");
    assert_eq!(
        tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .as_deref(),
        Some("new-refresh")
    );
    assert_eq!(tokens.expires_in, Some(Duration::from_secs(1800)));

    let sent = requests_to(&server, TOKEN).await;
    assert_eq!(
        form(&sent[0]),
        vars(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "old-refresh"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]),
        "HubSpot takes the client credentials in the form body"
    );
    assert!(sent[0].headers.get("authorization").is_none());

    let (records, _) = read_stream(
        &hubspot_source(&server, tokens.access_token.expose_secret()),
        "contacts",
        None,
    )
    .await
    .unwrap();
    assert_each_once(&records, ["1", "2", "3"].map(String::from));
}

#[tokio::test]
async fn authorize_url_and_code_exchange() {
    // The authorize URL is built without a request: check it against HubSpot's real host.
    let real = OAuthClient::new(&builtin("hubspot"), &app(), &vars(&[]), http()).unwrap();
    let start = real.authorize();
    assert_eq!(
        start.url.origin().ascii_serialization(),
        "https://app.hubspot.com"
    );
    assert_eq!(start.url.path(), "/oauth/authorize");
    let params = query_map(&start.url);
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], REDIRECT_URL);
    assert_eq!(
        params["scope"],
        "crm.objects.contacts.read crm.objects.contacts.write crm.objects.companies.read"
    );
    assert_eq!(params["state"], start.state);
    assert!(start.state.len() >= 16);
    assert!(
        !params.contains_key("code_challenge"),
        "the spec sets pkce = false"
    );
    assert!(start.pkce_verifier.is_none());

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer",
            "refresh_token": "6f18f21e-a743-4509-b7fd-1a5e632fffa1",
            "access_token": "CN2zlYnmLBICAQIYgZXFLyCWp1Yoy_9GMhkAgddk-zDc-H_rOad1X2s6Qv3fmG1spSY0Og0ACgJBAAADAIADAAABQhkAgddk-03q2qdkwdXbYWCoB9g3LA97OJ9I",
            "expires_in": 1800,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(
        &retarget(&builtin("hubspot"), &server.uri()),
        &app(),
        &vars(&[]),
        http(),
    )
    .unwrap();
    let tokens = oauth
        .exchange_code("code-from-callback", None)
        .await
        .unwrap();
    assert!(tokens.access_token.expose_secret().starts_with("CN2zlYnm"));
    assert!(tokens.refresh_token.is_some());
    let sent = requests_to(&server, TOKEN).await;
    assert_eq!(
        form(&sent[0]),
        vars(&[
            ("grant_type", "authorization_code"),
            ("code", "code-from-callback"),
            ("redirect_uri", REDIRECT_URL),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
    );
}

#[tokio::test]
async fn creates_and_updates_contacts() {
    let server = MockServer::start().await;
    let created = json!({
        "id": "512",
        "properties": {
            "createdate": "2024-03-01T12:00:00.000Z",
            "email": "grace@example.com",
            "firstname": "Grace",
            "hs_object_id": "512",
            "lastmodifieddate": "2024-03-01T12:00:00.000Z",
            "lastname": "Hopper",
        },
        "createdAt": "2024-03-01T12:00:00.000Z",
        "updatedAt": "2024-03-01T12:00:00.000Z",
        "archived": false,
    });
    let mut updated = created.clone();
    updated["properties"]["phone"] = json!("+1 555 0100");
    Mock::given(method("POST"))
        .and(path(CONTACTS))
        .and(header("authorization", "Bearer access-1"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({ "properties": { "email": "grace@example.com", "firstname": "Grace", "lastname": "Hopper" } })))
        .respond_with(ResponseTemplate::new(201).set_body_json(&created))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{CONTACTS}/512")))
        .and(header("authorization", "Bearer access-1"))
        .and(body_json(
            json!({ "properties": { "phone": "+1 555 0100" } }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(&updated))
        .expect(1)
        .mount(&server)
        .await;

    let conn = connection(
        retarget(&builtin("hubspot"), &server.uri()),
        oauth_token("access-1"),
        vars(&[]),
    );
    let dest = SpecDestination::new(conn, http());
    let create = WriteOp::Create {
        data: json!({ "email": "grace@example.com", "firstname": "Grace", "lastname": "Hopper" }),
    };
    assert_eq!(
        dest.write("contacts", &create, "key-1")
            .await
            .unwrap()
            .id
            .as_deref(),
        Some("512")
    );
    let update = WriteOp::Update {
        id: "512".into(),
        data: json!({ "phone": "+1 555 0100" }),
    };
    assert_eq!(
        dest.write("contacts", &update, "key-2")
            .await
            .unwrap()
            .id
            .as_deref(),
        Some("512")
    );
}

#[tokio::test]
async fn a_duplicate_contact_is_a_permanent_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(CONTACTS))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "status": "error",
            "message": "Contact already exists. Existing ID: 512",
            "correlationId": "2a3b4c5d-0000-4000-8000-000000000000",
            "category": "CONFLICT",
        })))
        .mount(&server)
        .await;
    let conn = connection(
        retarget(&builtin("hubspot"), &server.uri()),
        oauth_token("access-1"),
        vars(&[]),
    );
    let err = SpecDestination::new(conn, http())
        .write(
            "contacts",
            &WriteOp::Create {
                data: json!({ "email": "grace@example.com" }),
            },
            "k",
        )
        .await
        .unwrap_err();
    assert_eq!((err.class, err.status), (ErrorClass::Permanent, Some(409)));
    assert!(
        err.message.contains("Contact already exists"),
        "{}",
        err.message
    );
}
