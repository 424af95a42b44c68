//! The install wizard: `/installs/new/{slug}` (its first step, before anything is stored) and
//! `/installs/{id}/setup/{step}`. Each step is a plain form that saves and goes on to the next, so
//! the wizard works without JavaScript and can be left and resumed; errors sit beside their
//! fields. An installed integration is edited through the same steps.

use super::connections::ConnectForm;
use super::forms::{action_error, ErrorPanel, FieldError, FormError};
use super::pages::set_status_of;
use crate::api::connections::{ConnectFields, StartConnect};
use crate::api::installs::{
    get_wizard, step_path, ActivateInstall, InstallAction, SaveInstallConnections,
    SaveInstallMapping, SaveInstallSchedule, SaveInstallSettings, SaveInstallStreams,
};
use crate::error::AppError;
use crate::model::connection::ConnectionStatus;
use crate::model::install::{InstallStatus, Schedule, WizardPage, WizardStep};
use crate::model::listing::{ConfigKind, Trigger};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// `/installs/new/{slug}`
#[component]
pub fn NewInstallPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(
        move || params.read().get("slug").unwrap_or_default(),
        |slug| {
            get_wizard(
                None,
                Some(slug),
                WizardStep::Connections.as_str().to_owned(),
            )
        },
    );
    view! {
        <Title text="Install" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => view! { <Wizard page /> }.into_any(),
                Err(error) => problem(error),
            })}
        </Suspense>
    }
}

/// `/installs/{id}/setup/{step}`
#[component]
pub fn SetupPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(
        move || {
            let p = params.read();
            (
                p.get("id").unwrap_or_default(),
                p.get("step").unwrap_or_default(),
            )
        },
        |(id, step)| get_wizard(Some(id), None, step),
    );
    view! {
        <Title text="Set up the integration" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => view! { <Wizard page /> }.into_any(),
                Err(error) => problem(error),
            })}
        </Suspense>
    }
}

fn problem(error: AppError) -> AnyView {
    set_status_of(&error);
    match error {
        AppError::Unauthorized => view! {
            <section class="panel empty-state">
                <h1>"Log in to install integrations"</h1>
                <p>"Installs belong to your organization. Log in, or sign up, to continue."</p>
                <div class="actions">
                    <a class="button" href="/login">"Log in"</a>
                    <a class="button button-ghost" href="/signup">"Sign up"</a>
                </div>
            </section>
        }
        .into_any(),
        error => view! { <ErrorPanel error /> }.into_any(),
    }
}

/// The steps, as a progress list: done, current, ahead (links once the install exists).
#[component]
fn Steps(page: WizardPage) -> impl IntoView {
    let id = page.id.map(|i| i.to_string());
    let current = page.step;
    view! {
        <nav aria-label="Install steps">
            <ol class="wizard-steps">
                {WizardStep::ALL.iter().map(|step| {
                    let state = if *step == current {
                        "current"
                    } else if step.number() < current.number() {
                        "done"
                    } else {
                        "ahead"
                    };
                    let has_problem = page.problems.iter().any(|(s, _)| s == step);
                    let label = format!("{}. {}", step.number(), step.label());
                    let link = id.clone().map(|id| step_path(&id, step.as_str()));
                    view! {
                        <li class=format!("wizard-step wizard-step-{state}") data-problem=has_problem.then_some("true")>
                            {match (link, *step == current) {
                                (_, true) => view! { <span aria-current="step">{label}</span> }.into_any(),
                                (Some(href), false) => view! { <a href=href>{label}</a> }.into_any(),
                                (None, false) => view! { <span>{label}</span> }.into_any(),
                            }}
                        </li>
                    }
                }).collect_view()}
            </ol>
        </nav>
    }
}

#[component]
fn Wizard(page: WizardPage) -> impl IntoView {
    let heading = match page.status {
        InstallStatus::Draft => format!("Install {}", page.listing_name),
        _ => format!("Change {}", page.listing_name),
    };
    let back = match page.id {
        Some(id) if page.status != InstallStatus::Draft => format!("/installs/{id}"),
        _ => format!("/marketplace/{}", page.listing_slug),
    };
    let back_label = if page.status == InstallStatus::Draft {
        format!("← {}", page.listing_name)
    } else {
        "← The install".to_owned()
    };
    let step = page.step;
    view! {
        <p class="breadcrumb"><a href=back>{back_label}</a></p>
        <header class="page-header">
            <div>
                <p class="eyebrow">{format!("Step {} of {} · version {}", step.number(), WizardStep::ALL.len(), page.version)}</p>
                <h1>{heading}</h1>
                <p class="muted">{format!("{} → {}", page.source_name, page.destination_name)}</p>
            </div>
        </header>
        <Steps page=page.clone() />
        {(!page.can_manage).then(|| view! {
            <p class="alert alert-warning" role="status">"Only owners and admins of the organization install and change integrations; you can look around."</p>
        })}
        <section class="panel wizard-panel" data-step=step.as_str()>
            {match step {
                WizardStep::Connections => view! { <ConnectionsStep page=page.clone() /> }.into_any(),
                WizardStep::Settings => view! { <SettingsStep page=page.clone() /> }.into_any(),
                WizardStep::Streams => view! { <StreamsStep page=page.clone() /> }.into_any(),
                WizardStep::Mapping => view! { <MappingStep page=page.clone() /> }.into_any(),
                WizardStep::Schedule => view! { <ScheduleStep page=page.clone() /> }.into_any(),
                WizardStep::Review => view! { <ReviewStep page=page.clone() /> }.into_any(),
            }}
        </section>
    }
}

fn usable_ids(connections: &[crate::model::connection::ConnectionView]) -> Vec<uuid::Uuid> {
    connections
        .iter()
        .filter(|c| c.status != ConnectionStatus::Revoked)
        .map(|c| c.id)
        .collect()
}

fn id_text(page: &WizardPage) -> String {
    page.id.map(|i| i.to_string()).unwrap_or_default()
}

/// "Back" and "Continue" under a step's form.
#[component]
fn StepButtons(page: WizardPage, pending: Signal<bool>) -> impl IntoView {
    let back = match (page.id, page.step.previous()) {
        (Some(id), Some(prev)) => Some(step_path(&id.to_string(), prev.as_str())),
        _ => None,
    };
    view! {
        <div class="actions wizard-actions">
            {back.map(|href| view! { <a class="button button-ghost" href=href>"Back"</a> })}
            <button type="submit" class="button" disabled=move || pending.get() || !page.can_manage>
                "Save and continue"
            </button>
        </div>
    }
}

#[component]
fn ConnectionsStep(page: WizardPage) -> impl IntoView {
    let save = ServerAction::<SaveInstallConnections>::new();
    let start = ServerAction::<StartConnect>::new();
    let fields_action = ServerAction::<ConnectFields>::new();
    let error = action_error(save);
    let start_error = action_error(start);
    let fields_error = action_error(fields_action);
    let here = match page.id {
        Some(id) => step_path(&id.to_string(), "connections"),
        None => format!("/installs/new/{}", page.listing_slug),
    };
    let pending = Signal::derive(move || save.pending().get());
    // Back from connecting an account: that one is the choice.
    let just_connected = use_query_map()
        .read_untracked()
        .get("connected")
        .and_then(|id| uuid::Uuid::parse_str(&id).ok());
    let slots = page.connections.clone();
    let connect_slots = page.connections.clone();
    let listing_slug = page.listing_slug.clone();
    view! {
        <h2>"Which accounts does it use?"</h2>
        <p class="muted">"Choose the account to read from and, unless the records stay in Patchbay, the one to write to. Connect one here if it is not listed."</p>
        <FormError error fields=&["connections"] />
        <FieldError error field="connections" />
        <ActionForm action=save attr:class="stack" attr:novalidate=true>
            <input type="hidden" name="id" value=id_text(&page) />
            <input type="hidden" name="slug" value=page.listing_slug.clone() />
            {slots.iter().map(|slot| {
                let role = slot.role.clone();
                let legend = if role == "source" {
                    format!("Read from {}", slot.provider.name)
                } else {
                    format!("Write to {}", slot.provider.name)
                };
                let usable: Vec<_> = slot.provider.connections.iter()
                    .filter(|c| c.status != ConnectionStatus::Revoked)
                    .cloned()
                    .collect();
                view! {
                    <fieldset class="field choice-group" data-role=role.clone()>
                        <legend>{legend}</legend>
                        {if usable.is_empty() {
                            view! { <p class="muted">{format!("No {} account is connected yet: connect one below.", slot.provider.name)}</p> }.into_any()
                        } else {
                            usable.into_iter().map(|c| {
                                let label = c.account_label.clone().unwrap_or_else(|| c.provider_name.clone());
                                let note = (c.status != ConnectionStatus::Active).then_some(" (needs reconnecting)");
                                let chosen = match just_connected {
                                    Some(new) if usable_ids(&slot.provider.connections).contains(&new) => new == c.id,
                                    _ => slot.selected == Some(c.id),
                                };
                                view! {
                                    <label class="choice">
                                        <input type="radio" name=role.clone() value=c.id.to_string() checked=chosen />
                                        <span>
                                            {label}{note}
                                            <span class="muted small">{format!(" — connected {}", c.created_at)}</span>
                                        </span>
                                    </label>
                                }
                            }).collect_view().into_any()
                        }}
                    </fieldset>
                }
            }).collect_view()}
            <StepButtons page=page.clone() pending />
        </ActionForm>
        <FormError error=start_error fields=&[] />
        <FormError error=fields_error fields=&[] />
        <div class="card-grid wizard-connect">
            {connect_slots.into_iter().map(|slot| {
                let name = slot.provider.name.clone();
                let has_active = slot.provider.connections.iter().any(|c| c.status == ConnectionStatus::Active);
                let here = here.clone();
                let listing = listing_slug.clone();
                let provider_id = slot.provider.id.clone();
                let form = view! { <ConnectForm provider=slot.provider start fields_action listing=Some(listing) reconnect=None return_to=here /> };
                if has_active {
                    view! {
                        <section class="provider-connect" data-provider=provider_id>
                            <details>
                                <summary>{format!("Connect another {name} account")}</summary>
                                {form}
                            </details>
                        </section>
                    }.into_any()
                } else {
                    view! {
                        <section class="provider-connect" data-provider=provider_id>
                            <h3>{format!("Connect {name}")}</h3>
                            {form}
                        </section>
                    }.into_any()
                }
            }).collect_view()}
        </div>
    }
}

#[component]
fn SettingsStep(page: WizardPage) -> impl IntoView {
    let save = ServerAction::<SaveInstallSettings>::new();
    let error = action_error(save);
    let pending = Signal::derive(move || save.pending().get());
    let empty = page.config_fields.is_empty() && page.inputs.is_empty();
    view! {
        <h2>"Settings"</h2>
        <FormError error fields=&[] />
        <ActionForm action=save attr:class="stack" attr:novalidate=true>
            <input type="hidden" name="id" value=id_text(&page) />
            {empty.then(|| view! { <p class="muted">"This integration has nothing to set: continue."</p> })}
            {page.config_fields.iter().map(|f| {
                let name = format!("config[{}]", f.key);
                let id = format!("config-{}", f.key);
                let value = page.config.get(&f.key).cloned().unwrap_or_default();
                let field_key = format!("config.{}", f.key);
                let message = move || {
                    error.get().filter(|e| e.field() == Some(field_key.as_str())).map(|e| e.to_string())
                };
                let help = (!f.help.is_empty()).then(|| f.help.clone());
                let input = match f.kind {
                    ConfigKind::Boolean => view! {
                        <label class="choice">
                            <input type="checkbox" id=id.clone() name=name value="true" checked=value == "true" />
                            <span>{f.label.clone()}</span>
                        </label>
                    }.into_any(),
                    kind => {
                        let ty = match kind {
                            ConfigKind::Number => "number",
                            ConfigKind::Email => "email",
                            ConfigKind::Url => "url",
                            _ => "text",
                        };
                        view! {
                            <label for=id.clone()>{f.label.clone()}{f.required.then_some(" (required)")}</label>
                            <input id=id.clone() name=name type=ty value=value required=f.required step=(ty == "number").then_some("any") />
                        }.into_any()
                    }
                };
                view! {
                    <div class="field">
                        {input}
                        {help.map(|h| view! { <p class="help">{h}</p> })}
                        {move || message().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                    </div>
                }
            }).collect_view()}
            {page.inputs.iter().map(|f| {
                let id = format!("input-{}", f.name);
                let field_key = format!("inputs.{}", f.name);
                let message = move || {
                    error.get().filter(|e| e.field() == Some(field_key.as_str())).map(|e| e.to_string())
                };
                view! {
                    <div class="field">
                        <label for=id.clone()>{f.label.clone()}" (required)"</label>
                        <input id=id name=format!("inputs[{}]", f.name) value=f.value.clone() required=true />
                        {(!f.help.is_empty()).then(|| view! { <p class="help">{f.help.clone()}</p> })}
                        {move || message().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                    </div>
                }
            }).collect_view()}
            <StepButtons page=page.clone() pending />
        </ActionForm>
    }
}

#[component]
fn StreamsStep(page: WizardPage) -> impl IntoView {
    let save = ServerAction::<SaveInstallStreams>::new();
    let error = action_error(save);
    let pending = Signal::derive(move || save.pending().get());
    view! {
        <h2>"What syncs"</h2>
        <p class="muted">{format!("The streams of {} this integration reads. Each record is copied into {}.", page.source_name, page.destination_name)}</p>
        <FormError error fields=&["streams"] />
        <ActionForm action=save attr:class="stack" attr:novalidate=true>
            <input type="hidden" name="id" value=id_text(&page) />
            <fieldset class="field choice-group">
                <legend>"Streams"</legend>
                {page.streams.iter().enumerate().map(|(i, s)| view! {
                    <label class="choice">
                        <input type="checkbox" name=format!("streams[{i}]") value=s.name.clone() checked=s.selected />
                        <span>
                            <strong>{s.label.clone()}</strong>
                            {(!s.fields.is_empty()).then(|| view! { <span class="muted small">{format!(" — {}", s.fields.join(", "))}</span> })}
                        </span>
                    </label>
                }).collect_view()}
            </fieldset>
            <FieldError error field="streams" />
            <StepButtons page=page.clone() pending />
        </ActionForm>
    }
}

#[component]
fn MappingStep(page: WizardPage) -> impl IntoView {
    let save = ServerAction::<SaveInstallMapping>::new();
    let error = action_error(save);
    let pending = Signal::derive(move || save.pending().get());
    let rows = page.mapping.len();
    let blank = 3;
    let to_list = page.destination_fields.clone();
    view! {
        <h2>"Field mapping"</h2>
        <p class="muted">{format!("Each row copies a field of {} (a dotted path such as address.city) into a field of {}. The defaults come from the integration.", page.source_name, page.destination_name)}</p>
        <FormError error fields=&["mapping"] />
        <FieldError error field="mapping" />
        <ActionForm action=save attr:class="stack" attr:novalidate=true>
            <input type="hidden" name="id" value=id_text(&page) />
            <datalist id="source-fields">
                {page.source_fields.iter().map(|f| view! { <option value=f.clone()></option> }).collect_view()}
            </datalist>
            {to_list.clone().map(|fields| view! {
                <datalist id="destination-fields">
                    {fields.into_iter().map(|f| view! { <option value=f></option> }).collect_view()}
                </datalist>
            })}
            <div class="table-wrap">
                <table class="table mapping-table">
                    <thead>
                        <tr><th scope="col">"Destination field"</th><th scope="col">"Copied from"</th><th scope="col">"Check"</th></tr>
                    </thead>
                    <tbody>
                        {page.mapping.iter().enumerate().map(|(i, row)| {
                            let flag = if row.destination_missing {
                                Some(("badge badge-danger", format!("{} has no such field", page.destination_name)))
                            } else if row.source_missing {
                                Some(("badge badge-warning", format!("Not a field of {}: it will be empty", page.source_name)))
                            } else {
                                None
                            };
                            let flag_class = flag.as_ref().map(|(c, _)| c.to_string());
                            view! {
                                <tr data-flag=flag_class>
                                    <td>
                                        <label class="visually-hidden" for=format!("map-to-{i}")>{format!("Destination field {}", i + 1)}</label>
                                        <input id=format!("map-to-{i}") name=format!("mapping[{i}][to]") value=row.to.clone() list=to_list.is_some().then_some("destination-fields") />
                                    </td>
                                    <td>
                                        <label class="visually-hidden" for=format!("map-from-{i}")>{format!("Source field {}", i + 1)}</label>
                                        <input id=format!("map-from-{i}") name=format!("mapping[{i}][from]") value=row.from.clone() list="source-fields" />
                                    </td>
                                    <td>
                                        {match flag {
                                            Some((class, text)) => view! { <span class=class>{text}</span> }.into_any(),
                                            None => view! { <span class="muted small">{if row.default { "Default" } else { "Yours" }}</span> }.into_any(),
                                        }}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                        {(rows..rows + blank).map(|i| view! {
                            <tr>
                                <td>
                                    <label class="visually-hidden" for=format!("map-to-{i}")>{format!("Destination field {}", i + 1)}</label>
                                    <input id=format!("map-to-{i}") name=format!("mapping[{i}][to]") list=to_list.is_some().then_some("destination-fields") />
                                </td>
                                <td>
                                    <label class="visually-hidden" for=format!("map-from-{i}")>{format!("Source field {}", i + 1)}</label>
                                    <input id=format!("map-from-{i}") name=format!("mapping[{i}][from]") list="source-fields" />
                                </td>
                                <td><span class="muted small">"New row"</span></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="help">"Empty a row's two cells to remove it."</p>
            <div class="actions">
                <button type="submit" name="reset" value="1" class="button button-ghost" disabled=move || pending.get() || !page.can_manage>
                    "Put the integration's mapping back"
                </button>
            </div>
            <StepButtons page=page.clone() pending />
        </ActionForm>
    }
}

#[component]
fn ScheduleStep(page: WizardPage) -> impl IntoView {
    let save = ServerAction::<SaveInstallSchedule>::new();
    let error = action_error(save);
    let pending = Signal::derive(move || save.pending().get());
    let (current_interval, current_cron) = match &page.schedule {
        Schedule::Every(i) => (Some(*i), String::new()),
        Schedule::Cron(c) => (None, c.clone()),
        Schedule::Manual => (None, String::new()),
    };
    let offers_schedule = page.recipe_triggers.contains(&Trigger::Schedule);
    let cron_chosen = matches!(page.schedule, Schedule::Cron(_));
    view! {
        <h2>"When it runs"</h2>
        <FormError error fields=&["schedule", "cron", "triggers"] />
        <ActionForm action=save attr:class="stack" attr:novalidate=true>
            <input type="hidden" name="id" value=id_text(&page) />
            <fieldset class="field choice-group">
                <legend>"Syncs start"</legend>
                {page.recipe_triggers.iter().enumerate().map(|(i, t)| view! {
                    <label class="choice">
                        <input type="checkbox" name=format!("triggers[{i}]") value=t.as_str() checked=page.triggers.contains(t) />
                        <span>{t.label()}</span>
                    </label>
                }).collect_view()}
            </fieldset>
            <FieldError error field="triggers" />
            {offers_schedule.then(|| view! {
                <fieldset class="field choice-group">
                    <legend>"Schedule"</legend>
                    {page.allowed_schedules.iter().map(|i| view! {
                        <label class="choice">
                            <input type="radio" name="schedule" value=i.as_str() checked=current_interval == Some(*i) />
                            <span>{i.label()}</span>
                        </label>
                    }).collect_view()}
                    <label class="choice">
                        <input type="radio" name="schedule" value="cron" checked=cron_chosen />
                        <span>"Custom (cron, in UTC)"</span>
                    </label>
                    <div class="field">
                        <label for="cron">"Cron expression"</label>
                        <input id="cron" name="cron" value=current_cron placeholder="0 */6 * * *" />
                        <p class="help">"Five fields: minute, hour, day of month, month, day of week. Used when “Custom” is chosen; it may not run more often than the shortest schedule above."</p>
                        <FieldError error field="cron" />
                    </div>
                </fieldset>
            })}
            <FieldError error field="schedule" />
            <StepButtons page=page.clone() pending />
        </ActionForm>
    }
}

#[component]
fn ReviewStep(page: WizardPage) -> impl IntoView {
    let activate = ServerAction::<ActivateInstall>::new();
    let discard = ServerAction::<InstallAction>::new();
    let error = action_error(activate);
    let discard_error = action_error(discard);
    let id = id_text(&page);
    let draft = page.status == InstallStatus::Draft;
    let ready = page.problems.is_empty();
    let accounts: Vec<String> = page
        .connections
        .iter()
        .map(|slot| {
            let chosen = slot
                .selected
                .and_then(|s| slot.provider.connections.iter().find(|c| c.id == s))
                .map(|c| {
                    c.account_label
                        .clone()
                        .unwrap_or_else(|| c.provider_name.clone())
                })
                .unwrap_or_else(|| "not chosen".into());
            format!(
                "{} ({}): {chosen}",
                slot.provider.name,
                if slot.role == "source" {
                    "reads from"
                } else {
                    "writes to"
                }
            )
        })
        .collect();
    let streams: Vec<String> = page
        .streams
        .iter()
        .filter(|s| s.selected)
        .map(|s| s.label.clone())
        .collect();
    view! {
        <h2>{if draft { "Review and install" } else { "Review" }}</h2>
        <FormError error fields=&[] />
        <FormError error=discard_error fields=&[] />
        {(!ready).then(|| view! {
            <div class="alert alert-warning" role="alert">
                <p>"Before it can run:"</p>
                <ul>
                    {page.problems.iter().map(|(step, text)| {
                        let href = page.id.map(|i| step_path(&i.to_string(), step.as_str())).unwrap_or_default();
                        view! { <li><a href=href>{step.label()}</a>": "{text.clone()}</li> }
                    }).collect_view()}
                </ul>
            </div>
        })}
        <dl class="facts">
            <dt>"Accounts"</dt>
            <dd>{accounts.join("; ")}</dd>
            <dt>"Streams"</dt>
            <dd>{streams.join(", ")}</dd>
            <dt>"Fields"</dt>
            <dd>{page.mapping.iter().map(|m| format!("{} ← {}", m.to, m.from)).collect::<Vec<_>>().join(", ")}</dd>
            {(!page.config_fields.is_empty()).then(|| view! {
                <dt>"Settings"</dt>
                <dd>{page.config_fields.iter().map(|f| format!("{}: {}", f.label, page.config.get(&f.key).cloned().unwrap_or_else(|| "—".into()))).collect::<Vec<_>>().join(", ")}</dd>
            })}
            <dt>"Runs"</dt>
            <dd>{format!("{}; {}", page.schedule.label(), page.triggers.iter().map(|t| t.label().to_lowercase()).collect::<Vec<_>>().join(", "))}</dd>
        </dl>
        {if draft {
            let discard_id = id.clone();
            view! {
                <div class="actions wizard-actions">
                    <ActionForm action=activate>
                        <input type="hidden" name="id" value=id />
                        <button type="submit" class="button button-large" disabled=move || activate.pending().get() || !ready || !page.can_manage>
                            "Install and start the first sync"
                        </button>
                    </ActionForm>
                    <details class="confirm">
                        <summary class="button button-ghost button-danger-ghost">"Discard"</summary>
                        <div class="confirm__panel">
                            <p>"Discard this install? Nothing has run yet."</p>
                            <ActionForm action=discard>
                                <input type="hidden" name="id" value=discard_id />
                                <input type="hidden" name="action" value="discard" />
                                <button type="submit" class="button button-small button-danger">"Yes, discard"</button>
                            </ActionForm>
                        </div>
                    </details>
                </div>
            }.into_any()
        } else {
            view! {
                <p class="muted">"Changes are saved: the next run uses them."</p>
                <div class="actions"><a class="button" href=format!("/installs/{id}")>"Back to the install"</a></div>
            }.into_any()
        }}
    }
}
