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
