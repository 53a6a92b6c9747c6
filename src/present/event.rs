//! Audit events and field changes as people read them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::event::{Event, describe_change};
use crate::domain::health::{GateReport, GateResult, Verdict};
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

/// Whether the event was written by auto-progression (its actor is `auto:HOLDER`).
pub fn is_automatic(e: &Event) -> bool {
    e.actor.starts_with("auto:")
}

/// What the driver did, in one word for a card's title: "ROLLBACK", "HALT", "ADVANCE".
pub fn decision_word(e: &Event) -> String {
    use crate::domain::event::EventKind;
    match e.kind {
        EventKind::Pause => "HALT".into(),
        EventKind::Decision => "DECISION".into(),
        kind => kind.as_str().to_uppercase(),
    }
}

/// The gates of a report in the order a reader needs them: failing first, then
/// inconclusive, then passing (stable within each).
pub fn gates_by_severity(gates: &[GateResult]) -> Vec<&GateResult> {
    let rank = |v: Verdict| match v {
        Verdict::Fail => 0,
        Verdict::Inconclusive => 1,
        Verdict::Pass => 2,
    };
    let mut sorted: Vec<&GateResult> = gates.iter().collect();
    sorted.sort_by_key(|g| rank(g.verdict));
    sorted
}

/// One line per distinct gate text, gates in severity order: gates that say the same thing
/// (a metrics source error repeated by every gate) share one line naming all of them.
/// Each item: the verdict, the gate names, the text.
pub fn grouped_gates(
    gates: &[GateResult],
    sample_taken_at: DateTime<Utc>,
) -> Vec<(Verdict, String, String)> {
    let mut groups: Vec<(Verdict, Vec<String>, String)> = Vec::new();
    for g in gates_by_severity(gates) {
        let text = crate::present::gate_text(g, sample_taken_at);
        match groups
            .iter_mut()
            .find(|(v, _, t)| *v == g.verdict && *t == text)
        {
            Some((_, names, _)) => names.push(escape(&g.name).into_owned()),
            None => groups.push((g.verdict, vec![escape(&g.name).into_owned()], text)),
        }
    }
    groups
        .into_iter()
        .map(|(v, names, text)| (v, names.join(", "), text))
        .collect()
}

fn number(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x}"))
}

/// The whole of an event, one paragraph per line (to be wrapped by the view): who, when,
/// what, every field it changed, why, and the gate report behind it. Escaped.
pub fn event_detail(e: &Event, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = vec![
        format!("kind:   {}", e.kind.as_str()),
        format!(
            "by:     {}{}",
            escape(&e.actor),
            if is_automatic(e) {
                " (auto-progression)"
            } else {
                ""
            }
        ),
        format!(
            "when:   {} UTC ({})",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            crate::present::ago(Some(e.at), now)
        ),
    ];
    let changes: Vec<String> = match (&e.before, &e.after) {
        (before, Value::Object(after)) => after
            .iter()
            .map(|(k, v)| field_change(k, before.get(k).unwrap_or(&Value::Null), v))
            .collect(),
        _ => Vec::new(),
    };
    if changes.is_empty() {
        lines.push("changes: none (a decision recorded without a write)".into());
    } else {
        lines.push("changes:".into());
        lines.extend(changes.into_iter().map(|c| format!("  {c}")));
    }
    lines.push(format!(
        "reason: {}",
        e.reason.as_deref().map_or("(none given)".into(), escape)
    ));
    let Some(raw) = &e.gate_report else {
        return lines;
    };
    lines.push(String::new());
    match serde_json::from_value::<GateReport>(raw.clone()) {
        Ok(report) => {
            lines.push(format!(
                "gate report: {} (sample taken {} UTC)",
                crate::present::verdict_word(report.verdict),
                report.sample_taken_at.format("%Y-%m-%d %H:%M:%S")
            ));
            for g in gates_by_severity(&report.gates) {
                lines.push(format!(
                    "  {} {}: {}",
                    crate::present::verdict_badge(Some(g.verdict)),
                    escape(&g.name),
                    crate::present::gate_text(g, report.sample_taken_at)
                ));
                if g.observed.is_some() || g.threshold.is_some() {
                    lines.push(format!(
                        "      observed {} vs threshold {}{}",
                        number(g.observed),
                        number(g.threshold),
                        if g.severe { " (severe)" } else { "" }
                    ));
                }
            }
        }
        // An older or foreign shape: shown as stored rather than hidden.
        Err(_) => lines.push(format!(
            "gate report (as stored): {}",
            escape(&raw.to_string())
        )),
    }
    lines
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

    fn gate(name: &str, verdict: Verdict, detail: &str) -> GateResult {
        GateResult {
            name: name.into(),
            verdict,
            detail: detail.into(),
            observed: None,
            threshold: None,
            severe: false,
            failing_since: None,
            sustained: false,
            required_for: std::time::Duration::ZERO,
            leaning: None,
        }
    }

    #[test]
    fn gates_read_failing_first_and_a_shared_text_once() {
        let gates = [
            gate("freshness", Verdict::Pass, "fresh"),
            gate("min-requests", Verdict::Inconclusive, "no data: refused"),
            gate("error-rate", Verdict::Fail, "2 % > 1 %"),
            gate("p99", Verdict::Inconclusive, "no data: refused"),
        ];
        let grouped = grouped_gates(&gates, chrono::DateTime::UNIX_EPOCH);
        assert_eq!(
            grouped,
            vec![
                (Verdict::Fail, "error-rate".into(), "2 % > 1 %".into()),
                (
                    Verdict::Inconclusive,
                    "min-requests, p99".into(),
                    "no data: refused".into()
                ),
                (Verdict::Pass, "freshness".into(), "fresh".into()),
            ]
        );
    }

    #[test]
    fn an_event_in_full_has_every_field_the_reason_and_the_gates() {
        let mut e = event(
            json!({"status": "progressive", "rollbackReason": null}),
            json!({"status": "rolled-back", "rollbackReason": "spike", "rolledBackAt": "2026"}),
            Some("spike\u{1b}[2J"),
        );
        e.actor = "auto:host".into();
        let mut failing = gate("error-rate", Verdict::Fail, "2 % > 1 %");
        failing.observed = Some(0.02);
        failing.threshold = Some(0.01);
        let report = GateReport {
            evaluated_at: e.at,
            sample_taken_at: e.at,
            gates: vec![gate("freshness", Verdict::Pass, "fresh"), failing],
            verdict: Verdict::Fail,
        };
        e.gate_report = Some(report.to_json());
        let now = e.at + chrono::Duration::minutes(3);
        let text = event_detail(&e, now).join("\n");
        for needle in [
            "by:     auto:host (auto-progression)",
            "when:   1970-01-01 00:00:00 UTC (3m00s ago)",
            r#"  status "progressive" -> "rolled-back""#,
            r#"  rolledBackAt null -> "2026""#,
            r"reason: spike\x1b[2J",
            "gate report: FAIL",
            "  ✖ FAIL error-rate: 2 % > 1 %\n      observed 0.02 vs threshold 0.01",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        assert!(
            text.find("error-rate").unwrap() < text.find("freshness").unwrap(),
            "{text}"
        );
    }
}
