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
