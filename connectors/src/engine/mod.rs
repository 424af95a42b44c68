//! The Source and Destination model, and the engine that runs a provider spec through it.
//!
//! A [`Source`] reads one page of a stream at a time from a [`ReadPosition`] (the incremental
//! cursor of the last sync plus the position inside this one); a [`Destination`] writes mapped
//! records idempotently. [`SpecSource`] and [`SpecDestination`] do both for any provider whose
//! spec can describe its API; a code connector implements the same traits.

mod destination;
mod exchange;
pub mod link;
mod request;
mod source;

pub use destination::SpecDestination;
pub use exchange::{redact_url, sensitive_param, Exchange, REDACTED};
pub use source::{later, SpecSource, WebhookSubscription};

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

impl Credentials {
    /// The secret strings, to scrub from anything that might be shown or logged.
    pub fn secrets(&self) -> Vec<&str> {
        use secrecy::ExposeSecret;
        match self {
            Credentials::OAuth2 { access_token } => vec![access_token.expose_secret()],
            Credentials::ApiKey { key } => vec![key.expose_secret()],
            Credentials::Basic { password, .. } => vec![password.expose_secret()],
            Credentials::None => Vec::new(),
        }
    }
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
    /// The request that fetched the page and its answer, for the run log.
    pub exchange: Option<Exchange>,
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

    /// Deletes the record `id` (the destination's own id) from `stream`. A record already gone
    /// counts as deleted. Destinations that cannot delete say so with [`Destination::can_delete`].
    async fn delete(&self, stream: &str, id: &str) -> Result<(), ConnectorError> {
        let _ = id;
        Err(ConnectorError::permanent(format!(
            "records of `{stream}` cannot be deleted here"
        )))
    }

    /// Whether [`Destination::delete`] works for `stream`.
    fn can_delete(&self, stream: &str) -> bool {
        let _ = stream;
        false
    }

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

/// The most pages one read may take: a provider that pages forever is cut off, not followed.
pub const MAX_PAGES: usize = 1_000_000;

/// Reads every page of a stream from `cursor`, calling `each` per page. Returns the high-water
/// mark to store for the next sync: the greatest cursor value of any page, never lower than
/// `cursor` (pages need not arrive in cursor order). A page token seen before ends the read
/// with an error rather than a loop.
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
    let mut seen = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let page = source.read_page(stream, &position).await?;
        let next = page.next.clone();
        if let Some(mark) = &page.high_water {
            if high_water
                .as_deref()
                .is_none_or(|hw| source::later(mark, hw))
            {
                high_water = Some(mark.clone());
            }
        }
        each(page)?;
        match next {
            Some(token) => {
                if !seen.insert(serde_json::to_string(&token).unwrap_or_default()) {
                    return Err(ConnectorError::permanent(format!(
                        "stream `{stream}`: the provider sent a page it had already sent; stopping instead of looping"
                    )));
                }
                position.page = Some(token);
            }
            None => return Ok(high_water),
        }
    }
    Err(ConnectorError::permanent(format!(
        "stream `{stream}`: more than {MAX_PAGES} pages; stopping"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use std::sync::Mutex;

    /// A source that serves scripted pages.
    struct Scripted(Mutex<Vec<Page>>);

    #[async_trait]
    impl Source for Scripted {
        async fn read_page(&self, _: &str, _: &ReadPosition) -> Result<Page, ConnectorError> {
            Ok(self.0.lock().unwrap().remove(0))
        }
    }

    fn page(mark: &str, next: Option<&str>) -> Page {
        Page {
            records: vec![Record::new(mark, serde_json::json!({ "updated_at": mark }))],
            next: next.map(|n| PageToken::Param(n.to_owned())),
            high_water: Some(mark.to_owned()),
            exchange: None,
        }
    }

    #[tokio::test]
    async fn the_high_water_mark_is_the_greatest_of_all_pages() {
        let source = Scripted(Mutex::new(vec![
            page("2024-03-01T00:00:00Z", Some("b")),
            page("2024-01-01T00:00:00Z", None),
        ]));
        let mark = read_all(
            &source,
            "s",
            Some("2023-01-01T00:00:00Z".into()),
            |_| Ok(()),
        )
        .await
        .unwrap();
        assert_eq!(mark.as_deref(), Some("2024-03-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn alternating_page_tokens_end_the_read() {
        let source = Scripted(Mutex::new(vec![
            page("1", Some("a")),
            page("2", Some("b")),
            page("3", Some("a")),
            page("4", None),
        ]));
        let mut pages = 0;
        let err = read_all(&source, "s", None, |_| {
            pages += 1;
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.message.contains("already sent"), "{err}");
        assert_eq!(pages, 3);
    }
}
