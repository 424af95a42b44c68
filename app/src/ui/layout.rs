//! The page frame: header with navigation that follows the user's roles, organization switcher and
//! user menu; and the footer.

use super::session::{session_action, use_session};
use crate::api::auth::LogOut;
use crate::api::orgs::SwitchOrg;
use crate::model::{OrgKind, SessionInfo};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

#[component]
pub fn Header() -> impl IntoView {
    let session = use_session();
    view! {
        <header class="site-header">
            <div class="site-header__inner">
                <a class="brand" href="/">
                    <span class="brand__mark" aria-hidden="true"></span>
                    "Patchbay"
                </a>
                <Transition fallback=|| view! { <nav class="nav" aria-label="Main"></nav> }>
                    {move || {
                        session
                            .get()
                            .map(|result| {
                                let info = result.ok().flatten();
                                view! {
                                    <Nav info=info.clone() />
                                    <div class="site-header__end">
                                        {match info {
                                            Some(info) => {
                                                view! {
                                                    <OrgSwitcher info=info.clone() />
                                                    <UserMenu info />
                                                }
                                                    .into_any()
                                            }
                                            None => {
                                                view! {
                                                    <a class="button button-ghost" href="/login">"Log in"</a>
                                                    <a class="button" href="/signup">"Sign up"</a>
                                                }
                                                    .into_any()
                                            }
                                        }}
                                    </div>
                                }
                            })
                    }}
                </Transition>
            </div>
        </header>
    }
}

/// Marketplace for everyone; My installs for customers; Vendor for vendors; Admin for platform admins.
#[component]
fn Nav(info: Option<SessionInfo>) -> impl IntoView {
    let kind = info.as_ref().and_then(|i| i.active().map(|o| o.kind));
    let admin = info.as_ref().is_some_and(|i| i.user.is_platform_admin);
    view! {
        <nav class="nav" aria-label="Main">
            <A href="/marketplace">"Marketplace"</A>
            {(kind == Some(OrgKind::Customer)).then(|| view! { <A href="/installs">"My installs"</A> })}
            {kind.is_some().then(|| view! { <A href="/connections">"Connections"</A> })}
            {(kind == Some(OrgKind::Vendor)).then(|| view! { <A href="/vendor">"Vendor"</A> })}
            {admin.then(|| view! { <A href="/admin">"Admin"</A> })}
        </nav>
    }
}

/// Chooses the active organization. A plain form, so it works without JavaScript; with it, picking
/// an organization submits at once.
#[component]
fn OrgSwitcher(info: SessionInfo) -> impl IntoView {
    let switch = session_action::<SwitchOrg>();
    let location = use_location();
    let here = move || {
        let search = location.search.get();
        if search.is_empty() {
            location.pathname.get()
        } else {
            format!("{}?{search}", location.pathname.get())
        }
    };
    if info.orgs.is_empty() {
        return view! { <a class="button button-ghost" href="/orgs/new">"Create an organization"</a> }.into_any();
    }
    let active = info.active_org;
    view! {
        <ActionForm action=switch attr:class="org-switcher">
            <label class="visually-hidden" for="org-switcher">"Active organization"</label>
            <select
                id="org-switcher"
                name="org_id"
                on:change=move |ev| {
                    let form = event_target::<web_sys::HtmlSelectElement>(&ev).form();
                    if let Some(form) = form {
                        let _ = form.request_submit();
                    }
                }
            >
                {info
                    .orgs
                    .into_iter()
                    .map(|org| {
                        view! {
                            <option value=org.id.to_string() selected=Some(org.id) == active>
                                {format!("{} ({})", org.name, org.kind.label())}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
            <input type="hidden" name="next" value=here />
            <button type="submit" class="button button-small button-ghost">"Switch"</button>
        </ActionForm>
    }
    .into_any()
}

#[component]
fn UserMenu(info: SessionInfo) -> impl IntoView {
    let logout = session_action::<LogOut>();
    view! {
        <details class="user-menu">
            <summary aria-label="Account menu">
                <span class="avatar" aria-hidden="true">{initials(&info.user.display_name)}</span>
                <span class="user-menu__name">{info.user.display_name.clone()}</span>
            </summary>
            <div class="user-menu__panel">
                <p class="muted small">{info.user.email.clone()}</p>
                <a href="/account">"Account"</a>
                <a href="/orgs/new">"New organization"</a>
                {info
                    .active()
                    .map(|org| view! { <a href=format!("/orgs/{}", org.id)>"Organization settings"</a> })}
                <ActionForm action=logout>
                    <button type="submit" class="link-button">"Log out"</button>
                </ActionForm>
            </div>
        </details>
    }
}

fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <p>"Patchbay — the open-source integration marketplace. Apache-2.0."</p>
        </footer>
    }
}
