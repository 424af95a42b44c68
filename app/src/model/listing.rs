//! Marketplace listings as the UI and the server functions exchange them: statuses, the recipe, the
//! editor's form, and the views of the catalog, a listing page and the review queue.
//!
//! Parsing here is what needs no provider specs (lengths, slugs, links, schedules); checking a
//! recipe against the providers happens on the server, in `domain::listings::recipe`.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The provider id of the built-in destination: records kept in Patchbay, read through its API.
pub const STORE_PROVIDER: &str = "patchbay";
/// The name the built-in destination is shown under.
pub const STORE_NAME: &str = "Patchbay store";

string_enum!(
    /// Where a listing stands as a whole.
    ListingStatus, "status", {
        Draft = "draft" / "Draft",
        InReview = "in_review" / "In review",
        Rejected = "rejected" / "Changes requested",
        Published = "published" / "Published",
        Archived = "archived" / "Archived",
    }
);

string_enum!(
    /// Where one version of a listing stands.
    VersionState, "state", {
        Draft = "draft" / "Draft",
        InReview = "in_review" / "In review",
        Rejected = "rejected" / "Changes requested",
        Published = "published" / "Published",
        Superseded = "superseded" / "Superseded",
    }
);

string_enum!(
    /// How often a sync may run on a schedule.
    Interval, "default_schedule", {
        Every5Minutes = "5m" / "Every 5 minutes",
        Every15Minutes = "15m" / "Every 15 minutes",
        Hourly = "1h" / "Every hour",
        Every6Hours = "6h" / "Every 6 hours",
        Daily = "24h" / "Every day",
    }
);

string_enum!(
    /// What starts a sync.
    Trigger, "triggers", {
        Schedule = "schedule" / "On a schedule",
        Webhook = "webhook" / "When the source sends a webhook",
        Manual = "manual" / "When you press \u{201c}Run now\u{201d}",
    }
);

string_enum!(
    /// The type of a config field the customer fills in.
    ConfigKind, "config_fields", {
        Text = "text" / "Text",
        Number = "number" / "Number",
        Boolean = "boolean" / "Yes / no",
        Email = "email" / "Email",
        Url = "url" / "Link",
    }
);

/// A catalog category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub slug: String,
    pub name: String,
}

/// One destination field of the default mapping, copied from a source path. Serialized as a
/// `connectors::mapping::FieldMap` with `op = "rename"`, so the sync engine reads it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedField {
    pub to: String,
    #[serde(default = "rename")]
    pub op: String,
    pub from: String,
}

fn rename() -> String {
    "rename".to_owned()
}

/// The default field mapping, in `connectors::mapping::Mapping`'s serialized form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMapping {
    pub fields: Vec<MappedField>,
}

/// A setting the customer fills in when installing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigField {
    /// Lowercase letters, digits and underscores; unique within the recipe.
    pub key: String,
    pub kind: ConfigKind,
    pub label: String,
    #[serde(default)]
    pub help: String,
    #[serde(default)]
    pub required: bool,
    /// The value filled in for the customer, as text (`"true"` for a boolean).
    #[serde(default)]
    pub default: String,
}

/// What an install of the listing does: read streams of one provider, map their fields, write
/// them to one stream of another (or to the Patchbay store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    pub source_provider: String,
    pub source_streams: Vec<String>,
    pub destination_provider: String,
    pub destination_stream: String,
    pub mapping: FieldMapping,
    pub config_fields: Vec<ConfigField>,
    pub default_schedule: Interval,
    pub allowed_schedules: Vec<Interval>,
    pub triggers: Vec<Trigger>,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            source_provider: String::new(),
            source_streams: Vec::new(),
            destination_provider: STORE_PROVIDER.to_owned(),
            destination_stream: String::new(),
            mapping: FieldMapping::default(),
            config_fields: Vec::new(),
            default_schedule: Interval::Hourly,
            allowed_schedules: vec![Interval::Hourly, Interval::Daily],
            triggers: vec![Trigger::Schedule, Trigger::Manual],
        }
    }
}

/// One row of the mapping table in the editor; blank rows are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MappingInput {
    pub to: String,
    pub from: String,
}

/// One row of the config-field table in the editor; rows without a key are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigInput {
    pub key: String,
    pub kind: String,
    pub label: String,
    pub help: String,
    /// A checkbox: present ("on") when ticked.
    pub required: Option<String>,
    pub default: String,
}

/// The listing editor's form, as posted (with or without JavaScript). Lists arrive with indexed
/// names (`form[source_streams][2]`), so unticked boxes leave gaps and blank rows stay blank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListingForm {
    pub name: String,
    pub slug: String,
    pub tagline: String,
    pub description: String,
    pub categories: Vec<String>,
    pub docs_url: String,
    pub support_url: String,
    pub website_url: String,
    pub source_provider: String,
    pub source_streams: Vec<String>,
    pub destination_provider: String,
    pub destination_stream: String,
    pub mapping: Vec<MappingInput>,
    pub config: Vec<ConfigInput>,
    pub default_schedule: String,
    pub allowed_schedules: Vec<String>,
    pub triggers: Vec<String>,
}

/// The content of one version, as the editor shows it and as the review diff compares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionContent {
    pub name: String,
    pub tagline: String,
    pub description: String,
    pub categories: Vec<String>,
    pub logo_hash: Option<String>,
    pub docs_url: Option<String>,
    pub support_url: Option<String>,
    pub website_url: Option<String>,
    pub recipe: Recipe,
}

/// A listing in the vendor console's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorListingRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: ListingStatus,
    /// The state of the version being worked on, when there is one beside the published one.
    pub pending: Option<VersionState>,
    pub updated_at: String,
}

/// One version in a listing's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub id: Uuid,
    pub number: i32,
    pub state: VersionState,
    pub review_notes: Option<String>,
    pub submitted_at: Option<String>,
    pub reviewed_at: Option<String>,
}

/// A listing in the editor: the version being edited (or the published one, when none is open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingEditor {
    pub id: Uuid,
    pub slug: String,
    pub status: ListingStatus,
    /// The slug can change until the listing is first published.
    pub slug_locked: bool,
    pub version: VersionSummary,
    pub content: VersionContent,
    /// The latest reviewer's notes, shown until the vendor resubmits.
    pub review_notes: Option<String>,
    pub history: Vec<VersionSummary>,
    pub can_archive: bool,
    /// Every provider the recipe may name, with its streams.
    pub providers: Vec<ProviderChoice>,
    pub categories: Vec<Category>,
}

/// A provider as the recipe editor offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderChoice {
    pub id: String,
    pub name: String,
    pub streams: Vec<StreamChoice>,
    pub has_webhooks: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChoice {
    pub name: String,
    pub label: String,
    pub fields: Vec<String>,
    /// Whether records can be written to it (a destination).
    pub writable: bool,
}

/// A card in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogCard {
    pub slug: String,
    pub name: String,
    pub tagline: String,
    pub vendor: String,
    pub categories: Vec<Category>,
    pub logo_url: Option<String>,
    pub featured: bool,
}

/// What the catalog was asked for, as carried in the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogQuery {
    pub q: String,
    pub category: String,
    pub page: u32,
}

/// One page of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogPage {
    pub cards: Vec<CatalogCard>,
    /// Featured listings, shown above the grid on the unfiltered first page.
    pub featured: Vec<CatalogCard>,
    pub categories: Vec<Category>,
    pub total: i64,
    pub page: u32,
    pub pages: u32,
}

/// One stream as "What syncs" describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedStream {
    pub label: String,
    pub fields: Vec<String>,
}

/// One OAuth scope in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub provider: String,
    pub scope: String,
    pub description: String,
}

/// A listing page, rendered from a version (the published one, or a draft in the preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingPage {
    pub slug: String,
    pub name: String,
    pub tagline: String,
    pub vendor: String,
    pub logo_url: Option<String>,
    pub categories: Vec<Category>,
    /// Sanitized HTML, safe to insert.
    pub description_html: String,
    pub docs_url: Option<String>,
    pub support_url: Option<String>,
    pub website_url: Option<String>,
    pub source_name: String,
    pub destination_name: String,
    pub destination_stream: String,
    pub streams: Vec<SyncedStream>,
    pub mapped_fields: Vec<MappedField>,
    pub permissions: Vec<Permission>,
    /// How the customer's account is connected, per provider ("OAuth", "API key").
    pub auth_kinds: Vec<(String, String)>,
    pub default_schedule: Interval,
    pub allowed_schedules: Vec<Interval>,
    pub triggers: Vec<Trigger>,
    pub config_fields: Vec<ConfigField>,
    pub version: i32,
    /// Featured in the catalog (set by a platform admin).
    pub featured: bool,
}

/// A version waiting in the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub version_id: Uuid,
    pub listing_slug: String,
    pub name: String,
    pub vendor: String,
    pub number: i32,
    pub submitted_at: String,
    /// A first version (nothing published yet) or an update.
    pub is_update: bool,
}

/// One changed part of a version, against the published one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSection {
    pub field: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    /// `+`, `-` or ` `.
    pub sign: char,
    pub text: String,
}

/// A submitted version, as the reviewer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDetail {
    pub item: ReviewItem,
    pub state: VersionState,
    pub preview: ListingPage,
    /// Empty when nothing is published yet (everything is new) or nothing changed.
    pub diff: Vec<DiffSection>,
}

string_enum!(
    /// Why a logo upload was refused. The upload is a plain form post answered with a redirect, so
    /// the editor learns of the problem from this code in its URL and words it itself.
    LogoProblem, "logo_error", {
        Missing = "missing" / "Choose an image file to upload.",
        TooLarge = "too_large" / "The logo is larger than 512 KiB. Save it smaller, or as WebP or JPEG.",
        Svg = "svg" / "SVG logos are not accepted, because SVG can carry scripts. Upload a PNG, JPEG or WebP.",
        NotImage = "not_image" / "That file is not a PNG, JPEG or WebP image (its content was checked, not only its name).",
        Dimensions = "dimensions" / "The logo must be between 16×16 and 4096×4096 pixels; a square of 256×256 or more looks best.",
        InReview = "in_review" / "This version is in review. Withdraw it from review to change the logo.",
        Failed = "failed" / "The logo could not be saved. Please try again.",
    }
);

/// A listing slug: lowercase letters and digits in dash-separated words, at most 60 characters.
pub fn parse_slug(input: &str) -> Result<String, AppError> {
    let slug = input.trim();
    if slug.is_empty() {
        return Err(AppError::invalid(
            "slug",
            "Enter a slug, such as hubspot-to-sheets.",
        ));
    }
    let valid = slug.len() <= 60
        && slug.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !valid {
        return Err(AppError::invalid(
            "slug",
            "Use lowercase letters, digits and single dashes between words (at most 60 characters), such as hubspot-to-sheets.",
        ));
    }
    Ok(slug.to_owned())
}

/// A slug suggested from a name: "HubSpot → Sheets" becomes `hubspot-sheets`.
pub fn slug_from_name(name: &str) -> String {
    let mut slug = String::new();
    for word in name
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if slug.len() + word.len() + 1 > 60 {
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(word);
    }
    slug
}

/// One line of text of at most `max` characters.
pub fn parse_line(field: &str, input: &str, max: usize, what: &str) -> Result<String, AppError> {
    let text = input.trim();
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("Keep the {what} to one line of at most {max} characters."),
        ));
    }
    Ok(text.to_owned())
}

/// An optional http(s) link, shown to customers.
pub fn parse_link(field: &str, input: &str) -> Result<Option<String>, AppError> {
    let link = input.trim();
    if link.is_empty() {
        return Ok(None);
    }
    let rest = link
        .strip_prefix("https://")
        .or_else(|| link.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !host.contains('@')
    });
    if !host_ok || link.len() > 500 || link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::invalid(
            field,
            "Enter a full link starting with https:// (or http://), such as https://example.com/docs.",
        ));
    }
    Ok(Some(link.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            parse_slug(" hubspot-to-sheets ").unwrap(),
            "hubspot-to-sheets"
        );
        for bad in ["", "Hub", "a--b", "-a", "a-", "a_b", "ü", &"a".repeat(61)] {
            assert!(parse_slug(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            slug_from_name("HubSpot → Google Sheets!"),
            "hubspot-google-sheets"
        );
        assert_eq!(slug_from_name("  "), "");
    }

    #[test]
    fn links() {
        assert_eq!(parse_link("docs_url", "").unwrap(), None);
        assert!(parse_link("docs_url", "https://example.com/docs")
            .unwrap()
            .is_some());
        for bad in [
            "javascript:alert(1)",
            "example.com",
            "https://",
            "https://a b",
            "https://u@evil",
        ] {
            assert!(parse_link("docs_url", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enums_round_trip() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().unwrap(), *i);
        }
        assert!("weekly".parse::<Interval>().is_err());
    }
}
