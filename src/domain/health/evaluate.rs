//! `evaluate`: every configured gate run against one sample, each with the numbers
//! behind its verdict.

use chrono::{DateTime, Utc};

use super::sample::{age, ahead_of, bad_counts, future_text};
use super::stats::error_rate_worse_p_value;
use super::{GateConfig, GateReport, GateResult, HealthSample, Side, SideStats, Verdict};
use crate::domain::units::{format_duration, format_rate as pct};

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
