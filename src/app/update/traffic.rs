//! Cloud Run's split in the cockpit: the live split beside the document (drift flagged with
//! the way out), the dry run of a dialog's move, and re-applying the document's split.

use crate::actuator::acting::{self, TrafficView};
use crate::actuator::cloud_run::TargetSplit;
use crate::app::state::{AppState, Dialog, ToastLevel, TrafficPlan};
use crate::domain::actions::{self, Action};
use crate::domain::rollout::Rollout;
use crate::engine::Command as EngineCommand;
use crate::present::escape;

use super::{Effect, toast};

/// The rollout and move the open dialog asks about.
pub(super) fn dialog_move(state: &AppState) -> Option<(String, Action)> {
    match state.dialog.as_ref()? {
        Dialog::Confirm { id, action, .. }
        | Dialog::TypedConfirm { id, action, .. }
        | Dialog::Override { id, action, .. } => Some((id.clone(), action.base().clone())),
        Dialog::AutoConfirm { id, .. } => Some((id.clone(), Action::Advance)),
        Dialog::Rollback { id, .. } => Some((
            id.clone(),
            Action::Rollback {
                reason: String::new(),
            },
        )),
        _ => None,
    }
}

/// The split `action` would set on `id`'s service: None when the actuator leaves the
/// rollout alone or the move leaves the split as it is.
fn split_for(state: &AppState, id: &str, action: &Action) -> Option<Result<TargetSplit, String>> {
    let entry = state.entry(id)?;
    entry.traffic.as_ref()?;
    let rollout = entry.rollout.as_ref().ok()?;
    if matches!(action, Action::Rollback { .. }) {
        return Some(acting::rollback_split(&entry.stored.fields).map_err(|e| e.to_string()));
    }
    let transition = actions::apply(
        rollout,
        &entry.stored.fields,
        action,
        state.action_context(),
    )
    .ok()?;
    let mut after = entry.stored.fields.clone();
    transition.patch.apply_to(&mut after);
    let after = Rollout::from_fields(id, &after).ok()?;
    acting::change_for(Some(rollout), &after)
        .map_err(|e| e.to_string())
        .transpose()
}

/// When a dialog about a move that sets a split has just opened (or now asks about another
/// move), asks Cloud Run for a dry run of it; a dialog that closed forgets its plan.
pub(super) fn plan_if_asked_anew(
    state: &mut AppState,
    before: Option<(String, Action)>,
) -> Vec<Effect> {
    let now = dialog_move(state);
    if now == before {
        return vec![];
    }
    state.traffic_plan = None;
    let Some((id, action)) = now else {
        return vec![];
    };
    match split_for(state, &id, &action) {
        None => vec![],
        Some(Ok(split)) => {
            state.traffic_plan = Some(TrafficPlan {
                id: id.clone(),
                split: Some(split.clone()),
                answer: None,
            });
            vec![Effect::Engine(EngineCommand::PlanTraffic { id, split })]
        }
        // Not a split Cloud Run can take (12.5 %): said at once, the write would refuse it.
        Some(Err(e)) => {
            state.traffic_plan = Some(TrafficPlan {
                id,
                split: None,
                answer: Some(Err(e)),
            });
            vec![]
        }
    }
}

pub(super) fn on_planned(
    state: &mut AppState,
    id: &str,
    split: &TargetSplit,
    result: Result<String, String>,
) -> Vec<Effect> {
    if let Some(plan) = state.traffic_plan.as_mut()
        && plan.id == id
        && plan.split.as_ref() == Some(split)
    {
        plan.answer = Some(result);
        state.dirty = true;
    }
    vec![]
}

pub(super) fn on_view(state: &mut AppState, view: TrafficView) -> Vec<Effect> {
    let shows = state.shows(&view.id);
    if let Some(entry) = state.entry_mut(&view.id)
        && entry.traffic.as_ref() != Some(&view)
    {
        entry.traffic = Some(view);
        state.dirty |= shows;
    }
    vec![]
}

pub(super) fn on_synced(
    state: &mut AppState,
    id: &str,
    result: Result<String, String>,
) -> Vec<Effect> {
    let id = escape(id);
    match result {
        Ok(said) => toast(state, ToastLevel::Info, format!("{id}: {}", escape(&said))),
        Err(why) => toast(
            state,
            ToastLevel::Error,
            format!("{id}: the split was not re-applied: {}", escape(&why)),
        ),
    }
    state.dirty = true;
    vec![]
}
