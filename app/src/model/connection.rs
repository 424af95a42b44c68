//! Connections as the UI and the server functions exchange them: a customer's linked accounts at
//! third-party providers, what a connect page offers, and the OAuth apps Patchbay is registered
//! as. Secrets never travel in these types.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

string_enum!(
    /// Whether a connection can be used.
    ConnectionStatus, "status", {
        Active = "active" / "Active",
        NeedsReauth = "needs_reauth" / "Needs reconnecting",
        Revoked = "revoked" / "Disconnected",
    }
);

string_enum!(
    /// How a connection proves who it is to the provider.
    AuthKind, "auth_kind", {
        OAuth2 = "oauth2" / "Sign in with the provider (OAuth)",
        ApiKey = "api_key" / "API key",
        Basic = "basic" / "Username and password",
    }
);

/// One of a tenant's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub id: Uuid,
    pub provider: String,
    pub provider_name: String,
    pub auth_kind: AuthKind,
    pub status: ConnectionStatus,
    /// Why it needs attention, in words for the customer.
    pub status_reason: Option<String>,
    /// The account at the provider ("Sandbox Demo Co").
    pub account_label: Option<String>,
    /// Non-secret inputs given when connecting (a shop name), as (label, value).
    pub details: Vec<(String, String)>,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub refreshed_at: Option<String>,
    /// When the current access token expires.
    pub expires_at: Option<String>,
}

/// An input the connect form asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectField {
    pub name: String,
    pub label: String,
    pub help: String,
    pub secret: bool,
    pub max_len: usize,
}

/// A provider as a connect page offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectProvider {
    pub id: String,
    pub name: String,
    pub description: String,
    pub auth_kind: AuthKind,
    /// What the user fills in before connecting (a Shopify shop; an API key).
    pub fields: Vec<ConnectField>,
    /// Scopes requested, in words.
    pub permissions: Vec<String>,
    /// False when the provider uses OAuth and no app is registered for it yet: connecting is
    /// impossible until an admin (or the listing's vendor) adds one.
    pub ready: bool,
    /// The tenant's existing connections to this provider.
    pub connections: Vec<ConnectionView>,
}

/// `/marketplace/{slug}/connect`: the accounts a listing needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingConnectPage {
    pub slug: String,
    pub name: String,
    pub providers: Vec<ConnectProvider>,
}

/// `/connections`: the tenant's connections and what else it could connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionsPage {
    pub org_name: String,
    pub connections: Vec<ConnectionView>,
    /// Every provider, for "Add a connection".
    pub providers: Vec<(String, String)>,
    /// Whether the user may connect and disconnect (owners and admins).
    pub can_manage: bool,
}

/// An OAuth app Patchbay is registered as at a provider. The secret is never sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAppView {
    pub provider: String,
    pub provider_name: String,
    pub client_id: String,
    pub updated_at: String,
}

/// `/admin/apps` and `/vendor/apps`: the apps of the platform or of one vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAppsPage {
    /// The vendor's name, or None for the platform's apps.
    pub vendor: Option<String>,
    pub apps: Vec<ProviderAppView>,
    /// OAuth providers, as (id, name), for the form.
    pub oauth_providers: Vec<(String, String)>,
    /// The callback URL to register at each provider.
    pub callback_url: String,
}

/// `/connect/continue`: where the browser goes next to sign in at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectContinue {
    pub provider_name: String,
    pub url: String,
}

/// Why a connect attempt ended without a connection, as a code the page words. Only codes travel
/// in URLs, never text, so a crafted link cannot put words in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The user said no on the provider's page.
    Denied,
    /// The state was unknown, used, from another session, or expired.
    BadState,
    /// The provider sent an error we do not single out.
    ProviderError,
    /// The code exchange failed.
    ExchangeFailed,
    /// The provider could not be reached.
    Unreachable,
    /// The account works but the check call failed.
    CheckFailed,
    /// The user lost the right to connect accounts while at the provider.
    NotAllowed,
    /// Something failed on our side.
    Internal,
}

impl ConnectFailure {
    pub const ALL: [ConnectFailure; 8] = [
        ConnectFailure::Denied,
        ConnectFailure::BadState,
        ConnectFailure::ProviderError,
        ConnectFailure::ExchangeFailed,
        ConnectFailure::Unreachable,
        ConnectFailure::CheckFailed,
        ConnectFailure::NotAllowed,
        ConnectFailure::Internal,
    ];

    pub fn code(self) -> &'static str {
        match self {
            ConnectFailure::Denied => "denied",
            ConnectFailure::BadState => "bad_state",
            ConnectFailure::ProviderError => "provider_error",
            ConnectFailure::ExchangeFailed => "exchange_failed",
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::CheckFailed => "check_failed",
            ConnectFailure::NotAllowed => "not_allowed",
            ConnectFailure::Internal => "internal",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    pub fn title(self) -> &'static str {
        match self {
            ConnectFailure::Denied => "You did not allow access",
            ConnectFailure::BadState => "This sign-in link is no longer valid",
            ConnectFailure::ProviderError => "The provider could not connect your account",
            ConnectFailure::ExchangeFailed => "The provider did not accept the sign-in",
            ConnectFailure::Unreachable => "The provider could not be reached",
            ConnectFailure::CheckFailed => "The account did not answer",
            ConnectFailure::NotAllowed => "You can no longer connect accounts here",
            ConnectFailure::Internal => "Something went wrong on our side",
        }
    }

    pub fn explanation(self) -> &'static str {
        match self {
            ConnectFailure::Denied => {
                "The provider reports that access was declined, so nothing was connected. Connect again when you are ready and choose Allow."
            }
            ConnectFailure::BadState => {
                "Sign-in links work once, for ten minutes, in the browser session that started them. Nothing was connected; start again from the connect page."
            }
            ConnectFailure::ProviderError => {
                "The provider sent back an error instead of access, so nothing was connected. Try again; if it keeps happening, the app registered at the provider may need attention from an administrator."
            }
            ConnectFailure::ExchangeFailed => {
                "The provider refused to exchange the sign-in for access, so nothing was connected. Start again; codes are single use and expire within a minute."
            }
            ConnectFailure::Unreachable => {
                "Patchbay could not reach the provider, so nothing was connected. Try again in a moment."
            }
            ConnectFailure::CheckFailed => {
                "The provider gave access, but a test call with it failed, so nothing was saved. Check the account's permissions and try again."
            }
            ConnectFailure::NotAllowed => {
                "Only owners and admins of the organization connect accounts, and your role changed while you were signing in. Nothing was connected, and the access the provider gave was handed back."
            }
            ConnectFailure::Internal => {
                "Nothing was connected. Please try again; if it keeps happening, tell your administrator the time it happened."
            }
        }
    }
}

/// A same-site path to return to after connecting: starts with one `/`, no `//` or `/\` (which
/// browsers read as another host), no control characters, at most 512 bytes. Anything else is
/// refused rather than corrected, so a crafted link fails loudly.
pub fn parse_return_to(raw: &str) -> Result<String, AppError> {
    let ok = raw.len() <= 512
        && raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && !raw.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(AppError::invalid(
            "return_to",
            "The page to return to must be a page of this site.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert!(parse_return_to("/marketplace/x/connect?a=1").is_ok());
        assert!(parse_return_to("/connections").is_ok());
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/ok\\..\\x",
            "javascript:alert(1)",
            "",
            "connections",
            "/a\r\nLocation: https://evil.example",
        ] {
            assert!(parse_return_to(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_return_to(&format!("/{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn failure_codes_round_trip() {
        for f in ConnectFailure::ALL {
            assert_eq!(ConnectFailure::parse(f.code()), Some(f));
        }
        assert_eq!(ConnectFailure::parse("<script>"), None);
    }
}
