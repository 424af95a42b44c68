//! A provider as the destination (the sandbox CRM, HubSpot): records written over its API, one
//! by one, with an idempotency key made from the record's identity and content, so that a batch
//! redone after a crash (its writes sent, its commit lost) replays at the provider instead of
//! creating twins. `synced_records` remembers what was written where.

use super::Item;
use connectors::engine::{Destination, WriteOp};
use connectors::error::{ConnectorError, ErrorClass};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// A record the destination took, to remember in `synced_records`.
#[derive(Debug, Clone)]
pub struct Done {
    pub key: String,
    pub hash: [u8; 32],
    pub destination_id: Option<String>,
}

/// What writing a batch did: the records written, those refused for good (with why), those
/// unchanged, and the error that stopped it early, if any (the rest is redone on retry).
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<Done>,
    /// (source key, why).
    pub refused: Vec<(String, String)>,
    pub unchanged: Vec<String>,
    pub stopped: Option<ConnectorError>,
}

/// The hash and destination id of each of `keys` that was written before.
pub async fn known(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    keys: &[&str],
) -> sqlx::Result<HashMap<String, (Vec<u8>, Option<String>)>> {
    let rows: Vec<(String, Vec<u8>, Option<String>)> = sqlx::query_as(&format!(
        "select s.external_id, s.hash, s.destination_id from {}",
        super::store::by_keys("synced_records", "external_id, hash, destination_id")
    ))
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(keys)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(k, h, d)| (k, (h, d))).collect())
}

/// The same for the same record with the same content: the provider replays a write it has seen.
fn idempotency_key(install: Uuid, stream: &str, item: &Item) -> String {
    let mut hasher = Sha256::new();
    hasher.update(install.as_bytes());
    hasher.update(stream.as_bytes());
    hasher.update([0]);
    hasher.update(item.key.as_bytes());
    hasher.update([0]);
    hasher.update(item.hash.0);
    format!("pb-{}", &hex::encode(hasher.finalize())[..40])
}

/// A refusal that concerns this record only (its data): quarantine it and go on.
fn refuses_record(err: &ConnectorError) -> bool {
    err.class == ErrorClass::Permanent && matches!(err.status, Some(400 | 409 | 413 | 422))
}

/// Writes the changed records of a batch (`known` is what [`known`] found for its keys), in
/// order, stopping at the first error that is not about one record's data. No database
/// connection is held meanwhile.
pub async fn write(
    destination: &dyn Destination,
    install: Uuid,
    (source_stream, destination_stream): (&str, &str),
    known: &HashMap<String, (Vec<u8>, Option<String>)>,
    items: &[Item],
) -> Outcome {
    let mut out = Outcome::default();
    for item in items {
        let existing = known.get(&item.key);
        if existing.is_some_and(|(hash, _)| hash.as_slice() == item.hash.0.as_slice()) {
            out.unchanged.push(item.key.clone());
            continue;
        }
        let key = idempotency_key(install, source_stream, item);
        let update_id = existing.and_then(|(_, id)| id.clone());
        let mut result = match &update_id {
            Some(id) => {
                let op = WriteOp::Update {
                    id: id.clone(),
                    data: item.data.clone(),
                };
                destination.write(destination_stream, &op, &key).await
            }
            None => Err(ConnectorError::permanent("no id yet").with_status(404)),
        };
        // Not written before, or deleted at the destination since: create it.
        if matches!(&result, Err(e) if e.status == Some(404)) {
            let op = WriteOp::Create {
                data: item.data.clone(),
            };
            result = destination.write(destination_stream, &op, &key).await;
        }
        match result {
            Ok(written) => out.done.push(Done {
                key: item.key.clone(),
                hash: item.hash.0,
                destination_id: written.id.or(update_id),
            }),
            Err(err) if refuses_record(&err) => out.refused.push((item.key.clone(), err.message)),
            Err(err) => {
                out.stopped = Some(err);
                break;
            }
        }
    }
    out
}

/// Remembers what a batch wrote and stamps the unchanged records with the generation, in the
/// batch's transaction.
pub async fn remember(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    generation: i64,
    outcome: &Outcome,
) -> sqlx::Result<()> {
    if !outcome.done.is_empty() {
        let keys: Vec<&str> = outcome.done.iter().map(|d| d.key.as_str()).collect();
        let hashes: Vec<&[u8]> = outcome.done.iter().map(|d| d.hash.as_slice()).collect();
        let ids: Vec<Option<&str>> = outcome
            .done
            .iter()
            .map(|d| d.destination_id.as_deref())
            .collect();
        sqlx::query(
            "insert into synced_records (tenant_id, install_id, stream, external_id, hash, \
                 destination_id, generation) \
             select $1, $2, $3, k, h, d, $4 from unnest($5::text[], $6::bytea[], $7::text[]) as u (k, h, d) \
             on conflict (tenant_id, install_id, stream, external_id) do update \
             set hash = excluded.hash, destination_id = coalesce(excluded.destination_id, synced_records.destination_id), \
                 generation = excluded.generation",
        )
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .bind(generation)
        .bind(&keys)
        .bind(&hashes)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    }
    if !outcome.unchanged.is_empty() {
        sqlx::query(&format!(
            "update synced_records set generation = $5 \
             where ctid = any (array (select s.ctid from {})) and generation <> $5",
            super::store::by_keys("synced_records", "ctid")
        ))
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .bind(&outcome.unchanged)
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Up to `limit` records a full read did not see: (source key, destination id).
pub async fn stale(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    generation: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, Option<String>)>> {
    sqlx::query_as(
        "select external_id, destination_id from synced_records \
         where tenant_id = $1 and install_id = $2 and stream = $3 and generation < $4 \
         order by external_id limit $5",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(generation)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Forgets records removed at the destination (or that it cannot remove).
pub async fn forget(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    keys: &[String],
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "delete from synced_records where ctid = any (array (select s.ctid from {}))",
        super::store::by_keys("synced_records", "ctid")
    ))
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(keys)
    .execute(conn)
    .await?;
    Ok(())
}
