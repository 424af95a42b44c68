//! The failures dashboard: failed and dead attempts across tenants, grouped by error class,
//! listing and provider with counts over the last hour, day and week, and the newest of them one
//! by one; filtered by tenant, listing, provider, error class, outcome and time range.
//!
//! Every query reads `sync_runs_failures`, a partial index holding only failed and dead attempts
//! with the columns the grouping needs, so that a range of the dashboard costs what its failures
//! are, not what all runs are.

use super::{begin_read, Viewer, STAMP};
use crate::error::AppError;
use crate::model::admin::{
    Choice, FailedRun, FailureFilter, FailureGroup, FailureQuery, FailuresPage, StaleInstall,
};
use crate::model::install::{RunOutcome, Stamp};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

/// Failed attempts listed one by one.
pub const RUNS_PAGE: i64 = 50;
/// Most groups shown.
const MAX_GROUPS: i64 = 100;

/// The filter as SQL over `sync_runs r`, with parameters $1…$7 bound by [`bind`].
pub const FILTER: &str = "\
r.outcome in ('failed', 'dead') and r.finished_at > now() - make_interval(secs => $1) \
and ($2::uuid is null or r.tenant_id = $2) \
and ($3::text is null or r.listing_id = (select l.id from listings l where l.slug = $3)) \
and ($4::text is null or r.provider = $4) \
and ($5::text is null or r.error_class = $5) \
and ($6::text is null or r.outcome = $6) \
and ($7::uuid is null or r.listing_id in (select l.id from listings l where l.vendor_org_id = $7))";

/// Binds [`FILTER`]'s parameters.
pub(crate) fn bind<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    viewer: &Viewer,
    filter: &'q FailureFilter,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    query
        .bind(filter.range.seconds() as f64)
        .bind(filter.tenant)
        .bind(filter.listing.as_deref())
        .bind(filter.provider.as_deref())
        .bind(filter.class.map(|c| c.as_str()))
        .bind(filter.outcome.map(|o| o.as_str()))
        .bind(viewer.vendor_org())
}

/// Dead letters of the filter that can be queued again: the newest attempt of its install (no
/// later attempt ran), the install still active. $1…$7 as [`FILTER`]. Only an install's newest
/// attempt qualifies, so no install comes twice.
///
/// Cut by a `limit` (a bulk retry takes 500; the dashboard counts to 501). The dead letters come
/// first, newest first through the failures index, from a `materialized` CTE: it is read only as
/// far as the limit needs, and it keeps the planner (under row-level security) from walking
/// every install's runs instead, which took seconds over 10,000,000 runs.
pub const RETRYABLE_DEAD: &str = "\
with dead as materialized ( \
    select r.tenant_id, r.install_id, r.kind, r.id from sync_runs r \
    where FILTER and r.outcome = 'dead' order by r.finished_at desc) \
select d.tenant_id, d.install_id, d.kind, d.id from dead d \
where exists (select 1 from installs i where i.tenant_id = d.tenant_id \
              and i.id = d.install_id and i.status = 'active') \
  and not exists (select 1 from sync_runs n where n.tenant_id = d.tenant_id \
                  and n.install_id = d.install_id and n.id > d.id)";

/// The dashboard: groups, the newest failures, and the choices of the filter lists.
pub async fn page(
    pool: &PgPool,
    viewer: &Viewer,
    query: FailureQuery,
) -> Result<FailuresPage, AppError> {
    let filter = query.parse()?;
    let mut tx = begin_read(pool).await?;
    let groups = groups(&mut tx, viewer, &filter).await?;
    let runs = runs(&mut tx, viewer, &filter, RUNS_PAGE).await?;
    // Bulk retry is offered on a filter of dead letters only: counting them on every look at the
    // dashboard would cost more than the rest of it.
    let retryable_dead =
        if viewer.vendor_org().is_none() && filter.outcome == Some(RunOutcome::Dead) {
            // Up to one more than a bulk retry takes: the page says "the newest 500 of more".
            let sql = format!(
                "select count(*) from ({} limit {}) d",
                RETRYABLE_DEAD.replace("FILTER", FILTER),
                crate::model::admin::MAX_BULK_RETRY + 1
            );
            bind(sqlx::query_as::<_, (i64,)>(&sql), viewer, &filter)
                .fetch_one(&mut *tx)
                .await?
                .0
        } else {
            0
        };
    let (tenants, listings, providers) = choices(&mut tx, viewer, &filter).await?;
    let (stale, stale_total) = stale(&mut tx, viewer, &filter).await?;
    tx.commit().await?;
    Ok(FailuresPage {
        query,
        groups,
        runs,
        retryable_dead,
        tenants,
        listings,
        providers,
        stale,
        stale_total,
        vendor: viewer.vendor_org().is_some(),
    })
}

/// Stale installs of the filter's tenant and listing (and, for a vendor, of its listings), the
/// longest overdue first, with how many there are in all. Both read the `installs_stale` index.
async fn stale(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &FailureFilter,
) -> Result<(Vec<StaleInstall>, i64), AppError> {
    const WHERE: &str = "\
        and ($1::uuid is null or i.tenant_id = $1) \
        and ($2::text is null or i.listing_id in (select l.id from listings l where l.slug = $2)) \
        and ($3::uuid is null \
             or i.listing_id in (select l.id from listings l where l.vendor_org_id = $3))";
    let stale_rule = crate::domain::installs::freshness::STALE;
    let total: i64 = sqlx::query_scalar(&format!(
        "select count(*) from installs i where {stale_rule} {WHERE}"
    ))
    .bind(filter.tenant)
    .bind(filter.listing.as_deref())
    .bind(viewer.vendor_org())
    .fetch_one(&mut *conn)
    .await?;
    type Row = (
        Uuid,
        String,
        Uuid,
        String,
        Option<String>,
        Option<f64>,
        i32,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select i.tenant_id, o.name, i.id, l.name, \
                to_char(i.last_synced_at at time zone 'utc', {STAMP}), \
                extract(epoch from now() - i.last_synced_at)::float8, s.window_secs, \
                (select max(r.id) from sync_runs r where r.tenant_id = i.tenant_id and r.install_id = i.id) \
         from (select * from installs i where {stale_rule} {WHERE} \
               order by i.stale_after limit {RUNS_PAGE}) i \
         join sync_schedules s on s.tenant_id = i.tenant_id and s.install_id = i.id \
         join organizations o on o.id = i.tenant_id \
         join listings l on l.id = i.listing_id \
         order by i.stale_after"
    ))
    .bind(filter.tenant)
    .bind(filter.listing.as_deref())
    .bind(viewer.vendor_org())
    .fetch_all(&mut *conn)
    .await?;
    let vendor = viewer.vendor_org().is_some();
    let stale = rows
        .into_iter()
        .map(
            |(tenant_id, tenant_name, install_id, listing_name, at, ago, window, latest_run)| {
                StaleInstall {
                    tenant_id,
                    tenant_name: if vendor { String::new() } else { tenant_name },
                    install_id,
                    listing_name,
                    as_of: at.zip(ago).map(|(t, a)| Stamp::new(t, a)),
                    window_secs: window.into(),
                    latest_run,
                }
            },
        )
        .collect();
    Ok((stale, total))
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    error_class: Option<String>,
    slug: Option<String>,
    name: Option<String>,
    provider: Option<String>,
    last_hour: i64,
    last_day: i64,
    last_week: i64,
    total: i64,
    dead: i64,
    first_seen: String,
    first_ago: f64,
    last_seen: String,
    last_ago: f64,
    latest_run: i64,
}

/// The time range's bounds, over `b`: for the last hour, day and week (each at most the range)
/// and the whole range, its start (`s1`, `s24`, `s7`, `sr`), the end of the hour it starts in
/// (`e1`, …) and the end of the day it starts in (`d1`, …), in UTC. A window holds whole the
/// days from its `d…` on and the hours from its `e…` to its `d…`; the run log answers for its
/// partial first hour. `hours` and `edges` are those spans, each once.
const BOUNDS: &str = "\
with s as (select now() - make_interval(secs => least(3600, $1)) as s1, \
                  now() - make_interval(secs => least(86400, $1)) as s24, \
                  now() - make_interval(secs => least(604800, $1)) as s7, \
                  now() - make_interval(secs => $1) as sr), \
     b as (select s.*, \
                  date_trunc('hour', s1, 'UTC') + interval '1 hour' as e1, \
                  date_trunc('hour', s24, 'UTC') + interval '1 hour' as e24, \
                  date_trunc('hour', s7, 'UTC') + interval '1 hour' as e7, \
                  date_trunc('hour', sr, 'UTC') + interval '1 hour' as er, \
                  date_trunc('day', s1, 'UTC') + interval '1 day' as d1, \
                  date_trunc('day', s24, 'UTC') + interval '1 day' as d24, \
                  date_trunc('day', s7, 'UTC') + interval '1 day' as d7, \
                  date_trunc('day', sr, 'UTC') + interval '1 day' as dr from s), \
     hours as (select distinct v.e, v.d from b, \
                  lateral (values (e1, d1), (e24, d24), (e7, d7), (er, dr)) as v(e, d)), \
     edges as (select distinct v.s, v.t from b, \
                  lateral (values (s1, e1), (s24, e24), (s7, e7), (sr, er)) as v(s, t))";

/// The filter over the hourly or daily counts `c` (no tenant: a tenant's filter reads the run
/// log). $2…$7 as [`FILTER`]; `$2` must be null.
const COUNTS_FILTER: &str = "\
$2::uuid is null \
and ($3::text is null or c.listing_id = (select l.id from listings l where l.slug = $3)) \
and ($4::text is null or c.provider = $4) \
and ($5::text is null or c.error_class = $5) \
and ($6::text is null or c.outcome = $6) \
and ($7::uuid is null or c.listing_id in (select l.id from listings l where l.vendor_org_id = $7))";

/// The run log's failures of the filter in the partial first hour of each window, each once.
const FROM_EDGES: &str = "\
b, edges, lateral (select * from sync_runs r where FILTER \
                   and r.finished_at > edges.s and r.finished_at < edges.t) r";

/// Failures grouped by error class, listing and provider, the most recently seen first.
///
/// Across tenants the groups add up the daily and hourly failure counts whole inside each window
/// ([`BOUNDS`]) and count the partial first hours from the run log, so the counts are exact
/// while a week costs a few thousand rows instead of every failure; a tenant's filter reads its
/// failures from the run log (`sync_runs_failures_tenant`).
pub async fn groups(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &FailureFilter,
) -> Result<Vec<FailureGroup>, AppError> {
    let sql = if filter.tenant.is_some() {
        groups_from_runs()
    } else {
        groups_from_counts()
    };
    let rows: Vec<GroupRow> = bind(sqlx::query_as(&sql), viewer, filter)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|g| FailureGroup {
            class: g.error_class.and_then(|c| c.parse().ok()),
            listing_slug: g.slug.unwrap_or_default(),
            listing_name: g.name.unwrap_or_else(|| "(unknown listing)".into()),
            provider: g.provider.unwrap_or_default(),
            last_hour: g.last_hour,
            last_day: g.last_day,
            last_week: g.last_week,
            total: g.total,
            dead: g.dead,
            first_seen: Stamp::new(g.first_seen, g.first_ago),
            last_seen: Stamp::new(g.last_seen, g.last_ago),
            latest_run: g.latest_run,
        })
        .collect())
}

/// The groups' outer select, over the aggregated `g`.
fn groups_select(inner: &str) -> String {
    format!(
        "select g.error_class, l.slug, l.name, g.provider, g.last_hour, g.last_day, g.last_week, \
                g.total, g.dead, \
                to_char(g.first_at at time zone 'utc', {STAMP}) as first_seen, \
                extract(epoch from now() - g.first_at)::float8 as first_ago, \
                to_char(g.last_at at time zone 'utc', {STAMP}) as last_seen, \
                extract(epoch from now() - g.last_at)::float8 as last_ago, g.latest_run \
         from ({inner}) g \
         left join listings l on l.id = g.listing_id \
         order by g.last_at desc"
    )
}

/// The groups' statement across tenants (from the hourly counts); public for the benchmark's
/// plans.
pub fn groups_from_counts() -> String {
    let edges = FROM_EDGES.replace("FILTER", FILTER);
    let inner = format!(
        "{BOUNDS}, \
         p as (select c.error_class, c.listing_id, c.provider, c.outcome, c.n::int8 as n, \
                      c.bucket >= b.d1 as in1, c.bucket >= b.d24 as in24, \
                      c.bucket >= b.d7 as in7, true as inr, c.first_at, c.last_at, c.last_run \
               from failure_counts_daily c, b \
               where c.bucket >= date_trunc('day', now() - make_interval(secs => $1), 'UTC') \
                                 + interval '1 day' \
                 and {COUNTS_FILTER} \
               union all \
               select c.error_class, c.listing_id, c.provider, c.outcome, c.n, \
                      c.bucket >= b.e1 and c.bucket < b.d1, c.bucket >= b.e24 and c.bucket < b.d24, \
                      c.bucket >= b.e7 and c.bucket < b.d7, c.bucket >= b.er and c.bucket < b.dr, \
                      c.first_at, c.last_at, c.last_run \
               from b, hours h, lateral (select * from failure_counts c \
                    where c.bucket >= h.e and c.bucket < h.d and {COUNTS_FILTER}) c \
               union all \
               select r.error_class, r.listing_id, r.provider, r.outcome, 1, \
                      r.finished_at > b.s1 and r.finished_at < b.e1, \
                      r.finished_at > b.s24 and r.finished_at < b.e24, \
                      r.finished_at > b.s7 and r.finished_at < b.e7, \
                      r.finished_at < b.er, r.finished_at, r.finished_at, r.id \
               from {edges}) \
         select p.error_class, p.listing_id, p.provider, \
                coalesce(sum(p.n) filter (where p.in1), 0)::int8 as last_hour, \
                coalesce(sum(p.n) filter (where p.in24), 0)::int8 as last_day, \
                coalesce(sum(p.n) filter (where p.in7), 0)::int8 as last_week, \
                sum(p.n) filter (where p.inr)::int8 as total, \
                coalesce(sum(p.n) filter (where p.inr and p.outcome = 'dead'), 0)::int8 as dead, \
                min(p.first_at) filter (where p.inr) as first_at, \
                max(p.last_at) filter (where p.inr) as last_at, \
                max(p.last_run) filter (where p.inr) as latest_run \
         from p group by p.error_class, p.listing_id, p.provider \
         having sum(p.n) filter (where p.inr) > 0 \
         order by max(p.last_at) filter (where p.inr) desc limit {MAX_GROUPS}"
    );
    groups_select(&inner)
}

/// The groups' statement for one tenant (from the run log).
pub fn groups_from_runs() -> String {
    let inner = format!(
        "select r.error_class, r.listing_id, r.provider, \
                count(*) filter (where r.finished_at > now() - interval '1 hour') as last_hour, \
                count(*) filter (where r.finished_at > now() - interval '1 day') as last_day, \
                count(*) filter (where r.finished_at > now() - interval '7 days') as last_week, \
                count(*) as total, count(*) filter (where r.outcome = 'dead') as dead, \
                min(r.finished_at) as first_at, max(r.finished_at) as last_at, \
                max(r.id) as latest_run \
         from sync_runs r where {FILTER} \
         group by r.error_class, r.listing_id, r.provider \
         order by max(r.finished_at) desc limit {MAX_GROUPS}"
    );
    groups_select(&inner)
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    tenant_id: Uuid,
    tenant_name: String,
    install_id: Uuid,
    slug: Option<String>,
    name: Option<String>,
    provider: Option<String>,
    outcome: String,
    error_class: Option<String>,
    error_message: Option<String>,
    attempt: i32,
    finished: String,
    finished_ago: f64,
}

/// The newest failed and dead attempts of the filter.
pub async fn runs(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &FailureFilter,
    limit: i64,
) -> Result<Vec<FailedRun>, AppError> {
    let sql = format!(
        "select r.id, r.tenant_id, o.name as tenant_name, r.install_id, l.slug, l.name, r.provider, \
                r.outcome, r.error_class, r.error_message, r.attempt, \
                to_char(r.finished_at at time zone 'utc', {STAMP}) as finished, \
                extract(epoch from now() - r.finished_at)::float8 as finished_ago \
         from (select * from sync_runs r where {FILTER} order by r.finished_at desc limit {limit}) r \
         join organizations o on o.id = r.tenant_id \
         left join listings l on l.id = r.listing_id \
         order by r.finished_at desc"
    );
    let rows: Vec<RunRow> = bind(sqlx::query_as(&sql), viewer, filter)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| FailedRun {
            run_id: r.id,
            tenant_id: r.tenant_id,
            // A vendor sees which customer's install failed only as an install id.
            tenant_name: if viewer.vendor_org().is_some() {
                String::new()
            } else {
                r.tenant_name
            },
            install_id: r.install_id,
            listing_slug: r.slug.unwrap_or_default(),
            listing_name: r.name.unwrap_or_else(|| "(unknown listing)".into()),
            provider: r.provider.unwrap_or_default(),
            outcome: r.outcome.parse().unwrap_or(RunOutcome::Failed),
            class: r.error_class.and_then(|c| c.parse().ok()),
            message: r.error_message.unwrap_or_default(),
            attempt: r.attempt + 1,
            finished_at: Stamp::new(r.finished, r.finished_ago),
        })
        .collect())
}

/// What the filter lists offer: the tenants, listings and providers with failures in the range
/// (tenants only for platform admins).
async fn choices(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &FailureFilter,
) -> Result<(Vec<Choice>, Vec<Choice>, Vec<Choice>), AppError> {
    // Listings and providers: those whose newest failure is in the range.
    let found: Vec<(Option<Uuid>, Option<String>)> = sqlx::query_as(
        "select f.listing_id, f.provider from failure_sources f \
         where f.last_at > now() - make_interval(secs => $1) \
           and ($2::uuid is null \
                or f.listing_id in (select l.id from listings l where l.vendor_org_id = $2))",
    )
    .bind(filter.range.seconds() as f64)
    .bind(viewer.vendor_org())
    .fetch_all(&mut *conn)
    .await?;
    let mut listing_ids: Vec<Uuid> = found.iter().filter_map(|f| f.0).collect();
    listing_ids.sort();
    listing_ids.dedup();
    let mut providers: Vec<String> = found.iter().filter_map(|f| f.1.clone()).collect();
    providers.sort();
    providers.dedup();
    let tenants: Vec<Choice> = if viewer.vendor_org().is_none() {
        // Those whose newest failure is in the range.
        sqlx::query_as::<_, (Uuid, String)>(
            "select o.id, o.name from failure_tenants f join organizations o on o.id = f.tenant_id \
             where f.last_at > now() - make_interval(secs => $1) \
             order by o.name limit 500",
        )
        .bind(filter.range.seconds() as f64)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, name)| (id.to_string(), name))
        .collect()
    } else {
        Vec::new()
    };
    let listings: Vec<Choice> = sqlx::query_as(
        "select slug, name from listings where id = any($1) order by name limit 500",
    )
    .bind(&listing_ids)
    .fetch_all(&mut *conn)
    .await?;
    let providers = providers.into_iter().map(|p| (p.clone(), p)).collect();
    Ok((tenants, listings, providers))
}
