//! A provider request and its answer as the run log keeps them: the method, the URL with
//! credentials and sensitive query values redacted, the status, the time taken and the size of
//! the body. No headers and no bodies: those are where credentials and customer data live.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// What replaces a value that must not be kept.
pub const REDACTED: &str = "[redacted]";

/// Query parameters whose values are never kept, matched as substrings of the lower-cased name
/// (`api_key`, `access_token`, `client_secret`, `hub.signature`, …).
const SENSITIVE: [&str; 8] = [
    "token",
    "key",
    "secret",
    "signature",
    "password",
    "code",
    "auth",
    "session",
];

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    /// Redacted: see [`redact_url`].
    pub url: String,
    /// None when no answer came (a timeout, a refused connection).
    pub status: Option<u16>,
    pub ms: u64,
    /// The body's size in bytes, when there was one.
    pub bytes: Option<u64>,
}

impl Exchange {
    /// The exchange of a request to `url`, with every one of `secrets` taken out of its URL.
    pub fn new(method: &str, url: &Url, secrets: &[&str], took: Duration) -> Self {
        Exchange {
            method: method.to_owned(),
            url: redact_url(url, secrets),
            status: None,
            ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            bytes: None,
        }
    }

    /// With the answer's status and body size.
    pub fn answered(mut self, status: u16, bytes: usize) -> Self {
        self.status = Some(status);
        self.bytes = Some(bytes as u64);
        self
    }

    /// One line for people: `GET https://… → 200 in 41 ms (12,345 bytes)`.
    pub fn summary(&self) -> String {
        let answer = match (self.status, self.bytes) {
            (Some(status), Some(bytes)) => format!("{status} in {} ms ({bytes} bytes)", self.ms),
            (Some(status), None) => format!("{status} in {} ms", self.ms),
            (None, _) => format!("no answer after {} ms", self.ms),
        };
        format!("{} {} → {answer}", self.method, self.url)
    }
}

/// Whether a query parameter's value must not be kept.
pub fn sensitive_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| name.contains(s))
}

/// `url` without user info, with the values of sensitive query parameters replaced, and with any
/// of `secrets` (the connection's credentials, however they were sent) replaced wherever they
/// still appear, raw or percent-encoded.
pub fn redact_url(url: &Url, secrets: &[&str]) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let value = if sensitive_param(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let mut text = url.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        text = text.replace(secret, REDACTED).replace(&encoded, REDACTED);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_and_secrets_are_taken_out() {
        let url = Url::parse(
            "https://user:pw@api.example.com/v1/items/sk_live_9?limit=100&api_key=sk_live_9\
             &cursor=abc&hub.signature=xyz&state=ok",
        )
        .unwrap();
        let text = redact_url(&url, &["sk_live_9"]);
        assert!(!text.contains("sk_live_9"), "{text}");
        assert!(!text.contains("xyz"), "{text}");
        assert!(!text.contains("pw@"), "{text}");
        assert!(text.contains("limit=100"), "{text}");
        assert!(text.contains("cursor=abc"), "{text}");
        assert!(text.contains("state=ok"), "{text}");
        assert!(text.contains("api_key=%5Bredacted%5D"), "{text}");
    }

    #[test]
    fn an_encoded_secret_is_found_too() {
        let url = Url::parse("https://api.example.com/v1/items?q=a%2Fb%2Bc").unwrap();
        let text = redact_url(&url, &["a/b+c"]);
        assert!(!text.contains("a%2Fb%2Bc"), "{text}");
    }

    #[test]
    fn the_summary_says_what_came_back() {
        let url = Url::parse("https://api.example.com/v1/items").unwrap();
        let ex = Exchange::new("GET", &url, &[], Duration::from_millis(41)).answered(200, 1234);
        assert_eq!(
            ex.summary(),
            "GET https://api.example.com/v1/items → 200 in 41 ms (1234 bytes)"
        );
        let none = Exchange::new("GET", &url, &[], Duration::from_millis(5));
        assert!(none.summary().ends_with("no answer after 5 ms"));
    }
}
