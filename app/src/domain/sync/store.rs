//! The Patchbay store as a destination: records kept in `store_records`, per tenant, install and
//! stream, in the recipe's collection. A row is its own sync state (content hash, generation), so
//! a batch is written with a handful of statements inside the transaction that also commits the
//! read position: a crash never leaves records written without the position that follows them.

use super::Item;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub written: i64,
    pub unchanged: i64,
    /// An `all_new` batch met a record already stored (and was upserted instead).
    pub collided: bool,
}

/// The insert of a batch's changed records: `$6` keys, `$7` records and `$8` hashes.
macro_rules! insert_changed {
    () => {
        "insert into store_records (tenant_id, install_id, stream, external_id, \
             collection, data, hash, generation) \
         select $1, $2, $3, k, $4, d, h, $5 \
         from unnest($6::text[], $7::jsonb[], $8::bytea[]) as u (k, d, h)"
    };
}

/// The plain insert of a first sync's records (public for the sync benchmark's yardstick, which
/// writes with it).
pub const INSERT: &str = insert_changed!();

/// The upsert of changed records (the same parameters).
const UPSERT: &str = concat!(
    insert_changed!(),
    " on conflict (tenant_id, install_id, stream, external_id) do update \
     set data = excluded.data, hash = excluded.hash, generation = excluded.generation, \
         collection = excluded.collection, updated_at = now()"
);

/// `<keys> cross join lateral (<one row of table by key>) s`: the rows of `table` (store_records
/// or synced_records) of install `$2`, tenant `$1`, stream `$3` whose keys are in the text array
/// `$4`, `columns` of each as `s`. One index lookup per key, whatever the planner believes about
/// the table: written as `external_id = any($4)` (or a join on `unnest`), a table loaded moments
/// ago and not yet analyzed (the planner estimates one row for the install) was read whole at
/// every batch — 46 ms per lookup at 200,000 records, against 0.08 ms this way. `offset 0` keeps
/// the planner from flattening the lateral subquery back into that join.
pub(crate) fn by_keys(table: &str, columns: &str) -> String {
    format!(
        "unnest($4::text[]) as k (key) cross join lateral ( \
             select {columns} from {table} \
             where tenant_id = $1 and install_id = $2 and stream = $3 and external_id = k.key \
             offset 0) s"
    )
}

/// Whether the store holds any record of the install's stream.
pub async fn holds_any(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from store_records \
         where tenant_id = $1 and install_id = $2 and stream = $3)",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .fetch_one(conn)
    .await
}

/// Writes the changed records of a batch (new ones, and those whose content hash differs) and
/// stamps the unchanged ones with the current generation, so the delete sweep keeps them.
///
/// With `all_new` (the stream held nothing when this read began: an install's first sync) the
/// lookup of what is there already is skipped, and the records go in by a plain insert: the
/// upsert's conflict check (a speculative insertion, one more index descent per row) was a third
/// of Postgres's time in writing a first sync (200,000 records: 4.2–5.8 s against 2.8–4.3 s, in
/// one session). A key the provider repeats in a later batch is then a unique violation: the
/// insert runs under a savepoint, and on that violation the batch is written again by the
/// upsert, and [`Written::collided`] tells the caller to upsert from then on.
#[expect(
    clippy::too_many_arguments,
    reason = "where the batch goes, each part named"
)]
pub async fn write(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    collection: &str,
    generation: i64,
    items: &[Item],
    all_new: bool,
) -> sqlx::Result<Written> {
    if items.is_empty() {
        return Ok(Written::default());
    }
    let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
    let existing: Vec<(String, Vec<u8>, i64)> = if all_new {
        Vec::new()
    } else {
        sqlx::query_as(&format!(
            "select s.external_id, s.hash, s.generation from {}",
            by_keys("store_records", "external_id, hash, generation")
        ))
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?
    };
    let known: HashMap<&str, (&[u8], i64)> = existing
        .iter()
        .map(|(k, h, g)| (k.as_str(), (h.as_slice(), *g)))
        .collect();
    let mut changed_keys = Vec::new();
    let mut changed_data = Vec::new();
    let mut changed_hashes: Vec<&[u8]> = Vec::new();
    let mut restamp = Vec::new();
    let mut unchanged = 0;
    for item in items {
        match known.get(item.key.as_str()) {
            Some((hash, stamped)) if *hash == item.hash.0.as_slice() => {
                unchanged += 1;
                if *stamped != generation {
                    restamp.push(item.key.as_str());
                }
            }
            _ => {
                changed_keys.push(item.key.as_str());
                changed_data.push(&item.data);
                changed_hashes.push(item.hash.0.as_slice());
            }
        }
    }
    let mut collided = false;
    if !changed_keys.is_empty() {
        // (A macro, not a closure: a closure's borrowed arguments make the future not `Send`
        // for every lifetime, which the worker pool's spawned task needs.)
        macro_rules! statement {
            ($sql:expr) => {
                sqlx::query($sql)
                    .bind(tenant)
                    .bind(install)
                    .bind(stream)
                    .bind(collection)
                    .bind(generation)
                    .bind(&changed_keys)
                    .bind(&changed_data)
                    .bind(&changed_hashes)
            };
        }
        if all_new {
            sqlx::query("savepoint store_write")
                .execute(&mut *conn)
                .await?;
            match statement!(INSERT).execute(&mut *conn).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                    sqlx::query("rollback to savepoint store_write")
                        .execute(&mut *conn)
                        .await?;
                    statement!(UPSERT).execute(&mut *conn).await?;
                    collided = true;
                }
                Err(err) => return Err(err),
            }
        } else {
            statement!(UPSERT).execute(&mut *conn).await?;
        }
    }
    if !restamp.is_empty() {
        sqlx::query(&format!(
            "update store_records set generation = $5 \
             where ctid = any (array (select s.ctid from {}))",
            by_keys("store_records", "ctid")
        ))
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .bind(&restamp)
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Written {
        written: changed_keys.len() as i64,
        unchanged,
        collided,
    })
}

/// How many of the stream's records predate `generation` (the sweep's candidates).
pub async fn stale(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    generation: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from store_records \
         where tenant_id = $1 and install_id = $2 and stream = $3 and generation < $4",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(generation)
    .fetch_one(conn)
    .await
}

/// Deletes up to `limit` records a full read did not see (older generations). Returns how many.
pub async fn sweep(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    generation: i64,
    limit: i64,
) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "delete from store_records where (tenant_id, install_id, stream, external_id) in ( \
             select tenant_id, install_id, stream, external_id from store_records \
             where tenant_id = $1 and install_id = $2 and stream = $3 and generation < $4 \
             limit $5)",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(generation)
    .bind(limit)
    .execute(conn)
    .await?
    .rows_affected())
}
