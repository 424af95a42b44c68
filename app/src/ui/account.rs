//! The account page: who you are, and a password change.

use super::forms::{action_error, FormError, TextField};
use super::session::with_session;
use crate::api::auth::ChangePassword;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let error = action_error(change);
    let query = use_query_map();
    let saved = move || {
        query.read().get("saved").as_deref() == Some("password")
            || change.value().with(|v| matches!(v, Some(Ok(()))))
    };
    view! {
        <Title text="Account" />
        {with_session(move |info| {
            view! {
                <h1>"Account"</h1>
                <section class="panel">
                    <h2>"Profile"</h2>
                    <dl class="facts">
                        <dt>"Name"</dt>
                        <dd>{info.user.display_name.clone()}</dd>
                        <dt>"Email"</dt>
                        <dd>{info.user.email.clone()}</dd>
                        <dt>"Organizations"</dt>
                        <dd>{info.orgs.len()}</dd>
                    </dl>
                </section>
                <section class="panel">
                    <h2>"Change password"</h2>
                    {move || saved().then(|| view! { <div class="alert alert-success" role="status">"Your password was changed."</div> })}
                    <ActionForm action=change attr:class="stack narrow" attr:novalidate=true>
                        <FormError error fields=&["current_password", "new_password", "confirm_password"] />
                        <TextField name="current_password" label="Current password" error=error kind="password" autocomplete="current-password" />
                        <TextField name="new_password" label="New password" error=error kind="password" autocomplete="new-password" />
                        <TextField name="confirm_password" label="New password, again" error=error kind="password" autocomplete="new-password" />
                        <button type="submit" class="button" disabled=move || change.pending().get()>"Change password"</button>
                    </ActionForm>
                </section>
            }
        })}
    }
}
