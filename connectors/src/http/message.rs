//! The request a connector wants sent and the response it gets back: plain data, so connectors
//! can build and inspect them without touching reqwest.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::ConnectorError;

/// A request to a third party.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl OutboundRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url) -> Self {
        OutboundRequest {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// `GET url`.
    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// `POST url` with a JSON body and `Content-Type: application/json`.
    pub fn post_json(url: Url, body: &serde_json::Value) -> Self {
        let mut req = Self::new(Method::POST, url);
        req.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        req.body = Some(Bytes::from(body.to_string()));
        req
    }

    /// `POST url` with a form-encoded body (`application/x-www-form-urlencoded`).
    pub fn post_form(url: Url, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut req = Self::new(Method::POST, url);
        req.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        req.body = Some(Bytes::from(body));
        req
    }

    /// Sets a header, replacing any earlier value. The value is trimmed of surrounding
    /// whitespace (a stray newline from a file) and marked sensitive, since connectors put API
    /// keys here and a request's `Debug` must not print them. A name or value that cannot be a
    /// header is left out with a warning (the value is not logged): the provider then refuses
    /// the request with a 4xx, which is classified as usual.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let parsed = HeaderName::try_from(name)
            .ok()
            .zip(HeaderValue::from_str(value.trim()).ok());
        match parsed {
            Some((name, mut value)) => {
                value.set_sensitive(true);
                self.headers.insert(name, value);
            }
            None => {
                tracing::warn!(
                    header = name,
                    "invalid header name or value; sending without it"
                )
            }
        }
        self
    }

    /// Sets `Authorization: Bearer <token>`, through [`header`](Self::header).
    pub fn bearer(self, token: &str) -> Self {
        self.header(AUTHORIZATION.as_str(), &format!("Bearer {}", token.trim()))
    }
}

/// A response from a third party, body read in full (up to `HttpConfig::max_body_bytes`).
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The final URL, after redirects.
    pub url: Url,
}

impl OutboundResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decodes the body as JSON. Malformed JSON or the wrong shape is `Permanent`; the message
    /// names the endpoint and where decoding failed but quotes no values from the body (a token
    /// response must not end up in a log).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::permanent(format!(
                "malformed JSON from {}: {}",
                super::target(&self.url),
                redact_quoted(&e.to_string())
            ))
            .with_status(self.status)
        })
    }
}

/// Replaces every double-quoted span with `"…"`: serde_json quotes offending string values in
/// its messages ("invalid type: string \"…\", expected u64"), field names use backticks.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, part) in rest.iter().enumerate() {
        // Odd parts are inside quotes; a trailing unmatched quote keeps nothing after it.
        if i % 2 == 0 {
            out.push_str("\"…\"");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://api.example.com/v1/things?secret=s3").unwrap()
    }

    #[test]
    fn builders_set_body_and_content_type() {
        let req = OutboundRequest::post_json(url(), &serde_json::json!({"a": 1}));
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.headers[CONTENT_TYPE], "application/json");
        assert_eq!(req.body.as_deref(), Some(&b"{\"a\":1}"[..]));

        let req = OutboundRequest::post_form(url(), &[("grant_type", "code"), ("x", "a b&c")]);
        assert_eq!(
            req.headers[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(req.body.as_deref(), Some(&b"grant_type=code&x=a+b%26c"[..]));

        let req = OutboundRequest::get(url())
            .bearer(" tok\n")
            .header("X-Api-Version", "2");
        assert_eq!(req.headers[AUTHORIZATION], "Bearer tok");
        assert!(req.headers[AUTHORIZATION].is_sensitive());
        assert_eq!(req.headers["x-api-version"], "2");
        assert!(OutboundRequest::get(url())
            .bearer("a\nb")
            .headers
            .get(AUTHORIZATION)
            .is_none());
        assert!(OutboundRequest::get(url())
            .header("bad name", "v")
            .headers
            .is_empty());
        let debug = format!(
            "{:?}",
            OutboundRequest::get(url()).header("x-api-key", "k3y-value")
        );
        assert!(!debug.contains("k3y-value"), "{debug}");
    }

    #[test]
    fn json_errors_are_permanent_and_quote_nothing() {
        let resp = OutboundResponse {
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::from_static(br#"{"access_token": "sekrit"}"#),
            url: url(),
        };
        #[derive(serde::Deserialize, Debug)]
        struct Shape {
            #[expect(dead_code, reason = "only decoding is under test")]
            access_token: u64,
        }
        let err = resp.json::<Shape>().unwrap_err();
        assert_eq!(err.class, crate::ErrorClass::Permanent);
        assert!(
            err.message.contains("api.example.com/v1/things"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("sekrit") && !err.message.contains("s3"),
            "{}",
            err.message
        );

        let garbage = OutboundResponse {
            body: Bytes::from_static(b"<html>"),
            ..resp
        };
        let err = garbage.json::<serde_json::Value>().unwrap_err();
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
    }

    #[test]
    fn redact_quoted_hides_values() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "x", expected u64"#),
            r#"invalid type: string "…", expected u64"#
        );
        assert_eq!(redact_quoted("missing field `a`"), "missing field `a`");
        assert_eq!(redact_quoted(r#"a "b"#), r#"a "…""#);
    }
}
