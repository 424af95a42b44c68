//! The home page, the console landing pages, and the 404 page.

use super::session::{use_session, with_session};
use crate::model::{OrgKind, SessionInfo};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn Home() -> impl IntoView {
    let session = use_session();
    view! {
        <Title text="" />
        <Suspense fallback=|| ()>
            {move || {
                session
                    .get()
                    .map(|result| match result.ok().flatten() {
                        Some(info) => view! { <Dashboard info /> }.into_any(),
                        None => view! { <Landing /> }.into_any(),
                    })
            }}
        </Suspense>
    }
}

#[component]
fn Landing() -> impl IntoView {
    view! {
        <section class="hero">
            <p class="eyebrow">"Integration marketplace"</p>
            <h1>"Connect the apps your business runs on."</h1>
            <p class="lead">
                "Browse integrations, connect your accounts in a click, and keep your data in sync — with retries, rate limits and a clear history of every run."
            </p>
            <div class="actions">
                <a class="button button-large" href="/signup">"Create an account"</a>
                <a class="button button-large button-ghost" href="/marketplace">"Browse the marketplace"</a>
            </div>
        </section>
    }
}

#[component]
fn Dashboard(info: SessionInfo) -> impl IntoView {
    let first_name = info
        .user
        .display_name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    view! {
        <header class="page-header">
            <div>
                <p class="eyebrow">"Welcome back"</p>
                <h1>{format!("Hello, {first_name}")}</h1>
            </div>
            <a class="button" href="/orgs/new">"New organization"</a>
        </header>
        <section>
            <h2>"Your organizations"</h2>
            {if info.orgs.is_empty() {
                view! {
                    <div class="panel empty-state">
                        <h3>"You are not in an organization yet"</h3>
                        <p>"Create one for your company to install integrations, or a vendor organization to publish them. Or ask a colleague to add you to theirs."</p>
                        <a class="button" href="/orgs/new">"Create an organization"</a>
                    </div>
                }
                    .into_any()
            } else {
                let active = info.active_org;
                view! {
                    <ul class="card-grid" role="list">
                        {info
                            .orgs
                            .into_iter()
                            .map(|org| {
                                view! {
                                    <li class="card">
                                        <p class="eyebrow">{org.kind.label()}</p>
                                        <h3><a href=format!("/orgs/{}", org.id)>{org.name.clone()}</a></h3>
                                        <p class="muted">{format!("You are {}", org.role.label().to_lowercase())}</p>
                                        {(Some(org.id) == active).then(|| view! { <span class="badge badge-accent">"Active"</span> })}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any()
            }}
        </section>
    }
}

/// A console page for organizations of `kind`; others are told how to get there.
pub fn console_for<F, V>(kind: OrgKind, body: F) -> impl IntoView
where
    F: Fn(SessionInfo) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    with_session(move |info| {
        match info.active() {
        Some(org) if org.kind == kind => body(info.clone()).into_any(),
        _ => view! {
            <section class="panel empty-state">
                <h1>{format!("This page is for {} organizations", kind.label().to_lowercase())}</h1>
                <p>{format!("Switch to a {} organization in the header, or create one.", kind.label().to_lowercase())}</p>
                <a class="button" href="/orgs/new">"Create an organization"</a>
            </section>
        }
        .into_any(),
    }
    })
}

/// A page for platform admins; everyone else gets the 403 page.
pub fn admins_only<F, V>(body: F) -> impl IntoView
where
    F: Fn(SessionInfo) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    with_session(move |info| {
        if info.user.is_platform_admin {
            body(info).into_any()
        } else {
            view! { <NotAllowed /> }.into_any()
        }
    })
}

#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <Title text="Admin" />
        {admins_only(|_| {
                view! {
                    <div class="console-layout">
                        <super::review::AdminRail current="/admin" />
                        <div>
                            <header class="page-header">
                                <div>
                                    <p class="eyebrow">"Platform"</p>
                                    <h1>"Admin"</h1>
                                </div>
                            </header>
                            <div class="card-grid">
                                <a class="card" href="/admin/reviews">
                                    <h2>"Reviews"</h2>
                                    <p class="muted">"Listings and changes vendors have submitted, waiting for approval."</p>
                                </a>
                                <a class="card" href="/admin/apps">
                                    <h2>"Provider apps"</h2>
                                    <p class="muted">"The OAuth apps Patchbay is registered as at each provider, which customers connect through."</p>
                                </a>
                                <a class="card" href="/admin/failures">
                                    <h2>"Failures"</h2>
                                    <p class="muted">"Failing and dead syncs across every organization, grouped by what went wrong, with retry and replay."</p>
                                </a>
                                <a class="card" href="/admin/health">
                                    <h2>"Health"</h2>
                                    <p class="muted">"The queue, the workers and what they run, with plots of the last hour."</p>
                                </a>
                                <a class="card" href="/admin/alerts">
                                    <h2>"Alerts"</h2>
                                    <p class="muted">"Rules that watch for dead letters, stale installs and lost connections; their alerts here and as signed webhooks."</p>
                                </a>
                                <a class="card" href="/admin/audit">
                                    <h2>"Audit log"</h2>
                                    <p class="muted">"Who did what, when, in which organization."</p>
                                </a>
                            </div>
                        </div>
                    </div>
                }
        })}
    }
}

#[component]
pub fn NotAllowed() -> impl IntoView {
    set_status(403);
    view! {
        <section class="panel empty-state">
            <h1>"Not allowed"</h1>
            <p>"This page is for platform admins."</p>
            <a class="button" href="/">"Back to the start"</a>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Page not found" />
        <section class="panel empty-state">
            <p class="eyebrow">"404"</p>
            <h1>"We could not find that page"</h1>
            <p>"The link may be old, or the page may have moved."</p>
            <div class="actions">
                <a class="button" href="/">"Go to the start"</a>
                <a class="button button-ghost" href="/marketplace">"Browse the marketplace"</a>
            </div>
        </section>
    }
}

/// Sets the HTTP status of a page that shows `error` instead of its content.
pub fn set_status_of(error: &crate::error::AppError) {
    use crate::error::AppError;
    let code = match error {
        AppError::NotFound { .. } => 404,
        AppError::Forbidden { .. } => 403,
        AppError::Unauthorized => 401,
        AppError::Invalid { .. } | AppError::Request { .. } => 400,
        AppError::Conflict { .. } => 409,
        AppError::RateLimited { .. } => 429,
        AppError::Internal => 500,
    };
    set_status(code);
}

/// Sets the HTTP status of the page being rendered on the server.
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}
