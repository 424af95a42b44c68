//! The shipped Shopify spec against a fake that answers as Shopify's Admin REST docs show:
//! `Link: <…page_info=…>; rel="next"` pagination (page 2 carries only the link's own query),
//! `updated_at_min` on the next sync, 429 with `Retry-After: 2.0`, the `X-Shopify-Access-Token`
//! header, comma-separated scopes, and `X-Shopify-Hmac-Sha256` webhooks.

mod provider_support;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use connectors::engine::SpecSource;
use connectors::oauth::OAuthClient;
use connectors::webhooks::{verify, SignatureScheme, WebhookError};
use connectors::ErrorClass;
use provider_support::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SHOP: &str = "acme-outfitters";
const CUSTOMERS: &str = "/admin/api/2024-10/customers.json";
const PAGE_2: &str =
    "eyJsYXN0X2lkIjoyMDcxMTk4MDAsImxhc3RfdmFsdWUiOjIwNzExOTgwMCwiZGlyZWN0aW9uIjoibmV4dCJ9";
const PAGE_3: &str =
    "eyJsYXN0X2lkIjoyMDcxMjAwNTAsImxhc3RfdmFsdWUiOjIwNzEyMDA1MCwiZGlyZWN0aW9uIjoibmV4dCJ9";

fn shopify_source(server: &MockServer, token: &str) -> SpecSource {
    source(connection(
        retarget(&builtin("shopify"), &server.uri()),
        oauth_token(token),
        vars(&[("shop", SHOP)]),
    ))
}

fn customer(id: u64, updated_at: &str) -> Value {
    json!({
        "id": id,
        "email": format!("bob{id}@mail.example.com"),
        "created_at": "2024-09-30T09:00:00-04:00",
        "updated_at": updated_at,
        "first_name": "Bob",
        "last_name": "Norman",
        "orders_count": 1,
        "state": "disabled",
        "total_spent": "199.65",
        "last_order_id": 450_789_469,
        "note": null,
        "verified_email": true,
        "tax_exempt": false,
        "tags": "Léon, Noël",
        "currency": "USD",
        "phone": "+16136120707",
        "addresses": [],
        "admin_graphql_api_id": format!("gid://shopify/Customer/{id}"),
    })
}

/// Customers `ids`, each updated a minute after the previous one on 1 October (EDT).
fn customers(ids: std::ops::Range<u64>) -> Value {
    let list: Vec<Value> = ids
        .map(|id| {
            let minute = id - 207_119_551;
            customer(
                id,
                &format!(
                    "2024-10-01T{:02}:{:02}:00-04:00",
                    8 + minute / 60,
                    minute % 60
                ),
            )
        })
        .collect();
    json!({ "customers": list })
}

fn link(server: &MockServer, page_info: &str, rel: &str) -> String {
    format!(
        "<{}{CUSTOMERS}?limit=250&page_info={page_info}>; rel=\"{rel}\"",
        server.uri()
    )
}

#[tokio::test]
async fn reads_customers_by_link_header_then_only_changes() {
    let server = MockServer::start().await;
    let get = || {
        Mock::given(method("GET"))
            .and(path(CUSTOMERS))
            .and(header("x-shopify-access-token", "shpat_one"))
    };
    let first = 207_119_551;
    get()
        .and(QueryIs::exactly("limit=250"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", link(&server, PAGE_2, "next"))
                .set_body_json(customers(first..first + 250)),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Shopify refuses any other parameter next to page_info: the link is followed as given.
    get()
        .and(QueryIs::exactly(&format!("limit=250&page_info={PAGE_2}")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Link",
                    format!(
                        "{}, {}",
                        link(&server, "cHJldg", "previous"),
                        link(&server, PAGE_3, "next")
                    ),
                )
                .set_body_json(customers(first + 250..first + 500)),
        )
        .expect(1)
        .mount(&server)
        .await;
    get()
        .and(QueryIs::exactly(&format!("limit=250&page_info={PAGE_3}")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", link(&server, "cHJldjI", "previous"))
                .set_body_json(customers(first + 500..first + 513)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let source = shopify_source(&server, "shpat_one");
    let (records, high_water) = read_stream(&source, "customers", None).await.unwrap();
    assert_each_once(&records, (first..first + 513).map(|id| id.to_string()));
    assert_eq!(
        high_water.as_deref(),
        Some("2024-10-01T16:32:00-04:00"),
        "the last customer's updated_at"
    );

    get()
        .and(query_param("limit", "250"))
        .and(query_param("updated_at_min", "2024-10-01T16:32:00-04:00"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"customers": [customer(first + 7, "2024-10-02T10:00:00-04:00")]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (records, high_water) =
        read_stream(&source, "customers", Some("2024-10-01T16:32:00-04:00"))
            .await
            .unwrap();
    assert_each_once(&records, [(first + 7).to_string()]);
    assert_eq!(high_water.as_deref(), Some("2024-10-02T10:00:00-04:00"));
}

/// Shopify gives times in the shop's zone, so the offset changes with daylight saving. On the
/// night clocks go back, 01:10-05:00 comes after 01:50-04:00: the high-water mark must be the
/// later instant, not the larger string, or every later sync re-reads the same hour.
#[tokio::test]
async fn the_high_water_mark_compares_instants_across_a_dst_change() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CUSTOMERS))
        .and(query_param_is_missing("updated_at_min"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"customers": [
                customer(1, "2024-11-03T01:10:00-05:00"),
                customer(2, "2024-11-03T01:50:00-04:00"),
            ]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (_, high_water) = read_stream(&shopify_source(&server, "shpat_one"), "customers", None)
        .await
        .unwrap();
    assert_eq!(high_water.as_deref(), Some("2024-11-03T01:10:00-05:00"));
}

#[tokio::test]
async fn a_429_with_retry_after_2_0_waits_two_seconds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CUSTOMERS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "2.0")
                .insert_header("X-Shopify-Shop-Api-Call-Limit", "40/40")
                .set_body_json(json!({"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."})),
        )
        .mount(&server)
        .await;
    let err = read_error(&shopify_source(&server, "shpat_one"), "customers").await;
    assert_eq!((err.class, err.status), (rate_limited_for(2), Some(429)));
}

#[tokio::test]
async fn a_401_is_an_auth_error_since_shopify_tokens_do_not_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CUSTOMERS))
        .and(header("x-shopify-access-token", "shpat_uninstalled"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = read_error(&shopify_source(&server, "shpat_uninstalled"), "customers").await;
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));
    assert!(
        err.message.contains("Invalid API key or access token"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn authorize_url_and_code_exchange() {
    let shop = vars(&[("shop", SHOP)]);
    let start = OAuthClient::new(&builtin("shopify"), &app(), &shop, http())
        .unwrap()
        .authorize();
    assert_eq!(
        start.url.origin().ascii_serialization(),
        "https://acme-outfitters.myshopify.com"
    );
    assert_eq!(start.url.path(), "/admin/oauth/authorize");
    let params = query_map(&start.url);
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(
        params["scope"], "read_customers,read_orders",
        "Shopify joins scopes with commas"
    );
    assert_eq!(params["redirect_uri"], REDIRECT_URL);
    assert_eq!(params["state"], start.state);
    assert!(
        !params.contains_key("code_challenge"),
        "the spec sets pkce = false"
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/admin/oauth/access_token"))
        // Shopify's offline-token response has neither token_type nor refresh_token.
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "f85632530bf277ec9ac6f649fc327f17",
            "scope": "write_orders,read_customers",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(
        &retarget(&builtin("shopify"), &server.uri()),
        &app(),
        &shop,
        http(),
    )
    .unwrap();
    let tokens = oauth
        .exchange_code("0907a61c0c8d55e99db179b68161bc00", None)
        .await
        .unwrap();
    assert_eq!(
        tokens.access_token.expose_secret(),
        "f85632530bf277ec9ac6f649fc327f17"
    );
    assert!(tokens.refresh_token.is_none());
    assert_eq!(tokens.scopes, ["write_orders", "read_customers"]);

    let sent = &requests_to(&server, "/admin/oauth/access_token").await[0];
    let body = form(sent);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["client_secret"], CLIENT_SECRET);
    assert_eq!(body["code"], "0907a61c0c8d55e99db179b68161bc00");
    assert!(sent.headers.get("authorization").is_none());
}

#[tokio::test]
async fn webhooks_verify_as_shopify_signs_them() {
    let spec = builtin("shopify");
    let hooks = spec.webhooks.as_ref().unwrap();
    assert!(matches!(&hooks.signature, SignatureScheme::Shopify { .. }));
    assert_eq!(
        hooks.delivery_id_header.as_deref(),
        Some("X-Shopify-Webhook-Id")
    );
    assert_eq!(hooks.event_type_header.as_deref(), Some("X-Shopify-Topic"));

    // Shopify signs the raw body with the app's client secret, base64-encoded.
    let body = serde_json::to_vec(&customer(
        706_405_506_930_370_084,
        "2024-10-01T12:00:00-04:00",
    ))
    .unwrap();
    let signature = BASE64.encode(hmac_sha256(CLIENT_SECRET.as_bytes(), &[&body]));
    let delivery = |sig: &str| {
        headers(&[
            ("X-Shopify-Topic", "customers/update"),
            ("X-Shopify-Hmac-Sha256", sig),
            ("X-Shopify-Shop-Domain", "acme-outfitters.myshopify.com"),
            ("X-Shopify-API-Version", "2024-10"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
        ])
    };
    let check = |sig: &str, body: &[u8]| {
        verify(
            &hooks.signature,
            CLIENT_SECRET.as_bytes(),
            &delivery(sig),
            body,
            now_unix(),
        )
    };
    assert_eq!(check(&signature, &body), Ok(()));

    let reserialized =
        serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_eq!(
        check(&signature, &reserialized),
        Err(WebhookError::BadSignature),
        "only the raw bytes verify"
    );
    let other = BASE64.encode(hmac_sha256(b"another app's secret", &[&body]));
    assert_eq!(check(&other, &body), Err(WebhookError::BadSignature));
    let hex_instead = hex::encode(hmac_sha256(CLIENT_SECRET.as_bytes(), &[&body]));
    assert!(matches!(
        check(&hex_instead, &body),
        Err(WebhookError::Malformed(_))
    ));
}
