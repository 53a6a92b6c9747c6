//! Audit events: one per operator or driver action, with before/after values
//! of the fields it changed and, for automatic decisions, the gate report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Create,
    SetRevisions,
    SetPercent,
    AddUsers,
    RemoveUsers,
    Advance,
    Pause,
    Resume,
    Rollback,
    Promote,
    Complete,
    /// An automatic decision that changed nothing but is worth recording (halt proposed, confirmation asked).
    Decision,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Create => "create",
            EventKind::SetRevisions => "set-revisions",
            EventKind::SetPercent => "set-percent",
            EventKind::AddUsers => "add-users",
            EventKind::RemoveUsers => "remove-users",
            EventKind::Advance => "advance",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::Rollback => "rollback",
            EventKind::Promote => "promote",
            EventKind::Complete => "complete",
            EventKind::Decision => "decision",
        }
    }
}

/// Stored shape (camelCase JSON, same in SQLite and Firestore `rollout_events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub rollout_id: String,
    pub kind: EventKind,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// Old values of the changed fields (null where the field was absent).
    pub before: Value,
    /// New values of the changed fields (null where the field is removed).
    pub after: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The gate report behind an automatic decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_report: Option<Value>,
}

impl Event {
    /// A stored event that cannot be read, shown as what can be told about it (kind, actor
    /// and time where they read; the stored text under `after.unreadableEvent`) instead of
    /// hiding every other event of the rollout. `stored` is the raw text; `label` names the
    /// record ("stored event #12"); `fallback_at` is the store's own time for it, if any.
    pub fn unreadable(
        rollout_id: &str,
        stored: &str,
        label: &str,
        why: &str,
        fallback_at: Option<DateTime<Utc>>,
    ) -> Event {
        let obj = serde_json::from_str::<Value>(stored).unwrap_or(Value::Null);
        let at = obj
            .get("at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Event {
            rollout_id: rollout_id.to_string(),
            kind: obj
                .get("kind")
                .and_then(|k| EventKind::deserialize(k).ok())
                .unwrap_or(EventKind::Decision),
            actor: obj
                .get("actor")
                .and_then(Value::as_str)
                .unwrap_or("(unknown)")
                .to_string(),
            at: at.or(fallback_at).unwrap_or(DateTime::UNIX_EPOCH),
            before: Value::Null,
            after: serde_json::json!({ "unreadableEvent": stored }),
            reason: Some(format!(
                "{label} could not be read ({why}); its stored text is under after.unreadableEvent"
            )),
            gate_report: None,
        }
    }
}

/// Keys in `new` but not `old`, and in `old` but not `new`, each in list order.
pub fn list_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    use std::collections::HashSet;
    let was: HashSet<&str> = old.iter().map(String::as_str).collect();
    let is: HashSet<&str> = new.iter().map(String::as_str).collect();
    let added = new
        .iter()
        .filter(|k| !was.contains(k.as_str()))
        .cloned()
        .collect();
    let removed = old
        .iter()
        .filter(|k| !is.contains(k.as_str()))
        .cloned()
        .collect();
    (added, removed)
}

/// One changed field as people read it: `rolloutPercentage 5 -> 25`, or for a user list
/// `canaryUsers +a@x.com -b@x.com (3 -> 3)`. Reads both the compact list form events are
/// written in and the whole lists that older events stored.
pub fn describe_change(name: &str, before: &Value, after: &Value) -> String {
    if let Some(text) = describe_list_change(before, after) {
        return format!("{name} {text}");
    }
    format!("{name} {before} -> {after}")
}

/// A user list's change (`+a -b (3 -> 3)`), or None if the values are not a list change.
pub fn describe_list_change(before: &Value, after: &Value) -> Option<String> {
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect()
    };
    let count = |v: &Value| v.get("count").and_then(Value::as_u64);
    let (added, removed, was, is) = match (before, after) {
        (Value::Array(_), Value::Array(_)) => {
            let (old, new) = (strings(before)?, strings(after)?);
            let (added, removed) = list_diff(&old, &new);
            (added, removed, old.len() as u64, new.len() as u64)
        }
        (Value::Object(_), Value::Object(a)) => {
            let (was, is) = (count(before)?, count(after)?);
            let keys = |k: &str| a.get(k).map_or(Some(Vec::new()), strings);
            (keys("added")?, keys("removed")?, was, is)
        }
        _ => return None,
    };
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = added
        .iter()
        .map(|k| format!("+{k}"))
        .chain(removed.iter().map(|k| format!("-{k}")))
        .collect();
    let hidden = parts.len().saturating_sub(SHOWN);
    parts.truncate(SHOWN);
    if hidden > 0 {
        parts.push(format!("and {hidden} more"));
    }
    parts.push(format!("({was} -> {is})"));
    Some(parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_changes_read_the_same_in_both_forms() {
        let compact = describe_change(
            "canaryUsers",
            &json!({"count": 2}),
            &json!({"count": 2, "added": ["c@x.com"], "removed": ["a@x.com"]}),
        );
        let whole = describe_change(
            "canaryUsers",
            &json!(["a@x.com", "b@x.com"]),
            &json!(["b@x.com", "c@x.com"]),
        );
        assert_eq!(compact, "canaryUsers +c@x.com -a@x.com (2 -> 2)");
        assert_eq!(whole, compact);
        assert_eq!(
            describe_change("rolloutPercentage", &json!(5), &json!(25)),
            "rolloutPercentage 5 -> 25"
        );
    }

    #[test]
    fn long_changes_are_counted_not_listed() {
        let added: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
        let text = describe_change(
            "excludedUsers",
            &json!({"count": 0}),
            &json!({"count": 12, "added": added}),
        );
        assert_eq!(
            text,
            "excludedUsers +u0 +u1 +u2 +u3 +u4 and 7 more (0 -> 12)"
        );
    }
}
