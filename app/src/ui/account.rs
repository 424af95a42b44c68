//! The account page: who you are, and a password change.

use super::forms::{action_error, invalid, FieldError, FormError};
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
                        <div class="field">
                            <label for="current_password">"Current password"</label>
                            <input id="current_password" name="current_password" type="password" autocomplete="current-password" required aria-invalid=invalid(error, "current_password") />
                            <FieldError error field="current_password" />
                        </div>
                        <div class="field">
                            <label for="new_password">"New password"</label>
                            <input id="new_password" name="new_password" type="password" autocomplete="new-password" required aria-invalid=invalid(error, "new_password") />
                            <FieldError error field="new_password" />
                        </div>
                        <div class="field">
                            <label for="confirm_password">"New password, again"</label>
                            <input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required aria-invalid=invalid(error, "confirm_password") />
                            <FieldError error field="confirm_password" />
                        </div>
                        <button type="submit" class="button" disabled=move || change.pending().get()>"Change password"</button>
                    </ActionForm>
                </section>
            }
        })}
    }
}
