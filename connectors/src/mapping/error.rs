//! What can be wrong with a mapping, or with a record it is applied to, in words fit for the
//! person who wrote the mapping. `index` is the 0-based position in [`Mapping::fields`]; the
//! messages count fields from 1, as the editor shows them.
//!
//! [`Mapping::fields`]: super::Mapping::fields

/// A mapping that cannot be used, or a record it cannot be applied to. `to`, `path` and `format`
/// are as the mapping writes them; `reason` says what is wrong and, where it can, what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The field's `to` is empty or blank.
    #[error("field {} has no destination: `to` is empty", n(*.index))]
    EmptyTarget { index: usize },
    /// The field writes the destination path `other` of an earlier field, or a path inside it
    /// (`a.b` after `a`), or one that contains it (`a` after `a.b`).
    #[error(
        "field {} (`{to}`) clashes with the destination `{other}` of an earlier field: each \
         destination is written once, and cannot be both a value and an object of fields",
        n(*.index)
    )]
    DuplicateTarget {
        index: usize,
        to: String,
        other: String,
    },
    /// A source or destination path that cannot be parsed.
    #[error("field {} (`{to}`) has a bad path `{path}`: {reason}", n(*.index))]
    BadPath {
        index: usize,
        to: String,
        path: String,
        reason: String,
    },
    /// A source path whose first segment is not one of the source's fields.
    #[error("unknown field `{}` in field {} (`{to}`){}", root(.path), n(*.index), full(.path))]
    UnknownField {
        index: usize,
        to: String,
        path: String,
    },
    /// A date format that cannot be used.
    #[error("field {} (`{to}`) has a bad date format `{format}`: {reason}", n(*.index))]
    BadFormat {
        index: usize,
        to: String,
        format: String,
        reason: String,
    },
    /// A record whose value cannot be transformed, such as a date that does not parse.
    #[error("field {} (`{to}`): {reason}", n(*.index))]
    Value {
        index: usize,
        to: String,
        reason: String,
    },
}

/// The 1-based field number people see.
fn n(index: usize) -> usize {
    index.saturating_add(1)
}

/// The top-level field a (valid) path reads.
fn root(path: &str) -> String {
    super::path::Path::parse(path).map_or_else(|_| path.to_owned(), |p| p.root().to_owned())
}

/// The whole path, when it says more than its first segment.
fn full(path: &str) -> String {
    if root(path) == path {
        String::new()
    } else {
        format!(", path `{path}`")
    }
}
