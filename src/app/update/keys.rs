//! Keys outside dialogs: navigation, the wall's keys, and the commands that act on the
//! selected rollout or its users (most open a dialog first).

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::app::state::{
    AppState, AutoView, Dialog, EVENTS_SHOWN, EventView, Panel, Screen, ToastLevel,
};
use crate::domain::actions::{self, Action, UserList};
use crate::domain::guard;
use crate::domain::rollout::{Rollout, Status};
use crate::engine::Command as EngineCommand;
use crate::keys::Command;
use crate::present;

use super::dialogs::{dialog_key, health_warning, open_dialog, perform};
use super::{Effect, clamp_selection, toast};

pub(super) fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    // ctrl-c always quits, whatever the bindings: the way out must never be rebound away.
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        state.quit = true;
        return vec![Effect::Quit];
    }
    if state.wall.is_some() {
        return wall_key(state, key);
    }
    if state.dialog.is_some() {
        return dialog_key(state, key);
    }
    // No dialog is open: what an earlier one saw must not stand for what is shown now.
    state.dialog_seen = None;
    let command = state.keys.command_for(&key);
    if state.help_open {
        if matches!(command, Some(Command::Help | Command::Back | Command::Quit)) {
            state.help_open = false;
        }
        return vec![];
    }
    if let Some(input) = state.filter_input.as_mut() {
        match key.code {
            KeyCode::Enter => {
                state.filter = input.value().to_string();
                state.filter_input = None;
            }
            KeyCode::Esc => state.filter_input = None,
            _ => {
                input.handle_event(&TermEvent::Key(key));
                state.selected = 0;
            }
        }
        clamp_selection(state);
        return vec![];
    }
    let Some(command) = command else {
        let name = crate::keys::Key::from_event(&key)
            .map_or_else(|| format!("{:?}", key.code), |k| k.to_string());
        let help = state.keys.label(Command::Help);
        toast(
            state,
            ToastLevel::Info,
            format!("{name}: no such key here — {help} for help"),
        );
        return vec![];
    };
    // Only while the event is still there to read: otherwise the keys act as usual.
    if state.screen == Screen::Detail
        && state.open_event().is_some()
        && let Some(effects) = event_view_key(state, command)
    {
        return effects;
    }
    match command {
        Command::Freeze => {
            let dialog = match state.freeze.clone() {
                Some(freeze) => Dialog::Unfreeze { freeze },
                None => Dialog::Freeze {
                    input: Input::default(),
                },
            };
            open_dialog(state, dialog);
            vec![]
        }
        Command::Which => {
            let Some(r) = selected_rollout(state) else {
                return vec![];
            };
            open_dialog(
                state,
                Dialog::Which {
                    id: r.id,
                    input: Input::default(),
                },
            );
            vec![]
        }
        Command::Quit => {
            let driving = state.driving();
            if driving.is_empty() {
                state.quit = true;
                return vec![Effect::Quit];
            }
            open_dialog(state, Dialog::Quit { driving });
            vec![]
        }
        Command::Help => {
            state.help_open = true;
            vec![]
        }
        Command::Up | Command::Down | Command::PageUp | Command::PageDown => {
            let step: isize = match command {
                Command::Up => -1,
                Command::Down => 1,
                Command::PageUp => -10,
                _ => 10,
            };
            move_cursor(state, step);
            vec![]
        }
        Command::Open => {
            if state.screen == Screen::Detail && state.focus == Panel::Events {
                state.event_view = state
                    .selected_entry()
                    .and_then(|e| e.events.get(state.event_offset))
                    .map(|ev| EventView {
                        at: ev.at,
                        kind: ev.kind,
                        scroll: 0,
                    });
                return vec![];
            }
            if state.screen == Screen::Overview
                && let Some(id) = state.selected_entry().map(|e| e.id().to_string())
            {
                state.screen = Screen::Detail;
                state.focus = Panel::Timeline;
                state.user_cursor = 0;
                state.event_offset = 0;
                state.event_view = None;
                return vec![Effect::Engine(EngineCommand::LoadEvents(id))];
            }
            vec![]
        }
        Command::Back => {
            match state.screen {
                Screen::Detail => state.screen = Screen::Overview,
                Screen::Overview => state.filter.clear(),
            }
            clamp_selection(state);
            vec![]
        }
        Command::NextPanel => {
            if state.screen == Screen::Detail {
                state.focus = state.focus.next();
            }
            vec![]
        }
        Command::Sort => {
            if state.screen == Screen::Overview {
                state.sort = state.sort.next();
            }
            vec![]
        }
        Command::NextAttention => {
            if state.screen == Screen::Overview {
                next_attention(state);
            }
            vec![]
        }
        Command::Filter => {
            if state.screen == Screen::Overview {
                state.filter_input = Some(Input::new(state.filter.clone()));
            }
            vec![]
        }
        Command::Users | Command::Events => {
            let Some(id) = state.selected_entry().map(|e| e.id().to_string()) else {
                return vec![];
            };
            if state.screen == Screen::Overview {
                state.user_cursor = 0;
                state.event_offset = 0;
                state.event_view = None;
            }
            state.screen = Screen::Detail;
            state.focus = if command == Command::Users {
                Panel::Users
            } else {
                Panel::Events
            };
            vec![Effect::Engine(EngineCommand::LoadEvents(id))]
        }
        Command::AddUser | Command::RemoveUser | Command::ToggleExcluded => {
            users_command(state, command)
        }
        Command::DismissCard => {
            if state.screen != Screen::Detail {
                return vec![];
            }
            let Some(entry) = state.selected_entry() else {
                return vec![];
            };
            match state.decision_card(entry).map(|ev| ev.at) {
                Some(at) => {
                    let id = entry.id().to_string();
                    state.dismissed_cards.insert(id, at);
                }
                None => toast(
                    state,
                    ToastLevel::Info,
                    "no automatic decision on screen to dismiss".into(),
                ),
            }
            vec![]
        }
        Command::Auto => {
            let Some(id) = state.selected_entry().map(|e| e.id().to_string()) else {
                return vec![];
            };
            let entry = state.entry_mut(&id).expect("selected entry exists");
            if entry.auto.take().is_some() {
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{id}: auto-progression off (lease released)"),
                );
                vec![EngineCommand::StopAuto(id).into()]
            } else {
                entry.auto = Some(AutoView::default());
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{id}: auto-progression on"),
                );
                vec![EngineCommand::StartAuto(id).into()]
            }
        }
        Command::SyncTraffic => {
            let Some(entry) = state.selected_entry() else {
                return vec![];
            };
            let id = entry.id().to_string();
            match entry.traffic.clone() {
                Some(view) => open_dialog(state, Dialog::SyncTraffic { id, view }),
                None => toast(
                    state,
                    ToastLevel::Error,
                    format!(
                        "{}: no [actuator] sets this rollout's traffic split",
                        present::escape(&id)
                    ),
                ),
            }
            vec![]
        }
        Command::Report => {
            let Some(id) = state.selected_entry().map(|e| e.id().to_string()) else {
                return vec![];
            };
            let Some(dir) = state.reports_dir.clone() else {
                toast(
                    state,
                    ToastLevel::Error,
                    "this screen writes no reports".into(),
                );
                return vec![];
            };
            let shown = present::escape(&id).into_owned();
            toast(
                state,
                ToastLevel::Info,
                format!("writing the report of {shown}..."),
            );
            vec![EngineCommand::WriteReport { id, dir }.into()]
        }
        Command::Fault => {
            let Some(id) = state.selected_entry().map(|e| e.id().to_string()) else {
                return vec![];
            };
            if !state.simulated {
                toast(
                    state,
                    ToastLevel::Error,
                    "faults can only be simulated with the traffic simulator (rollout-tui demo, or [metrics] kind = \"simulator\")".into(),
                );
                return vec![];
            }
            open_dialog(state, Dialog::Fault { id });
            vec![]
        }
        // Rollback stays reachable on a document that does not parse (the store writes only
        // the rollback fields); every other action needs the parsed rollout.
        Command::Rollback => {
            let Some(id) = state.selected_entry().map(|e| e.id().to_string()) else {
                return vec![];
            };
            open_dialog(
                state,
                Dialog::Rollback {
                    id,
                    input: Input::default(),
                },
            );
            vec![]
        }
        Command::Advance | Command::PauseResume | Command::SetPercent | Command::Promote => {
            rollout_command(state, command)
        }
    }
}

/// Keys while one event is open in full: they scroll it, and Esc returns to the events.
/// Quitting, help and rollback stay reachable (`None` lets them through); the rest would
/// act on a rollout the operator is not looking at, so they do nothing here.
fn event_view_key(state: &mut AppState, command: Command) -> Option<Vec<Effect>> {
    let lines = state.open_event().map_or(0, |(_, ev)| {
        // An upper bound of the wrapped lines for any view at least 40 columns wide (the
        // smallest cockpit is wider); the view clamps to what its width really needs.
        present::event_detail(ev, state.now)
            .iter()
            .map(|l| l.chars().count().div_ceil(38).max(1))
            .sum::<usize>()
    });
    let view = state.event_view.as_mut()?;
    let step: isize = match command {
        Command::Back => {
            state.event_view = None;
            return Some(vec![]);
        }
        Command::Quit | Command::Help | Command::Rollback => return None,
        Command::Up => -1,
        Command::Down => 1,
        Command::PageUp => -10,
        Command::PageDown => 10,
        _ => return Some(vec![]),
    };
    view.scroll = (view.scroll as isize + step).clamp(0, lines as isize) as usize;
    Some(vec![])
}

/// Watch mode: quit, pause rotation, flip between rollouts. No key reaches a write.
fn wall_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
    let command = state.keys.command_for(&key);
    let now = state.now;
    let count = state.rollouts.len().max(1);
    let Some(wall) = state.wall.as_mut() else {
        return vec![];
    };
    match (key.code, command) {
        (_, Some(Command::Quit)) => {
            state.quit = true;
            return vec![Effect::Quit];
        }
        (KeyCode::Char(' '), _) => wall.paused = !wall.paused,
        (KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('n'), _)
        | (_, Some(Command::Down)) => {
            wall.index = (wall.index % count + 1) % count;
            wall.last_rotate = now;
        }
        (KeyCode::Left | KeyCode::Char('h'), _) | (_, Some(Command::Up)) => {
            wall.index = (wall.index % count + count - 1) % count;
            wall.last_rotate = now;
        }
        _ => {}
    }
    vec![]
}

fn move_cursor(state: &mut AppState, step: isize) {
    let clamp = |v: isize, len: usize| v.clamp(0, len.saturating_sub(1) as isize) as usize;
    match (state.screen, state.focus) {
        (Screen::Detail, Panel::Users) => {
            let len = state
                .selected_entry()
                .and_then(|e| e.rollout.as_ref().ok())
                .map_or(0, |r| match state.user_list {
                    UserList::Canary => r.canary_users.len(),
                    UserList::Excluded => r.excluded_users.len(),
                });
            state.user_cursor = clamp(state.user_cursor as isize + step, len);
        }
        (Screen::Detail, Panel::Events) => {
            let len = state
                .selected_entry()
                .map_or(0, |e| e.events.len().min(EVENTS_SHOWN));
            state.event_offset = clamp(state.event_offset as isize + step, len);
        }
        (Screen::Detail, _) => {}
        (Screen::Overview, _) => {
            let len = state.visible().len();
            state.selected = clamp(state.selected as isize + step, len);
        }
    }
}

/// Moves the cursor to the next rollout below it that needs attention, wrapping around.
fn next_attention(state: &mut AppState) {
    let visible = state.visible();
    let n = visible.len();
    let found = (1..=n).map(|k| (state.selected + k) % n).find(|&pos| {
        state
            .attention(&state.rollouts[visible[pos]])
            .needs_attention()
    });
    match found {
        Some(pos) => state.selected = pos,
        None => toast(
            state,
            ToastLevel::Info,
            "no rollout needs attention".to_string(),
        ),
    }
}

/// The selected rollout, parsed; a malformed one gets a toast instead.
fn selected_rollout(state: &mut AppState) -> Option<Rollout> {
    let entry = state.selected_entry()?;
    match &entry.rollout {
        Ok(r) => Some(r.clone()),
        Err(e) => {
            let text = format!("cannot act on a malformed document: {e}");
            toast(state, ToastLevel::Error, text);
            None
        }
    }
}

/// Why the command would be refused, worked out before a dialog asks anything: a question
/// about a move that cannot happen (advancing a rolled-back rollout) only misleads.
fn refusal(state: &AppState, r: &Rollout, command: Command) -> Option<String> {
    if matches!(command, Command::Advance | Command::Promote)
        && let Some(frozen) = state.frozen()
    {
        return Some(format!("{}: {}", frozen.describe(), frozen.remedy()));
    }
    let fields = &state.entry(&r.id)?.stored.fields;
    let ctx = state.action_context();
    let dry_run = |action: Action| actions::apply(r, fields, &action, ctx).map(|_| ());
    let checked = match command {
        Command::Advance => dry_run(Action::Advance),
        Command::Promote => dry_run(Action::Promote),
        // A pause asks for its reason first: only when it could happen.
        Command::PauseResume if r.status != Status::Paused => {
            dry_run(Action::Pause { reason: None })
        }
        // The value is not chosen yet: only whether a percentage may be set at all.
        Command::SetPercent => actions::check_percent_settable(r),
        _ => Ok(()),
    };
    checked.err().map(|e| e.to_string())
}

/// The override dialog for a widening move that skips over failing or unknown health or
/// unserved bake time; `Err` gives the title and body back for the ordinary confirmation.
pub(super) fn guarded(
    state: &AppState,
    r: &Rollout,
    title: String,
    body: Vec<String>,
    action: Action,
) -> Result<Dialog, (String, Vec<String>)> {
    let report = state.entry(&r.id).and_then(|e| e.health.report.as_ref());
    let risks = guard::widening_risks(r, report, state.now);
    if risks.is_empty() {
        return Err((title, body));
    }
    Ok(Dialog::Override {
        id: r.id.clone(),
        title: format!("OVERRIDE: {title}"),
        body,
        risks,
        action,
        input: Input::default(),
    })
}

pub(super) fn rollout_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    let Some(r) = selected_rollout(state) else {
        return vec![];
    };
    let id = r.id.clone();
    if let Some(why) = refusal(state, &r, command) {
        toast(state, ToastLevel::Error, format!("{id}: {why}"));
        return vec![];
    }
    match command {
        Command::Advance | Command::Promote => {
            let action = if command == Command::Advance {
                Action::Advance
            } else {
                Action::Promote
            };
            if let Some(dialog) = move_dialog(state, &r, &action) {
                open_dialog(state, dialog);
            }
            vec![]
        }
        // Resume is one key; a pause asks for an optional reason first.
        Command::PauseResume if r.status == Status::Paused => perform(state, &id, Action::Resume),
        Command::PauseResume => {
            open_dialog(
                state,
                Dialog::Pause {
                    id,
                    input: Input::default(),
                },
            );
            vec![]
        }
        Command::SetPercent => {
            open_dialog(
                state,
                Dialog::SetPercent {
                    id,
                    input: Input::default(),
                },
            );
            vec![]
        }
        _ => vec![],
    }
}

/// The question a move asks about rollout `r` as it is now: the override dialog when the
/// move widens over failing or unknown health, else a confirmation (promotion has the id
/// typed). None for actions whose dialog does not depend on the document.
pub(super) fn move_dialog(state: &AppState, r: &Rollout, action: &Action) -> Option<Dialog> {
    let id = r.id.clone();
    match action {
        Action::Advance => {
            let plan = r.plan.as_ref().unwrap_or(&state.default_plan);
            let mut body = present::advance_lines(r, plan).to_vec();
            body.extend(health_warning(state, &id));
            let title = format!("Advance {id}?");
            Some(
                guarded(state, r, title, body, Action::Advance).unwrap_or_else(|(title, body)| {
                    Dialog::Confirm {
                        id: id.clone(),
                        title,
                        body,
                        action: Action::Advance,
                    }
                }),
            )
        }
        Action::Promote => {
            let body = vec![
                format!("{id} goes straight to 100 % and is marked complete,"),
                "skipping the remaining stages and their health gates.".into(),
            ];
            let title = format!("Promote {id} to 100 %?");
            Some(
                guarded(state, r, title, body, Action::Promote).unwrap_or_else(
                    |(title, mut body)| {
                        body.push(format!("Type the rollout id ({id}) and press Enter."));
                        Dialog::TypedConfirm {
                            id: id.clone(),
                            title,
                            body,
                            action: Action::Promote,
                            input: Input::default(),
                        }
                    },
                ),
            )
        }
        Action::SetPercent(p) => {
            let p = *p;
            let current = Some(r.percentage);
            let title = format!("Set {id} to {p}?");
            let body = vec![present::jump_line(current, p)];
            if p > r.percentage
                && let Ok(dialog) = guarded(state, r, title.clone(), body.clone(), action.clone())
            {
                return Some(dialog);
            }
            Some(Dialog::Confirm {
                id: id.clone(),
                title,
                body: body.into_iter().chain(health_warning(state, &id)).collect(),
                action: action.clone(),
            })
        }
        _ => None,
    }
}

fn users_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    if state.screen != Screen::Detail || state.focus != Panel::Users {
        let (key, users) = (state.keys.label(command), state.keys.label(Command::Users));
        toast(
            state,
            ToastLevel::Info,
            format!("{key}: works in the users panel ({users} opens it)"),
        );
        return vec![];
    }
    let Some(r) = selected_rollout(state) else {
        return vec![];
    };
    match command {
        Command::ToggleExcluded => {
            state.user_list = match state.user_list {
                UserList::Canary => UserList::Excluded,
                UserList::Excluded => UserList::Canary,
            };
            state.user_cursor = 0;
        }
        Command::AddUser => {
            open_dialog(
                state,
                Dialog::AddUser {
                    id: r.id.clone(),
                    list: state.user_list,
                    input: Input::default(),
                },
            );
        }
        Command::RemoveUser => {
            let users = match state.user_list {
                UserList::Canary => &r.canary_users,
                UserList::Excluded => &r.excluded_users,
            };
            if let Some(user) = users.get(state.user_cursor) {
                open_dialog(
                    state,
                    Dialog::Confirm {
                        id: r.id.clone(),
                        title: format!("Remove {user}?"),
                        body: vec![format!("from the {} of {}", state.user_list.label(), r.id)],
                        action: Action::RemoveUsers {
                            list: state.user_list,
                            keys: vec![user.clone()],
                        },
                    },
                );
            }
        }
        _ => {}
    }
    vec![]
}
