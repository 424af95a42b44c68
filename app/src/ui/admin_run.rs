//! `/admin/runs/{id}`: one attempt in detail — what failed, the timeline with each request's
//! summary, the cursors before and after, every attempt of the job side by side, the records it
//! quarantined — and the repair actions: retry, replay the quarantined records, force a full
//! resync, pause the install with a message to its customer. Vendors see the same for their own
//! listings, without requests and without actions.

use super::admin_console::loaded;
use super::forms::{action_error, FieldError, FormError};
use super::installs::{duration, OutcomeBadge, When};
use crate::api::admin::{get_run_detail, AdminRunAction};
use crate::model::admin::{RetryState, RunDetail};
use crate::model::install::{RunOutcome, RunView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

fn flash(done: &str, records: Option<String>) -> Option<String> {
    Some(match done {
        "retry_now" => "The job's next attempt runs now.".to_owned(),
        "retry" => "The dead job is queued again; its new attempt shows up under the install.".to_owned(),
        "replay" => format!(
            "{} quarantined record(s) will be written again by the install's next sync, which is queued.",
            records.unwrap_or_default()
        ),
        "resync" => "A full resync of the install is queued.".to_owned(),
        "pause" => "The install is paused; its customer sees your message.".to_owned(),
        _ => return None,
    })
}

/// `/admin/runs/{id}`
#[component]
pub fn RunDetailPage() -> impl IntoView {
    let params = use_params_map();
    let action = ServerAction::<AdminRunAction>::new();
    let tick = RwSignal::new(0u32);
    let query = use_query_map();
    // Just after a repair action, follow the install until its next run shows.
    let query_done = move || query.read().get("done").is_some();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(
        move || (id(), tick.get(), action.version().get()),
        |(id, _, _)| get_run_detail(id),
    );
    // While the run (or a retry of it) runs, the page follows it.
    Effect::new(move |_| {
        let live = data.with(|d| {
            d.as_ref().and_then(|r| r.as_ref().ok()).is_some_and(|p| {
                p.attempts.iter().any(|a| a.finished_at.is_none())
                    || p.retry == RetryState::Waiting
                    || p.newest.is_some_and(|(n, o)| {
                        o == RunOutcome::Running || (n == p.run.id && query_done())
                    })
            })
        });
        if live {
            set_timeout(
                move || tick.update(|n| *n += 1),
                Duration::from_millis(2000),
            );
        }
    });
    view! {
        <Title text=move || format!("Run #{}", id()) />
        {loaded(data, move |detail| view! { <Detail detail action /> })}
    }
}

#[component]
fn RunAction(
    action: ServerAction<AdminRunAction>,
    run: i64,
    name: &'static str,
    label: &'static str,
    #[prop(optional)] primary: bool,
) -> impl IntoView {
    view! {
        <ActionForm action=action attr:class="inline-form">
            <input type="hidden" name="id" value=run.to_string() />
            <input type="hidden" name="action" value=name />
            <button type="submit" class=if primary { "button" } else { "button button-ghost" } data-action=name
                disabled=move || action.pending().get()>{label}</button>
        </ActionForm>
    }
}

#[component]
fn Detail(detail: RunDetail, action: ServerAction<AdminRunAction>) -> impl IntoView {
    let query = use_query_map();
    let done = query
        .read()
        .get("done")
        .and_then(|d| flash(&d, query.read().get("records")));
    let error = action_error(action);
    let run = detail.run.clone();
    let id = run.id;
    let active = detail.install_status == "active";
    let back = if detail.vendor {
        "/vendor/failures"
    } else {
        "/admin/failures"
    };
    view! {
        <p class="breadcrumb"><a href=back>"← Failures"</a></p>
        <header class="page-header" data-outcome=run.outcome.as_str()>
            <div>
                <p class="eyebrow">{format!("{} · {}", detail.listing_name, detail.provider)}</p>
                <h1>{format!("Run #{id}")}</h1>
                <p>
                    <OutcomeBadge outcome=run.outcome />
                    " "
                    <span class="muted">{format!("attempt {} of job {} · {} sync · {}", run.attempt + 1, run.job_id, run.kind, run.trigger)}</span>
                </p>
                {(!detail.vendor).then(|| view! {
                    <p class="small muted">{format!("{} · install {} ({})", detail.tenant_name, detail.install_id, detail.install_status)}</p>
                })}
                {detail.install_reason.clone().map(|r| view! { <p class="small">{r}</p> })}
            </div>
            {(!detail.vendor).then(|| view! {
                <div class="actions">
                    {match detail.retry {
                        RetryState::Waiting => Some(view! { <RunAction action run=id name="retry" label="Retry now" primary=true /> }),
                        RetryState::Dead => Some(view! { <RunAction action run=id name="retry" label="Retry" primary=true /> }),
                        RetryState::None => None,
                    }}
                    {(detail.replayable > 0 && active).then(|| view! {
                        <RunAction action run=id name="replay" label="Replay quarantined records" />
                    })}
                    {active.then(|| view! { <RunAction action run=id name="resync" label="Force full resync" /> })}
                    {active.then(|| view! { <PauseForm action run=id /> })}
                </div>
            })}
        </header>
        {done.map(|text| view! { <div class="alert alert-success" role="status">{text}</div> })}
        <FormError error fields=&["message"] />
        {run.error_message.clone().map(|message| view! {
            <section class="panel alert-panel" aria-labelledby="error-heading">
                <h2 id="error-heading">{run.error_class.map(|c| c.label()).unwrap_or("Error")}</h2>
                <p class="error-message">{message}</p>
                {run.retry_at.clone().map(|at| view! { <p class="small muted">"Next attempt " <When stamp=at /></p> })}
            </section>
        })}
        <div class="install-grid">
            <div class="install-main">
                <Attempts attempts=detail.attempts.clone() current=id />
                <section class="panel" aria-labelledby="timeline-heading">
                    <h2 id="timeline-heading">"Timeline"</h2>
                    {if detail.events.is_empty() {
                        view! { <p class="muted">"No events recorded."</p> }.into_any()
                    } else {
                        view! {
                            <ol class="timeline">
                                {detail.events.iter().cloned().map(|e| view! {
                                    <li class=format!("event event-{}", e.kind.as_str())>
                                        <span class="small muted"><When stamp=e.at /></span>
                                        " "
                                        <span class="badge badge-muted">{e.kind.label()}</span>
                                        " "
                                        {e.message}
                                        {e.request.map(|r| view! { <div class="request-summary"><code class="break">{r}</code></div> })}
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any()
                    }}
                </section>
                {(!detail.quarantined.is_empty()).then(|| view! {
                    <section class="panel" aria-labelledby="quarantine-heading">
                        <h2 id="quarantine-heading">"Quarantined records"</h2>
                        {(detail.replay_pending > 0).then(|| view! {
                            <p class="small">{format!("{} record(s) wait to be replayed by the install's next sync.", detail.replay_pending)}</p>
                        })}
                        <table class="table">
                            <thead><tr><th scope="col">"Stream"</th><th scope="col">"Record"</th><th scope="col">"Why"</th></tr></thead>
                            <tbody>
                                {detail.quarantined.iter().cloned().map(|q| view! {
                                    <tr><td>{q.stream}</td><td><code>{q.external_id}</code></td><td class="error-text small">{q.reason}</td></tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                })}
            </div>
            <aside class="install-side">
                <section class="panel" aria-labelledby="counts-heading">
                    <h2 id="counts-heading">"Counts"</h2>
                    <dl class="facts">
                        <dt>"Started"</dt><dd><When stamp=run.started_at.clone() /></dd>
                        <dt>"Took"</dt><dd>{duration(run.duration_ms)}</dd>
                        <dt>"Pages"</dt><dd>{run.pages}</dd>
                        <dt>"Read / written"</dt><dd>{format!("{} / {}", run.read, run.written)}</dd>
                        <dt>"Unchanged / deleted / failed"</dt><dd>{format!("{} / {} / {}", run.unchanged, run.deleted, run.failed)}</dd>
                    </dl>
                </section>
                {detail.newest.map(|(newest, outcome)| view! {
                    <section class="panel newest-run" aria-labelledby="newest-heading">
                        <h2 id="newest-heading">"The install's newest run"</h2>
                        <p>
                            {if newest == id { view! { <span>"This one"</span> }.into_any() } else {
                                view! { <a href=format!("/admin/runs/{newest}")>{format!("#{newest}")}</a> }.into_any()
                            }}
                            " "
                            <OutcomeBadge outcome />
                        </p>
                    </section>
                })}
                <section class="panel" aria-labelledby="cursor-heading">
                    <h2 id="cursor-heading">"Cursors"</h2>
                    <Cursors title="Before" cursors=detail.cursor_before.clone() />
                    <Cursors title="After" cursors=detail.cursor_after.clone() />
                </section>
            </aside>
        </div>
    }
}

#[component]
fn Cursors(title: &'static str, cursors: Vec<(String, String)>) -> impl IntoView {
    view! {
        <h3 class="small">{title}</h3>
        {if cursors.is_empty() {
            view! { <p class="small muted">"—"</p> }.into_any()
        } else {
            view! {
                <dl class="facts cursors" data-when=title.to_lowercase()>
                    {cursors.into_iter().map(|(stream, cursor)| view! {
                        <dt>{stream}</dt><dd><code class="break">{cursor}</code></dd>
                    }).collect_view()}
                </dl>
            }.into_any()
        }}
    }
}

#[component]
fn PauseForm(action: ServerAction<AdminRunAction>, run: i64) -> impl IntoView {
    let error = action_error(action);
    view! {
        <details class="confirm">
            <summary class="button button-ghost button-danger-ghost">"Pause install"</summary>
            <div class="confirm__panel">
                <ActionForm action=action attr:class="stack">
                    <input type="hidden" name="id" value=run.to_string() />
                    <input type="hidden" name="action" value="pause" />
                    <div class="field">
                        <label for="pause-message">"Message to the customer"</label>
                        <textarea id="pause-message" name="message" rows="3" required maxlength="500"
                            placeholder="We paused this sync while the provider fixes an outage; we will resume it."></textarea>
                        <FieldError error field="message" />
                    </div>
                    <button type="submit" class="button button-small button-danger" data-action="pause">"Pause and tell the customer"</button>
                </ActionForm>
            </div>
        </details>
    }
}

#[component]
fn Attempts(attempts: Vec<RunView>, current: i64) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="attempts-heading">
            <h2 id="attempts-heading">"Attempts of this job"</h2>
            <div class="table-wrap">
                <table class="table attempts">
                    <thead>
                        <tr>
                            <th scope="col">"Attempt"</th>
                            <th scope="col">"Started"</th>
                            <th scope="col">"Took"</th>
                            <th scope="col">"Outcome"</th>
                            <th scope="col" class="num">"Written"</th>
                            <th scope="col">"Error"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {attempts.into_iter().map(|a| {
                            let here = (a.id == current).then_some("true");
                            view! {
                                <tr aria-current=here data-run=a.id>
                                    <td><a href=format!("/admin/runs/{}", a.id)>{format!("{} (#{})", a.attempt + 1, a.id)}</a></td>
                                    <td class="small"><When stamp=a.started_at.clone() /></td>
                                    <td class="small">{duration(a.duration_ms)}</td>
                                    <td><OutcomeBadge outcome=a.outcome /></td>
                                    <td class="num">{a.written}</td>
                                    <td class="error-text small">{a.error_message.clone().unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
