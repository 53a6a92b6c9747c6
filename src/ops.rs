//! Performing an action against a store: read, validate, compare-and-set.
//! Shared by the CLI and the cockpit so both treat conflicts the same way.

use serde_json::Value;

use crate::domain::actions::{self, Action, ActionError, Context, Transition};
use crate::domain::rollout::{DocError, Fields, field};
use crate::store::{RolloutStore, StoreError, StoredRollout};

/// How often an absolute action is re-validated and retried after losing a race.
const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum PerformError {
    #[error("rollout '{0}' does not exist")]
    NotFound(String),
    #[error("{0}; fix the document before changing it")]
    Malformed(DocError),
    #[error("{0}")]
    Refused(ActionError),
    /// A relative action (advance) lost a race: re-applying it blindly could skip a stage.
    #[error(
        "rollout '{id}' changed while you were acting ({}); nothing was written. Check `status {id}` and run the command again if it still applies",
        describe_changes(.changed)
    )]
    Conflict {
        id: String,
        current: Box<StoredRollout>,
        changed: Vec<FieldChange>,
    },
    #[error("{0}")]
    Store(StoreError),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

fn describe_changes(changes: &[FieldChange]) -> String {
    if changes.is_empty() {
        return "no visible field changed".into();
    }
    changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.field, short(&c.before), short(&c.after)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(39).collect::<String>())
    } else {
        s
    }
}

/// Fields that differ between two versions of a document (lastUpdatedAt aside).
pub fn diff_fields(before: &Fields, after: &Fields) -> Vec<FieldChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| n.as_str() != field::LAST_UPDATED_AT)
        .filter_map(|n| {
            let b = before.get(n).cloned().unwrap_or(Value::Null);
            let a = after.get(n).cloned().unwrap_or(Value::Null);
            (a != b).then(|| FieldChange {
                field: n.clone(),
                before: b,
                after: a,
            })
        })
        .collect()
}

/// Advancing is relative to the stage seen; everything else states its target,
/// and its validation refuses a second application.
fn safe_to_reapply(action: &Action) -> bool {
    !matches!(action, Action::Advance)
}

#[derive(Debug)]
pub struct Performed {
    pub stored: StoredRollout,
    pub transition: Transition,
    /// Races lost and re-validated before the write went through.
    pub retries: u32,
}

pub async fn perform(
    store: &dyn RolloutStore,
    id: &str,
    action: &Action,
    ctx: Context<'_>,
) -> Result<Performed, PerformError> {
    perform_with_evidence(store, id, action, ctx, None).await
}

/// As `perform`, recording `evidence` (the gate report behind an automatic decision)
/// in the audit event written with the change.
pub async fn perform_with_evidence(
    store: &dyn RolloutStore,
    id: &str,
    action: &Action,
    ctx: Context<'_>,
    evidence: Option<&Value>,
) -> Result<Performed, PerformError> {
    let mut retries = 0;
    loop {
        let seen = store
            .get(id)
            .await
            .map_err(PerformError::Store)?
            .ok_or_else(|| PerformError::NotFound(id.into()))?;
        let mut transition = match (seen.parse(), action) {
            (Ok(rollout), _) => actions::apply(&rollout, &seen.fields, action, ctx),
            (Err(e), Action::Rollback { reason }) => {
                tracing::warn!(rollout = id, error = %e, "rolling back a malformed document");
                actions::rollback_unparsed(id, &seen.fields, reason, ctx)
            }
            (Err(e), _) => return Err(PerformError::Malformed(e)),
        }
        .map_err(PerformError::Refused)?;
        if let Some(report) = evidence {
            transition = transition.with_gate_report(report.clone());
        }
        match store
            .patch(id, &seen.revision, &transition.patch, &transition.event)
            .await
        {
            Ok(stored) => {
                return Ok(Performed {
                    stored,
                    transition,
                    retries,
                });
            }
            Err(StoreError::Conflict { current, .. }) => {
                retries += 1;
                if !safe_to_reapply(action) || retries >= MAX_ATTEMPTS {
                    let changed = diff_fields(&seen.fields, &current.fields);
                    return Err(PerformError::Conflict {
                        id: id.into(),
                        current,
                        changed,
                    });
                }
                tracing::info!(
                    rollout = id,
                    retries,
                    "compare-and-set lost a race; re-validating on the current document"
                );
            }
            Err(e) => return Err(PerformError::Store(e)),
        }
    }
}
