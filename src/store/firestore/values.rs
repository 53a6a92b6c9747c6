//! Firestore values <-> JSON fields, timestamps and revisions, leases and events.

use super::*;

pub(super) fn value(v: ValueType) -> fs::Value {
    fs::Value {
        value_type: Some(v),
    }
}

/// Firestore keeps microseconds; truncating here makes what a write returns equal what a read sees.
pub(super) fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos() / 1000 * 1000).unwrap_or(0),
    }
}

pub(super) fn time_of(t: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
}

/// The shortest exact RFC 3339 form: whole seconds, millis, micros or nanos.
pub(super) fn time_text(t: &Timestamp) -> String {
    time_of(t).map_or_else(
        || format!("invalid timestamp {}s {}ns", t.seconds, t.nanos),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

pub(super) fn revision_of(t: Option<&Timestamp>) -> Revision {
    Revision(
        t.and_then(time_of)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
            .unwrap_or_default(),
    )
}

pub(super) fn parse_revision(r: &Revision) -> Option<Timestamp> {
    let t = DateTime::parse_from_rfc3339(r.0.trim()).ok()?;
    let t = t.with_timezone(&Utc);
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    })
}

/// A field value; named timestamp fields holding RFC 3339 text become `timestampValue`.
pub(super) fn to_field(name: &str, v: &Json, timestamps: &[&str]) -> fs::Value {
    if timestamps.contains(&name)
        && let Json::String(s) = v
        && let Ok(t) = DateTime::parse_from_rfc3339(s)
    {
        return value(ValueType::TimestampValue(timestamp(t.with_timezone(&Utc))));
    }
    to_value(v)
}

pub(super) fn rollout_field(name: &str, v: &Json) -> fs::Value {
    to_field(name, v, &field::TIMESTAMPS)
}

pub(super) fn to_value(v: &Json) -> fs::Value {
    value(match v {
        Json::Null => ValueType::NullValue(0),
        Json::Bool(b) => ValueType::BooleanValue(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => ValueType::IntegerValue(i),
            None => ValueType::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => ValueType::StringValue(s.clone()),
        Json::Array(a) => ValueType::ArrayValue(fs::ArrayValue {
            values: a.iter().map(to_value).collect(),
        }),
        Json::Object(m) => match tagged(m) {
            Some(t) => t,
            None => ValueType::MapValue(fs::MapValue {
                fields: m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
            }),
        },
    })
}

/// The JSON forms `from_value` gives bytes, references and geo points, read back.
pub(super) fn tagged(m: &Map<String, Json>) -> Option<ValueType> {
    if m.len() != 1 {
        return None;
    }
    let (tag, v) = m.iter().next()?;
    match (tag.as_str(), v) {
        ("bytesValue", Json::String(s)) => unbase64(s).map(ValueType::BytesValue),
        ("referenceValue", Json::String(s)) => Some(ValueType::ReferenceValue(s.clone())),
        ("geoPointValue", Json::Object(p)) if p.len() == 2 => Some(ValueType::GeoPointValue(
            firestore::gcloud_sdk::google::r#type::LatLng {
                latitude: p.get("latitude")?.as_f64()?,
                longitude: p.get("longitude")?.as_f64()?,
            },
        )),
        _ => None,
    }
}

pub(super) fn from_value(v: &fs::Value) -> Json {
    let tag = |name: &str, v: Json| Json::Object(Map::from_iter([(name.to_string(), v)]));
    match &v.value_type {
        None | Some(ValueType::NullValue(_)) => Json::Null,
        Some(ValueType::BooleanValue(b)) => Json::Bool(*b),
        Some(ValueType::IntegerValue(i)) => Json::from(*i),
        // JSON has no NaN or infinities; text shows them and nothing writes them back unasked.
        Some(ValueType::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Json::String(d.to_string()), Json::Number),
        Some(ValueType::TimestampValue(t)) => Json::String(time_text(t)),
        Some(ValueType::StringValue(s)) => Json::String(s.clone()),
        Some(ValueType::BytesValue(b)) => tag("bytesValue", Json::String(base64(b))),
        Some(ValueType::ReferenceValue(r)) => tag("referenceValue", Json::String(r.clone())),
        Some(ValueType::GeoPointValue(p)) => tag(
            "geoPointValue",
            serde_json::json!({"latitude": p.latitude, "longitude": p.longitude}),
        ),
        Some(ValueType::ArrayValue(a)) => Json::Array(a.values.iter().map(from_value).collect()),
        Some(ValueType::MapValue(m)) => Json::Object(from_fields(&m.fields)),
        // Pipeline expressions never occur in stored documents.
        Some(other) => Json::String(format!("{other:?}")),
    }
}

/// Sorted by name: Firestore returns fields in no particular order.
pub(super) fn from_fields(fields: &HashMap<String, fs::Value>) -> Fields {
    let sorted: BTreeMap<&String, &fs::Value> = fields.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| (k.clone(), from_value(v)))
        .collect()
}

pub(super) fn doc_id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub(super) fn stored(doc: fs::Document) -> StoredRollout {
    StoredRollout {
        id: doc_id(&doc.name).to_string(),
        revision: revision_of(doc.update_time.as_ref()),
        fields: from_fields(&doc.fields),
        defect: None,
    }
}

/// Where an event stands in commit order: the server's commit time where recorded,
/// else the client's time; then the commit's exact time (microseconds, where the
/// recorded one has milliseconds).
pub(super) type EventOrder = (Option<(i64, i32)>, Option<(i64, i32)>);

pub(super) fn event_order(doc: &fs::Document) -> EventOrder {
    let time = |name: &str| match doc.fields.get(name).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::TimestampValue(t)) => Some((t.seconds, t.nanos)),
        _ => None,
    };
    let created = doc.create_time.as_ref().map(|t| (t.seconds, t.nanos));
    (time(EVENT_COMMITTED).or_else(|| time(EVENT_TIME)), created)
}

/// An event document; one that does not read as an event is shown as unreadable (with its
/// fields), so one bad document never hides the rest of a rollout's audit log.
pub(super) fn event_of(rollout_id: &str, doc: &fs::Document) -> Event {
    let fields = Json::Object(from_fields(&doc.fields));
    match serde_json::from_value::<Event>(fields.clone()) {
        Ok(event) => event,
        Err(e) => Event::unreadable(
            rollout_id,
            &fields.to_string(),
            &format!("stored event {}", doc.name),
            &e.to_string(),
            doc.create_time.as_ref().and_then(|t| {
                DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
            }),
        ),
    }
}

pub(super) fn lease_fields(lease: &Lease) -> HashMap<String, fs::Value> {
    HashMap::from([
        (
            "rolloutId".to_string(),
            value(ValueType::StringValue(lease.rollout_id.clone())),
        ),
        (
            "holder".to_string(),
            value(ValueType::StringValue(lease.holder.clone())),
        ),
        (
            "acquiredAt".to_string(),
            value(ValueType::TimestampValue(timestamp(lease.acquired_at))),
        ),
        (
            "expiresAt".to_string(),
            value(ValueType::TimestampValue(timestamp(lease.expires_at))),
        ),
    ])
}

pub(super) fn freeze_fields(freeze: &Freeze) -> HashMap<String, fs::Value> {
    HashMap::from([
        (
            "by".to_string(),
            value(ValueType::StringValue(freeze.by.clone())),
        ),
        (
            "at".to_string(),
            value(ValueType::TimestampValue(timestamp(freeze.at))),
        ),
        (
            "reason".to_string(),
            value(ValueType::StringValue(freeze.reason.clone())),
        ),
    ])
}

/// The freeze document. One that cannot be read still freezes: it was set for a reason.
pub(super) fn freeze_of(doc: &fs::Document) -> Freeze {
    let text = |name: &str| match doc.fields.get(name).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let at = match doc.fields.get("at").and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::TimestampValue(t)) => time_of(t),
        _ => None,
    };
    match (text("by"), at, text("reason")) {
        (Some(by), Some(at), Some(reason)) => Freeze { by, at, reason },
        _ => Freeze::unreadable(
            DateTime::UNIX_EPOCH,
            format!(
                "the freeze document {} is unreadable (by, at, reason); unfreeze to clear it",
                doc.name
            ),
        ),
    }
}

/// Malformed lease documents are reported, never overwritten (DATA_LOSS maps to `StoreError::Other`).
pub(super) fn lease_of(rollout_id: &str, doc: &fs::Document) -> Result<Lease, Status> {
    let bad = |why: &str| Status::data_loss(format!("lease document {} {why}", doc.name));
    let time = |name: &str| match doc.fields.get(name).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::TimestampValue(t)) => {
            time_of(t).ok_or_else(|| bad(&format!("has an invalid {name}")))
        }
        _ => Err(bad(&format!("has no timestamp {name}"))),
    };
    let holder = match doc.fields.get("holder").and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::StringValue(h)) => h.clone(),
        _ => return Err(bad("has no holder")),
    };
    Ok(Lease {
        rollout_id: rollout_id.to_string(),
        holder,
        acquired_at: time("acquiredAt")?,
        expires_at: time("expiresAt")?,
    })
}

/// Firestore's limit on one document (the document and its event are checked alike).
pub(super) const MAX_DOCUMENT: usize = 1_048_576;

/// Storage size of a value, as Firestore counts it against `MAX_DOCUMENT`
/// (its "storage size calculations": text is UTF-8 plus one byte, numbers and
/// times 8, maps the sizes of their keys and values).
pub(super) fn value_size(v: &fs::Value) -> usize {
    match &v.value_type {
        None | Some(ValueType::NullValue(_)) | Some(ValueType::BooleanValue(_)) => 1,
        Some(ValueType::IntegerValue(_))
        | Some(ValueType::DoubleValue(_))
        | Some(ValueType::TimestampValue(_)) => 8,
        Some(ValueType::GeoPointValue(_)) => 16,
        Some(ValueType::StringValue(s)) => s.len() + 1,
        Some(ValueType::BytesValue(b)) => b.len(),
        Some(ValueType::ReferenceValue(r)) => name_size(r),
        Some(ValueType::ArrayValue(a)) => a.values.iter().map(value_size).sum(),
        Some(ValueType::MapValue(m)) => fields_size(&m.fields),
        Some(other) => format!("{other:?}").len(),
    }
}

fn field_size(name: &str, v: &fs::Value) -> usize {
    name.len() + 1 + value_size(v)
}

fn fields_size(fields: &HashMap<String, fs::Value>) -> usize {
    fields.iter().map(|(k, v)| field_size(k, v)).sum()
}

/// A document name counts its collection and document ids, plus 16.
fn name_size(name: &str) -> usize {
    let path = name.split_once("/documents/").map_or(name, |(_, p)| p);
    path.split('/').map(|id| id.len() + 1).sum::<usize>() + 16
}

pub(super) fn document_size(name: &str, fields: &HashMap<String, fs::Value>) -> usize {
    name_size(name) + fields_size(fields) + 32
}

/// Refuses, before sending, a document Firestore would refuse for its size, and
/// says what makes it big.
pub(super) fn fits(
    what: &str,
    name: &str,
    fields: &HashMap<String, fs::Value>,
    extra: usize,
) -> StoreResult<()> {
    let size = document_size(name, fields) + extra;
    if size <= MAX_DOCUMENT {
        return Ok(());
    }
    let biggest = fields
        .iter()
        .max_by_key(|(k, v)| field_size(k, v))
        .map(|(k, v)| {
            let entries = match &v.value_type {
                Some(ValueType::ArrayValue(a)) => format!(" ({} entries)", grouped(a.values.len())),
                _ => String::new(),
            };
            format!("; {k}{entries} takes {}", megabytes(field_size(k, v)))
        })
        .unwrap_or_default();
    Err(StoreError::Other(format!(
        "{what} would be {} ({} bytes), over Firestore's 1 MiB limit ({} bytes) for one document{biggest}. Nothing was written: make it smaller (a canary percentage reaches users without listing each one)",
        megabytes(size),
        grouped(size),
        grouped(MAX_DOCUMENT),
    )))
}

fn megabytes(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// 1234567 -> "1,234,567".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) const B64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(super) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(B64[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

/// Only canonical base64 counts, so a map that merely looks tagged stays a map.
pub(super) fn unbase64(s: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        acc = (acc << 6) | B64.iter().position(|&b| b == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (base64(&out) == s).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_round_trips_and_rejects_non_canonical_text() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\x00\xff\x10hello"] {
            let text = base64(bytes);
            assert_eq!(unbase64(&text).as_deref(), Some(bytes), "{text}");
        }
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(unbase64("aGVsbG8"), None, "padding is required");
        assert_eq!(unbase64("not base64!"), None);
    }

    #[test]
    fn values_round_trip_with_their_types() {
        let doc = json!({
            "i": 0, "big": 1234567890123_i64, "d": 0.25, "whole": 1.0, "s": "x", "n": null,
            "b": true, "a": [1, "two", {"k": [3.5]}], "m": {"z": 1, "a": {"b": null}},
            "bytes": {"bytesValue": "aGVsbG8="},
            "ref": {"referenceValue": "projects/p/databases/(default)/documents/a/b"},
            "geo": {"geoPointValue": {"latitude": 1.5, "longitude": -2.25}},
            "notBytes": {"bytesValue": "***"},
        });
        let back = from_value(&to_value(&doc));
        assert_eq!(back, doc);
        assert!(back["whole"].is_f64() && back["i"].is_i64());
        let bytes = to_value(&doc["bytes"]);
        assert!(matches!(bytes.value_type, Some(ValueType::BytesValue(ref b)) if b == b"hello"));
        let not_bytes = to_value(&doc["notBytes"]);
        assert!(matches!(not_bytes.value_type, Some(ValueType::MapValue(_))));
    }

    #[test]
    fn timestamp_fields_become_timestamps_and_read_back_exactly() {
        for text in [
            "2025-12-03T10:00:00Z",
            "2025-12-03T10:00:00.250Z",
            "2025-12-03T10:00:00.123456Z",
        ] {
            let v = rollout_field(field::STARTED_AT, &json!(text));
            assert!(matches!(v.value_type, Some(ValueType::TimestampValue(_))));
            assert_eq!(from_value(&v), json!(text));
        }
        let offset = rollout_field(field::STARTED_AT, &json!("2025-12-03T11:00:00+01:00"));
        assert_eq!(from_value(&offset), json!("2025-12-03T10:00:00Z"));
        let nanos = rollout_field(field::STARTED_AT, &json!("2025-12-03T10:00:00.123456789Z"));
        assert_eq!(from_value(&nanos), json!("2025-12-03T10:00:00.123456Z"));
        // Not RFC 3339, or not a timestamp field: stays text.
        let bad = rollout_field(field::STARTED_AT, &json!("yesterday"));
        assert!(matches!(bad.value_type, Some(ValueType::StringValue(_))));
        let other = rollout_field("note", &json!("2025-12-03T10:00:00Z"));
        assert!(matches!(other.value_type, Some(ValueType::StringValue(_))));
    }

    #[test]
    fn revisions_keep_nanoseconds() {
        let t = Timestamp {
            seconds: 1_750_000_000,
            nanos: 123_456_000,
        };
        let r = revision_of(Some(&t));
        assert_eq!(r.0, "2025-06-15T15:06:40.123456000Z");
        assert_eq!(parse_revision(&r), Some(t));
        assert_eq!(parse_revision(&Revision("7".into())), None);
    }

    #[test]
    fn field_paths_are_quoted_when_needed() {
        assert_eq!(field_path("rolloutPercentage"), "rolloutPercentage");
        assert_eq!(field_path("_x1"), "_x1");
        assert_eq!(field_path("a.b"), "`a.b`");
        assert_eq!(field_path("1st"), "`1st`");
        assert_eq!(field_path("we`ird\\"), "`we\\`ird\\\\`");
    }

    #[test]
    fn document_sizes_follow_firestores_rules() {
        // Firestore's documented example: a `users/jeff/tasks/my_task_id` document of 147 bytes.
        let name = "projects/p/databases/(default)/documents/users/jeff/tasks/my_task_id";
        assert_eq!(name_size(name), 6 + 5 + 6 + 11 + 16);
        let fields = HashMap::from([
            ("type".to_string(), to_value(&json!("Personal"))),
            ("done".to_string(), to_value(&json!(false))),
            ("priority".to_string(), to_value(&json!(1))),
            (
                "description".to_string(),
                to_value(&json!("Learn Cloud Firestore")),
            ),
        ]);
        assert_eq!(document_size(name, &fields), 147);
        assert_eq!(grouped(1_048_576), "1,048,576");
        assert_eq!(grouped(999), "999");
        assert!(fits("it", name, &fields, 0).is_ok());
        let big = HashMap::from([(
            "canaryUsers".to_string(),
            to_value(&json!(vec!["user@example.com"; 70_000])),
        )]);
        let err = fits("rollout 'x': the document", name, &big, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("the document would be 1.19 MB (1,190,")
                && err
                    .to_string()
                    .contains("canaryUsers (70,000 entries) takes 1.19 MB"),
            "{err}"
        );
    }
}
