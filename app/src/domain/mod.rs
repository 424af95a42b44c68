//! The domain (server only): each module owns its concept's SQL. Server functions call in here
//! after they have worked out who is asking.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod connections;
pub mod db;
pub mod demo;
pub mod demo_listings;
pub mod installs;
pub mod listings;
pub mod logos;
pub mod markdown;
pub mod orgs;
pub mod queue;
pub mod rates;
pub mod runs;
pub mod schedules;
pub mod sync;
pub mod vault;
pub mod webhooks;

use sqlx::PgPool;

/// What server functions need from the server, provided to them as Leptos context.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Connections run as `patchbay_app`, so row-level security applies.
    pub pool: PgPool,
    /// Catalog pages between catalog changes.
    pub catalog: std::sync::Arc<listings::cache::CatalogCache>,
    /// Seals and opens stored credentials.
    pub vault: std::sync::Arc<vault::Keyring>,
    /// How connections reach providers.
    pub connect: std::sync::Arc<connections::ConnectSettings>,
}

impl AppState {
    pub fn new(
        pool: PgPool,
        vault: std::sync::Arc<vault::Keyring>,
        connect: std::sync::Arc<connections::ConnectSettings>,
    ) -> Self {
        AppState {
            pool,
            catalog: Default::default(),
            vault,
            connect,
        }
    }
}
