//! The reducer: `update(state, msg) -> effects`. Pure apart from reading the
//! message; all IO happens in the runtime, whose results come back as messages.

use chrono::{DateTime, Utc};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::app::keymap::Command;
use crate::app::state::{
    AppState, AutoView, Conn, Dialog, EVENTS_SHOWN, Entry, HISTORY_LEN, HistoryPoint, Panel,
    Screen, Toast, ToastLevel, toast_lifetime,
};
use crate::domain::actions::{self, Action, UserList};
use crate::domain::health::{GateReport, HealthSample};
use crate::domain::rollout::{Rollout, Status};
use crate::domain::units::Percent;
use crate::domain::units::format_elapsed;
use crate::engine::driver::{LeaseState, Step};
use crate::engine::{Command as EngineCommand, DriverUpdate, EngineEvent, WriteOutcome};
use crate::metrics::Regression;
use crate::present;
use crate::store::{StoreChange, StoredRollout};

/// The faults the fault dialog offers, by key (`0` clears them).
pub const FAULT_CHOICES: [(char, Regression); 3] = [
    ('1', Regression::ErrorSpike { error_rate: 0.2 }),
    ('2', Regression::LatencyShift { ms: 400.0 }),
    ('3', Regression::TrafficDrop),
];
/// A percentage jump bigger than this (or to 100 %) asks first.
const BIG_JUMP_POINTS: f64 = 25.0;

// Nearly every message is an engine event, moved once from the channel into `update`:
// boxing it would add an allocation per message for no saving.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// What the engine says changed.
    Engine(EngineEvent),
    Tick(DateTime<Utc>),
    Resize,
}

impl From<EngineEvent> for Msg {
    fn from(e: EngineEvent) -> Msg {
        Msg::Engine(e)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Asks the engine to do something (write, load, drive).
    Engine(EngineCommand),
    Quit,
}

impl From<EngineCommand> for Effect {
    fn from(c: EngineCommand) -> Effect {
        Effect::Engine(c)
    }
}

/// Applies a message; returns what the runtime should do. Sets `state.dirty` when the
/// screen must be drawn again (messages that change nothing visible leave it alone).
pub fn update(state: &mut AppState, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) if key.kind != KeyEventKind::Release => {
            state.dirty = true;
            on_key(state, key)
        }
        Msg::Key(_) => vec![],
        Msg::Resize => {
            state.dirty = true;
            vec![]
        }
        Msg::Tick(now) => {
            state.now = now;
            // The runtime ticks only while a clock, a countdown or a message is on screen.
            state.dirty = true;
            if let Some(wall) = state.wall.as_mut()
                && !wall.paused
                && (now - wall.last_rotate).to_std().unwrap_or_default() >= wall.rotate_every
            {
                wall.index = wall.index.wrapping_add(1);
                wall.last_rotate = now;
            }
            if state
                .toast
                .as_ref()
                .is_some_and(|t| now - t.at >= toast_lifetime(state.clock_rate))
            {
                state.toast = None;
            }
            vec![]
        }
        Msg::Engine(event) => on_engine(state, event),
    }
}

fn on_engine(state: &mut AppState, event: EngineEvent) -> Vec<Effect> {
    match event {
        EngineEvent::Store(change) => {
            // A resync repeats documents that did not change: nothing to draw for those.
            let same = matches!(&change, StoreChange::Upserted(stored)
                if state.entry(&stored.id).is_some_and(|e| e.stored == *stored));
            state.dirty |= !same;
            on_store(state, change)
        }
        EngineEvent::History { id, samples } => {
            state.dirty |= state.shows(&id);
            on_history(state, &id, samples);
            vec![]
        }
        EngineEvent::Health { id, sample, report } => {
            state.dirty |= state.shows(&id);
            on_health(state, &id, sample, report);
            vec![]
        }
        EngineEvent::Events { id, result } => {
            match result {
                Ok(events) => {
                    if let Some(e) = state.entry_mut(&id)
                        && e.events != events
                    {
                        e.events = events;
                        state.dirty = true;
                    }
                }
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!("{id}: cannot load events: {why}"),
                ),
            }
            vec![]
        }
        EngineEvent::Lease { id, lease } => {
            if let Some(e) = state.entry_mut(&id)
                && e.lease != lease
            {
                e.lease = lease;
                state.dirty = true;
            }
            vec![]
        }
        EngineEvent::Written {
            id,
            action,
            outcome,
        } => {
            state.dirty = true;
            on_performed(state, id, action, outcome)
        }
        EngineEvent::Driver { id, update } => {
            state.dirty = true;
            on_driver(state, id, update)
        }
        EngineEvent::AutoConfirmed { id, result } => {
            match result {
                Ok(summary) => toast(state, ToastLevel::Info, format!("{id}: {summary}")),
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!("{id}: not advanced: {why}"),
                ),
            }
            vec![EngineCommand::LoadEvents(id).into()]
        }
        EngineEvent::AutoUnavailable { id, why } => {
            if let Some(e) = state.entry_mut(&id) {
                e.auto = None;
            }
            toast(
                state,
                ToastLevel::Error,
                format!("{id}: auto-progression unavailable: {why}"),
            );
            vec![]
        }
        EngineEvent::TaskFailed {
            task,
            error,
            restart_in,
        } => {
            let next = match restart_in {
                Some(wait) => format!("restarting in {}", format_elapsed(wait)),
                None => "not restarted".to_string(),
            };
            toast(
                state,
                ToastLevel::Error,
                format!("{task} failed ({error}); {next}"),
            );
            vec![]
        }
    }
}

fn toast(state: &mut AppState, level: ToastLevel, text: String) {
    state.dirty = true;
    state.toast = Some(Toast {
        text,
        level,
        at: state.now,
    });
}

fn on_store(state: &mut AppState, change: StoreChange) -> Vec<Effect> {
    match change {
        StoreChange::Upserted(stored) => {
            state.store_seen_at = Some(state.now);
            let id = stored.id.clone();
            upsert(state, stored);
            clamp_selection(state);
            // The open rollout's audit log follows every change, whoever made it.
            if state.screen == Screen::Detail
                && state.selected_entry().is_some_and(|e| e.id() == id)
            {
                return vec![Effect::Engine(EngineCommand::LoadEvents(id))];
            }
        }
        StoreChange::Removed(id) => {
            let selected = state.selected_entry().map(|e| e.id().to_string());
            state.rollouts.retain(|e| e.id() != id);
            if selected.as_deref() == Some(id.as_str()) && state.screen == Screen::Detail {
                state.screen = Screen::Overview;
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{id} was deleted by someone else"),
                );
            }
            clamp_selection(state);
        }
        StoreChange::Disconnected(why) => {
            if state.store_conn == Conn::Connected {
                state.store_conn = Conn::Disconnected {
                    since: state.now - silent_for(&why),
                    why,
                };
            }
        }
        StoreChange::Reconnected => {
            state.store_conn = Conn::Connected;
            state.store_seen_at = Some(state.now);
        }
    }
    vec![]
}

/// A store that noticed silence says how long it heard nothing ("no word from the
/// store for 20 s", the Firestore store): the data on screen is as old as the last
/// word, not as the notice.
fn silent_for(why: &str) -> chrono::Duration {
    why.split_once("no word from the store for ")
        .and_then(|(_, rest)| rest.split_once(" s"))
        .and_then(|(secs, _)| secs.parse().ok())
        .map_or_else(chrono::Duration::zero, chrono::Duration::seconds)
}

fn upsert(state: &mut AppState, stored: StoredRollout) {
    let rollout = stored.parse();
    match state.rollouts.binary_search_by(|e| e.id().cmp(&stored.id)) {
        Ok(i) => {
            let e = &mut state.rollouts[i];
            e.rollout = rollout;
            e.stored = stored;
        }
        Err(i) => {
            // Keep the cursor on the rollout it was on when another one appears above it.
            let keep = state.selected_entry().map(|e| e.id().to_string());
            let auto = state
                .auto_on_start
                .contains(&stored.id)
                .then(AutoView::default);
            state.rollouts.insert(
                i,
                Entry {
                    stored,
                    rollout,
                    health: Default::default(),
                    events: vec![],
                    lease: None,
                    auto,
                },
            );
            if let Some(id) = keep
                && let Some(pos) = state
                    .visible()
                    .iter()
                    .position(|&j| state.rollouts[j].id() == id)
            {
                state.selected = pos;
            }
        }
    }
}

/// Puts the cursor on `id` if it is visible.
fn select_id(state: &mut AppState, id: &str) {
    if let Some(pos) = state
        .visible()
        .iter()
        .position(|&i| state.rollouts[i].id() == id)
    {
        state.selected = pos;
    }
}

fn clamp_selection(state: &mut AppState) {
    let n = state.visible().len();
    state.selected = if n == 0 { 0 } else { state.selected.min(n - 1) };
    // A list that shrank (a user removed here or elsewhere) keeps the cursor on a real entry.
    let users = state
        .selected_entry()
        .and_then(|e| e.rollout.as_ref().ok())
        .map_or(0, |r| match state.user_list {
            UserList::Canary => r.canary_users.len(),
            UserList::Excluded => r.excluded_users.len(),
        });
    state.user_cursor = state.user_cursor.min(users.saturating_sub(1));
}

/// A sample and the engine's report of it: the screen shows the judgment the driver acts
/// on, never a second one of its own.
fn on_health(state: &mut AppState, id: &str, sample: HealthSample, report: GateReport) {
    let Some(entry) = state.entry_mut(id) else {
        return;
    };
    let point = HistoryPoint::of(&sample);
    let h = &mut entry.health;
    if h.history.len() == HISTORY_LEN {
        h.history.pop_front();
    }
    h.history.push_back(point);
    if sample.stable.is_some() && sample.canary.is_some() {
        h.last_good = Some(sample.clone());
    }
    h.latest = Some(sample);
    h.report = Some(report);
}

/// Past samples fetched when the screen opened: they go before what was sampled since,
/// never replacing a live point and never judged by the gates.
fn on_history(state: &mut AppState, id: &str, samples: Vec<HealthSample>) {
    let Some(entry) = state.entry_mut(id) else {
        return;
    };
    let history = &mut entry.health.history;
    let first_live = history.front().and_then(|p| p.at);
    let older: Vec<HistoryPoint> = samples
        .iter()
        .filter(|s| first_live.is_none_or(|t| s.taken_at < t))
        .map(HistoryPoint::of)
        .collect();
    for point in older.into_iter().rev() {
        if history.len() == HISTORY_LEN {
            break;
        }
        history.push_front(point);
    }
}

fn on_driver(state: &mut AppState, id: String, update: DriverUpdate) -> Vec<Effect> {
    let now = state.now;
    let Some(entry) = state.entry_mut(&id) else {
        return vec![];
    };
    let Some(auto) = entry.auto.as_mut() else {
        return vec![];
    };
    auto.lease = Some(update.lease.clone());
    auto.decision = Some(update.decision.clone());
    match &update.lease {
        LeaseState::Held(l) | LeaseState::HeldByOther(l) => entry.lease = Some(l.clone()),
        LeaseState::Unavailable(_) => {}
    }
    let mut effects = vec![];
    if let Some(result) = &update.acted {
        if let Some(auto) = entry.auto.as_mut() {
            auto.acted = Some(result.clone());
        }
        effects.push(Effect::Engine(EngineCommand::LoadEvents(id.clone())));
        let (level, text) = match present::auto_acted(&id, result) {
            Ok(text) => (ToastLevel::Info, text),
            Err(text) => (ToastLevel::Error, text),
        };
        toast(state, level, text);
    }
    // A question waits for the operator; it never replaces a dialog they are using.
    if state.dialog.is_none() {
        match update.step {
            Step::AskConfirmation(next) => {
                open_dialog(
                    state,
                    Dialog::AutoConfirm {
                        id,
                        next,
                        evidence: update.evidence,
                        since: now,
                    },
                );
            }
            Step::ProposeRollback(why) => {
                let mut body = vec![why.clone()];
                body.extend(update.evidence);
                open_dialog(
                    state,
                    Dialog::Confirm {
                        id: id.clone(),
                        title: format!("Auto-progression proposes: ROLL BACK {id}"),
                        body,
                        action: Action::Rollback {
                            reason: format!("proposed by auto-progression, confirmed: {why}"),
                        },
                    },
                );
            }
            _ => {}
        }
    }
    effects
}

fn on_performed(
    state: &mut AppState,
    id: String,
    action: Action,
    outcome: WriteOutcome,
) -> Vec<Effect> {
    state.pending_writes = state.pending_writes.saturating_sub(1);
    match outcome {
        WriteOutcome::Done { summary, stored } => {
            upsert(state, stored);
            clamp_selection(state);
            toast(state, ToastLevel::Info, format!("{id}: {summary}"));
            vec![Effect::Engine(EngineCommand::LoadEvents(id))]
        }
        WriteOutcome::Conflict { changed, current } => {
            upsert(state, current);
            open_dialog(
                state,
                Dialog::Conflict {
                    id,
                    action,
                    changed,
                },
            );
            vec![]
        }
        WriteOutcome::Failed(why) => {
            let what = present::action_label(&action);
            toast(
                state,
                ToastLevel::Error,
                format!("{id}: {what} FAILED: {why}"),
            );
            vec![]
        }
    }
}

/// Opens a dialog and remembers the rollout as the operator sees it now: the write the
/// dialog leads to is compare-and-set against this revision, so a change made meanwhile
/// is shown as a conflict instead of being built upon unseen.
fn open_dialog(state: &mut AppState, dialog: Dialog) {
    state.dialog_seen = dialog
        .rollout_id()
        .and_then(|id| state.entry(id))
        .map(|e| e.stored.clone());
    state.dialog = Some(dialog);
}

fn perform(state: &mut AppState, id: &str, action: Action) -> Vec<Effect> {
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

fn on_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
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
        return vec![];
    };
    match command {
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
            if state.screen == Screen::Overview
                && let Some(id) = state.selected_entry().map(|e| e.id().to_string())
            {
                state.screen = Screen::Detail;
                state.focus = Panel::Timeline;
                state.user_cursor = 0;
                state.event_offset = 0;
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
    let fields = &state.entry(&r.id)?.stored.fields;
    let ctx = actions::Context {
        actor: &state.actor,
        now: state.now,
        default_plan: &state.default_plan,
    };
    let dry_run = |action: Action| actions::apply(r, fields, &action, ctx).map(|_| ());
    let checked = match command {
        Command::Advance => dry_run(Action::Advance),
        Command::Promote => dry_run(Action::Promote),
        // The value is not chosen yet: only whether a percentage may be set at all.
        Command::SetPercent => actions::check_percent_settable(r),
        _ => Ok(()),
    };
    checked.err().map(|e| e.to_string())
}

fn rollout_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    let Some(r) = selected_rollout(state) else {
        return vec![];
    };
    let id = r.id.clone();
    if let Some(why) = refusal(state, &r, command) {
        toast(state, ToastLevel::Error, format!("{id}: {why}"));
        return vec![];
    }
    match command {
        Command::Advance => {
            let plan = r.plan.as_ref().unwrap_or(&state.default_plan);
            let mut body = present::advance_lines(&r, plan).to_vec();
            body.extend(health_warning(state, &id));
            open_dialog(
                state,
                Dialog::Confirm {
                    id: id.clone(),
                    title: format!("Advance {id}?"),
                    body,
                    action: Action::Advance,
                },
            );
            vec![]
        }
        Command::PauseResume => {
            let action = if r.status == Status::Paused {
                Action::Resume
            } else {
                Action::Pause {
                    reason: Some(format!("paused from the cockpit by {}", state.actor)),
                }
            };
            perform(state, &id, action)
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
        Command::Promote => {
            let body = vec![
                format!("{id} goes straight to 100 % and is marked complete,"),
                "skipping the remaining stages and their health gates.".into(),
                format!("Type the rollout id ({id}) and press Enter."),
            ];
            open_dialog(
                state,
                Dialog::TypedConfirm {
                    id: id.clone(),
                    title: format!("Promote {id} to 100 %?"),
                    body,
                    action: Action::Promote,
                    input: Input::default(),
                },
            );
            vec![]
        }
        _ => vec![],
    }
}

/// The health line of a confirmation dialog.
fn health_warning(state: &AppState, id: &str) -> Option<String> {
    let report = state.entry(id)?.health.report.as_ref();
    Some(present::health_line(report))
}

fn users_command(state: &mut AppState, command: Command) -> Vec<Effect> {
    if state.screen != Screen::Detail || state.focus != Panel::Users {
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

/// What is wrong with the text in an input dialog, checked as the operator types.
pub fn input_problem(state: &AppState, dialog: &Dialog) -> Option<String> {
    match dialog {
        Dialog::SetPercent { id, input } => {
            let text = input.value();
            if text.trim().is_empty() {
                return Some("type a percentage, e.g. 5, 25 or 0.5".into());
            }
            let p = match text.parse::<Percent>() {
                Ok(p) => p,
                Err(e) => return Some(e.to_string()),
            };
            let r = state.entry(id)?.rollout.as_ref().ok()?;
            actions::check_set_percent(r, p)
                .err()
                .map(|e| e.to_string())
        }
        Dialog::AddUser { id, list, input } => {
            let text = input.value();
            if text.trim().is_empty() {
                return Some("type an email address or a user id".into());
            }
            let key = match actions::validate_user_key(text) {
                Ok(k) => k,
                Err(e) => return Some(e.to_string()),
            };
            let r = state.entry(id)?.rollout.as_ref().ok()?;
            let (same, other) = match list {
                UserList::Canary => (&r.canary_users, &r.excluded_users),
                UserList::Excluded => (&r.excluded_users, &r.canary_users),
            };
            if same.iter().any(|u| actions::same_user(u, &key)) {
                return Some(format!("{key} is already in this list"));
            }
            if other.iter().any(|u| actions::same_user(u, &key)) {
                return Some(format!("{key} is in the other list; remove it there first"));
            }
            None
        }
        Dialog::Rollback { input, .. } => input
            .value()
            .trim()
            .is_empty()
            .then(|| "a reason is required".to_string()),
        Dialog::TypedConfirm { id, input, .. } => {
            (input.value().trim() != id).then(|| format!("type {id} to confirm"))
        }
        Dialog::Confirm { .. }
        | Dialog::Conflict { .. }
        | Dialog::AutoConfirm { .. }
        | Dialog::Quit { .. }
        | Dialog::Fault { .. } => None,
    }
}

fn dialog_key(state: &mut AppState, key: KeyEvent) -> Vec<Effect> {
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
            KeyCode::Char('r') | KeyCode::Char('R') if action == Action::Advance => {
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
        Dialog::Confirm { .. }
        | Dialog::Conflict { .. }
        | Dialog::AutoConfirm { .. }
        | Dialog::Quit { .. }
        | Dialog::Fault { .. } => vec![],
    }
}
