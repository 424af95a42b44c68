//! The opaque paging cursor: which snapshot a paging session reads (`until`, a sequence
//! number), where it stopped (`after`), and the `updated_since` filter of its first page, so
//! later pages need nothing but the cursor. base64url of `v1:<stream>:<until>:<after>:<since>`;
//! opaque to clients, but not secret — a forged cursor can only page through data the caller
//! may read anyway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::records::StreamKind;

/// Position of a paging session: snapshot, last sequence number returned, filter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) until: u64,
    pub(crate) after: u64,
    pub(crate) since_ms: Option<i64>,
}

impl Cursor {
    /// The opaque text handed to clients as `next_cursor`.
    pub(crate) fn encode(&self, kind: StreamKind) -> String {
        let since = self
            .since_ms
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        URL_SAFE_NO_PAD.encode(format!(
            "v1:{}:{}:{}:{since}",
            kind.name(),
            self.until,
            self.after
        ))
    }

    /// None unless `text` is a cursor of `kind` for a snapshot that exists.
    pub(crate) fn decode(kind: StreamKind, text: &str, max_seq: u64) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.split(':');
        if parts.next()? != "v1" || parts.next()? != kind.name() {
            return None;
        }
        let until: u64 = parts.next()?.parse().ok()?;
        let after: u64 = parts.next()?.parse().ok()?;
        let since_ms = match parts.next()? {
            "-" => None,
            s => Some(s.parse().ok()?),
        };
        (parts.next().is_none() && after <= until && until <= max_seq).then_some(Cursor {
            until,
            after,
            since_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_cursors() {
        let c = Cursor {
            until: 9,
            after: 4,
            since_ms: Some(-5),
        };
        let text = c.encode(StreamKind::Orders);
        assert_eq!(Cursor::decode(StreamKind::Orders, &text, 9), Some(c));
        assert_eq!(
            Cursor::decode(StreamKind::Contacts, &text, 9),
            None,
            "another stream"
        );
        assert_eq!(
            Cursor::decode(StreamKind::Orders, &text, 8),
            None,
            "a snapshot from the future"
        );
        assert_eq!(Cursor::decode(StreamKind::Orders, "bm9wZQ", 9), None);
    }
}
