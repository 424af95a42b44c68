//! Connections: `/connections` (the organization's connected accounts, with check, reconnect and
//! disconnect), `/connections/new/{provider}` (one provider's connect form, also the reconnect
//! prompt), `/marketplace/{slug}/connect` (the accounts a listing needs), and the two pages around
//! the provider's own sign-in: `/connect/continue` and `/connect/failed`. Everything posts as
//! plain forms, so it all works without JavaScript.

use super::forms::{action_error, ErrorPanel, FormError};
use crate::api::connections::{
    get_connect_continue, get_connections, get_listing_connect, get_provider_connect,
    CheckConnection, ConnectFields, DisconnectConnection, StartConnect,
};
use crate::error::AppError;
use crate::model::connection::{
    parse_return_to, AuthKind, ConnectFailure, ConnectProvider, ConnectionStatus, ConnectionView,
};
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};

/// A connection's status as a badge.
#[component]
pub fn ConnectionBadge(status: ConnectionStatus) -> impl IntoView {
    let class = match status {
        ConnectionStatus::Active => "badge badge-success",
        ConnectionStatus::NeedsReauth => "badge badge-danger",
        ConnectionStatus::Revoked => "badge badge-muted",
    };
    view! { <span class=class>{status.label()}</span> }
}

/// The page shown instead of content the visitor may not see: a log-in prompt when signed out.
fn problem(error: AppError, next: String) -> AnyView {
    super::pages::set_status_of(&error);
    match error {
        AppError::Unauthorized => view! {
            <section class="panel empty-state">
                <h1>"Log in to connect your accounts"</h1>
                <p>"Connections belong to your organization. Log in, or sign up, and you will come back here."</p>
                <div class="actions">
                    <a class="button" href=format!("/login?next={}", encode(&next))>"Log in"</a>
                    <a class="button button-ghost" href=format!("/signup?next={}", encode(&next))>"Sign up"</a>
                </div>
            </section>
        }
        .into_any(),
        error => view! { <ErrorPanel error /> }.into_any(),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The form that connects (or reconnects) one provider's account: a button that goes to the
/// provider's sign-in for OAuth, with any inputs it needs first (a Shopify shop); the key fields
/// for API keys and passwords, checked with the provider before they are saved.
#[component]
pub fn ConnectForm(
    provider: ConnectProvider,
    start: ServerAction<StartConnect>,
    fields_action: ServerAction<ConnectFields>,
    listing: Option<String>,
    reconnect: Option<uuid::Uuid>,
    return_to: String,
) -> impl IntoView {
    if !provider.ready {
        return view! {
            <p class="alert alert-warning" role="status">
                {format!("{} is not set up for connecting yet: an administrator must first register Patchbay's app with it.", provider.name)}
            </p>
        }
        .into_any();
    }
    let verb = if reconnect.is_some() {
        "Reconnect"
    } else {
        "Connect"
    };
    let reconnect = reconnect.map(|id| id.to_string()).unwrap_or_default();
    let inputs = provider
        .fields
        .iter()
        .map(|field| {
            let id = format!("field-{}-{}", provider.id, field.name);
            let help_id = format!("{id}-help");
            let has_help = !field.help.is_empty();
            view! {
                <div class="field">
                    <label for=id.clone()>{field.label.clone()}</label>
                    <input
                        id=id
                        name=format!("fields[{}]", field.name)
                        type=if field.secret { "password" } else { "text" }
                        autocomplete="off"
                        maxlength=field.max_len
                        required=true
                        aria-describedby=has_help.then(|| help_id.clone())
                    />
                    {has_help.then(|| view! { <p class="help" id=help_id>{field.help.clone()}</p> })}
                </div>
            }
        })
        .collect_view();
    let hidden = view! {
        <input type="hidden" name="provider" value=provider.id.clone() />
        <input type="hidden" name="reconnect" value=reconnect />
        <input type="hidden" name="return_to" value=return_to />
    };
    match provider.auth_kind {
        AuthKind::OAuth2 => view! {
            <ActionForm action=start attr:class="stack connect-form" attr:novalidate=true>
                {hidden}
                <input type="hidden" name="listing" value=listing.unwrap_or_default() />
                {inputs}
                <button type="submit" class="button" disabled=move || start.pending().get()>
                    {format!("{verb} {}", provider.name)}
                </button>
                <p class="help">{format!("You will sign in at {} and choose what to allow; then you come back here.", provider.name)}</p>
            </ActionForm>
        }
        .into_any(),
        AuthKind::ApiKey | AuthKind::Basic => view! {
            <ActionForm action=fields_action attr:class="stack connect-form" attr:novalidate=true>
                {hidden}
                {inputs}
                <button type="submit" class="button" disabled=move || fields_action.pending().get()>
                    {format!("{verb} {}", provider.name)}
                </button>
                <p class="help">{format!("Patchbay checks these with {} before saving them, encrypted.", provider.name)}</p>
            </ActionForm>
        }
        .into_any(),
    }
}

/// The errors of the connect actions, above the forms.
#[component]
fn ConnectErrors(
    start: ServerAction<StartConnect>,
    fields_action: ServerAction<ConnectFields>,
) -> impl IntoView {
    let start_error = action_error(start);
    let fields_error = action_error(fields_action);
    view! {
        <FormError error=start_error fields=&[] />
        <FormError error=fields_error fields=&[] />
    }
}

/// One connection's facts.
#[component]
fn ConnectionFacts(connection: ConnectionView) -> impl IntoView {
    view! {
        <dl class="facts">
            {connection.details.iter().map(|(label, value)| view! {
                <dt>{label.clone()}</dt>
                <dd>{value.clone()}</dd>
            }).collect_view()}
            <dt>"Signs in with"</dt>
            <dd>{connection.auth_kind.label()}</dd>
            {(!connection.scopes.is_empty()).then(|| view! {
                <dt>"Allowed"</dt>
                <dd>{connection.scopes.join(", ")}</dd>
            })}
            <dt>"Connected"</dt>
            <dd>{connection.created_at.clone()}</dd>
            <dt>"Last used"</dt>
            <dd>{connection.last_used_at.clone().unwrap_or_else(|| "Not yet".into())}</dd>
            {(connection.auth_kind == AuthKind::OAuth2).then(|| view! {
                <dt>"Access renewed"</dt>
                <dd>{connection.refreshed_at.clone().unwrap_or_else(|| "Not yet".into())}</dd>
            })}
        </dl>
    }
}

/// `/connections`
#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let check = ServerAction::<CheckConnection>::new();
    let disconnect = ServerAction::<DisconnectConnection>::new();
    let check_error = action_error(check);
    let disconnect_error = action_error(disconnect);
    let query = use_query_map();
    let data = Resource::new(
        move || (check.version().get(), disconnect.version().get()),
        |_| get_connections(),
    );
    let flash = move || {
        let q = query.read();
        if q.get("connected").is_some() {
            Some((
                "alert alert-success",
                "Connected. The account is ready for your integrations.",
            ))
        } else {
            match q.get("disconnected").as_deref() {
                Some("revoked") => Some(("alert alert-success", "Disconnected. The provider revoked Patchbay's access and the credentials are deleted.")),
                Some("deleted") => Some(("alert alert-success", "Disconnected. The credentials are deleted. This provider offers no way for Patchbay to withdraw its own access, so to be thorough remove Patchbay (or delete the key) in your account settings there.")),
                Some("unrevoked") => Some(("alert alert-warning", "Disconnected and the credentials are deleted, but the provider did not confirm that Patchbay's access was withdrawn: remove Patchbay in your account settings there too.")),
                _ => None,
            }
        }
    };
    view! {
        <Title text="Connections" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => {
                    let checked = query.read().get("checked");
                    let can_manage = page.can_manage;
                    view! {
                        <header class="page-header">
                            <div>
                                <p class="eyebrow">{page.org_name.clone()}</p>
                                <h1>"Connections"</h1>
                                <p class="muted">"The accounts at other apps your integrations read from and write to. Credentials are stored encrypted and never shown again."</p>
                            </div>
                        </header>
                        {flash().map(|(class, text)| view! { <div class=class role="status">{text}</div> })}
                        <FormError error=check_error fields=&[] />
                        <FormError error=disconnect_error fields=&[] />
                        <div class="console">
                            <section class="panel" aria-labelledby="connections-heading">
                                <h2 id="connections-heading">"Connected accounts"</h2>
                                {if page.connections.is_empty() {
                                    view! {
                                        <div class="empty-state">
                                            <h3>"No connections yet"</h3>
                                            <p>"Connect an account here, or from an integration in the marketplace."</p>
                                        </div>
                                    }.into_any()
                                } else {
                                    view! {
                                        <ul class="connection-list" role="list">
                                            {page.connections.into_iter().map(|c| {
                                                let just_checked = checked.as_deref() == Some(c.id.to_string().as_str());
                                                view! { <ConnectionItem connection=c can_manage just_checked check disconnect /> }
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                            </section>
                            <section class="panel" aria-labelledby="add-heading">
                                <h2 id="add-heading">"Add a connection"</h2>
                                {if can_manage {
                                    view! {
                                        <ul class="provider-links" role="list">
                                            {page.providers.into_iter().map(|(id, name)| view! {
                                                <li><a href=format!("/connections/new/{id}")>{name}</a></li>
                                            }).collect_view()}
                                        </ul>
                                    }.into_any()
                                } else {
                                    view! { <p class="muted">"Owners and admins of the organization connect accounts."</p> }.into_any()
                                }}
                            </section>
                        </div>
                    }
                    .into_any()
                }
                Err(error) => problem(error, "/connections".into()),
            })}
        </Suspense>
    }
}

#[component]
fn ConnectionItem(
    connection: ConnectionView,
    can_manage: bool,
    just_checked: bool,
    check: ServerAction<CheckConnection>,
    disconnect: ServerAction<DisconnectConnection>,
) -> impl IntoView {
    let id = connection.id.to_string();
    let (check_id, disconnect_id) = (id.clone(), id.clone());
    let status = connection.status;
    let reconnect_href = format!(
        "/connections/new/{}?reconnect={}",
        connection.provider, connection.id
    );
    let title = match &connection.account_label {
        Some(label) => format!("{} · {label}", connection.provider_name),
        None => connection.provider_name.clone(),
    };
    view! {
        <li class="connection" data-connection=id data-status=status.as_str()>
            <div class="connection-head">
                <h3>{title}</h3>
                <ConnectionBadge status />
            </div>
            {(just_checked && status == ConnectionStatus::Active).then(|| view! {
                <p class="alert alert-success" role="status">"Checked just now: the connection works."</p>
            })}
            {(status == ConnectionStatus::NeedsReauth).then(|| view! {
                <div class="alert alert-warning" role="alert">
                    <p>{connection.status_reason.clone().unwrap_or_else(|| "The provider no longer accepts this connection.".into())}</p>
                    <p>"Integrations using it are waiting. Reconnect to pick up where they left off; the connection keeps its place in them."</p>
                </div>
            })}
            <ConnectionFacts connection=connection.clone() />
            {can_manage.then(move || view! {
                <div class="actions">
                    {(status != ConnectionStatus::Active).then(|| view! {
                        <a class="button" href=reconnect_href.clone()>{format!("Reconnect {}", connection.provider_name)}</a>
                    })}
                    {(status == ConnectionStatus::Active).then(move || view! {
                        <ActionForm action=check attr:class="inline-form">
                            <input type="hidden" name="id" value=check_id />
                            <button type="submit" class="button button-ghost button-small">"Check connection"</button>
                        </ActionForm>
                    })}
                    {(status != ConnectionStatus::Revoked).then(move || view! {
                        <ActionForm action=disconnect attr:class="inline-form">
                            <input type="hidden" name="id" value=disconnect_id />
                            <button type="submit" class="button button-ghost button-small button-danger">"Disconnect"</button>
                        </ActionForm>
                    })}
                </div>
            })}
        </li>
    }
}

/// `/connections/new/{provider}`, and with `?reconnect=<id>` the reconnect prompt.
#[component]
pub fn NewConnectionPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let start = ServerAction::<StartConnect>::new();
    let fields_action = ServerAction::<ConnectFields>::new();
    let provider = move || params.read().get("provider").unwrap_or_default();
    let data = Resource::new(
        move || (provider(), query.read().get("reconnect")),
        |(provider, reconnect)| get_provider_connect(provider, reconnect),
    );
    view! {
        <Title text="Connect an account" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(provider) => {
                    let reconnect = query
                        .read()
                        .get("reconnect")
                        .and_then(|id| uuid::Uuid::parse_str(&id).ok())
                        .filter(|id| provider.connections.iter().any(|c| c.id == *id));
                    let heading = match reconnect {
                        Some(_) => format!("Reconnect {}", provider.name),
                        None => format!("Connect {}", provider.name),
                    };
                    view! {
                        <p class="breadcrumb"><a href="/connections">"← Connections"</a></p>
                        <section class="panel narrow-panel">
                            <h1>{heading}</h1>
                            <p class="muted">{provider.description.clone()}</p>
                            {reconnect.is_some().then(|| view! {
                                <p>"Signing in again gives this connection new access. It keeps its identity, so the integrations using it carry on."</p>
                            })}
                            <Permissions provider=provider.clone() />
                            <ConnectErrors start fields_action />
                            <ConnectForm provider start fields_action listing=None reconnect return_to="/connections".to_owned() />
                        </section>
                    }
                    .into_any()
                }
                Err(error) => problem(error, format!("/connections/new/{}", provider())),
            })}
        </Suspense>
    }
}

#[component]
fn Permissions(provider: ConnectProvider) -> impl IntoView {
    (!provider.permissions.is_empty()).then(|| {
        view! {
            <div class="permissions">
                <h2 class="h3">{format!("Patchbay will ask {} for permission to", provider.name)}</h2>
                <ul>
                    {provider.permissions.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                </ul>
            </div>
        }
    })
}

/// `/marketplace/{slug}/connect`: the accounts a listing needs, each with its state and a form.
#[component]
pub fn ListingConnectPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let start = ServerAction::<StartConnect>::new();
    let fields_action = ServerAction::<ConnectFields>::new();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let data = Resource::new(slug, get_listing_connect);
    view! {
        <Title text="Connect" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => {
                    let here = format!("/marketplace/{}/connect", page.slug);
                    let connected = query.read().get("connected").is_some();
                    let all_set = !page.providers.is_empty() && page.providers.iter().all(|p| {
                        p.connections.iter().any(|c| c.status == ConnectionStatus::Active)
                    });
                    view! {
                        <p class="breadcrumb"><a href=format!("/marketplace/{}", page.slug)>{format!("← {}", page.name)}</a></p>
                        <header class="page-header">
                            <div>
                                <p class="eyebrow">"Connect"</p>
                                <h1>{format!("Connect the accounts {} uses", page.name)}</h1>
                            </div>
                        </header>
                        {connected.then(|| view! { <div class="alert alert-success" role="status">"Connected."</div> })}
                        {all_set.then(|| view! {
                            <div class="alert alert-success" role="status">
                                "Every account this integration needs is connected. "
                                <a href=format!("/installs/new/{}", page.slug)>"Install it"</a>
                                " to choose what syncs, the mapping and the schedule."
                            </div>
                        })}
                        <ConnectErrors start fields_action />
                        <div class="card-grid">
                            {page.providers.into_iter().map(|provider| {
                                let listing = page.slug.clone();
                                let here = here.clone();
                                let existing = provider.connections.clone();
                                let (provider_id, provider_name, description) = (provider.id.clone(), provider.name.clone(), provider.description.clone());
                                let needs = existing.iter().find(|c| c.status == ConnectionStatus::NeedsReauth).map(|c| c.id);
                                let active: Vec<ConnectionView> = existing.iter().filter(|c| c.status == ConnectionStatus::Active).cloned().collect();
                                view! {
                                    <section class="panel provider-connect" data-provider=provider_id>
                                        <h2>{provider_name.clone()}</h2>
                                        <p class="muted">{description}</p>
                                        {active.iter().map(|c| view! {
                                            <p class="connected-account">
                                                <ConnectionBadge status=c.status />
                                                " "
                                                {c.account_label.clone().unwrap_or_else(|| provider_name.clone())}
                                            </p>
                                        }).collect_view()}
                                        <Permissions provider=provider.clone() />
                                        {if active.is_empty() {
                                            view! { <ConnectForm provider start fields_action listing=Some(listing) reconnect=needs return_to=here /> }.into_any()
                                        } else {
                                            view! {
                                                <details>
                                                    <summary>"Connect another account"</summary>
                                                    <ConnectForm provider start fields_action listing=Some(listing) reconnect=None return_to=here />
                                                </details>
                                            }.into_any()
                                        }}
                                    </section>
                                }
                            }).collect_view()}
                        </div>
                    }
                    .into_any()
                }
                Err(error) => problem(error, format!("/marketplace/{}/connect", slug())),
            })}
        </Suspense>
    }
}

/// `/connect/continue`: on to the provider's sign-in. A page rather than a redirect from the form,
/// because the site's `form-action 'self'` policy stops a form's redirect to another site; a
/// refresh (and a link, for browsers that ignore it) is a plain navigation.
#[component]
pub fn ContinuePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_connect_continue());
    view! {
        <Title text="Signing in" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(next) => view! {
                    <Meta http_equiv="refresh" content=format!("0;url={}", next.url) />
                    <section class="panel empty-state">
                        <h1>{format!("Taking you to {}…", next.provider_name)}</h1>
                        <p>"Sign in there and choose what Patchbay may access; you will come back here afterwards."</p>
                        <a class="button" href=next.url.clone()>{format!("Continue to {}", next.provider_name)}</a>
                    </section>
                }
                .into_any(),
                Err(error) => problem(error, "/connections".into()),
            })}
        </Suspense>
    }
}

/// `/connect/failed?reason=<code>&back=<path>`: why connecting stopped. Only known codes are
/// worded; nothing from the URL is shown as text.
#[component]
pub fn FailedPage() -> impl IntoView {
    let query = use_query_map();
    let failure = move || {
        query
            .read()
            .get("reason")
            .and_then(|r| ConnectFailure::parse(&r))
            .unwrap_or(ConnectFailure::ProviderError)
    };
    let back = move || {
        query
            .read()
            .get("back")
            .and_then(|b| parse_return_to(&b).ok())
            .unwrap_or_else(|| "/connections".to_owned())
    };
    view! {
        <Title text="Not connected" />
        <section class="panel empty-state" data-reason=move || failure().code()>
            <p class="eyebrow">"Not connected"</p>
            <h1>{move || failure().title()}</h1>
            <p>{move || failure().explanation()}</p>
            <div class="actions">
                <a class="button" href=back>"Try again"</a>
                <a class="button button-ghost" href="/connections">"Your connections"</a>
            </div>
        </section>
    }
}
