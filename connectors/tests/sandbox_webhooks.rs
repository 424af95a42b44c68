//! Webhooks sent by the sandbox, received by a local axum app: signature (recomputed here with
//! HMAC-SHA256), delivery id, event types, scope filtering, retries and unsubscribing.

mod sandbox_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sandbox_support::*;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "whsec_test_secret";

/// One received delivery: its headers and raw body.
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

struct Receiver {
    tx: mpsc::UnboundedSender<Received>,
    /// Answer 500 to this many deliveries first.
    fail_first: AtomicU32,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let failing = rx
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let _ = rx.tx.send(Received { headers, body });
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Starts a receiver on 127.0.0.1:0; returns its URL and the stream of deliveries.
async fn receiver(fail_first: u32) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(Receiver {
        tx,
        fail_first: AtomicU32::new(fail_first),
    });
    let app = Router::new()
        .route("/hooks/sandbox", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver serves") });
    (format!("http://{addr}/hooks/sandbox"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("open")
}

/// Checks `X-Sandbox-Signature` the way a receiver must: recompute, compare in constant time.
fn verify(delivery: &Received) -> Value {
    let header = delivery.headers["x-sandbox-signature"]
        .to_str()
        .expect("ASCII signature");
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("bad signature header {header}"));
    let t: i64 = t.parse().expect("unix timestamp");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - t).abs() <= 5, "timestamp {t} is not now ({now})");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&delivery.body);
    mac.verify_slice(&hex::decode(v1).expect("hex"))
        .expect("signature matches the body");
    // Patchbay's own verifier accepts it under the sandbox's scheme.
    let scheme = connectors::sandbox::signature_scheme();
    connectors::webhooks::verify(
        &scheme,
        SECRET.as_bytes(),
        &delivery.headers,
        &delivery.body,
        now,
    )
    .expect("connectors::webhooks::verify accepts sandbox deliveries");
    let event: Value = serde_json::from_slice(&delivery.body).expect("event JSON");
    assert_eq!(
        delivery.headers["x-sandbox-delivery"],
        event["id"].as_str().expect("event id")
    );
    assert!(event["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("evt_")));
    event
}

async fn subscribe(base: &str, access: &str, url: &str) -> Value {
    let resp = http()
        .post(format!("{base}/webhooks/subscriptions"))
        .bearer_auth(access)
        .json(&json!({"url": url}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(resp.status(), 201);
    resp.json().await.expect("subscription JSON")
}

fn config() -> SandboxConfig {
    SandboxConfig {
        webhook_secret: SECRET.into(),
        ..sandbox_support::config()
    }
}

#[tokio::test]
async fn changes_are_delivered_signed_to_subscribers() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (url, mut rx) = receiver(0).await;
    let tokens = login(base, "crm.read crm.write").await;
    let sub = subscribe(base, &tokens.access, &url).await;
    assert_eq!(sub["url"], url.as_str());
    assert_eq!(sub["secret"], SECRET);
    assert!(sub["id"].as_str().is_some_and(|id| !id.is_empty()));

    // An API write.
    let resp = http()
        .patch(format!("{base}/crm/contacts/con_000004"))
        .bearer_auth(&tokens.access)
        .json(&json!({"name": "Grace Hopper"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(resp.status(), 200);
    let event = verify(&next(&mut rx).await);
    assert_eq!(event["type"], "contact.updated");
    assert_eq!(event["data"]["id"], "con_000004");
    assert_eq!(event["data"]["name"], "Grace Hopper");
    assert!(event["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    // A change in the app itself, then a new record; the shop event is not for a CRM-only token.
    sb.sandbox
        .insert("customers", json!({"email": "shop-only@example.com"}));
    assert!(sb.sandbox.touch("companies", "com_000002"));
    let event = verify(&next(&mut rx).await);
    assert_eq!(
        (event["type"].as_str(), event["data"]["id"].as_str()),
        (Some("company.updated"), Some("com_000002"))
    );
    let id = sb.sandbox.insert("contacts", json!({"name": "New Person"}));
    let event = verify(&next(&mut rx).await);
    assert_eq!(
        (event["type"].as_str(), event["data"]["id"].as_str()),
        (Some("contact.created"), Some(id.as_str()))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "no customer.created for a crm-only subscription"
    );
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_delivery_id() {
    let sb = spawn(config()).await;
    let (url, mut rx) = receiver(2).await;
    let tokens = login(&sb.base_url, "shop.read").await;
    subscribe(&sb.base_url, &tokens.access, &url).await;
    assert!(sb.sandbox.touch("orders", "ord_000001"));
    let attempts = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    let events: Vec<Value> = attempts.iter().map(verify).collect();
    assert!(events
        .iter()
        .all(|e| e["id"] == events[0]["id"] && e["type"] == "order.updated"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        rx.try_recv().is_err(),
        "a delivery that succeeded is not sent again"
    );
}

#[tokio::test]
async fn unsubscribing_stops_deliveries() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (url, mut rx) = receiver(0).await;
    let tokens = login(base, "crm.read").await;
    let sub = subscribe(base, &tokens.access, &url).await;
    let id = sub["id"].as_str().expect("id");
    let delete = |id: String| {
        let access = tokens.access.clone();
        async move {
            http()
                .delete(format!("{base}/webhooks/subscriptions/{id}"))
                .bearer_auth(access)
                .send()
                .await
                .expect("DELETE")
        }
    };
    assert_eq!(delete(id.to_owned()).await.status(), 204);
    assert_eq!(delete(id.to_owned()).await.status(), 404);
    assert!(sb.sandbox.touch("contacts", "con_000001"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err());

    let bad = http()
        .post(format!("{base}/webhooks/subscriptions"))
        .bearer_auth(&tokens.access)
        .json(&json!({"url": "ftp://example.com/x"}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(bad.status(), 422);
    // Only this machine: no cloud metadata, no private network, no other host.
    for elsewhere in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "https://example.com/hook",
    ] {
        let refused = http()
            .post(format!("{base}/webhooks/subscriptions"))
            .bearer_auth(&tokens.access)
            .json(&json!({"url": elsewhere}))
            .send()
            .await
            .expect("subscribe");
        assert_eq!(refused.status(), 422, "{elsewhere}");
    }
    let anonymous = http()
        .post(format!("{base}/webhooks/subscriptions"))
        .json(&json!({"url": url}))
        .send()
        .await;
    assert_eq!(anonymous.expect("subscribe").status(), 401);
}

#[tokio::test]
async fn edits_in_the_apps_own_pages_are_changes_like_any_other() {
    let sb = spawn(config()).await;
    let base = sb.base_url.as_str();
    let (url, mut rx) = receiver(0).await;
    let tokens = login(base, "shop.read").await;
    subscribe(base, &tokens.access, &url).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let list = browser
        .get(format!("{base}/app/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let html = list.text().await.unwrap();
    assert!(html.contains("cus_000001"), "{html}");
    let form = browser
        .get(format!("{base}/app/customers/cus_000001"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"first_name\""));

    let saved = browser
        .post(format!("{base}/app/customers/cus_000001"))
        .form(&[
            ("email", "ada@shop.test"),
            ("first_name", "Ada <b>"),
            ("last_name", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    let event = verify(&next(&mut rx).await);
    assert_eq!(event["type"], "customer.updated");
    assert_eq!(event["data"]["first_name"], "Ada <b>");
    assert_eq!(
        event["data"]["last_name"],
        Value::Null,
        "a blank optional field is null"
    );
    let shown = browser
        .get(format!("{base}/app/customers"))
        .send()
        .await
        .unwrap();
    let html = shown.text().await.unwrap();
    assert!(html.contains("Ada &lt;b&gt;"), "escaped: {html}");

    let refused = browser
        .post(format!("{base}/app/customers/cus_000001"))
        .form(&[("email", "not an email")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);

    let cross_site = browser
        .post(format!("{base}/app/customers/cus_000001/delete"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert_eq!(sb.sandbox.count("customers"), 25);

    let deleted = browser
        .post(format!("{base}/app/customers/cus_000001/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 303);
    let event = verify(&next(&mut rx).await);
    assert_eq!(event["type"], "customer.deleted");
    assert_eq!(event["data"]["id"], "cus_000001");
    assert_eq!(sb.sandbox.count("customers"), 24);
    let gone = browser
        .get(format!("{base}/app/customers/cus_000001"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let orders = browser
        .get(format!("{base}/app/orders/ord_000001"))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status(), 404, "orders are read-only");
}
