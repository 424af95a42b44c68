//! The Source and Destination model, and the engine that runs a provider spec through it.
//!
//! A [`Source`] reads one page of a stream at a time from a [`ReadPosition`] (the incremental
//! cursor of the last sync plus the position inside this one); a [`Destination`] writes mapped
//! records idempotently. [`SpecSource`] and [`SpecDestination`] do both for any provider whose
//! spec can describe its API; a code connector implements the same traits.

mod destination;
pub mod link;
mod request;
mod source;

pub use destination::SpecDestination;
pub use source::SpecSource;

use crate::error::ConnectorError;
use crate::record::Record;
use crate::spec::ProviderSpec;
use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a request is authenticated with.
#[derive(Clone)]
pub enum Credentials {
    /// An OAuth 2.0 access token, sent as the spec's `token_header`.
    OAuth2 {
        access_token: SecretString,
    },
    /// An API key, sent as the spec says.
    ApiKey {
        key: SecretString,
    },
    Basic {
        username: String,
        password: SecretString,
    },
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::OAuth2 { .. } => "Credentials::OAuth2(…)",
            Credentials::ApiKey { .. } => "Credentials::ApiKey(…)",
            Credentials::Basic { .. } => "Credentials::Basic(…)",
            Credentials::None => "Credentials::None",
        })
    }
}

/// A provider account as the engine sees it: the spec, the credentials, and the variables its
/// templates use (connection fields, kept token fields, platform settings, stream inputs).
#[derive(Clone, Debug)]
pub struct Connection {
    pub spec: Arc<ProviderSpec>,
    pub credentials: Credentials,
    pub vars: BTreeMap<String, String>,
}

/// Where a read stands inside one sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum PageToken {
    /// A value for the pagination parameter (a cursor, or Stripe's `starting_after`).
    Param(String),
    /// Records to skip.
    Offset(u64),
    /// A page number.
    Page(u32),
    /// A full URL to fetch (Link headers, Salesforce's `nextRecordsUrl`).
    Url(String),
}

/// What to read: `cursor` is the high-water mark of the last completed sync (None for a full
/// read); `page` the position inside this sync (None for its first page).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadPosition {
    pub cursor: Option<String>,
    pub page: Option<PageToken>,
}

/// One page of records.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts; None when this was the last.
    pub next: Option<PageToken>,
    /// The greatest cursor-field value seen so far in this sync (incremental streams), to commit
    /// as the next sync's `cursor` once the sync completes.
    pub high_water: Option<String>,
}

/// Reads streams page by page.
#[async_trait]
pub trait Source: Send + Sync {
    async fn read_page(
        &self,
        stream: &str,
        position: &ReadPosition,
    ) -> Result<Page, ConnectorError>;
}

/// A write to a destination stream.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Create { data: serde_json::Value },
    Update { id: String, data: serde_json::Value },
}

/// What a write returned: the record's id at the destination when the response names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    pub id: Option<String>,
}

/// Writes mapped records. `idempotency_key` must be the same when the same write is retried, so
/// that a retry after a lost response does not create a second record.
#[async_trait]
pub trait Destination: Send + Sync {
    async fn write(
        &self,
        stream: &str,
        op: &WriteOp,
        idempotency_key: &str,
    ) -> Result<WriteResult, ConnectorError>;

    /// Writes a batch in order, stopping at the first failure (the caller commits what succeeded).
    async fn write_batch(
        &self,
        stream: &str,
        ops: &[(WriteOp, String)],
    ) -> (Vec<WriteResult>, Option<ConnectorError>) {
        let mut done = Vec::with_capacity(ops.len());
        for (op, key) in ops {
            match self.write(stream, op, key).await {
                Ok(result) => done.push(result),
                Err(err) => return (done, Some(err)),
            }
        }
        (done, None)
    }
}

/// Reads every page of a stream from `cursor`, calling `each` per page. Returns the high-water
/// mark to store for the next sync.
pub async fn read_all<F>(
    source: &dyn Source,
    stream: &str,
    cursor: Option<String>,
    mut each: F,
) -> Result<Option<String>, ConnectorError>
where
    F: FnMut(Page) -> Result<(), ConnectorError> + Send,
{
    let mut position = ReadPosition {
        cursor: cursor.clone(),
        page: None,
    };
    let mut high_water = cursor;
    loop {
        let page = source.read_page(stream, &position).await?;
        let next = page.next.clone();
        if page.high_water.is_some() {
            high_water = page.high_water.clone();
        }
        each(page)?;
        match next {
            Some(token) => position.page = Some(token),
            None => return Ok(high_water),
        }
    }
}
