//! Webhook signature verification against published vectors, independent HMAC computations, and
//! the ways a delivery can be forged, replayed or mangled.

use base64::Engine as _;
use connectors::webhooks::{
    parse_github_header, parse_shopify_header, parse_stripe_header, sign, verify, SignatureScheme,
    WebhookError,
};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use sha2::Sha256;

const NOW: i64 = 1_700_000_000;
const SECRET: &[u8] = b"whsec_patchbay_test";
const BODY: &[u8] = br#"{"id":"evt_1","type":"customer.created","data":{"n":1}}"#;

fn stripe() -> SignatureScheme {
    SignatureScheme::Stripe {
        header: "stripe-signature".into(),
        tolerance_secs: 300,
    }
}

fn github() -> SignatureScheme {
    SignatureScheme::Github {
        header: "x-hub-signature-256".into(),
    }
}

fn shopify() -> SignatureScheme {
    SignatureScheme::Shopify {
        header: "x-shopify-hmac-sha256".into(),
    }
}

fn all_schemes() -> [SignatureScheme; 3] {
    [stripe(), github(), shopify()]
}

fn headers(name: &str, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(
        HeaderName::try_from(name).unwrap(),
        HeaderValue::try_from(value).unwrap(),
    );
    map
}

fn signed(scheme: &SignatureScheme, secret: &[u8], body: &[u8], now: i64) -> HeaderMap {
    let (name, value) = sign(scheme, secret, body, now);
    let mut map = HeaderMap::new();
    map.insert(name, value);
    map
}

/// A plain HMAC-SHA256, written out here so the tests do not lean on the module's own signing.
fn plain_hmac(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

// --- Published and independent vectors -----------------------------------------------------

/// GitHub docs, "Validating webhook deliveries": secret, payload and expected header.
const GITHUB_DOC_SECRET: &[u8] = b"It's a Secret to Everybody";
const GITHUB_DOC_BODY: &[u8] = b"Hello, World!";
const GITHUB_DOC_HEADER: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn github_docs_vector_verifies() {
    let map = headers("x-hub-signature-256", GITHUB_DOC_HEADER);
    assert_eq!(
        verify(&github(), GITHUB_DOC_SECRET, &map, GITHUB_DOC_BODY, NOW),
        Ok(())
    );
    assert_eq!(
        verify(&github(), GITHUB_DOC_SECRET, &map, b"Hello, World?", NOW),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn github_sign_reproduces_docs_vector() {
    let (name, value) = sign(&github(), GITHUB_DOC_SECRET, GITHUB_DOC_BODY, NOW);
    assert_eq!(name.as_str(), "x-hub-signature-256");
    assert_eq!(value.to_str().unwrap(), GITHUB_DOC_HEADER);
}

// Stripe's docs show the header format but publish no secret/payload/signature triple, so this
// vector was computed outside Rust with
// `printf '1492774577.<body>' | openssl dgst -sha256 -hmac whsec_test_secret`
// and is cross-checked against a plain HMAC below.
const STRIPE_VEC_SECRET: &[u8] = b"whsec_test_secret";
const STRIPE_VEC_T: i64 = 1_492_774_577;
const STRIPE_VEC_BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
const STRIPE_VEC_V1: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

#[test]
fn stripe_independent_vector_verifies() {
    let mut message = format!("{STRIPE_VEC_T}.").into_bytes();
    message.extend_from_slice(STRIPE_VEC_BODY);
    assert_eq!(
        hex::encode(plain_hmac(STRIPE_VEC_SECRET, &message)),
        STRIPE_VEC_V1
    );

    let map = headers(
        "stripe-signature",
        &format!("t={STRIPE_VEC_T},v1={STRIPE_VEC_V1}"),
    );
    let now = STRIPE_VEC_T + 10;
    assert_eq!(
        verify(&stripe(), STRIPE_VEC_SECRET, &map, STRIPE_VEC_BODY, now),
        Ok(())
    );
}

#[test]
fn stripe_sign_matches_independent_vector() {
    let (name, value) = sign(&stripe(), STRIPE_VEC_SECRET, STRIPE_VEC_BODY, STRIPE_VEC_T);
    assert_eq!(name.as_str(), "stripe-signature");
    assert_eq!(
        value.to_str().unwrap(),
        format!("t={STRIPE_VEC_T},v1={STRIPE_VEC_V1}")
    );
}

// Shopify's docs publish no secret/payload/header triple either. RFC 4231 test case 2 is a
// published HMAC-SHA256 vector (key "Jefe"), encoded here the way Shopify sends it: base64.
const RFC4231_KEY: &[u8] = b"Jefe";
const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
const RFC4231_HEX: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

#[test]
fn shopify_rfc4231_vector_verifies_and_signs() {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hex::decode(RFC4231_HEX).unwrap());
    assert_eq!(expected, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    let map = headers("x-shopify-hmac-sha256", &expected);
    assert_eq!(
        verify(&shopify(), RFC4231_KEY, &map, RFC4231_DATA, NOW),
        Ok(())
    );
    let (_, value) = sign(&shopify(), RFC4231_KEY, RFC4231_DATA, NOW);
    assert_eq!(value.to_str().unwrap(), expected);
}

// --- Round trips and forgeries -------------------------------------------------------------

#[test]
fn round_trip_each_scheme() {
    for scheme in all_schemes() {
        for body in [BODY, b"".as_slice(), &[0, 255, 10, 13, 128]] {
            let map = signed(&scheme, SECRET, body, NOW);
            assert_eq!(
                verify(&scheme, SECRET, &map, body, NOW),
                Ok(()),
                "{scheme:?}"
            );
        }
    }
}

#[test]
fn tampered_body_rejected_each_scheme() {
    for scheme in all_schemes() {
        let map = signed(&scheme, SECRET, BODY, NOW);
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&scheme, SECRET, &map, &tampered, NOW),
            Err(WebhookError::BadSignature),
            "{scheme:?}"
        );
        let mut extended = BODY.to_vec();
        extended.push(b' ');
        assert_eq!(
            verify(&scheme, SECRET, &map, &extended, NOW),
            Err(WebhookError::BadSignature),
            "{scheme:?}"
        );
    }
}

#[test]
fn wrong_secret_rejected_each_scheme() {
    for scheme in all_schemes() {
        let map = signed(&scheme, b"another secret", BODY, NOW);
        assert_eq!(
            verify(&scheme, SECRET, &map, BODY, NOW),
            Err(WebhookError::BadSignature),
            "{scheme:?}"
        );
    }
}

#[test]
fn missing_header_each_scheme() {
    for (scheme, name) in all_schemes().into_iter().zip([
        "stripe-signature",
        "x-hub-signature-256",
        "x-shopify-hmac-sha256",
    ]) {
        // A valid signature under some other header does not count.
        let map = headers("x-signature", GITHUB_DOC_HEADER);
        assert_eq!(
            verify(&scheme, SECRET, &map, BODY, NOW),
            Err(WebhookError::MissingHeader(name.to_owned()))
        );
    }
}

#[test]
fn duplicate_header_is_malformed_each_scheme() {
    for scheme in all_schemes() {
        let (name, value) = sign(&scheme, SECRET, BODY, NOW);
        let mut map = HeaderMap::new();
        map.append(name.clone(), value.clone());
        map.append(name, value);
        assert!(
            matches!(
                verify(&scheme, SECRET, &map, BODY, NOW),
                Err(WebhookError::Malformed(_))
            ),
            "{scheme:?}"
        );
    }
}

#[test]
fn non_ascii_header_is_malformed() {
    for scheme in all_schemes() {
        let (name, _) = sign(&scheme, SECRET, BODY, NOW);
        let mut map = HeaderMap::new();
        map.insert(
            name,
            HeaderValue::from_bytes("sha256=é".as_bytes()).unwrap(),
        );
        assert!(
            matches!(
                verify(&scheme, SECRET, &map, BODY, NOW),
                Err(WebhookError::Malformed(_))
            ),
            "{scheme:?}"
        );
    }
}

#[test]
fn oversized_header_is_malformed() {
    // A genuine signature followed by padding: refused for its length, not its content.
    let (_, value) = sign(&stripe(), SECRET, BODY, NOW);
    let long = format!("{},v0={}", value.to_str().unwrap(), "0".repeat(9000));
    let map = headers("stripe-signature", &long);
    assert!(matches!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse_stripe_header(&long),
        Err(WebhookError::Malformed(_))
    ));
    assert!(matches!(
        parse_github_header(&long),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn header_names_are_case_insensitive() {
    let scheme = SignatureScheme::Github {
        header: "X-Hub-Signature-256".into(),
    };
    let map = headers("X-HUB-SIGNATURE-256", GITHUB_DOC_HEADER);
    assert_eq!(
        verify(&scheme, GITHUB_DOC_SECRET, &map, GITHUB_DOC_BODY, NOW),
        Ok(())
    );

    let scheme = SignatureScheme::Stripe {
        header: "Stripe-Signature".into(),
        tolerance_secs: 300,
    };
    let (name, value) = sign(&scheme, SECRET, BODY, NOW);
    assert_eq!(name.as_str(), "stripe-signature");
    let map = headers("STRIPE-signature", value.to_str().unwrap());
    assert_eq!(verify(&stripe(), SECRET, &map, BODY, NOW), Ok(()));
}

// --- Stripe timestamps and signature lists -------------------------------------------------

fn stripe_v1(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(body);
    hex::encode(plain_hmac(secret, &message))
}

#[test]
fn stripe_expired_timestamp() {
    let map = signed(&stripe(), SECRET, BODY, NOW - 301);
    assert_eq!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::Expired { age_secs: 301 })
    );
    let map = signed(&stripe(), SECRET, BODY, NOW - 300);
    assert_eq!(verify(&stripe(), SECRET, &map, BODY, NOW), Ok(()));
}

#[test]
fn stripe_future_timestamp() {
    let map = signed(&stripe(), SECRET, BODY, NOW + 301);
    assert_eq!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::Expired { age_secs: -301 })
    );
    let map = signed(&stripe(), SECRET, BODY, NOW + 300);
    assert_eq!(verify(&stripe(), SECRET, &map, BODY, NOW), Ok(()));
}

#[test]
fn stripe_tolerance_comes_from_scheme() {
    let strict = SignatureScheme::Stripe {
        header: "stripe-signature".into(),
        tolerance_secs: 5,
    };
    let map = signed(&strict, SECRET, BODY, NOW - 6);
    assert_eq!(
        verify(&strict, SECRET, &map, BODY, NOW),
        Err(WebhookError::Expired { age_secs: 6 })
    );
}

#[test]
fn stripe_extreme_timestamps_saturate() {
    let map = signed(&stripe(), SECRET, BODY, i64::MIN);
    assert_eq!(
        verify(&stripe(), SECRET, &map, BODY, i64::MAX),
        Err(WebhookError::Expired { age_secs: i64::MAX })
    );
}

#[test]
fn stripe_replayed_signature_with_new_timestamp_rejected() {
    let old = stripe_v1(SECRET, NOW - 3600, BODY);
    let map = headers("stripe-signature", &format!("t={NOW},v1={old}"));
    assert_eq!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn stripe_second_v1_matches() {
    let stale = stripe_v1(b"rotated-out secret", NOW, BODY);
    let good = stripe_v1(SECRET, NOW, BODY);
    let map = headers("stripe-signature", &format!("t={NOW},v1={stale},v1={good}"));
    assert_eq!(verify(&stripe(), SECRET, &map, BODY, NOW), Ok(()));

    let map = headers(
        "stripe-signature",
        &format!("t={NOW},v1={stale},v1={stale}"),
    );
    assert_eq!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::BadSignature)
    );
}

#[test]
fn stripe_v0_only_refused() {
    // Even a v0 that carries the correct MAC is not accepted.
    let good = stripe_v1(SECRET, NOW, BODY);
    let value = format!("t={NOW},v0={good}");
    assert!(matches!(
        parse_stripe_header(&value),
        Err(WebhookError::Malformed(_))
    ));
    let map = headers("stripe-signature", &value);
    assert!(matches!(
        verify(&stripe(), SECRET, &map, BODY, NOW),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn stripe_v0_alongside_v1_is_ignored() {
    let good = stripe_v1(SECRET, NOW, BODY);
    let value = format!("t={NOW},v1={good},v0=6ffbb59b2300aae63f272406069a9788");
    assert_eq!(
        parse_stripe_header(&value),
        Ok((NOW, vec![hex::decode(&good).unwrap()]))
    );
    let map = headers("stripe-signature", &value);
    assert_eq!(verify(&stripe(), SECRET, &map, BODY, NOW), Ok(()));
}

#[test]
fn stripe_header_format_errors() {
    let v1 = stripe_v1(SECRET, NOW, BODY);
    for bad in [
        format!("v1={v1}"),                        // no timestamp
        format!("t=soon,v1={v1}"),                 // timestamp not an integer
        format!("t=99999999999999999999,v1={v1}"), // beyond i64
        format!("t=1,t=2,v1={v1}"),                // two timestamps
        format!("t={NOW},v1={}", &v1[..62]),       // short MAC
        format!("t={NOW},v1={v1}zz"),              // not hex
        format!("t={NOW},{v1}"),                   // item without '='
        String::new(),
    ] {
        assert!(
            matches!(parse_stripe_header(&bad), Err(WebhookError::Malformed(_))),
            "{bad}"
        );
    }
}

// --- GitHub and Shopify parsing -------------------------------------------------------------

#[test]
fn github_header_format_errors() {
    let hex_part = GITHUB_DOC_HEADER.strip_prefix("sha256=").unwrap();
    assert_eq!(
        parse_github_header(GITHUB_DOC_HEADER),
        Ok(hex::decode(hex_part).unwrap())
    );
    for bad in [
        hex_part.to_owned(),                  // no prefix
        format!("sha1={hex_part}"),           // wrong algorithm
        format!("sha256={}", &hex_part[2..]), // short
        format!("sha256={hex_part}00"),       // long
        "sha256=zz".to_owned(),
    ] {
        assert!(
            matches!(parse_github_header(&bad), Err(WebhookError::Malformed(_))),
            "{bad}"
        );
    }
}

#[test]
fn shopify_header_format_errors() {
    assert_eq!(
        parse_shopify_header("W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
        Ok(hex::decode(RFC4231_HEX).unwrap())
    );
    for bad in [
        "",
        "not base64!",
        "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexY",
        RFC4231_HEX,
    ] {
        assert!(
            matches!(parse_shopify_header(bad), Err(WebhookError::Malformed(_))),
            "{bad}"
        );
    }
}

// --- Provider spec TOML ---------------------------------------------------------------------

#[test]
fn scheme_deserializes_with_defaults() {
    let scheme: SignatureScheme = toml::from_str(r#"scheme = "stripe""#).unwrap();
    assert_eq!(scheme, stripe());
    let scheme: SignatureScheme = toml::from_str(r#"scheme = "github""#).unwrap();
    assert_eq!(scheme, github());
    let scheme: SignatureScheme = toml::from_str(r#"scheme = "shopify""#).unwrap();
    assert_eq!(scheme, shopify());
    let scheme: SignatureScheme =
        toml::from_str("scheme = \"stripe\"\nheader = \"X-Sig\"\ntolerance_secs = 60").unwrap();
    assert_eq!(
        scheme,
        SignatureScheme::Stripe {
            header: "X-Sig".into(),
            tolerance_secs: 60
        }
    );
}

#[test]
fn scheme_rejects_unknown_fields_and_schemes() {
    assert!(toml::from_str::<SignatureScheme>("scheme = \"github\"\ntolerance_secs = 5").is_err());
    assert!(toml::from_str::<SignatureScheme>(r#"scheme = "paypal""#).is_err());
    assert!(toml::from_str::<SignatureScheme>(r#"header = "x-sig""#).is_err());
}

// --- Properties -----------------------------------------------------------------------------

fn any_scheme() -> impl Strategy<Value = SignatureScheme> {
    prop_oneof![Just(stripe()), Just(github()), Just(shopify())]
}

proptest! {
    #[test]
    fn parsers_never_panic(s in any::<String>()) {
        let _ = parse_stripe_header(&s);
        let _ = parse_github_header(&s);
        let _ = parse_shopify_header(&s);
    }

    #[test]
    fn stripe_parser_never_panics_on_near_misses(
        s in "(t|v1|v0|x)=[-+0-9a-fA-F]{0,70}(,(t|v1|v0)=[-+0-9a-fA-F]{0,70}){0,4},?"
    ) {
        let _ = parse_stripe_header(&s);
    }

    #[test]
    fn verify_never_panics(
        scheme in any_scheme(),
        value in proptest::collection::vec(any::<u8>(), 0..200),
        secret in proptest::collection::vec(any::<u8>(), 0..80),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        now in any::<i64>(),
    ) {
        let mut map = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            let (name, _) = sign(&scheme, b"k", b"", 0);
            map.insert(name, value);
        }
        let _ = verify(&scheme, &secret, &map, &body, now);
    }

    #[test]
    fn signed_bodies_verify_and_flipped_bits_do_not(
        scheme in any_scheme(),
        secret in proptest::collection::vec(any::<u8>(), 1..80),
        body in proptest::collection::vec(any::<u8>(), 1..200),
        now in any::<i64>(),
        index in any::<prop::sample::Index>(),
    ) {
        let map = signed(&scheme, &secret, &body, now);
        prop_assert_eq!(verify(&scheme, &secret, &map, &body, now), Ok(()));
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= 0x01;
        prop_assert_eq!(verify(&scheme, &secret, &map, &tampered, now), Err(WebhookError::BadSignature));
    }
}

#[test]
fn an_empty_secret_verifies_nothing() {
    for scheme in [
        SignatureScheme::Stripe {
            header: "stripe-signature".into(),
            tolerance_secs: 300,
        },
        SignatureScheme::Github {
            header: "x-hub-signature-256".into(),
        },
        SignatureScheme::Shopify {
            header: "x-shopify-hmac-sha256".into(),
        },
    ] {
        let (name, value) = sign(&scheme, b"", b"{}", 1_700_000_000);
        let mut headers = http::HeaderMap::new();
        headers.insert(name, value);
        assert_eq!(
            verify(&scheme, b"", &headers, b"{}", 1_700_000_000),
            Err(WebhookError::BadSignature),
            "{scheme:?}"
        );
    }
}
