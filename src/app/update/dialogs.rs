//! Dialogs: opening one (remembering the revision it shows), the keys while one is open,
//! and the write a confirmed dialog leads to (typed input is checked by
//! `state::input_problem`, which the dialogs' drawing shows too).

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;

use crate::app::state::{AppState, Dialog, FAULT_CHOICES, ToastLevel, input_problem};
use crate::domain::actions::Action;
use crate::domain::units::Percent;
use crate::engine::Command as EngineCommand;
use crate::keys::Command;
use crate::present;

use super::keys::{guarded, rollout_command};
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
    state.dialog = Some(dialog);
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
        } => match key.code {
            // Advance is relative to the stage seen: redo means asking again, showing the
            // move it would now make. Other actions state their target and redo directly.
            KeyCode::Char('r') | KeyCode::Char('R') if *action.base() == Action::Advance => {
                select_id(state, &id);
                rollout_command(state, Command::Advance)
            }
            KeyCode::Char('r') | KeyCode::Char('R') => perform(state, &id, action),
            _ => {
                state.dialog = Some(Dialog::Conflict {
                    id,
                    action,
                    changed,
                });
                vec![]
            }
        },
        mut dialog => {
            if key.code != KeyCode::Enter {
                if let Dialog::SetPercent { input, .. }
                | Dialog::AddUser { input, .. }
                | Dialog::Rollback { input, .. }
                | Dialog::Override { input, .. }
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
            let current = state
                .entry(&id)
                .and_then(|e| e.rollout.as_ref().ok())
                .map(|r| r.percentage);
            let jump = current.map_or(0.0, |c| p.points_above(c));
            let rollout = state.entry(&id).and_then(|e| e.rollout.clone().ok());
            if let Some(r) = rollout.filter(|r| p > r.percentage) {
                let title = format!("Set {id} to {p}?");
                let body = vec![present::jump_line(current, p)];
                if let Ok(dialog) = guarded(state, &r, title, body, Action::SetPercent(p)) {
                    state.dialog = Some(dialog);
                    return vec![];
                }
            }
            if p == Percent::FULL || jump > BIG_JUMP_POINTS {
                state.dialog = Some(Dialog::Confirm {
                    id: id.clone(),
                    title: format!("Set {id} to {p}?"),
                    body: std::iter::once(present::jump_line(current, p))
                        .chain(health_warning(state, &id))
                        .collect(),
                    action: Action::SetPercent(p),
                });
                return vec![];
            }
            perform(state, &id, Action::SetPercent(p))
        }
        Dialog::AddUser { id, list, input } => perform(
            state,
            &id,
            Action::AddUsers {
                list,
                keys: vec![input.value().trim().to_string()],
            },
        ),
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
        | Dialog::AutoConfirm { .. }
        | Dialog::Quit { .. }
        | Dialog::Fault { .. } => vec![],
    }
}
