//! Property tests for the parsers of the outbound client that face the outside: a provider's
//! `Retry-After` header and tenant-supplied URLs must never panic, whatever they hold.

use std::time::{Duration, SystemTime};

use connectors::http::{check_ip, parse_retry_after, HttpConfig, OutboundClient, MAX_RETRY_AFTER};
use proptest::prelude::*;
use url::Url;

fn client() -> OutboundClient {
    OutboundClient::new(HttpConfig::default()).unwrap()
}

proptest! {
    #[test]
    fn parse_retry_after_never_panics_and_stays_capped(
        value in "\\PC*",
        secs in 0u64..4_000_000_000,
    ) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        if let Some(wait) = parse_retry_after(&value, now) {
            prop_assert!(wait <= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn parse_retry_after_reads_any_delta(n in 0u64..=u64::MAX) {
        let wait = parse_retry_after(&n.to_string(), SystemTime::now()).unwrap();
        prop_assert_eq!(wait, Duration::from_secs(n).min(MAX_RETRY_AFTER));
    }

    #[test]
    fn check_url_never_panics(s in "\\PC*", host in "[a-z0-9.:\\[\\]%-]{0,40}") {
        let client = client();
        for candidate in [s.clone(), format!("http://{host}/"), format!("https://{s}")] {
            if let Ok(url) = Url::parse(&candidate) {
                let _ = client.check_url(&url);
            }
        }
    }

    #[test]
    fn check_url_agrees_with_check_ip_on_literals(ip in any::<std::net::IpAddr>()) {
        let host = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let url = Url::parse(&format!("http://{host}/")).unwrap();
        prop_assert_eq!(client().check_url(&url).is_ok(), check_ip(ip, &[]).is_ok());
    }
}
