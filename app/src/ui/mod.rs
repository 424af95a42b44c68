//! The Leptos UI, compiled for the server (SSR) and the browser (hydration). It talks to the server
//! only through server functions in [`crate::api`]; nothing here touches SQL.

mod account;
mod admin_alerts;
mod admin_audit;
mod admin_console;
mod admin_failures;
mod admin_health;
mod admin_run;
mod auth;
mod catalog;
mod connections;
mod editor;
mod editor_recipe;
mod forms;
mod installs;
mod layout;
mod orgs;
mod pages;
mod provider_apps;
mod review;
mod session;
mod vendor;
mod wizard;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub use session::{SessionEpoch, SessionResource};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <ContentSecurityPolicy />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Sets the Content-Security-Policy header of a rendered page, allowing the inline hydration
/// scripts by this response's nonce and nothing else inline.
#[component]
fn ContentSecurityPolicy() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        use leptos::nonce::use_nonce;
        let nonce = use_nonce();
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            let policy = crate::security::content_security_policy(nonce.as_deref());
            if let Ok(value) = http::HeaderValue::from_str(&policy) {
                response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
            }
        }
    }
}

/// The application: layout and routes. Every route renders after its data has loaded (`Async`), so
/// that pages arrive complete and work without JavaScript, and a page can still set its status
/// code (403, 404) from inside a `Suspense`.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    session::provide_session();

    // Tests and scripts wait for this attribute before they click: it is set once the browser has
    // hydrated the page.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/patchbay.css" />
        <Link rel="icon" href="/favicon.svg" type_="image/svg+xml" />
        <Meta name="color-scheme" content="light dark" />
        <Title formatter=|text: String| {
            if text.is_empty() { "Patchbay".to_owned() } else { format!("{text} · Patchbay") }
        } />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <layout::Header />
            <main id="main" class="page">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("") view=pages::Home ssr=SsrMode::Async />
                    <Route path=path!("login") view=auth::LoginPage ssr=SsrMode::Async />
                    <Route path=path!("signup") view=auth::SignupPage ssr=SsrMode::Async />
                    <Route path=path!("account") view=account::AccountPage ssr=SsrMode::Async />
                    <Route path=path!("orgs/new") view=orgs::NewOrgPage ssr=SsrMode::Async />
                    <Route path=path!("orgs/:id") view=orgs::OrgPage ssr=SsrMode::Async />
                    <Route path=path!("marketplace") view=catalog::MarketplacePage ssr=SsrMode::Async />
                    <Route path=path!("marketplace/:slug") view=catalog::ListingDetailPage ssr=SsrMode::Async />
                    <Route path=path!("marketplace/:slug/connect") view=connections::ListingConnectPage ssr=SsrMode::Async />
                    <Route path=path!("connections") view=connections::ConnectionsPage ssr=SsrMode::Async />
                    <Route path=path!("connections/new/:provider") view=connections::NewConnectionPage ssr=SsrMode::Async />
                    <Route path=path!("connect/continue") view=connections::ContinuePage ssr=SsrMode::Async />
                    <Route path=path!("connect/failed") view=connections::FailedPage ssr=SsrMode::Async />
                    <Route path=path!("admin/apps") view=provider_apps::PlatformAppsPage ssr=SsrMode::Async />
                    <Route path=path!("vendor/apps") view=provider_apps::VendorAppsPage ssr=SsrMode::Async />
                    <Route path=path!("installs") view=installs::InstallsPage ssr=SsrMode::Async />
                    <Route path=path!("installs/new/:slug") view=wizard::NewInstallPage ssr=SsrMode::Async />
                    <Route path=path!("installs/:id/setup/:step") view=wizard::SetupPage ssr=SsrMode::Async />
                    <Route path=path!("installs/:id") view=installs::InstallDetailPage ssr=SsrMode::Async />
                    <Route path=path!("vendor") view=vendor::VendorPage ssr=SsrMode::Async />
                    <Route path=path!("vendor/listings/:id") view=editor::EditorPage ssr=SsrMode::Async />
                    <Route path=path!("admin") view=pages::Admin ssr=SsrMode::Async />
                    <Route path=path!("admin/reviews") view=review::ReviewQueuePage ssr=SsrMode::Async />
                    <Route path=path!("admin/reviews/:id") view=review::ReviewPage ssr=SsrMode::Async />
                    <Route path=path!("admin/failures") view=admin_failures::FailuresPage ssr=SsrMode::Async />
                    <Route path=path!("admin/runs/:id") view=admin_run::RunDetailPage ssr=SsrMode::Async />
                    <Route path=path!("admin/health") view=admin_health::HealthPage ssr=SsrMode::Async />
                    <Route path=path!("admin/alerts") view=admin_alerts::AlertsPage ssr=SsrMode::Async />
                    <Route path=path!("admin/audit") view=admin_audit::AuditLogPage ssr=SsrMode::Async />
                    <Route path=path!("vendor/failures") view=admin_failures::VendorFailuresPage ssr=SsrMode::Async />
                </Routes>
            </main>
            <layout::Footer />
        </Router>
    }
}
