//! Each transform, with nested, array and JSON-pointer paths and missing values.

use serde_json::{json, Value};

use super::super::*;
use super::{apply, field, rename};

#[test]
fn rename_copies_nested_values_and_missing_gives_null() {
    let record = json!({"id": 7, "properties": {"email": "a@x.io", "tags": ["a", "b"]}});
    let out = apply(
        vec![
            rename("id", "id"),
            rename("email", "properties.email"),
            rename("tags", "properties.tags"),
            rename("phone", "properties.phone"),
            rename("deep", "properties.email.not_an_object"),
        ],
        record,
    );
    let expected =
        json!({"id": 7, "email": "a@x.io", "tags": ["a", "b"], "phone": null, "deep": null});
    assert_eq!(out, Ok(expected));
}

#[test]
fn rename_indexes_arrays_and_reads_json_pointers() {
    let record = json!({"lines": [{"sku": "A1"}, {"sku": "B2"}], "weird.key": [10, 20], "a/b": 1});
    let out = apply(
        vec![
            rename("first_sku", "lines.0.sku"),
            rename("second_sku", "/lines/1/sku"),
            rename("third_sku", "lines.2.sku"),
            rename("weird", "/weird.key/1"),
            rename("slash", "/a~1b"),
            rename("dotted_miss", "weird.key"),
        ],
        record,
    );
    let expected = json!({
        "first_sku": "A1", "second_sku": "B2", "third_sku": null,
        "weird": 20, "slash": 1, "dotted_miss": null,
    });
    assert_eq!(out, Ok(expected));
}

#[test]
fn constant_writes_its_value() {
    let out = apply(
        vec![
            field(
                "source",
                Transform::Constant {
                    value: json!("hubspot"),
                },
            ),
            field(
                "meta",
                Transform::Constant {
                    value: json!({"v": [1, null]}),
                },
            ),
        ],
        json!({}),
    );
    assert_eq!(
        out,
        Ok(json!({"source": "hubspot", "meta": {"v": [1, null]}}))
    );
}

#[test]
fn concat_joins_present_parts_and_skips_missing_or_null_ones() {
    let concat = |from: &[&str], separator: &str| {
        let from = from.iter().map(|&s| s.to_owned()).collect();
        vec![field(
            "out",
            Transform::Concat {
                from,
                separator: separator.into(),
            },
        )]
    };
    let record =
        json!({"first": "Ada", "last": "Lovelace", "middle": null, "n": 3, "ok": true, "f": 1.5});
    let out = |from: &[&str], sep: &str| {
        apply(concat(from, sep), record.clone()).map(|v| v["out"].clone())
    };
    assert_eq!(out(&["first", "last"], " "), Ok(json!("Ada Lovelace")));
    assert_eq!(
        out(&["first", "middle", "nope", "last"], " "),
        Ok(json!("Ada Lovelace"))
    );
    assert_eq!(out(&["n", "ok", "f"], "-"), Ok(json!("3-true-1.5")));
    assert_eq!(out(&["first", "last"], ""), Ok(json!("AdaLovelace")));
    assert_eq!(
        out(&["middle", "nope"], " "),
        Ok(Value::Null),
        "nothing to join is null"
    );
    let err = apply(
        concat(&["first", "tags"], " "),
        json!({"first": "a", "tags": ["x"]}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "field 1 (`out`): `tags` holds an array, but concat works on text, numbers and \
         true/false only"
    );
}

#[test]
fn date_format_reformats_and_reports_unparseable_values() {
    let date = |input: Option<&str>, output: Option<&str>| {
        let (input, output) = (input.map(str::to_owned), output.map(str::to_owned));
        vec![
            rename("id", "id"),
            field(
                "at",
                Transform::DateFormat {
                    from: "created".into(),
                    input,
                    output,
                },
            ),
        ]
    };
    let at = |fields, created: Value| {
        apply(fields, json!({"id": 1, "created": created})).map(|v| v["at"].clone())
    };
    assert_eq!(
        at(date(None, Some("unix")), json!("2024-03-01T12:00:00+01:00")),
        Ok(json!(1_709_290_800))
    );
    assert_eq!(
        at(date(Some("unix_ms"), None), json!(0)),
        Ok(json!("1970-01-01T00:00:00Z"))
    );
    assert_eq!(
        at(
            date(Some("[month]/[day]/[year]"), Some("[year]-[month]-[day]")),
            json!("03/01/2024")
        ),
        Ok(json!("2024-03-01"))
    );
    assert_eq!(at(date(None, None), Value::Null), Ok(Value::Null));
    assert_eq!(at(date(None, None), json!("")), Ok(Value::Null));
    assert_eq!(
        apply(date(None, None), json!({"id": 1})).map(|v| v["at"].clone()),
        Ok(Value::Null)
    );

    let err = at(date(None, None), json!("01/03/2024")).unwrap_err();
    let MappingError::Value { index, to, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*index, to.as_str()), (1, "at"));
    assert!(
        reason.starts_with("`created` holds \"01/03/2024\", which is not an RFC 3339"),
        "{reason}"
    );
    assert!(
        err.to_string()
            .starts_with("field 2 (`at`): `created` holds"),
        "{err}"
    );
}

#[test]
fn lookup_maps_through_the_table_with_an_optional_default() {
    let table: BTreeMap<String, Value> = [
        ("active", json!(1)),
        ("2", json!("two")),
        ("true", json!("yes")),
    ]
    .map(|(k, v)| (k.into(), v))
    .into();
    let lookup = |default: Option<Value>| {
        vec![field(
            "out",
            Transform::Lookup {
                from: "v".into(),
                table: table.clone(),
                default,
            },
        )]
    };
    let out = |default: Option<Value>, v: Value| {
        apply(lookup(default), json!({"v": v})).map(|o| o["out"].clone())
    };
    assert_eq!(out(None, json!("active")), Ok(json!(1)));
    assert_eq!(
        out(None, json!(2)),
        Ok(json!("two")),
        "numbers match by their text"
    );
    assert_eq!(out(None, json!(true)), Ok(json!("yes")));
    assert_eq!(
        out(None, json!("gone")),
        Ok(Value::Null),
        "no match and no default is null"
    );
    assert_eq!(out(Some(json!(0)), json!("gone")), Ok(json!(0)));
    assert_eq!(
        out(Some(json!(0)), Value::Null),
        Ok(json!(0)),
        "null takes the default"
    );
    assert_eq!(
        apply(lookup(Some(json!(0))), json!({})).map(|o| o["out"].clone()),
        Ok(json!(0))
    );
    assert!(matches!(
        out(None, json!({"a": 1})),
        Err(MappingError::Value { index: 0, .. })
    ));
}

#[test]
fn destination_paths_build_nested_objects() {
    let record = json!({"email": "a@x.io", "city": "Oslo", "zip": "0150"});
    let out = apply(
        vec![
            rename("contact.email", "email"),
            rename("contact.address.city", "city"),
            rename("/contact/address/post.code", "zip"),
            rename("lines.0", "city"),
            field(
                "contact.kind",
                Transform::Constant {
                    value: json!("lead"),
                },
            ),
        ],
        record,
    );
    let expected = json!({
        "contact": {
            "email": "a@x.io", "kind": "lead",
            "address": {"city": "Oslo", "post.code": "0150"},
        },
        "lines": {"0": "Oslo"},
    });
    assert_eq!(out, Ok(expected));
}

#[test]
fn records_that_are_not_objects_give_nulls() {
    let mapping = Mapping {
        fields: vec![rename("a", "a"), rename("b", "0")],
    }
    .compile()
    .unwrap();
    assert_eq!(
        mapping.apply(&json!("text")),
        Ok(json!({"a": null, "b": null}))
    );
    assert_eq!(
        mapping.apply(&json!(["x"])),
        Ok(json!({"a": null, "b": "x"}))
    );
}

#[test]
fn identity_copies_each_field_even_with_dots_in_its_name() {
    let mapping = identity(&["id", "weird.key", "/slash", ""]);
    assert_eq!(mapping.fields[1], rename("/weird.key", "/weird.key"));
    let record = json!({"id": 1, "weird.key": 2, "/slash": 3, "": 4, "other": 5});
    let expected = json!({"id": 1, "weird.key": 2, "/slash": 3, "": 4});
    assert_eq!(mapping.compile().unwrap().apply(&record), Ok(expected));
    assert_eq!(
        mapping.validate(Some(&["id", "weird.key", "/slash", ""])),
        Ok(())
    );
}
