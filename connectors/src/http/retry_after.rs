//! Turning a provider's HTTP status into what the sync engine should do about it, including how
//! long a provider asked us to wait (`Retry-After`, RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::HeaderMap;

use crate::error::ErrorClass;

/// The longest wait we honour; a provider asking for more is capped rather than trusted.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Classifies a response status. `None` for 1xx–3xx (not failures).
///
/// * 401 → `Auth`
/// * 429 → `RateLimited` with the `Retry-After` wait, when given and readable
/// * 403 or 503 carrying a `Retry-After` header → `RateLimited` (the header is the provider's
///   signal that this is throttling, so it counts even when its value cannot be read)
/// * 408, 5xx → `Transient`
/// * any other 4xx (and nonsense statuses below 100) → `Permanent`
pub fn classify(status: u16, headers: &HeaderMap, now: SystemTime) -> Option<ErrorClass> {
    let header = headers.get(RETRY_AFTER);
    let retry_after = || {
        header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    };
    Some(match status {
        100..=399 => return None,
        401 => ErrorClass::Auth,
        429 => ErrorClass::RateLimited {
            retry_after: retry_after(),
        },
        403 | 503 if header.is_some() => ErrorClass::RateLimited {
            retry_after: retry_after(),
        },
        408 | 500.. => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    })
}

/// Reads a `Retry-After` value: delta-seconds (`"120"`) or an HTTP-date in any of the three
/// forms (IMF-fixdate, RFC 850, asctime). A date in the past gives `Some(0)`; anything
/// unreadable gives `None`; waits are capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still "a very long time", not garbage.
        value
            .parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
    fn rfc_example() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn parses_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn parses_all_three_date_forms() {
        let now = rfc_example() - Duration::from_secs(90);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(90)),
                "{date}"
            );
        }
    }

    #[test]
    fn past_dates_mean_now_and_far_dates_are_capped() {
        let now = rfc_example() + Duration::from_secs(3600);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        let long_before = rfc_example() - Duration::from_secs(10 * 24 * 3600);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", long_before),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn garbage_is_none() {
        let now = SystemTime::now();
        for value in [
            "",
            "  ",
            "soon",
            "-1",
            "1.5",
            "+5",
            "12abc",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }

    #[test]
    fn classify_table() {
        let now = SystemTime::now();
        let none = HeaderMap::new();
        let mut retry = HeaderMap::new();
        retry.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        let mut unreadable = HeaderMap::new();
        unreadable.insert(RETRY_AFTER, HeaderValue::from_static("later"));
        let limited = |secs: Option<u64>| {
            Some(ErrorClass::RateLimited {
                retry_after: secs.map(Duration::from_secs),
            })
        };
        let table: [(u16, &HeaderMap, Option<ErrorClass>); 20] = [
            (100, &none, None),
            (200, &none, None),
            (204, &none, None),
            (302, &none, None),
            (304, &retry, None),
            (400, &none, Some(ErrorClass::Permanent)),
            (401, &none, Some(ErrorClass::Auth)),
            (401, &retry, Some(ErrorClass::Auth)),
            (403, &none, Some(ErrorClass::Permanent)),
            (403, &retry, limited(Some(30))),
            (403, &unreadable, limited(None)),
            (404, &none, Some(ErrorClass::Permanent)),
            (408, &none, Some(ErrorClass::Transient)),
            (422, &none, Some(ErrorClass::Permanent)),
            (429, &none, limited(None)),
            (429, &retry, limited(Some(30))),
            (500, &none, Some(ErrorClass::Transient)),
            (502, &retry, Some(ErrorClass::Transient)),
            (503, &none, Some(ErrorClass::Transient)),
            (503, &retry, limited(Some(30))),
        ];
        for (status, headers, expected) in table {
            assert_eq!(classify(status, headers, now), expected, "{status}");
        }
    }
}
