//! Audit events and field changes as people read them.

use serde_json::Value;

use crate::domain::event::{Event, describe_change};
use crate::domain::text::escape;

/// The fields that say what a creation made; the rest of a new document is detail.
const CREATED: [&str; 4] = ["version", "status", "rolloutPercentage", "hashing"];

/// One changed field: "rolloutPercentage 5 -> 25", "canaryUsers +a@x.com (2 -> 3)".
pub fn field_change(name: &str, before: &Value, after: &Value) -> String {
    escape(&describe_change(name, before, after)).into_owned()
}

/// What an event changed, and why: "rolloutPercentage 0 -> 5, status "canary" ->
/// "progressive"  reason: looks good". Timestamps are left out: the event's own time is
/// on its line.
pub fn event_text(e: &Event) -> String {
    let changes = match (&e.before, &e.after) {
        (Value::Object(before), Value::Object(after)) => after
            .iter()
            .filter(|(k, _)| !k.ends_with("At"))
            .map(|(k, v)| describe_change(k, before.get(k).unwrap_or(&Value::Null), v))
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Object(after)) => {
            let made: Vec<String> = CREATED
                .iter()
                .filter_map(|k| after.get(*k).map(|v| format!("{k} {v}")))
                .collect();
            if made.is_empty() {
                // Not a creation (an unreadable event keeps its stored text here): all of it.
                after
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                made.join(", ")
            }
        }
        _ => String::new(),
    };
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!("  reason: {r}"))
        .unwrap_or_default();
    escape(&format!("{changes}{reason}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventKind;
    use serde_json::json;

    fn event(before: Value, after: Value, reason: Option<&str>) -> Event {
        Event {
            rollout_id: "web".into(),
            kind: EventKind::Advance,
            actor: "alice".into(),
            at: chrono::DateTime::UNIX_EPOCH,
            before,
            after,
            reason: reason.map(str::to_string),
            gate_report: None,
        }
    }

    #[test]
    fn changes_read_before_and_after_without_timestamps() {
        let e = event(
            json!({"rolloutPercentage": 0, "status": "canary", "stageEnteredAt": null}),
            json!({"rolloutPercentage": 5, "status": "progressive", "stageEnteredAt": "2026-03-01T08:00:00Z"}),
            None,
        );
        assert_eq!(
            event_text(&e),
            r#"rolloutPercentage 0 -> 5, status "canary" -> "progressive""#
        );
        let users = event(
            json!({"canaryUsers": {"count": 2}}),
            json!({"canaryUsers": {"count": 3, "added": ["c@x.com"]}}),
            Some("beta"),
        );
        assert_eq!(
            event_text(&users),
            "canaryUsers +c@x.com (2 -> 3)  reason: beta"
        );
    }

    #[test]
    fn a_creation_names_what_it_made() {
        let e = event(
            Value::Null,
            json!({"version": "2.0.0", "status": "canary", "rolloutPercentage": 0,
                   "hashing": "fractional-v1", "canaryUsers": ["a"], "createdAt": "x"}),
            None,
        );
        assert_eq!(
            event_text(&e),
            r#"version "2.0.0", status "canary", rolloutPercentage 0, hashing "fractional-v1""#
        );
        let unreadable = event(Value::Null, json!({"unreadableEvent": "{bad"}), Some("why"));
        assert_eq!(
            event_text(&unreadable),
            r#"unreadableEvent "{bad"  reason: why"#
        );
    }

    #[test]
    fn stored_text_is_escaped() {
        let e = event(
            json!({"status": "canary"}),
            json!({"status": "paused\u{1b}[2J"}),
            Some("clear\u{1b}[2J screen\u{202e}"),
        );
        assert_eq!(
            event_text(&e),
            r#"status "canary" -> "paused\u001b[2J"  reason: clear\x1b[2J screen\u{202e}"#
        );
        assert_eq!(
            field_change("version", &json!("1"), &json!("2\u{202e}")),
            "version \"1\" -> \"2\\u{202e}\""
        );
    }
}
