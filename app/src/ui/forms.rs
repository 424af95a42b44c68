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

/// Whether `field` has an error, for `aria-invalid`.
pub fn invalid(
    error: Signal<Option<AppError>>,
    field: &'static str,
) -> impl Fn() -> &'static str + Copy {
    move || {
        if message_for(error.get(), field).is_some() {
            "true"
        } else {
            "false"
        }
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
