//! Building a provider request from a spec: the URL from templates, and the credentials.

use super::{Connection, Credentials};
use crate::error::ConnectorError;
use crate::http::OutboundRequest;
use crate::spec::template::{self, Escape};
use crate::spec::{AuthSpec, KeyLocation};
use base64::Engine;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use url::Url;

impl Connection {
    /// The API root with its variables filled in.
    pub fn base_url(&self) -> Result<Url, ConnectorError> {
        self.spec
            .check_inputs(&self.vars)
            .map_err(|e| ConnectorError::permanent(format!("{}: {e}", self.spec.id)))?;
        let rendered = template::render(&self.spec.base_url, &self.vars, Escape::None)
            .map_err(|e| ConnectorError::permanent(format!("{}: base_url: {e}", self.spec.id)))?;
        Url::parse(&rendered).map_err(|e| {
            ConnectorError::permanent(format!("{}: base_url is not a URL: {e}", self.spec.id))
        })
    }

    /// `base_url` + a templated `path` (variables escaped as path segments) + `query`.
    pub fn url(
        &self,
        path: &str,
        extra_vars: &BTreeMap<String, String>,
        query: &[(String, String)],
    ) -> Result<Url, ConnectorError> {
        let vars = self.merged(extra_vars);
        let path = template::render(path, &vars, Escape::PathSegment)
            .map_err(|e| ConnectorError::permanent(format!("{}: path: {e}", self.spec.id)))?;
        let base = self.base_url()?;
        let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        let mut url = Url::parse(&joined)
            .map_err(|e| ConnectorError::permanent(format!("{}: bad URL: {e}", self.spec.id)))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(url)
    }

    /// Renders a query value template (`{cursor}` and the connection's variables), unescaped: the
    /// URL builder encodes it.
    pub fn query_value(
        &self,
        value: &str,
        extra_vars: &BTreeMap<String, String>,
    ) -> Result<String, ConnectorError> {
        template::render(value, &self.merged(extra_vars), Escape::None)
            .map_err(|e| ConnectorError::permanent(format!("{}: query: {e}", self.spec.id)))
    }

    fn merged(&self, extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        if extra.is_empty() {
            return self.vars.clone();
        }
        let mut vars = self.vars.clone();
        vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// Whether `url` is on the API's own origin, where credentials may be sent.
    pub fn same_origin(&self, url: &Url) -> Result<bool, ConnectorError> {
        Ok(self.base_url()?.origin() == url.origin())
    }

    /// Adds the credentials to a request, as the spec says.
    pub fn authenticate(
        &self,
        mut req: OutboundRequest,
    ) -> Result<OutboundRequest, ConnectorError> {
        match (&self.spec.auth, &self.credentials) {
            (AuthSpec::OAuth2(o), Credentials::OAuth2 { access_token }) => {
                req = req.header(&o.token_header, &format!("{}{}", o.token_prefix, access_token.expose_secret()));
            }
            (AuthSpec::ApiKey { location, name, prefix }, Credentials::ApiKey { key }) => match location {
                KeyLocation::Header => req = req.header(name, &format!("{prefix}{}", key.expose_secret())),
                KeyLocation::Query => {
                    req.url.query_pairs_mut().append_pair(name, &format!("{prefix}{}", key.expose_secret()));
                }
            },
            (AuthSpec::Basic, Credentials::Basic { username, password }) => {
                let raw = format!("{username}:{}", password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                req = req.header("Authorization", &format!("Basic {encoded}"));
            }
            (AuthSpec::None, Credentials::None) => {}
            _ => {
                return Err(ConnectorError::auth(format!(
                    "{}: the connection's credentials do not match the provider's kind of authentication",
                    self.spec.id
                )))
            }
        }
        Ok(req)
    }
}

/// The value at a JSON pointer, or at a top-level key when `field` is not a pointer.
pub fn field<'a>(value: &'a serde_json::Value, field: &str) -> Option<&'a serde_json::Value> {
    if field.is_empty() {
        Some(value)
    } else if field.starts_with('/') {
        value.pointer(field)
    } else {
        value.get(field)
    }
}

/// A scalar as a string: strings as they are, numbers and booleans in JSON form.
pub fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Turns a non-2xx response into a classified error, reading the spec's rate-limit headers: a
/// 403 or 429 with the remaining-budget header at 0, or naming one of the spec's quota error
/// codes, is a rate limit lasting until the reset time (when known).
pub fn response_error(conn: &Connection, res: &crate::http::OutboundResponse) -> ConnectorError {
    use crate::error::ErrorClass;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let now = SystemTime::now();
    let mut class =
        crate::http::classify(res.status, &res.headers, now).unwrap_or(ErrorClass::Permanent);
    if class == (ErrorClass::RateLimited { retry_after: None }) {
        // Shopify sends fractional seconds (`Retry-After: 2.0`), which RFC 9110 does not allow
        // and `classify` leaves unread; a wait the provider plainly stated is still honoured,
        // rounded up to whole seconds.
        let decimal = res
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0);
        if let Some(secs) = decimal {
            let capped = secs.ceil().min(crate::http::MAX_RETRY_AFTER.as_secs_f64());
            class = ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs_f64(capped)),
            };
        }
    }
    if let Some(rate) = &conn.spec.rate_limit {
        let header = |name: &Option<String>| {
            name.as_deref()
                .and_then(|n| res.headers.get(n))
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let exhausted = || {
            header(&rate.remaining_header) == Some("0")
                || (!rate.error_codes.is_empty()
                    && serde_json::from_slice::<serde_json::Value>(&res.body)
                        .is_ok_and(|b| names_code(&b, &rate.error_codes)))
        };
        if matches!(res.status, 403 | 429) && exhausted() {
            let until_reset = header(&rate.reset_header)
                .and_then(|v| v.parse::<u64>().ok())
                .map(|reset| {
                    let now_secs = now
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    Duration::from_secs(reset.saturating_sub(now_secs))
                });
            let retry_after = match class {
                ErrorClass::RateLimited {
                    retry_after: Some(d),
                } => Some(d),
                _ => until_reset,
            };
            class = ErrorClass::RateLimited { retry_after };
        }
    }
    let mut snippet: String = String::from_utf8_lossy(&res.body)
        .chars()
        .take(200)
        .collect();
    // A provider that echoes the request must not put our credentials into an error message.
    for secret in conn.credentials.secrets() {
        if !secret.is_empty() {
            snippet = snippet.replace(secret, "[redacted]");
        }
    }
    ConnectorError::new(
        class,
        format!(
            "{} answered HTTP {}: {}",
            conn.spec.id,
            res.status,
            snippet.trim()
        ),
    )
    .with_status(res.status)
}

/// Whether any string in `body` is one of `codes`.
fn names_code(body: &serde_json::Value, codes: &[String]) -> bool {
    match body {
        serde_json::Value::String(s) => codes.iter().any(|c| c == s),
        serde_json::Value::Array(items) => items.iter().any(|v| names_code(v, codes)),
        serde_json::Value::Object(map) => map.values().any(|v| names_code(v, codes)),
        _ => false,
    }
}

/// A connection plus the HTTP client and rate budget that its requests go through: what a spec
/// source and a spec destination share.
#[derive(Clone)]
pub struct Api {
    pub connection: Connection,
    http: crate::http::OutboundClient,
    budget: Option<std::sync::Arc<dyn crate::http::RateBudget>>,
}

impl Api {
    pub fn new(connection: Connection, http: crate::http::OutboundClient) -> Self {
        Api {
            connection,
            http,
            budget: None,
        }
    }

    pub fn set_budget(&mut self, budget: std::sync::Arc<dyn crate::http::RateBudget>) {
        self.budget = Some(budget);
    }

    /// Authenticates, asks for JSON, takes from the rate budget, sends, and turns a non-2xx
    /// answer into a classified error.
    pub async fn call(
        &self,
        req: OutboundRequest,
    ) -> Result<crate::http::OutboundResponse, ConnectorError> {
        self.call_logged(req).await.map(|(res, _)| res)
    }

    /// [`Api::call`], with the exchange as the run log keeps it: on the answer, or on the error.
    /// The time taken includes any wait for the rate budget (the run log reports those waits
    /// separately).
    pub async fn call_logged(
        &self,
        req: OutboundRequest,
    ) -> Result<(crate::http::OutboundResponse, super::Exchange), ConnectorError> {
        let req = self
            .connection
            .authenticate(req.header("Accept", "application/json"))?;
        let method = req.method.to_string();
        let url = req.url.clone();
        let started = std::time::Instant::now();
        let sent = match &self.budget {
            Some(budget) => self.http.send_with_budget(req, budget.as_ref()).await,
            None => self.http.send(req).await,
        };
        let secrets = self.connection.credentials.secrets();
        let exchange = super::Exchange::new(&method, &url, &secrets, started.elapsed());
        let provider = self.connection.spec.id.clone();
        let res = sent.map_err(|e| {
            metrics::counter!("patchbay_provider_requests_total", "provider" => provider.clone(), "status" => "none")
                .increment(1);
            e.with_exchange(exchange.clone())
        })?;
        metrics::counter!("patchbay_provider_requests_total", "provider" => provider, "status" => res.status.to_string())
            .increment(1);
        let exchange = exchange.answered(res.status, res.body.len());
        if !(200..300).contains(&res.status) {
            return Err(response_error(&self.connection, &res).with_exchange(exchange));
        }
        Ok((res, exchange))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::OutboundResponse;

    #[test]
    fn errors_never_echo_the_credentials() {
        let spec = crate::spec::builtin_specs()
            .unwrap()
            .into_iter()
            .find(|s| s.id == "stripe")
            .unwrap();
        let conn = Connection {
            spec: std::sync::Arc::new(spec),
            credentials: Credentials::ApiKey {
                key: secrecy::SecretString::from("sk_live_abc123"),
            },
            vars: BTreeMap::new(),
        };
        let res = OutboundResponse {
            status: 400,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from_static(br#"{"error":"bad request with key sk_live_abc123"}"#),
            url: Url::parse("https://api.stripe.com/v1/customers").unwrap(),
        };
        let err = response_error(&conn, &res);
        assert!(!err.message.contains("sk_live_abc123"), "{err}");
        assert!(err.message.contains("[redacted]"), "{err}");
    }
}
