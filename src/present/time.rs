//! Ages and times of day.

use chrono::{DateTime, Utc};

use crate::domain::units::format_elapsed;

/// How long ago something was, as an elapsed time ("4m12s"); a time in the future
/// (clocks apart) reads as 0s rather than as a negative age.
pub fn since(d: chrono::Duration) -> String {
    format_elapsed(d.to_std().unwrap_or_default())
}

/// Clock skew below this reads as "0s ago"; beyond it a future time says so.
const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::seconds(5);

/// "4m12s ago", "3m in the future" (a writer whose clock runs ahead), or "-" when the
/// time is not known.
pub fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "-".into(),
        Some(t) if t - now > FUTURE_TOLERANCE => format!("{} in the future", since(t - now)),
        Some(t) => format!("{} ago", since(now - t)),
    }
}

/// A duration to the minute, for the wall (read from across the room, redrawn once a
/// minute): "<1m", "5m", "2h05m", "3d04h".
pub fn minutes(d: chrono::Duration) -> String {
    let m = d.num_minutes().max(0);
    match m {
        0 => "<1m".into(),
        1..60 => format!("{m}m"),
        60..1440 => format!("{}h{:02}m", m / 60, m % 60),
        _ => format!("{}d{:02}h", m / 1440, m % 1440 / 60),
    }
}

/// Hours and minutes, for the wall's clock.
pub fn clock_minutes(t: DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

/// The age of the newest data on screen: "data 5s old", or "no data yet".
pub fn data_age(age: Option<chrono::Duration>) -> String {
    age.map_or_else(
        || "no data yet".into(),
        |a| format!("data {} old", since(a)),
    )
}

/// A time of day in UTC, as leases and the wall's clock show it: "08:56:00".
pub fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn minutes_for_the_wall() {
        let m = |s: i64| minutes(chrono::Duration::seconds(s));
        assert_eq!(
            [m(-3), m(59), m(60), m(3599), m(3600), m(3725), m(90_000)],
            ["<1m", "<1m", "1m", "59m", "1h00m", "1h02m", "1d01h"]
        );
        assert_eq!(clock_minutes(at(3_725)), "01:02");
    }

    #[test]
    fn a_future_time_is_not_shown_as_just_now() {
        assert_eq!(ago(Some(at(1_000)), at(997)), "0s ago");
        assert_eq!(ago(Some(at(1_000 + 252)), at(1_000)), "4m12s in the future");
        assert_eq!(ago(None, at(0)), "-");
    }

    #[test]
    fn ages() {
        assert_eq!(since(chrono::Duration::seconds(252)), "4m12s");
        assert_eq!(since(chrono::Duration::seconds(-5)), "0s");
        assert_eq!(ago(Some(at(0)), at(7_500)), "2h05m ago");
        assert_eq!(ago(None, at(0)), "-");
        assert_eq!(data_age(Some(chrono::Duration::seconds(5))), "data 5s old");
        assert_eq!(data_age(None), "no data yet");
        assert_eq!(clock(at(8 * 3600 + 56 * 60 + 7)), "08:56:07");
    }
}
