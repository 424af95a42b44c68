//! What the four streams look like: names, id prefixes, scopes, and which fields a write may
//! set (with their types). Validation here is pure; the store checks references.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::scopes::Scope;

/// One of the sandbox's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StreamKind {
    Customers,
    Orders,
    Contacts,
    Companies,
}

/// How a field's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// A string containing one `@` with text on both sides.
    Email,
    /// A non-empty string.
    Text,
    /// A string or null.
    OptionalText,
    /// The id of a record of another stream, or null.
    Reference(StreamKind),
    /// A non-negative integer.
    Count,
    /// Three upper-case letters.
    Currency,
    /// One of the order statuses.
    OrderStatus,
}

/// A field a write may set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: FieldType,
    /// Required by `POST` (not by [`Mode::Insert`], which fills in fake values).
    pub(crate) required: bool,
}

const fn field(name: &'static str, ty: FieldType, required: bool) -> Field {
    Field { name, ty, required }
}

/// Order statuses, in their usual life-cycle order.
pub(crate) const ORDER_STATUSES: [&str; 5] =
    ["pending", "paid", "fulfilled", "refunded", "cancelled"];

const READ_ONLY: [&str; 3] = ["id", "created_at", "updated_at"];

impl StreamKind {
    /// Every stream, in seeding order.
    pub(crate) const ALL: [StreamKind; 4] = [
        StreamKind::Customers,
        StreamKind::Orders,
        StreamKind::Contacts,
        StreamKind::Companies,
    ];

    /// Parses a stream name such as `contacts`.
    pub(crate) fn parse(name: &str) -> Option<StreamKind> {
        StreamKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Parses a stream name that must belong to `app` (`shop` or `crm`).
    pub(crate) fn parse_in(app: &str, name: &str) -> Option<StreamKind> {
        StreamKind::parse(name).filter(|k| k.app() == app)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            StreamKind::Customers => "customers",
            StreamKind::Orders => "orders",
            StreamKind::Contacts => "contacts",
            StreamKind::Companies => "companies",
        }
    }

    /// The event type prefix, e.g. `contact` in `contact.updated`.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            StreamKind::Customers => "customer",
            StreamKind::Orders => "order",
            StreamKind::Contacts => "contact",
            StreamKind::Companies => "company",
        }
    }

    /// The id prefix, e.g. `con` in `con_000001`.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            StreamKind::Customers => "cus",
            StreamKind::Orders => "ord",
            StreamKind::Contacts => "con",
            StreamKind::Companies => "com",
        }
    }

    /// `shop` or `crm`: the first path segment.
    pub(crate) fn app(self) -> &'static str {
        match self {
            StreamKind::Customers | StreamKind::Orders => "shop",
            StreamKind::Contacts | StreamKind::Companies => "crm",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn read_scope(self) -> Scope {
        match self.app() {
            "shop" => Scope::ShopRead,
            _ => Scope::CrmRead,
        }
    }

    pub(crate) fn write_scope(self) -> Scope {
        match self.app() {
            "shop" => Scope::ShopWrite,
            _ => Scope::CrmWrite,
        }
    }

    /// Whether the API accepts `POST`/`PATCH` for this stream (orders come from checkout).
    pub(crate) fn writable_over_api(self) -> bool {
        self != StreamKind::Orders
    }

    /// The fields a write may set.
    pub(crate) fn fields(self) -> &'static [Field] {
        match self {
            StreamKind::Customers => CUSTOMER_FIELDS,
            StreamKind::Orders => ORDER_FIELDS,
            StreamKind::Contacts => CONTACT_FIELDS,
            StreamKind::Companies => COMPANY_FIELDS,
        }
    }
}

const CUSTOMER_FIELDS: &[Field] = &[
    field("email", FieldType::Email, true),
    field("first_name", FieldType::OptionalText, false),
    field("last_name", FieldType::OptionalText, false),
];
const ORDER_FIELDS: &[Field] = &[
    field(
        "customer_id",
        FieldType::Reference(StreamKind::Customers),
        false,
    ),
    field("total_cents", FieldType::Count, false),
    field("currency", FieldType::Currency, false),
    field("status", FieldType::OrderStatus, false),
];
const CONTACT_FIELDS: &[Field] = &[
    field("email", FieldType::Email, true),
    field("name", FieldType::OptionalText, false),
    field(
        "company_id",
        FieldType::Reference(StreamKind::Companies),
        false,
    ),
    field("phone", FieldType::OptionalText, false),
];
const COMPANY_FIELDS: &[Field] = &[
    field("name", FieldType::Text, true),
    field("domain", FieldType::OptionalText, false),
];

/// Which kind of write a body is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `POST`: required fields must be present.
    Create,
    /// `PATCH`: any subset of fields.
    Update,
    /// [`super::Sandbox::insert`]: any subset; the store fills the rest with fake values.
    Insert,
}

/// Checks a write body and returns the fields it sets. The message is fit for a 422 body.
pub(crate) fn validate(
    kind: StreamKind,
    body: &Value,
    mode: Mode,
) -> Result<Map<String, Value>, String> {
    let Value::Object(given) = body else {
        return Err("the body must be a JSON object".to_owned());
    };
    let fields = kind.fields();
    for name in given.keys() {
        if READ_ONLY.contains(&name.as_str()) {
            return Err(format!("field `{name}` is read-only"));
        }
        if !fields.iter().any(|f| f.name == name) {
            let allowed: Vec<&str> = fields.iter().map(|f| f.name).collect();
            return Err(format!(
                "unknown field `{name}` for {}; writable fields are: {}",
                kind.name(),
                allowed.join(", ")
            ));
        }
    }
    for f in fields {
        match given.get(f.name) {
            Some(value) => check_type(f, value)?,
            None if f.required && mode == Mode::Create => {
                return Err(format!("field `{}` is required", f.name));
            }
            None => {}
        }
    }
    Ok(given.clone())
}

fn check_type(f: &Field, value: &Value) -> Result<(), String> {
    let name = f.name;
    let ok = match (f.ty, value) {
        (FieldType::Email, Value::String(s)) => is_email(s),
        (FieldType::Text, Value::String(s)) => !s.trim().is_empty(),
        (FieldType::OptionalText | FieldType::Reference(_), Value::String(_) | Value::Null) => true,
        (FieldType::Count, Value::Number(n)) => n.as_u64().is_some(),
        (FieldType::Currency, Value::String(s)) => {
            s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
        }
        (FieldType::OrderStatus, Value::String(s)) => ORDER_STATUSES.contains(&s.as_str()),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(match f.ty {
        FieldType::Email => {
            format!("field `{name}` must be an email address such as \"ada@example.com\"")
        }
        FieldType::Text => format!("field `{name}` must be a non-empty string"),
        FieldType::OptionalText => format!("field `{name}` must be a string or null"),
        FieldType::Reference(kind) => {
            format!(
                "field `{name}` must be the id of one of your {} (a string) or null",
                kind.name()
            )
        }
        FieldType::Count => format!("field `{name}` must be a non-negative integer"),
        FieldType::Currency => format!("field `{name}` must be an ISO 4217 code such as \"USD\""),
        FieldType::OrderStatus => format!(
            "field `{name}` must be one of: {}",
            ORDER_STATUSES.join(", ")
        ),
    })
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Formats Unix milliseconds as RFC 3339 UTC with exactly three fraction digits
/// (`2024-01-01T00:05:00.000Z`), so that timestamps also sort correctly as strings. Written by
/// hand because seeding 100,000s of records with a general formatter is slow in debug builds.
pub(crate) fn rfc3339(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_names_the_offending_field() {
        let k = StreamKind::Contacts;
        let err = validate(k, &json!({"email": "a@b.c", "nickname": "x"}), Mode::Create);
        assert!(err.unwrap_err().contains("unknown field `nickname`"));
        let err = validate(k, &json!({"name": "Ada"}), Mode::Create);
        assert_eq!(err.unwrap_err(), "field `email` is required");
        assert!(validate(k, &json!({"name": "Ada"}), Mode::Update).is_ok());
        let err = validate(k, &json!({"id": "con_1"}), Mode::Update);
        assert_eq!(err.unwrap_err(), "field `id` is read-only");
        assert!(validate(k, &json!({"email": "not an email"}), Mode::Update).is_err());
        assert!(validate(k, &json!([1]), Mode::Update).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(rfc3339(1_704_067_200_000), "2024-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.123Z"),
            Some(1_704_067_200_123)
        );
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    proptest::proptest! {
        #[test]
        fn formatting_agrees_with_the_time_crate(ms in 0i64..253_402_300_800_000) {
            let ours = rfc3339(ms);
            proptest::prop_assert_eq!(ours.len(), 24);
            proptest::prop_assert_eq!(parse_rfc3339(&ours), Some(ms));
        }
    }
}
