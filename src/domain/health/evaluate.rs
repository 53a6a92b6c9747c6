//! `evaluate`: every configured gate run against one sample, each with the numbers
//! behind its verdict.

use chrono::{DateTime, Utc};

use super::sample::{age, ahead_of, bad_counts, future_text};
use super::sequential::{
    WorseTest, canary_above, canary_worse, more_requests_needed, shown_at_most,
};
use super::stats::error_rate_worse_p_value;
use super::{
    Counts, GateConfig, GateReport, GateResult, HealthSample, Judgment, Side, SideStats,
    SlowTotals, Verdict,
};
use crate::domain::units::{format_duration, format_rate as pct};

/// The relative error gate's name in reports.
pub(super) const RELATIVE_ERROR_GATE: &str = "error-rate-vs-stable";

/// "Enough evidence to pass" (`judgment = "stage"`): the canary's stage error rate shown at
/// or below the tolerated rate with this confidence, across every look. Lower than the halt
/// test's: its error is advancing a canary a little worse than tolerated, which the halt test
/// goes on watching in the next stage, while its price is time at low traffic.
pub const EVIDENCE_CONFIDENCE: f64 = 0.8;

/// The tolerated canary error rate is stable's plus this many points, or twice stable's
/// (whichever is higher). One point, not half: at 10 req/s the first stage must gather its
/// evidence within the plan's time, and catching smaller increases is the halt test's job.
pub const TOLERATED_EXTRA_POINTS: f64 = 0.01;

/// Under `judgment = "stage"` the sequential tests run at `alpha = (1 - error_rate_confidence)
/// / SEQUENTIAL_SPLIT` in each stage. The configured confidence is per look in window
/// judgment, where the sustain does the rest; a sequential test needs no sustain, but every
/// stage of a rollout makes one, and Ville's bound is close to tight here (measured with
/// `simulate`, canary plan: 0.95 per stage halts 4-8 % of healthy rollouts). Split 25 ways,
/// 0.95 keeps a rollout of up to five stages at or below 1 %.
pub const SEQUENTIAL_SPLIT: f64 = 25.0;

/// Under `judgment = "stage"`, a worse-test likelihood ratio at or above this (short of
/// decisive) leans toward worse: the driver holds the stage rather than widening on it. A
/// canary like stable reaches it in a stage at most half the time (Ville), and then drifts
/// back under it: it costs such a canary only minutes (measured with `simulate`: healthy
/// canaries still reach 100 % within twice the plan's time from 10 req/s). A canary 1.5x
/// stable at 100 req/s (1 % base) reaches it well before the test decides: held at 5 %
/// rather than widened to 25 %, it is caught there in 74.5 % of runs instead of 43 %.
pub const LEANING_RATIO: f64 = 2.0;

/// Under `judgment = "stage"`, the canary requests a window needs for its p99 to be judged
/// (and at most `min_requests`). A p99 of 100 requests is about their second largest; with
/// the 5-minute sustain that is noise rarely enough (measured with `simulate`), and at
/// 10 req/s the canary plan's 5 % stage has about 180 a window, so doubled latency is caught
/// there, before 25 %.
pub const P99_MIN_REQUESTS: u64 = 100;

/// The halt tests' alpha per stage under `judgment = "stage"`.
fn sequential_alpha(cfg: &GateConfig) -> f64 {
    (1.0 - cfg.error_rate_confidence.unwrap_or(0.95)) / SEQUENTIAL_SPLIT
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
            leaning: None,
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

    fn noted(mut self, note: Option<String>) -> GateResult {
        if let Some(note) = note {
            self.detail.push_str(&note);
        }
        self
    }

    fn mark_severe(mut self, severe: bool, note: String, cfg: &GateConfig) -> GateResult {
        if severe && self.verdict == Verdict::Fail {
            self.severe = true;
            self.required_for = cfg.severe_for;
            self.detail = format!("{}, severe ({note})", self.detail);
        }
        self
    }
}

/// Runs every configured gate against one sample. Pure: `now` is only used for staleness.
pub fn evaluate(sample: &HealthSample, cfg: &GateConfig, now: DateTime<Utc>) -> GateReport {
    let staged = cfg.judgment == Judgment::Stage;
    let stage = staged.then(|| StageView::of(sample, cfg, now));
    let mut gates = vec![
        freshness_gate(sample, cfg, now),
        match &stage {
            Some(view) => evidence_gate(view, cfg),
            None => min_requests_gate(sample, cfg),
        },
    ];
    let canary = sample.usable(Side::Canary, cfg, now);
    let stable = sample.usable(Side::Stable, cfg, now);
    // The absolute error limits follow stable's own rate, so a canary exactly as healthy as
    // a stable side that errs often does not breach them.
    let base = match (BaseRate::of(&stable), &stage) {
        // A quiet stable side's window is short of the minimum; its stage is not.
        (BaseRate(None), Some(view)) => BaseRate::of_counts(&view.counts),
        (base, _) => base,
    };
    let severe_limit = cfg.severe_error_rate.map(|s| base.scale(s));
    let max_limit = cfg.max_error_rate.map(|m| base.scale(m));
    // Under "stage" judgment the absolute error gates read the stage when the window is short.
    let canary_rate = match &stage {
        Some(view) => view.error_basis(&canary, max_limit, severe_limit, cfg),
        None => canary
            .as_ref()
            .map(|c| Basis {
                rate: c.error_rate().unwrap_or(f64::NAN),
                label: "canary error rate",
                decisive: false,
                unproven: false,
            })
            .map_err(Clone::clone),
    };

    if let Some(max) = cfg.max_error_rate {
        let name = "error-rate";
        gates.push(match &canary_rate {
            Err(why) => GateResult::inconclusive(name, why, max, cfg),
            Ok(b) => {
                let rate = b.rate;
                let severe = severe_limit.filter(|s| rate >= *s);
                let limit = base.scale(max);
                b.judge(
                    GateResult::limit(name, b.label, rate, limit, true, pct, cfg)
                        .noted(base.note(max))
                        .mark_severe(
                            severe.is_some(),
                            b.severe_note(severe.unwrap_or(0.0), ">="),
                            cfg,
                        ),
                )
            }
        });
    }
    if let Some(min) = cfg.min_success_rate {
        let name = "success-rate";
        gates.push(match &canary_rate {
            Err(why) => GateResult::inconclusive(name, why, min, cfg),
            Ok(b) => {
                let rate = 1.0 - b.rate;
                // Success and error rates are two views of one number: same severity line.
                let severe = severe_limit.filter(|s| 1.0 - rate >= *s);
                let limit = 1.0 - base.scale(1.0 - min);
                let label = b.label.replace("error rate", "success rate");
                b.judge(
                    GateResult::limit(name, &label, rate, limit, false, pct, cfg)
                        .noted(base.note(1.0 - min))
                        .mark_severe(
                            severe.is_some(),
                            b.severe_note(1.0 - severe.unwrap_or(0.0), "<="),
                            cfg,
                        ),
                )
            }
        });
    }
    // A p99 of a few requests is their maximum: under "stage" judgment the latency gates
    // need `P99_MIN_REQUESTS` canary requests in the window (at most `min_requests`), and a
    // window short of them leaves the latency gates unjudged (said so) rather than holding
    // the stage; the error gates judge its requests meanwhile.
    let p99_min = if staged {
        P99_MIN_REQUESTS.min(cfg.min_requests)
    } else {
        cfg.min_requests
    };
    let p99_sides = |side: Side| -> Result<&SideStats, String> {
        if !staged {
            return sample.usable(side, cfg, now);
        }
        let s = sample.checked(side, cfg, now)?;
        if s.requests < p99_min {
            return Err(format!(
                "{} {} requests < {p99_min} minimum",
                s.requests,
                side.name()
            ));
        }
        Ok(s)
    };
    let (p99_canary, p99_stable) = (p99_sides(Side::Canary), p99_sides(Side::Stable));
    let p99_unjudged = staged
        .then(|| sample.checked(Side::Canary, cfg, now).ok())
        .flatten()
        .filter(|c| c.requests < p99_min)
        .map(|c| {
            format!(
                "not judged yet: {} canary requests in the window < {p99_min} a p99 needs",
                c.requests
            )
        });
    if let Some(max) = cfg.max_p99_ms {
        let name = "p99";
        let p99 = p99_canary
            .clone()
            .and_then(|c| latency(c.p99_ms, "canary p99"));
        gates.push(match (p99, &p99_unjudged) {
            (Err(_), Some(why)) => GateResult::new(name, Verdict::Pass, why.clone(), cfg),
            (Err(why), None) => GateResult::inconclusive(name, &why, max, cfg),
            (Ok(v), _) => GateResult::limit(name, "canary p99", v, max, true, ms, cfg),
        });
    }
    if let Some(k) = cfg.max_p99_ratio {
        let name = "p99-vs-stable";
        let pair = p99_canary.clone().and_then(|c| {
            let s = p99_stable.clone()?;
            let cp = latency(c.p99_ms, "canary p99")?;
            let sp = latency(s.p99_ms, "stable p99")?;
            if sp == 0.0 {
                return Err("stable p99 is 0 ms, so no ratio".into());
            }
            Ok((cp, sp))
        });
        let window_gate = match (pair, &p99_unjudged) {
            (Err(_), Some(why)) => GateResult::new(name, Verdict::Pass, why.clone(), cfg),
            (Err(why), None) => GateResult::inconclusive(name, &why, k, cfg),
            (Ok((cp, sp)), _) => {
                let ratio = cp / sp;
                let label = format!("canary p99 {} vs stable {}:", ms(cp), ms(sp));
                let severe = cfg.severe_p99_ratio.filter(|s| ratio >= *s);
                GateResult::limit(name, &label, ratio, k, true, times, cfg).mark_severe(
                    severe.is_some(),
                    format!(">= {}", times(severe.unwrap_or(0.0))),
                    cfg,
                )
            }
        };
        gates.push(match &stage {
            Some(view) => with_slow_requests(window_gate, view, cfg),
            None => window_gate,
        });
    }
    if let Some(needed) = cfg.error_rate_confidence {
        gates.push(match &stage {
            Some(view) => sequential_error_gate(view, needed, severe_limit, cfg),
            None => relative_error_gate(&canary, &stable, needed, cfg),
        });
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

/// Stable's error rate, when it can be compared with: absolute error limits below twice
/// that rate are raised to it (a canary with stable's own rate passes them).
#[derive(Debug, Clone, Copy)]
struct BaseRate(Option<f64>);

/// How many times stable's rate an absolute error limit is raised to.
const BASE_RATE_FACTOR: f64 = 2.0;

impl BaseRate {
    fn new(rate: Option<f64>) -> BaseRate {
        BaseRate(rate.filter(|r| r.is_finite()))
    }

    fn of(stable: &Result<&SideStats, String>) -> BaseRate {
        BaseRate::new(stable.as_ref().ok().and_then(|s| s.error_rate()))
    }

    fn of_counts(counts: &Result<(Counts, Counts), String>) -> BaseRate {
        BaseRate::new(
            counts
                .as_ref()
                .ok()
                .and_then(|(_, stable)| stable.error_rate()),
        )
    }

    /// The limit in force: `limit`, or twice stable's rate when that is higher.
    fn scale(self, limit: f64) -> f64 {
        match self.0 {
            Some(rate) if rate * BASE_RATE_FACTOR > limit => rate * BASE_RATE_FACTOR,
            _ => limit,
        }
    }

    /// " (twice stable's 1.00 %)" when stable's rate raised `limit`.
    fn note(self, limit: f64) -> Option<String> {
        match self.0 {
            Some(rate) if self.scale(limit) > limit => {
                Some(format!(" (twice stable's {})", pct(rate)))
            }
            _ => None,
        }
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
    let name = RELATIVE_ERROR_GATE;
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

/// What the absolute error gates judge and how it is named in their detail.
struct Basis {
    rate: f64,
    label: &'static str,
    /// Too few requests for the minimum, but the sequential test is decisive.
    decisive: bool,
    /// The stage's rate, not (yet) shown beyond the limit by the sequential test: a breach
    /// of the limit by this rate is noise so far, not a failure.
    unproven: bool,
}

impl Basis {
    fn judge(&self, g: GateResult) -> GateResult {
        if !self.unproven || g.verdict != Verdict::Fail {
            return g;
        }
        let mut g = GateResult {
            verdict: Verdict::Pass,
            severe: false,
            ..g
        };
        g.detail = format!("{}, not shown beyond it by the sequential test", g.detail);
        g
    }

    fn severe_note(&self, limit: f64, op: &str) -> String {
        if self.decisive {
            format!("{op} {}; decisive on few requests", pct(limit))
        } else {
            format!("{op} {}", pct(limit))
        }
    }
}

/// Under `judgment = "stage"`, the latency test counts requests slower than the source's
/// threshold with the error test's sequential worse-test, at its alpha divided by this: the
/// two tests share a rollout's false-halt budget, and a doubled latency puts so many more
/// requests over stable's p99 that the stricter line costs it a request or two.
pub const LATENCY_SPLIT: f64 = 5.0;

/// The p99-vs-stable gate under `judgment = "stage"` where the source counts slow requests:
/// the canary's share of requests over the threshold this stage against stable's, by the
/// sequential worse-test (decisive at once, no sustain, valid across every look); short of
/// decisive it says so beside the window's ratio, and a ratio of `LEANING_RATIO` or more
/// leans worse.
fn with_slow_requests(window_gate: GateResult, view: &StageView, cfg: &GateConfig) -> GateResult {
    let (Ok((c, s)), Some(slow)) = (&view.counts, view.slow) else {
        return window_gate;
    };
    let slow_counts = |requests: u64, slow: u64| Counts {
        requests,
        errors: slow.min(requests),
    };
    let (canary, stable) = (
        slow_counts(c.requests, slow.canary),
        slow_counts(s.requests, slow.stable),
    );
    let (Some(rc), Some(rs), Some(t)) = (
        canary.error_rate(),
        stable.error_rate(),
        canary_worse(canary, stable, sequential_alpha(cfg) / LATENCY_SPLIT),
    ) else {
        return window_gate;
    };
    let rates = format!(
        "canary requests over stable's p99 ({}): {} ({}/{}) vs stable {} {}",
        ms(slow.threshold_ms),
        pct(rc),
        canary.errors,
        canary.requests,
        pct(rs),
        view.scope
    );
    let test = test_text(cfg.error_rate_confidence.unwrap_or(0.95), &t);
    if t.decisive() {
        // A window ratio over its limit reads best first; the test makes it count at once
        // (a severe ratio keeps its own time before a rollback).
        if window_gate.verdict == Verdict::Fail {
            let mut g = window_gate;
            g.detail = format!("{}; {rates}: slower ({test})", g.detail);
            if !g.severe {
                g.required_for = std::time::Duration::ZERO;
            }
            return g;
        }
        let mut g = GateResult::new(
            &window_gate.name,
            Verdict::Fail,
            format!("{rates}: slower ({test})"),
            cfg,
        );
        g.required_for = std::time::Duration::ZERO;
        g.observed = Some(t.ratio());
        g.threshold = Some(t.threshold);
        return g;
    }
    let mut g = window_gate;
    g.detail = format!("{}; {rates}: not shown slower ({test})", g.detail);
    if g.verdict != Verdict::Fail {
        g.leaning = leaning_text(&rates, "slower", &t);
    }
    g
}

/// A likelihood ratio as the gates print it.
fn ratio_text(x: f64) -> String {
    if x >= 1e4 {
        format!("{x:.1e}")
    } else {
        format!("{x:.1}")
    }
}

/// "sequential test at 95 %: likelihood ratio 12.0 < 500.0"
fn test_text(confidence: f64, t: &WorseTest) -> String {
    format!(
        "sequential test at {}: likelihood ratio {} {} {}",
        confidence_text(confidence),
        ratio_text(t.ratio()),
        if t.decisive() { ">=" } else { "<" },
        ratio_text(t.threshold)
    )
}

/// Why a worse-test short of decisive leans `worse` ("worse", "slower"), when its ratio is
/// `LEANING_RATIO` or more.
fn leaning_text(rates: &str, worse: &str, t: &WorseTest) -> Option<String> {
    (!t.decisive() && t.ratio() >= LEANING_RATIO).then(|| {
        format!(
            "{rates}: looks {worse} so far (likelihood ratio {} of the {} that decides)",
            ratio_text(t.ratio()),
            ratio_text(t.threshold)
        )
    })
}

/// A sample's stage totals as `judgment = "stage"` reads them, with the window's freshness.
struct StageView {
    /// The counts judged, or why there are none.
    counts: Result<(Counts, Counts), String>,
    /// Requests over the source's latency threshold this stage, where it counts them.
    slow: Option<SlowTotals>,
    /// "this stage", or the window when the source has no stage totals (said so).
    scope: &'static str,
    /// Canary requests per minute over the stage, for "~M min at the current rate".
    canary_per_minute: Option<f64>,
}

impl StageView {
    fn of(sample: &HealthSample, cfg: &GateConfig, now: DateTime<Utc>) -> StageView {
        let fresh = sample
            .checked(Side::Canary, cfg, now)
            .and_then(|_| sample.checked(Side::Stable, cfg, now));
        let Some(stage) = &sample.stage else {
            let counts = fresh.and_then(|_| {
                let side = |s: Side| {
                    sample.side(s).map(|x| Counts {
                        requests: x.requests,
                        errors: x.errors,
                    })
                };
                side(Side::Canary)
                    .zip(side(Side::Stable))
                    .ok_or_else(|| "no data".to_string())
            });
            return StageView {
                counts,
                slow: None,
                scope: "in the window (no stage totals from this source)",
                canary_per_minute: sample
                    .canary
                    .as_ref()
                    .map(|c| c.requests as f64 / (sample.window.as_secs_f64() / 60.0).max(1.0)),
            };
        };
        let counts = fresh.and_then(|_| {
            for (side, c) in [(Side::Canary, stage.canary), (Side::Stable, stage.stable)] {
                if c.errors > c.requests {
                    return Err(format!(
                        "{} reports {} errors > {} requests this stage (bad data)",
                        side.name(),
                        c.errors,
                        c.requests
                    ));
                }
            }
            Ok((stage.canary, stage.stable))
        });
        let minutes = age(stage.since, sample.taken_at).as_secs_f64() / 60.0;
        StageView {
            counts,
            slow: stage.slow,
            scope: "this stage",
            canary_per_minute: (minutes > 0.0).then(|| stage.canary.requests as f64 / minutes),
        }
    }

    fn worse(&self, cfg: &GateConfig) -> Option<super::sequential::WorseTest> {
        let (c, s) = self.counts.as_ref().ok()?;
        cfg.error_rate_confidence?;
        canary_worse(*c, *s, sequential_alpha(cfg))
    }

    /// The window's rate when it has the minimum, else the stage's: a breach of the limit
    /// by it counts once a sequential test shows it.
    /// `max_limit` and `severe_limit` are the absolute error limits as they apply to this
    /// sample (raised to follow stable's own rate).
    fn error_basis(
        &self,
        window: &Result<&SideStats, String>,
        max_limit: Option<f64>,
        severe_limit: Option<f64>,
        cfg: &GateConfig,
    ) -> Result<Basis, String> {
        let shown_above = |c: &Counts, limit: Option<f64>, alpha: f64| {
            limit
                .and_then(|l| canary_above(*c, l))
                .is_some_and(|ln| ln >= (1.0 / alpha).ln())
        };
        if let Ok(w) = window {
            // A limit near the canary's healthy rate (the full stage has no stable rate to
            // raise it; a noisy stable window raises it too little) is crossed by many
            // windows: a non-severe breach counts once a test on the window (at the
            // configured confidence; the breach must be sustained too) or the sequential test
            // on the stage shows it. Simulated at 10 req/s, 1 % base: false halts 1.5 % -> 0.
            let rate = w.error_rate().unwrap_or(f64::NAN);
            let counts = Counts {
                requests: w.requests,
                errors: w.errors,
            };
            let severe = severe_limit.is_some_and(|s| rate >= s);
            let window_alpha = 1.0 - cfg.error_rate_confidence.unwrap_or(0.95);
            let stage_shows = self
                .counts
                .as_ref()
                .is_ok_and(|(c, _)| shown_above(c, max_limit, sequential_alpha(cfg)));
            return Ok(Basis {
                rate,
                label: "canary error rate",
                decisive: false,
                unproven: !severe && !stage_shows && !shown_above(&counts, max_limit, window_alpha),
            });
        }
        let (c, _) = self.counts.as_ref().map_err(Clone::clone)?;
        let rate = c
            .error_rate()
            .ok_or_else(|| format!("no canary requests {}", self.scope))?;
        // A short window's rate is noise; the stage's counts count once a sequential test
        // shows the rate above the limit (or, for the severe line, the canary worse).
        let above = |limit: Option<f64>| shown_above(c, limit, sequential_alpha(cfg));
        let severe_shown = severe_limit.is_some_and(|s| rate >= s)
            && (above(severe_limit) || self.worse(cfg).is_some_and(|t| t.decisive()));
        if severe_shown || above(max_limit) {
            return Ok(Basis {
                rate,
                label: "canary error rate this stage",
                decisive: c.requests < cfg.min_requests,
                unproven: false,
            });
        }
        // The evidence gate, not a request minimum, says when there is enough to advance.
        Ok(Basis {
            rate,
            label: "canary error rate this stage",
            decisive: false,
            unproven: true,
        })
    }
}

/// "~13m at the current rate", or why there is no estimate.
fn time_to(requests: u64, per_minute: Option<f64>) -> String {
    match per_minute.filter(|r| *r > 0.0) {
        Some(r) => format!(
            "~{} at the current rate",
            format_duration(std::time::Duration::from_secs_f64(
                (requests as f64 / r * 60.0).min(1e9)
            ))
        ),
        None => "no canary traffic to estimate the time".into(),
    }
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// "Enough evidence" (`judgment = "stage"`, reported as `min-requests`): the canary's error
/// rate this stage shown at or below the tolerated rate by a sequential test.
fn evidence_gate(view: &StageView, cfg: &GateConfig) -> GateResult {
    let name = "min-requests";
    let (c, s) = match &view.counts {
        Err(why) => return GateResult::inconclusive(name, why, f64::NAN, cfg),
        Ok(pair) => *pair,
    };
    let scope = view.scope;
    let seen = format!(
        "{} in {} canary requests {scope}",
        plural(c.errors, "error"),
        c.requests
    );
    let stable_rate = s.error_rate();
    let tolerated = match stable_rate {
        Some(r) => (r * 2.0).max(r + TOLERATED_EXTRA_POINTS).min(0.5),
        // No stable side (the full stage): the comparison was made in the stages before, and
        // the absolute gates judge this one; proving the canary under an absolute limit that
        // sits at its own healthy rate would hold the stage forever.
        None => {
            let verdict = if c.requests >= cfg.min_requests {
                Verdict::Pass
            } else {
                Verdict::Inconclusive
            };
            let detail = if c.requests == 0 && s.requests == 0 {
                format!("no requests {scope} yet")
            } else {
                format!(
                    "{} canary requests {scope} (needs {}; no stable error rate to compare with)",
                    c.requests, cfg.min_requests
                )
            };
            let mut g = GateResult::new(name, verdict, detail, cfg);
            g.observed = Some(c.requests as f64);
            g.threshold = Some(cfg.min_requests as f64);
            return g;
        }
    };
    let alpha = 1.0 - EVIDENCE_CONFIDENCE;
    let goal = format!(
        "to show the canary error rate <= {} with {} confidence",
        pct(tolerated),
        confidence_text(EVIDENCE_CONFIDENCE)
    );
    let mut g = if shown_at_most(c, tolerated, alpha) {
        let detail = format!(
            "enough evidence: canary error rate <= {} with {} confidence ({seen})",
            pct(tolerated),
            confidence_text(EVIDENCE_CONFIDENCE)
        );
        GateResult::new(name, Verdict::Pass, detail, cfg)
    } else {
        // The canary is expected to fail as it has so far, and at least as stable does.
        let rate = c
            .error_rate()
            .unwrap_or(0.0)
            .max(stable_rate.unwrap_or(0.0));
        let mut leaning = None;
        let why = if c.requests == 0 {
            format!("no canary requests {scope} yet ({goal})")
        } else {
            match more_requests_needed(c, tolerated, alpha, rate) {
                Some(n) => format!(
                    "needs about {} more canary requests: {} ({goal}; {seen})",
                    n,
                    time_to(n, view.canary_per_minute)
                ),
                None => {
                    let above = format!(
                        "canary error rate {} {scope} is not below the tolerated {}",
                        pct(rate),
                        pct(tolerated)
                    );
                    leaning = Some(format!("{above} ({seen})"));
                    format!("{above}: more requests at this rate will not show it ({seen})")
                }
            }
        };
        let mut g = GateResult::inconclusive(name, &why, tolerated, cfg);
        g.leaning = leaning;
        g
    };
    g.observed = Some(c.requests as f64);
    g.threshold = Some(tolerated);
    g
}

/// The relative error gate under `judgment = "stage"`: the sequential worse-test on the
/// stage's totals, decisive at once (no sustain) and valid across every look.
/// A canary shown worse at or above `severe_limit` is a severe breach: it rolls back (after
/// `severe_for`) rather than halting at once, as a severe window would.
fn sequential_error_gate(
    view: &StageView,
    needed: f64,
    severe_limit: Option<f64>,
    cfg: &GateConfig,
) -> GateResult {
    let name = RELATIVE_ERROR_GATE;
    let (c, s) = match &view.counts {
        Err(why) => return GateResult::inconclusive(name, why, needed, cfg),
        Ok(pair) => *pair,
    };
    let (Some(rc), Some(rs), Some(t)) = (c.error_rate(), s.error_rate(), view.worse(cfg)) else {
        let why = if c.requests == 0 {
            format!("no canary requests {} yet", view.scope)
        } else {
            format!("no usable error counts {}", view.scope)
        };
        return GateResult::inconclusive(name, &why, needed, cfg);
    };
    let rates = format!(
        "canary {} ({}/{}) vs stable {} {}",
        pct(rc),
        c.errors,
        c.requests,
        pct(rs),
        view.scope
    );
    let test = test_text(needed, &t);
    let (verdict, detail) = if t.decisive() {
        (Verdict::Fail, format!("{rates}: worse ({test})"))
    } else {
        (Verdict::Pass, format!("{rates}: not shown worse ({test})"))
    };
    let severe = severe_limit.filter(|s| rc >= *s);
    let mut g = GateResult::new(name, verdict, detail, cfg);
    g.leaning = leaning_text(&rates, "worse", &t);
    g.required_for = std::time::Duration::ZERO;
    g.observed = Some(t.ratio());
    g.threshold = Some(t.threshold);
    g.mark_severe(
        severe.is_some(),
        format!("canary >= {}", pct(severe.unwrap_or(0.0))),
        cfg,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::health::MAX_CLOCK_SKEW;

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
            stage: None,
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
