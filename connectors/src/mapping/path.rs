//! Paths into a record, parsed once so that applying a mapping never re-reads them.
//!
//! Two spellings: dotted (`lines.0.sku`), where a numeric segment also indexes arrays, and JSON
//! pointer (`/weird.key/0`, RFC 6901) for keys that contain a dot. Both name the same steps.

use serde_json::Value;

/// One step of a path: an object key, which also indexes an array when it is a plain number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    key: Box<str>,
    index: Option<usize>,
}

impl Step {
    fn new(key: &str) -> Self {
        Step {
            key: key.into(),
            index: array_index(key),
        }
    }
}

/// A parsed path with at least one step; it keeps its text for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Path {
    text: Box<str>,
    steps: Box<[Step]>,
}

impl Path {
    /// Parses a dotted path or, when it starts with `/`, a JSON pointer. The error is a reason
    /// fit for a person.
    pub(super) fn parse(text: &str) -> Result<Path, String> {
        if text.trim().is_empty() {
            return Err("the path is empty".into());
        }
        let steps = match text.strip_prefix('/') {
            Some(pointer) => pointer
                .split('/')
                .map(|token| unescape_pointer(token).map(|key| Step::new(&key)))
                .collect::<Result<_, _>>()?,
            None => text
                .split('.')
                .map(|key| dotted_step(text, key))
                .collect::<Result<_, _>>()?,
        };
        Ok(Path {
            text: text.into(),
            steps,
        })
    }

    /// The path as it was written.
    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    /// The first key: the top-level field of the record that the path reads.
    pub(super) fn root(&self) -> &str {
        self.steps.first().map_or("", |step| &step.key)
    }

    /// The keys in order, for building nested destination objects.
    pub(super) fn keys(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|step| &*step.key)
    }

    /// The value the path names in `root`, or `None` when any step is missing.
    pub(super) fn resolve<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut current = root;
        for step in &*self.steps {
            current = match current {
                Value::Object(map) => map.get(&*step.key)?,
                Value::Array(items) => items.get(step.index?)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

fn dotted_step(text: &str, key: &str) -> Result<Step, String> {
    if key.is_empty() {
        return Err(format!(
            "`{text}` has an empty segment; to name a key that contains a dot, write the path as \
             a JSON pointer (`/a.b/c` reads `c` inside `a.b`)"
        ));
    }
    Ok(Step::new(key))
}

/// The path that names the top-level `key` exactly: the key itself when the dotted form reads it
/// back unchanged, otherwise a JSON pointer.
pub(super) fn for_key(key: &str) -> String {
    if key.contains('.') || key.starts_with('/') || key.trim().is_empty() {
        format!("/{}", escape_pointer(key))
    } else {
        key.to_owned()
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape_pointer(token: &str) -> Result<String, String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => {
                return Err(format!(
                    "`~` in the JSON pointer segment `{token}` must be followed by 0 (for `~`) \
                     or 1 (for `/`)"
                ))
            }
        }
    }
    Ok(out)
}

/// A canonical array index: digits only, no leading zero (as RFC 6901 requires).
fn array_index(key: &str) -> Option<usize> {
    let digits = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
    if digits && (key == "0" || !key.starts_with('0')) {
        key.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(text: &str) -> Vec<String> {
        Path::parse(text)
            .unwrap()
            .keys()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn dotted_and_pointer_paths_parse_to_keys() {
        assert_eq!(keys("email"), ["email"]);
        assert_eq!(keys("lines.0.sku"), ["lines", "0", "sku"]);
        assert_eq!(keys("/weird.key/0"), ["weird.key", "0"]);
        assert_eq!(keys("/a~1b/c~0d"), ["a/b", "c~d"]);
        assert_eq!(keys("/"), [""]);
    }

    #[test]
    fn malformed_paths_are_refused_with_a_reason() {
        for bad in ["", "  ", "a..b", ".a", "a.", "/a~2", "/a~"] {
            let reason = Path::parse(bad).unwrap_err();
            assert!(!reason.is_empty(), "{bad:?}");
        }
        assert!(Path::parse("a..b").unwrap_err().contains("JSON pointer"));
    }

    #[test]
    fn resolve_walks_objects_and_arrays() {
        let record =
            json!({"lines": [{"sku": "A"}, {"sku": "B"}], "0": {"x": 1}, "weird.key": [7]});
        let get = |p: &str| Path::parse(p).unwrap().resolve(&record).cloned();
        assert_eq!(get("lines.1.sku"), Some(json!("B")));
        assert_eq!(
            get("0.x"),
            Some(json!(1)),
            "numeric segments are keys on objects"
        );
        assert_eq!(get("/weird.key/0"), Some(json!(7)));
        assert_eq!(get("lines.2.sku"), None);
        assert_eq!(
            get("lines.01.sku"),
            None,
            "non-canonical indexes do not index arrays"
        );
        assert_eq!(get("lines.sku"), None);
        assert_eq!(get("lines.0.sku.deeper"), None);
    }

    #[test]
    fn for_key_round_trips_any_key() {
        for key in ["email", "a.b", "/x", "", " ", "~/.~", "0"] {
            let path = Path::parse(&for_key(key)).unwrap();
            assert_eq!(path.keys().collect::<Vec<_>>(), [key], "{key:?}");
        }
        assert_eq!(for_key("email"), "email");
    }
}
