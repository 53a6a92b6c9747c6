//! The reducer: `update(state, msg) -> effects`. Pure apart from reading the
//! message; all IO happens in the runtime, whose results come back as messages.
//!
//! Keys are handled in `keys`, open dialogs in `dialogs`, and what the engine reports
//! in `engine_events`; this module holds the messages, the effects and what they share.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, KeyEventKind};

use crate::app::state::{AppState, Toast, ToastLevel, toast_lifetime};
use crate::domain::actions::UserList;
use crate::engine::{Command as EngineCommand, EngineEvent};

mod dialogs;
mod engine_events;
mod keys;
mod traffic;

pub use crate::app::state::{FAULT_CHOICES, input_problem};

use engine_events::on_engine;
use keys::on_key;

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
    /// Text pasted into the terminal (bracketed paste): goes into the open input, if any.
    Paste(String),
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
    /// Bytes for the terminal itself: a bell or a desktop notification (OSC 9 / OSC 777).
    Alert(Vec<u8>),
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
    let asked = traffic::dialog_move(state);
    let mut effects = on_msg(state, msg);
    follow_order(state);
    effects.extend(traffic::plan_if_asked_anew(state, asked));
    effects
}

fn on_msg(state: &mut AppState, msg: Msg) -> Vec<Effect> {
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
        Msg::Paste(text) => {
            state.dirty = true;
            dialogs::paste(state, &text);
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

fn toast(state: &mut AppState, level: ToastLevel, text: String) {
    state.dirty = true;
    state.toast = Some(Toast {
        text,
        level,
        at: state.now,
    });
}

/// Re-sorts the overview (what changed, or the time alone, may move a rollout to another
/// group); the cursor stays on the rollout it was on.
fn follow_order(state: &mut AppState) {
    let order = state.sorted_ids();
    if order != state.order {
        let keep = state.selected_entry().map(|e| e.id().to_string());
        state.order = order;
        if let Some(id) = keep {
            select_id(state, &id);
        }
        state.dirty = true;
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
