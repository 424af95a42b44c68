//! Paging the sandbox's streams: every record exactly once across pages, even while records
//! change between pages; `updated_since` for the next sync; seed sizes; query validation.

mod sandbox_support;

use std::collections::{HashMap, HashSet};

use sandbox_support::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn assert_each_once(ids: &[String]) -> HashSet<String> {
    let set: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a record was repeated: {ids:?}");
    set
}

#[tokio::test]
async fn paging_over_many_pages_returns_every_record_once() {
    let sb = spawn(config_with_seed(SeedSizes {
        contacts: 57,
        ..SeedSizes::uniform(3)
    }))
    .await;
    let tokens = login(&sb.base_url, "crm.read").await;
    let (records, pages) = read_all(&sb.base_url, "/crm/contacts", &tokens.access, 10).await;
    assert_eq!(pages, 6);
    let got = assert_each_once(&ids(&records));
    let expected: HashSet<String> = (1..=57).map(|n| format!("con_{n:06}")).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn changes_between_pages_neither_lose_nor_repeat_records() {
    let sb = spawn(config_with_seed(SeedSizes {
        contacts: 30,
        ..SeedSizes::uniform(5)
    }))
    .await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read crm.write").await;
    let client = http();
    let page = |cursor: Option<String>| {
        let client = client.clone();
        let access = tokens.access.clone();
        async move {
            let mut query = vec![("limit", "10".to_owned())];
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            let resp = client
                .get(format!("{base}/crm/contacts"))
                .query(&query)
                .bearer_auth(access)
                .send()
                .await;
            resp.expect("page")
                .json::<Value>()
                .await
                .expect("page JSON")
        }
    };
    let patch = |id: &'static str, name: &'static str| {
        let client = client.clone();
        let access = tokens.access.clone();
        async move {
            let resp = client
                .patch(format!("{base}/crm/contacts/{id}"))
                .bearer_auth(access)
                .json(&json!({"name": name}))
                .send()
                .await
                .expect("PATCH");
            assert_eq!(resp.status(), 200);
        }
    };

    let first = page(None).await;
    let mut seen: Vec<Value> = first["data"].as_array().expect("data").clone();
    assert_eq!(
        ids(&seen)[..2],
        ["con_000001".to_owned(), "con_000002".to_owned()]
    );
    let before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid nanosecond");
    let before_changes = before.format(&Rfc3339).expect("format now");

    // Between pages: edit a record already read, edit one not read yet (twice), touch both
    // kinds, and create a record.
    patch("con_000002", "Renamed Early").await;
    patch("con_000025", "Renamed Late").await;
    patch("con_000025", "Renamed Late Again").await;
    assert!(sb.sandbox.touch("contacts", "con_000015"));
    assert!(sb.sandbox.touch("contacts", "con_000003"));
    let new_id = sb.sandbox.insert("contacts", json!({"name": "Brand New"}));

    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let next = page(Some(c)).await;
        seen.extend(next["data"].as_array().expect("data").iter().cloned());
        // Keep changing things while paging.
        assert!(sb.sandbox.touch("contacts", "con_000030"));
        cursor = next["next_cursor"].as_str().map(str::to_owned);
    }

    let got = assert_each_once(&ids(&seen));
    let expected: HashSet<String> = (1..=30).map(|n| format!("con_{n:06}")).collect();
    assert_eq!(
        got, expected,
        "the snapshot's records, each once; the new record waits for the next sync"
    );
    let by_id: HashMap<String, Value> = seen
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect();
    assert_ne!(
        by_id["con_000025"]["name"], "Renamed Late Again",
        "paging returns the snapshot's version"
    );

    // The next sync reads what changed.
    let resp = client
        .get(format!("{base}/crm/contacts"))
        .query(&[("updated_since", before_changes.as_str())])
        .bearer_auth(&tokens.access)
        .send()
        .await
        .expect("incremental read");
    let changed: Value = resp.json().await.expect("JSON");
    let changed = changed["data"].as_array().expect("data").clone();
    let changed_ids = assert_each_once(&ids(&changed));
    let expected: HashSet<String> = [
        "con_000002",
        "con_000025",
        "con_000015",
        "con_000003",
        "con_000030",
        new_id.as_str(),
    ]
    .map(String::from)
    .into();
    assert_eq!(changed_ids, expected);
    let late = changed
        .iter()
        .find(|r| r["id"] == "con_000025")
        .expect("con_000025 changed");
    assert_eq!(
        late["name"], "Renamed Late Again",
        "the incremental read has the latest version"
    );
    let early = changed
        .iter()
        .find(|r| r["id"] == "con_000002")
        .expect("con_000002 changed");
    assert_eq!(early["name"], "Renamed Early");
    let updated = OffsetDateTime::parse(early["updated_at"].as_str().unwrap_or_default(), &Rfc3339);
    assert!(updated.expect("RFC 3339") >= before);
}

#[tokio::test]
async fn seed_sizes_are_honoured() {
    let seed = SeedSizes {
        customers: 3,
        orders: 7,
        contacts: 0,
        companies: 12,
    };
    let sb = spawn(config_with_seed(seed)).await;
    let tokens = login(&sb.base_url, "shop.read crm.read").await;
    for (stream, path, n) in [
        ("customers", "/shop/customers", 3),
        ("orders", "/shop/orders", 7),
        ("contacts", "/crm/contacts", 0),
        ("companies", "/crm/companies", 12),
    ] {
        assert_eq!(sb.sandbox.count(stream), n, "{stream}");
        let (records, _) = read_all(&sb.base_url, path, &tokens.access, 5).await;
        assert_eq!(records.len(), n, "{stream}");
    }
    assert_eq!(sb.sandbox.count("nonsense"), 0);
    assert_eq!(
        Sandbox::new(config()).count("contacts"),
        25,
        "default seed is 25 per stream"
    );
}

#[tokio::test]
async fn records_have_the_documented_shape() {
    let sb = spawn(config_with_seed(SeedSizes::uniform(4))).await;
    let tokens = login(&sb.base_url, "shop.read crm.read").await;
    let shapes = [
        (
            "/shop/customers",
            "cus_000001",
            &[
                "id",
                "email",
                "first_name",
                "last_name",
                "created_at",
                "updated_at",
            ][..],
        ),
        (
            "/shop/orders",
            "ord_000001",
            &[
                "id",
                "customer_id",
                "total_cents",
                "currency",
                "status",
                "created_at",
                "updated_at",
            ],
        ),
        (
            "/crm/contacts",
            "con_000001",
            &[
                "id",
                "email",
                "name",
                "company_id",
                "phone",
                "created_at",
                "updated_at",
            ],
        ),
        (
            "/crm/companies",
            "com_000001",
            &["id", "name", "domain", "created_at", "updated_at"],
        ),
    ];
    for (path, first_id, fields) in shapes {
        let (records, _) = read_all(&sb.base_url, path, &tokens.access, 50).await;
        let record = records[0].as_object().expect("object");
        assert_eq!(record["id"], first_id);
        let mut keys: Vec<&str> = record.keys().map(String::as_str).collect();
        let mut want = fields.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want, "{path}");
        for ts in ["created_at", "updated_at"] {
            let text = record[ts].as_str().expect("timestamp string");
            assert!(
                text.len() == 24
                    && text.ends_with('Z')
                    && OffsetDateTime::parse(text, &Rfc3339).is_ok(),
                "{text}"
            );
        }
    }
    let (orders, _) = read_all(&sb.base_url, "/shop/orders", &tokens.access, 50).await;
    assert!(orders.iter().all(|o| o["currency"] == "USD"
        && o["customer_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("cus_"))));
    // Deterministic: a second sandbox with the same seed has the same data.
    let again = spawn(config_with_seed(SeedSizes::uniform(4))).await;
    let tokens2 = login(&again.base_url, "shop.read").await;
    let (orders2, _) = read_all(&again.base_url, "/shop/orders", &tokens2.access, 50).await;
    assert_eq!(orders, orders2);
}

#[tokio::test]
async fn bad_query_values_are_400_and_large_limits_are_capped() {
    let sb = spawn(config_with_seed(SeedSizes {
        companies: 250,
        ..SeedSizes::uniform(1)
    }))
    .await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "crm.read").await;
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("updated_since=yesterday", "invalid_updated_since"),
    ] {
        let resp = api_get(base, &format!("/crm/companies?{query}"), &tokens.access).await;
        assert_eq!(resp.status(), 400, "{query}");
        assert_eq!(error_code(resp).await, code);
    }
    let page: Value = api_get(base, "/crm/companies?limit=1000", &tokens.access)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(200));
    let default: Value = api_get(base, "/crm/companies", &tokens.access)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(default["data"].as_array().map(Vec::len), Some(50));
    // A cursor of one stream is refused by another.
    let cursor = default["next_cursor"].as_str().expect("more pages");
    let resp = api_get(
        base,
        &format!("/crm/contacts?cursor={cursor}"),
        &tokens.access,
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        api_get(base, "/crm/deals", &tokens.access).await.status(),
        404
    );
}

#[tokio::test]
async fn updated_since_alone_filters_and_pages() {
    let sb = spawn(config_with_seed(SeedSizes::uniform(20))).await;
    let base = sb.base_url.as_str();
    let tokens = login(base, "shop.read").await;
    // Seeded customers are updated five minutes apart from 2024-01-01T00:05:00Z.
    let resp = api_get(
        base,
        "/shop/customers?updated_since=2024-01-01T01:00:00Z&limit=3",
        &tokens.access,
    )
    .await;
    let mut page: Value = resp.json().await.expect("JSON");
    let mut got = ids(page["data"].as_array().expect("data"));
    while let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) {
        page = api_get(
            base,
            &format!("/shop/customers?cursor={cursor}"),
            &tokens.access,
        )
        .await
        .json()
        .await
        .expect("JSON");
        got.extend(ids(page["data"].as_array().expect("data")));
    }
    let expected: Vec<String> = (12..=20).map(|n| format!("cus_{n:06}")).collect();
    assert_eq!(got, expected, "the cursor carries the filter");
}
