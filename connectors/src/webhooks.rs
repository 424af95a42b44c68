//! Webhook signature verification.
//!
//! Providers push events to Patchbay over plain HTTPS, so anyone who learns an endpoint's URL can
//! post to it. Each provider signs its deliveries with a secret shared with us; this module checks
//! those signatures before anything reads the payload, and produces them for the bundled sandbox
//! app and for tests. Three schemes cover the providers we ship (Stripe, GitHub and Shopify style);
//! a provider spec names one of them in its TOML.
//!
//! Everything here works on the raw request bytes, before any parsing, compares MACs in constant
//! time, and treats header values as hostile: length-bounded, ASCII-only, present exactly once.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

/// Longest signature header value we look at; real ones are well under 1 KiB.
const MAX_HEADER_LEN: usize = 8 * 1024;
/// Length of an HMAC-SHA256 output.
const MAC_LEN: usize = 32;

/// How a provider signs the webhooks it sends (deserialized from a provider spec's TOML, tagged by
/// `scheme`). Header names are matched case-insensitively.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "scheme", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignatureScheme {
    /// Stripe-style: header `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`, HMAC-SHA256 over
    /// `"<t>.<raw body>"`, hex-encoded. Any `v1` may match (secret rotation), and the timestamp
    /// must be within `tolerance_secs` of now, in either direction.
    Stripe {
        #[serde(default = "default_stripe_header")]
        header: String,
        #[serde(default = "default_tolerance_secs")]
        tolerance_secs: u64,
    },
    /// GitHub-style: header `sha256=<hex>` (`X-Hub-Signature-256`), HMAC-SHA256 over the raw body.
    Github {
        #[serde(default = "default_github_header")]
        header: String,
    },
    /// Shopify-style: header is `base64(HMAC-SHA256(raw body))` (`X-Shopify-Hmac-Sha256`).
    Shopify {
        #[serde(default = "default_shopify_header")]
        header: String,
    },
}

fn default_stripe_header() -> String {
    "stripe-signature".to_owned()
}

fn default_tolerance_secs() -> u64 {
    300
}

fn default_github_header() -> String {
    "x-hub-signature-256".to_owned()
}

fn default_shopify_header() -> String {
    "x-shopify-hmac-sha256".to_owned()
}

impl SignatureScheme {
    fn header(&self) -> &str {
        match self {
            Self::Stripe { header, .. } | Self::Github { header } | Self::Shopify { header } => {
                header
            }
        }
    }
}

/// Why a webhook delivery was refused. None of the variants carries the secret or a MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature header (named here) is absent.
    #[error("missing signature header `{0}`")]
    MissingHeader(String),
    /// The signature header is present but cannot be read: repeated, too long, non-ASCII, or not
    /// in the scheme's format.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// The header is well formed but no signature in it matches the body and secret.
    #[error("signature does not match")]
    BadSignature,
    /// The signature is valid but its timestamp is outside the tolerance: `age_secs` is
    /// `now - t`, negative when the timestamp is in the future.
    #[error("signature timestamp outside tolerance (age {age_secs}s)")]
    Expired { age_secs: i64 },
}

/// Checks that `body` was signed with `secret` under `scheme`, reading the signature from
/// `headers`. `body` must be the raw request bytes; `now_unix` is the current Unix time, used
/// only by timestamped schemes.
///
/// For Stripe, the signature is checked before the timestamp, so `Expired` is only ever reported
/// for an authentic (but stale or early) delivery.
pub fn verify(
    scheme: &SignatureScheme,
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    // With no secret configured, anyone could compute the "signature": refuse everything.
    if secret.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    let value = single_header(scheme, headers)?;
    match scheme {
        SignatureScheme::Stripe { tolerance_secs, .. } => {
            let (t, signatures) = parse_stripe_header(value)?;
            let expected = stripe_mac(secret, t, body);
            // Look at every candidate rather than stopping at the first match.
            let matched = signatures.iter().fold(Choice::from(0), |acc, sig| {
                acc | expected.as_slice().ct_eq(sig)
            });
            if !bool::from(matched) {
                return Err(WebhookError::BadSignature);
            }
            let age_secs = now_unix.saturating_sub(t);
            if age_secs.unsigned_abs() > *tolerance_secs {
                return Err(WebhookError::Expired { age_secs });
            }
            Ok(())
        }
        SignatureScheme::Github { .. } => {
            check_body_mac(secret, body, &parse_github_header(value)?)
        }
        SignatureScheme::Shopify { .. } => {
            check_body_mac(secret, body, &parse_shopify_header(value)?)
        }
    }
}

/// Produces the header a sender sets for `body` under `scheme` (used by the bundled sandbox app
/// and by tests). `now_unix` becomes the Stripe timestamp.
///
/// # Panics
///
/// If the scheme's `header` is not a valid HTTP header name (`verify` reports that case as
/// `Malformed`); whoever loads a provider spec should reject such a name up front.
pub fn sign(
    scheme: &SignatureScheme,
    secret: &[u8],
    body: &[u8],
    now_unix: i64,
) -> (HeaderName, HeaderValue) {
    let name = HeaderName::try_from(scheme.header())
        .expect("a signature scheme's header must be a valid HTTP header name");
    let value = match scheme {
        SignatureScheme::Stripe { .. } => {
            format!(
                "t={now_unix},v1={}",
                hex::encode(stripe_mac(secret, now_unix, body))
            )
        }
        SignatureScheme::Github { .. } => format!("sha256={}", hex::encode(body_mac(secret, body))),
        SignatureScheme::Shopify { .. } => BASE64.encode(body_mac(secret, body)),
    };
    let value = HeaderValue::try_from(value).expect("digits, hex and base64 are visible ASCII");
    (name, value)
}

/// Parses a Stripe `Stripe-Signature` value into its timestamp and decoded `v1` signatures.
///
/// Items are comma-separated `key=value` pairs; keys other than `t` and `v1` (such as `v0`) are
/// ignored. Exactly one `t`, an `i64`, and at least one `v1`, each 32 bytes of hex, are required.
pub fn parse_stripe_header(value: &str) -> Result<(i64, Vec<Vec<u8>>), WebhookError> {
    let value = bounded(value)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        let (key, val) = item
            .trim()
            .split_once('=')
            .ok_or(WebhookError::Malformed("stripe header item without `=`"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::Malformed(
                        "stripe header has several timestamps",
                    ));
                }
                let t = val
                    .parse::<i64>()
                    .map_err(|_| WebhookError::Malformed("stripe timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(decode_hex_mac(val)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(WebhookError::Malformed("stripe header has no timestamp"))?;
    if signatures.is_empty() {
        return Err(WebhookError::Malformed("stripe header has no v1 signature"));
    }
    Ok((t, signatures))
}

/// Parses a GitHub `X-Hub-Signature-256` value (`sha256=<64 hex digits>`) into the MAC bytes.
pub fn parse_github_header(value: &str) -> Result<Vec<u8>, WebhookError> {
    let hex_part =
        bounded(value)?
            .trim()
            .strip_prefix("sha256=")
            .ok_or(WebhookError::Malformed(
                "github signature lacks `sha256=` prefix",
            ))?;
    decode_hex_mac(hex_part)
}

/// Parses a Shopify `X-Shopify-Hmac-Sha256` value (standard, padded base64) into the MAC bytes.
pub fn parse_shopify_header(value: &str) -> Result<Vec<u8>, WebhookError> {
    let mac = BASE64
        .decode(bounded(value)?.trim())
        .map_err(|_| WebhookError::Malformed("shopify signature is not base64"))?;
    if mac.len() != MAC_LEN {
        return Err(WebhookError::Malformed(
            "shopify signature has the wrong length",
        ));
    }
    Ok(mac)
}

/// Finds the scheme's header, insisting it appears exactly once with a short ASCII value.
fn single_header<'h>(
    scheme: &SignatureScheme,
    headers: &'h HeaderMap,
) -> Result<&'h str, WebhookError> {
    let name = HeaderName::try_from(scheme.header())
        .map_err(|_| WebhookError::Malformed("scheme names an invalid header"))?;
    let mut values = headers.get_all(&name).iter();
    let value = values
        .next()
        .ok_or_else(|| WebhookError::MissingHeader(name.as_str().to_owned()))?;
    if values.next().is_some() {
        return Err(WebhookError::Malformed(
            "signature header present more than once",
        ));
    }
    if value.len() > MAX_HEADER_LEN {
        return Err(WebhookError::Malformed("signature header too long"));
    }
    value
        .to_str()
        .map_err(|_| WebhookError::Malformed("signature header is not visible ASCII"))
}

fn bounded(value: &str) -> Result<&str, WebhookError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(WebhookError::Malformed("signature header too long"));
    }
    Ok(value)
}

fn decode_hex_mac(value: &str) -> Result<Vec<u8>, WebhookError> {
    let mac = hex::decode(value).map_err(|_| WebhookError::Malformed("signature is not hex"))?;
    if mac.len() != MAC_LEN {
        return Err(WebhookError::Malformed("signature has the wrong length"));
    }
    Ok(mac)
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn body_mac(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = new_mac(secret);
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Stripe signs `"<t>.<body>"`, with `t` in canonical decimal.
fn stripe_mac(secret: &[u8], t: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = new_mac(secret);
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn check_body_mac(secret: &[u8], body: &[u8], signature: &[u8]) -> Result<(), WebhookError> {
    let mut mac = new_mac(secret);
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(signature)
        .map_err(|_| WebhookError::BadSignature)
}
