//! Performing an action against a store: read, validate, compare-and-set.
//! Shared by the CLI and the cockpit so both treat conflicts the same way.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::actuator::acting::{self, Actuators, TrafficNote};
use crate::actuator::cloud_run::{ActuatorError, CloudRunActuator, TargetSplit};
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
    /// The traffic split could not be set; the document was not written.
    #[error("nothing was written to the rollout: {error}{}", restore_note(.restored))]
    Traffic {
        error: String,
        /// After an unconfirmed change (timeout, not serving yet), whether the split the
        /// document still describes was put back: None when there was nothing to put back.
        restored: Option<Result<String, String>>,
    },
    /// The split was set but the document write then failed: the two disagree until one
    /// of them is put right.
    #[error(
        "{} was set, but the rollout document could not be written: {error}. {}",
        .split.describe(), restore_note_after(.id, .restored)
    )]
    DocumentBehindTraffic {
        id: String,
        split: TargetSplit,
        error: Box<PerformError>,
        restored: Result<String, String>,
    },
}

fn restore_note(restored: &Option<Result<String, String>>) -> String {
    match restored {
        None => String::new(),
        Some(Ok(split)) => format!("; {split} is served again, as the document says"),
        Some(Err(e)) => format!(
            "; putting back the document's split failed too ({e}): the document and Cloud Run may disagree, see `status`"
        ),
    }
}

fn restore_note_after(id: &str, restored: &Result<String, String>) -> String {
    match restored {
        Ok(split) => format!("{split} is served again, as the document says"),
        Err(e) => format!(
            "Putting back the document's split failed ({e}): Cloud Run and the document DISAGREE. Re-apply the document's split with `rollout-tui sync-traffic {id}` or roll back with `rollout-tui rollback {id} --reason ...`"
        ),
    }
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
    /// What was done to the service's traffic split, where an actuator acts on it.
    pub traffic: Option<TrafficNote>,
}

/// Reads the rollout and acts on it at once (the CLI: the document read is the one the
/// operator asked about). A race lost by an absolute action is re-validated and retried.
pub async fn perform(
    store: &dyn RolloutStore,
    traffic: &Actuators,
    id: &str,
    action: &Action,
    ctx: Context<'_>,
) -> Result<Performed, PerformError> {
    let seen = store
        .get(id)
        .await
        .map_err(PerformError::Store)?
        .ok_or_else(|| PerformError::NotFound(id.into()))?;
    act_on(
        store,
        traffic,
        &seen,
        action,
        ctx,
        None,
        safe_to_reapply(action),
    )
    .await
}

/// Acts on the document as `seen` (what the operator or the driver decided on): the write
/// is compare-and-set against its revision. If the rollout changed since, the conflict is
/// returned with what changed, and nothing is written, except for a rollback, which is
/// right whatever changed and is re-applied on the current document.
pub async fn perform_on(
    store: &dyn RolloutStore,
    traffic: &Actuators,
    seen: &StoredRollout,
    action: &Action,
    ctx: Context<'_>,
    evidence: Option<&Value>,
) -> Result<Performed, PerformError> {
    let reapply = matches!(action.base(), Action::Rollback { .. });
    act_on(store, traffic, seen, action, ctx, evidence, reapply).await
}

/// Applies `action` to `seen` and writes it compare-and-set; on a lost race, re-validates
/// on the current document if `reapply`, else reports the conflict against `seen`.
async fn act_on(
    store: &dyn RolloutStore,
    traffic: &Actuators,
    seen: &StoredRollout,
    action: &Action,
    ctx: Context<'_>,
    evidence: Option<&Value>,
    reapply: bool,
) -> Result<Performed, PerformError> {
    let id = seen.id.as_str();
    let actuator = traffic.for_rollout(id);
    let rolling_back = matches!(action.base(), Action::Rollback { .. });
    let mut current = seen.clone();
    let mut retries = 0;
    let started = Instant::now();
    // The split this write has set on the service, kept across lost races: a retry that
    // needs the same split does not set it again.
    let mut set: Option<TrafficNote> = None;
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
        // Traffic first, then the document: a split that cannot be set leaves the document
        // as it was, so the two never silently disagree.
        let note = match &actuator {
            Ok(None) => None,
            Ok(Some(client)) => {
                set_split(
                    store,
                    client,
                    &current,
                    &transition,
                    rolling_back,
                    widens,
                    set.as_ref(),
                )
                .await?
            }
            Err(e) if rolling_back => {
                tracing::error!(rollout = id, error = %e, "rollback: the actuator is not configured correctly; rolling back the document only");
                None
            }
            Err(e) => {
                return Err(PerformError::Traffic {
                    error: e.clone(),
                    restored: None,
                });
            }
        };
        if let Some(note) = &note {
            if let Some(after) = transition.event.after.as_object_mut() {
                after.insert(acting::EVENT_FIELD.into(), note.to_json());
            }
            transition.summary = format!("{} · {}", transition.summary, note.summary(id));
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
        let failure = match written {
            Ok(stored) => {
                return Ok(Performed {
                    stored,
                    transition,
                    retries,
                    traffic: note,
                });
            }
            Err(StoreError::Conflict { current: now, .. })
                if reapply && retries + 1 < MAX_ATTEMPTS =>
            {
                retries += 1;
                set = note.or(set);
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
                continue;
            }
            Err(StoreError::Conflict { current: now, .. }) => {
                let changed = diff_fields(&seen.fields, &now.fields);
                PerformError::Conflict {
                    id: id.into(),
                    current: now,
                    changed,
                }
            }
            Err(StoreError::Frozen(flag)) => PerformError::Frozen(Frozen::Flag(flag)),
            Err(e) => PerformError::Store(e),
        };
        return Err(match (note.or(set), &actuator) {
            (Some(TrafficNote::Set { split, .. }), Ok(Some(client))) => {
                document_behind_traffic(store, client, id, split, failure).await
            }
            _ => failure,
        });
    }
}

/// Sets the split `transition` needs, before its document is written. None when the
/// service's split stays as it is.
async fn set_split(
    store: &dyn RolloutStore,
    client: &CloudRunActuator,
    current: &StoredRollout,
    transition: &Transition,
    rolling_back: bool,
    widens: bool,
    already: Option<&TrafficNote>,
) -> Result<Option<TrafficNote>, PerformError> {
    let before = current.parse().ok();
    let mut after_fields = current.fields.clone();
    transition.patch.apply_to(&mut after_fields);
    let split = if rolling_back {
        acting::rollback_split(&after_fields).map(Some)
    } else {
        match Rollout::from_fields(&current.id, &after_fields) {
            Ok(after) => acting::change_for(before.as_ref(), &after),
            Err(_) => Ok(None),
        }
    };
    let split = match split {
        Ok(Some(split)) => split,
        Ok(None) => return Ok(None),
        Err(e) if rolling_back => {
            return Ok(Some(TrafficNote::Failed {
                service: client.service_name().to_string(),
                split: None,
                error: e.to_string(),
            }));
        }
        Err(e) => {
            return Err(PerformError::Traffic {
                error: e.to_string(),
                restored: None,
            });
        }
    };
    if let Some(note @ TrafficNote::Set { split: done, .. }) = already
        && *done == split
    {
        return Ok(Some(note.clone()));
    }
    // The store's freeze flag is checked again atomically with the document; checking it
    // here keeps a frozen move from touching traffic at all.
    if widens {
        match store.freeze().await {
            Ok(Some(flag)) => return Err(PerformError::Frozen(Frozen::Flag(flag))),
            Ok(None) => {}
            Err(e) => return Err(PerformError::Store(e)),
        }
    }
    match client.apply(&split).await {
        Ok(applied) => Ok(Some(TrafficNote::Set {
            service: client.service_name().to_string(),
            split,
            applied,
        })),
        Err(e) if rolling_back => {
            tracing::error!(rollout = %current.id, error = %e, "rollback: the traffic split could not be set; rolling back the document anyway");
            Ok(Some(TrafficNote::Failed {
                service: client.service_name().to_string(),
                split: Some(split),
                error: e.to_string(),
            }))
        }
        Err(e) => {
            // A change that timed out or did not serve yet may still have moved traffic:
            // put back what the document describes.
            let restored = if matches!(
                e,
                ActuatorError::Timeout { .. } | ActuatorError::NotConfirmed { .. }
            ) {
                Some(restore(client, current).await)
            } else {
                None
            };
            Err(PerformError::Traffic {
                error: e.to_string(),
                restored,
            })
        }
    }
}

/// Sets the split the stored document describes again; its description, or why not.
async fn restore(client: &CloudRunActuator, document: &StoredRollout) -> Result<String, String> {
    let rollout = document.parse().map_err(|e| e.to_string())?;
    let split = acting::split_of(&rollout).map_err(|e| e.to_string())?;
    client
        .apply(&split)
        .await
        .map(|_| split.describe())
        .map_err(|e| e.to_string())
}

/// The split was set but the document was not written: the document's own split is put back
/// (from its newest version), and the error says what serves.
async fn document_behind_traffic(
    store: &dyn RolloutStore,
    client: &CloudRunActuator,
    id: &str,
    split: TargetSplit,
    failure: PerformError,
) -> PerformError {
    let restored = match store.get(id).await {
        Ok(Some(newest)) => restore(client, &newest).await,
        Ok(None) => Err(format!("rollout '{id}' is gone")),
        Err(e) => Err(format!("cannot read the document: {e}")),
    };
    tracing::error!(rollout = id, error = %failure, ?restored, "the split was set but the document write failed");
    // A lost race stays a conflict for the caller once traffic is back where it was.
    if restored.is_ok() && matches!(failure, PerformError::Conflict { .. }) {
        return failure;
    }
    PerformError::DocumentBehindTraffic {
        id: id.into(),
        split,
        error: Box::new(failure),
        restored,
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

/// Sets the split the stored document describes (after a failed write left the two apart, or
/// someone changed it outside rollout-tui), and records it in the audit log. A split that
/// would widen the canary is refused while a freeze is in force.
pub async fn sync_traffic(
    store: &dyn RolloutStore,
    traffic: &Actuators,
    id: &str,
    ctx: Context<'_>,
) -> Result<String, PerformError> {
    let stored = store
        .get(id)
        .await
        .map_err(PerformError::Store)?
        .ok_or_else(|| PerformError::NotFound(id.into()))?;
    let not_acting = || PerformError::Traffic {
        error: format!("no [actuator] sets the traffic of rollout '{id}'"),
        restored: None,
    };
    let client = traffic
        .for_rollout(id)
        .map_err(|error| PerformError::Traffic {
            error,
            restored: None,
        })?
        .ok_or_else(not_acting)?;
    let traffic_error = |e: ActuatorError| PerformError::Traffic {
        error: e.to_string(),
        restored: None,
    };
    let split = match stored.parse() {
        Ok(r) => acting::split_of(&r),
        Err(_) => acting::rollback_split(&stored.fields),
    }
    .map_err(traffic_error)?;
    let live = client
        .read(&split.stable, split.canary.as_deref())
        .await
        .map_err(traffic_error)?;
    if live.canary_percent < split.canary_percent {
        if let Some(window) = freeze::active_window(ctx.freeze_windows, ctx.now) {
            return Err(PerformError::Frozen(window));
        }
        if let Some(flag) = store.freeze().await.map_err(PerformError::Store)? {
            return Err(PerformError::Frozen(Frozen::Flag(flag)));
        }
    }
    let applied = client.apply(&split).await.map_err(traffic_error)?;
    let note = TrafficNote::Set {
        service: client.service_name().to_string(),
        split: split.clone(),
        applied,
    };
    let said = format!(
        "traffic re-applied as the document says (it served {}): {}",
        live.describe(),
        note.summary(id)
    );
    let event = crate::domain::event::Event {
        rollout_id: id.to_string(),
        kind: crate::domain::event::EventKind::Decision,
        actor: ctx.actor.to_string(),
        at: ctx.now,
        before: Value::Null,
        after: serde_json::json!({ acting::EVENT_FIELD: note.to_json() }),
        reason: Some(crate::domain::text::to_safe_line(
            &said,
            crate::domain::text::MAX_REASON_CHARS,
        )),
        gate_report: None,
    };
    if let Err(e) = store.append_event(&event).await {
        return Ok(format!(
            "{said} (the audit event could not be written: {e})"
        ));
    }
    Ok(said)
}
