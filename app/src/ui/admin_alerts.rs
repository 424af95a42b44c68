//! `/admin/alerts`: the in-app notification list (open alerts, acknowledged or not, and those
//! resolved this week), the rules that raise them, a form for a new rule, and the webhook
//! deliveries with their attempts.

use super::admin_console::{loaded, AdminConsole};
use super::forms::{action_error, FieldError, FormError};
use super::installs::When;
use crate::api::admin::{get_alerts, AcknowledgeAlert, AlertRuleAction, CreateAlertRule};
use crate::model::admin::{AlertKind, AlertRuleView, AlertView, AlertsPage, DeliveryView};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::time::Duration;

fn flash(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "The rule is saved; the workers evaluate it within a minute.",
        "enable" => "The rule is on again.",
        "disable" => "The rule is off: it raises no alerts until you turn it on.",
        "delete" => "The rule is deleted, with its alerts and deliveries.",
        "test" => "A test delivery is queued; it shows under Deliveries within seconds.",
        "rotate" => "The rule has a new signing secret; the old one no longer signs anything.",
        "acknowledged" => "Acknowledged. The alert stays open until its condition clears.",
        _ => return None,
    })
}

/// `/admin/alerts`
#[component]
pub fn AlertsPage() -> impl IntoView {
    let create = ServerAction::<CreateAlertRule>::new();
    let rule = ServerAction::<AlertRuleAction>::new();
    let ack = ServerAction::<AcknowledgeAlert>::new();
    let tick = RwSignal::new(0u32);
    let data = Resource::new(
        move || {
            (
                tick.get(),
                create.version().get(),
                rule.version().get(),
                ack.version().get(),
            )
        },
        |_| get_alerts(),
    );
    // With JavaScript, the list follows new alerts and deliveries.
    Effect::new(move |_| {
        data.track();
        set_timeout(move || tick.update(|n| *n += 1), Duration::from_secs(15));
    });
    let query = use_query_map();
    let done = move || query.read().get("done").and_then(|d| flash(&d));
    view! {
        <AdminConsole current="/admin/alerts" title="Alerts" heading="Alerts"
            lead="Rules the workers check every 30 seconds. Alerts show here and, when a rule has a webhook URL, are posted there, signed.">
            {move || done().map(|text| view! { <div class="alert alert-success" role="status">{text}</div> })}
            <FormError error=action_error(rule) fields=&[] />
            <FormError error=action_error(ack) fields=&[] />
            {loaded(data, move |page| view! { <Alerts page rule ack /> })}
            <NewRuleForm action=create />
        </AdminConsole>
    }
}

#[component]
fn Alerts(
    page: AlertsPage,
    rule: ServerAction<AlertRuleAction>,
    ack: ServerAction<AcknowledgeAlert>,
) -> impl IntoView {
    let AlertsPage {
        rules,
        open,
        open_total,
        resolved,
        deliveries,
    } = page;
    view! {
        <section class="panel" aria-labelledby="open-heading">
            <h2 id="open-heading">{format!("Open alerts ({open_total})")}</h2>
            {if open.is_empty() {
                view! { <p class="muted">"Nothing is wrong that a rule watches for."</p> }.into_any()
            } else {
                view! { <AlertTable alerts=open ack=Some(ack) /> }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="rules-heading">
            <h2 id="rules-heading">"Rules"</h2>
            {if rules.is_empty() {
                view! { <p class="muted">"No rules yet. Add one below: nothing raises alerts until then."</p> }.into_any()
            } else {
                view! { <Rules rules action=rule /> }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="deliveries-heading">
            <h2 id="deliveries-heading">"Deliveries"</h2>
            <p class="muted small">"Each is posted with "<code>"Patchbay-Signature: t=…,v1=…"</code>
                " (HMAC-SHA256 of "<code>"t.body"</code>" under the rule's secret), and tried again with backoff until the receiver answers 2xx."</p>
            {if deliveries.is_empty() {
                view! { <p class="muted">"No webhook deliveries yet."</p> }.into_any()
            } else {
                view! { <Deliveries deliveries /> }.into_any()
            }}
        </section>
        {(!resolved.is_empty()).then(|| view! {
            <section class="panel" aria-labelledby="resolved-heading">
                <h2 id="resolved-heading">"Resolved in the last 7 days"</h2>
                <AlertTable alerts=resolved ack=None />
            </section>
        })}
    }
}

#[component]
fn AlertTable(
    alerts: Vec<AlertView>,
    ack: Option<ServerAction<AcknowledgeAlert>>,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table alert-list">
                <thead><tr>
                    <th scope="col">"Opened"</th><th scope="col">"Alert"</th><th scope="col">"Organization"</th>
                    <th scope="col">"Rule"</th><th scope="col">{if ack.is_some() { "Seen" } else { "Resolved" }}</th>
                </tr></thead>
                <tbody>
                    {alerts.into_iter().map(|a| {
                        let id = a.id;
                        let state = match (&a.resolved, &a.acknowledged) {
                            (Some(_), _) => "resolved",
                            (None, Some(_)) => "acknowledged",
                            (None, None) => "new",
                        };
                        let last = match (a.resolved, a.acknowledged, ack) {
                            (Some(at), _, _) => view! { <When stamp=at /> }.into_any(),
                            (None, Some((who, at)), _) => view! { <span class="small">{who}", "<When stamp=at /></span> }.into_any(),
                            (None, None, Some(ack)) => view! {
                                <ActionForm action=ack attr:class="inline-form">
                                    <input type="hidden" name="id" value=id.to_string() />
                                    <button type="submit" class="button button-small button-ghost" data-action="acknowledge">"Acknowledge"</button>
                                </ActionForm>
                            }.into_any(),
                            (None, None, None) => view! { <span class="muted">"—"</span> }.into_any(),
                        };
                        view! {
                            <tr id=format!("alert-{id}") data-state=state data-kind=a.kind.as_str()>
                                <td class="small"><When stamp=a.opened /></td>
                                <td><a href=a.link>{a.title}</a></td>
                                <td>{a.org_name.unwrap_or_else(|| "All".into())}</td>
                                <td class="small">{a.rule}</td>
                                <td>{last}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn Rules(rules: Vec<AlertRuleView>, action: ServerAction<AlertRuleAction>) -> impl IntoView {
    let button = move |id: String, name: &'static str, label: &'static str, class: &'static str| {
        view! {
            <ActionForm action=action attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="action" value=name />
                <button type="submit" class=format!("button button-small {class}") data-action=name>{label}</button>
            </ActionForm>
        }
    };
    view! {
        <div class="table-wrap">
            <table class="table alert-rules">
                <thead><tr>
                    <th scope="col">"Rule"</th><th scope="col">"When"</th><th scope="col">"Webhook"</th>
                    <th scope="col">"Open"</th><th scope="col">"Last alert"</th><th scope="col">"Actions"</th>
                </tr></thead>
                <tbody>
                    {rules.into_iter().map(|r| {
                        let id = r.id.to_string();
                        let has_url = r.webhook_url.is_some();
                        view! {
                            <tr id=format!("rule-{id}") data-kind=r.kind.as_str()>
                                <td>
                                    <strong>{r.name}</strong>
                                    {(!r.enabled).then(|| view! { " " <span class="badge badge-muted">"Off"</span> })}
                                    <div class="small muted">{r.kind.label()}</div>
                                </td>
                                <td class="small">{r.condition}</td>
                                <td class="small">
                                    {match r.webhook_url {
                                        Some(url) => view! {
                                            <code class="break">{url}</code>
                                            <details class="reveal">
                                                <summary>"Signing secret"</summary>
                                                <code class="break" data-secret="">{r.secret}</code>
                                            </details>
                                        }.into_any(),
                                        None => view! { <span class="muted">"In-app only"</span> }.into_any(),
                                    }}
                                </td>
                                <td>{r.open}</td>
                                <td class="small">{match r.last_opened {
                                    Some(at) => view! { <When stamp=at /> }.into_any(),
                                    None => view! { <span class="muted">"Never"</span> }.into_any(),
                                }}</td>
                                <td><div class="row-actions">
                                    {has_url.then(|| button(id.clone(), "test", "Send test", "button-ghost"))}
                                    {if r.enabled {
                                        button(id.clone(), "disable", "Turn off", "button-ghost")
                                    } else {
                                        button(id.clone(), "enable", "Turn on", "button-ghost")
                                    }}
                                    {has_url.then(|| button(id.clone(), "rotate", "New secret", "button-ghost"))}
                                    <details class="confirm">
                                        <summary class="button button-small button-ghost button-danger-ghost">"Delete"</summary>
                                        <div class="confirm__panel">
                                            <p class="small">"Its alerts and deliveries go with it."</p>
                                            {button(id.clone(), "delete", "Delete the rule", "button-danger")}
                                        </div>
                                    </details>
                                </div></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn Deliveries(deliveries: Vec<DeliveryView>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table alert-deliveries">
                <thead><tr>
                    <th scope="col">"Queued"</th><th scope="col">"Rule"</th><th scope="col">"Event"</th>
                    <th scope="col">"To"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th>
                    <th scope="col">"Last answer"</th>
                </tr></thead>
                <tbody>
                    {deliveries.into_iter().map(|d| {
                        let badge = match d.state.as_str() {
                            "delivered" => "badge badge-success",
                            "failed" => "badge badge-danger",
                            _ => "badge badge-muted",
                        };
                        let answer = match (d.last_status, d.last_error) {
                            (_, Some(error)) => error,
                            (Some(status), None) => format!("HTTP {status}"),
                            (None, None) => "—".to_owned(),
                        };
                        let (state, event) = (d.state.clone(), d.event.clone());
                        view! {
                            <tr data-state=state data-event=event>
                                <td class="small"><When stamp=d.created /></td>
                                <td class="small">{d.rule}</td>
                                <td><code>{d.event}</code></td>
                                <td class="small"><code class="break">{d.url}</code></td>
                                <td>
                                    <span class=badge>{d.state}</span>
                                    {d.next_attempt.map(|at| view! { <div class="small muted">"next "<When stamp=at /></div> })}
                                </td>
                                <td>{d.attempts}</td>
                                <td class="small break">{answer}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn NewRuleForm(action: ServerAction<CreateAlertRule>) -> impl IntoView {
    let error = action_error(action);
    view! {
        <section class="panel" aria-labelledby="new-rule-heading">
            <h2 id="new-rule-heading">"New rule"</h2>
            <ActionForm action=action attr:class="stack" attr:id="new-rule">
                <FormError error fields=&["name", "kind", "threshold", "window_minutes", "webhook_url"] />
                <div class="field">
                    <label for="rule-name">"Name"</label>
                    <input id="rule-name" name="name" required maxlength="100" placeholder="Dead letters, paging" />
                    <FieldError error field="name" />
                </div>
                <div class="field">
                    <label for="rule-kind">"Alert when"</label>
                    <select id="rule-kind" name="kind">
                        {AlertKind::ALL.iter().map(|k| view! { <option value=k.as_str()>{k.label()}</option> }).collect_view()}
                    </select>
                    <FieldError error field="kind" />
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="rule-threshold">"More than (dead letters)"</label>
                        <input id="rule-threshold" name="threshold" type="number" min="0" max="1000000" value="10" />
                        <FieldError error field="threshold" />
                    </div>
                    <div class="field">
                        <label for="rule-window">"In the last (minutes)"</label>
                        <input id="rule-window" name="window_minutes" type="number" min="1" max="10080" value="60" />
                        <FieldError error field="window_minutes" />
                    </div>
                </div>
                <p class="help">"The threshold and window apply to dead letters; stale installs and connections needing reauthorization raise one alert each."</p>
                <div class="field">
                    <label for="rule-url">"Webhook URL (optional)"</label>
                    <input id="rule-url" name="webhook_url" type="url" maxlength="2000" placeholder="https://hooks.example.com/patchbay" />
                    <p class="help">"Alerts are posted here as JSON, signed with a secret listed under the rule once it is saved. Leave it empty for in-app alerts only."</p>
                    <FieldError error field="webhook_url" />
                </div>
                <button type="submit" class="button" disabled=move || action.pending().get()>"Add rule"</button>
            </ActionForm>
        </section>
    }
}
