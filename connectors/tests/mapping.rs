//! The mapping's serialized shape (JSON and TOML, as the UI stores it), properties that must hold
//! for any input, and its speed.

use std::collections::BTreeMap;

use connectors::mapping::{identity, FieldMap, Mapping, Transform};
use proptest::prelude::*;
use serde_json::{json, Value};

const TOML: &str = r#"
[[fields]]
to = "contact.email"
op = "rename"
from = "properties.email"

[[fields]]
to = "source"
op = "constant"
value = "hubspot"

[[fields]]
to = "name"
op = "concat"
from = ["first_name", "last_name"]
separator = " "

[[fields]]
to = "created"
op = "date_format"
from = "createdAt"
input = "unix_ms"
output = "[year]-[month]-[day]"

[[fields]]
to = "status"
op = "lookup"
from = "/lifecycle.stage"
table = { lead = "new", customer = "won" }
default = "other"
"#;

fn expected() -> Mapping {
    let field = |to: &str, transform| FieldMap {
        to: to.into(),
        transform,
    };
    let table = BTreeMap::from([
        ("lead".to_owned(), json!("new")),
        ("customer".to_owned(), json!("won")),
    ]);
    Mapping {
        fields: vec![
            field(
                "contact.email",
                Transform::Rename {
                    from: "properties.email".into(),
                },
            ),
            field(
                "source",
                Transform::Constant {
                    value: json!("hubspot"),
                },
            ),
            field(
                "name",
                Transform::Concat {
                    from: vec!["first_name".into(), "last_name".into()],
                    separator: " ".into(),
                },
            ),
            field(
                "created",
                Transform::DateFormat {
                    from: "createdAt".into(),
                    input: Some("unix_ms".into()),
                    output: Some("[year]-[month]-[day]".into()),
                },
            ),
            field(
                "status",
                Transform::Lookup {
                    from: "/lifecycle.stage".into(),
                    table,
                    default: Some(json!("other")),
                },
            ),
        ],
    }
}

/// The JSON the UI reads and writes; changing it breaks stored mappings.
fn expected_json() -> Value {
    json!({ "fields": [
        { "to": "contact.email", "op": "rename", "from": "properties.email" },
        { "to": "source", "op": "constant", "value": "hubspot" },
        { "to": "name", "op": "concat", "from": ["first_name", "last_name"], "separator": " " },
        {
            "to": "created", "op": "date_format", "from": "createdAt",
            "input": "unix_ms", "output": "[year]-[month]-[day]",
        },
        {
            "to": "status", "op": "lookup", "from": "/lifecycle.stage",
            "table": { "lead": "new", "customer": "won" }, "default": "other",
        },
    ]})
}

#[test]
fn a_mapping_written_as_toml_reads_and_round_trips() {
    let mapping: Mapping = toml::from_str(TOML).unwrap();
    assert_eq!(mapping, expected());
    let written = toml::to_string(&mapping).unwrap();
    assert_eq!(
        toml::from_str::<Mapping>(&written).unwrap(),
        mapping,
        "{written}"
    );
}

#[test]
fn a_mapping_written_as_json_reads_and_round_trips() {
    let mapping: Mapping = serde_json::from_value(expected_json()).unwrap();
    assert_eq!(mapping, expected());
    assert_eq!(serde_json::to_value(&mapping).unwrap(), expected_json());
    let text = serde_json::to_string_pretty(&mapping).unwrap();
    assert_eq!(serde_json::from_str::<Mapping>(&text).unwrap(), mapping);
}

#[test]
fn optional_settings_default_and_are_left_out_when_absent() {
    let mapping: Mapping = serde_json::from_value(json!({ "fields": [
        { "to": "n", "op": "concat", "from": ["a", "b"] },
        { "to": "d", "op": "date_format", "from": "at" },
        { "to": "l", "op": "lookup", "from": "x", "table": {} },
    ]}))
    .unwrap();
    assert_eq!(
        mapping.fields[0].transform,
        Transform::Concat {
            from: vec!["a".into(), "b".into()],
            separator: String::new()
        }
    );
    assert_eq!(
        mapping.fields[1].transform,
        Transform::DateFormat {
            from: "at".into(),
            input: None,
            output: None
        }
    );
    let written = serde_json::to_value(&mapping).unwrap();
    assert_eq!(
        written["fields"][1],
        json!({ "to": "d", "op": "date_format", "from": "at" })
    );
    assert_eq!(
        written["fields"][2],
        json!({ "to": "l", "op": "lookup", "from": "x", "table": {} })
    );
}

#[test]
fn unknown_keys_and_ops_are_refused() {
    let read = |v: Value| serde_json::from_value::<Mapping>(v).map_err(|e| e.to_string());
    let typo =
        read(json!({ "fields": [{ "to": "n", "op": "concat", "from": ["a"], "seperator": " " }]}));
    assert!(typo.unwrap_err().contains("seperator"));
    assert!(read(json!({ "fields": [], "extra": 1 }))
        .unwrap_err()
        .contains("extra"));
    assert!(
        read(json!({ "fields": [{ "to": "n", "op": "uppercase", "from": "a" }]}))
            .unwrap_err()
            .contains("uppercase")
    );
    assert!(read(json!({ "fields": [{ "op": "rename", "from": "a" }]}))
        .unwrap_err()
        .contains("to"));
    assert!(toml::from_str::<Mapping>(
        "[[fields]]\nto = \"a\"\nop = \"rename\"\nfrom = \"a\"\nform = \"b\"\n"
    )
    .is_err());
}

#[test]
fn a_mapping_read_from_toml_applies_end_to_end() {
    let mapping: Mapping = toml::from_str(TOML).unwrap();
    mapping
        .validate(Some(&[
            "properties",
            "first_name",
            "last_name",
            "createdAt",
            "lifecycle.stage",
        ]))
        .unwrap();
    let record = json!({
        "properties": { "email": "ada@example.com" },
        "first_name": "Ada", "last_name": null,
        "createdAt": 1_709_294_400_000_i64,
        "lifecycle.stage": "customer",
    });
    let out = mapping.compile().unwrap().apply(&record).unwrap();
    let expected = json!({
        "contact": { "email": "ada@example.com" }, "source": "hubspot", "name": "Ada",
        "created": "2024-03-01", "status": "won",
    });
    assert_eq!(out, expected);
}

/// Keys a mapping below reads, mixed with arbitrary ones, so generated records hit its paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "a",
            "b",
            "lines",
            "0",
            "1",
            "x",
            "at",
            "weird.key",
            ""
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        prop::sample::select(vec![
            "2024-03-01T12:00:00Z",
            "1709294400",
            "03/01/2024",
            "lead",
            " ",
            "-1e300"
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every transform, reading paths that generated records often contain.
fn every_transform() -> Mapping {
    serde_json::from_value(json!({ "fields": [
        { "to": "a", "op": "rename", "from": "a" },
        { "to": "deep.0", "op": "rename", "from": "lines.0.x" },
        { "to": "deep.w", "op": "rename", "from": "/weird.key/1" },
        { "to": "c", "op": "constant", "value": [1, "two"] },
        { "to": "n", "op": "concat", "from": ["a", "b", "0", "lines.1"], "separator": "," },
        { "to": "d1", "op": "date_format", "from": "at" },
        { "to": "d2", "op": "date_format", "from": "a", "input": "unix", "output": "unix_ms" },
        { "to": "d3", "op": "date_format", "from": "b", "input": "unix_ms", "output": "rfc3339" },
        {
            "to": "d4", "op": "date_format", "from": "x",
            "input": "[month]/[day]/[year]", "output": "rfc2822",
        },
        { "to": "l", "op": "lookup", "from": "b", "table": { "lead": 1, "true": 2 }, "default": 0 },
    ]}))
    .unwrap()
}

/// Path-like strings: the characters that matter to the parsers, and anything at all.
fn path_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./~ ]{0,10}",
        "/[ab0/~.]{0,8}",
        "\\[[a-z_ :]{0,12}\\]?[-/]?",
        any::<String>()
    ]
}

proptest! {
    #[test]
    fn apply_never_panics_on_any_json(record in json_value()) {
        let result = every_transform().compile().unwrap().apply(&record);
        if let Ok(out) = result {
            prop_assert!(out.is_object());
        }
    }

    #[test]
    fn validate_never_panics_on_any_path_or_format(
        to in path_text(), from in path_text(), input in path_text(), output in path_text(),
        known in prop::collection::vec(path_text(), 0..3), record in json_value(),
    ) {
        let transforms = [
            Transform::Rename { from: from.clone() },
            Transform::Concat { from: vec![from.clone(), to.clone()], separator: input.clone() },
            Transform::DateFormat {
                from: from.clone(),
                input: Some(input.clone()),
                output: Some(output.clone()),
            },
            Transform::DateFormat { from: from.clone(), input: None, output: Some(output) },
        ];
        let to_field = |transform| FieldMap { to: to.clone(), transform };
        let fields: Vec<FieldMap> = transforms.into_iter().map(to_field).collect();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        for field in &fields {
            let one = Mapping { fields: vec![field.clone()] };
            let _ = one.validate(Some(&known)).map_err(|e| e.to_string());
            if let Ok(compiled) = one.compile() {
                let _ = compiled.apply(&record);
            }
        }
        let mapping = Mapping { fields };
        prop_assert!(mapping.validate(None).is_err(), "four fields cannot share one destination");
    }

    #[test]
    fn identity_reproduces_a_flat_record(
        record in prop::collection::btree_map(key(), json_value(), 0..8),
    ) {
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        let mapping = identity(&keys);
        mapping.validate(Some(&keys)).unwrap();
        let record = Value::Object(record.clone().into_iter().collect());
        prop_assert_eq!(mapping.compile().unwrap().apply(&record).unwrap(), record);
    }
}
