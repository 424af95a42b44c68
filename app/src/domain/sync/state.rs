//! `sync_state`: where each stream of an install stands, and the position of the sync reading
//! it now. The position belongs to one job (`run_job_id`): an attempt of that job resumes from
//! it; any other job starts the stream afresh.

use crate::domain::db::{self, Scope};
use crate::domain::queue::JobKind;
use connectors::engine::PageToken;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// One stream's read in this job.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRun {
    /// Where reading resumes (None: the first page).
    pub page: Option<PageToken>,
    /// The incremental cursor the read starts from; None for a full read.
    pub cursor: Option<String>,
    /// The greatest cursor value seen so far in this read.
    pub high_water: Option<String>,
    /// What records written now are stamped with (a full read begins a new generation).
    pub generation: i64,
    /// A full read: everything the source has, so the delete sweep may run at its end.
    pub full: bool,
    /// This job already finished the stream (a retry skips it).
    pub done: bool,
    /// The destination held nothing of the stream when this read began (set by the executor
    /// for the Patchbay store; not stored): every record is new.
    pub all_new: bool,
}

/// Where a job's read of `stream` begins: resumed when this job had begun it, else afresh — a
/// full read (new generation) for a full job, a stream without an incremental cursor, or one
/// never synced; an incremental read from the last completed sync's cursor otherwise.
pub async fn begin(
    pool: &PgPool,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    job: i64,
    kind: JobKind,
    incremental: bool,
) -> sqlx::Result<StreamRun> {
    let mut tx = db::begin(pool, Scope::System).await?;
    sqlx::query(
        "insert into sync_state (tenant_id, install_id, stream) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .execute(&mut *tx)
    .await?;
    type Row = (
        Option<String>,
        i64,
        Option<i64>,
        Option<String>,
        Option<sqlx::types::Json<PageToken>>,
        Option<String>,
        bool,
    );
    let (cursor, generation, run_job, run_kind, run_page, run_high_water, run_done): Row =
        sqlx::query_as(
            "select cursor, generation, run_job_id, run_kind, run_page, run_high_water, run_done \
             from sync_state where tenant_id = $1 and install_id = $2 and stream = $3 for update",
        )
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
    let run = if run_job == Some(job) {
        let full = run_kind.as_deref() == Some("full");
        StreamRun {
            page: run_page.map(|p| p.0),
            cursor: if full { None } else { cursor },
            high_water: run_high_water,
            generation,
            full,
            done: run_done,
            all_new: false,
        }
    } else {
        let full = kind == JobKind::Full || !incremental || cursor.is_none();
        let generation = generation + i64::from(full);
        let start = if full { None } else { cursor };
        sqlx::query(
            "update sync_state set run_job_id = $4, run_kind = $5, run_page = null, \
                 run_high_water = $6, run_done = false, generation = $7, updated_at = now() \
             where tenant_id = $1 and install_id = $2 and stream = $3",
        )
        .bind(tenant)
        .bind(install)
        .bind(stream)
        .bind(job)
        .bind(if full { "full" } else { "incremental" })
        .bind(&start)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        StreamRun {
            page: None,
            cursor: start.clone(),
            high_water: start,
            generation,
            full,
            done: false,
            all_new: false,
        }
    };
    tx.commit().await?;
    Ok(run)
}

/// Records the position after a written batch, in the batch's transaction.
pub async fn save_position(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    job: i64,
    next: Option<&PageToken>,
    high_water: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sync_state set run_page = $5, run_high_water = $6, updated_at = now() \
         where tenant_id = $1 and install_id = $2 and stream = $3 and run_job_id = $4",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(job)
    .bind(next.map(sqlx::types::Json))
    .bind(high_water)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stream is read to its end: its high-water mark becomes the cursor the next incremental
/// sync starts from.
pub async fn finish(
    conn: &mut PgConnection,
    tenant: Uuid,
    install: Uuid,
    stream: &str,
    job: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update sync_state set cursor = coalesce(run_high_water, cursor), run_page = null, \
             run_done = true, updated_at = now() \
         where tenant_id = $1 and install_id = $2 and stream = $3 and run_job_id = $4",
    )
    .bind(tenant)
    .bind(install)
    .bind(stream)
    .bind(job)
    .execute(conn)
    .await?;
    Ok(())
}
