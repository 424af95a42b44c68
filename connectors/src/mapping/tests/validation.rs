//! Every way a mapping can be refused, and the messages people see.

use super::super::*;
use super::{check, field, rename};

#[test]
fn empty_targets_are_refused() {
    for to in ["", "  "] {
        let err = check(vec![rename("a", "a"), rename(to, "b")], None);
        assert_eq!(err, MappingError::EmptyTarget { index: 1 });
        assert_eq!(err.to_string(), "field 2 has no destination: `to` is empty");
    }
}

#[test]
fn duplicate_and_overlapping_targets_are_refused() {
    let dup = |to: &str, other: &str| MappingError::DuplicateTarget {
        index: 1,
        to: to.into(),
        other: other.into(),
    };
    let case =
        |first: &str, second: &str| check(vec![rename(first, "a"), rename(second, "b")], None);
    assert_eq!(case("email", "email"), dup("email", "email"));
    assert_eq!(
        case("a.b", "/a/b"),
        dup("/a/b", "a.b"),
        "the same path spelled two ways"
    );
    assert_eq!(
        case("a", "a.b"),
        dup("a.b", "a"),
        "a value cannot also hold fields"
    );
    assert_eq!(
        case("a.b", "a"),
        dup("a", "a.b"),
        "an object of fields cannot also be a value"
    );
    assert_eq!(
        Mapping {
            fields: vec![rename("a.b", "a"), rename("a.c", "b")]
        }
        .validate(None),
        Ok(())
    );
    assert!(case("email", "email")
        .to_string()
        .starts_with("field 2 (`email`) clashes with the destination `email`"));
}

#[test]
fn bad_paths_are_refused_with_the_field_and_path() {
    let err = check(
        vec![rename("ok", "a"), rename("email", "properties..email")],
        None,
    );
    let MappingError::BadPath {
        index,
        to,
        path,
        reason,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*index, to.as_str(), path.as_str()),
        (1, "email", "properties..email")
    );
    assert!(reason.contains("empty segment"), "{reason}");
    assert!(err
        .to_string()
        .starts_with("field 2 (`email`) has a bad path `properties..email`: "));

    let path_of = |fields| match check(fields, None) {
        MappingError::BadPath { path, reason, .. } => (path, reason),
        other => panic!("{other:?}"),
    };
    assert_eq!(path_of(vec![rename("a.", "a")]).0, "a.");
    assert_eq!(path_of(vec![rename("a", "/x~2")]).0, "/x~2");
    assert_eq!(path_of(vec![rename("a", "")]).0, "");
    let empty_concat = Transform::Concat {
        from: vec![],
        separator: " ".into(),
    };
    let (path, reason) = path_of(vec![field("a", empty_concat)]);
    assert_eq!(path, "[]");
    assert!(reason.contains("at least one"), "{reason}");
    let bad_part = Transform::Concat {
        from: vec!["x".into(), "y..z".into()],
        separator: String::new(),
    };
    assert_eq!(path_of(vec![field("a", bad_part)]).0, "y..z");
}

#[test]
fn unknown_source_fields_are_refused_when_the_source_is_known() {
    let known: &[&str] = &["first", "last", "properties", "weird.key"];
    let err = check(
        vec![
            rename("a", "first"),
            rename("b", "last"),
            rename("c", "last"),
            rename("email", "x"),
        ],
        Some(known),
    );
    assert_eq!(
        err,
        MappingError::UnknownField {
            index: 3,
            to: "email".into(),
            path: "x".into()
        }
    );
    assert_eq!(err.to_string(), "unknown field `x` in field 4 (`email`)");

    let err = check(vec![rename("email", "props.email")], Some(known));
    assert_eq!(
        err.to_string(),
        "unknown field `props` in field 1 (`email`), path `props.email`"
    );

    let concat = field(
        "n",
        Transform::Concat {
            from: vec!["first".into(), "middle".into()],
            separator: " ".into(),
        },
    );
    let date = field(
        "d",
        Transform::DateFormat {
            from: "created".into(),
            input: None,
            output: None,
        },
    );
    let lookup = field(
        "l",
        Transform::Lookup {
            from: "/nope/0".into(),
            table: BTreeMap::new(),
            default: None,
        },
    );
    for mapping in [concat, date, lookup] {
        assert!(matches!(
            check(vec![mapping], Some(known)),
            MappingError::UnknownField { index: 0, .. }
        ));
    }
    let fine = vec![
        rename("a", "properties.email"),
        rename("b", "/weird.key/0"),
        rename("c", "first"),
    ];
    assert_eq!(
        Mapping {
            fields: fine.clone()
        }
        .validate(Some(known)),
        Ok(())
    );
    assert_eq!(
        Mapping { fields: fine }
            .validate(Some(&[]))
            .unwrap_err()
            .to_string(),
        "unknown field `properties` in field 1 (`a`), path `properties.email`"
    );
}

#[test]
fn bad_date_formats_are_refused() {
    let date = |input: Option<&str>, output: Option<&str>| {
        let (input, output) = (input.map(str::to_owned), output.map(str::to_owned));
        vec![field(
            "at",
            Transform::DateFormat {
                from: "created".into(),
                input,
                output,
            },
        )]
    };
    let err = check(date(Some("YYYY-MM-DD"), None), None);
    let MappingError::BadFormat {
        index,
        to,
        format,
        reason,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*index, to.as_str(), format.as_str()),
        (0, "at", "YYYY-MM-DD")
    );
    assert!(reason.contains("[year]-[month]-[day]"), "{reason}");
    assert!(err
        .to_string()
        .starts_with("field 1 (`at`) has a bad date format `YYYY-MM-DD`: "));

    let format_of = |fields| match check(fields, None) {
        MappingError::BadFormat { format, .. } => format,
        other => panic!("{other:?}"),
    };
    assert_eq!(format_of(date(None, Some("[yeer]"))), "[yeer]");
    assert_eq!(format_of(date(Some("[hour]"), None)), "[hour]");
    assert_eq!(format_of(date(Some("[year"), None)), "[year");
}

#[test]
fn validation_reports_the_first_field_with_a_problem() {
    let fields = vec![
        rename("a", "a"),
        rename("b", "b..c"),
        rename("", "x"),
        rename("a", "d"),
    ];
    assert!(matches!(
        check(fields, None),
        MappingError::BadPath { index: 1, .. }
    ));
}
