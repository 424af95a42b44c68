//! Replaying quarantined records after a fix: an admin marks a run's quarantined records
//! (`replay_requested_at`, see `admin::repair`) and queues a sync; the attempt that runs next
//! writes those records again, through the same batch writer as any page, before it reads the
//! source. Each is mapped again from its source record with the install's current mapping (the
//! fix may be there). A record refused once more is quarantined again, under this run, with the
//! new reason; either way the old row is marked replayed in the batch's transaction.

use super::run::{flush, Batch, Plan};
use super::{state, Engine, Failure, Item};
use crate::domain::db::{self, Scope};
use crate::domain::queue::ClaimedJob;
use crate::domain::runs;
use crate::model::install::EventKind;
use connectors::ContentHash;

/// Most quarantined records replayed by one attempt; the rest wait for the next.
const MAX_REPLAY: i64 = 10_000;
/// Records per replayed batch.
const REPLAY_BATCH: usize = 100;

/// (id, stream, external id, source record).
type Row = (i64, String, String, serde_json::Value);

/// Replays what waits for it, stream by stream.
pub(super) async fn replay(
    engine: &Engine,
    job: &ClaimedJob,
    run_id: i64,
    plan: &mut Plan,
) -> Result<(), Failure> {
    let tenant = job.job.tenant;
    let install = plan.install.id;
    let mut tx = db::begin(&engine.pool, Scope::System).await?;
    let rows: Vec<Row> = sqlx::query_as(
        "select id, stream, external_id, data from quarantined_records \
         where tenant_id = $1 and install_id = $2 \
           and replay_requested_at is not null and replayed_at is null \
           and data <> '{\"truncated\": true}'::jsonb \
         order by stream, id limit $3",
    )
    .bind(tenant)
    .bind(install)
    .bind(MAX_REPLAY)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    runs::event(
        &mut tx,
        tenant,
        run_id,
        EventKind::Replayed,
        &format!("Replaying {} quarantined records", rows.len()),
    )
    .await?;
    tx.commit().await?;

    let mut written = 0usize;
    for group in rows.chunk_by(|a, b| a.1 == b.1) {
        let stream = group[0].1.clone();
        let generation = generation(engine, tenant, install, &stream).await?;
        let mut run = state::StreamRun {
            page: None,
            cursor: None,
            high_water: None,
            generation,
            full: false,
            done: false,
            all_new: false,
        };
        for chunk in group.chunks(REPLAY_BATCH) {
            let batch = batch_of(plan, chunk);
            written += batch.items.len();
            flush(
                engine, job, run_id, plan, &stream, &stream, &mut run, &batch,
            )
            .await?;
        }
    }
    let mut tx = db::begin(&engine.pool, Scope::System).await?;
    runs::event(
        &mut tx,
        tenant,
        run_id,
        EventKind::Replayed,
        &format!(
            "Replayed {} quarantined records: {written} sent to the destination, {} refused by the mapping again",
            rows.len(),
            rows.len() - written
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The stream's current generation (what records written now are stamped with).
async fn generation(
    engine: &Engine,
    tenant: uuid::Uuid,
    install: uuid::Uuid,
    stream: &str,
) -> sqlx::Result<i64> {
    let mut tx = db::begin(&engine.pool, Scope::System).await?;
    let generation: Option<i64> = sqlx::query_scalar(
        "select generation from sync_state where tenant_id = $1 and install_id = $2 and stream = $3",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(generation.unwrap_or(0))
}

fn batch_of(plan: &Plan, rows: &[Row]) -> Batch {
    let mut batch = Batch::default();
    let mut sources = std::collections::HashMap::new();
    for (id, _, key, source) in rows {
        batch.replayed.push(*id);
        match plan.mapping.apply(source) {
            Ok(data) => {
                sources.insert(key.clone(), source.clone());
                batch.items.push(Item {
                    key: key.clone(),
                    hash: ContentHash::of(&data),
                    data,
                });
            }
            Err(err) => batch.refused.push((
                key.clone(),
                source.clone(),
                format!("The field mapping failed: {err}."),
                "mapping",
            )),
        }
    }
    batch.sources = Some(sources);
    batch
}
