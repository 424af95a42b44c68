//! [`SpecSource`]: reads any stream a provider spec describes, page by page.

use super::link::next_link;
use super::request::{field, scalar, Api};
use super::{Connection, Page, PageToken, ReadPosition, Source};
use crate::error::{ConnectorError, ErrorClass};
use crate::http::{OutboundClient, OutboundRequest, RateBudget};
use crate::record::Record;
use crate::spec::{CursorFormat, Pagination, StreamSpec};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use url::Url;

/// A webhook subscription registered at a provider: its id there and the secret it signs with.
pub struct WebhookSubscription {
    pub id: String,
    pub secret: secrecy::SecretString,
}

impl std::fmt::Debug for WebhookSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSubscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A source driven by a provider spec.
#[derive(Clone)]
pub struct SpecSource {
    api: Api,
}

impl SpecSource {
    pub fn new(connection: Connection, http: OutboundClient) -> Self {
        SpecSource {
            api: Api::new(connection, http),
        }
    }

    /// Takes from `budget` before every request.
    pub fn with_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.api.set_budget(budget);
        self
    }

    pub fn connection(&self) -> &Connection {
        &self.api.connection
    }

    /// Calls the spec's check endpoint: proves the credentials work and returns the account label.
    pub async fn check(&self) -> Result<Option<String>, ConnectorError> {
        let spec = &self.api.connection.spec;
        let Some(check) = &spec.check else {
            return Ok(None);
        };
        let url = self
            .api
            .connection
            .url(&check.path, &BTreeMap::new(), &[])?;
        let body = self.get_json(url).await?;
        Ok(check
            .label_pointer
            .as_deref()
            .and_then(|p| body.pointer(p))
            .and_then(scalar))
    }

    /// Registers `url` for the provider's webhooks through the spec's `webhooks.subscribe`, and
    /// returns the subscription's id and signing secret. Err when the spec has no such API.
    pub async fn subscribe_webhooks(
        &self,
        url: &str,
    ) -> Result<WebhookSubscription, ConnectorError> {
        let spec = &self.api.connection.spec;
        let sub = spec
            .webhooks
            .as_ref()
            .and_then(|w| w.subscribe.as_ref())
            .ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{} has no API for registering webhooks",
                    spec.id
                ))
            })?;
        let target = self.api.connection.url(&sub.path, &BTreeMap::new(), &[])?;
        let body = serde_json::json!({ sub.url_field.clone(): url });
        let res = self
            .api
            .call(OutboundRequest::post_json(target, &body))
            .await?;
        let answer = parse_json(&spec.id, &res.body)?;
        let read = |pointer: &str, what: &str| {
            answer.pointer(pointer).and_then(scalar).ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{}: the webhook subscription answer has no {what} at `{pointer}`",
                    spec.id
                ))
            })
        };
        Ok(WebhookSubscription {
            id: read(&sub.id_pointer, "id")?,
            secret: secrecy::SecretString::from(read(&sub.secret_pointer, "secret")?),
        })
    }

    /// Removes a subscription made by [`SpecSource::subscribe_webhooks`]; one already gone (404)
    /// counts as removed. Ok without a call when the spec has no delete path.
    pub async fn unsubscribe_webhooks(&self, id: &str) -> Result<(), ConnectorError> {
        let spec = &self.api.connection.spec;
        let Some(path) = spec
            .webhooks
            .as_ref()
            .and_then(|w| w.subscribe.as_ref())
            .and_then(|s| s.delete_path.as_deref())
        else {
            return Ok(());
        };
        let vars = BTreeMap::from([("id".to_owned(), id.to_owned())]);
        let url = self.api.connection.url(path, &vars, &[])?;
        let mut req = OutboundRequest::get(url);
        req.method = http::Method::DELETE;
        match self.api.call(req).await {
            Ok(_) => Ok(()),
            Err(err) if err.status == Some(404) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn send(&self, url: Url) -> Result<crate::http::OutboundResponse, ConnectorError> {
        self.api.call(OutboundRequest::get(url)).await
    }

    async fn get_json(&self, url: Url) -> Result<serde_json::Value, ConnectorError> {
        let res = self.send(url).await?;
        parse_json(&self.api.connection.spec.id, &res.body)
    }

    /// The URL of one page.
    fn page_url(
        &self,
        stream: &StreamSpec,
        position: &ReadPosition,
    ) -> Result<Url, ConnectorError> {
        let conn = &self.api.connection;
        if let Some(PageToken::Url(next)) = &position.page {
            // Next-page URLs come from the provider; resolve relative ones against the API's
            // origin and never send credentials anywhere else.
            let url = conn
                .base_url()?
                .join(next)
                .map_err(|e| ConnectorError::permanent(format!("bad next-page URL: {e}")))?;
            if !conn.same_origin(&url)? {
                return Err(ConnectorError::permanent(format!(
                    "{}: the next-page link points at another host ({}); refusing to send credentials there",
                    conn.spec.id,
                    url.host_str().unwrap_or("?")
                )));
            }
            return Ok(url);
        }
        let mut vars = BTreeMap::new();
        let incremental = stream.incremental.as_ref();
        if let Some(inc) = incremental {
            let cursor = position
                .cursor
                .clone()
                .or_else(|| inc.initial.clone())
                .unwrap_or_default();
            vars.insert("cursor".to_owned(), format_cursor(&cursor, inc.send_as));
        }
        let mut query: Vec<(String, String)> = Vec::new();
        for (k, v) in &stream.query {
            query.push((k.clone(), conn.query_value(v, &vars)?));
        }
        if let (Some(inc), Some(cursor)) = (incremental, &position.cursor) {
            if let Some(param) = &inc.param {
                query.push((param.clone(), format_cursor(cursor, inc.send_as)));
            }
        }
        let limit =
            |param: &Option<String>, size: &Option<u32>, query: &mut Vec<(String, String)>| {
                if let (Some(p), Some(n)) = (param, size) {
                    query.push((p.clone(), n.to_string()));
                }
            };
        match (&stream.pagination, &position.page) {
            (
                Pagination::Cursor {
                    param,
                    limit_param,
                    page_size,
                    ..
                },
                page,
            ) => {
                limit(limit_param, page_size, &mut query);
                if let Some(PageToken::Param(value)) = page {
                    query.push((param.clone(), value.clone()));
                }
            }
            (
                Pagination::Offset {
                    param,
                    limit_param,
                    page_size,
                },
                page,
            ) => {
                query.push((limit_param.clone(), page_size.to_string()));
                let offset = match page {
                    Some(PageToken::Offset(n)) => *n,
                    _ => 0,
                };
                query.push((param.clone(), offset.to_string()));
            }
            (
                Pagination::Page {
                    param,
                    limit_param,
                    page_size,
                    start,
                },
                page,
            ) => {
                limit(limit_param, page_size, &mut query);
                let n = match page {
                    Some(PageToken::Page(n)) => *n,
                    _ => *start,
                };
                query.push((param.clone(), n.to_string()));
            }
            (
                Pagination::LinkHeader {
                    limit_param,
                    page_size,
                },
                _,
            ) => limit(limit_param, page_size, &mut query),
            (Pagination::NextUrl { .. } | Pagination::None, _) => {}
        }
        conn.url(&stream.path, &vars, &query)
    }
}

fn parse_json(provider: &str, body: &[u8]) -> Result<serde_json::Value, ConnectorError> {
    // A truncated or garbled body is usually a provider hiccup: worth a retry.
    serde_json::from_slice(body).map_err(|e| {
        ConnectorError::new(
            ErrorClass::Transient,
            format!("{provider}: the response is not valid JSON ({e})"),
        )
    })
}

#[async_trait]
impl Source for SpecSource {
    async fn read_page(
        &self,
        stream_name: &str,
        position: &ReadPosition,
    ) -> Result<Page, ConnectorError> {
        let spec = &self.api.connection.spec;
        let stream = spec.stream(stream_name).ok_or_else(|| {
            ConnectorError::permanent(format!("{} has no stream `{stream_name}`", spec.id))
        })?;
        let url = self.page_url(stream, position)?;
        let (res, exchange) = self.api.call_logged(OutboundRequest::get(url)).await?;
        let mut body =
            parse_json(&spec.id, &res.body).map_err(|e| e.with_exchange(exchange.clone()))?;

        // Take the records out of the body rather than copying them; pagination reads the rest.
        let slot = if stream.records.is_empty() {
            Some(&mut body)
        } else {
            body.pointer_mut(&stream.records)
        };
        let items = slot
            .and_then(|v| match v.take() {
                serde_json::Value::Array(items) => Some(items),
                _ => None,
            })
            .ok_or_else(|| {
                ConnectorError::permanent(format!(
                    "{}: expected an array of records at `{}`",
                    spec.id, stream.records
                ))
            })?;
        let mut records = Vec::with_capacity(items.len());
        let mut high_water = position.cursor.clone();
        let cursor_field = stream.incremental.as_ref().map(|i| i.cursor_field.as_str());
        for item in items {
            let key = field(&item, &stream.primary_key)
                .and_then(scalar)
                .ok_or_else(|| {
                    ConnectorError::permanent(format!(
                        "{}: a record has no primary key `{}`",
                        spec.id, stream.primary_key
                    ))
                })?;
            if let Some(value) = cursor_field.and_then(|f| field(&item, f)).and_then(scalar) {
                if high_water.as_deref().is_none_or(|hw| later(&value, hw)) {
                    high_water = Some(value);
                }
            }
            records.push(Record::new(key, item));
        }

        let next = match &stream.pagination {
            Pagination::None => None,
            Pagination::Cursor {
                next_pointer: Some(p),
                ..
            } => body.pointer(p).and_then(scalar).map(PageToken::Param),
            Pagination::Cursor {
                last_record_field: Some(f),
                has_more_pointer,
                ..
            } => {
                let more = has_more_pointer
                    .as_deref()
                    .and_then(|p| body.pointer(p))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if more {
                    let last = records
                        .last()
                        .and_then(|r| field(&r.data, f))
                        .and_then(scalar);
                    last.map(PageToken::Param)
                } else {
                    None
                }
            }
            Pagination::Cursor { .. } => None,
            // Offset and page numbers go on until an empty page: an API that caps the page size
            // below what was asked for must not end the read early.
            Pagination::Offset { .. } => {
                let offset = match &position.page {
                    Some(PageToken::Offset(n)) => *n,
                    _ => 0,
                };
                (!records.is_empty()).then(|| PageToken::Offset(offset + records.len() as u64))
            }
            Pagination::Page { start, .. } => {
                let n = match &position.page {
                    Some(PageToken::Page(n)) => *n,
                    _ => *start,
                };
                (!records.is_empty()).then(|| PageToken::Page(n + 1))
            }
            Pagination::LinkHeader { .. } => res
                .headers
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link)
                .map(PageToken::Url),
            Pagination::NextUrl {
                next_pointer,
                done_pointer,
            } => {
                let done = done_pointer
                    .as_deref()
                    .and_then(|p| body.pointer(p))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                if done {
                    None
                } else {
                    body.pointer(next_pointer)
                        .and_then(|v| v.as_str())
                        .filter(|s| !s.is_empty())
                        .map(|s| PageToken::Url(s.to_owned()))
                }
            }
        };
        // A page that names itself as next would loop forever.
        if next.is_some() && next == position.page {
            return Err(ConnectorError::permanent(format!(
                "{}: the provider returned the same page twice",
                spec.id
            )));
        }
        Ok(Page {
            records,
            next,
            high_water,
            exchange: Some(exchange),
        })
    }
}

/// Whether cursor value `a` is later than `b`: numerically when both are numbers, as instants
/// when both are timestamps (Shopify's carry the shop's offset, which changes with daylight
/// saving, so `01:10-05:00` follows `01:50-04:00`), else as strings.
pub fn later(a: &str, b: &str) -> bool {
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x > y;
    }
    match (parse_instant(a), parse_instant(b)) {
        (Some(x), Some(y)) => x > y,
        _ => a > b,
    }
}

/// An RFC 3339 timestamp, also accepting an offset without a colon (`+0000`, as Salesforce
/// writes it).
fn parse_instant(value: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t);
    }
    let bytes = value.as_bytes();
    let n = bytes.len();
    if n > 5 && matches!(bytes[n - 5], b'+' | b'-') && bytes[n - 4..].iter().all(u8::is_ascii_digit)
    {
        let fixed = format!("{}:{}", &value[..n - 2], &value[n - 2..]);
        return time::OffsetDateTime::parse(&fixed, &Rfc3339).ok();
    }
    None
}

/// Writes a cursor as the spec asks; a value that is not a timestamp is sent as it is.
fn format_cursor(value: &str, format: CursorFormat) -> String {
    match format {
        CursorFormat::AsRead => value.to_owned(),
        CursorFormat::UtcSeconds => match parse_instant(value) {
            Some(t) => {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                )
            }
            None => value.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_compare_as_instants_and_format_for_soql() {
        assert!(later(
            "2024-05-01T00:37:29.500+0000",
            "2024-05-01T00:37:29.000+0000"
        ));
        assert!(later(
            "2024-11-03T01:10:00-05:00",
            "2024-11-03T01:50:00-04:00"
        ));
        assert!(later("10", "9"));
        assert_eq!(
            format_cursor("2024-05-01T02:37:29.999+0200", CursorFormat::UtcSeconds),
            "2024-05-01T00:37:29Z"
        );
        assert_eq!(
            format_cursor("1970-01-01T00:00:00Z", CursorFormat::UtcSeconds),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(format_cursor("abc", CursorFormat::UtcSeconds), "abc");
        assert_eq!(
            format_cursor("2024-05-01T00:37:29.000+0000", CursorFormat::AsRead),
            "2024-05-01T00:37:29.000+0000"
        );
    }
}
