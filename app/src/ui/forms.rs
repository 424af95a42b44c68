//! Form pieces: errors beside their fields, a form-level error for the rest, and an error panel.

use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The latest error of an action, as a signal.
pub fn action_error<S>(action: ServerAction<S>) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || {
        action
            .value()
            .with(|v| v.as_ref().and_then(|r| r.as_ref().err().cloned()))
    })
}

/// The message for `field`, if the error belongs to it.
fn message_for(error: Option<AppError>, field: &str) -> Option<String> {
    error
        .filter(|e| e.field() == Some(field))
        .map(|e| e.to_string())
}

/// The error beside one field; its id is `<field>-error`, for `aria-describedby`.
#[component]
pub fn FieldError(error: Signal<Option<AppError>>, field: &'static str) -> impl IntoView {
    move || {
        message_for(error.get(), field).map(|message| {
            view! { <p class="field-error" id=format!("{field}-error") role="alert">{message}</p> }
        })
    }
}

/// Errors that belong to no field of this form (`fields` lists the form's own fields).
#[component]
pub fn FormError(
    error: Signal<Option<AppError>>,
    fields: &'static [&'static str],
) -> impl IntoView {
    move || {
        error
            .get()
            .filter(|e| e.field().is_none_or(|f| !fields.contains(&f)))
            .map(|e| view! { <div class="alert alert-error" role="alert">{e.to_string()}</div> })
    }
}

/// A labelled input with its help text and its error beside it, wired for assistive technology
/// (`aria-invalid`, `aria-describedby`).
#[component]
pub fn TextField(
    /// The form field's name, which is also the server function's argument.
    name: &'static str,
    label: &'static str,
    error: Signal<Option<AppError>>,
    /// The input's type.
    #[prop(default = "text")]
    kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional, into)] help: Option<String>,
    /// The element id, when `name` is not unique on the page.
    #[prop(optional)]
    id: Option<&'static str>,
    /// Extra classes on the wrapper.
    #[prop(optional)]
    class: &'static str,
    /// Leave the input optional (it is required by default).
    #[prop(optional)]
    optional: bool,
) -> impl IntoView {
    let id = id.unwrap_or(name);
    let help_id = help.as_ref().map(|_| format!("{name}-help"));
    let described_by = {
        let help_id = help_id.clone();
        move || {
            let mut ids: Vec<String> = help_id.iter().cloned().collect();
            if message_for(error.get(), name).is_some() {
                ids.push(format!("{name}-error"));
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    let invalid = move || {
        if message_for(error.get(), name).is_some() {
            "true"
        } else {
            "false"
        }
    };
    view! {
        <div class=format!("field {class}")>
            <label for=id>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                required=!optional
                aria-invalid=invalid
                aria-describedby=described_by
            />
            {help.map(|text| view! { <p class="help" id=help_id>{text}</p> })}
            <FieldError error field=name />
        </div>
    }
}

/// A whole-page error.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    let title = match error {
        AppError::NotFound { .. } => "Not found",
        AppError::Forbidden { .. } | AppError::Unauthorized => "Not allowed",
        _ => "Something went wrong",
    };
    view! {
        <section class="panel empty-state">
            <h1>{title}</h1>
            <p>{error.to_string()}</p>
            <a class="button" href="/">"Back to the start"</a>
        </section>
    }
}
