//! Health samples, gates and verdicts. Every gate answers Pass, Fail or
//! Inconclusive with the numbers behind it; Inconclusive never counts as healthy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::units::{format_duration, format_rate as pct};

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
    /// How old the source's newest point normally is when it is read (Cloud Monitoring
    /// shows Cloud Run points minutes late). The freshness limit is `max_staleness` plus this.
    #[serde(
        default,
        with = "duration_text",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub ingestion_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
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

impl HealthSample {
    fn side(&self, side: Side) -> Option<&SideStats> {
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
    fn delay_note(&self, cfg: &GateConfig) -> String {
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

    fn missing_text(&self, side: Side) -> String {
        match &self.source_error {
            Some(e) => format!("no {} data: {e}", side.name()),
            None => format!("no {} data", side.name()),
        }
    }

    /// The side's numbers if they can back a verdict, else why not.
    fn usable(
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
}

fn bad_counts(s: &SideStats, side: Side) -> String {
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
fn age(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - t).to_std().unwrap_or(Duration::ZERO)
}

/// How far past `now` a point lies, when that is beyond the allowed clock skew.
fn ahead_of(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (t - now).to_std().ok().filter(|d| *d > MAX_CLOCK_SKEW)
}

fn future_text(side: Side, ahead: Duration) -> String {
    format!(
        "newest {} point is {} in the future: check the clocks",
        side.name(),
        format_duration(ahead)
    )
}

fn ms(v: f64) -> String {
    let s = format!("{v:.1}");
    format!("{} ms", s.strip_suffix(".0").unwrap_or(&s))
}

fn times(r: f64) -> String {
    format!("{r:.2}x")
}

/// Rounded down, so 99.96 % is never shown as a round 100 %.
fn confidence_text(c: f64) -> String {
    let s = format!("{:.1}", (c * 1000.0 + 1e-9).floor() / 10.0);
    format!("{} %", s.strip_suffix(".0").unwrap_or(&s))
}

/// A finite, non-negative latency, or why not.
fn latency(v: Option<f64>, what: &str) -> Result<f64, String> {
    match v {
        None => Err(format!("no {what}")),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Some(v) => Err(format!("{what} {v} is not a valid latency")),
    }
}

impl GateResult {
    fn new(name: &str, verdict: Verdict, detail: String, cfg: &GateConfig) -> GateResult {
        GateResult {
            name: name.into(),
            verdict,
            detail,
            observed: None,
            threshold: None,
            severe: false,
            failing_since: None,
            sustained: false,
            required_for: cfg.breach_for,
        }
    }

    fn inconclusive(name: &str, why: &str, threshold: f64, cfg: &GateConfig) -> GateResult {
        let mut g = GateResult::new(
            name,
            Verdict::Inconclusive,
            format!("inconclusive: {why}"),
            cfg,
        );
        g.threshold = Some(threshold).filter(|t| t.is_finite());
        g
    }

    /// `label observed > limit` style gate; `upper` means observed must stay at or below limit.
    fn limit(
        name: &str,
        label: &str,
        observed: f64,
        limit: f64,
        upper: bool,
        fmt: fn(f64) -> String,
        cfg: &GateConfig,
    ) -> GateResult {
        if !limit.is_finite() {
            return GateResult::inconclusive(
                name,
                &format!("threshold {limit} is not a number"),
                limit,
                cfg,
            );
        }
        if !observed.is_finite() {
            return GateResult::inconclusive(
                name,
                &format!("{label} {observed} is not a number"),
                limit,
                cfg,
            );
        }
        let ok = if upper {
            observed <= limit
        } else {
            observed >= limit
        };
        let op = match (upper, ok) {
            (true, true) => "<=",
            (true, false) => ">",
            (false, true) => ">=",
            (false, false) => "<",
        };
        let verdict = if ok { Verdict::Pass } else { Verdict::Fail };
        let mut g = GateResult::new(
            name,
            verdict,
            format!("{label} {} {op} {}", fmt(observed), fmt(limit)),
            cfg,
        );
        g.observed = Some(observed);
        g.threshold = Some(limit);
        g
    }

    fn mark_severe(mut self, severe: bool, note: String, cfg: &GateConfig) -> GateResult {
        if severe && self.verdict == Verdict::Fail {
            self.severe = true;
            self.required_for = cfg.severe_for;
            self.detail = format!("{}, severe ({note})", self.detail);
        }
        self
    }

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

/// Runs every configured gate against one sample. Pure: `now` is only used for staleness.
pub fn evaluate(sample: &HealthSample, cfg: &GateConfig, now: DateTime<Utc>) -> GateReport {
    let mut gates = vec![
        freshness_gate(sample, cfg, now),
        min_requests_gate(sample, cfg),
    ];
    let canary = sample.usable(Side::Canary, cfg, now);
    let stable = sample.usable(Side::Stable, cfg, now);

    if let Some(max) = cfg.max_error_rate {
        let name = "error-rate";
        gates.push(match &canary {
            Err(why) => GateResult::inconclusive(name, why, max, cfg),
            Ok(c) => {
                let rate = c.error_rate().unwrap_or(f64::NAN);
                let severe = cfg.severe_error_rate.filter(|s| rate >= *s);
                GateResult::limit(name, "canary error rate", rate, max, true, pct, cfg).mark_severe(
                    severe.is_some(),
                    format!(">= {}", pct(severe.unwrap_or(0.0))),
                    cfg,
                )
            }
        });
    }
    if let Some(min) = cfg.min_success_rate {
        let name = "success-rate";
        gates.push(match &canary {
            Err(why) => GateResult::inconclusive(name, why, min, cfg),
            Ok(c) => {
                let rate = c.success_rate().unwrap_or(f64::NAN);
                // Success and error rates are two views of one number: same severity line.
                let severe = cfg.severe_error_rate.filter(|s| 1.0 - rate >= *s);
                GateResult::limit(name, "canary success rate", rate, min, false, pct, cfg)
                    .mark_severe(
                        severe.is_some(),
                        format!("<= {}", pct(1.0 - severe.unwrap_or(0.0))),
                        cfg,
                    )
            }
        });
    }
    if let Some(max) = cfg.max_p99_ms {
        let name = "p99";
        let p99 = canary.clone().and_then(|c| latency(c.p99_ms, "canary p99"));
        gates.push(match p99 {
            Err(why) => GateResult::inconclusive(name, &why, max, cfg),
            Ok(v) => GateResult::limit(name, "canary p99", v, max, true, ms, cfg),
        });
    }
    if let Some(k) = cfg.max_p99_ratio {
        let name = "p99-vs-stable";
        let pair = canary.clone().and_then(|c| {
            let s = stable.clone()?;
            let cp = latency(c.p99_ms, "canary p99")?;
            let sp = latency(s.p99_ms, "stable p99")?;
            if sp == 0.0 {
                return Err("stable p99 is 0 ms, so no ratio".into());
            }
            Ok((cp, sp))
        });
        gates.push(match pair {
            Err(why) => GateResult::inconclusive(name, &why, k, cfg),
            Ok((cp, sp)) => {
                let ratio = cp / sp;
                let label = format!("canary p99 {} vs stable {}:", ms(cp), ms(sp));
                let severe = cfg.severe_p99_ratio.filter(|s| ratio >= *s);
                GateResult::limit(name, &label, ratio, k, true, times, cfg).mark_severe(
                    severe.is_some(),
                    format!(">= {}", times(severe.unwrap_or(0.0))),
                    cfg,
                )
            }
        });
    }
    if let Some(needed) = cfg.error_rate_confidence {
        gates.push(relative_error_gate(&canary, &stable, needed, cfg));
    }

    let verdict = if gates.iter().any(|g| g.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if gates.iter().any(|g| g.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    GateReport {
        evaluated_at: now,
        sample_taken_at: sample.taken_at,
        gates,
        verdict,
    }
}

fn freshness_gate(sample: &HealthSample, cfg: &GateConfig, now: DateTime<Utc>) -> GateResult {
    let limit = sample.staleness_limit(cfg);
    let note = sample.delay_note(cfg);
    let mut problems = Vec::new();
    let mut ages = Vec::new();
    for side in [Side::Canary, Side::Stable] {
        let name = side.name();
        match sample.side(side).map(|s| s.newest_point_at) {
            None => problems.push(sample.missing_text(side)),
            Some(None) => problems.push(format!("no time for the newest {name} point")),
            Some(Some(t)) => match (ahead_of(t, now), age(t, now)) {
                (Some(ahead), _) => problems.push(future_text(side, ahead)),
                (None, old) if old > limit => problems.push(format!(
                    "stale: newest {name} point {} old > {} limit{note}",
                    format_duration(old),
                    format_duration(limit)
                )),
                (None, old) => ages.push((name, format_duration(old))),
            },
        }
    }
    let mut g = if problems.is_empty() {
        // One age when both sides agree (a source aligned to the minute): it fits a line.
        let ages = match ages.as_slice() {
            [(_, c), (_, s)] if c == s => format!("{c} old"),
            _ => ages
                .iter()
                .map(|(name, age)| format!("{name} {age} old"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let detail = format!(
            "newest points {ages} (limit {}{note})",
            format_duration(limit)
        );
        GateResult::new("freshness", Verdict::Pass, detail, cfg)
    } else {
        GateResult::new("freshness", Verdict::Inconclusive, problems.join("; "), cfg)
    };
    g.observed = sample.data_age(now).map(|d| d.as_secs_f64());
    g.threshold = Some(limit.as_secs_f64());
    g
}

fn min_requests_gate(sample: &HealthSample, cfg: &GateConfig) -> GateResult {
    let name = "min-requests";
    let min = cfg.min_requests as f64;
    let Some(c) = sample.canary.as_ref() else {
        return GateResult::inconclusive(name, &sample.missing_text(Side::Canary), min, cfg);
    };
    if c.errors > c.requests {
        return GateResult::inconclusive(name, &bad_counts(c, Side::Canary), min, cfg);
    }
    let mut g = if c.requests < cfg.min_requests {
        GateResult::inconclusive(
            name,
            &format!("{} requests < {} minimum", c.requests, cfg.min_requests),
            min,
            cfg,
        )
    } else {
        let detail = format!(
            "{} canary requests >= {} minimum",
            c.requests, cfg.min_requests
        );
        GateResult::new(name, Verdict::Pass, detail, cfg)
    };
    g.observed = Some(c.requests as f64);
    g.threshold = Some(min);
    g
}

fn relative_error_gate(
    canary: &Result<&SideStats, String>,
    stable: &Result<&SideStats, String>,
    needed: f64,
    cfg: &GateConfig,
) -> GateResult {
    let name = "error-rate-vs-stable";
    let (c, s) = match (canary, stable) {
        (Err(why), _) | (_, Err(why)) => return GateResult::inconclusive(name, why, needed, cfg),
        (Ok(c), Ok(s)) => (*c, *s),
    };
    if !(0.0..=1.0).contains(&needed) {
        return GateResult::inconclusive(
            name,
            &format!("confidence {needed} is outside 0..1"),
            needed,
            cfg,
        );
    }
    let (Some(rc), Some(rs), Some(p)) = (
        c.error_rate(),
        s.error_rate(),
        error_rate_worse_p_value(c, s),
    ) else {
        return GateResult::inconclusive(name, "no usable error counts", needed, cfg);
    };
    let confidence = 1.0 - p;
    let rates = format!("canary {} vs stable {}", pct(rc), pct(rs));
    let needs = confidence_text(needed);
    // The rate check keeps a canary that is doing better from failing under a low configured confidence.
    let (verdict, detail) = if c.errors == 0 && s.errors == 0 {
        (Verdict::Pass, "no errors on either side".to_string())
    } else if rc <= rs {
        (Verdict::Pass, format!("{rates}: not worse"))
    } else if confidence >= needed {
        let detail = format!(
            "{rates}: worse with {} confidence (needs {needs})",
            confidence_text(confidence)
        );
        (Verdict::Fail, detail)
    } else {
        let detail = format!(
            "{rates}: worse with only {} confidence (needs {needs})",
            confidence_text(confidence)
        );
        (Verdict::Pass, detail)
    };
    let mut g = GateResult::new(name, verdict, detail, cfg);
    g.observed = Some(confidence);
    g.threshold = Some(needed);
    g
}

/// One-sided p-value of "canary's error rate is no worse than stable's": the exact conditional
/// test for two Poisson rates. Given E = e_c + e_s errors, under H0 e_c ~ Binomial(E, n_c/(n_c+n_s));
/// the p-value is P(X >= e_c). None when a side has no requests or more errors than requests.
pub fn error_rate_worse_p_value(canary: &SideStats, stable: &SideStats) -> Option<f64> {
    canary.error_rate()?;
    stable.error_rate()?;
    let (nc, ns) = (canary.requests as f64, stable.requests as f64);
    let n = canary.errors as f64 + stable.errors as f64;
    Some(binomial_upper_tail(
        canary.errors as f64,
        n,
        nc / (nc + ns),
        ns / (nc + ns),
    ))
}

/// Beyond this variance (sd 10^4, ~10^5 summed terms) the normal approximation takes over.
/// The exact sum is used well past the counts seen in practice because switching methods
/// makes the p-value jump, which would break monotonicity in the error count.
const EXACT_VARIANCE_LIMIT: f64 = 1e8;

/// P(X >= k) for X ~ Binomial(n, p) with q = 1 - p passed separately for precision.
fn binomial_upper_tail(k: f64, n: f64, p: f64, q: f64) -> f64 {
    if k <= 0.0 || q <= 0.0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    // Counts past 2^53 lose integer precision in f64, so only the approximation is meaningful there.
    if n * p * q > EXACT_VARIANCE_LIMIT || n > 1e15 {
        let z = (k - 0.5 - n * p) / (n * p * q).sqrt();
        return (0.5 * erfc(z / std::f64::consts::SQRT_2)).clamp(0.0, 1.0);
    }
    // Sum whichever tail lies beyond the mode: its terms only shrink, so the sum can stop early.
    if k > ((n + 1.0) * p).floor() {
        tail_sum(k, n, p, q, true)
    } else {
        1.0 - tail_sum(k - 1.0, n, p, q, false)
    }
}

/// Sum of Binomial(n, p) probabilities from `start` outward (up or down) until the terms vanish.
fn tail_sum(start: f64, n: f64, p: f64, q: f64, up: bool) -> f64 {
    let (mut term, mut sum, mut j) = (1.0, 1.0, start);
    for _ in 0..10_000_000 {
        if up {
            if j >= n {
                break;
            }
            term *= (n - j) / (j + 1.0) * (p / q);
            j += 1.0;
        } else {
            if j <= 0.0 {
                break;
            }
            term *= j / (n - j + 1.0) * (q / p);
            j -= 1.0;
        }
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    (ln_binomial_pmf(start, n, p, q) + sum.ln())
        .exp()
        .clamp(0.0, 1.0)
}

/// ln P(X = x) for X ~ Binomial(n, p), by Loader's saddle-point form (as in R's dbinom),
/// which stays accurate to ~1e-15 relative even for huge n where ln-gamma differences cancel.
fn ln_binomial_pmf(x: f64, n: f64, p: f64, q: f64) -> f64 {
    if x == 0.0 {
        return if p < 0.1 {
            -bd0(n, n * q) - n * p
        } else {
            n * q.ln()
        };
    }
    if x == n {
        return if q < 0.1 {
            -bd0(n, n * p) - n * q
        } else {
            n * p.ln()
        };
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    let lf = (2.0 * std::f64::consts::PI).ln() + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// ln(n!) - ((n + 1/2) ln n - n + ln sqrt(2 pi)) for integer n >= 1.
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        let ln_fact: f64 = (2..=n as u32).map(|i| f64::from(i).ln()).sum();
        return ln_fact - (n + 0.5) * n.ln() + n - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// x ln(x/m) + m - x, summed as a series when x is near m to avoid cancellation.
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        return s;
    }
    x * (x / m).ln() + m - x
}

/// Complementary error function (Numerical Recipes erfcc, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
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
    tracker.observe(&mut report, gates);
    report
}

impl BreachTracker {
    /// Fills `failing_since` and `sustained`. A Pass ends a breach; an Inconclusive sample
    /// neither confirms nor ends it, so the start is kept but nothing is sustained on it.
    pub fn observe(&mut self, report: &mut GateReport, cfg: &GateConfig) {
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
                    g.required_for = if g.severe {
                        cfg.severe_for
                    } else {
                        cfg.breach_for
                    };
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

    /// P(X >= k) by summing every term directly, for small n.
    fn brute_upper(k: u32, n: u32, p: f64) -> f64 {
        let choose =
            |n: u32, k: u32| (1..=k).fold(1.0, |c, i| c * f64::from(n - k + i) / f64::from(i));
        (k..=n)
            .map(|j| choose(n, j) * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32))
            .sum()
    }

    #[test]
    fn exact_tail_matches_direct_sum() {
        for n in [1u32, 2, 5, 22, 60, 150] {
            for p in [0.01, 0.2, 0.5, 0.77, 0.99] {
                for k in 0..=n {
                    let got = binomial_upper_tail(f64::from(k), f64::from(n), p, 1.0 - p);
                    let want = brute_upper(k, n, p);
                    assert!(
                        (got - want).abs() <= 1e-12 + 1e-9 * want,
                        "n={n} p={p} k={k}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn stirlerr_is_continuous_across_its_series_cutoffs() {
        // ln(n!) by direct sum against the series just above each cut-off.
        for n in [16u32, 36, 81, 501] {
            let ln_fact: f64 = (2..=n).map(|i| f64::from(i).ln()).sum();
            let nf = f64::from(n);
            let direct =
                ln_fact - (nf + 0.5) * nf.ln() + nf - 0.5 * (2.0 * std::f64::consts::PI).ln();
            assert!((stirlerr(nf) - direct).abs() < 1e-11, "n={n}");
        }
        assert!((stirlerr(1.0) - 0.081_061_466_795_327_26).abs() < 1e-15);
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(
                (erfc(x) - want).abs() <= 1.2e-7 * want.max(1e-300),
                "erfc({x})"
            );
        }
    }

    #[test]
    fn normal_approximation_agrees_with_exact_sum_at_the_switch() {
        // Just below the variance limit the exact sum runs; the approximation there must agree.
        let n = 4.0e8_f64;
        let (p, q) = (0.5, 0.5);
        for dz in [-2.0, 0.0, 1.0, 2.5] {
            let k = (n * p + dz * (n * p * q).sqrt()).round();
            let exact = binomial_upper_tail(k, n, p, q);
            let z = (k - 0.5 - n * p) / (n * p * q).sqrt();
            let approx = 0.5 * erfc(z / std::f64::consts::SQRT_2);
            assert!(
                (exact - approx).abs() < 1e-4,
                "dz={dz}: {exact} vs {approx}"
            );
        }
    }

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

    fn timed_sample(newest: DateTime<Utc>, delay: Duration) -> HealthSample {
        let side = SideStats {
            requests: 5_000,
            errors: 5,
            p99_ms: Some(100.0),
            newest_point_at: Some(newest),
            ..SideStats::default()
        };
        HealthSample {
            taken_at: newest,
            window: Duration::from_secs(300),
            stable: Some(side.clone()),
            canary: Some(side),
            source_error: None,
            ingestion_delay: delay,
        }
    }

    #[test]
    fn points_from_the_future_beyond_the_skew_are_inconclusive() {
        let now = DateTime::from_timestamp(1_772_366_400, 0).unwrap();
        let cfg = GateConfig::default();
        let ahead = |secs: i64| now + chrono::Duration::seconds(secs);
        let r = evaluate(&timed_sample(ahead(420), Duration::ZERO), &cfg, now);
        let fresh = r.gate("freshness").unwrap();
        assert_eq!(fresh.verdict, Verdict::Inconclusive);
        assert_eq!(
            fresh.detail,
            "newest canary point is 7m in the future: check the clocks; \
             newest stable point is 7m in the future: check the clocks"
        );
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert!(
            r.gates
                .iter()
                .all(|g| g.verdict == Verdict::Inconclusive || g.name == "min-requests"),
            "{r:#?}"
        );
        // Up to the skew allowed it is fresh; just past it, not.
        let at_skew = ahead(MAX_CLOCK_SKEW.as_secs() as i64);
        assert_eq!(
            evaluate(&timed_sample(at_skew, Duration::ZERO), &cfg, now).verdict,
            Verdict::Pass
        );
        let past_skew = at_skew + chrono::Duration::seconds(1);
        assert_eq!(
            evaluate(&timed_sample(past_skew, Duration::ZERO), &cfg, now).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn the_freshness_limit_allows_for_the_sources_delay() {
        let now = DateTime::from_timestamp(1_772_366_400, 0).unwrap();
        let cfg = GateConfig::default();
        let old = |secs: i64| now - chrono::Duration::seconds(secs);
        let four = Duration::from_secs(240);
        let r = evaluate(&timed_sample(old(240), four), &cfg, now);
        let fresh = r.gate("freshness").unwrap();
        assert_eq!(fresh.verdict, Verdict::Pass, "{}", fresh.detail);
        assert_eq!(fresh.threshold, Some(420.0));
        assert!(
            fresh.detail == "newest points 4m old (limit 7m = 3m + 4m source delay)",
            "{}",
            fresh.detail
        );
        // The same data from a source with no delay is stale.
        let r = evaluate(&timed_sample(old(240), Duration::ZERO), &cfg, now);
        assert_eq!(r.gate("freshness").unwrap().verdict, Verdict::Inconclusive);
        // Past the widened limit it is stale too, and the gates that need the numbers say so.
        let r = evaluate(&timed_sample(old(421), four), &cfg, now);
        let rate = r.gate("error-rate").unwrap();
        assert_eq!(rate.verdict, Verdict::Inconclusive);
        assert!(
            rate.detail.contains(
                "canary data stale (newest point 7m1s old > 7m limit = 3m + 4m source delay)"
            ),
            "{}",
            rate.detail
        );
        assert_eq!(
            timed_sample(old(90), four).data_age(now),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn text_helpers() {
        assert_eq!(pct(0.021), "2.10 %");
        assert_eq!(ms(812.0), "812 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(confidence_text(0.95), "95 %");
        assert_eq!(confidence_text(0.999_96), "99.9 %");
    }
}
