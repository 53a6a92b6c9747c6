//! Performing an action against a store: read, validate, compare-and-set.
//! Shared by the CLI and the cockpit so both treat conflicts the same way.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::domain::actions::{self, Action, ActionError, Context, Transition};
use crate::domain::freeze::{self, Frozen};
use crate::domain::rollout::{DocError, Fields, Rollout, field};
use crate::store::{RolloutStore, StoreError, StoredRollout};

/// How often an absolute action is re-validated and retried after losing a race, and the
/// backoff between tries: eight writers hammering one document all get through (issue 9:
/// 400 of 400 on both stores), while a write that keeps losing still ends within seconds.
const MAX_ATTEMPTS: u32 = 60;
const RETRY_BASE: Duration = Duration::from_millis(5);
const RETRY_CAP: Duration = Duration::from_millis(400);

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
    /// A move that widens a rollout while a freeze is in force.
    #[error("{}; nothing was written: {}", .0.describe(), .0.remedy())]
    Frozen(Frozen),
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
    !matches!(action.base(), Action::Advance)
}

#[derive(Debug)]
pub struct Performed {
    pub stored: StoredRollout,
    pub transition: Transition,
    /// Races lost and re-validated before the write went through.
    pub retries: u32,
}

/// Reads the rollout and acts on it at once (the CLI: the document read is the one the
/// operator asked about). A race lost by an absolute action is re-validated and retried.
pub async fn perform(
    store: &dyn RolloutStore,
    id: &str,
    action: &Action,
    ctx: Context<'_>,
) -> Result<Performed, PerformError> {
    let seen = store
        .get(id)
        .await
        .map_err(PerformError::Store)?
        .ok_or_else(|| PerformError::NotFound(id.into()))?;
    act_on(store, &seen, action, ctx, None, safe_to_reapply(action)).await
}

/// Acts on the document as `seen` (what the operator or the driver decided on): the write
/// is compare-and-set against its revision. If the rollout changed since, the conflict is
/// returned with what changed, and nothing is written, except for a rollback, which is
/// right whatever changed and is re-applied on the current document.
pub async fn perform_on(
    store: &dyn RolloutStore,
    seen: &StoredRollout,
    action: &Action,
    ctx: Context<'_>,
    evidence: Option<&Value>,
) -> Result<Performed, PerformError> {
    let reapply = matches!(action.base(), Action::Rollback { .. });
    act_on(store, seen, action, ctx, evidence, reapply).await
}

/// Applies `action` to `seen` and writes it compare-and-set; on a lost race, re-validates
/// on the current document if `reapply`, else reports the conflict against `seen`.
async fn act_on(
    store: &dyn RolloutStore,
    seen: &StoredRollout,
    action: &Action,
    ctx: Context<'_>,
    evidence: Option<&Value>,
    reapply: bool,
) -> Result<Performed, PerformError> {
    let id = seen.id.as_str();
    let mut current = seen.clone();
    let mut retries = 0;
    let started = Instant::now();
    loop {
        // Each try is stamped with its own time (the caller's clock moved on by the time
        // spent losing races), so its event and timestamps say when it was really written.
        let mut ctx = ctx;
        if retries > 0 {
            ctx.now += started.elapsed();
        }
        let mut transition = match (current.parse(), action) {
            (Ok(rollout), _) => actions::apply(&rollout, &current.fields, action, ctx),
            (Err(e), Action::Rollback { reason }) => {
                tracing::warn!(rollout = id, error = %e, "rolling back a malformed document");
                actions::rollback_unparsed(id, &current.fields, reason, ctx)
            }
            (Err(e), _) => return Err(PerformError::Malformed(e)),
        }
        .map_err(PerformError::Refused)?;
        if let Some(report) = evidence {
            transition = transition.with_gate_report(report.clone());
        }
        let widens = widens(&current, action, &transition);
        if widens && let Some(window) = freeze::active_window(ctx.freeze_windows, ctx.now) {
            return Err(PerformError::Frozen(window));
        }
        let written = if widens {
            store
                .patch_unless_frozen(id, &current.revision, &transition.patch, &transition.event)
                .await
        } else {
            store
                .patch(id, &current.revision, &transition.patch, &transition.event)
                .await
        };
        match written {
            Ok(stored) => {
                return Ok(Performed {
                    stored,
                    transition,
                    retries,
                });
            }
            Err(StoreError::Conflict { current: now, .. })
                if reapply && retries + 1 < MAX_ATTEMPTS =>
            {
                retries += 1;
                tracing::info!(
                    rollout = id,
                    retries,
                    "compare-and-set lost a race; re-validating on the current document"
                );
                tokio::time::sleep(crate::backoff::jittered(RETRY_BASE, RETRY_CAP, retries)).await;
                // Others kept writing while this one waited: try against the newest document.
                current = match store.get(id).await {
                    Ok(Some(newest)) => newest,
                    Ok(None) => return Err(PerformError::NotFound(id.into())),
                    Err(_) => *now,
                };
            }
            Err(StoreError::Conflict { current: now, .. }) => {
                let changed = diff_fields(&seen.fields, &now.fields);
                return Err(PerformError::Conflict {
                    id: id.into(),
                    current: now,
                    changed,
                });
            }
            Err(StoreError::Frozen(flag)) => return Err(PerformError::Frozen(Frozen::Flag(flag))),
            Err(e) => return Err(PerformError::Store(e)),
        }
    }
}

/// Whether the transition is a move the freeze stops (see `freeze::stopped_by_freeze`).
fn widens(current: &StoredRollout, action: &Action, transition: &Transition) -> bool {
    let Ok(before) = current.parse() else {
        // Only a rollback is applied to a document that cannot be read.
        return false;
    };
    let mut after = current.fields.clone();
    transition.patch.apply_to(&mut after);
    let after =
        Rollout::from_fields(&current.id, &after).map_or(before.percentage, |r| r.percentage);
    freeze::stopped_by_freeze(action, before.percentage, after)
}
