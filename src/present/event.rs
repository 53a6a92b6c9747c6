//! Audit events and field changes as people read them.

use serde_json::Value;

use crate::domain::event::{Event, describe_change};
use crate::domain::text::escape;

/// The fields that say what a creation made; the rest of a new document is detail.
const CREATED: [&str; 4] = ["version", "status", "rolloutPercentage", "hashing"];

/// One changed field: "rolloutPercentage 5 -> 25", "canaryUsers +a@x.com (2 -> 3)".
pub fn field_change(name: &str, before: &Value, after: &Value) -> String {
    field_change_in(name, before, after, None)
}

/// One changed field of a rollout with `stages` stages in its plan: the stage is counted
/// from 1 as everywhere else on screen ("stage 2/5 -> 3/5"), not as stored (0-based).
pub fn field_change_in(name: &str, before: &Value, after: &Value, stages: Option<usize>) -> String {
    if name == crate::domain::rollout::field::CURRENT_STAGE {
        let shown = |v: &Value| match (v.as_u64(), stages) {
            (Some(i), Some(n)) => format!("{}/{n}", i + 1),
            (Some(i), None) => (i + 1).to_string(),
            (None, _) => "none".to_string(),
        };
        return format!("stage {} -> {}", shown(before), shown(after));
    }
    escape(&describe_change(name, before, after)).into_owned()
}

/// Who made the change a write lost to, as far as the audit log says.
pub fn change_author(by: Option<&Event>, now: chrono::DateTime<chrono::Utc>) -> String {
    match by {
        Some(e) => format!(
            "Changed by {} ({}, {}; the newest audit event since you looked).",
            escape(&e.actor),
            e.kind.as_str(),
            crate::present::ago(Some(e.at), now)
        ),
        None => {
            "Who changed it is not known: the audit log has no event since you looked.".to_string()
        }
    }
}

/// Which side a user key lands on and why, line by line: the lists first, then the bucket
/// against the percentage with the hashing scheme that made it.
pub fn assignment_lines(
    r: &crate::domain::rollout::Rollout,
    key: &str,
    a: &crate::domain::assign::Assignment,
) -> Vec<String> {
    use crate::domain::assign::{FRACTIONAL_BUCKETS, Reason};
    use crate::domain::rollout::Hashing;
    let side = match a.side {
        crate::domain::health::Side::Canary => "CANARY",
        crate::domain::health::Side::Stable => "stable",
    };
    let mut lines = vec![format!(
        "{} is on {side}: {}",
        escape(key),
        a.reason.explain()
    )];
    match a.reason {
        Reason::CanaryUser => lines.push("listed in the canary users".into()),
        Reason::Excluded => lines.push("listed in the excluded users (always stable)".into()),
        Reason::Bucket { hashing, .. } => {
            lines.push(format!("rollout at {}", r.percentage));
            lines.push(match hashing {
                Hashing::FractionalV1 => format!(
                    "fractional-v1: bucket = (murmur3_x86_32(id + key) * {FRACTIONAL_BUCKETS}) >> 32; canary iff bucket < percent * 100"
                ),
                Hashing::UnleashV1 => "unleash-v1: n = murmur3_x86_32(id + \":\" + key) % 100 + 1; canary iff n <= percent".into(),
            });
        }
        Reason::RolledBack | Reason::NotStarted => {}
    }
    lines
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
