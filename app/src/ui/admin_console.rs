//! The frame every page of the admin console shares: platform admins only, the rail, the page
//! header; and the loading / error / loaded states of the page's data.

use super::forms::ErrorPanel;
use super::pages::{admins_only, set_status_of};
use super::review::AdminRail;
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An admin console page: `/admin/...` with its rail entry `current`, its `heading` and an
/// optional `lead` line; everyone but platform admins gets the 403 page.
#[component]
pub fn AdminConsole(
    current: &'static str,
    title: &'static str,
    heading: &'static str,
    #[prop(optional)] lead: &'static str,
    children: ChildrenFn,
) -> impl IntoView {
    view! {
        <Title text=title />
        {admins_only(move |_| {
            let children = children.clone();
            view! {
                <div class="console-layout">
                    <AdminRail current />
                    <div>
                        <header class="page-header">
                            <div>
                                <p class="eyebrow">"Admin"</p>
                                <h1>{heading}</h1>
                                {(!lead.is_empty()).then(|| view! { <p class="muted">{lead}</p> })}
                            </div>
                        </header>
                        {children()}
                    </div>
                </div>
            }
        })}
    }
}

/// The page's data: "Loading…", then `render` of it, or the error panel (with the error's HTTP
/// status on the server).
pub fn loaded<T, V>(
    data: Resource<Result<T, AppError>>,
    render: impl Fn(T) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: IntoView + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let render = render.clone();
                data.get().map(move |result| match result {
                    Ok(page) => render(page).into_any(),
                    Err(error) => {
                        set_status_of(&error);
                        view! { <ErrorPanel error /> }.into_any()
                    }
                })
            }}
        </Transition>
    }
}
