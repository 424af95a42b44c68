//! `patchbay keys rotate`: every stored secret re-sealed under the vault's current key.

use crate::domain::db::{self, Scope};
use crate::domain::vault::{Aad, Keyring};
use sqlx::PgPool;
use uuid::Uuid;

/// Re-seals every connection's credentials, every app's secret, every alert rule's signing secret and every
/// install's webhook secret under the vault's current key
/// (`patchbay keys rotate`); values already under it are left alone, pending flows sealed under an
/// old key are dropped (they live ten minutes). Works in batches of 200 rows, each its own
/// transaction, so that rows are locked briefly while Patchbay keeps running. A value that does not
/// open is skipped and reported at the end (with its row id, never its content), after the others
/// are done. Returns how many values were re-sealed.
pub async fn rotate_keys(pool: &PgPool, vault: &Keyring) -> anyhow::Result<u64> {
    const BATCH: i64 = 200;
    let current = i32::from(vault.current_id());
    let mut count = 0u64;
    let mut unopened: Vec<String> = Vec::new();
    let mut skip: Vec<Uuid> = Vec::new();
    loop {
        let mut tx = db::begin(pool, Scope::System).await?;
        let rows: Vec<(Uuid, Uuid, Vec<u8>)> = sqlx::query_as(
            "select tenant_id, id, credentials_enc from connections \
             where credentials_enc is not null and get_byte(credentials_enc, 0) <> $1 \
             and id <> all($2) order by id limit $3 for update",
        )
        .bind(current)
        .bind(&skip)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            break;
        }
        for (tenant, id, sealed) in rows {
            match vault.reseal(&sealed, &Aad::connection(tenant, id)) {
                Ok(Some(new)) => {
                    sqlx::query(
                        "update connections set credentials_enc = $3 where tenant_id = $1 and id = $2",
                    )
                    .bind(tenant)
                    .bind(id)
                    .bind(new)
                    .execute(&mut *tx)
                    .await?;
                    count += 1;
                }
                Ok(None) => {}
                Err(err) => {
                    skip.push(id);
                    unopened.push(format!("connection {id} ({err})"));
                }
            }
        }
        tx.commit().await?;
    }
    let mut tx = db::begin(pool, Scope::System).await?;
    // Platform rows keyed by id alone, few enough for one transaction.
    for (table, column, aad, what) in [
        (
            "provider_apps",
            "client_secret_enc",
            Aad::provider_app as fn(Uuid) -> Aad,
            "provider app",
        ),
        ("alert_rules", "secret_enc", Aad::alert_rule, "alert rule"),
    ] {
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(&format!(
            "select id, {column} from {table} where get_byte({column}, 0) <> $1 for update"
        ))
        .bind(current)
        .fetch_all(&mut *tx)
        .await?;
        for (id, sealed) in rows {
            match vault.reseal(&sealed, &aad(id)) {
                Ok(Some(new)) => {
                    sqlx::query(&format!("update {table} set {column} = $2 where id = $1"))
                        .bind(id)
                        .bind(new)
                        .execute(&mut *tx)
                        .await?;
                    count += 1;
                }
                Ok(None) => {}
                Err(err) => unopened.push(format!("{what} {id} ({err})")),
            }
        }
    }
    sqlx::query(
        "delete from oauth_flows where verifier_enc is not null and get_byte(verifier_enc, 0) <> $1",
    )
    .bind(current)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let (hooks, unopened_hooks) = crate::domain::installs::hooks::rotate(pool, vault).await?;
    count += hooks;
    unopened.extend(
        unopened_hooks
            .into_iter()
            .map(|id| format!("install {id}'s webhook secret")),
    );
    if !unopened.is_empty() {
        anyhow::bail!(
            "re-encrypted {count} stored secrets, but {} did not open with these keys (is a key missing from PATCHBAY_OLD_SECRET_KEYS?): {}",
            unopened.len(),
            unopened.join(", ")
        );
    }
    Ok(count)
}
