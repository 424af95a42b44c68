//! Server functions: thin. Each works out who is asking, parses its input, calls the domain and
//! returns a typed [`AppError`](crate::error::AppError). Endpoints are stable (`/api/<name>`) so
//! that tests and docs can name them.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod connections;
pub mod installs;
pub mod listings;
pub mod orgs;
pub mod review;

#[cfg(feature = "ssr")]
pub mod ssr;
