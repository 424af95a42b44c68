//! The sandbox's records, kept as an append-only log of versions per stream so that paging can
//! read a consistent snapshot while records keep changing.
//!
//! Every write gets the next value of one global sequence number. A stream's log is sorted by
//! that number (writes append under the store's write lock) and, because `updated_at` never
//! goes backwards within a stream, also by `updated_at`. A version remembers the sequence
//! number of the version that replaced it, so "was this the latest version as of snapshot
//! `until`?" is one comparison. A page binary-searches its start (after the cursor's position,
//! and at or after `updated_since`) and walks forward, skipping versions superseded before the
//! snapshot: O(page size + skipped) whatever the stream's size.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::cursor::Cursor;
use super::records::{rfc3339, FieldType, StreamKind};
use super::seed;
use super::SeedSizes;

/// One version of one record.
struct Version {
    seq: u64,
    /// Sequence number of the version that replaced this one; `u64::MAX` while it is current.
    superseded_by: u64,
    updated_ms: i64,
    /// The record as compact JSON, ready to be copied into a page.
    json: Box<str>,
}

/// One stream's versions and its index of current versions.
#[derive(Default)]
struct StreamLog {
    log: Vec<Version>,
    /// Record id → index in `log` of its current version.
    latest: HashMap<String, usize>,
    /// Number of the last record created (ids are `prefix_{number:06}`, from 1).
    last_number: u64,
    /// `updated_at` of the last write, so later writes never go backwards.
    last_ms: i64,
}

/// All records of the sandbox.
pub(crate) struct Store {
    seq: u64,
    streams: [StreamLog; 4],
}

/// How a created record's fields not given by the caller are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    /// With null, as an API client that left them out would expect.
    Null,
    /// With realistic fake values (test helpers).
    Fake,
}

/// Why a write was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    NotFound,
    /// A reference to a record that doesn't exist; the message is fit for a 422 body.
    Invalid(String),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotFound => f.write_str("no such record"),
            WriteError::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// What a page asks for.
pub(crate) struct PageRequest<'a> {
    pub(crate) limit: usize,
    pub(crate) cursor: Option<&'a str>,
    /// Only versions with `updated_at >=` this (Unix ms); ignored when a cursor is given,
    /// which carries the filter of the first page.
    pub(crate) updated_since_ms: Option<i64>,
}

/// One page: the records' JSON, comma-separated, and the cursor of the next page.
pub(crate) struct Page {
    pub(crate) data: String,
    pub(crate) next_cursor: Option<String>,
}

impl Store {
    /// A store holding `sizes` deterministic fake records per stream.
    pub(crate) fn seeded(sizes: &SeedSizes) -> Store {
        let mut store = Store {
            seq: 0,
            streams: Default::default(),
        };
        let (customers, companies) = (sizes.customers as u64, sizes.companies as u64);
        for kind in StreamKind::ALL {
            let size = match kind {
                StreamKind::Customers => sizes.customers,
                StreamKind::Orders => sizes.orders,
                StreamKind::Contacts => sizes.contacts,
                StreamKind::Companies => sizes.companies,
            };
            let stream = &mut store.streams[kind.index()];
            stream.log.reserve(size);
            stream.latest.reserve(size);
            for n in 1..=size as u64 {
                let (json, updated) = seed::seed_json(kind, n, customers, companies);
                store.push_version(kind, seed::id(kind, n), json, updated);
            }
        }
        store
    }

    /// Number of records (not versions) in a stream.
    pub(crate) fn count(&self, kind: StreamKind) -> usize {
        self.streams[kind.index()].latest.len()
    }

    fn exists(&self, kind: StreamKind, id: &str) -> bool {
        self.streams[kind.index()].latest.contains_key(id)
    }

    /// Creates a record from validated fields; returns it.
    pub(crate) fn create(
        &mut self,
        kind: StreamKind,
        fields: Map<String, Value>,
        now_ms: i64,
        fill: Fill,
    ) -> Result<Value, WriteError> {
        self.check_references(kind, &fields)?;
        let n = self.streams[kind.index()].last_number + 1;
        let mut record = match fill {
            Fill::Fake => seed::fake_fields(
                kind,
                n,
                self.count(StreamKind::Customers) as u64,
                self.count(StreamKind::Companies) as u64,
            ),
            Fill::Null => kind
                .fields()
                .iter()
                .map(|f| (f.name.to_owned(), Value::Null))
                .collect(),
        };
        record.extend(fields);
        let id = seed::id(kind, n);
        record.insert("id".into(), Value::String(id));
        let updated = self.next_time(kind, now_ms);
        record.insert("created_at".into(), Value::String(rfc3339(updated)));
        Ok(self.append(kind, record, updated))
    }

    /// Applies validated fields to a record (a new version, fresh `updated_at`); returns it.
    pub(crate) fn update(
        &mut self,
        kind: StreamKind,
        id: &str,
        fields: Map<String, Value>,
        now_ms: i64,
    ) -> Result<Value, WriteError> {
        self.check_references(kind, &fields)?;
        let stream = &self.streams[kind.index()];
        let index = *stream.latest.get(id).ok_or(WriteError::NotFound)?;
        let mut record = match serde_json::from_str::<Value>(&stream.log[index].json) {
            Ok(Value::Object(map)) => map,
            _ => return Err(WriteError::NotFound),
        };
        record.extend(fields);
        let updated = self.next_time(kind, now_ms);
        Ok(self.append(kind, record, updated))
    }

    /// Deletes a record: its current version ends at the next sequence number, so snapshots
    /// taken before the delete still page through it and later ones do not. Returns the record
    /// as it was, or None for an unknown id.
    pub(crate) fn delete(&mut self, kind: StreamKind, id: &str) -> Option<Value> {
        let stream = &mut self.streams[kind.index()];
        let index = stream.latest.remove(id)?;
        self.seq += 1;
        let version = &mut stream.log[index];
        version.superseded_by = self.seq;
        serde_json::from_str(&version.json).ok()
    }

    /// The current records of a stream, most recently changed first (the sandbox's own pages).
    pub(crate) fn recent(&self, kind: StreamKind, limit: usize) -> Vec<Value> {
        let stream = &self.streams[kind.index()];
        stream
            .log
            .iter()
            .rev()
            .filter(|v| v.superseded_by == u64::MAX)
            .take(limit)
            .filter_map(|v| serde_json::from_str(&v.json).ok())
            .collect()
    }

    /// One current record.
    pub(crate) fn get(&self, kind: StreamKind, id: &str) -> Option<Value> {
        let stream = &self.streams[kind.index()];
        let index = *stream.latest.get(id)?;
        serde_json::from_str(&stream.log[index].json).ok()
    }

    /// A new version of a record with nothing changed but `updated_at`.
    pub(crate) fn touch(&mut self, kind: StreamKind, id: &str, now_ms: i64) -> Option<Value> {
        self.update(kind, id, Map::new(), now_ms).ok()
    }

    fn check_references(
        &self,
        kind: StreamKind,
        fields: &Map<String, Value>,
    ) -> Result<(), WriteError> {
        for f in kind.fields() {
            if let (FieldType::Reference(target), Some(Value::String(id))) =
                (f.ty, fields.get(f.name))
            {
                if !self.exists(target, id) {
                    let what = target.singular();
                    return Err(WriteError::Invalid(format!(
                        "field `{}`: no {what} with id `{id}`",
                        f.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// `updated_at` for a write now: never before the stream's last write, which keeps each log
    /// sorted by `updated_at` as well as by sequence number.
    fn next_time(&mut self, kind: StreamKind, now_ms: i64) -> i64 {
        let stream = &mut self.streams[kind.index()];
        stream.last_ms = stream.last_ms.max(now_ms);
        stream.last_ms
    }

    /// Appends a version (setting `updated_at`), supersedes the previous one, returns the record.
    fn append(
        &mut self,
        kind: StreamKind,
        mut record: Map<String, Value>,
        updated_ms: i64,
    ) -> Value {
        record.insert("updated_at".into(), Value::String(rfc3339(updated_ms)));
        let id = record
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let record = Value::Object(record);
        self.push_version(kind, id, record.to_string(), updated_ms);
        record
    }

    /// Appends a record's JSON as its new current version, under the next sequence number.
    fn push_version(&mut self, kind: StreamKind, id: String, json: String, updated_ms: i64) {
        self.seq += 1;
        let seq = self.seq;
        let stream = &mut self.streams[kind.index()];
        stream.last_ms = stream.last_ms.max(updated_ms);
        let index = stream.log.len();
        stream.log.push(Version {
            seq,
            superseded_by: u64::MAX,
            updated_ms,
            json: json.into_boxed_str(),
        });
        match stream.latest.insert(id, index) {
            Some(previous) => stream.log[previous].superseded_by = seq,
            None => stream.last_number += 1,
        }
    }

    /// One page of a stream (see the module docs). Err: the cursor is not one of ours.
    pub(crate) fn page(&self, kind: StreamKind, req: &PageRequest<'_>) -> Result<Page, ()> {
        let cursor = match req.cursor {
            Some(text) => Cursor::decode(kind, text, self.seq).ok_or(())?,
            None => Cursor {
                until: self.seq,
                after: 0,
                since_ms: req.updated_since_ms,
            },
        };
        let log = &self.streams[kind.index()].log;
        let mut start = log.partition_point(|v| v.seq <= cursor.after);
        if let Some(since) = cursor.since_ms {
            start = start.max(log.partition_point(|v| v.updated_ms < since));
        }
        let mut data = String::new();
        let mut taken = 0;
        let mut last_seq = cursor.after;
        let mut more = false;
        for version in &log[start..] {
            if version.seq > cursor.until {
                break;
            }
            if version.superseded_by <= cursor.until {
                continue; // an older version; the snapshot's version comes later in the log
            }
            if taken == req.limit {
                more = true;
                break;
            }
            if taken > 0 {
                data.push(',');
            }
            data.push_str(&version.json);
            taken += 1;
            last_seq = version.seq;
        }
        let next_cursor = more.then(|| {
            Cursor {
                after: last_seq,
                ..cursor
            }
            .encode(kind)
        });
        Ok(Page { data, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(store: &Store, kind: StreamKind, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let req = PageRequest {
                limit,
                cursor: cursor.as_deref(),
                updated_since_ms: None,
            };
            let page = store.page(kind, &req).expect("own cursor");
            let data: Vec<Value> =
                serde_json::from_str(&format!("[{}]", page.data)).expect("valid JSON");
            out.extend(
                data.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned)),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_cover_each_record_once_and_stop() {
        let store = Store::seeded(&SeedSizes::uniform(10));
        let got = ids(&store, StreamKind::Orders, 3);
        assert_eq!(
            got,
            (1..=10)
                .map(|n| seed::id(StreamKind::Orders, n))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            ids(&store, StreamKind::Orders, 10).len(),
            10,
            "an exact fit has no empty last page"
        );
    }

    #[test]
    fn cursors_are_checked() {
        let store = Store::seeded(&SeedSizes::uniform(3));
        let first = store
            .page(
                StreamKind::Contacts,
                &PageRequest {
                    limit: 1,
                    cursor: None,
                    updated_since_ms: None,
                },
            )
            .expect("first page");
        let cursor = first.next_cursor.expect("more pages");
        let req = PageRequest {
            limit: 1,
            cursor: Some(&cursor),
            updated_since_ms: None,
        };
        assert!(
            store.page(StreamKind::Companies, &req).is_err(),
            "another stream's cursor"
        );
        let req = PageRequest {
            limit: 1,
            cursor: Some("garbage"),
            updated_since_ms: None,
        };
        assert!(store.page(StreamKind::Contacts, &req).is_err());
    }

    #[test]
    fn deleted_records_leave_later_snapshots_only() {
        let mut store = Store::seeded(&SeedSizes::uniform(3));
        let before = store
            .page(
                StreamKind::Customers,
                &PageRequest {
                    limit: 1,
                    cursor: None,
                    updated_since_ms: None,
                },
            )
            .unwrap();
        assert!(store.delete(StreamKind::Customers, "cus_000002").is_some());
        assert!(store.delete(StreamKind::Customers, "cus_000002").is_none());
        assert_eq!(store.count(StreamKind::Customers), 2);
        assert_eq!(
            ids(&store, StreamKind::Customers, 10),
            vec!["cus_000001".to_owned(), "cus_000003".to_owned()]
        );
        // A paging session begun before the delete still sees the record, once.
        let mut cursor = before.next_cursor;
        let mut seen = Vec::new();
        while let Some(c) = cursor {
            let page = store
                .page(
                    StreamKind::Customers,
                    &PageRequest {
                        limit: 1,
                        cursor: Some(&c),
                        updated_since_ms: None,
                    },
                )
                .unwrap();
            seen.push(page.data.contains("cus_000002"));
            cursor = page.next_cursor;
        }
        assert_eq!(seen.iter().filter(|s| **s).count(), 1);
    }

    #[test]
    fn references_must_exist() {
        let mut store = Store::seeded(&SeedSizes::uniform(2));
        let mut fields = Map::new();
        fields.insert("company_id".into(), Value::String("com_000099".into()));
        let err = store.update(StreamKind::Contacts, "con_000001", fields, 0);
        assert_eq!(
            err,
            Err(WriteError::Invalid(
                "field `company_id`: no company with id `com_000099`".into()
            ))
        );
        assert_eq!(
            store.update(StreamKind::Contacts, "con_404", Map::new(), 0),
            Err(WriteError::NotFound)
        );
    }
}
