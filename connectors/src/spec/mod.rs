//! Declarative provider specs: what Patchbay needs to know about a third-party API (how to
//! authenticate, where its records live, how it pages and rate-limits, how it signs webhooks), in
//! a TOML file instead of code. `load` parses and validates one, with errors that name the file,
//! the field and the problem.

mod load;
pub mod template;

pub use load::{builtin_specs, load_file, load_str, SpecError};

use crate::webhooks::SignatureScheme;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One provider: an API Patchbay can read from or write to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Stable identifier, lowercase letters, digits and dashes (`hubspot`, `sandbox-shop`).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Link to the provider's API documentation.
    #[serde(default)]
    pub docs_url: Option<String>,
    /// The API root. May name variables: connection fields (`{shop}`), kept token fields
    /// (`{instance_url}`) and platform settings (`{sandbox_url}`).
    pub base_url: String,
    pub auth: AuthSpec,
    /// Inputs asked of the user before connecting, such as a Shopify shop name.
    #[serde(default)]
    pub connection_fields: Vec<ConnectionField>,
    /// A cheap authenticated call that proves credentials work and names the account.
    #[serde(default)]
    pub check: Option<CheckSpec>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    #[serde(default)]
    pub streams: Vec<StreamSpec>,
    #[serde(default)]
    pub webhooks: Option<WebhookSpec>,
}

/// How requests are authenticated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSpec {
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Spec),
    /// A key the user pastes in, sent in a header or the query string.
    ApiKey {
        #[serde(rename = "in")]
        location: KeyLocation,
        /// Header or query parameter name.
        name: String,
        /// Put before the key, e.g. `"Bearer "`.
        #[serde(default)]
        prefix: String,
    },
    /// HTTP Basic with a username and password the user enters.
    Basic,
    /// No authentication (public APIs).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    Header,
    Query,
}

/// OAuth 2.0 authorization-code flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Spec {
    pub authorize_url: String,
    pub token_url: String,
    #[serde(default)]
    pub revoke_url: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How scopes are joined in the authorize URL (Shopify uses commas).
    #[serde(default = "space")]
    pub scope_separator: String,
    /// Plain words for each scope, shown on the listing's "Permissions requested".
    #[serde(default)]
    pub scope_descriptions: BTreeMap<String, String>,
    /// PKCE S256; on unless the provider rejects it.
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorize-URL parameters, such as `access_type = "offline"`.
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// Token-response fields to keep with the connection (Salesforce's `instance_url`).
    #[serde(default)]
    pub token_fields: Vec<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The header that carries the access token, and what precedes it.
    #[serde(default = "authorization")]
    pub token_header: String,
    #[serde(default = "bearer")]
    pub token_prefix: String,
}

fn space() -> String {
    " ".into()
}
fn yes() -> bool {
    true
}
fn authorization() -> String {
    "Authorization".into()
}
fn bearer() -> String {
    "Bearer ".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749's preference).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// An input collected from the user before connecting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionField {
    pub name: String,
    pub label: String,
    #[serde(default)]
    pub help: String,
    /// A regular-expression-free shape check: allowed characters and length.
    #[serde(default)]
    pub allowed_chars: Option<String>,
    #[serde(default = "max_len")]
    pub max_len: usize,
    /// Whether it is a secret (an API key, a password): never shown back, stored encrypted.
    #[serde(default)]
    pub secret: bool,
}

fn max_len() -> usize {
    255
}

/// A cheap authenticated call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub path: String,
    /// JSON pointer to a human label of the account (`/account_name`).
    #[serde(default)]
    pub label_pointer: Option<String>,
}

/// The documented quota, and the headers that report what is left of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests allowed per `per_secs` seconds.
    pub requests: u32,
    pub per_secs: u32,
    /// A header with the number of requests left (`X-RateLimit-Remaining`).
    #[serde(default)]
    pub remaining_header: Option<String>,
    /// A header of the form `used/limit` (Shopify's `X-Shopify-Shop-Api-Call-Limit`).
    #[serde(default)]
    pub used_of_limit_header: Option<String>,
    /// A header with the Unix time at which the quota resets (GitHub's `X-RateLimit-Reset`).
    /// With `remaining_header` at 0, a 403 or 429 is a rate limit that lasts until then.
    #[serde(default)]
    pub reset_header: Option<String>,
    /// Error codes that, found as a string anywhere in a 403 or 429 body, mean the quota is spent
    /// (Salesforce's `REQUEST_LIMIT_EXCEEDED`, a 403 without Retry-After).
    #[serde(default)]
    pub error_codes: Vec<String>,
    /// A quota shared by every connection made through one OAuth app (requests per
    /// `app_per_secs` seconds), where the provider documents one; `requests` / `per_secs` are
    /// per connection.
    #[serde(default)]
    pub app_requests: Option<u32>,
    #[serde(default)]
    pub app_per_secs: Option<u32>,
}

/// One stream of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// Path below `base_url`; may name variables (`/repos/{owner}/{repo}/issues`).
    pub path: String,
    /// Fixed query parameters; values may name variables and `{cursor}`.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON pointer to the array of records; `""` when the body is the array.
    #[serde(default)]
    pub records: String,
    /// The field (JSON pointer or top-level name) holding the primary key.
    pub primary_key: String,
    /// Source fields, for field mapping and the listing's "What syncs".
    #[serde(default)]
    pub fields: Vec<String>,
    /// Inputs the install wizard collects for this stream (a GitHub repository's owner and name).
    #[serde(default)]
    pub inputs: Vec<ConnectionField>,
    #[serde(default)]
    pub incremental: Option<IncrementalSpec>,
    pub pagination: Pagination,
    #[serde(default)]
    pub write: Option<WriteSpec>,
}

/// How a stream reads only what changed since the last sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSpec {
    /// The record field that grows with every change (`updated_at`).
    pub cursor_field: String,
    /// The query parameter that carries the last value seen. Leave it out when `{cursor}` is
    /// written into `query` instead (Salesforce's SOQL).
    #[serde(default)]
    pub param: Option<String>,
    /// The value used on a first sync, when `{cursor}` appears in `query`.
    #[serde(default)]
    pub initial: Option<String>,
    /// How the cursor is written into the request; as read from the records by default.
    #[serde(default)]
    pub send_as: CursorFormat,
}

/// How a timestamp cursor is sent back to the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorFormat {
    /// Exactly as the records carry it.
    #[default]
    AsRead,
    /// `YYYY-MM-DDThh:mm:ssZ`, in UTC, cut to whole seconds (SOQL's dateTime literal). Cutting
    /// moves the cursor back, never forward, so use it with an inclusive comparison.
    UtcSeconds,
}

/// How a stream pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// A single request returns everything.
    None,
    /// A token from the response, sent back as `param`. The token is found at `next_pointer`, or
    /// is the last record's `last_record_field` while `has_more_pointer` is true (Stripe).
    Cursor {
        param: String,
        #[serde(default)]
        next_pointer: Option<String>,
        #[serde(default)]
        last_record_field: Option<String>,
        #[serde(default)]
        has_more_pointer: Option<String>,
        #[serde(default)]
        limit_param: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
    },
    /// `param` counts records skipped.
    Offset {
        param: String,
        limit_param: String,
        page_size: u32,
    },
    /// `param` counts pages from `start`.
    Page {
        param: String,
        #[serde(default)]
        limit_param: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
        #[serde(default = "one")]
        start: u32,
    },
    /// RFC 8288 `Link: <…>; rel="next"` (GitHub, Shopify).
    LinkHeader {
        #[serde(default)]
        limit_param: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
    },
    /// A next URL (absolute, or a path on the API's origin) at `next_pointer` (Salesforce's
    /// `nextRecordsUrl`); `done_pointer` true means stop.
    NextUrl {
        next_pointer: String,
        #[serde(default)]
        done_pointer: Option<String>,
    },
}

fn one() -> u32 {
    1
}

/// How to create and update records of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSpec {
    /// `POST` path for new records.
    pub create_path: String,
    /// Path for updates, naming `{id}`; method `update_method`.
    #[serde(default)]
    pub update_path: Option<String>,
    #[serde(default = "patch")]
    pub update_method: String,
    /// Wrap the body in this key (`properties` for HubSpot).
    #[serde(default)]
    pub body_key: Option<String>,
    /// The header carrying an idempotency key, if the API honours one.
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// `DELETE` path naming `{id}`, when records deleted at the source should be deleted here
    /// too (a full sync's sweep finds them).
    #[serde(default)]
    pub delete_path: Option<String>,
}

fn patch() -> String {
    "PATCH".into()
}

/// How the provider signs webhooks, and which header identifies a delivery (for dedupe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub signature: SignatureScheme,
    /// The header with a unique delivery id; when absent, `delivery_id_pointer` into the body.
    #[serde(default)]
    pub delivery_id_header: Option<String>,
    #[serde(default)]
    pub delivery_id_pointer: Option<String>,
    /// The header or body pointer naming the event type.
    #[serde(default)]
    pub event_type_header: Option<String>,
    #[serde(default)]
    pub event_type_pointer: Option<String>,
    /// How to register a webhook subscription over the API, when the provider has such an API
    /// (otherwise the customer registers Patchbay's URL and pastes the signing secret).
    #[serde(default)]
    pub subscribe: Option<SubscribeSpec>,
}

/// Registering (and removing) a webhook subscription: `POST path` with `{ url_field: <our URL> }`,
/// answered with the subscription's id and signing secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeSpec {
    pub path: String,
    #[serde(default = "url_field")]
    pub url_field: String,
    /// JSON pointers into the answer.
    pub id_pointer: String,
    pub secret_pointer: String,
    /// `DELETE` path naming `{id}`.
    #[serde(default)]
    pub delete_path: Option<String>,
}

fn url_field() -> String {
    "url".into()
}

impl ConnectionField {
    /// Checks a value a user typed: its length, and its characters — the `allowed_chars` when
    /// the spec gives them, otherwise anything but URL delimiters, whitespace and control
    /// characters, because values are written into URLs (`https://{shop}.myshopify.com`) and a
    /// `/`, `?`, `#`, `@` or `:` would move the request, and the credentials, to another host.
    pub fn check(&self, value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err(format!("{} is required", self.label));
        }
        if value.chars().count() > self.max_len {
            return Err(format!(
                "{} is at most {} characters",
                self.label, self.max_len
            ));
        }
        let bad = match &self.allowed_chars {
            Some(allowed) => value.chars().find(|c| !allowed.contains(*c)),
            None if self.secret => value.chars().find(|c| c.is_control()),
            None => value
                .chars()
                .find(|c| c.is_whitespace() || c.is_control() || "/?#@:\\%".contains(*c)),
        };
        match bad {
            Some(c) => Err(format!(
                "{} cannot contain `{}`",
                self.label,
                c.escape_default()
            )),
            None => Ok(()),
        }
    }
}

impl ProviderSpec {
    /// Checks every user-entered value in `vars` (connection fields and stream inputs) before
    /// any of them is written into a URL.
    pub fn check_inputs(&self, vars: &BTreeMap<String, String>) -> Result<(), String> {
        let fields = self
            .connection_fields
            .iter()
            .chain(self.streams.iter().flat_map(|s| s.inputs.iter()));
        for field in fields {
            if let Some(value) = vars.get(&field.name) {
                field.check(value)?;
            }
        }
        Ok(())
    }

    pub fn stream(&self, name: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn oauth2(&self) -> Option<&OAuth2Spec> {
        match &self.auth {
            AuthSpec::OAuth2(spec) => Some(spec),
            _ => None,
        }
    }
}
