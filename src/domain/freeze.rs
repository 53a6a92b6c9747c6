//! The freeze (kill switch): while frozen nothing advances or raises a percentage, by an
//! operator or a driver, anywhere; rollback and pause still work. A freeze is either set by
//! someone (a flag in the store, with who, when and why) or a window in the config
//! (weekends, a year-end change freeze), which behaves the same and is shown ahead of time.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::domain::actions::Action;
use crate::domain::text;
use crate::domain::units::Percent;

/// A freeze someone set: the store's global flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

impl Freeze {
    /// A flag that is there but cannot be read, or cannot be asked about: it freezes all the
    /// same (fail safe), and says why.
    pub fn unreadable(at: DateTime<Utc>, why: String) -> Freeze {
        Freeze {
            by: "(unknown)".into(),
            at,
            reason: why,
        }
    }
}

/// Why moves that widen a rollout are refused now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frozen {
    Flag(Freeze),
    Window { name: String, until: DateTime<Utc> },
}

impl Frozen {
    /// One line for screens and errors: "FROZEN by alice at 12-03 09:14 UTC: INC-42".
    pub fn describe(&self) -> String {
        match self {
            Frozen::Flag(f) => format!(
                "FROZEN by {} at {} UTC: {}",
                text::escape(&f.by),
                f.at.format("%m-%d %H:%M"),
                text::escape(&f.reason)
            ),
            Frozen::Window { name, until } => format!(
                "FROZEN: freeze window '{}' until {} UTC",
                text::escape(name),
                until.format("%m-%d %H:%M")
            ),
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Frozen::Flag(_) => {
                "only rollback and pause work until someone runs `rollout-tui unfreeze`"
            }
            Frozen::Window { .. } => {
                "only rollback and pause work until the window ends (or it is taken out of [freeze] in the config)"
            }
        }
    }
}

/// A move the freeze stops: any advance or promotion, and anything else that raises the
/// percentage (a higher `set-percent`). Pause, resume, rollback and user-list edits go on.
pub fn stopped_by_freeze(action: &Action, before: Percent, after: Percent) -> bool {
    matches!(action.base(), Action::Advance | Action::Promote) || after > before
}

/// A freeze window from the config: weekly (`every = "fri 18:00 - mon 08:00"`, UTC) or
/// once (`from`/`to`, RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// A window's occurrence: when it starts and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

const MINUTES_PER_WEEK: i64 = 7 * 24 * 60;

impl FreezeWindow {
    /// Checks the window; the error names what is wrong and how to write it.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().any(text::is_unsafe_for_terminal) {
            return Err("name must be non-empty printable text".into());
        }
        match (&self.every, self.from, self.to) {
            (Some(every), None, None) => weekly_span(every).map(|_| ()),
            (None, Some(from), Some(to)) if from < to => Ok(()),
            (None, Some(from), Some(to)) => Err(format!("from {from} is not before to {to}")),
            _ => Err(
                "give either every = \"fri 18:00 - mon 08:00\" (weekly, UTC) or both from and to (RFC 3339)"
                    .into(),
            ),
        }
    }

    /// The occurrences not over at `now`: the one in force, if any, and the next ones.
    pub fn occurrences(&self, now: DateTime<Utc>) -> Vec<Occurrence> {
        let occurrence = |start, end| Occurrence {
            name: self.name.clone(),
            start,
            end,
        };
        if let (Some(from), Some(to)) = (self.from, self.to) {
            return if now < to {
                vec![occurrence(from, to)]
            } else {
                Vec::new()
            };
        }
        let Some(Ok((start, length))) = self.every.as_deref().map(weekly_span) else {
            return Vec::new();
        };
        // From the week's start (Monday 00:00) at or before `now`: last week's occurrence
        // may still run, and next week's is the next one after this week's.
        let monday = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now)
            - Duration::minutes(minute_of_week(now));
        (-1..=1)
            .map(|week| monday + Duration::minutes(week * MINUTES_PER_WEEK + start))
            .map(|s| occurrence(s, s + Duration::minutes(length)))
            .filter(|o| o.end > now)
            .collect()
    }
}

fn minute_of_week(t: DateTime<Utc>) -> i64 {
    i64::from(t.weekday().num_days_from_monday()) * 24 * 60
        + i64::from(t.hour()) * 60
        + i64::from(t.minute())
}

/// "fri 18:00 - mon 08:00" as (start minute of the week, length in minutes).
fn weekly_span(text: &str) -> Result<(i64, i64), String> {
    let how = "write it as \"fri 18:00 - mon 08:00\" (UTC)";
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("every = '{text}': {how}"))?;
    let point = |p: &str| -> Result<i64, String> {
        let mut parts = p.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("every = '{text}': {how}"));
        };
        let day: Weekday = day
            .parse()
            .map_err(|_| format!("every = '{text}': '{day}' is not a weekday; {how}"))?;
        let time = chrono::NaiveTime::parse_from_str(time, "%H:%M")
            .map_err(|_| format!("every = '{text}': '{time}' is not HH:MM; {how}"))?;
        Ok(i64::from(day.num_days_from_monday()) * 24 * 60
            + i64::from(time.hour()) * 60
            + i64::from(time.minute()))
    };
    let (start, end) = (point(a)?, point(b)?);
    let length = (end - start).rem_euclid(MINUTES_PER_WEEK);
    if length == 0 {
        return Err(format!(
            "every = '{text}': the window starts and ends at the same time"
        ));
    }
    Ok((start, length))
}

/// The window in force at `now`, if any (the one that ends last when several overlap).
pub fn active_window(windows: &[FreezeWindow], now: DateTime<Utc>) -> Option<Frozen> {
    windows
        .iter()
        .flat_map(|w| w.occurrences(now))
        .filter(|o| o.start <= now)
        .max_by_key(|o| o.end)
        .map(|o| Frozen::Window {
            name: o.name,
            until: o.end,
        })
}

/// The next window to start after `now`, for showing it ahead of time.
pub fn next_window(windows: &[FreezeWindow], now: DateTime<Utc>) -> Option<Occurrence> {
    windows
        .iter()
        .flat_map(|w| w.occurrences(now))
        .filter(|o| o.start > now)
        .min_by_key(|o| o.start)
}

/// What stops widening moves now: the flag first (someone chose it), else a window.
pub fn frozen_now(
    flag: Option<&Freeze>,
    windows: &[FreezeWindow],
    now: DateTime<Utc>,
) -> Option<Frozen> {
    flag.map(|f| Frozen::Flag(f.clone()))
        .or_else(|| active_window(windows, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn weekend() -> FreezeWindow {
        FreezeWindow {
            name: "weekend".into(),
            every: Some("fri 18:00 - mon 08:00".into()),
            from: None,
            to: None,
        }
    }

    #[test]
    fn a_weekly_window_is_in_force_across_the_week_boundary() {
        // 2026-12-04 is a Friday.
        let w = [weekend()];
        assert_eq!(active_window(&w, at(2026, 12, 4, 17, 59)), None);
        let friday_night = active_window(&w, at(2026, 12, 4, 18, 0)).unwrap();
        assert_eq!(
            friday_night,
            Frozen::Window {
                name: "weekend".into(),
                until: at(2026, 12, 7, 8, 0)
            }
        );
        // Monday morning, in the occurrence that began last week.
        assert_eq!(
            active_window(&w, at(2026, 12, 7, 7, 59)),
            Some(Frozen::Window {
                name: "weekend".into(),
                until: at(2026, 12, 7, 8, 0)
            })
        );
        assert_eq!(active_window(&w, at(2026, 12, 7, 8, 0)), None);
    }

    #[test]
    fn the_next_window_is_known_ahead_of_time() {
        let w = [weekend()];
        let next = next_window(&w, at(2026, 12, 3, 9, 0)).unwrap();
        assert_eq!(next.start, at(2026, 12, 4, 18, 0));
        assert_eq!(next.end, at(2026, 12, 7, 8, 0));
        assert_eq!(
            next_window(&w, at(2026, 12, 5, 9, 0)).unwrap().start,
            at(2026, 12, 11, 18, 0)
        );
    }

    #[test]
    fn a_dated_window_runs_from_to_and_then_is_over() {
        let w = [FreezeWindow {
            name: "year-end".into(),
            every: None,
            from: Some(at(2026, 12, 20, 0, 0)),
            to: Some(at(2027, 1, 4, 0, 0)),
        }];
        assert_eq!(
            next_window(&w, at(2026, 12, 3, 0, 0)).unwrap().name,
            "year-end"
        );
        assert!(active_window(&w, at(2026, 12, 25, 0, 0)).is_some());
        assert_eq!(active_window(&w, at(2027, 1, 4, 0, 0)), None);
        assert_eq!(next_window(&w, at(2027, 1, 4, 0, 0)), None);
    }

    #[test]
    fn the_flag_comes_before_a_window() {
        let flag = Freeze {
            by: "alice".into(),
            at: at(2026, 12, 4, 19, 0),
            reason: "INC-42".into(),
        };
        let now = at(2026, 12, 4, 20, 0);
        let frozen = frozen_now(Some(&flag), &[weekend()], now).unwrap();
        assert_eq!(
            frozen.describe(),
            "FROZEN by alice at 12-04 19:00 UTC: INC-42"
        );
        assert!(
            frozen_now(None, &[weekend()], now)
                .unwrap()
                .describe()
                .contains("until 12-07 08:00")
        );
        assert_eq!(frozen_now(None, &[], now), None);
    }

    #[test]
    fn bad_windows_say_how_to_write_them() {
        let mut w = weekend();
        w.every = Some("friday evening".into());
        assert!(w.validate().unwrap_err().contains("fri 18:00 - mon 08:00"));
        w.every = Some("fri 18:00 - fri 18:00".into());
        assert!(w.validate().is_err());
        w.every = Some("fri 25:00 - mon 08:00".into());
        assert!(w.validate().unwrap_err().contains("HH:MM"));
        let dated = FreezeWindow {
            name: "x".into(),
            every: None,
            from: Some(at(2027, 1, 4, 0, 0)),
            to: Some(at(2026, 12, 20, 0, 0)),
        };
        assert!(dated.validate().unwrap_err().contains("not before"));
        assert!(weekend().validate().is_ok());
    }

    #[test]
    fn only_moves_that_widen_are_stopped() {
        let p = |n: u16| Percent::from_hundredths(n * 100).unwrap();
        assert!(stopped_by_freeze(&Action::Advance, p(5), p(25)));
        assert!(stopped_by_freeze(&Action::Promote, p(5), p(100)));
        assert!(stopped_by_freeze(&Action::SetPercent(p(30)), p(5), p(30)));
        assert!(!stopped_by_freeze(&Action::SetPercent(p(1)), p(5), p(1)));
        assert!(!stopped_by_freeze(
            &Action::Pause { reason: None },
            p(5),
            p(5)
        ));
        assert!(!stopped_by_freeze(&Action::Resume, p(5), p(5)));
        assert!(!stopped_by_freeze(
            &Action::Rollback { reason: "x".into() },
            p(5),
            p(0)
        ));
    }
}
