//! The freeze, as every screen shows it.

use chrono::{DateTime, Utc};

use crate::domain::freeze::{Frozen, Occurrence};
use crate::domain::text::escape;

/// While frozen: who, when, why, and what still works.
pub fn frozen_banner(frozen: &Frozen) -> String {
    format!("{} — only rollback and pause work", frozen.describe())
}

/// A freeze window shown ahead of time:
/// "freeze window 'weekend' from 12-04 18:00 to 12-07 08:00 UTC (in 5h)".
pub fn freeze_ahead(next: &Occurrence, now: DateTime<Utc>) -> String {
    format!(
        "freeze window '{}' from {} to {} UTC (in {})",
        escape(&next.name),
        next.start.format("%m-%d %H:%M"),
        next.end.format("%m-%d %H:%M"),
        super::minutes(next.start - now)
    )
}
