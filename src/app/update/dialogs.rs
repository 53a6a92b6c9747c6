//! Dialogs: opening one (remembering the revision it shows), the keys while one is open,
//! and the write a confirmed dialog leads to (typed input is checked by
//! `state::input_problem`, which the dialogs' drawing shows too).

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::{Input, InputRequest};

use crate::app::state::{
    AppState, Dialog, FAULT_CHOICES, ToastLevel, input_problem, redo_blocker, split_user_keys,
};
use crate::domain::actions::{self, Action};
use crate::domain::assign;
use crate::domain::freeze::Freeze;
use crate::domain::rollout::Status;
use crate::domain::units::Percent;
use crate::engine::Command as EngineCommand;
use crate::keys::Command;
use crate::present;

use super::keys::{move_dialog, rollout_command};
use super::{Effect, select_id, toast};

/// A percentage jump bigger than this (or to 100 %) asks first.
const BIG_JUMP_POINTS: f64 = 25.0;

/// Opens a dialog and remembers the rollout as the operator sees it now: the write the
/// dialog leads to is compare-and-set against this revision, so a change made meanwhile
/// is shown as a conflict instead of being built upon unseen.
pub(super) fn open_dialog(state: &mut AppState, dialog: Dialog) {
    state.dialog_seen = dialog
        .rollout_id()
        .and_then(|id| state.entry(id))
        .map(|e| e.stored.clone());
    state.dialog_refreshed = false;
    state.dialog = Some(dialog);
}

/// The rollout of the open confirmation changed in the store: the question is asked again
/// about the rollout as it is now (and the write will be based on it), or, when the move no
/// longer applies, the dialog closes saying why.
pub(super) fn refresh_dialog(state: &mut AppState, id: &str) {
    let Some(dialog) = state.dialog.as_ref().filter(|d| d.rollout_id() == Some(id)) else {
        return;
    };
    let Some(entry) = state.entry(id) else {
        return;
    };
    let Some(seen) = state.dialog_seen.as_ref() else {
        return;
    };
    if *seen == entry.stored {
        return;
    }
    let action = match dialog {
        Dialog::Confirm { action, .. }
        | Dialog::TypedConfirm { action, .. }
        | Dialog::Override { action, .. } => Some(action.clone()),
        Dialog::SetPercent { .. } => None,
        _ => return,
    };
    let why_not = match &action {
        Some(action) => redo_blocker(state, id, action),
        None => match &entry.rollout {
            Ok(r) if r.status == Status::RolledBack => Some(format!("{id} is now rolled back")),
            Ok(r) if r.status == Status::Complete => Some(format!("{id} is now complete")),
            Ok(r) => actions::check_percent_settable(r)
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(format!("the document no longer parses: {e}")),
        },
    };
    if let Some(why) = why_not {
        state.dialog = None;
        state.dialog_seen = None;
        state.dialog_refreshed = false;
        toast(
            state,
            ToastLevel::Error,
            format!("{id} changed while the dialog was open: {why}; nothing was done"),
        );
        return;
    }
    let stored = entry.stored.clone();
    let rebuilt = match (&action, entry.rollout.as_ref()) {
        (Some(action), Ok(r)) => move_dialog(state, &r.clone(), action),
        _ => None,
    };
    if let Some(mut rebuilt) = rebuilt {
        // What was typed so far (a reason, the id) stays.
        let typed = match state.dialog.as_ref() {
            Some(Dialog::TypedConfirm { input, .. } | Dialog::Override { input, .. }) => {
                Some(input.clone())
            }
            _ => None,
        };
        if let (Some(typed), Dialog::TypedConfirm { input, .. } | Dialog::Override { input, .. }) =
            (typed, &mut rebuilt)
        {
            *input = typed;
        }
        state.dialog = Some(rebuilt);
    }
    state.dialog_seen = Some(stored);
    state.dialog_refreshed = true;
}

/// Pasted text goes into the open input (line breaks become spaces: the inputs are one
/// line, and the add-user dialog reads spaces as separators).
pub(super) fn paste(state: &mut AppState, text: &str) {
    let input = match state.dialog.as_mut() {
        Some(
            Dialog::SetPercent { input, .. }
            | Dialog::AddUser { input, .. }
            | Dialog::Rollback { input, .. }
            | Dialog::Override { input, .. }
            | Dialog::TypedConfirm { input, .. }
            | Dialog::Pause { input, .. }
            | Dialog::Freeze { input }
            | Dialog::Which { input, .. },
        ) => input,
        Some(_) => return,
        None => match state.filter_input.as_mut() {
            Some(input) => input,
            None => return,
        },
    };
    for c in text.chars() {
        let c = if c == '\n' || c == '\r' { ' ' } else { c };
        if !c.is_control() {
            input.handle(InputRequest::InsertChar(c));
        }
    }
}

pub(super) fn perform(state: &mut AppState, id: &str, action: Action) -> Vec<Effect> {
    state.dialog = None;
    // From a dialog: the document as it was when the dialog opened; otherwise as shown now.
    let seen = state
        .dialog_seen
        .take()
        .filter(|s| s.id == id)
        .or_else(|| state.entry(id).map(|e| e.stored.clone()));
    let Some(seen) = seen else {
        toast(state, ToastLevel::Error, format!("{id}: no such rollout"));
        return vec![];
    };
    state.pending_writes += 1;
    vec![Effect::Engine(EngineCommand::Perform {
        id: id.to_string(),
        action,
        seen: Box::new(seen),
    })]
}

/// The health line of a confirmation dialog.
pub(super) fn health_warning(state: &AppState, id: &str) -> Option<String> {
    let report = state.entry(id)?.health.report.as_ref();
    Some(present::health_line(report))
}

pub(super) fn dialog_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let Some(dialog) = state.dialog.take() else {
        return vec![];
    };
    if key.code == KeyCode::Esc {
        // Dismissing auto-progression's question is a no: it must not re-ask every tick.
        if let Dialog::AutoConfirm { id, next, .. } = dialog {
            return vec![Effect::Engine(EngineCommand::AutoAnswer {
                id,
                stage: next.index,
                yes: false,
            })];
        }
        return vec![];
    }
    match dialog {
        Dialog::Info { title, body } => match key.code {
            KeyCode::Enter | KeyCode::Char('q') => vec![],
            _ => {
                state.dialog = Some(Dialog::Info { title, body });
                vec![]
            }
        },
        Dialog::Confirm {
            id,
            title,
            body,
            action,
        } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => perform(state, &id, action),
            KeyCode::Char('n') | KeyCode::Char('N') => vec![],
            _ => {
                state.dialog = Some(Dialog::Confirm {
                    id,
                    title,
                    body,
                    action,
                });
                vec![]
            }
        },
        Dialog::Unfreeze { freeze } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                vec![Effect::Engine(EngineCommand::SetFreeze(None))]
            }
            KeyCode::Char('n') | KeyCode::Char('N') => vec![],
            _ => {
                state.dialog = Some(Dialog::Unfreeze { freeze });
                vec![]
            }
        },
        Dialog::SyncTraffic { id, view } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                toast(
                    state,
                    ToastLevel::Info,
                    format!(
                        "{}: setting the document's split on Cloud Run...",
                        crate::present::escape(&id)
                    ),
                );
                vec![Effect::Engine(EngineCommand::SyncTraffic(id))]
            }
            KeyCode::Char('n') | KeyCode::Char('N') => vec![],
            _ => {
                state.dialog = Some(Dialog::SyncTraffic { id, view });
                vec![]
            }
        },
        Dialog::Quit { driving } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                state.quit = true;
                vec![Effect::Quit]
            }
            KeyCode::Char('n') | KeyCode::Char('N') => vec![],
            _ => {
                state.dialog = Some(Dialog::Quit { driving });
                vec![]
            }
        },
        Dialog::AutoConfirm {
            id,
            next,
            evidence,
            since,
        } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                vec![Effect::Engine(EngineCommand::AutoAnswer {
                    id,
                    stage: next.index,
                    yes: true,
                })]
            }
            KeyCode::Char('n') | KeyCode::Char('N') => {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{id}: holding at the current stage (answered no)"),
                );
                vec![Effect::Engine(EngineCommand::AutoAnswer {
                    id,
                    stage: next.index,
                    yes: false,
                })]
            }
            // The third answer: no to widening, and the rollback's reason asked at once.
            KeyCode::Char('r') | KeyCode::Char('R') => {
                open_dialog(
                    state,
                    Dialog::Rollback {
                        id: id.clone(),
                        input: Input::default(),
                    },
                );
                vec![Effect::Engine(EngineCommand::AutoAnswer {
                    id,
                    stage: next.index,
                    yes: false,
                })]
            }
            _ => {
                state.dialog = Some(Dialog::AutoConfirm {
                    id,
                    next,
                    evidence,
                    since,
                });
                vec![]
            }
        },
        Dialog::Fault { id } => {
            let chosen = FAULT_CHOICES
                .iter()
                .find(|(k, _)| key.code == KeyCode::Char(*k));
            let fault = match (chosen, key.code) {
                (Some((_, f)), _) => Some(*f),
                (None, KeyCode::Char('0')) => None,
                _ => {
                    state.dialog = Some(Dialog::Fault { id });
                    return vec![];
                }
            };
            let text = match &fault {
                Some(f) => {
                    state.faults.entry(id.clone()).or_default().push(*f);
                    format!("{id}: simulating {f} in the canary; the next sample shows it")
                }
                None => {
                    state.faults.remove(&id);
                    format!("{id}: simulated faults cleared")
                }
            };
            toast(state, ToastLevel::Info, text);
            vec![EngineCommand::Fault { id, fault }.into()]
        }
        Dialog::Conflict {
            id,
            action,
            changed,
            by,
        } => {
            let redo = matches!(key.code, KeyCode::Char('r') | KeyCode::Char('R'))
                && redo_blocker(state, &id, &action).is_none();
            match key.code {
                // Advance is relative to the stage seen: redo means asking again, showing the
                // move it would now make. Other actions state their target and redo directly.
                _ if redo && *action.base() == Action::Advance => {
                    select_id(state, &id);
                    rollout_command(state, Command::Advance)
                }
                _ if redo => perform(state, &id, action),
                _ => {
                    state.dialog = Some(Dialog::Conflict {
                        id,
                        action,
                        changed,
                        by,
                    });
                    vec![]
                }
            }
        }
        mut dialog => {
            if key.code != KeyCode::Enter {
                if let Dialog::SetPercent { input, .. }
                | Dialog::AddUser { input, .. }
                | Dialog::Rollback { input, .. }
                | Dialog::Override { input, .. }
                | Dialog::Pause { input, .. }
                | Dialog::Freeze { input }
                | Dialog::Which { input, .. }
                | Dialog::TypedConfirm { input, .. } = &mut dialog
                {
                    input.handle_event(&TermEvent::Key(key));
                }
                state.dialog = Some(dialog);
                return vec![];
            }
            if input_problem(state, &dialog).is_some() {
                state.dialog = Some(dialog);
                return vec![];
            }
            submit(state, dialog)
        }
    }
}

fn submit(state: &mut AppState, dialog: Dialog) -> Vec<Effect> {
    match dialog {
        Dialog::SetPercent { id, input } => {
            let Ok(p) = input.value().parse::<Percent>() else {
                return vec![];
            };
            let action = Action::SetPercent(p);
            let Some(r) = state.entry(&id).and_then(|e| e.rollout.clone().ok()) else {
                return perform(state, &id, action);
            };
            let big = p == Percent::FULL || p.points_above(r.percentage) > BIG_JUMP_POINTS;
            // Widening over failing health or unserved bake time always asks (the override
            // dialog); a big jump asks for a plain yes.
            match move_dialog(state, &r, &action) {
                Some(dialog @ Dialog::Override { .. }) => {
                    state.dialog = Some(dialog);
                    vec![]
                }
                Some(dialog) if big => {
                    state.dialog = Some(dialog);
                    vec![]
                }
                _ => perform(state, &id, action),
            }
        }
        Dialog::AddUser { id, list, input } => {
            let keys = split_user_keys(input.value())
                .into_iter()
                .map(str::to_string)
                .collect();
            perform(state, &id, Action::AddUsers { list, keys })
        }
        Dialog::Freeze { input } => {
            let flag = Freeze {
                by: state.actor.clone(),
                at: state.now,
                reason: input.value().trim().to_string(),
            };
            vec![Effect::Engine(EngineCommand::SetFreeze(Some(flag)))]
        }
        Dialog::Pause { id, input } => {
            let reason = input.value().trim();
            let reason = (!reason.is_empty()).then(|| reason.to_string());
            perform(state, &id, Action::Pause { reason })
        }
        Dialog::Which { id, input } => {
            let Some(r) = state.entry(&id).and_then(|e| e.rollout.clone().ok()) else {
                toast(
                    state,
                    ToastLevel::Error,
                    format!("{id}: no readable rollout"),
                );
                return vec![];
            };
            let body = match assign::assign(&r, input.value()) {
                Ok(a) => present::assignment_lines(&r, input.value().trim(), &a),
                Err(e) => vec![e.to_string()],
            };
            state.dialog = Some(Dialog::Info {
                title: format!("Which side: {id}"),
                body,
            });
            vec![]
        }
        Dialog::Rollback { id, input } => perform(
            state,
            &id,
            Action::Rollback {
                reason: input.value().trim().to_string(),
            },
        ),
        Dialog::TypedConfirm { id, action, .. } => perform(state, &id, action),
        Dialog::Override {
            id,
            risks,
            action,
            input,
            ..
        } => {
            let gate_report = state
                .entry(&id)
                .and_then(|e| e.health.report.as_ref())
                .map(|r| r.to_json());
            let action = Action::Overridden {
                action: Box::new(action),
                risks,
                reason: input.value().trim().to_string(),
                gate_report,
            };
            perform(state, &id, action)
        }
        Dialog::Confirm { .. }
        | Dialog::Conflict { .. }
        | Dialog::Info { .. }
        | Dialog::AutoConfirm { .. }
        | Dialog::Quit { .. }
        | Dialog::Unfreeze { .. }
        | Dialog::SyncTraffic { .. }
        | Dialog::Fault { .. } => vec![],
    }
}
