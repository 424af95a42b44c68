//! Deterministic fake data: the same seed sizes always give the same records, with names,
//! emails, companies and phone numbers that look real but use reserved domains
//! (`example.com`) and fictional numbers (555-01xx).

use serde_json::{Map, Value};

use super::records::{rfc3339, StreamKind, ORDER_STATUSES};

const FIRST: [&str; 40] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Lucas", "Isabella", "Amara",
    "Mia", "Ethan", "Harper", "Kenji", "Chloe", "Diego", "Priya", "Oscar", "Zoe", "Felix", "Nora",
    "Hugo", "Leah", "Samuel", "Ingrid", "Omar", "Hannah", "Tomas", "Grace", "Arjun", "Elena",
    "Malik", "Freya", "Daniel", "Yara", "Jonas", "Clara", "Ravi", "Maya", "Theo",
];

const LAST: [&str; 40] = [
    "Johnson",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Kowalski",
    "Silva",
    "Patel",
    "Andersen",
    "Kim",
    "Dubois",
    "Tanaka",
    "Murphy",
    "Schmidt",
    "Haddad",
    "Novak",
    "Lindqvist",
    "Moreau",
    "Costa",
    "Ibrahim",
    "Walsh",
    "Fischer",
    "Reyes",
    "Larsen",
    "Ahmed",
    "Bauer",
    "Santos",
    "Nakamura",
    "Brennan",
    "Weber",
    "Cohen",
    "Okonkwo",
    "Petrov",
    "Jensen",
    "Alvarez",
    "Singh",
    "Romano",
    "Park",
    "Hughes",
    "Quinn",
    "Sato",
];

const COMPANY_FIRST: [&str; 20] = [
    "Northwind",
    "Bluebird",
    "Granite",
    "Silver Pine",
    "Redwood",
    "Harbor",
    "Lumen",
    "Summit",
    "Copperleaf",
    "Brightwater",
    "Ironclad",
    "Juniper",
    "Oakridge",
    "Riverstone",
    "Starling",
    "Tidewater",
    "Evergreen",
    "Keystone",
    "Maple Lane",
    "Westfield",
];

const COMPANY_LAST: [&str; 20] = [
    "Traders",
    "Logistics",
    "Analytics",
    "Supply Co",
    "Labs",
    "Outfitters",
    "Systems",
    "Foods",
    "Studios",
    "Health",
    "Robotics",
    "Finance",
    "Media",
    "Energy",
    "Bakery",
    "Consulting",
    "Mobility",
    "Apparel",
    "Software",
    "Farms",
];

const AREA_CODES: [u32; 10] = [212, 312, 415, 512, 617, 206, 303, 404, 503, 646];

/// 2024-01-01T00:00:00Z: seeded records were last updated from here on, five minutes apart.
const SEED_EPOCH_MS: i64 = 1_704_067_200_000;
const SEED_STEP_MS: i64 = 5 * 60 * 1000;
const THIRTY_DAYS_MS: u64 = 30 * 24 * 3600 * 1000;

/// SplitMix64: a tiny, well-mixed, stable hash so fake values don't depend on a crate version.
fn mix(stream: StreamKind, n: u64) -> u64 {
    let mut z = (n ^ ((stream.index() as u64) << 56)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(list: &[T], h: u64) -> T {
    list[(h % list.len() as u64) as usize]
}

/// The formatted id of record number `n` (1-based), e.g. `cus_000042`.
pub(crate) fn id(kind: StreamKind, n: u64) -> String {
    format!("{}_{n:06}", kind.prefix())
}

/// Name of company number `n`; the first 400 are distinct.
fn company_name(n: u64) -> String {
    let i = n.saturating_sub(1);
    let first = COMPANY_FIRST[(i % 20) as usize];
    let last = COMPANY_LAST[((i / 20 + 3 * (i % 20)) % 20) as usize];
    format!("{first} {last}")
}

/// Domain of company number `n`; all distinct.
fn company_domain(n: u64) -> String {
    let slug: String = company_name(n)
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' { '-' } else { c })
        .collect();
    let round = n.saturating_sub(1) / 400;
    if round == 0 {
        format!("{slug}.example.com")
    } else {
        format!("{slug}-{}.example.com", round + 1)
    }
}

/// A fake field value.
enum Fake {
    Text(String),
    Int(u64),
    Null,
}

impl Fake {
    fn reference(kind: StreamKind, count: u64, h: u64) -> Fake {
        if count == 0 {
            Fake::Null
        } else {
            Fake::Text(id(kind, h % count + 1))
        }
    }

    fn into_value(self) -> Value {
        match self {
            Fake::Text(s) => Value::String(s),
            Fake::Int(n) => Value::from(n),
            Fake::Null => Value::Null,
        }
    }

    fn write_json(&self, out: &mut String) {
        match self {
            // Fake text is built from the plain ASCII lists above (a test checks them), so it
            // needs no escaping — and escaping 400,000 records is slow in debug builds.
            Fake::Text(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            Fake::Int(n) => out.push_str(&n.to_string()),
            Fake::Null => out.push_str("null"),
        }
    }
}

/// Writable fields of fake record number `n`. `customers` and `companies` are how many of
/// those exist, for orders' and contacts' references.
fn fake(kind: StreamKind, n: u64, customers: u64, companies: u64) -> Vec<(&'static str, Fake)> {
    let h = mix(kind, n);
    let first = pick(&FIRST, h);
    let last = pick(&LAST, h >> 16);
    let (lower_first, lower_last) = (first.to_ascii_lowercase(), last.to_ascii_lowercase());
    match kind {
        StreamKind::Customers => vec![
            (
                "email",
                Fake::Text(format!("{lower_first}.{lower_last}{n}@example.com")),
            ),
            ("first_name", Fake::Text(first.to_owned())),
            ("last_name", Fake::Text(last.to_owned())),
        ],
        StreamKind::Orders => vec![
            ("currency", Fake::Text("USD".to_owned())),
            (
                "customer_id",
                Fake::reference(StreamKind::Customers, customers, h >> 8),
            ),
            (
                "status",
                Fake::Text(pick(&ORDER_STATUSES[..3], h >> 44).to_owned()),
            ),
            (
                "total_cents",
                Fake::Int((5 + (h >> 24) % 495) * 100 + pick(&[0, 49, 95, 99], h >> 40)),
            ),
        ],
        StreamKind::Contacts => {
            let company = (companies > 0).then(|| (h >> 8) % companies + 1);
            let domain = company.map_or_else(|| "example.org".to_owned(), company_domain);
            vec![
                (
                    "company_id",
                    company.map_or(Fake::Null, |c| Fake::Text(id(StreamKind::Companies, c))),
                ),
                (
                    "email",
                    Fake::Text(format!("{lower_first}.{lower_last}@{domain}")),
                ),
                ("name", Fake::Text(format!("{first} {last}"))),
                (
                    "phone",
                    Fake::Text(format!(
                        "+1-{}-555-01{:02}",
                        pick(&AREA_CODES, h >> 32),
                        (h >> 48) % 100
                    )),
                ),
            ]
        }
        StreamKind::Companies => {
            vec![
                ("domain", Fake::Text(company_domain(n))),
                ("name", Fake::Text(company_name(n))),
            ]
        }
    }
}

/// Writable fields of fake record number `n`, for [`super::Sandbox::insert`].
pub(crate) fn fake_fields(
    kind: StreamKind,
    n: u64,
    customers: u64,
    companies: u64,
) -> Map<String, Value> {
    fake(kind, n, customers, companies)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_value()))
        .collect()
}

/// Seeded record number `n` as compact JSON (keys sorted, as `serde_json` writes a map), with
/// its `updated_at` in Unix ms. Written directly: seeding 400,000 records through
/// `serde_json::Value` is needlessly slow.
pub(crate) fn seed_json(kind: StreamKind, n: u64, customers: u64, companies: u64) -> (String, i64) {
    let (created, updated) = seed_times(kind, n);
    let mut fields = fake(kind, n, customers, companies);
    fields.push(("id", Fake::Text(id(kind, n))));
    fields.push(("created_at", Fake::Text(rfc3339(created))));
    fields.push(("updated_at", Fake::Text(rfc3339(updated))));
    fields.sort_unstable_by_key(|(k, _)| *k);
    let mut out = String::with_capacity(256);
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        value.write_json(&mut out);
    }
    out.push('}');
    (out, updated)
}

/// `(created_at, updated_at)` in Unix milliseconds for seeded record number `n`; `updated_at`
/// grows with `n`, and `created_at` is up to 30 days earlier.
pub(crate) fn seed_times(kind: StreamKind, n: u64) -> (i64, i64) {
    let updated = SEED_EPOCH_MS + (kind.index() as i64) * 1000 + (n as i64) * SEED_STEP_MS;
    let age_s = (mix(kind, n) >> 8) % (THIRTY_DAYS_MS / 1000);
    (updated - (age_s as i64) * 1000, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fakes_are_deterministic_and_plausible() {
        let a = fake_fields(StreamKind::Contacts, 7, 10, 10);
        assert_eq!(a, fake_fields(StreamKind::Contacts, 7, 10, 10));
        let email = a["email"].as_str().unwrap_or_default();
        assert!(email.ends_with(".example.com"), "{email}");
        assert_eq!(id(StreamKind::Customers, 1), "cus_000001");
        let names: std::collections::HashSet<String> = (1..=400).map(company_name).collect();
        assert_eq!(names.len(), 400);
        assert_ne!(company_domain(1), company_domain(401));
        let (created, updated) = seed_times(StreamKind::Orders, 3);
        assert!(created <= updated);
    }

    #[test]
    fn word_lists_need_no_json_escaping() {
        let words = FIRST
            .iter()
            .chain(&LAST)
            .chain(&COMPANY_FIRST)
            .chain(&COMPANY_LAST);
        for w in words {
            assert!(
                w.bytes().all(|b| b.is_ascii_alphabetic() || b == b' '),
                "{w:?}"
            );
        }
    }

    #[test]
    fn seed_json_is_what_serde_json_would_write() {
        for kind in StreamKind::ALL {
            let (json, updated) = seed_json(kind, 5, 3, 0);
            let value: Value = serde_json::from_str(&json).expect("valid JSON");
            assert_eq!(value.to_string(), json, "{kind:?}");
            assert_eq!(value["updated_at"], rfc3339(updated));
            let mut fields = fake_fields(kind, 5, 3, 0);
            fields.retain(|k, _| value.get(k).is_some());
            assert_eq!(
                fields.len(),
                kind.fields().len(),
                "{kind:?}: writable fields match"
            );
        }
    }
}
