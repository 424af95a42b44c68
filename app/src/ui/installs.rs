//! Installs: `/installs` (the organization's installs) and `/installs/{id}` (one install: its
//! state and actions, the running sync's live progress, the history of runs with their attempts,
//! the newest attempt's timeline, quarantined records, and what it wrote to the Patchbay store).
//!
//! With JavaScript the install page refreshes itself — every second and a half while a sync runs,
//! every five seconds otherwise; without it a reload shows the same, since everything is
//! rendered on the server.

use super::forms::{action_error, ErrorPanel, FieldError, FormError};
use super::pages::{console_for, set_status_of};
use crate::api::installs::{get_install, get_installs, InstallAction, SetWebhookSecret};
use crate::error::AppError;
use crate::model::install::{
    ErrorClass, EventView, InstallPage, InstallStatus, InstallSummary, RunGroup, RunOutcome,
    RunView, Stamp, OPERATOR_PAUSE,
};
use crate::model::listing::Trigger;
use crate::model::OrgKind;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// A moment: relative, with the exact time on hover.
#[component]
pub fn When(stamp: Stamp) -> impl IntoView {
    view! { <time title=stamp.exact.clone() datetime=stamp.exact>{stamp.relative}</time> }
}

#[component]
pub fn InstallBadge(status: InstallStatus) -> impl IntoView {
    let class = match status {
        InstallStatus::Active => "badge badge-success",
        InstallStatus::Paused => "badge badge-warning",
        InstallStatus::Draft => "badge badge-accent",
        InstallStatus::Uninstalled => "badge badge-muted",
    };
    view! { <span class=class>{status.label()}</span> }
}

#[component]
pub fn OutcomeBadge(outcome: RunOutcome) -> impl IntoView {
    let class = match outcome {
        RunOutcome::Running => "badge badge-accent",
        RunOutcome::Succeeded => "badge badge-success",
        RunOutcome::Failed => "badge badge-warning",
        RunOutcome::Dead => "badge badge-danger",
        RunOutcome::Cancelled | RunOutcome::Released => "badge badge-muted",
    };
    view! { <span class=class data-outcome=outcome.as_str()>{outcome.label()}</span> }
}

pub(super) fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn count(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `/installs`
#[component]
pub fn InstallsPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(|| (), |_| get_installs());
    view! {
        <Title text="My installs" />
        {console_for(OrgKind::Customer, move |_| view! {
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || data.get().map(|result| match result {
                    Ok(page) => view! {
                        <header class="page-header">
                            <div>
                                <p class="eyebrow">{page.org_name.clone()}</p>
                                <h1>"My installs"</h1>
                            </div>
                            <a class="button" href="/marketplace">"Install an integration"</a>
                        </header>
                        {query.read().get("discarded").is_some().then(|| view! {
                            <div class="alert alert-success" role="status">"The unfinished install was discarded."</div>
                        })}
                        {if page.installs.is_empty() {
                            view! {
                                <div class="panel empty-state">
                                    <h2>"Nothing installed yet"</h2>
                                    <p>"Pick an integration in the marketplace to connect your apps and start syncing."</p>
                                    <a class="button" href="/marketplace">"Browse the marketplace"</a>
                                </div>
                            }.into_any()
                        } else {
                            view! {
                                <div class="panel table-wrap">
                                    <table class="table installs-table">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Integration"</th>
                                                <th scope="col">"Status"</th>
                                                <th scope="col">"Last run"</th>
                                                <th scope="col">"Next run"</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {page.installs.into_iter().map(|i| view! { <InstallRow install=i /> }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }}
                    }.into_any(),
                    Err(error) => {
                        set_status_of(&error);
                        view! { <ErrorPanel error /> }.into_any()
                    }
                })}
            </Suspense>
        })}
    }
}

#[component]
fn InstallRow(install: InstallSummary) -> impl IntoView {
    let href = if install.status == InstallStatus::Draft {
        format!("/installs/{}/setup/connections", install.id)
    } else {
        format!("/installs/{}", install.id)
    };
    view! {
        <tr data-install=install.id.to_string()>
            <td>
                <a href=href><strong>{install.listing_name.clone()}</strong></a>
                <div class="muted small">{format!("{} → {}", install.source_name, install.destination_name)}</div>
            </td>
            <td>
                <InstallBadge status=install.status />
                {install.status_reason.clone().map(|r| view! { <div class="small muted">{r}</div> })}
            </td>
            <td>
                {match install.last_run.clone() {
                    Some(run) => view! {
                        <OutcomeBadge outcome=run.outcome />
                        " "
                        <span class="small"><When stamp=run.started_at.clone() /></span>
                    }.into_any(),
                    None => view! { <span class="muted small">"Not yet"</span> }.into_any(),
                }}
            </td>
            <td class="small">
                {match install.next_run_at.clone() {
                    Some(next) => view! { <When stamp=next /> }.into_any(),
                    None => view! { <span class="muted">{install.schedule.clone()}</span> }.into_any(),
                }}
            </td>
        </tr>
    }
}

/// `/installs/{id}`
#[component]
pub fn InstallDetailPage() -> impl IntoView {
    let params = use_params_map();
    let action = ServerAction::<InstallAction>::new();
    let secret = ServerAction::<SetWebhookSecret>::new();
    let tick = RwSignal::new(0u32);
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(
        move || {
            (
                id(),
                tick.get(),
                action.version().get(),
                secret.version().get(),
            )
        },
        |(id, _, _, _)| get_install(id),
    );
    // Live progress: refresh on a timer while the page is open (browser only; effects do not
    // run on the server).
    Effect::new(move |_| {
        let running = data.with(|d| {
            d.as_ref()
                .and_then(|r| r.as_ref().ok())
                .is_some_and(|p| p.current.is_some())
        });
        let wait = if running { 1500 } else { 5000 };
        set_timeout(
            move || tick.update(|n| *n += 1),
            Duration::from_millis(wait),
        );
    });
    view! {
        <Title text="Install" />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => view! { <Install page action secret /> }.into_any(),
                Err(error) => {
                    set_status_of(&error);
                    match error {
                        AppError::Unauthorized => view! {
                            <section class="panel empty-state">
                                <h1>"Log in to see your installs"</h1>
                                <a class="button" href="/login">"Log in"</a>
                            </section>
                        }.into_any(),
                        error => view! { <ErrorPanel error /> }.into_any(),
                    }
                }
            })}
        </Transition>
    }
}

fn flash(done: &str) -> Option<&'static str> {
    Some(match done {
        "run_now" => "A sync was started; it shows below as it runs.",
        "resync" => "A full resync was started: every record is read again, and records gone from the source are removed.",
        "pause" => "Paused. Nothing runs until you resume.",
        "resume" => "Resumed. A sync catches up on what changed meanwhile.",
        "upgrade" => "Upgraded to the newest version; a full sync applies it.",
        "uninstall" => "Uninstalled. Nothing runs any more; the history stays here.",
        "webhook_secret" => "The signing secret is saved: webhooks from the provider are now accepted.",
        _ => return None,
    })
}

/// One action button, in its own form.
#[component]
fn ActionButton(
    action: ServerAction<InstallAction>,
    id: String,
    name: &'static str,
    label: &'static str,
    #[prop(optional)] class: &'static str,
) -> impl IntoView {
    let class = if class.is_empty() {
        "button button-ghost"
    } else {
        class
    };
    view! {
        <ActionForm action=action attr:class="inline-form">
            <input type="hidden" name="id" value=id />
            <input type="hidden" name="action" value=name />
            <button type="submit" class=class data-action=name disabled=move || action.pending().get()>{label}</button>
        </ActionForm>
    }
}

/// An action that asks first.
#[component]
fn ConfirmedAction(
    action: ServerAction<InstallAction>,
    id: String,
    name: &'static str,
    label: &'static str,
    question: String,
) -> impl IntoView {
    view! {
        <details class="confirm">
            <summary class="button button-ghost button-danger-ghost">{label}</summary>
            <div class="confirm__panel">
                <p>{question}</p>
                <ActionForm action=action>
                    <input type="hidden" name="id" value=id />
                    <input type="hidden" name="action" value=name />
                    <button type="submit" class="button button-small button-danger" data-action=name>{format!("Yes, {}", label.to_lowercase())}</button>
                </ActionForm>
            </div>
        </details>
    }
}

/// Why the install is paused, and what brings it back.
#[component]
fn PausedNotice(reason: String) -> impl IntoView {
    let by_operators = reason.starts_with(OPERATOR_PAUSE);
    view! {
        <div class="alert alert-warning" role="alert">
            <p>{reason}</p>
            {if by_operators {
                view! { <p>"Resume it when they say the problem is fixed."</p> }.into_any()
            } else {
                view! { <p>"Reconnect the account under "<a href="/connections">"Connections"</a>", then resume."</p> }.into_any()
            }}
        </div>
    }
}

/// The install is past its schedule's window (see `installs::freshness`).
#[component]
fn StaleNotice(as_of: Option<Stamp>) -> impl IntoView {
    view! {
        <div class="alert alert-warning stale-warning" role="status">
            {match as_of {
                Some(at) => view! { <p>"Data as of " <When stamp=at /> ": the last two scheduled syncs did not succeed. Patchbay's operators see this too."</p> }.into_any(),
                None => view! { <p>"No sync has succeeded yet, though the schedule says one should have. Patchbay's operators see this too."</p> }.into_any(),
            }}
        </div>
    }
}

#[component]
fn Install(
    page: InstallPage,
    action: ServerAction<InstallAction>,
    secret: ServerAction<SetWebhookSecret>,
) -> impl IntoView {
    let query = use_query_map();
    let error = action_error(action);
    let summary = page.summary.clone();
    let id = summary.id.to_string();
    let status = summary.status;
    let active = status == InstallStatus::Active;
    let manage = page.can_manage && status != InstallStatus::Uninstalled;
    let done = query.read().get("done").and_then(|d| flash(&d));
    let installed = query.read().get("installed").is_some();
    view! {
        <p class="breadcrumb"><a href="/installs">"← My installs"</a></p>
        <header class="page-header install-header" data-status=status.as_str()>
            <div>
                <p class="eyebrow">{format!("{} → {} · version {}", summary.source_name, summary.destination_name, page.version)}</p>
                <h1>{summary.listing_name.clone()}</h1>
                <p><InstallBadge status /></p>
            </div>
            {manage.then(|| {
                let id = id.clone();
                view! {
                    <div class="actions">
                        {(active && page.triggers.contains(&Trigger::Manual)).then(|| view! {
                            <ActionButton action id=id.clone() name="run_now" label="Run now" class="button" />
                        })}
                        {active.then(|| view! { <ActionButton action id=id.clone() name="resync" label="Resync everything" /> })}
                        {active.then(|| view! { <ActionButton action id=id.clone() name="pause" label="Pause" /> })}
                        {(status == InstallStatus::Paused).then(|| view! { <ActionButton action id=id.clone() name="resume" label="Resume" class="button" /> })}
                        <a class="button button-ghost" href=format!("/installs/{id}/setup/connections")>"Change settings"</a>
                        {page.upgrade_to.map(|v| view! {
                            <ConfirmedAction action id=id.clone() name="upgrade" label="Upgrade"
                                question=format!("Move to version {v}? Your own field mapping is kept; a full sync follows.") />
                        })}
                        <ConfirmedAction action id=id.clone() name="uninstall" label="Uninstall"
                            question="Uninstall? Syncing stops for good; the history of runs stays.".to_owned() />
                    </div>
                }
            })}
        </header>
        {installed.then(|| view! { <div class="alert alert-success" role="status">"Installed. The first sync is on its way; watch it below."</div> })}
        {done.map(|text| view! { <div class="alert alert-success" role="status">{text}</div> })}
        <FormError error fields=&[] />
        {summary.status_reason.clone().filter(|_| status == InstallStatus::Paused).map(|reason| view! { <PausedNotice reason /> })}
        {page.stale.then(|| view! { <StaleNotice as_of=page.last_success_at.clone() /> })}
        {page.upgrade_to.filter(|_| manage).map(|v| view! {
            <p class="alert alert-info" role="status">{format!("Version {v} of this integration is out.")}</p>
        })}
        <div class="install-grid">
            <div class="install-main">
                <Progress page=page.clone() />
                <History groups=page.history.clone() />
                <Timeline events=page.events.clone() />
                {(!page.quarantined.is_empty()).then(|| view! {
                    <section class="panel" aria-labelledby="quarantine-heading">
                        <h2 id="quarantine-heading">"Quarantined records"</h2>
                        <p class="muted">"Records the destination refused, or the field mapping could not produce. The rest of each run went on without them; they are tried again on the next run."</p>
                        <div class="table-wrap">
                            <table class="table">
                                <thead><tr><th scope="col">"Record"</th><th scope="col">"Why"</th><th scope="col">"When"</th></tr></thead>
                                <tbody>
                                    {page.quarantined.iter().map(|q| view! {
                                        <tr>
                                            <td><code>{format!("{}/{}", q.stream, q.external_id)}</code></td>
                                            <td>{q.reason.clone()}</td>
                                            <td class="small"><When stamp=q.at.clone() /></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                })}
                {page.store.clone().map(|store| view! {
                    <section class="panel" aria-labelledby="store-heading" data-store-total=store.total>
                        <h2 id="store-heading">{format!("In the Patchbay store: {}", store.collection)}</h2>
                        <p class="muted">{format!("{} records. The newest changes first:", count(store.total))}</p>
                        {if store.records.is_empty() {
                            view! { <p class="muted">"Nothing yet: the first sync fills it."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="store-records" role="list">
                                    {store.records.into_iter().map(|(key, json)| view! {
                                        <li><details><summary><code>{key}</code></summary><pre>{json}</pre></details></li>
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                    </section>
                })}
            </div>
            <aside class="install-side">
                <section class="panel">
                    <h2>"Details"</h2>
                    <dl class="facts">
                        {page.connections.iter().map(|(role, account)| view! {
                            <dt>{role.clone()}</dt>
                            <dd>{account.clone()}</dd>
                        }).collect_view()}
                        <dt>"Streams"</dt>
                        <dd>{page.streams.join(", ")}</dd>
                        <dt>"Schedule"</dt>
                        <dd>{summary.schedule.clone()}</dd>
                        <dt>"Next run"</dt>
                        <dd>{match summary.next_run_at.clone() {
                            Some(next) => view! { <When stamp=next /> }.into_any(),
                            None => view! { <span class="muted">"Not scheduled"</span> }.into_any(),
                        }}</dd>
                        <dt>"Data as of"</dt>
                        <dd data-stale=page.stale.then_some("true")>{match page.last_success_at.clone() {
                            Some(at) => view! { <When stamp=at /> }.into_any(),
                            None => view! { <span class="muted">"No successful sync yet"</span> }.into_any(),
                        }}</dd>
                        <dt>"Starts on"</dt>
                        <dd>{page.triggers.iter().map(|t| t.label()).collect::<Vec<_>>().join("; ")}</dd>
                    </dl>
                </section>
                {page.webhook_url.clone().map(|url| view! { <Webhook url page=page.clone() secret /> })}
            </aside>
        </div>
    }
}

#[component]
fn Webhook(
    url: String,
    page: InstallPage,
    secret: ServerAction<SetWebhookSecret>,
) -> impl IntoView {
    let error = action_error(secret);
    view! {
        <section class="panel" aria-labelledby="webhook-heading">
            <h2 id="webhook-heading">"Webhooks"</h2>
            {if page.webhook_manual {
                view! {
                    <p>"Register this address for webhooks in your "{page.summary.source_name.clone()}" account, then paste the signing secret it shows:"</p>
                    <p><code class="break">{url}</code></p>
                    {page.webhook_ready.then(|| view! { <p class="badge badge-success">"Signing secret saved"</p> })}
                    {page.can_manage.then(|| view! {
                        <ActionForm action=secret attr:class="stack" attr:novalidate=true>
                            <input type="hidden" name="id" value=page.summary.id.to_string() />
                            <div class="field">
                                <label for="webhook-secret">"Signing secret"</label>
                                <input id="webhook-secret" name="secret" type="password" autocomplete="off" required=true />
                                <FieldError error field="secret" />
                            </div>
                            <button type="submit" class="button button-small">"Save the secret"</button>
                        </ActionForm>
                    })}
                }.into_any()
            } else {
                view! {
                    <p class="muted">{format!("Patchbay registered itself with {}: changes there start a sync within seconds. Deliveries go to", page.summary.source_name)}</p>
                    <p><code class="break">{url}</code></p>
                }.into_any()
            }}
        </section>
    }
}

/// The running attempt, or the newest one.
#[component]
fn Progress(page: InstallPage) -> impl IntoView {
    let run = page
        .current
        .clone()
        .or_else(|| page.summary.last_run.clone());
    view! {
        <section class="panel progress-panel" aria-labelledby="progress-heading" aria-live="polite"
            data-running=page.current.is_some().then_some("true")>
            <h2 id="progress-heading">{if page.current.is_some() { "Syncing now" } else { "Latest run" }}</h2>
            {match run {
                None => view! { <p class="muted">"No run yet."</p> }.into_any(),
                Some(run) => view! { <RunSummary run live=page.current.is_some() /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn RunSummary(run: RunView, live: bool) -> impl IntoView {
    let stats = [
        ("Pages", i64::from(run.pages)),
        ("Read", run.read),
        ("Written", run.written),
        ("Unchanged", run.unchanged),
        ("Deleted", run.deleted),
        ("Failed", run.failed),
    ];
    view! {
        <div class="run-summary" data-run=run.id data-outcome=run.outcome.as_str()>
            <p>
                <OutcomeBadge outcome=run.outcome />
                " "
                {format!("{} sync ({}), attempt {} — started ", run.kind, run.trigger, run.attempt + 1)}
                <When stamp=run.started_at.clone() />
                {format!(", {}", duration(run.duration_ms))}
            </p>
            {(live).then(|| view! {
                <p class="run-phase">
                    <span class="spinner" aria-hidden="true"></span>
                    {run.phase.clone().unwrap_or_else(|| "Working".into())}
                </p>
            })}
            <dl class="stats">
                {stats.into_iter().map(|(label, n)| view! {
                    <div class="stat" data-stat=label.to_lowercase()>
                        <dt>{label}</dt>
                        <dd>{count(n)}</dd>
                    </div>
                }).collect_view()}
            </dl>
            {run.error_message.clone().map(|m| {
                let class = run.error_class.map(ErrorClass::label).unwrap_or("Error");
                view! {
                    <p class="alert alert-error" role="status">
                        <strong>{class}": "</strong>{m}
                        {run.retry_at.clone().map(|at| view! { " Next try " <When stamp=at /> "." })}
                    </p>
                }
            })}
        </div>
    }
}

#[component]
fn History(groups: Vec<RunGroup>) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            {if groups.is_empty() {
                view! { <p class="muted">"No runs yet: the first sync starts when the install is done."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table history-table">
                            <thead>
                                <tr>
                                    <th scope="col">"Run"</th>
                                    <th scope="col">"Outcome"</th>
                                    <th scope="col">"Started"</th>
                                    <th scope="col">"Took"</th>
                                    <th scope="col">"Written"</th>
                                    <th scope="col">"Unchanged"</th>
                                    <th scope="col">"Deleted"</th>
                                    <th scope="col">"Failed"</th>
                                </tr>
                            </thead>
                            {groups.into_iter().map(|g| view! {
                                <tbody class="run-group" data-job=g.job_id>
                                    {g.attempts.into_iter().enumerate().map(|(i, a)| view! {
                                        <tr class=if i == 0 { "attempt attempt-latest" } else { "attempt attempt-earlier" }>
                                            <td>{format!("{} · {}", a.trigger, a.kind)}{(a.attempt > 0).then(|| format!(" · attempt {}", a.attempt + 1))}</td>
                                            <td>
                                                <OutcomeBadge outcome=a.outcome />
                                                {a.error_message.clone().map(|m| view! { <div class="small muted error-text">{m}</div> })}
                                            </td>
                                            <td class="small"><When stamp=a.started_at.clone() /></td>
                                            <td class="small">{duration(a.duration_ms)}</td>
                                            <td>{count(a.written)}</td>
                                            <td>{count(a.unchanged)}</td>
                                            <td>{count(a.deleted)}</td>
                                            <td>{count(a.failed)}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            }).collect_view()}
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Timeline(events: Vec<EventView>) -> impl IntoView {
    (!events.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="timeline-heading">
                <h2 id="timeline-heading">"What the latest attempt did"</h2>
                <ol class="timeline">
                    {events.into_iter().map(|e| view! {
                        <li class=format!("event event-{}", e.kind.as_str())>
                            <span class="small muted"><When stamp=e.at.clone() /></span>
                            " "
                            <span class="badge badge-muted">{e.kind.label()}</span>
                            " "
                            {e.message}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        }
    })
}
