//! Small value types shared by the domain: percentages with two decimals and
//! human-readable durations.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rollout percentage with two decimals, stored as hundredths of a percent
/// (0..=10000) so comparisons and hashing thresholds are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(u16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentError {
    #[error("'{0}' is not a number; give a percentage such as 5, 25 or 0.5")]
    NotANumber(String),
    #[error("{0} is outside 0..=100")]
    OutOfRange(String),
    #[error("{0} has more than two decimals; use at most two, such as 0.25")]
    TooPrecise(String),
}

impl Percent {
    pub const ZERO: Percent = Percent(0);
    pub const FULL: Percent = Percent(10_000);

    /// From hundredths of a percent (250 = 2.5 %).
    pub fn from_hundredths(h: u16) -> Option<Percent> {
        (h <= 10_000).then_some(Percent(h))
    }

    pub fn hundredths(self) -> u16 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    pub fn is_whole(self) -> bool {
        self.0.is_multiple_of(100)
    }

    /// Accepts a JSON-ish number: 0..=100 with at most two decimals.
    pub fn from_f64(value: f64) -> Result<Percent, PercentError> {
        let shown = format_number(value);
        if !value.is_finite() {
            return Err(PercentError::NotANumber(shown));
        }
        if !(0.0..=100.0).contains(&value) {
            return Err(PercentError::OutOfRange(shown));
        }
        let scaled = value * 100.0;
        let rounded = scaled.round();
        // Binary floats cannot hold 0.29 exactly; accept what is a two-decimal number up to noise.
        if (scaled - rounded).abs() > 1e-6 {
            return Err(PercentError::TooPrecise(shown));
        }
        Ok(Percent(rounded as u16))
    }

    /// The JSON value written to documents: an integer when whole, else a float.
    pub fn to_json(self) -> serde_json::Value {
        if self.is_whole() {
            serde_json::Value::from(self.0 / 100)
        } else {
            serde_json::Value::from(self.as_f64())
        }
    }

    /// Difference in percentage points (may be negative).
    pub fn points_above(self, other: Percent) -> f64 {
        (f64::from(self.0) - f64::from(other.0)) / 100.0
    }
}

fn format_number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

impl FromStr for Percent {
    type Err = PercentError;
    fn from_str(s: &str) -> Result<Percent, PercentError> {
        let trimmed = s.trim().trim_end_matches('%').trim();
        // Parse the text itself so "5.123" is refused rather than rounded.
        let valid_shape = !trimmed.is_empty()
            && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.chars().filter(|&c| c == '.').count() <= 1
            && trimmed.chars().any(|c| c.is_ascii_digit());
        if !valid_shape {
            // "-5" is a number outside the range; "1e1", "+7", "0x10" are not how a percentage is written.
            let negative = trimmed.strip_prefix('-').is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
            if negative {
                return Err(PercentError::OutOfRange(trimmed.to_string()));
            }
            return Err(PercentError::NotANumber(s.trim().to_string()));
        }
        if let Some((_, decimals)) = trimmed.split_once('.')
            && decimals.trim_end_matches('0').len() > 2
        {
            return Err(PercentError::TooPrecise(trimmed.to_string()));
        }
        let value: f64 = trimmed
            .parse()
            .map_err(|_| PercentError::NotANumber(trimmed.to_string()))?;
        Percent::from_f64(value)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 100;
        let frac = self.0 % 100;
        if frac == 0 {
            write!(f, "{whole}%")
        } else if frac.is_multiple_of(10) {
            write!(f, "{whole}.{}%", frac / 10)
        } else {
            write!(f, "{whole}.{frac:02}%")
        }
    }
}

/// A rate (a fraction) as gate details and settings write it: 0.021 -> "2.10 %".
pub fn format_rate(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

/// Parses "10m", "48h", "1w", "1h30m", "90s" or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; use a form such as 10m, 48h or 1w".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("'{t}' is not a duration ({e}); use a form such as 10m, 48h or 1w"))
}

/// Compact form used in documents and on screen: "1w", "48h", "1h30m", "0s".
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    // Weeks only when exact; otherwise hours, so a tier plan reads "48h" rather than "2d".
    if secs.is_multiple_of(604_800) {
        return format!("{}w", secs / 604_800);
    }
    for (unit, size) in [("h", 3_600u64), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Short human form of an elapsed or remaining time for the screen: "4m12s", "2h05m", "3d4h".
pub fn format_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3_600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60)
    } else {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_parses_two_decimals_and_refuses_more() {
        assert_eq!("5".parse::<Percent>().unwrap().hundredths(), 500);
        assert_eq!("0.5".parse::<Percent>().unwrap().hundredths(), 50);
        assert_eq!("99.99%".parse::<Percent>().unwrap().hundredths(), 9_999);
        assert_eq!("0.29".parse::<Percent>().unwrap().hundredths(), 29);
        assert_eq!("100".parse::<Percent>().unwrap(), Percent::FULL);
        assert!(matches!(
            "5.123".parse::<Percent>(),
            Err(PercentError::TooPrecise(_))
        ));
        assert!(matches!(
            "101".parse::<Percent>(),
            Err(PercentError::OutOfRange(_))
        ));
        assert!(matches!(
            "-1".parse::<Percent>(),
            Err(PercentError::OutOfRange(_))
        ));
        assert!(matches!(
            "abc".parse::<Percent>(),
            Err(PercentError::NotANumber(_))
        ));
        assert!(matches!(
            "".parse::<Percent>(),
            Err(PercentError::NotANumber(_))
        ));
        assert!(matches!(
            "NaN".parse::<Percent>(),
            Err(PercentError::NotANumber(_))
        ));
    }

    #[test]
    fn percent_round_trips_through_json_and_display() {
        for h in [0u16, 1, 50, 99, 500, 2_500, 9_999, 10_000] {
            let p = Percent::from_hundredths(h).unwrap();
            let back = Percent::from_f64(p.to_json().as_f64().unwrap()).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(Percent::from_hundredths(50).unwrap().to_string(), "0.5%");
        assert_eq!(Percent::from_hundredths(1).unwrap().to_string(), "0.01%");
        assert_eq!(Percent::from_hundredths(2_500).unwrap().to_string(), "25%");
        assert_eq!(
            Percent::from_hundredths(2_500).unwrap().to_json(),
            serde_json::json!(25)
        );
    }

    #[test]
    fn durations_parse_and_format_compactly() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("48h").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(172_800)), "48h");
        assert_eq!(format_duration(Duration::from_secs(90_061)), "25h1m1s");
        assert_eq!(format_duration(Duration::from_secs(604_800)), "1w");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for s in [
            1u64, 59, 61, 3_600, 3_661, 86_400, 90_061, 604_800, 1_209_600,
        ] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format_elapsed(Duration::from_secs(252)), "4m12s");
        assert_eq!(format_rate(0.021), "2.10 %");
    }
}
