//! The sync engine end to end against the sandbox: installs made through the wizard, runs
//! executed by the engine (and the worker pool), records checked at the destination.

mod common;

use app::domain::sync::{EngineSettings, Settled};
use common::sync::*;
use sqlx::PgPool;
use std::time::Duration;

fn fast() -> EngineSettings {
    EngineSettings {
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        ..EngineSettings::default()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_first_sync_fills_the_store_and_the_next_finds_everything_unchanged(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env
        .install("shop-to-store", &["schedule", "manual"], "1h")
        .await;
    let engine = env.engine("w1", fast());
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    let records = env.store(install).await;
    assert_eq!(records.len(), 25);
    let (key, first) = &records[0];
    assert_eq!(key, "cus_000001");
    let source = env.sandbox.sandbox.get("customers", "cus_000001").unwrap();
    assert_eq!(first["email"], source["email"]);
    assert_eq!(first["changed_at"], source["updated_at"]);
    assert_eq!(
        first.as_object().unwrap().len(),
        4,
        "only the mapped fields: {first}"
    );
    assert_eq!(env.runs(install).await, [("succeeded".into(), 25, 0, 0, 0)]);

    env.action(install, "run_now").await;
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    let runs = env.runs(install).await;
    // The incremental read starts at the last record's updated_at (inclusive): one record again,
    // unchanged.
    assert_eq!(runs[1], ("succeeded".into(), 0, 1, 0, 0), "{runs:?}");
    let page = env.page(install).await;
    assert_eq!(page["summary"]["status"], "active");
    assert_eq!(page["history"].as_array().unwrap().len(), 2);
    assert_eq!(page["store"]["total"], 25);

    // An install that goes (with its organization) takes its store records with it.
    sqlx::query("delete from organizations where id = $1")
        .bind(env.tenant)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    assert!(env.store(install).await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn changes_arrive_and_a_full_resync_sweeps_deleted_records(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-store", &["manual"], "manual").await;
    let engine = env.engine("w1", fast());
    env.drain(&engine).await;
    assert!(env.sandbox.sandbox.touch("customers", "cus_000003"));
    env.sandbox
        .sandbox
        .insert("customers", serde_json::json!({ "email": "new@shop.test" }));
    env.action(install, "run_now").await;
    env.drain(&engine).await;
    let runs = env.runs(install).await;
    assert_eq!((runs[1].1, runs[1].3), (2, 0), "{runs:?}");
    assert_eq!(env.store(install).await.len(), 26);

    assert!(env.sandbox.sandbox.delete("customers", "cus_000007"));
    assert!(env.sandbox.sandbox.delete("customers", "cus_000008"));
    env.action(install, "resync").await;
    env.drain(&engine).await;
    let runs = env.runs(install).await;
    assert_eq!(runs[2], ("succeeded".into(), 0, 24, 2, 0), "{runs:?}");
    let keys: Vec<String> = env
        .store(install)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 24);
    assert!(!keys.contains(&"cus_000007".to_owned()));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_crm_destination_gets_each_record_once_even_when_writes_are_redone(db: PgPool) {
    let env = sync_env(
        db,
        SyncOptions {
            seed: connectors::sandbox::SeedSizes {
                customers: 30,
                orders: 0,
                contacts: 0,
                companies: 2,
            },
            ..SyncOptions::default()
        },
    )
    .await;
    let install = env.install("shop-to-crm", &["manual"], "manual").await;
    let engine = env.engine("w1", fast());
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    assert_eq!(
        env.sandbox_emails("contacts"),
        env.sandbox_emails("customers")
    );
    let contact = env.sandbox.sandbox.recent("contacts", 1).remove(0);
    let customer = env
        .sandbox
        .sandbox
        .recent("customers", 100)
        .into_iter()
        .find(|c| c["email"] == contact["email"])
        .unwrap();
    assert_eq!(contact["name"], customer["first_name"]);

    // As if every commit after the writes had been lost: Patchbay forgets what it wrote and
    // reads everything again. The same writes carry the same idempotency keys, so the sandbox
    // replays them instead of creating twins.
    sqlx::query("delete from synced_records where install_id = $1")
        .bind(install)
        .execute(&env.app.admin_pool)
        .await
        .unwrap();
    env.action(install, "resync").await;
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    assert_eq!(env.sandbox.sandbox.count("contacts"), 30, "no twins");
    assert_eq!(
        env.sandbox_emails("contacts"),
        env.sandbox_emails("customers")
    );

    // A change updates the contact it made.
    let browser = reqwest::Client::new();
    browser
        .post(format!("{}/app/customers/cus_000004", env.sandbox.base_url))
        .form(&[("email", "renamed@shop.test"), ("first_name", "Renamed")])
        .send()
        .await
        .unwrap();
    env.action(install, "run_now").await;
    assert_eq!(env.drain(&engine).await, [Settled::Succeeded]);
    assert_eq!(env.sandbox.sandbox.count("contacts"), 30);
    assert!(env
        .sandbox_emails("contacts")
        .contains(&"renamed@shop.test".to_owned()));

    // Deleted at the source, deleted at the destination by the next full sync.
    env.sandbox.sandbox.delete("customers", "cus_000009");
    env.action(install, "resync").await;
    env.drain(&engine).await;
    assert_eq!(env.sandbox.sandbox.count("contacts"), 29);
    assert_eq!(
        env.sandbox_emails("contacts"),
        env.sandbox_emails("customers")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn records_the_destination_refuses_are_quarantined_and_the_run_goes_on(db: PgPool) {
    let env = sync_env(db, SyncOptions::default()).await;
    let install = env.install("shop-to-crm", &["manual"], "manual").await;
    // company_id must name an existing company: a last name never does, an empty one is null.
    let res = env
        .app
        .call(
            &env.customer,
            "installs/mapping",
            &[
                ("id", &install.to_string()),
                ("mapping[0][to]", "email"),
                ("mapping[0][from]", "email"),
                ("mapping[1][to]", "company_id"),
                ("mapping[1][from]", "last_name"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let browser = reqwest::Client::new();
    for id in ["cus_000001", "cus_000002", "cus_000003"] {
        let res = browser
            .post(format!("{}/app/customers/{id}", env.sandbox.base_url))
            .form(&[("last_name", "")])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success() || res.status().is_redirection());
    }
    env.drain(&env.engine("w1", fast())).await;
    assert_eq!(env.runs(install).await, [("succeeded".into(), 3, 0, 0, 22)]);
    assert_eq!(env.sandbox.sandbox.count("contacts"), 25 + 3);
    let page = env.page(install).await;
    let quarantined = page["quarantined"].as_array().unwrap();
    assert_eq!(quarantined.len(), 20, "the page shows the newest 20");
    assert!(
        quarantined[0]["reason"]
            .as_str()
            .unwrap()
            .contains("company"),
        "{}",
        quarantined[0]
    );
    let kept: i64 =
        sqlx::query_scalar("select count(*) from quarantined_records where install_id = $1")
            .bind(install)
            .fetch_one(&env.app.admin_pool)
            .await
            .unwrap();
    assert_eq!(kept, 22);
    let events = page["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["kind"] == "quarantined"));
}

/// A first sync writes by plain insert; a key the provider repeats in a later batch (a unique
/// violation) is upserted instead, in the same transaction, and the caller is told to upsert
/// from then on.
#[sqlx::test(migrations = "../migrations")]
async fn a_first_sync_takes_a_record_the_provider_repeats(db: PgPool) {
    use app::domain::db::{self, Scope};
    use app::domain::sync::{store, Item};
    use connectors::record::ContentHash;

    let env = sync_env(db, SyncOptions::default()).await;
    let install = uuid::Uuid::new_v4();
    let item = |key: &str, name: &str| {
        let data = serde_json::json!({ "name": name });
        Item {
            key: key.into(),
            hash: ContentHash::of(&data),
            data,
        }
    };
    let write = |items: Vec<Item>| {
        let pool = env.app.pool.clone();
        let tenant = env.tenant;
        async move {
            let mut tx = db::begin(&pool, Scope::System).await.unwrap();
            let written = store::write(
                &mut tx,
                tenant,
                install,
                "customers",
                "customers",
                1,
                &items,
                true,
            )
            .await
            .unwrap();
            // The transaction goes on after a collision: what follows it commits.
            sqlx::query("select 1").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            written
        }
    };
    let first = write(vec![item("a", "Ada"), item("b", "Bo")]).await;
    assert_eq!((first.written, first.collided), (2, false));
    let second = write(vec![item("c", "Cy"), item("a", "Ada Lovelace")]).await;
    assert_eq!((second.written, second.collided), (2, true));
    let stored = env.store(install).await;
    let names: Vec<(&str, &str)> = stored
        .iter()
        .map(|(k, v)| (k.as_str(), v["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("a", "Ada Lovelace"), ("b", "Bo"), ("c", "Cy")]);
}
