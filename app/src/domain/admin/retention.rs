//! Retention of the run log: attempts that ended longer ago than the configured age are deleted
//! with their events (and the hourly failure counts of the hours gone; resolved alerts and settled
//! alert deliveries as old), in batches of a few thousand rows, each its own short transaction, so that
//! no lock is held for long and the workers writing new runs never wait behind the pruning.

use crate::domain::db::{self, Scope};
use sqlx::PgPool;
use std::time::Duration;

/// Attempts deleted per statement.
pub const BATCH: i64 = 2000;

/// Deletes attempts that finished more than `keep` ago (and their events, by cascade), batch by
/// batch, at most `max_batches` of them. Returns how many attempts went.
pub async fn prune(pool: &PgPool, keep: Duration, max_batches: usize) -> sqlx::Result<u64> {
    let mut total = 0;
    for _ in 0..max_batches {
        let mut tx = db::begin(pool, Scope::System).await?;
        // `skip locked`: a row someone else holds (a concurrent pruner) is left for later.
        let gone = sqlx::query(
            "delete from sync_runs where (tenant_id, id) in ( \
                 select tenant_id, id from sync_runs \
                 where finished_at < now() - make_interval(secs => $1) \
                 order by finished_at limit $2 for update skip locked)",
        )
        .bind(keep.as_secs_f64())
        .bind(BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        total += gone;
        if gone < BATCH as u64 {
            break;
        }
    }
    // The hourly failure counts go with the hours the run log no longer holds whole.
    let mut tx = db::begin(pool, Scope::System).await?;
    sqlx::query(
        "delete from failure_counts \
         where bucket < date_trunc('hour', now() - make_interval(secs => $1), 'UTC')",
    )
    .bind(keep.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "delete from failure_counts_daily \
         where bucket < date_trunc('day', now() - make_interval(secs => $1), 'UTC')",
    )
    .bind(keep.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    // Alerts resolved that long ago go with their deliveries; so do settled deliveries.
    sqlx::query("delete from alerts where resolved_at < now() - make_interval(secs => $1)")
        .bind(keep.as_secs_f64())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "delete from alert_deliveries \
         where state <> 'pending' and created_at < now() - make_interval(secs => $1)",
    )
    .bind(keep.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(total)
}
