#![recursion_limit = "256"]
//! Patchbay's web application: the Leptos UI ([`ui`]), the server functions it calls ([`api`]),
//! and, on the server only, the domain with its SQL ([`domain`]).

pub mod api;
pub mod error;
pub mod model;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod domain;
#[cfg(feature = "ssr")]
pub mod security;

pub use ui::{shell, App};

/// The browser's entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
