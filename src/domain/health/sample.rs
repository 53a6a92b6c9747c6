//! What a sample can back: each side's numbers when they are there, fresh, plausible and
//! enough, or why not; how old the data is, allowing for clock skew and the source's delay.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{GateConfig, HealthSample, Side, SideStats};
use crate::domain::units::format_duration;

impl HealthSample {
    pub(super) fn side(&self, side: Side) -> Option<&SideStats> {
        match side {
            Side::Stable => self.stable.as_ref(),
            Side::Canary => self.canary.as_ref(),
        }
    }

    /// How old the newest point may be: the gates' limit plus the source's usual delay.
    pub fn staleness_limit(&self, cfg: &GateConfig) -> Duration {
        cfg.max_staleness.saturating_add(self.ingestion_delay)
    }

    /// " = 3m + 4m source delay" after the limit when the source is late by design.
    pub(super) fn delay_note(&self, cfg: &GateConfig) -> String {
        if self.ingestion_delay.is_zero() {
            String::new()
        } else {
            format!(
                " = {} + {} source delay",
                format_duration(cfg.max_staleness),
                format_duration(self.ingestion_delay)
            )
        }
    }

    /// Age of the oldest of the sides' newest points (the one freshness judges); zero for
    /// a point from the future.
    pub fn data_age(&self, now: DateTime<Utc>) -> Option<Duration> {
        [Side::Canary, Side::Stable]
            .iter()
            .filter_map(|&s| self.side(s)?.newest_point_at)
            .map(|t| age(t, now))
            .max()
    }

    pub(super) fn missing_text(&self, side: Side) -> String {
        match &self.source_error {
            Some(e) => format!("no {} data: {e}", side.name()),
            None => format!("no {} data", side.name()),
        }
    }

    /// The side's numbers if they can back a verdict, else why not.
    pub(super) fn usable(
        &self,
        side: Side,
        cfg: &GateConfig,
        now: DateTime<Utc>,
    ) -> Result<&SideStats, String> {
        let s = self.checked(side, cfg, now)?;
        let name = side.name();
        if s.requests == 0 {
            return Err(format!("no {name} requests in the window"));
        }
        if s.requests < cfg.min_requests {
            return Err(format!(
                "{} {name} requests < {} minimum",
                s.requests, cfg.min_requests
            ));
        }
        Ok(s)
    }

    /// The side's numbers if they are there, fresh and plausible, whatever their count (the
    /// stage totals of a sample are as fresh as its window).
    pub(super) fn checked(
        &self,
        side: Side,
        cfg: &GateConfig,
        now: DateTime<Utc>,
    ) -> Result<&SideStats, String> {
        let name = side.name();
        let s = self.side(side).ok_or_else(|| self.missing_text(side))?;
        let newest = s
            .newest_point_at
            .ok_or_else(|| format!("no time for the newest {name} point"))?;
        if let Some(ahead) = ahead_of(newest, now) {
            return Err(future_text(side, ahead));
        }
        let age = age(newest, now);
        let limit = self.staleness_limit(cfg);
        if age > limit {
            return Err(format!(
                "{name} data stale (newest point {} old > {} limit{})",
                format_duration(age),
                format_duration(limit),
                self.delay_note(cfg)
            ));
        }
        if s.errors > s.requests {
            return Err(bad_counts(s, side));
        }
        Ok(s)
    }
}

pub(super) fn bad_counts(s: &SideStats, side: Side) -> String {
    format!(
        "{} reports {} errors > {} requests (bad data)",
        side.name(),
        s.errors,
        s.requests
    )
}

/// Clocks of the source and this host may disagree by this much: a point up to this far
/// in the future is fresh, one further ahead means a clock is wrong and proves nothing.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(2 * 60);

/// A point from the future (within the skew allowed) is zero old.
pub(super) fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - t).to_std().unwrap_or(Duration::ZERO)
}

/// How far past `now` a point lies, when that is beyond the allowed clock skew.
pub(super) fn ahead_of(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (t - now).to_std().ok().filter(|d| *d > MAX_CLOCK_SKEW)
}

pub(super) fn future_text(side: Side, ahead: Duration) -> String {
    format!(
        "newest {} point is {} in the future: check the clocks",
        side.name(),
        format_duration(ahead)
    )
}
