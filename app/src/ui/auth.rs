//! Log-in and sign-up pages.

use super::forms::{action_error, FormError, TextField};
use super::session::session_action;
use crate::api::auth::{LogIn, SignUp};
use crate::model::NewPassword;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The `next` query parameter, carried through the form so the user lands where they started.
fn next_param() -> impl Fn() -> String + Copy {
    let query = use_query_map();
    move || query.read().get("next").unwrap_or_default()
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = session_action::<LogIn>();
    let error = action_error(login);
    let next = next_param();
    view! {
        <Title text="Log in" />
        <section class="auth-card panel">
            <h1>"Log in to Patchbay"</h1>
            <ActionForm action=login attr:class="stack" attr:novalidate=true>
                <FormError error fields=&["email", "password"] />
                <TextField name="email" label="Email" error=error kind="email" autocomplete="username" />
                <TextField name="password" label="Password" error=error kind="password" autocomplete="current-password" />
                <input type="hidden" name="next" value=next />
                <button type="submit" class="button button-block" disabled=move || login.pending().get()>
                    {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                </button>
            </ActionForm>
            <p class="muted">"New here? " <a href="/signup">"Create an account"</a></p>
        </section>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let signup = session_action::<SignUp>();
    let error = action_error(signup);
    let next = next_param();
    view! {
        <Title text="Sign up" />
        <section class="auth-card panel">
            <h1>"Create your Patchbay account"</h1>
            <ActionForm action=signup attr:class="stack" attr:novalidate=true>
                <FormError error fields=&["display_name", "email", "password"] />
                <TextField name="display_name" label="Your name" error=error autocomplete="name" />
                <TextField name="email" label="Email" error=error kind="email" autocomplete="email" />
                <TextField
                    name="password"
                    label="Password"
                    error=error
                    kind="password"
                    autocomplete="new-password"
                    help=format!("At least {} characters.", NewPassword::MIN_LEN)
                />
                <input type="hidden" name="next" value=next />
                <button type="submit" class="button button-block" disabled=move || signup.pending().get()>
                    {move || if signup.pending().get() { "Creating your account…" } else { "Sign up" }}
                </button>
            </ActionForm>
            <p class="muted">"Already have an account? " <a href="/login">"Log in"</a></p>
        </section>
    }
}

/// Shown in place of a page that needs a signed-in user.
#[component]
pub fn SignInPrompt() -> impl IntoView {
    view! {
        <section class="panel empty-state">
            <h1>"Log in to continue"</h1>
            <p>"This page is for signed-in members of an organization."</p>
            <div class="actions">
                <a class="button" href="/login">"Log in"</a>
                <a class="button button-ghost" href="/signup">"Sign up"</a>
            </div>
        </section>
    }
}
