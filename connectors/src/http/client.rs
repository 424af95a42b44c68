//! [`OutboundClient`]: the guarded reqwest client plus the exchange loop around it — SSRF check,
//! rate budget, one hop, capped body, then either the answer or the next redirect hop.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ipnet::IpNet;
use url::Url;

use super::body::{read_capped, BodyError};
use super::redirect::next_hop;
use super::ssrf::{self, GuardedResolver, Refused, SystemLookup};
use super::{classify, target, HttpConfig, OutboundRequest, OutboundResponse, RateBudget};
use crate::error::{ConnectorError, ErrorClass};

/// How much of an error response's body goes into the error message.
const SNIPPET_CHARS: usize = 200;

/// The one way connectors talk to third parties. Cheap to clone (shares the connection pool).
#[derive(Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    allow: Arc<[IpNet]>,
    total_timeout: Duration,
    max_body_bytes: usize,
    max_redirects: usize,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl OutboundClient {
    /// Builds the client: guarded DNS, no automatic redirects, no proxy from the environment (a
    /// proxy would resolve names itself, out of the guard's sight), the configured timeouts.
    pub fn new(config: HttpConfig) -> Result<Self, ConnectorError> {
        let allow: Arc<[IpNet]> = config.allow.into();
        let lookup = config.resolver.unwrap_or_else(|| Arc::new(SystemLookup));
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(lookup, allow.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .referer(false)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.total_timeout)
            .user_agent(config.user_agent)
            .build()
            .map_err(|e| {
                ConnectorError::permanent(format!("could not build the HTTP client: {e}"))
            })?;
        Ok(OutboundClient {
            client,
            allow,
            total_timeout: config.total_timeout,
            max_body_bytes: config.max_body_bytes,
            max_redirects: config.max_redirects,
        })
    }

    /// Sends, following redirects manually (each hop re-checked), and returns the response
    /// whatever its status.
    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, ConnectorError> {
        self.exchange(req, None).await
    }

    /// Like [`send`](Self::send), taking one unit of `budget` before every hop.
    pub async fn send_with_budget(
        &self,
        req: OutboundRequest,
        budget: &dyn RateBudget,
    ) -> Result<OutboundResponse, ConnectorError> {
        self.exchange(req, Some(budget)).await
    }

    /// Like [`send`](Self::send), but a non-2xx status becomes an error classified by
    /// [`classify`], with the status set and a short message holding at most ~200 characters of
    /// the body (no URL query, no headers).
    pub async fn send_ok(
        &self,
        req: OutboundRequest,
        budget: Option<&dyn RateBudget>,
    ) -> Result<OutboundResponse, ConnectorError> {
        let resp = self.exchange(req, budget).await?;
        if resp.is_success() {
            return Ok(resp);
        }
        let class = classify(resp.status, &resp.headers, SystemTime::now())
            .unwrap_or(ErrorClass::Permanent);
        let snippet = snippet(&resp.body);
        let sep = if snippet.is_empty() { "" } else { ": " };
        let message = format!(
            "{} answered HTTP {}{sep}{snippet}",
            target(&resp.url),
            resp.status
        );
        Err(ConnectorError::new(class, message).with_status(resp.status))
    }

    /// One guarded request in the `http` crate's types, shaped for the oauth2 crate's
    /// `AsyncHttpClient` (pass `&|r| client.send_http(r)`). Unlike [`reqwest`](Self::reqwest)
    /// it checks IP-literal URLs and caps the body too. Redirects are not followed, as oauth2
    /// advises for token requests: a 3xx comes back as-is.
    pub async fn send_http(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, ConnectorError> {
        let (parts, body) = req.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|_| {
            ConnectorError::permanent("refused a request without a valid absolute URL")
        })?;
        let body = (!body.is_empty()).then(|| Bytes::from(body));
        let req = OutboundRequest {
            method: parts.method,
            url,
            headers: parts.headers,
            body,
        };
        self.check_url(&req.url)?;
        let resp = self.timed_hop(&req, self.total_timeout).await?;
        let mut out = http::Response::new(resp.body.to_vec());
        *out.status_mut() = http::StatusCode::from_u16(resp.status)
            .map_err(|_| ConnectorError::permanent("invalid response status"))?;
        *out.headers_mut() = resp.headers;
        Ok(out)
    }

    /// The guarded reqwest client itself (redirects off, guarded DNS), for the oauth2 crate.
    /// IP-literal URLs never reach a resolver, so call [`check_url`](Self::check_url) on every
    /// URL first — or use [`send_http`](Self::send_http), which does.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Checks a URL without sending: scheme http/https only; an IP-literal host is checked
    /// against the guard. (DNS names are checked at connect time by the resolver.)
    pub fn check_url(&self, url: &Url) -> Result<(), ConnectorError> {
        ssrf::check_url(url, &self.allow)
    }

    async fn exchange(
        &self,
        mut req: OutboundRequest,
        budget: Option<&dyn RateBudget>,
    ) -> Result<OutboundResponse, ConnectorError> {
        let start = target(&req.url);
        let mut remaining = self.total_timeout;
        let mut redirects = 0;
        loop {
            self.check_url(&req.url)?;
            if let Some(budget) = budget {
                budget.take(&req.url).await?;
            }
            let began = Instant::now();
            let resp = self.timed_hop(&req, remaining).await?;
            remaining = remaining.saturating_sub(began.elapsed());
            let Some(next) = next_hop(&req, &resp)? else {
                return Ok(resp);
            };
            redirects += 1;
            if redirects > self.max_redirects {
                return Err(ConnectorError::permanent(format!(
                    "too many redirects (more than {}) starting at {start}",
                    self.max_redirects
                ))
                .with_status(resp.status));
            }
            tracing::debug!(
                from = %target(&req.url),
                to = %target(&next.url),
                status = resp.status,
                "following redirect"
            );
            req = next;
        }
    }

    /// [`hop`](Self::hop) within what is left of the total timeout.
    async fn timed_hop(
        &self,
        req: &OutboundRequest,
        remaining: Duration,
    ) -> Result<OutboundResponse, ConnectorError> {
        tokio::time::timeout(remaining, self.hop(req))
            .await
            .map_err(|_| {
                ConnectorError::transient(format!(
                    "request to {} timed out after {:?} in total",
                    target(&req.url),
                    self.total_timeout
                ))
            })?
    }

    /// One request, no redirects, body read under the cap.
    async fn hop(&self, req: &OutboundRequest) -> Result<OutboundResponse, ConnectorError> {
        tracing::debug!(method = %req.method, target = %target(&req.url), "outbound request");
        let mut builder = self
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| network_error(&e, &req.url))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let length = resp.content_length();
        let body = read_capped(resp.bytes_stream(), self.max_body_bytes, length)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => ConnectorError::permanent(format!(
                    "response from {} is larger than the {}-byte limit",
                    target(&req.url),
                    self.max_body_bytes
                ))
                .with_status(status),
                BodyError::Stream(e) => network_error(&e, &req.url),
            })?;
        Ok(OutboundResponse {
            status,
            headers,
            body,
            url: req.url.clone(),
        })
    }
}

/// Classifies a reqwest failure. reqwest's own message embeds the full URL (query and all), so
/// it is never shown; the deepest cause (an io or TLS error) is, next to host and path.
fn network_error(err: &reqwest::Error, url: &Url) -> ConnectorError {
    let mut root: &(dyn std::error::Error + 'static) = err;
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return ConnectorError::permanent(refused.message.clone());
        }
        root = e;
        cause = e.source();
    }
    let to = target(url);
    let detail = if root.is::<reqwest::Error>() {
        String::new()
    } else {
        format!(": {root}")
    };
    if err.is_timeout() {
        ConnectorError::transient(format!("request to {to} timed out{detail}"))
    } else if err.is_connect() {
        ConnectorError::transient(format!("could not connect to {to}{detail}"))
    } else if err.is_body() || err.is_decode() {
        ConnectorError::transient(format!("reading the response from {to} failed{detail}"))
    } else if err.is_builder() {
        ConnectorError::permanent(format!("could not build the request to {to}{detail}"))
    } else {
        ConnectorError::transient(format!("request to {to} failed{detail}"))
    }
}

/// The start of a body for an error message: lossy UTF-8, whitespace and control characters
/// collapsed, at most [`SNIPPET_CHARS`] characters.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut words = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty());
    let mut count = 0;
    for word in words.by_ref() {
        let space = usize::from(!out.is_empty());
        let len = word.chars().count();
        if count + space + len > SNIPPET_CHARS {
            let room = SNIPPET_CHARS.saturating_sub(count + space);
            if space == 1 && room > 0 {
                out.push(' ');
            }
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if space == 1 {
            out.push(' ');
        }
        out.push_str(word);
        count += space + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_is_short_and_flat() {
        assert_eq!(
            snippet(b"  {\"error\":\n\t\"nope\"}  "),
            "{\"error\": \"nope\"}"
        );
        let long = snippet("é".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), SNIPPET_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(snippet(b""), "");
    }
}
