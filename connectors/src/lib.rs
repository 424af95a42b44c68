//! The third-party side of Patchbay: provider specs, outbound HTTP, OAuth clients, webhook
//! verification, the field mapping between a source and a destination, and the bundled sandbox
//! app. This crate knows nothing of Patchbay's database, tenants or UI.

pub mod engine;
pub mod error;
pub mod http;
pub mod mapping;
pub mod oauth;
pub mod record;
pub mod sandbox;
pub mod spec;
pub mod webhooks;

pub use error::{ConnectorError, ErrorClass};
pub use record::{ContentHash, Record};
