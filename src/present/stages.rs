//! A rollout's life as stretches at one percentage, and its audit events as kinds of
//! marker: what the cockpit's stage timeline and the `report` picture both draw.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::event::{Event, EventKind};
use crate::domain::rollout::{Rollout, Status, field};
use crate::domain::units::Percent;
use crate::present::escape;

/// What an audit event was, as a marker on the time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Advance,
    Halt,
    Resume,
    Rollback,
    Operator,
}

impl MarkKind {
    pub fn of(kind: EventKind) -> MarkKind {
        match kind {
            EventKind::Advance | EventKind::Promote | EventKind::Complete => MarkKind::Advance,
            // A recorded decision changed nothing: the machine held (or asked and was told no).
            EventKind::Pause | EventKind::Decision => MarkKind::Halt,
            EventKind::Resume => MarkKind::Resume,
            EventKind::Rollback => MarkKind::Rollback,
            EventKind::Create
            | EventKind::SetRevisions
            | EventKind::SetPercent
            | EventKind::AddUsers
            | EventKind::RemoveUsers => MarkKind::Operator,
        }
    }

    pub fn symbol(self) -> char {
        match self {
            MarkKind::Advance => 'A',
            MarkKind::Halt => 'H',
            MarkKind::Resume => 'R',
            MarkKind::Rollback => 'X',
            MarkKind::Operator => 'o',
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            MarkKind::Advance => "advance",
            MarkKind::Halt => "halt",
            MarkKind::Resume => "resume",
            MarkKind::Rollback => "rollback",
            MarkKind::Operator => "operator",
        }
    }

    /// Which mark shows when several fall in one place: the one that matters most.
    pub fn rank(self) -> u8 {
        match self {
            MarkKind::Rollback => 4,
            MarkKind::Halt => 3,
            MarkKind::Resume => 2,
            MarkKind::Advance => 1,
            MarkKind::Operator => 0,
        }
    }

    pub const ALL: [MarkKind; 5] = [
        MarkKind::Advance,
        MarkKind::Halt,
        MarkKind::Resume,
        MarkKind::Rollback,
        MarkKind::Operator,
    ];
}

/// A stretch of time at one percentage, from `from` until the next one starts (or now).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub from: DateTime<Utc>,
    pub percent: Percent,
    pub stage: Option<usize>,
    /// A rollback began it.
    pub rolled_back: bool,
}

/// Events oldest first. The store lists them newest first; equal times keep their order
/// when reversed.
pub fn oldest_first(events: &[Event]) -> Vec<&Event> {
    let mut sorted: Vec<&Event> = events.iter().rev().collect();
    sorted.sort_by_key(|e| e.at);
    sorted
}

fn percent_in(v: &Value) -> Option<Percent> {
    let p = v.get(field::ROLLOUT_PERCENTAGE)?;
    match p {
        Value::Number(n) => Percent::from_f64(n.as_f64()?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn stage_in(v: &Value) -> Option<usize> {
    v.get(field::CURRENT_STAGE)?
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
}

/// The stretches `r` spent at each percentage, from its events (oldest first) and, for the
/// last word, the document itself (events may be missing or not loaded yet).
pub fn segments(r: &Rollout, sorted: &[&Event], now: DateTime<Utc>) -> Vec<Segment> {
    let stage_of = |p: Percent| r.plan.as_ref().and_then(|plan| plan.stage_for_percent(p));
    let mut segments: Vec<Segment> = Vec::new();
    for e in sorted {
        let Some(percent) = percent_in(&e.after) else {
            continue;
        };
        // The oldest event shown may not be the first: what it changed from came before it.
        if segments.is_empty()
            && let Some(before) = percent_in(&e.before)
        {
            segments.push(Segment {
                from: r.started_at.filter(|s| *s < e.at).unwrap_or(e.at),
                percent: before,
                stage: stage_in(&e.before).or_else(|| stage_of(before)),
                rolled_back: false,
            });
        }
        let stage = stage_in(&e.after).or_else(|| stage_of(percent));
        if segments
            .last()
            .is_some_and(|s| s.percent == percent && s.stage == stage)
        {
            continue;
        }
        segments.push(Segment {
            from: e.at,
            percent,
            stage,
            rolled_back: e.kind == EventKind::Rollback,
        });
    }
    if segments.last().is_none_or(|s| s.percent != r.percentage) {
        let since = r.stage_entered_at.or(r.started_at).unwrap_or(now).min(now);
        segments.push(Segment {
            from: segments.last().map_or(since, |s| since.max(s.from)),
            percent: r.percentage,
            stage: r.stage().map(|(i, _)| i),
            rolled_back: r.status == Status::RolledBack,
        });
    }
    segments
}

/// A stage as the timeline names it: the plan's name where the percentage is the stage's
/// own, else the percentage (one set by hand, or a rollout without a plan). Escaped.
pub fn stage_name(r: &Rollout, stage: Option<usize>, percent: Percent) -> String {
    stage
        .and_then(|i| r.plan.as_ref()?.stages.get(i))
        .filter(|s| s.percent == percent)
        .map_or_else(|| percent.to_string(), |s| escape(&s.name).into_owned())
}
