//! `/admin/failures`: failing and dead runs across tenants, grouped, filtered from the URL, with
//! the newest first and bulk retry of a group's dead letters. The vendor console shows the same
//! for its own listings (`/vendor/failures`), without tenants and without repair actions.

use super::admin_console::{loaded, AdminConsole};
use super::forms::{action_error, FormError};
use super::installs::{OutcomeBadge, When};
use crate::api::admin::{failure_query, get_failures, get_vendor_failures, BulkRetry};
use crate::model::admin::{
    Choice, FailedRun, FailureGroup, FailureQuery, FailuresPage, Range, StaleInstall,
    MAX_BULK_RETRY,
};
use crate::model::install::ErrorClass;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The filters of the current URL.
fn query_of(query: &leptos_router::params::ParamsMap) -> FailureQuery {
    failure_query(
        query.get("tenant"),
        query.get("listing"),
        query.get("provider"),
        query.get("class"),
        query.get("outcome"),
        query.get("range"),
    )
}

/// `/admin/failures`
#[component]
pub fn FailuresPage() -> impl IntoView {
    let query = use_query_map();
    let retry = ServerAction::<BulkRetry>::new();
    let data = Resource::new(
        move || (query_of(&query.read()), retry.version().get()),
        |(q, _)| {
            get_failures(
                Some(q.tenant),
                Some(q.listing),
                Some(q.provider),
                Some(q.class),
                Some(q.outcome),
                Some(q.range),
            )
        },
    );
    view! {
        <AdminConsole current="/admin/failures" title="Failures" heading="Failures"
            lead="Failed and dead syncs across every organization, grouped by what went wrong.">
            {loaded(data, move |page| view! { <Failures page base="/admin/failures" retry=Some(retry) /> })}
        </AdminConsole>
    }
}

/// `/vendor/failures`
#[component]
pub fn VendorFailuresPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        move || query_of(&query.read()),
        |q| {
            get_vendor_failures(
                Some(q.listing),
                Some(q.provider),
                Some(q.class),
                Some(q.outcome),
                Some(q.range),
            )
        },
    );
    view! {
        <Title text="Failures of your listings" />
        <header class="page-header">
            <div>
                <p class="eyebrow">"Vendor"</p>
                <h1>"Failures of your listings"</h1>
                <p class="muted">"Failed and dead syncs of your listings' installs, across every customer."</p>
            </div>
            <a class="button button-ghost" href="/vendor">"← Vendor console"</a>
        </header>
        {loaded(data, |page| view! { <Failures page base="/vendor/failures" retry=None /> })}
    }
}

#[component]
fn Select(
    name: &'static str,
    label: &'static str,
    current: String,
    choices: Vec<Choice>,
    any: &'static str,
) -> impl IntoView {
    let id = format!("filter-{name}");
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select id=id name=name>
                <option value="" selected=current.is_empty()>{any}</option>
                {choices.into_iter().map(|(value, text)| {
                    let selected = value == current;
                    view! { <option value=value selected=selected>{text}</option> }
                }).collect_view()}
            </select>
        </div>
    }
}

#[component]
fn Failures(
    page: FailuresPage,
    base: &'static str,
    retry: Option<ServerAction<BulkRetry>>,
) -> impl IntoView {
    let url = use_query_map();
    let retried = url.read().get("retried");
    let q = page.query.clone();
    let classes: Vec<Choice> = ErrorClass::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.label().to_owned()))
        .collect();
    let ranges: Vec<Choice> = Range::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), r.label().to_owned()))
        .collect();
    let outcomes: Vec<Choice> = vec![
        ("failed".into(), "Failed (retrying)".into()),
        ("dead".into(), "Dead letter".into()),
    ];
    let range = if q.range.is_empty() {
        "7d".to_owned()
    } else {
        q.range.clone()
    };
    let filtered = !(q.tenant.is_empty()
        && q.listing.is_empty()
        && q.provider.is_empty()
        && q.class.is_empty()
        && q.outcome.is_empty());
    let vendor = page.vendor;
    let error = retry.map(action_error);
    view! {
        {retried.map(|n| view! {
            <div class="alert alert-success" role="status">{format!("Queued again: {n} dead job(s). They show up here again only if they fail again.")}</div>
        })}
        {error.map(|error| view! { <FormError error fields=&[] /> })}
        <form method="get" action=base class="panel filter-form" aria-label="Filters">
            {(!vendor).then(|| view! { <Select name="tenant" label="Organization" current=q.tenant.clone() choices=page.tenants.clone() any="Any organization" /> })}
            <Select name="listing" label="Listing" current=q.listing.clone() choices=page.listings.clone() any="Any listing" />
            <Select name="provider" label="Provider" current=q.provider.clone() choices=page.providers.clone() any="Any provider" />
            <Select name="class" label="Error class" current=q.class.clone() choices=classes any="Any error" />
            <Select name="outcome" label="Outcome" current=q.outcome.clone() choices=outcomes any="Failed or dead" />
            <Select name="range" label="Time range" current=range choices=ranges any="Last 7 days" />
            <div class="filter-actions">
                <button type="submit" class="button">"Apply"</button>
                {filtered.then(|| view! { <a class="button button-ghost" href=base>"Clear"</a> })}
            </div>
        </form>
        {(page.stale_total > 0).then(|| view! { <StaleTable stale=page.stale.clone() total=page.stale_total vendor /> })}
        {if page.groups.is_empty() {
            view! {
                <div class="panel empty-state">
                    <h2>"No failures"</h2>
                    <p>{if filtered { "Nothing failed that matches these filters. Clear them to see everything." } else { "No sync failed in this time range. Failing and dead runs show up here as they happen." }}</p>
                </div>
            }.into_any()
        } else {
            view! {
                <section class="panel" aria-labelledby="groups-heading">
                    <div class="section-head">
                        <h2 id="groups-heading">"By error, listing and provider"</h2>
                        {(retry.is_some() && q.outcome != "dead" && page.groups.iter().any(|g| g.dead > 0)).then(|| {
                            let href = format!(
                                "{base}?tenant={}&listing={}&provider={}&class={}&outcome=dead&range={}",
                                q.tenant, q.listing, q.provider, q.class, q.range
                            );
                            view! { <a class="button button-ghost" href=href>"Dead letters only, to retry them"</a> }
                        })}
                        {retry.filter(|_| page.retryable_dead > 0).map(|retry| {
                            let q = q.clone();
                            view! {
                                <ActionForm action=retry attr:class="inline-form">
                                    <input type="hidden" name="tenant" value=q.tenant />
                                    <input type="hidden" name="listing" value=q.listing />
                                    <input type="hidden" name="provider" value=q.provider />
                                    <input type="hidden" name="class" value=q.class />
                                    <input type="hidden" name="outcome" value=q.outcome />
                                    <input type="hidden" name="range" value=q.range />
                                    <button type="submit" class="button" data-action="bulk-retry">{match page.retryable_dead {
                                        1 => "Retry 1 dead job".to_owned(),
                                        n if n > MAX_BULK_RETRY as i64 => format!("Retry the newest {MAX_BULK_RETRY} dead jobs (of more)"),
                                        n => format!("Retry {n} dead jobs"),
                                    }}</button>
                                </ActionForm>
                            }
                        })}
                    </div>
                    <GroupTable groups=page.groups.clone() base />
                </section>
                <section class="panel" aria-labelledby="runs-heading">
                    <h2 id="runs-heading">"Newest failures"</h2>
                    <RunTable runs=page.runs.clone() vendor />
                </section>
            }.into_any()
        }}
    }
}

#[component]
fn GroupTable(groups: Vec<FailureGroup>, base: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table failure-groups">
                <thead>
                    <tr>
                        <th scope="col">"Error"</th>
                        <th scope="col">"Listing"</th>
                        <th scope="col">"Provider"</th>
                        <th scope="col" class="num">"Hour"</th>
                        <th scope="col" class="num">"Day"</th>
                        <th scope="col" class="num">"Week"</th>
                        <th scope="col" class="num">"Dead"</th>
                        <th scope="col">"First seen"</th>
                        <th scope="col">"Last seen"</th>
                    </tr>
                </thead>
                <tbody>
                    {groups.into_iter().map(|g| {
                        let class = g.class.map(|c| c.as_str()).unwrap_or("");
                        let filter = format!("{base}?class={class}&listing={}&provider={}", g.listing_slug, g.provider);
                        view! {
                            <tr data-class=class>
                                <td><a href=filter>{g.class.map(|c| c.label()).unwrap_or("Unclassified")}</a></td>
                                <td>{g.listing_name}</td>
                                <td><code>{g.provider}</code></td>
                                <td class="num">{g.last_hour}</td>
                                <td class="num">{g.last_day}</td>
                                <td class="num">{g.last_week}</td>
                                <td class="num">{g.dead}</td>
                                <td class="small"><When stamp=g.first_seen /></td>
                                <td class="small"><a href=format!("/admin/runs/{}", g.latest_run)><When stamp=g.last_seen /></a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RunTable(runs: Vec<FailedRun>, vendor: bool) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table failure-runs">
                <thead>
                    <tr>
                        <th scope="col">"Run"</th>
                        <th scope="col">"When"</th>
                        {(!vendor).then(|| view! { <th scope="col">"Organization"</th> })}
                        <th scope="col">"Listing"</th>
                        <th scope="col">"Outcome"</th>
                        <th scope="col">"Error"</th>
                    </tr>
                </thead>
                <tbody>
                    {runs.into_iter().map(|r| view! {
                        <tr data-run=r.run_id>
                            <td><a href=format!("/admin/runs/{}", r.run_id)>{format!("#{}", r.run_id)}</a></td>
                            <td class="small"><When stamp=r.finished_at /></td>
                            {(!vendor).then(|| view! { <td>{r.tenant_name.clone()}</td> })}
                            <td>{r.listing_name}<div class="small muted"><code>{r.provider}</code></div></td>
                            <td><OutcomeBadge outcome=r.outcome /><div class="small muted">{format!("attempt {}", r.attempt)}</div></td>
                            <td class="error-text small">
                                {r.class.map(|c| view! { <strong>{c.label()}": "</strong> })}
                                {r.message}
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

fn window(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Installs past their schedule's window without a successful sync.
#[component]
fn StaleTable(stale: Vec<StaleInstall>, total: i64, vendor: bool) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="stale-heading">
            <h2 id="stale-heading">{format!("Stale installs ({total})")}</h2>
            <p class="muted small">"Active installs whose last successful sync is older than two of their schedule's intervals, the longest overdue first."</p>
            <div class="table-wrap">
                <table class="table stale-installs">
                    <thead>
                        <tr>
                            {(!vendor).then(|| view! { <th scope="col">"Organization"</th> })}
                            <th scope="col">"Listing"</th>
                            <th scope="col">"Data as of"</th>
                            <th scope="col">"Runs every"</th>
                            <th scope="col">"Newest run"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {stale.into_iter().map(|s| view! {
                            <tr data-install=s.install_id.to_string()>
                                {(!vendor).then(|| view! { <td>{s.tenant_name.clone()}</td> })}
                                <td>{s.listing_name}</td>
                                <td class="small">{match s.as_of {
                                    Some(at) => view! { <When stamp=at /> }.into_any(),
                                    None => view! { <span class="muted">"never"</span> }.into_any(),
                                }}</td>
                                <td class="small">{window(s.window_secs)}</td>
                                <td class="small">{match s.latest_run {
                                    Some(run) => view! { <a href=format!("/admin/runs/{run}")>{format!("#{run}")}</a> }.into_any(),
                                    None => view! { <span class="muted">"none"</span> }.into_any(),
                                }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
