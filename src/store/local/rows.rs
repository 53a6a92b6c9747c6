//! Rows as stored, damaged ones included, and documents written without disturbing the
//! fields a write does not change.
//!
//! Another tool (or `sqlite3`) can put anything in a row: a document that is not a JSON
//! object, a revision that is not a counter, bytes that are not text. Such a row is read
//! as a `StoredRollout` with a `defect` (shown per rollout, like a malformed field) instead
//! of failing every read of the store, and a write to it stores a valid document that keeps
//! the unreadable original.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::fail::{Fail, other};
use crate::domain::event::Event;
use crate::domain::rollout::{Fields, Rollout, field};
use crate::store::{Patch, Revision, StoredRollout};

/// Where a repaired document keeps the text it was rebuilt from.
pub const UNREADABLE_DOCUMENT: &str = "unreadableDocument";
/// The same, as hex, for bytes that are not UTF-8 text.
pub const UNREADABLE_DOCUMENT_HEX: &str = "unreadableDocumentHex";
/// The version of a repaired document whose text did not say.
pub const UNKNOWN_VERSION: &str = "(unreadable)";

/// A `rollouts` row before any interpretation.
pub(super) struct Row {
    pub id: String,
    pub revision: Rev,
    pub doc: Cell,
}

pub(super) enum Rev {
    Counter(i64),
    /// Anything else, as text.
    Bad(String),
}

/// A text column as stored.
pub(super) enum Cell {
    Text(String),
    /// Not UTF-8.
    Bytes(Vec<u8>),
    Null,
}

impl Rev {
    pub fn of(v: ValueRef<'_>) -> Rev {
        match v {
            ValueRef::Integer(i) => Rev::Counter(i),
            ValueRef::Real(f) => Rev::Bad(f.to_string()),
            ValueRef::Text(b) | ValueRef::Blob(b) => Rev::Bad(String::from_utf8_lossy(b).into()),
            ValueRef::Null => Rev::Bad("NULL".into()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Rev::Counter(i) => i.to_string(),
            Rev::Bad(t) => t.clone(),
        }
    }

    /// Compare-and-set: a counter matches its number, anything else only its exact text.
    pub fn matches(&self, expected: &Revision) -> bool {
        match self {
            Rev::Counter(i) => expected.0.trim().parse::<i64>().ok() == Some(*i),
            Rev::Bad(t) => expected.0 == *t,
        }
    }
}

impl Cell {
    pub fn of(v: ValueRef<'_>) -> Cell {
        match v {
            ValueRef::Text(b) | ValueRef::Blob(b) => match std::str::from_utf8(b) {
                Ok(s) => Cell::Text(s.to_string()),
                Err(_) => Cell::Bytes(b.to_vec()),
            },
            ValueRef::Integer(i) => Cell::Text(i.to_string()),
            ValueRef::Real(f) => Cell::Text(f.to_string()),
            ValueRef::Null => Cell::Null,
        }
    }

    fn lossy(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(t) => t.as_str().into(),
            Cell::Bytes(b) => String::from_utf8_lossy(b),
            Cell::Null => "".into(),
        }
    }
}

/// The row as a document: its fields (as many as can be salvaged if it is damaged) and,
/// if it is damaged, why.
pub(super) fn to_stored(row: &Row) -> StoredRollout {
    let (fields, doc_defect) = read_doc(&row.doc);
    let rev_defect = match &row.revision {
        Rev::Counter(_) => None,
        Rev::Bad(t) => Some(format!("its stored revision '{t}' is not a whole number")),
    };
    let defect: Vec<String> = doc_defect.into_iter().chain(rev_defect).collect();
    StoredRollout {
        id: row.id.clone(),
        revision: Revision(row.revision.text()),
        fields,
        defect: (!defect.is_empty()).then(|| defect.join("; ")),
    }
}

fn read_doc(doc: &Cell) -> (Fields, Option<String>) {
    match doc {
        Cell::Text(t) => match serde_json::from_str::<Fields>(t) {
            Ok(fields) => (fields, None),
            Err(e) => (salvage(t).to_fields(), Some(doc_problem(t, &e))),
        },
        Cell::Bytes(b) => (
            salvage(&String::from_utf8_lossy(b)).to_fields(),
            Some(format!(
                "its stored document is not UTF-8 text ({} bytes)",
                b.len()
            )),
        ),
        Cell::Null => (Fields::new(), Some("its stored document is NULL".into())),
    }
}

fn doc_problem(text: &str, e: &serde_json::Error) -> String {
    if serde_json::from_str::<&RawValue>(text).is_ok() {
        let kind = match text.trim_start().as_bytes().first() {
            Some(b'[') => "a JSON list",
            Some(b'"') => "a JSON string",
            Some(b't' | b'f') => "a JSON boolean",
            Some(b'n') => "JSON null",
            _ => "a JSON number",
        };
        format!("its stored document is {kind}, not an object")
    } else {
        format!("its stored document is not valid JSON ({e})")
    }
}

/// A JSON object as its members' stored text, in stored order.
#[derive(Default)]
pub(super) struct RawDoc(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawDoc, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDoc, A::Error> {
                let mut doc = RawDoc::default();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    doc.set_raw(k, v);
                }
                Ok(doc)
            }
        }
        d.deserialize_map(Members)
    }
}

impl RawDoc {
    /// A repeated key keeps its first place and its last value, as `Fields` does.
    fn set_raw(&mut self, key: String, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Fail> {
        let raw = serde_json::value::to_raw_value(value)
            .map_err(|e| other(format!("cannot encode field '{key}': {e}")))?;
        self.set_raw(key.to_string(), raw);
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    fn apply(&mut self, patch: &Patch) -> Result<(), Fail> {
        for (name, value) in &patch.changes {
            match value {
                Some(v) => self.set(name, v)?,
                None => self.remove(name),
            }
        }
        Ok(())
    }

    /// Members that do not read as JSON values (a number out of range) are left out.
    fn to_fields(&self) -> Fields {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), serde_json::from_str(v.get()).ok()?)))
            .collect()
    }

    /// The object's text: every member's value exactly as it was given.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(
            2 + self
                .0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>(),
        );
        out.push('{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).unwrap_or_else(|_| "\"\"".into()));
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }
}

/// The document text a write stores for `row` with `patch` applied. Members the patch does
/// not name keep their stored text byte for byte (a 30-digit integer, `1.10`). A damaged
/// document is rebuilt: what can be salvaged, the original under `unreadableDocument`, a
/// version, and none of the salvaged fields that would keep it from reading as a rollout.
pub(super) fn patched_text(row: &Row, patch: &Patch) -> Result<String, Fail> {
    if let Cell::Text(t) = &row.doc
        && serde_json::from_str::<Fields>(t).is_ok()
        && let Ok(mut raw) = serde_json::from_str::<RawDoc>(t)
    {
        raw.apply(patch)?;
        return Ok(raw.to_text());
    }
    let mut raw = salvage(&row.doc.lossy());
    match &row.doc {
        Cell::Text(t) => raw.set(UNREADABLE_DOCUMENT, t)?,
        Cell::Bytes(b) => {
            let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
            raw.set(UNREADABLE_DOCUMENT_HEX, &hex)?;
        }
        Cell::Null => {}
    }
    raw.apply(patch)?;
    let patched: Vec<&str> = patch.field_names().collect();
    // Each round fixes the field the reader stops at; the original text keeps what is dropped.
    for _ in 0..raw.0.len() + 2 {
        let Err(e) = Rollout::from_fields(&row.id, &raw.to_fields()) else {
            break;
        };
        if e.field == field::VERSION && !patched.contains(&field::VERSION) {
            raw.set(field::VERSION, UNKNOWN_VERSION)?;
        } else if raw.has(&e.field)
            && !patched.contains(&e.field.as_str())
            && e.field != UNREADABLE_DOCUMENT
        {
            raw.remove(&e.field);
        } else {
            break;
        }
    }
    Ok(raw.to_text())
}

/// The members of a damaged document that can still be read: those before the damage,
/// and a `version` found anywhere in the text.
fn salvage(text: &str) -> RawDoc {
    let mut doc = RawDoc::default();
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) == Some(&b'{') {
        i += 1;
        while let Some((key, next)) = next_value::<String>(text, i) {
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                break;
            }
            let Some((value, next)) = next_value::<Box<RawValue>>(text, i + 1) else {
                break;
            };
            if serde_json::from_str::<Value>(value.get()).is_ok() {
                doc.set_raw(key, value);
            }
            i = skip_ws(b, next);
            if b.get(i) != Some(&b',') {
                break;
            }
            i += 1;
        }
    }
    if !doc.has(field::VERSION)
        && let Some(v) = find_version(text)
    {
        doc.set_raw(field::VERSION.to_string(), v);
    }
    doc
}

/// The first `"version": "..."` (or a number) anywhere in the text.
fn find_version(text: &str) -> Option<Box<RawValue>> {
    let key = "\"version\"";
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text.get(from..)?.find(key) {
        let after = skip_ws(b, from + at + key.len());
        from += at + key.len();
        if b.get(after) != Some(&b':') {
            continue;
        }
        if let Some((v, _)) = next_value::<Box<RawValue>>(text, after + 1)
            && matches!(
                serde_json::from_str::<Value>(v.get()),
                Ok(Value::String(_) | Value::Number(_))
            )
        {
            return Some(v);
        }
    }
    None
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The JSON value starting at byte `at` (after any whitespace) and where it ends.
fn next_value<T: DeserializeOwned>(text: &str, at: usize) -> Option<(T, usize)> {
    let rest = text.get(at..)?;
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    let value = stream.next()?.ok()?;
    Some((value, at + stream.byte_offset()))
}

/// A stored event; one that cannot be read is shown as what can be told about it (with
/// its stored text under `after.unreadableEvent`) instead of hiding every other event.
pub(super) fn to_event(seq: i64, rollout_id: &str, at: &Cell, body: &Cell) -> Event {
    let why = match body {
        Cell::Text(t) => match serde_json::from_str::<Event>(t) {
            Ok(event) => return event,
            Err(e) => e.to_string(),
        },
        Cell::Bytes(_) => "not UTF-8 text".into(),
        Cell::Null => "NULL".into(),
    };
    let fallback_at = DateTime::parse_from_rfc3339(&at.lossy())
        .ok()
        .map(|t| t.with_timezone(&Utc));
    Event::unreadable(
        rollout_id,
        &body.lossy(),
        &format!("stored event #{seq}"),
        &why,
        fallback_at,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(doc: &str, revision: Rev) -> Row {
        Row {
            id: "r".into(),
            revision,
            doc: Cell::Text(doc.into()),
        }
    }

    #[test]
    fn untouched_members_keep_their_text() {
        let text = r#"{"version":"1","foreign": 123456789012345678901234567890, "ratio":1.10,"nested":{ "a" : [1.50, 2] },"status":"canary"}"#;
        let mut patch = Patch::default();
        patch.set("status", json!("paused")).delete("nested");
        patch.set("added", json!(1));
        let out = patched_text(&row(text, Rev::Counter(1)), &patch).unwrap();
        assert_eq!(
            out,
            r#"{"version":"1","foreign":123456789012345678901234567890,"ratio":1.10,"status":"paused","added":1}"#
        );
    }

    #[test]
    fn a_truncated_document_gives_up_its_readable_prefix() {
        let text = r#"{"version": "2.0", "status":"canary", "rolloutPercentage": 25, "canaryUsers": ["a@x", "b"#;
        let stored = to_stored(&row(text, Rev::Counter(3)));
        assert_eq!(
            Value::Object(stored.fields.clone()),
            json!({"version": "2.0", "status": "canary", "rolloutPercentage": 25})
        );
        assert!(
            stored.defect.as_deref().unwrap().contains("not valid JSON"),
            "{stored:?}"
        );
    }

    #[test]
    fn a_damaged_document_is_rebuilt_readable_and_keeps_its_text() {
        for (text, version) in [
            (r#"["version", 1]"#, UNKNOWN_VERSION),
            (r#"garbage "version" : "3.1.4" more"#, "3.1.4"),
            (r#"{"version": {"x": 1}, "plan": 7, "#, UNKNOWN_VERSION),
        ] {
            let mut patch = Patch::default();
            patch.set("status", json!("rolled-back"));
            let out = patched_text(&row(text, Rev::Counter(1)), &patch).unwrap();
            let fields: Fields = serde_json::from_str(&out).unwrap();
            let r = Rollout::from_fields("r", &fields).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.version, version, "{text}");
            assert_eq!(fields[UNREADABLE_DOCUMENT], json!(text));
        }
    }

    #[test]
    fn revisions_match_only_themselves() {
        assert!(Rev::Counter(2).matches(&Revision("2".into())));
        assert!(!Rev::Counter(2).matches(&Revision("2.0".into())));
        assert!(Rev::Bad("two".into()).matches(&Revision("two".into())));
        assert!(!Rev::Bad("two".into()).matches(&Revision("2".into())));
    }
}
