#![recursion_limit = "256"]
//! The `patchbay` server: configuration, telemetry, the HTTP router and its middleware, database
//! start-up, and the command-line entry points. `build_router` is public so that tests can serve
//! the real application on port 0.

pub mod cli;
pub mod config;
pub mod db;
pub mod hooks;
pub mod keys;
pub mod logos;
pub mod metrics;
pub mod middleware;
pub mod oauth;
pub mod page_cache;
pub mod router;
pub mod telemetry;
pub mod worker;

pub use router::{build_router, ServerState};

/// mimalloc instead of the system allocator, for every binary that links the server (the
/// `patchbay` binary, its tests and benchmarks): a sync builds and drops a JSON value tree per
/// record read, and glibc's malloc and free were a fifth of the process's CPU in a profile of
/// the sync benchmark (docs/benchmarks.md, "Sync").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
