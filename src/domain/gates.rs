//! Which gate thresholds are valid, how a gate is switched off, and the list of every gate
//! with its setting (for `check-config` and the detail view). The `[gates]` table and a
//! rollout document's `gates` field go through the same rules, each in its own spelling.

use super::health::GateConfig;
use super::units::format_rate as pct;

/// How a gate's key is spelled where it was written: `gates.max_error_rate` in the config
/// file, `gates.maxErrorRate` in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Config,
    Document,
}

impl Spelling {
    fn key(self, snake: &str) -> String {
        match self {
            Spelling::Config => format!("gates.{snake}"),
            Spelling::Document => format!("gates.{}", snake_to_camel(snake)),
        }
    }
}

/// `max_error_rate` -> `maxErrorRate`: the config's spelling of a key to the document's.
pub fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One gate as listed for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSetting {
    /// The config key (snake_case).
    pub key: &'static str,
    /// The gate's name in reports (`error-rate`), for the ones that are gates of their own.
    pub gate: &'static str,
    /// "1.00 %", "1.5x", "off".
    pub value: String,
    pub on: bool,
}

impl GateConfig {
    /// Refuses thresholds that are not numbers, out of range, or that can never fail (a gate
    /// that cannot fail is a gate switched off by accident; switching off is written "off").
    pub fn validate(&self, spelling: Spelling) -> Result<(), String> {
        let key = |k: &str| spelling.key(k);
        let check = |name: &str, v: Option<f64>, ok: fn(f64) -> bool, range: &str| match v {
            Some(x) if !x.is_finite() || !ok(x) => Err(format!(
                "{} = {x} must be {range}, or \"off\" to switch the gate off",
                key(name)
            )),
            _ => Ok(()),
        };
        check(
            "max_error_rate",
            self.max_error_rate,
            |x| (0.0..1.0).contains(&x),
            "at least 0 and below 1 (0.01 = 1 %; 1 would never fail)",
        )?;
        check(
            "min_success_rate",
            self.min_success_rate,
            |x| x > 0.0 && x <= 1.0,
            "above 0 and at most 1 (0.99 = 99 %; 0 would never fail)",
        )?;
        check(
            "severe_error_rate",
            self.severe_error_rate,
            |x| x > 0.0 && x <= 1.0,
            "above 0 and at most 1 (0.05 = 5 %)",
        )?;
        check(
            "error_rate_confidence",
            self.error_rate_confidence,
            |x| (0.5..1.0).contains(&x),
            "at least 0.5 and below 1 (0.95 = 95 %)",
        )?;
        check(
            "max_p99_ms",
            self.max_p99_ms,
            |x| x > 0.0,
            "a positive number of milliseconds",
        )?;
        check(
            "max_p99_ratio",
            self.max_p99_ratio,
            |x| x >= 1.0,
            "at least 1 (1.5 = canary p99 up to 1.5 times stable's)",
        )?;
        check(
            "severe_p99_ratio",
            self.severe_p99_ratio,
            |x| x >= 1.0,
            "at least 1",
        )?;
        if let (Some(max), Some(severe)) = (self.max_error_rate, self.severe_error_rate)
            && severe < max
        {
            return Err(format!(
                "{} = {severe} is below {} = {max}",
                key("severe_error_rate"),
                key("max_error_rate")
            ));
        }
        if let (Some(max), Some(severe)) = (self.max_p99_ratio, self.severe_p99_ratio)
            && severe < max
        {
            return Err(format!(
                "{} = {severe} is below {} = {max}",
                key("severe_p99_ratio"),
                key("max_p99_ratio")
            ));
        }
        if self.max_staleness.is_zero() {
            return Err(format!("{} must be longer than 0s", key("max_staleness")));
        }
        Ok(())
    }

    /// Every switchable gate and its setting, in a fixed order.
    pub fn settings(&self) -> Vec<GateSetting> {
        fn times(v: f64) -> String {
            format!("{v}x")
        }
        fn ms(v: f64) -> String {
            format!("{v} ms")
        }
        fn conf(v: f64) -> String {
            format!("{} %", v * 100.0)
        }
        type Row = (&'static str, &'static str, Option<f64>, fn(f64) -> String);
        let rows: [Row; 7] = [
            ("max_error_rate", "error-rate", self.max_error_rate, pct),
            (
                "min_success_rate",
                "success-rate",
                self.min_success_rate,
                pct,
            ),
            ("max_p99_ms", "p99", self.max_p99_ms, ms),
            ("max_p99_ratio", "p99-vs-stable", self.max_p99_ratio, times),
            (
                "error_rate_confidence",
                "error-rate-vs-stable",
                self.error_rate_confidence,
                conf,
            ),
            (
                "severe_error_rate",
                "severe error rate",
                self.severe_error_rate,
                pct,
            ),
            (
                "severe_p99_ratio",
                "severe p99 ratio",
                self.severe_p99_ratio,
                times,
            ),
        ];
        rows.into_iter()
            .map(|(key, gate, v, show)| GateSetting {
                key,
                gate,
                value: v.map_or_else(|| "off".to_string(), show),
                on: v.is_some(),
            })
            .collect()
    }

    /// The names (as in reports) of the gates that are off, for a one-line reminder.
    pub fn off_gates(&self) -> Vec<&'static str> {
        self.settings()
            .into_iter()
            .filter(|s| !s.on)
            .map(|s| s.gate)
            .collect()
    }
}

/// Serde for an optional threshold: a number, or `"off"` (a document may also write null).
/// TOML has no null, so without "off" a gate that is on by default could not be switched off.
pub mod optional_limit {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub const OFF: &str = "off";

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_f64(*x),
            None => s.serialize_str(OFF),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
            Null(()),
        }
        match Raw::deserialize(d)? {
            Raw::Number(x) => Ok(Some(x)),
            Raw::Text(t) if t.trim().eq_ignore_ascii_case(OFF) => Ok(None),
            Raw::Text(t) => Err(D::Error::custom(format!(
                "'{t}' is not a threshold: give a number, or \"off\" to switch the gate off"
            ))),
            Raw::Null(()) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_list_every_gate() {
        let g = GateConfig::default();
        assert_eq!(g.validate(Spelling::Config), Ok(()));
        let s = g.settings();
        assert_eq!(s.len(), 7);
        assert_eq!(g.off_gates(), ["success-rate", "p99"]);
        assert_eq!(s[0].value, "1.00 %");
    }

    #[test]
    fn gates_that_could_never_fail_are_refused_in_either_spelling() {
        let g = GateConfig {
            max_error_rate: Some(5.0),
            ..GateConfig::default()
        };
        let e = g.validate(Spelling::Document).unwrap_err();
        assert!(e.starts_with("gates.maxErrorRate = 5 must be"), "{e}");
        let e = g.validate(Spelling::Config).unwrap_err();
        assert!(e.starts_with("gates.max_error_rate = 5 must be"), "{e}");
        for bad in [
            GateConfig {
                max_error_rate: Some(f64::NAN),
                ..GateConfig::default()
            },
            GateConfig {
                max_p99_ratio: Some(f64::INFINITY),
                ..GateConfig::default()
            },
            GateConfig {
                min_success_rate: Some(0.0),
                ..GateConfig::default()
            },
            GateConfig {
                max_p99_ms: Some(-1.0),
                ..GateConfig::default()
            },
        ] {
            assert!(bad.validate(Spelling::Config).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn off_is_explicit() {
        let g: GateConfig =
            serde_json::from_str(r#"{"maxErrorRate": "off", "maxP99Ratio": null}"#).unwrap();
        assert_eq!((g.max_error_rate, g.max_p99_ratio), (None, None));
        let e = serde_json::from_str::<GateConfig>(r#"{"maxErrorRate": "of"}"#).unwrap_err();
        assert!(
            e.to_string().contains("\"off\" to switch the gate off"),
            "{e}"
        );
        let text = serde_json::to_string(&g).unwrap();
        assert!(text.contains(r#""maxErrorRate":"off""#), "{text}");
    }
}
