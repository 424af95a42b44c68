//! How a failure talking to a third party is classified, so that the sync engine knows whether to
//! retry, wait, refresh credentials, or give up.

use std::time::Duration;

/// What the caller should do about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying with backoff: network errors, timeouts, 5xx, 408.
    Transient,
    /// The provider asked us to slow down (429, or a 403/503 carrying Retry-After); wait
    /// `retry_after` when it was given.
    RateLimited { retry_after: Option<Duration> },
    /// The credentials are missing, invalid or expired (401): refresh, then ask for reauth.
    Auth,
    /// Retrying will not help: 4xx other than the above, a refused address, malformed data.
    Permanent,
}

/// A failure talking to a third party.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub class: ErrorClass,
    /// For people and logs; never contains credentials.
    pub message: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The request that failed and its answer (if any), for the run log.
    pub exchange: Option<Box<crate::engine::Exchange>>,
}

impl ConnectorError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ConnectorError {
            class,
            message: message.into(),
            status: None,
            exchange: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Auth, message)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_exchange(mut self, exchange: crate::engine::Exchange) -> Self {
        self.exchange = Some(Box::new(exchange));
        self
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::Transient | ErrorClass::RateLimited { .. }
        )
    }
}
