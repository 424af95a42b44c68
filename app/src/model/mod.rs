//! Types shared by the browser and the server: what server functions take and return, and the
//! parsers that turn form input into them.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A role inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }

    /// Owners and admins manage the member list.
    pub fn can_manage_members(self) -> bool {
        self >= Role::Admin
    }

    /// Whether someone with this role may give `target` to anyone, or change or remove someone who
    /// holds `target`. Only owners touch owners.
    pub fn can_assign(self, target: Role) -> bool {
        self.can_manage_members() && (self == Role::Owner || target != Role::Owner)
    }
}

impl FromStr for Role {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, AppError> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(AppError::invalid("role", "Choose owner, admin or member.")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Customers install integrations; vendors publish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Customer,
    Vendor,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Customer => "customer",
            OrgKind::Vendor => "vendor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OrgKind::Customer => "Customer",
            OrgKind::Vendor => "Vendor",
        }
    }
}

impl FromStr for OrgKind {
    type Err = AppError;
    fn from_str(s: &str) -> Result<Self, AppError> {
        match s {
            "customer" => Ok(OrgKind::Customer),
            "vendor" => Ok(OrgKind::Vendor),
            _ => Err(AppError::invalid("kind", "Choose customer or vendor.")),
        }
    }
}

/// A normalized email address: trimmed, lowercased, with one `@` and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, AppError> {
        let email = input.trim().to_lowercase();
        let bad = || AppError::invalid("email", "Enter an email address such as ada@example.com.");
        if email.len() > 254 || email.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@');
        if local.is_empty() || !domain_ok {
            return Err(bad());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: long enough to resist guessing, short enough to hash cheaply.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_LEN: usize = 10;
    pub const MAX_LEN: usize = 256;

    pub fn parse(field: &str, input: String) -> Result<Self, AppError> {
        let len = input.chars().count();
        if len < Self::MIN_LEN {
            return Err(AppError::invalid(
                field,
                format!("Use at least {} characters.", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(AppError::invalid(
                field,
                format!("Use at most {} characters.", Self::MAX_LEN),
            ));
        }
        Ok(NewPassword(input))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name for a person or an organization: trimmed, 1 to 80 characters.
pub fn parse_name(field: &str, input: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(AppError::invalid(field, "Enter a name."));
    }
    if name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "Use at most 80 characters, on one line.",
        ));
    }
    Ok(name.to_owned())
}

/// Parses an id that came from a form or a URL.
pub fn parse_id(field: &str, input: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(input.trim()).map_err(|_| AppError::not_found(format!("No such {field}.")))
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_platform_admin: bool,
}

/// An organization as one of its members sees it in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
    pub role: Role,
}

/// Who is signed in, their organizations, and the active one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: UserInfo,
    pub orgs: Vec<OrgSummary>,
    pub active_org: Option<Uuid>,
}

impl SessionInfo {
    pub fn active(&self) -> Option<&OrgSummary> {
        let id = self.active_org?;
        self.orgs.iter().find(|o| o.id == id)
    }
}

/// A member of an organization, as shown on its members page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at: String,
}

/// An organization's page: the organization, the viewer's role and the members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgDetail {
    pub org: OrgSummary,
    pub members: Vec<Member>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn only_owners_touch_owners() {
        assert!(Role::Owner.can_assign(Role::Owner));
        assert!(Role::Admin.can_assign(Role::Admin));
        assert!(!Role::Admin.can_assign(Role::Owner));
        assert!(!Role::Member.can_assign(Role::Member));
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(NewPassword::parse("password", "short".into()).is_err());
        assert!(NewPassword::parse("password", "long enough pass".into()).is_ok());
        assert!(NewPassword::parse("password", "x".repeat(300)).is_err());
    }
}

/// A value a server function receives that must never be printed (an API key, a client secret):
/// `Debug` shows nothing, and the server turns it into a `SecretString` at once.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redacted(…)")
    }
}

/// A closed set of values kept as text (in the database and in forms), each with a label for
/// people.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident = $text:literal / $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl FromStr for $name {
            type Err = AppError;
            fn from_str(s: &str) -> Result<Self, AppError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(AppError::invalid($what, format!("Unknown {} \u{201c}{}\u{201d}.", $what.replace('_', " "), other))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

pub mod admin;
pub mod connection;
pub mod install;
pub mod listing;
