//! One attempt of a sync: the install's plan, its connections, and each stream read, mapped and
//! written batch by batch (see the module docs of `sync`).

use super::{provider, state, store, Control, Engine, Failure, Item, Stop};
use crate::domain::connections::refresh::{self, UseError};
use crate::domain::db::{self, Scope};
use crate::domain::installs::{self, Install};
use crate::domain::queue::ClaimedJob;
use crate::domain::rates::{self, PgBudget};
use crate::domain::runs::{self, Counts};
use crate::model::install::{EventKind, InstallStatus};
use connectors::engine::{
    later, Connection, Destination, Page, PageToken, ReadPosition, Source, SpecDestination,
    SpecSource,
};
use connectors::error::ErrorClass;
use connectors::mapping::{CompiledMapping, Mapping};
use connectors::spec::ProviderSpec;
use connectors::ContentHash;
use sqlx::PgConnection;
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Largest source record kept with a quarantine entry (for replay); bigger ones keep a stub.
const MAX_QUARANTINE_BYTES: usize = 64 * 1024;
/// Quarantine events per batch before they are summed up.
const QUARANTINE_EVENTS: usize = 20;
/// Pages the reader may fetch ahead of the writer (a batch's worth, so that reading goes on
/// while a batch commits).
const READ_AHEAD: usize = 8;
/// Most records per batch written to a provider destination.
const PROVIDER_BATCH: usize = 100;
/// Records swept per statement (short transactions).
const SWEEP_BATCH: i64 = 5000;

/// Where records go.
enum Sink {
    Store {
        collection: String,
    },
    Provider {
        destination: SpecDestination,
        stream: String,
        budget: Arc<PgBudget>,
        connection: Uuid,
    },
}

/// What the attempt works with.
pub(super) struct Plan {
    pub(super) install: Install,
    pub(super) spec: Arc<ProviderSpec>,
    pub(super) mapping: CompiledMapping,
    source: SpecSource,
    source_connection: Uuid,
    budget: Arc<PgBudget>,
    sink: Sink,
}

/// The attempt: every stream of the install, in order.
pub(super) async fn sync(
    engine: &Engine,
    job: &ClaimedJob,
    run_id: i64,
    control: &Control,
) -> Result<(), Failure> {
    let mut plan = plan(engine, job).await?;
    // Quarantined records an admin asked to replay go first: the fix they wait for is in.
    super::replay::replay(engine, job, run_id, &mut plan).await?;
    for stream in plan.install.streams.clone() {
        if let Some(stop) = control.stopped() {
            return Err(Failure::Stopped(stop));
        }
        sync_stream(engine, job, run_id, control, &mut plan, &stream).await?;
    }
    Ok(())
}

async fn plan(engine: &Engine, job: &ClaimedJob) -> Result<Plan, Failure> {
    let tenant = job.job.tenant;
    let install = installs::load_for_sync(&engine.pool, tenant, job.install)
        .await?
        .ok_or_else(|| Failure::Permanent("The install no longer exists.".into()))?;
    if install.status != InstallStatus::Active {
        return Err(Failure::Stopped(Stop::Cancel));
    }
    let recipe = &install.recipe;
    let spec = engine.connect.spec(&recipe.source_provider).map_err(|_| {
        Failure::Permanent(format!(
            "Patchbay does not know the provider {}.",
            recipe.source_provider
        ))
    })?;
    let spec = Arc::new(spec.clone());
    let mapping: Mapping = serde_json::to_value(&install.mapping)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            Failure::Permanent(format!("The install's field mapping cannot be read: {e}."))
        })?;
    let mapping = mapping.compile().map_err(|e| {
        Failure::Permanent(format!("The install's field mapping is not valid: {e}."))
    })?;
    let source_connection = install
        .source_connection
        .ok_or_else(|| Failure::Permanent("The install has no source connection.".into()))?;
    let conn = connection(engine, tenant, source_connection, &install).await?;
    let budget = budget_of(engine, tenant, source_connection, &conn.spec).await?;
    let source = SpecSource::new(conn, engine.connect.http.clone()).with_budget(budget.clone());
    let sink = if install.to_store() {
        Sink::Store {
            collection: recipe.destination_stream.clone(),
        }
    } else {
        let id = install.destination_connection.ok_or_else(|| {
            Failure::Permanent("The install has no destination connection.".into())
        })?;
        let conn = connection(engine, tenant, id, &install).await?;
        if conn
            .spec
            .stream(&recipe.destination_stream)
            .and_then(|s| s.write.as_ref())
            .is_none()
        {
            return Err(Failure::Permanent(format!(
                "{} cannot write to {}.",
                conn.spec.name, recipe.destination_stream
            )));
        }
        let budget = budget_of(engine, tenant, id, &conn.spec).await?;
        Sink::Provider {
            destination: SpecDestination::new(conn, engine.connect.http.clone())
                .with_budget(budget.clone()),
            stream: recipe.destination_stream.clone(),
            budget,
            connection: id,
        }
    };
    Ok(Plan {
        install,
        spec,
        mapping,
        source,
        source_connection,
        budget,
        sink,
    })
}

/// Usable credentials for a connection, with the install's stream inputs among its variables.
async fn connection(
    engine: &Engine,
    tenant: Uuid,
    id: Uuid,
    install: &Install,
) -> Result<Connection, Failure> {
    match refresh::credentials(&engine.pool, &engine.vault, &engine.connect, tenant, id).await {
        Ok(mut conn) => {
            conn.vars
                .extend(install.inputs.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(conn)
        }
        Err(err) => Err(use_failure(err)),
    }
}

fn use_failure(err: UseError) -> Failure {
    match err {
        UseError::NotFound => Failure::Permanent("A connection the install uses is gone.".into()),
        UseError::Internal => Failure::Internal("credentials could not be loaded".into()),
        UseError::Provider(err) if err.class == ErrorClass::Auth => Failure::Auth(format!(
            "A connection this integration uses needs reconnecting: {}",
            err.message
        )),
        UseError::Provider(err) => Failure::Provider(err),
    }
}

/// The rate budget of a connection: its own bucket and its app's.
async fn budget_of(
    engine: &Engine,
    tenant: Uuid,
    connection: Uuid,
    spec: &ProviderSpec,
) -> Result<Arc<PgBudget>, Failure> {
    let mut tx = db::begin(&engine.pool, Scope::Tenant { tenant, user: None }).await?;
    let app: Option<Option<Uuid>> = sqlx::query_scalar(
        "select provider_app_id from connections where tenant_id = $1 and id = $2",
    )
    .bind(tenant)
    .bind(connection)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let buckets = rates::buckets(spec, connection, app.flatten());
    Ok(Arc::new(PgBudget::new(
        engine.pool.clone(),
        &buckets,
        engine.settings.max_rate_wait,
    )))
}

/// Reads pages from `position` on, one ahead of the writer, until the stream ends, an error, or
/// the writer hangs up. A 401 gets one refresh of the credentials and one more try.
#[expect(
    clippy::too_many_arguments,
    reason = "the reader task's whole state, moved into it once"
)]
async fn read_ahead(
    engine: Engine,
    tenant: Uuid,
    connection: Uuid,
    mut source: SpecSource,
    budget: Arc<PgBudget>,
    stream: String,
    mut position: ReadPosition,
    pages: mpsc::Sender<Result<Page, Failure>>,
) {
    loop {
        let mut result = source.read_page(&stream, &position).await;
        if matches!(&result, Err(e) if e.class == ErrorClass::Auth) {
            let old = source.connection().clone();
            match refresh::after_unauthorized(
                &engine.pool,
                &engine.vault,
                &engine.connect,
                tenant,
                connection,
                &old,
            )
            .await
            {
                Ok(mut fresh) => {
                    fresh.vars = old.vars.clone();
                    source = SpecSource::new(fresh, engine.connect.http.clone())
                        .with_budget(budget.clone());
                    result = source.read_page(&stream, &position).await;
                }
                Err(err) => {
                    // The refresh was refused: the connection now needs reconnecting.
                    let _ = pages.send(Err(use_failure(err))).await;
                    return;
                }
            }
        }
        let next = match &result {
            Ok(page) => page.next.clone(),
            Err(_) => None,
        };
        let last = result.is_err() || next.is_none();
        if pages.send(result.map_err(Failure::Provider)).await.is_err() || last {
            return;
        }
        position.page = next;
    }
}

/// A record the mapping or the destination refused: (key, source record, reason, stage), where
/// the stage says which refused it (`mapping` or `destination`).
pub(super) type Refused = (String, serde_json::Value, String, &'static str);

/// A batch gathered from pages (or from quarantined records, for a replay), ready to write.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) items: Vec<Item>,
    pub(super) refused: Vec<Refused>,
    pub(super) pages: i32,
    pub(super) read: i64,
    /// Page events: "Read page 3: 200 customers", with the request's summary.
    pub(super) notes: Vec<(String, serde_json::Value)>,
    /// For a replay: the quarantined rows the batch writes again, marked replayed when it
    /// commits. A replay batch leaves the stream's read position alone.
    pub(super) replayed: Vec<i64>,
    /// The source records of `items`, by key, kept (`Some`) for a destination that may refuse
    /// some of them: they are quarantined as read, so that a replay maps them again.
    pub(super) sources: Option<std::collections::HashMap<String, serde_json::Value>>,
    /// Where each key sits in `items`.
    index: std::collections::HashMap<String, usize>,
    next: Option<PageToken>,
    high_water: Option<String>,
    ended: bool,
}

impl Batch {
    fn add(&mut self, plan: &Plan, stream: &str, page: Page, page_number: i32) {
        self.pages += 1;
        self.read += page.records.len() as i64;
        let detail = match &page.exchange {
            Some(exchange) => serde_json::json!({ "request": exchange }),
            None => serde_json::json!({}),
        };
        self.notes.push((
            format!("Read page {page_number}: {} {stream}", page.records.len()),
            detail,
        ));
        if let Some(mark) = page.high_water {
            if self.high_water.as_deref().is_none_or(|hw| later(&mark, hw)) {
                self.high_water = Some(mark);
            }
        }
        for record in page.records {
            match plan.mapping.apply(&record.data) {
                Ok(data) => {
                    if let Some(sources) = &mut self.sources {
                        sources.insert(record.key.clone(), record.data.clone());
                    }
                    let hash = ContentHash::of(&data);
                    let item = Item {
                        key: record.key,
                        data,
                        hash,
                    };
                    // A key seen twice in a batch (a provider repeating a record across
                    // pages): the later version wins.
                    match self.index.get(&item.key) {
                        Some(&at) => self.items[at] = item,
                        None => {
                            self.index.insert(item.key.clone(), self.items.len());
                            self.items.push(item);
                        }
                    }
                }
                Err(err) => self.refused.push((
                    record.key,
                    record.data,
                    format!("The field mapping failed: {err}."),
                    "mapping",
                )),
            }
        }
        self.ended = page.next.is_none();
        self.next = page.next;
    }
}

async fn sync_stream(
    engine: &Engine,
    job: &ClaimedJob,
    run_id: i64,
    control: &Control,
    plan: &mut Plan,
    stream: &str,
) -> Result<(), Failure> {
    let tenant = job.job.tenant;
    let install = plan.install.id;
    let spec_stream = plan
        .spec
        .stream(stream)
        .ok_or_else(|| Failure::Permanent(format!("{} has no stream {stream}.", plan.spec.name)))?;
    let incremental = spec_stream.incremental.is_some();
    let mut run = state::begin(
        &engine.pool,
        tenant,
        install,
        stream,
        job.job.id,
        job.kind,
        incremental,
    )
    .await?;
    if run.done {
        return Ok(());
    }
    if matches!(plan.sink, Sink::Store { .. }) {
        let mut tx = db::begin(&engine.pool, Scope::System).await?;
        run.all_new = !store::holds_any(&mut tx, tenant, install, stream).await?;
        tx.commit().await?;
    }
    let label = if spec_stream.label.is_empty() {
        stream.to_owned()
    } else {
        spec_stream.label.to_lowercase()
    };
    {
        let mut tx = db::begin(&engine.pool, Scope::System).await?;
        let how = if run.page.is_some() {
            "Resuming"
        } else if run.full {
            "Reading all"
        } else {
            "Reading changed"
        };
        runs::progress(
            &mut tx,
            tenant,
            run_id,
            Counts::default(),
            &format!("{how} {label}"),
        )
        .await?;
        runs::event(
            &mut tx,
            tenant,
            run_id,
            EventKind::Page,
            &format!("{how} {label}"),
        )
        .await?;
        tx.commit().await?;
    }
    let (tx_pages, mut rx_pages) = mpsc::channel(READ_AHEAD);
    let reader = tokio::spawn(read_ahead(
        engine.clone(),
        tenant,
        plan.source_connection,
        plan.source.clone(),
        plan.budget.clone(),
        stream.to_owned(),
        ReadPosition {
            cursor: run.cursor.clone(),
            page: run.page.clone(),
        },
        tx_pages,
    ));
    // The reader stops when the receiver goes, whichever way this function returns.
    let _reader = AbortOnDrop(reader);
    let sink_is_store = matches!(plan.sink, Sink::Store { .. });
    // A provider destination takes records one request at a time: smaller batches show progress
    // sooner and leave less to redo after a crash.
    let batch_limit = if sink_is_store {
        engine.settings.batch_records
    } else {
        engine.settings.batch_records.min(PROVIDER_BATCH)
    };
    let mut page_number = 0;
    let mut seen = 0i64;
    loop {
        let mut batch = Batch {
            high_water: run.high_water.clone(),
            sources: (!sink_is_store).then(Default::default),
            ..Batch::default()
        };
        let mut failed: Option<Failure> = None;
        while batch.items.len() + batch.refused.len() < batch_limit && !batch.ended {
            match rx_pages.recv().await {
                Some(Ok(page)) => {
                    page_number += 1;
                    batch.add(plan, &label, page, page_number);
                }
                Some(Err(err)) => {
                    failed = Some(err);
                    break;
                }
                None => {
                    failed = Some(Failure::Internal("the page reader stopped".into()));
                    break;
                }
            }
        }
        if batch.pages > 0 {
            seen += batch.read;
            flush(engine, job, run_id, plan, stream, &label, &mut run, &batch).await?;
            run.high_water = batch.high_water.clone();
            run.page = batch.next.clone();
        }
        if let Some(failure) = failed {
            if let Failure::Provider(err) = &failure {
                if let ErrorClass::RateLimited { retry_after } = err.class {
                    let wait = retry_after.unwrap_or(std::time::Duration::from_secs(30));
                    let _ = plan.budget.block_for(wait).await;
                }
            }
            return Err(failure);
        }
        if batch.ended {
            break;
        }
        if let Some(stop) = control.stopped() {
            return Err(Failure::Stopped(stop));
        }
    }
    if run.full {
        sweep(engine, job, run_id, plan, stream, &label, &run, seen).await?;
    }
    let mut tx = db::begin(&engine.pool, Scope::System).await?;
    fence(&mut tx, engine, job).await?;
    state::finish(&mut tx, tenant, install, stream, job.job.id).await?;
    tx.commit().await?;
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease inside a batch's transaction, or fails it when the lease is gone: what
/// keeps a worker that lost its job from writing after the one that has it now. A committed batch
/// is progress: the job's idle attempts start counting again from zero.
async fn fence(conn: &mut PgConnection, engine: &Engine, job: &ClaimedJob) -> Result<(), Failure> {
    let held = sqlx::query(
        "update sync_jobs set lease_until = greatest(lease_until, now() + $4 * interval '1 millisecond'), \
             idle_attempts = 0 \
         where tenant_id = $1 and id = $2 and lease_token = $3 and state = 'running'",
    )
    .bind(job.job.tenant)
    .bind(job.job.id)
    .bind(job.lease_token)
    .bind(engine.settings.lease.as_millis() as f64)
    .execute(conn)
    .await?
    .rows_affected();
    if held == 1 {
        Ok(())
    } else {
        Err(Failure::Stopped(Stop::LeaseLost))
    }
}

/// Quarantines refused records, in the batch's transaction, and notes them in the timeline.
async fn quarantine(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    run_id: i64,
    stream: &str,
    refused: &[Refused],
) -> sqlx::Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let tenant = job.job.tenant;
    let keys: Vec<&str> = refused.iter().map(|r| r.0.as_str()).collect();
    let data: Vec<serde_json::Value> = refused
        .iter()
        .map(|r| {
            let fits = serde_json::to_vec(&r.1).is_ok_and(|b| b.len() <= MAX_QUARANTINE_BYTES);
            if fits {
                r.1.clone()
            } else {
                serde_json::json!({ "truncated": true })
            }
        })
        .collect();
    let reasons: Vec<&str> = refused.iter().map(|r| r.2.as_str()).collect();
    let stages: Vec<&str> = refused.iter().map(|r| r.3).collect();
    sqlx::query(
        "insert into quarantined_records (tenant_id, install_id, run_id, stream, external_id, reason, data, stage) \
         select $1, $2, $3, $4, k, r, d, s \
         from unnest($5::text[], $6::text[], $7::jsonb[], $8::text[]) as u (k, r, d, s)",
    )
    .bind(tenant)
    .bind(job.install)
    .bind(run_id)
    .bind(stream)
    .bind(&keys)
    .bind(&reasons)
    .bind(&data)
    .bind(&stages)
    .execute(&mut *conn)
    .await?;
    let mut notes: Vec<String> = refused
        .iter()
        .take(QUARANTINE_EVENTS)
        .map(|(key, _, reason, _)| format!("Quarantined {key}: {reason}"))
        .collect();
    if refused.len() > QUARANTINE_EVENTS {
        notes.push(format!(
            "…and {} more records quarantined",
            refused.len() - QUARANTINE_EVENTS
        ));
    }
    let notes: Vec<(String, serde_json::Value)> = notes
        .into_iter()
        .map(|n| (n, serde_json::json!({})))
        .collect();
    runs::events(conn, tenant, run_id, EventKind::Quarantined, &notes).await
}

/// Writes one batch and commits it with the position after it.
#[expect(
    clippy::too_many_arguments,
    reason = "the attempt's parts, each named at the call"
)]
pub(super) async fn flush(
    engine: &Engine,
    job: &ClaimedJob,
    run_id: i64,
    plan: &mut Plan,
    stream: &str,
    label: &str,
    run: &mut state::StreamRun,
    batch: &Batch,
) -> Result<(), Failure> {
    let tenant = job.job.tenant;
    let install = plan.install.id;
    let mut counts = Counts {
        pages: batch.pages,
        read: batch.read,
        ..Counts::default()
    };
    let mut refused = batch.refused.clone();
    let mut stopped = None;
    let mut provider_outcome = None;
    if let Sink::Provider {
        destination,
        stream: target,
        budget,
        connection,
    } = &mut plan.sink
    {
        let keys: Vec<&str> = batch.items.iter().map(|i| i.key.as_str()).collect();
        let known = {
            let mut tx = db::begin(&engine.pool, Scope::System).await?;
            let known = provider::known(&mut tx, tenant, install, stream, &keys).await?;
            tx.commit().await?;
            known
        };
        let mut outcome = provider::write(
            destination,
            install,
            (stream, target.as_str()),
            &known,
            &batch.items,
        )
        .await;
        // A 401 from the destination: refresh once and write the rest again.
        if matches!(&outcome.stopped, Some(e) if e.class == ErrorClass::Auth) {
            let old = destination_connection(destination);
            match refresh::after_unauthorized(
                &engine.pool,
                &engine.vault,
                &engine.connect,
                tenant,
                *connection,
                &old,
            )
            .await
            {
                Ok(mut fresh) => {
                    fresh.vars = old.vars.clone();
                    *destination = SpecDestination::new(fresh, engine.connect.http.clone())
                        .with_budget(budget.clone());
                    let settled: std::collections::HashSet<&str> = outcome
                        .done
                        .iter()
                        .map(|d| d.key.as_str())
                        .chain(outcome.unchanged.iter().map(String::as_str))
                        .chain(outcome.refused.iter().map(|(k, _)| k.as_str()))
                        .collect();
                    let rest: Vec<Item> = batch
                        .items
                        .iter()
                        .filter(|i| !settled.contains(i.key.as_str()))
                        .cloned()
                        .collect();
                    let more = provider::write(
                        destination,
                        install,
                        (stream, target.as_str()),
                        &known,
                        &rest,
                    )
                    .await;
                    outcome.done.extend(more.done);
                    outcome.unchanged.extend(more.unchanged);
                    outcome.refused.extend(more.refused);
                    outcome.stopped = more.stopped;
                }
                Err(err) => return Err(use_failure(err)),
            }
        }
        for (key, reason) in &outcome.refused {
            if let Some(item) = batch.items.iter().find(|i| &i.key == key) {
                let source = batch
                    .sources
                    .as_ref()
                    .and_then(|s| s.get(key))
                    .unwrap_or(&item.data);
                refused.push((
                    item.key.clone(),
                    source.clone(),
                    reason.clone(),
                    "destination",
                ));
            }
        }
        counts.written = outcome.done.len() as i64;
        counts.unchanged = outcome.unchanged.len() as i64;
        stopped = outcome.stopped.take();
        provider_outcome = Some(outcome);
    }
    counts.failed = refused.len() as i64;
    let mut tx = db::begin(&engine.pool, Scope::System).await?;
    // This transaction's statements look rows up by key in tables that grow from nothing while
    // the sync runs. A plan cached when they were empty (a sequential scan) would make every
    // batch read the whole table: planned afresh, each statement sees their size and uses the
    // primary key (measured: 200,000 records in 307 s with cached plans).
    //
    // A batch into the Patchbay store commits asynchronously: its records, the read position
    // after them and the run's counts are one transaction in one database, so a Postgres crash
    // that loses the last batches' commits loses all of them together, and the run resumes from
    // the position before them and writes them again. Nothing outside Postgres has seen them
    // (the job's end, which reports the run, commits synchronously, and flushes every batch
    // before it). A provider destination has been written already when its batch commits: that
    // commit (what was written, and where) stays synchronous.
    let synchronous = if matches!(plan.sink, Sink::Store { .. }) {
        "off"
    } else {
        "on"
    };
    sqlx::query(
        "select set_config('plan_cache_mode', 'force_custom_plan', true), \
                set_config('synchronous_commit', $1, true)",
    )
    .bind(synchronous)
    .execute(&mut *tx)
    .await?;
    fence(&mut tx, engine, job).await?;
    match (&plan.sink, &provider_outcome) {
        (Sink::Store { collection }, _) => {
            let written = store::write(
                &mut tx,
                tenant,
                install,
                stream,
                collection,
                run.generation,
                &batch.items,
                run.all_new,
            )
            .await?;
            counts.written = written.written;
            counts.unchanged = written.unchanged;
            if written.collided {
                // A record the provider repeated: the rest of the read upserts.
                run.all_new = false;
            }
        }
        (Sink::Provider { .. }, Some(outcome)) => {
            provider::remember(&mut tx, tenant, install, stream, run.generation, outcome).await?;
        }
        (Sink::Provider { .. }, None) => {}
    }
    quarantine(&mut tx, job, run_id, stream, &refused).await?;
    if !batch.replayed.is_empty() && stopped.is_none() {
        // Refused again, they were quarantined again above (under this run).
        sqlx::query(
            "update quarantined_records set replayed_at = now() \
             where tenant_id = $1 and id = any($2) and replayed_at is null",
        )
        .bind(tenant)
        .bind(&batch.replayed)
        .execute(&mut *tx)
        .await?;
    }
    if stopped.is_none() && batch.replayed.is_empty() {
        // The position moves only when the whole batch is done: on a stop the pages are read
        // again, and what was written is found unchanged.
        state::save_position(
            &mut tx,
            tenant,
            install,
            stream,
            job.job.id,
            batch.next.as_ref(),
            batch.high_water.as_deref(),
        )
        .await?;
    }
    let phase = if !batch.replayed.is_empty() {
        format!("Replaying quarantined {label}")
    } else if batch.ended {
        format!("Finishing {label}")
    } else {
        format!("Reading {label}")
    };
    runs::progress(&mut tx, tenant, run_id, counts, &phase).await?;
    runs::events(&mut tx, tenant, run_id, EventKind::Page, &batch.notes).await?;
    let waited = plan.budget.take_waited();
    if waited.times > 0 {
        runs::add_rate_wait(&mut tx, tenant, run_id, waited.seconds).await?;
        // Waits for rate budgets: how many, and (a histogram, so that its sum is the total)
        // how long the batch waited in all.
        metrics::counter!("patchbay_rate_limit_waits_total").increment(u64::from(waited.times));
        metrics::histogram!("patchbay_rate_limit_wait_seconds").record(waited.seconds);
        runs::event(
            &mut tx,
            tenant,
            run_id,
            EventKind::RateWait,
            &format!(
                "Waited {:.1} s for the rate budget ({} time{})",
                waited.seconds,
                waited.times,
                if waited.times == 1 { "" } else { "s" }
            ),
        )
        .await?;
    }
    tx.commit().await?;
    match stopped {
        Some(err) => {
            if let ErrorClass::RateLimited { retry_after } = err.class {
                if let Sink::Provider { budget, .. } = &plan.sink {
                    let _ = budget
                        .block_for(retry_after.unwrap_or(std::time::Duration::from_secs(30)))
                        .await;
                }
            }
            Err(Failure::Provider(err))
        }
        None => Ok(()),
    }
}

fn destination_connection(destination: &SpecDestination) -> Connection {
    destination.connection().clone()
}

/// The delete sweep at the end of a full read: records of the stream that the read did not see
/// (an older generation) are removed from the destination. A full read that saw nothing at all
/// while records exist sweeps nothing: more likely a provider hiccup than an emptied account.
#[expect(
    clippy::too_many_arguments,
    reason = "the attempt's parts, each named at the call"
)]
async fn sweep(
    engine: &Engine,
    job: &ClaimedJob,
    run_id: i64,
    plan: &Plan,
    stream: &str,
    label: &str,
    run: &state::StreamRun,
    seen: i64,
) -> Result<(), Failure> {
    let tenant = job.job.tenant;
    let install = plan.install.id;
    let mut deleted = 0u64;
    match &plan.sink {
        Sink::Store { .. } => {
            if seen == 0 {
                let mut tx = db::begin(&engine.pool, Scope::System).await?;
                let stale = store::stale(&mut tx, tenant, install, stream, run.generation).await?;
                if stale > 0 {
                    runs::event(&mut tx, tenant, run_id, EventKind::Deleted, &format!(
                        "The source returned no {label} at all; the {stale} kept were not deleted, to be safe"
                    ))
                    .await?;
                    tx.commit().await?;
                    return Ok(());
                }
                tx.commit().await?;
            }
            loop {
                let mut tx = db::begin(&engine.pool, Scope::System).await?;
                fence(&mut tx, engine, job).await?;
                let n = store::sweep(
                    &mut tx,
                    tenant,
                    install,
                    stream,
                    run.generation,
                    SWEEP_BATCH,
                )
                .await?;
                if n > 0 {
                    runs::progress(
                        &mut tx,
                        tenant,
                        run_id,
                        Counts {
                            deleted: n as i64,
                            ..Counts::default()
                        },
                        &format!("Removing deleted {label}"),
                    )
                    .await?;
                }
                tx.commit().await?;
                deleted += n;
                if (n as i64) < SWEEP_BATCH {
                    break;
                }
            }
        }
        Sink::Provider {
            destination,
            stream: target,
            ..
        } => {
            if seen == 0 {
                let mut tx = db::begin(&engine.pool, Scope::System).await?;
                let some =
                    provider::stale(&mut tx, tenant, install, stream, run.generation, 1).await?;
                tx.commit().await?;
                if !some.is_empty() {
                    let mut tx = db::begin(&engine.pool, Scope::System).await?;
                    runs::event(&mut tx, tenant, run_id, EventKind::Deleted, &format!(
                        "The source returned no {label} at all; nothing was deleted at the destination, to be safe"
                    ))
                    .await?;
                    tx.commit().await?;
                    return Ok(());
                }
            }
            let can_delete = destination.can_delete(target);
            loop {
                let batch = {
                    let mut tx = db::begin(&engine.pool, Scope::System).await?;
                    let batch =
                        provider::stale(&mut tx, tenant, install, stream, run.generation, 200)
                            .await?;
                    tx.commit().await?;
                    batch
                };
                if batch.is_empty() {
                    break;
                }
                let mut gone = Vec::with_capacity(batch.len());
                let mut failure = None;
                for (key, destination_id) in &batch {
                    if can_delete {
                        if let Some(id) = destination_id {
                            if let Err(err) = destination.delete(target, id).await {
                                failure = Some(err);
                                break;
                            }
                        }
                    }
                    gone.push(key.clone());
                }
                let mut tx = db::begin(&engine.pool, Scope::System).await?;
                fence(&mut tx, engine, job).await?;
                provider::forget(&mut tx, tenant, install, stream, &gone).await?;
                let n = if can_delete { gone.len() as i64 } else { 0 };
                runs::progress(
                    &mut tx,
                    tenant,
                    run_id,
                    Counts {
                        deleted: n,
                        ..Counts::default()
                    },
                    &format!("Removing deleted {label}"),
                )
                .await?;
                tx.commit().await?;
                deleted += n as u64;
                if let Some(err) = failure {
                    return Err(Failure::Provider(err));
                }
            }
        }
    }
    if deleted > 0 {
        let mut tx = db::begin(&engine.pool, Scope::System).await?;
        runs::event(
            &mut tx,
            tenant,
            run_id,
            EventKind::Deleted,
            &format!("Removed {deleted} {label} no longer at the source"),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
