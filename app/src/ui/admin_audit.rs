//! `/admin/audit`: who did what, when, in which organization — newest first, searchable, paged.

use super::admin_console::{loaded, AdminConsole};
use super::installs::When;
use crate::api::admin::get_audit;
use crate::model::admin::AuditPage;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// `/admin/audit`
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        move || {
            let q = query.read();
            (
                q.get("q").unwrap_or_default(),
                q.get("before").and_then(|b| b.parse::<i64>().ok()),
            )
        },
        |(q, before)| get_audit(q, before),
    );
    view! {
        <AdminConsole current="/admin/audit" title="Audit log" heading="Audit log"
            lead="Every change people and Patchbay's operators made, in every organization. Entries cannot be changed or removed.">
            {loaded(data, |page| view! { <Audit page /> })}
        </AdminConsole>
    }
}

#[component]
fn Audit(page: AuditPage) -> impl IntoView {
    let q = page.q.clone();
    let older = page.older.map(|id| {
        let mut url = url_encode(&[("q", &q), ("before", &id.to_string())]);
        url.insert_str(0, "/admin/audit?");
        url
    });
    view! {
        <form method="get" action="/admin/audit" class="search-form" role="search">
            <label class="visually-hidden" for="audit-q">"Search the audit log"</label>
            <input id="audit-q" type="search" name="q" value=page.q.clone() maxlength="200"
                placeholder="An action (admin.retry), a person, an organization, an install id…" />
            <button type="submit" class="button">"Search"</button>
        </form>
        {if page.entries.is_empty() {
            view! {
                <div class="panel empty-state">
                    <h2>"Nothing found"</h2>
                    <p>{if page.q.is_empty() { "Nothing was recorded yet." } else { "No entry matches. Try part of an action, an email or an id." }}</p>
                </div>
            }.into_any()
        } else {
            view! {
                <div class="table-wrap panel">
                    <table class="table audit-log">
                        <thead><tr><th scope="col">"When"</th><th scope="col">"Organization"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"Detail"</th></tr></thead>
                        <tbody>
                            {page.entries.into_iter().map(|e| {
                                let action = e.action.clone();
                                view! {
                                <tr data-action=action>
                                    <td class="small"><When stamp=e.at /></td>
                                    <td>{e.org_name}</td>
                                    <td class="small">{e.actor}</td>
                                    <td><code>{e.action}</code></td>
                                    <td class="small"><code class="break">{e.detail}</code></td>
                                </tr>
                            }}).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        {older.map(|href| view! { <nav class="pager" aria-label="Pages"><a class="button button-ghost" href=href>"Older entries →"</a></nav> })}
    }
}

/// `k=v&…`, form-encoded.
fn url_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
