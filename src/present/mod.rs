//! The one presentation layer: every word, label and number format the front ends show
//! (the `status` and `events` tables, the cockpit's views and dialogs, the wall, and the
//! texts the reducer puts in toasts and dialogs). Pure: domain types in, text out; no IO,
//! no terminal types. Outside text (names, reasons, gate details, server errors) comes out
//! escaped, so whatever the store held stays inert on a terminal; escaping is idempotent,
//! so a front end that escapes again changes nothing.

mod attention;
mod event;
mod freeze;
mod health;
mod messages;
mod rollout;
mod stages;
mod time;
mod wall;

pub use crate::domain::text::escape;
pub use crate::domain::units::{format_duration, format_elapsed};
pub use attention::{
    Attention, Signals, SortKey, classify, entry_time, last_transition, recent_rollback,
    stage_steps,
};
pub use event::{
    assignment_lines, change_author, decision_word, event_detail, event_text, field_change,
    field_change_in, gates_by_severity, grouped_gates, is_automatic,
};
pub use freeze::{freeze_ahead, frozen_banner};
pub use health::{
    gate_line, gate_text, gate_word, health_cell, health_line, ms, rate_pct, verdict_badge,
    verdict_word,
};
pub use messages::{action_label, advance_lines, auto_acted, jump_line};
pub use rollout::{
    StageClock, countdown, gates_off, list_title, plan_line, stage_clock, stage_label,
    stage_position, stage_row, status_label, user_preview,
};
pub use stages::{MarkKind, Segment, oldest_first, segments, stage_name};
pub use time::{ago, clock, clock_minutes, data_age, minutes, since};
pub use wall::{StaleData, WallStatus, WallWord, wall_summary};
