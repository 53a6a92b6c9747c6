//! What a notification says, and its two wire shapes: the generic webhook's JSON and a
//! Slack incoming webhook's `text` plus `blocks`. Pure: built from domain types, escaped
//! through the presentation layer like everything else shown to people.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::config::NotifyEvent;
use crate::domain::event::Event;
use crate::domain::health::GateReport;
use crate::domain::rollout::Rollout;
use crate::present::{self, escape};

/// A rollout's state when the message was made.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutState {
    pub id: String,
    pub version: String,
    /// "25%"
    pub percent: String,
    /// "2/5 25%", or "no plan"
    pub stage: String,
    pub status: String,
}

impl RolloutState {
    pub fn of(r: &Rollout) -> RolloutState {
        RolloutState {
            id: escape(&r.id).into_owned(),
            version: escape(&r.version).into_owned(),
            percent: r.percentage.to_string(),
            stage: present::stage_label(r),
            status: present::status_label(r.status).to_string(),
        }
    }
}

/// One message, ready to be shaped for a target. Every text is escaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event: NotifyEvent,
    /// One line: "web: HALT by auto:ci#12 — auto-halt: canary error rate 2.10 % > 1.00 %".
    pub headline: String,
    pub rollout: Option<RolloutState>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// What changed: "rolloutPercentage 5 -> 0, status "canary" -> "rolled-back"".
    pub change: Option<String>,
    pub at: DateTime<Utc>,
    /// The gate report behind it: a verdict line, then one line per distinct gate text.
    pub gates: Vec<String>,
    /// The report as stored, for machines (generic webhook only).
    pub gate_report: Option<Value>,
    /// `notify-test`'s message, about nothing that happened.
    pub test: bool,
}

/// The longest text put in one Slack block (Slack refuses sections over 3000 characters).
const SLACK_SECTION_CHARS: usize = 2900;
/// Slack's header block takes 150 characters of plain text.
const SLACK_HEADER_CHARS: usize = 148;

impl Notice {
    /// A message about an audit event that `event` names.
    pub fn from_event(event: NotifyEvent, e: &Event, rollout: Option<&Rollout>) -> Notice {
        let actor = escape(&e.actor).into_owned();
        let reason = e.reason.as_deref().map(|r| escape(r).into_owned());
        let what = match event {
            NotifyEvent::Halt => "HALTED",
            NotifyEvent::Rollback => "ROLLED BACK",
            NotifyEvent::Complete => "COMPLETE",
            NotifyEvent::Override => "OVERRIDE",
            other => other.as_str(),
        };
        let mut headline = format!(
            "{}: {what} by {actor}{}",
            escape(&e.rollout_id),
            if present::is_automatic(e) {
                " (auto-progression)"
            } else {
                ""
            }
        );
        if let Some(r) = &reason {
            headline.push_str(&format!(" — {r}"));
        }
        let change = event_change(e);
        let (gates, gate_report) = match &e.gate_report {
            Some(raw) => (stored_report_lines(raw), Some(raw.clone())),
            None => (Vec::new(), None),
        };
        Notice {
            event,
            headline,
            rollout: rollout.map(RolloutState::of),
            actor: Some(actor),
            reason,
            change,
            at: e.at,
            gates,
            gate_report,
            test: false,
        }
    }

    /// A message about a condition (a waiting confirmation, a lost lease, an outage, a freeze).
    pub fn from_condition(
        event: NotifyEvent,
        headline: String,
        rollout: Option<&Rollout>,
        report: Option<&GateReport>,
        at: DateTime<Utc>,
    ) -> Notice {
        Notice {
            event,
            headline,
            rollout: rollout.map(RolloutState::of),
            actor: None,
            reason: None,
            change: None,
            at,
            gates: report.map(report_lines).unwrap_or_default(),
            gate_report: report.map(GateReport::to_json),
            test: false,
        }
    }

    /// `rollout-tui notify-test`'s message.
    pub fn test(sender: &str, at: DateTime<Utc>) -> Notice {
        Notice {
            // Not sent as such: `test` makes its name on the wire "test".
            event: NotifyEvent::Complete,
            headline: format!(
                "rollout-tui test message from {}: this target is configured and reachable",
                escape(sender)
            ),
            rollout: None,
            actor: Some(escape(sender).into_owned()),
            reason: None,
            change: None,
            at,
            gates: Vec::new(),
            gate_report: None,
            test: true,
        }
    }

    /// The generic webhook's JSON body (camelCase, like every JSON the tool writes).
    pub fn webhook_body(&self) -> Value {
        json!({
            "source": "rollout-tui",
            "event": self.event_name(),
            "text": self.headline,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "actor": self.actor,
            "reason": self.reason,
            "change": self.change,
            "rollout": self.rollout.as_ref().map(|r| json!({
                "id": r.id,
                "version": r.version,
                "percent": r.percent,
                "stage": r.stage,
                "status": r.status,
            })),
            "gates": self.gates,
            "gateReport": self.gate_report,
        })
    }

    /// A Slack incoming webhook's body: `text` (the notification and fallback line) and
    /// `blocks` (header, the headline, the rollout's state as fields, the gate report).
    pub fn slack_body(&self) -> Value {
        let mut blocks = vec![
            json!({
                "type": "header",
                "text": {"type": "plain_text", "text": crate::metrics::redact::clip(&self.header(), SLACK_HEADER_CHARS)},
            }),
            section(&slack_escape(&self.headline)),
        ];
        if let Some(r) = &self.rollout {
            let field = |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(value))});
            blocks.push(json!({
                "type": "section",
                "fields": [
                    field("Rollout", &r.id),
                    field("Version", &r.version),
                    field("Traffic", &r.percent),
                    field("Stage", &r.stage),
                    field("Status", &r.status),
                ],
            }));
        }
        if let Some(change) = &self.change {
            blocks.push(section(&format!("*Changed:* {}", slack_escape(change))));
        }
        if !self.gates.is_empty() {
            let text = format!(
                "*Gate report*\n```{}```",
                slack_escape(&self.gates.join("\n"))
            );
            blocks.push(section(&text));
        }
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!(
                "rollout-tui · {} UTC", self.at.format("%Y-%m-%d %H:%M:%S")
            )}],
        }));
        json!({ "text": slack_escape(&self.headline), "blocks": blocks })
    }

    /// The event's name on the wire: `test` for `notify-test`'s message.
    pub fn event_name(&self) -> &'static str {
        if self.test {
            "test"
        } else {
            self.event.as_str()
        }
    }

    fn header(&self) -> String {
        let rollout = self
            .rollout
            .as_ref()
            .map(|r| format!(" · {}", r.id))
            .unwrap_or_default();
        format!("rollout-tui: {}{rollout}", self.event_name())
    }
}

fn section(text: &str) -> Value {
    json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": crate::metrics::redact::clip(text, SLACK_SECTION_CHARS)},
    })
}

/// Slack reads `&`, `<` and `>` as markup (links, mentions): stored text must not ping
/// `<!channel>` or hide a link behind a reason.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What an event changed, as the audit log shows it; None for a decision that changed nothing.
fn event_change(e: &Event) -> Option<String> {
    let Value::Object(after) = &e.after else {
        return None;
    };
    let before = e.before.as_object();
    let parts: Vec<String> = after
        .iter()
        // Times are the message's own; a pause or rollback reason is its `reason`.
        .filter(|(k, _)| !k.ends_with("At") && !k.ends_with("Reason"))
        .map(|(k, v)| {
            present::field_change(k, before.and_then(|b| b.get(k)).unwrap_or(&Value::Null), v)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A gate report as lines: its verdict, then the gates that say something, failing first.
pub fn report_lines(report: &GateReport) -> Vec<String> {
    let mut lines = vec![present::health_line(Some(report))];
    lines.extend(
        present::grouped_gates(&report.gates, report.sample_taken_at)
            .into_iter()
            .map(|(verdict, names, text)| {
                format!("{} {names}: {text}", present::verdict_badge(Some(verdict)))
            }),
    );
    lines
}

fn stored_report_lines(raw: &Value) -> Vec<String> {
    match serde_json::from_value::<GateReport>(raw.clone()) {
        Ok(report) => report_lines(&report),
        Err(_) => vec![format!(
            "gate report (as stored): {}",
            escape(&raw.to_string())
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventKind;

    #[test]
    fn slack_blocks_stay_within_slacks_limits() {
        let long = "x".repeat(10_000);
        let e = Event {
            rollout_id: "r".repeat(200),
            kind: EventKind::Pause,
            actor: "alice".into(),
            at: DateTime::UNIX_EPOCH,
            before: json!({}),
            after: json!({}),
            reason: Some(long.clone()),
            gate_report: Some(json!({"not": long})),
        };
        let body = Notice::from_event(NotifyEvent::Halt, &e, None).slack_body();
        for block in body["blocks"].as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                let limit = if block["type"] == "header" { 150 } else { 3000 };
                assert!(
                    text.chars().count() <= limit,
                    "{} chars",
                    text.chars().count()
                );
            }
        }
    }

    #[test]
    fn slack_markup_in_stored_text_stays_text() {
        let e = Event {
            rollout_id: "web".into(),
            kind: EventKind::Rollback,
            actor: "alice".into(),
            at: DateTime::UNIX_EPOCH,
            before: json!({"rolloutPercentage": 5}),
            after: json!({"rolloutPercentage": 0}),
            reason: Some("<!channel> see <https://evil|docs> & \u{1b}[2J".into()),
            gate_report: None,
        };
        let body = Notice::from_event(NotifyEvent::Rollback, &e, None).slack_body();
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(!text.contains('<') && !text.contains('\u{1b}'), "{text}");
        // Slack shows `&gt;` as `>`.
        assert!(
            body.to_string().contains("rolloutPercentage 5 -&gt; 0"),
            "{body}"
        );
    }
}
