//! A mapping with its paths and formats parsed, its destination laid out as a tree, and the code
//! that applies it to records. This is the hot path of a sync: applying parses nothing, clones
//! only the values it copies, and inserts each destination key once.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::date::DateSpec;
use super::path::Path;
use super::{Mapping, MappingError, Transform};

/// A [`Mapping`] ready to apply to many records. Build it with [`Mapping::compile`].
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    /// In the mapping's order; [`Node::Field`] indexes it.
    fields: Box<[Field]>,
    /// The destination keys, nested as the output is.
    targets: Box<[Target]>,
}

#[derive(Debug, Clone)]
struct Field {
    to: Box<str>,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Rename(Path),
    Constant(Value),
    Concat {
        parts: Box<[Path]>,
        separator: Box<str>,
    },
    Date {
        from: Path,
        input: DateSpec,
        output: DateSpec,
    },
    Lookup {
        from: Path,
        table: HashMap<Box<str>, Value>,
        default: Value,
    },
}

/// One destination key and what goes under it.
#[derive(Debug, Clone)]
struct Target {
    key: String,
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    /// The value of the field at this index.
    Field(usize),
    /// An object built from more targets.
    Object(Vec<Target>),
}

impl CompiledMapping {
    /// Turns one source record into one destination record (always an object). A record that is
    /// not an object has no named fields, so paths into it yield null. When several fields fail,
    /// the first in the mapping's order is reported.
    pub fn apply(&self, record: &Value) -> Result<Value, MappingError> {
        match self.assemble(&self.targets, record) {
            Ok(object) => Ok(Value::Object(object)),
            Err(failed) => Err(self.first_error(record).unwrap_or(failed)),
        }
    }

    /// Builds the object for `targets`, computing each field's value as its key is inserted.
    fn assemble(
        &self,
        targets: &[Target],
        record: &Value,
    ) -> Result<Map<String, Value>, MappingError> {
        let mut object = Map::new();
        for target in targets {
            let value = match &target.node {
                Node::Field(index) => self.eval(*index, record)?,
                Node::Object(children) => Value::Object(self.assemble(children, record)?),
            };
            object.insert(target.key.clone(), value);
        }
        Ok(object)
    }

    fn eval(&self, index: usize, record: &Value) -> Result<Value, MappingError> {
        let Some(field) = self.fields.get(index) else {
            return Ok(Value::Null);
        };
        field.op.eval(record).map_err(|reason| MappingError::Value {
            index,
            to: field.to.to_string(),
            reason,
        })
    }

    /// The failure of the earliest field, since `assemble` visits fields in destination order.
    fn first_error(&self, record: &Value) -> Option<MappingError> {
        (0..self.fields.len()).find_map(|index| self.eval(index, record).err())
    }
}

impl Op {
    /// The field's value for one record; the error is a reason fit for a person.
    fn eval(&self, record: &Value) -> Result<Value, String> {
        match self {
            Op::Rename(from) => Ok(from.resolve(record).cloned().unwrap_or_default()),
            Op::Constant(value) => Ok(value.clone()),
            Op::Concat { parts, separator } => {
                let mut out = String::new();
                let mut any = false;
                for part in &**parts {
                    let Some(value) = part.resolve(record).filter(|v| !v.is_null()) else {
                        continue;
                    };
                    if any {
                        out.push_str(separator);
                    }
                    any = true;
                    out.push_str(&text(part, value, "concat")?);
                }
                Ok(if any { Value::String(out) } else { Value::Null })
            }
            Op::Date {
                from,
                input,
                output,
            } => match from.resolve(record) {
                None | Some(Value::Null) => Ok(Value::Null),
                Some(value) => match input.read(value) {
                    Ok(Some(at)) => output.write(at),
                    Ok(None) => Ok(Value::Null),
                    Err(reason) => Err(format!("`{}` holds {reason}", from.as_str())),
                },
            },
            Op::Lookup {
                from,
                table,
                default,
            } => match from.resolve(record) {
                None | Some(Value::Null) => Ok(default.clone()),
                Some(value) => {
                    let key = text(from, value, "lookup")?;
                    Ok(table.get(&*key).unwrap_or(default).clone())
                }
            },
        }
    }
}

/// The string form of a scalar: text as is, numbers and booleans as their JSON text.
fn text<'a>(path: &Path, value: &'a Value, op: &str) -> Result<Cow<'a, str>, String> {
    match value {
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Bool(b) => Ok(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Ok(Cow::Owned(n.to_string())),
        // Callers skip null before asking; were one to slip through, it reads as no text.
        Value::Null => Ok(Cow::Borrowed("")),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "`{}` holds {}, but {op} works on text, numbers and true/false only",
            path.as_str(),
            if value.is_array() {
                "an array"
            } else {
                "an object"
            },
        )),
    }
}

/// Compiles `mapping`, checking source paths against `source_fields` when given. Problems are
/// reported for the first field that has one.
pub(super) fn build(
    mapping: &Mapping,
    source_fields: Option<&[&str]>,
) -> Result<CompiledMapping, MappingError> {
    let mut fields = Vec::with_capacity(mapping.fields.len());
    let mut targets = Vec::new();
    for (index, field) in mapping.fields.iter().enumerate() {
        let to = &field.to;
        if to.trim().is_empty() {
            return Err(MappingError::EmptyTarget { index });
        }
        let bad_path = |path: &str, reason| MappingError::BadPath {
            index,
            to: to.clone(),
            path: path.to_owned(),
            reason,
        };
        let target = Path::parse(to).map_err(|reason| bad_path(to, reason))?;
        let source = |path: &str| {
            let parsed = Path::parse(path).map_err(|reason| bad_path(path, reason))?;
            match source_fields {
                Some(known) if !known.contains(&parsed.root()) => Err(MappingError::UnknownField {
                    index,
                    to: to.clone(),
                    path: path.to_owned(),
                }),
                _ => Ok(parsed),
            }
        };
        let bad_format = |format: Option<&String>, reason| MappingError::BadFormat {
            index,
            to: to.clone(),
            format: format.map_or("rfc3339", String::as_str).to_owned(),
            reason,
        };
        let op = match &field.transform {
            Transform::Rename { from } => Op::Rename(source(from)?),
            Transform::Constant { value } => Op::Constant(value.clone()),
            Transform::Concat { from, separator } => {
                if from.is_empty() {
                    let reason = "concat needs at least one path in `from`".into();
                    return Err(bad_path("[]", reason));
                }
                let parts = from.iter().map(|p| source(p)).collect::<Result<_, _>>()?;
                Op::Concat {
                    parts,
                    separator: separator.as_str().into(),
                }
            }
            Transform::DateFormat {
                from,
                input,
                output,
            } => Op::Date {
                from: source(from)?,
                input: DateSpec::input(input.as_deref())
                    .map_err(|r| bad_format(input.as_ref(), r))?,
                output: DateSpec::output(output.as_deref())
                    .map_err(|r| bad_format(output.as_ref(), r))?,
            },
            Transform::Lookup {
                from,
                table,
                default,
            } => Op::Lookup {
                from: source(from)?,
                table: table
                    .iter()
                    .map(|(k, v)| (k.as_str().into(), v.clone()))
                    .collect(),
                default: default.clone().unwrap_or_default(),
            },
        };
        let keys: Vec<&str> = target.keys().collect();
        if let Err(earlier) = insert(&mut targets, &keys, index) {
            let other = mapping
                .fields
                .get(earlier)
                .map_or_else(String::new, |f| f.to.clone());
            return Err(MappingError::DuplicateTarget {
                index,
                to: to.clone(),
                other,
            });
        }
        fields.push(Field {
            to: to.as_str().into(),
            op,
        });
    }
    Ok(CompiledMapping {
        fields: fields.into(),
        targets: targets.into(),
    })
}

/// Adds the destination `keys` of field `index` to the tree, or returns the index of an earlier
/// field it clashes with.
fn insert(level: &mut Vec<Target>, keys: &[&str], index: usize) -> Result<(), usize> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(());
    };
    let Some(pos) = level.iter().position(|t| t.key == *key) else {
        let node = if rest.is_empty() {
            Node::Field(index)
        } else {
            Node::Object(Vec::new())
        };
        level.push(Target {
            key: (*key).to_owned(),
            node,
        });
        return match level.last_mut() {
            Some(Target {
                node: Node::Object(children),
                ..
            }) => insert(children, rest, index),
            _ => Ok(()),
        };
    };
    match &mut level[pos].node {
        Node::Field(earlier) => Err(*earlier),
        Node::Object(children) if rest.is_empty() => Err(first_field(children)),
        Node::Object(children) => insert(children, rest, index),
    }
}

/// The earliest field written under an object target.
fn first_field(targets: &[Target]) -> usize {
    targets
        .iter()
        .map(|t| match &t.node {
            Node::Field(index) => *index,
            Node::Object(children) => first_field(children),
        })
        .min()
        .unwrap_or(0)
}
