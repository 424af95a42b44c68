//! Field mapping: how one record read from a source becomes one record for a destination.
//!
//! The source decides the shape of what a sync reads (HubSpot's `properties.email`, a CSV's
//! `First Name`); the destination decides the shape of what it writes. A [`Mapping`] is the
//! reshaping between the two, written by a person: a plain serde value, so the UI can store and
//! edit it as JSON or TOML, and its shape is the contract. [`Mapping::compile`] parses its paths
//! and date formats once into a [`CompiledMapping`], which applies it to each record without
//! parsing anything again.
//!
//! # Paths
//!
//! A path is dot-separated keys, where a segment that is a plain number (`0`, `12`, not `01`) also
//! indexes an array: `lines.0.sku`. A key that contains a dot is written as a JSON pointer
//! (RFC 6901) instead, recognised by its leading `/`: `/weird.key/0`. A source path that names
//! nothing yields null. A destination path (`to`) builds nested objects; its segments are always
//! object keys, even numeric ones.
//!
//! ```
//! use connectors::mapping::Mapping;
//! use serde_json::json;
//!
//! let mapping: Mapping = serde_json::from_value(json!({ "fields": [
//!     { "to": "contact.email", "op": "rename", "from": "properties.email" },
//!     { "to": "name", "op": "concat", "from": ["first", "last"], "separator": " " },
//! ]})).unwrap();
//! let record = json!({ "properties": { "email": "a@example.com" }, "first": "Ada", "last": "L" });
//! let out = mapping.compile().unwrap().apply(&record).unwrap();
//! assert_eq!(out, json!({ "contact": { "email": "a@example.com" }, "name": "Ada L" }));
//! ```

mod compiled;
mod date;
mod error;
mod path;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use compiled::CompiledMapping;
pub use error::MappingError;

/// The fields of a destination record and how each is computed from a source record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// One entry per destination field, in the order the editor shows them.
    pub fields: Vec<FieldMap>,
}

/// One destination field: where it goes and how it is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMap {
    /// The destination path; dotted segments build nested objects.
    pub to: String,
    /// How the value is computed; its `op` and settings sit beside `to` in the serialized form.
    #[serde(flatten)]
    pub transform: Transform,
}

/// How one destination value is computed, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Copy the value at a source path (rename):
    /// `{ "to": "email", "op": "rename", "from": "properties.email" }`. Missing gives null.
    Rename { from: String },
    /// Always the same value: `{ "to": "source", "op": "constant", "value": "hubspot" }`. TOML
    /// has no null, so a mapping holding a null (here or in a lookup table) saves only as JSON.
    Constant { value: serde_json::Value },
    /// Join the string forms of several paths (missing/null ones skipped):
    /// `{ "op": "concat", "from": ["first_name","last_name"], "separator": " " }`. Numbers and
    /// booleans join as their JSON text; an array or object is an error. Null when every part is
    /// missing or null.
    Concat {
        from: Vec<String>,
        #[serde(default)]
        separator: String,
    },
    /// Reformat a date/time: input is RFC 3339 by default, or "unix" (seconds) / "unix_ms" / a
    /// `time` format description like "[year]-[month]-[day]"; output likewise (default RFC 3339).
    /// "rfc3339" and "rfc2822" may also be named. A date without a time of day reads as
    /// midnight, and without an offset as UTC; the input's offset is kept. Missing, null or a
    /// blank string gives null; anything else that does not parse is an error.
    DateFormat {
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
    /// Map a value through a table (keys are the value's string form: text as is, numbers and
    /// booleans as their JSON text), with an optional default; no match and no default => null.
    /// A missing or null value takes the default; an array or object is an error.
    Lookup {
        from: String,
        table: BTreeMap<String, serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<serde_json::Value>,
    },
}

impl Mapping {
    /// Checks the mapping itself (non-empty unique targets, parseable paths and formats) and,
    /// when `source_fields` is given, that every source path's first segment names a known
    /// source field ("unknown field `x` in field 3 (`email`)"). Reports the first problem, in
    /// field order.
    pub fn validate(&self, source_fields: Option<&[&str]>) -> Result<(), MappingError> {
        compiled::build(self, source_fields).map(drop)
    }

    /// Compiles paths and formats once, for speed; fails as [`Mapping::validate`] does without
    /// source fields.
    pub fn compile(&self) -> Result<CompiledMapping, MappingError> {
        compiled::build(self, None)
    }
}

/// The identity mapping for a set of fields: each copied to the same name. Names containing a
/// dot (or starting with `/`) are written as JSON pointers so they stay one key. Repeated names
/// make a mapping that fails validation.
#[must_use]
pub fn identity(fields: &[&str]) -> Mapping {
    let fields = fields
        .iter()
        .map(|field| {
            let path = path::for_key(field);
            FieldMap {
                to: path.clone(),
                transform: Transform::Rename { from: path },
            }
        })
        .collect();
    Mapping { fields }
}
