//! The built-in specs load, and the loader's errors name the file, the field and the problem.

use connectors::spec::{builtin_specs, load_str};

#[test]
fn builtin_specs_load() {
    let specs = builtin_specs().unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "hubspot",
            "shopify",
            "stripe",
            "salesforce",
            "github",
            "sandbox-shop",
            "sandbox-crm"
        ]
    );
    for spec in &specs {
        assert!(!spec.streams.is_empty(), "{} has streams", spec.id);
    }
}

fn error_of(text: &str) -> String {
    load_str("bad.toml", text).unwrap_err().to_string()
}

const BASE: &str = r#"
id = "x"
name = "X"
base_url = "https://api.x.example"
[auth]
type = "none"
"#;

#[test]
fn errors_name_file_field_and_problem() {
    let cases = [
        (format!("extra = 1\n{BASE}"), "bad.toml: line 1"),
        (BASE.replace("id = \"x\"", "id = \"X Y\""), "bad.toml: id: use lowercase letters"),
        (BASE.replace("https://api.x.example", "ftp://x"), "bad.toml: base_url: must be an http or https URL"),
        (BASE.replace("https://api.x.example", "https://{shop}.x.example"), "bad.toml: base_url: `{shop}` is not a connection field"),
        (
            format!("{BASE}[[streams]]\nname = \"s\"\npath = \"/s\"\nprimary_key = \"id\"\npagination = {{ type = \"cursor\", param = \"c\" }}\n"),
            "bad.toml: streams[0].pagination: set exactly one of next_pointer and last_record_field",
        ),
        (
            format!("{BASE}[[streams]]\nname = \"s\"\npath = \"s\"\nprimary_key = \"id\"\npagination = {{ type = \"none\" }}\n"),
            "bad.toml: streams[0].path: must start with `/`",
        ),
        (
            format!("{BASE}[[streams]]\nname = \"s\"\npath = \"/s\"\nrecords = \"data\"\nprimary_key = \"id\"\npagination = {{ type = \"none\" }}\n"),
            "bad.toml: streams[0].records: `data` is not a JSON pointer",
        ),
        (
            format!("{BASE}[[streams]]\nname = \"s\"\npath = \"/s\"\nprimary_key = \"id\"\nquery = {{ q = \"x > {{cursor}}\" }}\npagination = {{ type = \"none\" }}\n"),
            "bad.toml: streams[0].query: `{cursor}` needs an [incremental] section",
        ),
        (
            format!("{BASE}[[streams]]\nname = \"s\"\npath = \"/s\"\nprimary_key = \"id\"\npagination = {{ type = \"none\" }}\n[[streams]]\nname = \"s\"\npath = \"/t\"\nprimary_key = \"id\"\npagination = {{ type = \"none\" }}\n"),
            "bad.toml: streams[1].name: `s` is declared twice",
        ),
        (
            format!("{BASE}[webhooks]\nsignature = {{ scheme = \"github\" }}\n"),
            "bad.toml: webhooks: name delivery_id_header or delivery_id_pointer",
        ),
    ];
    for (text, expected) in cases {
        let err = error_of(&text);
        assert!(
            err.starts_with(expected),
            "expected `{expected}`, got `{err}`"
        );
    }
}

proptest::proptest! {
    #[test]
    fn the_loader_never_panics(text in ".{0,400}") {
        let _ = load_str("fuzz.toml", &text);
    }

    #[test]
    fn the_loader_never_panics_on_near_specs(cut in 0usize..2000, junk in ".{0,20}") {
        let mut text = include_str!("../providers/shopify.toml").to_owned();
        let cut = cut.min(text.len());
        let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(cut, &junk);
        let _ = load_str("fuzz.toml", &text);
    }
}
