//! Tests of the mapping as a whole: each transform, source and destination paths, and every
//! validation error. Path and date parsing are tested beside their code.

mod transforms;
mod validation;

use serde_json::Value;

use super::*;

pub(super) fn field(to: &str, transform: Transform) -> FieldMap {
    FieldMap {
        to: to.into(),
        transform,
    }
}

pub(super) fn rename(to: &str, from: &str) -> FieldMap {
    field(to, Transform::Rename { from: from.into() })
}

pub(super) fn apply(fields: Vec<FieldMap>, record: Value) -> Result<Value, MappingError> {
    Mapping { fields }.compile()?.apply(&record)
}

pub(super) fn check(fields: Vec<FieldMap>, source_fields: Option<&[&str]>) -> MappingError {
    let mapping = Mapping { fields };
    let err = mapping.validate(source_fields).unwrap_err();
    if source_fields.is_none() {
        assert_eq!(
            mapping.compile().unwrap_err(),
            err,
            "compile and validate agree"
        );
    }
    err
}
