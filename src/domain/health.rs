//! Health samples, gates and verdicts. Every gate answers Pass, Fail or
//! Inconclusive with the numbers behind it; Inconclusive never counts as healthy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// Gate thresholds: the `[gates]` config table and a rollout document's `gates` field
/// (camelCase there; the config loader maps snake_case). `None` switches a gate off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct GateConfig {
    /// Canary error rate must be at most this (0.01 = 1 %).
    pub max_error_rate: Option<f64>,
    /// Canary success rate must be at least this.
    pub min_success_rate: Option<f64>,
    /// Canary p99 latency must be at most this many milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Canary p99 must be at most this multiple of stable p99.
    pub max_p99_ratio: Option<f64>,
    /// Canary error rate must not be worse than stable's with this confidence (0.95).
    pub error_rate_confidence: Option<f64>,
    /// Fewer canary (or, for relative gates, stable) requests in the window is Inconclusive.
    pub min_requests: u64,
    /// A breach must last this long before it counts (Prometheus-style `for`).
    #[serde(with = "duration_text")]
    pub breach_for: Duration,
    /// A canary error rate at or above this is a severe breach (rollback territory).
    pub severe_error_rate: Option<f64>,
    /// A canary p99 at or above this multiple of stable p99 is a severe breach.
    pub severe_p99_ratio: Option<f64>,
    /// How long a severe breach must last before it counts.
    #[serde(with = "duration_text")]
    pub severe_for: Duration,
    /// Data whose newest point is older than this is Inconclusive.
    #[serde(with = "duration_text")]
    pub max_staleness: Duration,
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
