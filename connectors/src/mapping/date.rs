//! The date and time formats a `date_format` transform reads and writes, checked when the mapping
//! is compiled so that a typo such as `YYYY-MM-DD` is reported once, not on every record.

use serde_json::Value;
use time::error::TryFromParsed;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::format_description::OwnedFormatItem;
use time::parsing::Parsed;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A parsed `input` or `output` setting.
#[derive(Debug, Clone)]
pub(super) enum DateSpec {
    Rfc3339,
    Rfc2822,
    /// Whole (or fractional, when reading) seconds since 1970-01-01T00:00:00Z.
    Unix,
    /// Milliseconds since 1970-01-01T00:00:00Z.
    UnixMs,
    /// A `time` format description, version 2 syntax: `[year]-[month]-[day]`.
    Custom(OwnedFormatItem),
}

impl DateSpec {
    /// Parses an `input` setting (RFC 3339 when absent) and checks that it can yield a date.
    pub(super) fn input(spec: Option<&str>) -> Result<Self, String> {
        let parsed = Self::parse(spec)?;
        if let DateSpec::Custom(item) = &parsed {
            let Value::String(text) = parsed.write(sample())? else {
                return Err("a format description writes text".into());
            };
            read_custom(&text, item).map_err(|reason| {
                format!(
                    "an input format must give a date, and this one cannot ({reason}); include \
                     [year], [month] and [day], or [unix_timestamp]"
                )
            })?;
        }
        Ok(parsed)
    }

    /// Parses an `output` setting (RFC 3339 when absent).
    pub(super) fn output(spec: Option<&str>) -> Result<Self, String> {
        let parsed = Self::parse(spec)?;
        parsed.write(sample())?;
        Ok(parsed)
    }

    fn parse(spec: Option<&str>) -> Result<Self, String> {
        Ok(match spec {
            None | Some("rfc3339") => DateSpec::Rfc3339,
            Some("rfc2822") => DateSpec::Rfc2822,
            Some("unix") => DateSpec::Unix,
            Some("unix_ms") => DateSpec::UnixMs,
            Some(description) => {
                // Some malformed descriptions trip a debug assertion inside `time`'s parser
                // (the mapping proptest found `[®[\`): a debug build would panic where a release
                // build returns an error, so the panic is caught and reported as one.
                let item = std::panic::catch_unwind(|| {
                    time::format_description::parse_owned::<2>(description)
                })
                .map_err(|_| "it is not a format description Patchbay can read".to_owned())?
                .map_err(|e| e.to_string())?;
                if !has_component(&item) {
                    return Err(
                        "it has no components such as [year], so every date would read \
                                the same; write for example [year]-[month]-[day] (not YYYY-MM-DD \
                                or %Y-%m-%d), or use rfc3339, rfc2822, unix or unix_ms"
                            .into(),
                    );
                }
                DateSpec::Custom(item)
            }
        })
    }

    /// Reads a value in this format; `None` for a blank string (what CSV exports write for "no
    /// date"). The error is a reason fit for a person.
    pub(super) fn read(&self, value: &Value) -> Result<Option<OffsetDateTime>, String> {
        if let Value::String(s) = value {
            if s.trim().is_empty() {
                return Ok(None);
            }
        }
        let parsed = match (self, value) {
            (DateSpec::Unix, _) => number(value).and_then(|n| n.nanos(1_000_000_000)),
            (DateSpec::UnixMs, _) => number(value).and_then(|n| n.nanos(1_000_000)),
            (DateSpec::Rfc3339, Value::String(s)) => {
                OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| e.to_string())
            }
            (DateSpec::Rfc2822, Value::String(s)) => {
                OffsetDateTime::parse(s.trim(), &Rfc2822).map_err(|e| e.to_string())
            }
            (DateSpec::Custom(item), Value::String(s)) => read_custom(s.trim(), item),
            (DateSpec::Custom(item), Value::Number(n)) => read_custom(&n.to_string(), item),
            (DateSpec::Rfc3339, Value::Number(_)) => {
                Err("it is a number; set `input` to \"unix\" or \"unix_ms\" for timestamps".into())
            }
            _ => Err("it is not text".into()),
        };
        parsed.map(Some).map_err(|reason| {
            format!(
                "{}, which is not {} ({reason})",
                shown(value),
                self.describe()
            )
        })
    }

    /// Writes a date-time in this format.
    pub(super) fn write(&self, at: OffsetDateTime) -> Result<Value, String> {
        let text = match self {
            DateSpec::Unix => return Ok(Value::from(at.unix_timestamp())),
            DateSpec::UnixMs => {
                let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
                return i64::try_from(ms)
                    .map(Value::from)
                    .map_err(|e| e.to_string());
            }
            DateSpec::Rfc3339 => at.format(&Rfc3339),
            DateSpec::Rfc2822 => at.format(&Rfc2822),
            DateSpec::Custom(item) => at.format(item),
        };
        text.map(Value::String)
            .map_err(|e| format!("cannot write {at} as {}: {e}", self.describe()))
    }

    fn describe(&self) -> &'static str {
        match self {
            DateSpec::Rfc3339 => "an RFC 3339 date-time",
            DateSpec::Rfc2822 => "an RFC 2822 date-time",
            DateSpec::Unix => "a Unix timestamp in seconds",
            DateSpec::UnixMs => "a Unix timestamp in milliseconds",
            DateSpec::Custom(_) => "a date in the given format",
        }
    }
}

/// A moment with every component distinct, used to check formats when compiling.
fn sample() -> OffsetDateTime {
    time::macros::datetime!(2001-02-03 04:05:06.007 +08:00)
}

fn has_component(item: &OwnedFormatItem) -> bool {
    match item {
        OwnedFormatItem::Component(_) => true,
        OwnedFormatItem::Compound(items) | OwnedFormatItem::First(items) => {
            items.iter().any(has_component)
        }
        OwnedFormatItem::Optional(item) => has_component(item),
        _ => false,
    }
}

/// Parses with a format description; a missing time of day means midnight and a missing offset
/// means UTC, so date-only formats work.
fn read_custom(text: &str, item: &OwnedFormatItem) -> Result<OffsetDateTime, String> {
    let mut parsed = Parsed::new();
    let rest = parsed
        .parse_item(text.as_bytes(), item)
        .map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!(
            "unexpected `{}` at the end",
            String::from_utf8_lossy(rest)
        ));
    }
    if parsed.unix_timestamp_nanos().is_some() {
        return OffsetDateTime::try_from(parsed).map_err(|e| e.to_string());
    }
    let date = Date::try_from(parsed).map_err(|e| match e {
        TryFromParsed::InsufficientInformation => "the format gives no full date".to_owned(),
        e => e.to_string(),
    })?;
    let time = or_default(Time::try_from(parsed), Time::MIDNIGHT)?;
    let offset = or_default(UtcOffset::try_from(parsed), UtcOffset::UTC)?;
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// The parsed component, or `default` when the format does not give it.
fn or_default<T>(result: Result<T, TryFromParsed>, default: T) -> Result<T, String> {
    match result {
        Err(TryFromParsed::InsufficientInformation) => Ok(default),
        other => other.map_err(|e| e.to_string()),
    }
}

/// A timestamp read from a JSON number or a numeric string.
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// The moment this many units (of `unit_nanos` nanoseconds each) after the Unix epoch.
    fn nanos(self, unit_nanos: i64) -> Result<OffsetDateTime, String> {
        let nanos = match self {
            Number::Int(n) => i128::from(n) * i128::from(unit_nanos),
            // Saturating cast; anything out of range is refused just below.
            Number::Float(f) => (f * unit_nanos as f64) as i128,
        };
        OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|e| e.to_string())
    }
}

fn number(value: &Value) -> Result<Number, String> {
    let from_f64 = |f: f64| {
        if f.is_finite() {
            Ok(Number::Float(f))
        } else {
            Err("not finite".to_owned())
        }
    };
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Number::Int(i)),
            None => from_f64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Number::Int(i)),
            Err(_) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| "it is not a number".to_owned())
                .and_then(from_f64),
        },
        _ => Err("it is not a number".into()),
    }
}

/// A value as it appears in an error message, cut short so that a long text stays readable.
fn shown(value: &Value) -> String {
    const MAX: usize = 40;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_description_that_trips_times_parser_is_an_error_not_a_panic() {
        assert!(DateSpec::input(Some("[®[\\")).is_err());
        assert!(DateSpec::output(Some("[®[\\")).is_err());
    }

    fn convert(input: Option<&str>, output: Option<&str>, value: Value) -> Result<Value, String> {
        let at = DateSpec::input(input)?.read(&value)?.expect("a date");
        DateSpec::output(output)?.write(at)
    }

    #[test]
    fn converts_between_every_kind_of_format() {
        let rfc = Some("rfc3339");
        assert_eq!(
            convert(None, Some("unix"), json!("2024-03-01T12:00:00Z")),
            Ok(json!(1_709_294_400))
        );
        assert_eq!(
            convert(Some("unix"), None, json!(1_709_294_400)),
            Ok(json!("2024-03-01T12:00:00Z"))
        );
        assert_eq!(
            convert(Some("unix"), rfc, json!("1709294400")),
            Ok(json!("2024-03-01T12:00:00Z"))
        );
        assert_eq!(
            convert(Some("unix"), rfc, json!(1.5)),
            Ok(json!("1970-01-01T00:00:01.5Z"))
        );
        assert_eq!(
            convert(Some("unix_ms"), Some("unix_ms"), json!(-1)),
            Ok(json!(-1))
        );
        assert_eq!(
            convert(Some("unix_ms"), None, json!(1_709_294_400_123_i64)),
            Ok(json!("2024-03-01T12:00:00.123Z"))
        );
        assert_eq!(
            convert(
                None,
                Some("[day]/[month]/[year] [hour]:[minute]"),
                json!("2024-03-01T12:30:00+02:00")
            ),
            Ok(json!("01/03/2024 12:30")),
            "the input's offset is kept"
        );
        assert_eq!(
            convert(Some("[year]-[month]-[day]"), None, json!("2024-03-01")),
            Ok(json!("2024-03-01T00:00:00Z"))
        );
        assert_eq!(
            convert(Some("[year][month][day]"), Some("unix"), json!(19700102)),
            Ok(json!(86_400))
        );
        assert_eq!(
            convert(
                Some("rfc2822"),
                None,
                json!("Fri, 01 Mar 2024 12:00:00 +0000")
            ),
            Ok(json!("2024-03-01T12:00:00Z"))
        );
        assert_eq!(
            convert(Some("[unix_timestamp]"), None, json!("0")),
            Ok(json!("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn blank_text_is_no_date() {
        assert_eq!(DateSpec::input(None).unwrap().read(&json!("  ")), Ok(None));
    }

    #[test]
    fn unreadable_values_say_what_was_expected() {
        let read =
            |spec: Option<&str>, v: Value| DateSpec::input(spec).unwrap().read(&v).unwrap_err();
        assert!(read(None, json!("2024-13-01"))
            .starts_with("\"2024-13-01\", which is not an RFC 3339 date-time ("));
        assert!(read(None, json!(17)).contains("\"unix\""));
        assert!(
            read(Some("unix"), json!("soon")).contains("which is not a Unix timestamp in seconds")
        );
        assert!(read(Some("unix"), json!(1e30)).contains("is not a Unix timestamp"));
        let ymd = Some("[year]-[month]-[day]");
        assert!(read(ymd, json!("2024-03-01x")).contains("unexpected `x`"));
        assert!(read(ymd, json!(true)).contains("not text"));
        assert!(read(None, json!("x".repeat(100))).contains('…'));
    }

    #[test]
    fn bad_formats_are_refused_with_a_reason() {
        assert!(DateSpec::input(Some("YYYY-MM-DD"))
            .unwrap_err()
            .contains("no components"));
        assert!(DateSpec::output(Some("%Y-%m-%d"))
            .unwrap_err()
            .contains("no components"));
        assert!(DateSpec::output(Some("[yeer]")).is_err());
        assert!(DateSpec::input(Some("[hour]:[minute]"))
            .unwrap_err()
            .contains("must give a date"));
        assert!(
            DateSpec::output(Some("[hour]:[minute]")).is_ok(),
            "any component can be written"
        );
    }
}
