//! Health samples, gates and verdicts. Every gate answers Pass, Fail or
//! Inconclusive with the numbers behind it; Inconclusive never counts as healthy.
//!
//! This module holds the types and the breach tracking that turns one report after
//! another into sustained breaches; `sample` reads what a sample can back, `evaluate`
//! runs the gates, `stats` is the binomial test behind the relative error gate.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::units::format_duration;

mod evaluate;
mod sample;
pub mod sequential;
mod stats;

pub use evaluate::{LEANING_RATIO, evaluate};
pub use sample::MAX_CLOCK_SKEW;
pub use stats::{error_rate_worse_p_value, normal_upper_tail};

use sample::age;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Stable,
    Canary,
}

/// One side's numbers over a window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SideStats {
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p75_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub newest_point_at: Option<DateTime<Utc>>,
}

/// Requests and errors of one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

impl Counts {
    /// Some requests, and no more errors than requests.
    pub fn valid(&self) -> bool {
        self.requests > 0 && self.errors <= self.requests
    }

    pub fn error_rate(&self) -> Option<f64> {
        self.valid()
            .then(|| self.errors as f64 / self.requests as f64)
    }
}

/// Each side's requests and errors since the rollout's current stage began: the evidence a
/// stage accumulates (`judgment = "stage"` judges on it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageTotals {
    /// When the counting began: the stage's start (or where the source's data begins).
    pub since: DateTime<Utc>,
    pub stable: Counts,
    pub canary: Counts,
    /// Each side's requests slower than a latency threshold this stage, where the source
    /// counts them: what the sequential latency test weighs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowTotals>,
}

/// Requests slower than `threshold_ms` this stage, per side. The threshold is the source's
/// and fixed for the stage (the simulator and simulated traffic use stable's p99), so a
/// canary like stable has the same share of them as of the requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowTotals {
    pub threshold_ms: f64,
    pub stable: u64,
    pub canary: u64,
}

/// What a metrics source answered for one rollout at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthSample {
    pub taken_at: DateTime<Utc>,
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// None when the source could not answer for that side.
    pub stable: Option<SideStats>,
    pub canary: Option<SideStats>,
    /// Why a side is missing (source down, query failed, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_error: Option<String>,
    /// How old the source's newest point normally is when it is read (Cloud Monitoring
    /// shows Cloud Run points minutes late). The freshness limit is `max_staleness` plus this.
    #[serde(
        default,
        with = "duration_text",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub ingestion_delay: Duration,
    /// Totals since the current stage began, from sources that can count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<StageTotals>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// What the error gates judge: the recent window alone, or the whole current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Judgment {
    /// Every gate on the last window, with a fixed request minimum.
    Window,
    /// The default: the relative error gate is a sequential test on the stage's totals
    /// (decisive at once, valid across repeated looks), "enough evidence" replaces the request
    /// minimum, and the window gates stay for sudden changes.
    #[default]
    Stage,
}

impl Judgment {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgment::Window => "window",
            Judgment::Stage => "stage",
        }
    }
}

/// Gate thresholds: the `[gates]` config table and a rollout document's `gates` field
/// (camelCase there; the config loader maps snake_case). `None` switches a gate off: written
/// "off" (or null in a document); see `domain::gates` for what is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GateConfig {
    /// Canary error rate must be at most this (0.01 = 1 %).
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub max_error_rate: Option<f64>,
    /// Canary success rate must be at least this.
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub min_success_rate: Option<f64>,
    /// Canary p99 latency must be at most this many milliseconds.
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub max_p99_ms: Option<f64>,
    /// Canary p99 must be at most this multiple of stable p99.
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub max_p99_ratio: Option<f64>,
    /// Canary error rate must not be worse than stable's with this confidence (0.95).
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub error_rate_confidence: Option<f64>,
    /// Fewer canary (or, for relative gates, stable) requests in the window is Inconclusive.
    pub min_requests: u64,
    /// A breach must last this long before it counts (Prometheus-style `for`).
    #[serde(with = "duration_text")]
    pub breach_for: Duration,
    /// A canary error rate at or above this is a severe breach (rollback territory).
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub severe_error_rate: Option<f64>,
    /// A canary p99 at or above this multiple of stable p99 is a severe breach.
    #[serde(with = "crate::domain::gates::optional_limit")]
    pub severe_p99_ratio: Option<f64>,
    /// How long a severe breach must last before it counts.
    #[serde(with = "duration_text")]
    pub severe_for: Duration,
    /// Data whose newest point is older than this plus the source's ingestion delay is
    /// Inconclusive.
    #[serde(with = "duration_text")]
    pub max_staleness: Duration,
    /// "stage" (the default) or "window": see `Judgment`.
    pub judgment: Judgment,
}

impl GateConfig {
    /// The gates that apply at a rollout percentage. At 100 % every user is on the canary
    /// and stable serves nobody: there is nothing to compare against, so the relative gates
    /// are off and the absolute ones decide (otherwise a full rollout could never complete).
    pub fn at_percentage(&self, percent: crate::domain::units::Percent) -> GateConfig {
        let mut g = self.clone();
        if percent == crate::domain::units::Percent::FULL {
            g.max_p99_ratio = None;
            g.severe_p99_ratio = None;
            g.error_rate_confidence = None;
        }
        g
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_error_rate: Some(0.01),
            min_success_rate: None,
            max_p99_ms: None,
            max_p99_ratio: Some(1.5),
            error_rate_confidence: Some(0.95),
            min_requests: 200,
            breach_for: Duration::from_secs(5 * 60),
            severe_error_rate: Some(0.05),
            severe_p99_ratio: Some(5.0),
            severe_for: Duration::from_secs(60),
            max_staleness: Duration::from_secs(3 * 60),
            judgment: Judgment::Stage,
        }
    }
}

/// One gate's answer and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateResult {
    /// Stable identifier: min-requests, freshness, error-rate, success-rate, p99,
    /// p99-vs-stable, error-rate-vs-stable.
    pub name: String,
    pub verdict: Verdict,
    /// Human text with the numbers: "canary error rate 2.10 % > 1.00 %".
    pub detail: String,
    pub observed: Option<f64>,
    pub threshold: Option<f64>,
    /// The breach is beyond the severe threshold.
    pub severe: bool,
    /// When the current uninterrupted breach began (set by `BreachTracker`).
    pub failing_since: Option<DateTime<Utc>>,
    /// The breach has lasted at least `required_for` (set by `BreachTracker`).
    pub sustained: bool,
    #[serde(with = "duration_text")]
    pub required_for: Duration,
    /// The evidence so far points toward a breach it does not show yet, in words: the driver
    /// neither widens nor asks to widen on it until the tests decide (or the wait is over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub evaluated_at: DateTime<Utc>,
    pub sample_taken_at: DateTime<Utc>,
    pub gates: Vec<GateResult>,
    /// Fail if any gate fails, else Inconclusive if any is, else Pass.
    pub verdict: Verdict,
}

/// Remembers when each gate's breach began, across samples, so `for` durations work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreachTracker {
    pub(crate) since: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// Durations as "5m"-style text in JSON and TOML.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::domain::units::{format_duration, parse_duration};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => parse_duration(&t).map_err(D::Error::custom),
        }
    }
}

impl SideStats {
    /// Errors per request. None without requests, and None when errors exceed requests:
    /// such counts are broken, and clamping them would invent a number.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0 && self.errors <= self.requests)
            .then(|| self.errors as f64 / self.requests as f64)
    }

    pub fn success_rate(&self) -> Option<f64> {
        self.error_rate().map(|r| 1.0 - r)
    }
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Stable => "stable",
            Side::Canary => "canary",
        }
    }
}

impl GateResult {
    /// "canary error rate 2.10 % > 1.00 % for 3m of 5m" while a breach is not yet sustained.
    pub fn breach_progress(&self, sample_taken_at: DateTime<Utc>) -> Option<String> {
        if self.verdict != Verdict::Fail || self.sustained {
            return None;
        }
        let lasted = age(self.failing_since?, sample_taken_at);
        Some(format!(
            "{} for {} of {}",
            self.detail,
            format_duration(lasted),
            format_duration(self.required_for)
        ))
    }
}

impl GateReport {
    pub fn failing(&self) -> impl Iterator<Item = &GateResult> {
        self.gates.iter().filter(|g| g.verdict == Verdict::Fail)
    }

    pub fn inconclusive(&self) -> impl Iterator<Item = &GateResult> {
        self.gates
            .iter()
            .filter(|g| g.verdict == Verdict::Inconclusive)
    }

    pub fn gate(&self, name: &str) -> Option<&GateResult> {
        self.gates.iter().find(|g| g.name == name)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// One line: the first failure, else the first inconclusive gate, else "all N gates pass".
    pub fn summary(&self) -> String {
        match self.failing().next().or_else(|| self.inconclusive().next()) {
            Some(g) => g.detail.clone(),
            None => format!("all {} gates pass", self.gates.len()),
        }
    }
}

const SEVERE_SUFFIX: &str = "#severe";

fn severe_key(gate: &str) -> String {
    format!("{gate}{SEVERE_SUFFIX}")
}

/// One sample judged the one way every front end judges it: evaluated as of when it was
/// taken (so the screen, the driver and `status` agree on the same sample whenever they
/// look at it), then breaches carried on by `tracker`.
pub fn judge(sample: &HealthSample, gates: &GateConfig, tracker: &mut BreachTracker) -> GateReport {
    let mut report = evaluate(sample, gates, sample.taken_at);
    tracker.observe(&mut report);
    report
}

impl BreachTracker {
    /// Fills `failing_since` and `sustained`. A Pass ends a breach; an Inconclusive sample
    /// neither confirms nor ends it, so the start is kept but nothing is sustained on it.
    pub fn observe(&mut self, report: &mut GateReport) {
        let at = report.sample_taken_at;
        // A gate no longer evaluated (switched off) has no breach to continue.
        self.since.retain(|key, _| {
            let name = key.strip_suffix(SEVERE_SUFFIX).unwrap_or(key);
            report.gates.iter().any(|g| g.name == name)
        });
        for g in &mut report.gates {
            g.failing_since = None;
            g.sustained = false;
            match g.verdict {
                Verdict::Pass => {
                    self.since.remove(&g.name);
                    self.since.remove(&severe_key(&g.name));
                }
                Verdict::Inconclusive => {}
                Verdict::Fail => {
                    let mild_since = *self.since.entry(g.name.clone()).or_insert(at);
                    // Severity has its own clock: a long mild breach that turns severe for
                    // one sample must not count as a sustained severe one (that is a rollback).
                    let since = if g.severe {
                        *self.since.entry(severe_key(&g.name)).or_insert(at)
                    } else {
                        self.since.remove(&severe_key(&g.name));
                        mild_since
                    };
                    // How long the breach must last is the evaluator's: `severe_for` for a
                    // severe one, nothing for a sequential test's (valid across every look
                    // already, a sustain would only add delay), else `breach_for`.
                    g.failing_since = Some(since);
                    g.sustained = at >= since && age(since, at) >= g.required_for;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_refuses_impossible_counts() {
        let s = |requests, errors| SideStats {
            requests,
            errors,
            ..Default::default()
        };
        assert_eq!(s(0, 0).error_rate(), None);
        assert_eq!(s(10, 11).error_rate(), None);
        assert_eq!(s(200, 5).error_rate(), Some(0.025));
        assert_eq!(s(200, 5).success_rate(), Some(0.975));
    }
}
