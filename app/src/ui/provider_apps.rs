//! Provider apps: the OAuth client Patchbay is registered as at each provider. `/admin/apps` holds
//! the platform's (platform admins); `/vendor/apps` a vendor's own, which its listings' connect
//! flows use instead of the platform's.

use super::forms::{action_error, ErrorPanel, FieldError, FormError, TextField};
use crate::api::connections::{get_provider_apps, RemoveProviderApp, SetProviderApp};
use crate::model::connection::ProviderAppsPage;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn PlatformAppsPage() -> impl IntoView {
    view! {
        <Title text="Provider apps" />
        {super::pages::admins_only(|_| view! {
            <div class="console-layout">
                <super::review::AdminRail current="/admin/apps" />
                <div><AppsPanel owner="platform" /></div>
            </div>
        })}
    }
}

#[component]
pub fn VendorAppsPage() -> impl IntoView {
    view! {
        <Title text="Provider apps" />
        {super::vendor::vendor_only(|_| view! {
            <p class="breadcrumb"><a href="/vendor">"← Vendor console"</a></p>
            <AppsPanel owner="vendor" />
        })}
    }
}

#[component]
fn AppsPanel(owner: &'static str) -> impl IntoView {
    let set = ServerAction::<SetProviderApp>::new();
    let remove = ServerAction::<RemoveProviderApp>::new();
    let error = action_error(set);
    let remove_error = action_error(remove);
    let query = use_query_map();
    let data = Resource::new(
        move || (set.version().get(), remove.version().get()),
        move |_| get_provider_apps(owner.to_owned()),
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Ok(page) => view! { <Apps page owner set remove error remove_error saved=query.read().get("saved") /> }.into_any(),
                Err(error) => {
                    super::pages::set_status_of(&error);
                    view! { <ErrorPanel error /> }.into_any()
                }
            })}
        </Suspense>
    }
}

#[component]
fn Apps(
    page: ProviderAppsPage,
    owner: &'static str,
    set: ServerAction<SetProviderApp>,
    remove: ServerAction<RemoveProviderApp>,
    error: Signal<Option<crate::error::AppError>>,
    remove_error: Signal<Option<crate::error::AppError>>,
    saved: Option<String>,
) -> impl IntoView {
    let (eyebrow, intro) = match &page.vendor {
        Some(name) => (
            name.clone(),
            "Your own OAuth apps. Customers connecting through your listings sign in to these instead of the platform's, and see your app's name on the provider's consent page.",
        ),
        None => (
            "Admin".to_owned(),
            "The OAuth apps Patchbay is registered as at each provider. Customers connect through these unless a listing's vendor registered its own.",
        ),
    };
    let saved_name = saved.and_then(|id| {
        page.oauth_providers
            .iter()
            .find(|(p, _)| *p == id)
            .map(|(_, name)| name.clone())
    });
    view! {
        <header class="page-header">
            <div>
                <p class="eyebrow">{eyebrow}</p>
                <h1>"Provider apps"</h1>
                <p class="muted">{intro}</p>
            </div>
        </header>
        {saved_name.map(|name| view! { <div class="alert alert-success" role="status">{format!("Saved the {name} app.")}</div> })}
        <FormError error=remove_error fields=&[] />
        <div class="console">
            <section class="panel">
                <h2>"Registered apps"</h2>
                {if page.apps.is_empty() {
                    view! { <p class="muted">"None yet."</p> }.into_any()
                } else {
                    view! {
                        <table class="table">
                            <thead>
                                <tr>
                                    <th scope="col">"Provider"</th>
                                    <th scope="col">"Client ID"</th>
                                    <th scope="col">"Updated"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {page.apps.into_iter().map(|app| view! {
                                    <tr>
                                        <td>{app.provider_name.clone()}</td>
                                        <td><code>{app.client_id.clone()}</code></td>
                                        <td>{app.updated_at.clone()}</td>
                                        <td>
                                            <ActionForm action=remove attr:class="inline-form">
                                                <input type="hidden" name="owner" value=owner />
                                                <input type="hidden" name="provider" value=app.provider.clone() />
                                                <button type="submit" class="button button-ghost button-small button-danger">"Remove"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
            <section class="panel">
                <h2>"Add or update an app"</h2>
                <p class="help">"Register this callback URL with the provider, exactly:"</p>
                <p><code class="callback-url">{page.callback_url.clone()}</code></p>
                <ActionForm action=set attr:class="stack" attr:novalidate=true>
                    <FormError error fields=&["provider", "client_id", "client_secret"] />
                    <input type="hidden" name="owner" value=owner />
                    <div class="field">
                        <label for="provider">"Provider"</label>
                        <select id="provider" name="provider" required=true>
                            {page.oauth_providers.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                        </select>
                        <FieldError error field="provider" />
                    </div>
                    <TextField name="client_id" label="Client ID" error autocomplete="off" />
                    <TextField name="client_secret" label="Client secret" error kind="password" autocomplete="off" optional=true help="Stored encrypted and never shown again. Leave it empty to keep the stored secret when you only change the client ID." />
                    <button type="submit" class="button" disabled=move || set.pending().get()>"Save app"</button>
                </ActionForm>
            </section>
        </div>
    }
}
