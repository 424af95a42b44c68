//! A record read from a source: its primary key, its data, and a hash of its content so that
//! unchanged records can be skipped downstream.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// SHA-256 of a record's canonical JSON (object keys sorted, no whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentHash(#[serde(with = "hex_bytes")] pub [u8; 32]);

impl ContentHash {
    pub fn of(value: &serde_json::Value) -> Self {
        let mut hasher = Sha256::new();
        write_canonical(value, &mut hasher);
        ContentHash(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Feeds the canonical JSON form of `value` into the hasher without building a string.
/// `serde_json::Value` objects are already key-sorted (BTreeMap, no `preserve_order`).
fn write_canonical(value: &serde_json::Value, hasher: &mut Sha256) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            hasher.update(b"{");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_json(k, hasher);
                hasher.update(b":");
                write_canonical(v, hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_canonical(v, hasher);
            }
            hasher.update(b"]");
        }
        other => write_json(other, hasher),
    }
}

/// Serializes straight into the hasher: no intermediate string.
fn write_json<T: serde::Serialize + ?Sized>(value: &T, hasher: &mut Sha256) {
    struct Feed<'a>(&'a mut Sha256);
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Writing JSON scalars and strings to an infallible sink cannot fail.
    let _ = serde_json::to_writer(Feed(hasher), value);
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// One record of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The primary key, as a string (numeric keys are rendered without quotes).
    pub key: String,
    pub data: serde_json::Value,
    pub hash: ContentHash,
}

impl Record {
    /// Builds a record, hashing its data.
    pub fn new(key: impl Into<String>, data: serde_json::Value) -> Self {
        let hash = ContentHash::of(&data);
        Record {
            key: key.into(),
            data,
            hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_and_sees_every_change() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":[1,{"y":2,"x":"s"}]}"#).unwrap();
        let b = json!({"a":[1,{"x":"s","y":2}],"b":1});
        assert_eq!(ContentHash::of(&a), ContentHash::of(&b));
        assert_ne!(
            ContentHash::of(&a),
            ContentHash::of(&json!({"a":[1,{"x":"s","y":3}],"b":1}))
        );
        assert_ne!(
            ContentHash::of(&json!({"a":"1"})),
            ContentHash::of(&json!({"a":1}))
        );
    }
}
