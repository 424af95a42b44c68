//! Every request Patchbay makes to a third party goes through [`OutboundClient`], so that the
//! things that must hold for all of them hold in one place: the SSRF guard (tenants choose the
//! URLs), timeouts, a cap on response size, redirects re-checked hop by hop, a rate budget taken
//! per hop, and errors classified for the sync engine without leaking credentials.

mod body;
mod client;
mod message;
mod redirect;
mod retry_after;
mod ssrf;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use url::Url;

use crate::error::ConnectorError;

pub use client::OutboundClient;
pub use message::{OutboundRequest, OutboundResponse};
pub use retry_after::{classify, parse_retry_after, MAX_RETRY_AFTER};
pub use ssrf::{check_ip, NameLookup, SystemLookup};

/// How the outbound client behaves. `Default` gives production settings.
#[derive(Clone)]
pub struct HttpConfig {
    /// Time allowed to open a connection (TCP and TLS). Default 10s.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response. Default 30s.
    pub read_timeout: Duration,
    /// Network time allowed for a whole exchange, all redirect hops together (waits for the
    /// rate budget are not counted). Default 60s.
    pub total_timeout: Duration,
    /// Largest response body accepted; a bigger one is cut off and is a `Permanent` error.
    /// Default 32 MiB.
    pub max_body_bytes: usize,
    /// Redirects followed before giving up. Default 5.
    pub max_redirects: usize,
    /// Addresses permitted although the SSRF guard would refuse them (tests, a local demo).
    /// Empty by default.
    pub allow: Vec<IpNet>,
    /// The `User-Agent` header. Default `Patchbay/<crate version>`.
    pub user_agent: String,
    /// Name resolution; `None` is the system resolver. Tests inject fixed answers.
    pub resolver: Option<Arc<dyn NameLookup>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            max_body_bytes: 32 * 1024 * 1024,
            max_redirects: 5,
            allow: Vec::new(),
            user_agent: concat!("Patchbay/", env!("CARGO_PKG_VERSION")).to_owned(),
            resolver: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_redirects", &self.max_redirects)
            .field("allow", &self.allow)
            .field("user_agent", &self.user_agent)
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// A rate budget, taken before every request including every redirect hop, so callers can
/// spend a per-provider or per-tenant allowance. An `Err` stops the exchange and is returned
/// as-is (typically `RateLimited`).
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Waits for, or refuses, one request to `url`.
    async fn take(&self, url: &Url) -> Result<(), ConnectorError>;
}

/// How a URL appears in messages and logs: host, port and path, never the query string, the
/// fragment or userinfo, which may hold secrets.
pub(crate) fn target(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}{}", url.path()),
        None => format!("{host}{}", url.path()),
    }
}
