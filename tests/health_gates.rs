//! Health gates: each gate's Pass/Fail/Inconclusive with its numbers, the statistical
//! comparison against stable, and breach tracking across samples.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use rollout_tui::domain::health::{
    BreachTracker, Counts, GateConfig, GateReport, HealthSample, Judgment, LEANING_RATIO,
    SideStats, SlowTotals, StageTotals, Verdict, error_rate_worse_p_value, evaluate, judge,
};
use rollout_tui::domain::units::Percent;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

fn side(requests: u64, errors: u64, p99_ms: f64) -> SideStats {
    SideStats {
        requests,
        errors,
        p99_ms: Some(p99_ms),
        newest_point_at: Some(t0()),
        ..Default::default()
    }
}

fn sample(canary: Option<SideStats>, stable: Option<SideStats>) -> HealthSample {
    HealthSample {
        taken_at: t0(),
        window: Duration::from_secs(300),
        stable,
        canary,
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    }
}

fn healthy() -> HealthSample {
    sample(Some(side(1_000, 2, 120.0)), Some(side(10_000, 20, 110.0)))
}

fn run(s: &HealthSample, cfg: &GateConfig) -> GateReport {
    evaluate(s, cfg, t0())
}

fn gate<'a>(r: &'a GateReport, name: &str) -> &'a rollout_tui::domain::health::GateResult {
    r.gate(name)
        .unwrap_or_else(|| panic!("no gate {name} in {r:#?}"))
}

fn all_gates() -> GateConfig {
    GateConfig {
        min_success_rate: Some(0.99),
        max_p99_ms: Some(500.0),
        ..window_gates()
    }
}

#[test]
fn healthy_sample_passes_every_gate_in_order() {
    let r = run(&healthy(), &all_gates());
    let names: Vec<_> = r.gates.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "freshness",
            "min-requests",
            "error-rate",
            "success-rate",
            "p99",
            "p99-vs-stable",
            "error-rate-vs-stable"
        ]
    );
    assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
    assert_eq!(r.summary(), "all 7 gates pass");
    assert_eq!(r.failing().count() + r.inconclusive().count(), 0);
    assert!(
        r.gates
            .iter()
            .all(|g| g.failing_since.is_none() && !g.sustained)
    );
}

#[test]
fn switched_off_gates_are_absent() {
    let cfg = GateConfig {
        max_error_rate: None,
        max_p99_ratio: None,
        error_rate_confidence: None,
        ..window_gates()
    };
    let r = run(&healthy(), &cfg);
    assert_eq!(r.gates.len(), 2);
    assert_eq!(r.summary(), "all 2 gates pass");
}

#[test]
fn freshness_stale_missing_and_untimed_sides_are_inconclusive() {
    let mut s = healthy();
    s.canary.as_mut().unwrap().newest_point_at = Some(t0() - TimeDelta::seconds(250));
    let r = run(&s, &window_gates());
    let g = gate(&r, "freshness");
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(g.detail, "stale: newest canary point 4m10s old > 3m limit");
    assert_eq!((g.observed, g.threshold), (Some(250.0), Some(180.0)));
    assert_eq!(r.verdict, Verdict::Inconclusive);
    // Every gate reading canary data is Inconclusive, never Pass.
    for name in ["min-requests", "freshness"] {
        assert_ne!(gate(&r, name).verdict, Verdict::Fail);
    }
    for name in ["error-rate", "p99-vs-stable", "error-rate-vs-stable"] {
        let g = gate(&r, name);
        assert_eq!(g.verdict, Verdict::Inconclusive, "{name}");
        assert!(g.detail.contains("canary data stale"), "{}", g.detail);
    }

    // Exactly at the limit is still fresh.
    s.canary.as_mut().unwrap().newest_point_at = Some(t0() - mins(3));
    assert_eq!(run(&s, &window_gates()).verdict, Verdict::Pass);

    let mut s = healthy();
    s.stable = None;
    s.source_error = Some("prometheus: connection refused".into());
    let r = run(&s, &window_gates());
    assert_eq!(
        gate(&r, "freshness").detail,
        "no stable data: prometheus: connection refused"
    );
    assert_eq!(
        gate(&r, "error-rate").verdict,
        Verdict::Pass,
        "canary-only gate still answers"
    );
    assert_eq!(gate(&r, "p99-vs-stable").verdict, Verdict::Inconclusive);
    assert_eq!(
        gate(&r, "error-rate-vs-stable").verdict,
        Verdict::Inconclusive
    );
    assert_eq!(r.verdict, Verdict::Inconclusive);

    let mut s = healthy();
    s.canary = None;
    let r = run(&s, &window_gates());
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(
        r.gates.iter().all(|g| g.verdict == Verdict::Inconclusive),
        "{r:#?}"
    );
    assert_eq!(
        gate(&r, "min-requests").detail,
        "inconclusive: no canary data"
    );

    let mut s = healthy();
    s.stable.as_mut().unwrap().newest_point_at = None;
    let r = run(&s, &window_gates());
    assert_eq!(
        gate(&r, "freshness").detail,
        "no time for the newest stable point"
    );
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

#[test]
fn min_requests_text_is_exact() {
    let mut s = healthy();
    s.canary = Some(side(14, 0, 100.0));
    let r = run(&s, &window_gates());
    let g = gate(&r, "min-requests");
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(g.detail, "inconclusive: 14 requests < 200 minimum");
    assert_eq!((g.observed, g.threshold), (Some(14.0), Some(200.0)));
    assert_eq!(r.summary(), "inconclusive: 14 requests < 200 minimum");
    assert_eq!(
        gate(&r, "error-rate").detail,
        "inconclusive: 14 canary requests < 200 minimum"
    );
    assert_eq!(r.verdict, Verdict::Inconclusive);

    s.canary = Some(side(200, 0, 100.0));
    let r = run(&s, &window_gates());
    assert_eq!(gate(&r, "min-requests").verdict, Verdict::Pass);
    assert_eq!(
        gate(&r, "min-requests").detail,
        "200 canary requests >= 200 minimum"
    );
}

#[test]
fn error_rate_gate() {
    let mut s = healthy();
    s.canary = Some(side(1_000, 21, 120.0));
    let r = run(&s, &window_gates());
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(g.detail, "canary error rate 2.10 % > 1.00 %");
    assert_eq!((g.observed, g.threshold), (Some(0.021), Some(0.01)));
    assert!(!g.severe);
    assert_eq!(g.required_for, Duration::from_secs(300));
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.summary(), "canary error rate 2.10 % > 1.00 %");

    // At the limit passes; at the severe line is severe with the shorter `for`.
    s.canary = Some(side(1_000, 10, 120.0));
    let g = run(&s, &window_gates())
        .gate("error-rate")
        .cloned()
        .unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Pass, "canary error rate 1.00 % <= 1.00 %")
    );
    s.canary = Some(side(1_000, 50, 120.0));
    let g = run(&s, &window_gates())
        .gate("error-rate")
        .cloned()
        .unwrap();
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.severe);
    assert_eq!(g.required_for, Duration::from_secs(60));
    assert_eq!(
        g.detail,
        "canary error rate 5.00 % > 1.00 %, severe (>= 5.00 %)"
    );

    // Broken counts are bad data, not a 100 % error rate.
    s.canary = Some(side(300, 301, 120.0));
    let r = run(&s, &window_gates());
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(
        g.detail,
        "inconclusive: canary reports 301 errors > 300 requests (bad data)"
    );
    assert_eq!(gate(&r, "min-requests").verdict, Verdict::Inconclusive);
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

#[test]
fn success_rate_gate() {
    let mut s = healthy();
    s.canary = Some(side(1_000, 21, 120.0));
    let r = run(&s, &all_gates());
    let g = gate(&r, "success-rate");
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(g.detail, "canary success rate 97.90 % < 99.00 %");
    assert_eq!(g.threshold, Some(0.99));
    assert!((g.observed.unwrap() - 0.979).abs() < 1e-12);

    s.canary = Some(side(1_000, 5, 120.0));
    let g = run(&s, &all_gates()).gate("success-rate").cloned().unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Pass, "canary success rate 99.50 % >= 99.00 %")
    );

    s.canary = Some(side(150, 0, 120.0));
    assert_eq!(
        run(&s, &all_gates()).gate("success-rate").unwrap().verdict,
        Verdict::Inconclusive
    );
}

#[test]
fn p99_gate() {
    let mut s = healthy();
    s.canary = Some(side(1_000, 0, 812.0));
    let g = run(&s, &all_gates()).gate("p99").cloned().unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Fail, "canary p99 812 ms > 500 ms")
    );
    assert_eq!((g.observed, g.threshold), (Some(812.0), Some(500.0)));

    s.canary = Some(side(1_000, 0, 480.5));
    let g = run(&s, &all_gates()).gate("p99").cloned().unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Pass, "canary p99 480.5 ms <= 500 ms")
    );

    for bad in [None, Some(f64::NAN), Some(-1.0), Some(f64::INFINITY)] {
        s.canary.as_mut().unwrap().p99_ms = bad;
        let r = run(&s, &all_gates());
        assert_eq!(gate(&r, "p99").verdict, Verdict::Inconclusive, "{bad:?}");
        assert_eq!(
            gate(&r, "p99-vs-stable").verdict,
            Verdict::Inconclusive,
            "{bad:?}"
        );
    }
}

#[test]
fn p99_vs_stable_gate() {
    let mut s = healthy();
    s.canary = Some(side(1_000, 0, 450.0));
    s.stable = Some(side(10_000, 0, 150.0));
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(
        g.detail,
        "canary p99 450 ms vs stable 150 ms: 3.00x > 1.50x"
    );
    assert_eq!(
        (g.observed, g.threshold, g.severe),
        (Some(3.0), Some(1.5), false)
    );

    s.canary.as_mut().unwrap().p99_ms = Some(800.0);
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert!(g.severe, "5.33x >= 5x");
    assert_eq!(g.required_for, Duration::from_secs(60));

    s.canary.as_mut().unwrap().p99_ms = Some(225.0);
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (
            Verdict::Pass,
            "canary p99 225 ms vs stable 150 ms: 1.50x <= 1.50x"
        )
    );

    // Stable needs enough requests, a p99, and a non-zero one.
    s.stable = Some(side(150, 0, 150.0));
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (
            Verdict::Inconclusive,
            "inconclusive: 150 stable requests < 200 minimum"
        )
    );
    s.stable = Some(side(10_000, 0, 0.0));
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert_eq!(g.verdict, Verdict::Inconclusive);
    s.stable.as_mut().unwrap().p99_ms = None;
    let g = run(&s, &window_gates())
        .gate("p99-vs-stable")
        .cloned()
        .unwrap();
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Inconclusive, "inconclusive: no stable p99")
    );
}

/// The statistical gate for canary errors/requests against stable errors/requests.
fn relative(ce: u64, cn: u64, se: u64, sn: u64) -> rollout_tui::domain::health::GateResult {
    let s = sample(Some(side(cn, ce, 100.0)), Some(side(sn, se, 100.0)));
    run(&s, &window_gates())
        .gate("error-rate-vs-stable")
        .cloned()
        .unwrap()
}

#[test]
fn error_rate_vs_stable_small_counts() {
    let g = relative(0, 1_000, 0, 1_000);
    assert_eq!(
        (g.verdict, g.detail.as_str()),
        (Verdict::Pass, "no errors on either side")
    );

    // E = 60, H0 share 1/2: P(X >= 50) = sum C(60,k)/2^60 for k >= 50, about 8.1e-8.
    let g = relative(50, 1_000, 10, 1_000);
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(
        g.detail,
        "canary 5.00 % vs stable 1.00 %: worse with 99.9 % confidence (needs 95 %)"
    );
    assert!(1.0 - g.observed.unwrap() < 1e-6);
    assert_eq!(g.threshold, Some(0.95));

    let g = relative(3, 50, 0, 50);
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(g.detail, "inconclusive: 50 canary requests < 200 minimum");

    // E = 22: P(X >= 12) = (1 - C(22,11)/2^22) / 2 = (1 - 705432/4194304) / 2 = 0.4159059...
    let g = relative(12, 10_000, 10, 10_000);
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(
        (g.observed.unwrap() - (1.0 - 0.415_905_952_453_613_3)).abs() < 1e-12,
        "{:?}",
        g.observed
    );
    assert_eq!(
        g.detail,
        "canary 0.12 % vs stable 0.10 %: worse with only 58.4 % confidence (needs 95 %)"
    );
}

#[test]
fn error_rate_vs_stable_large_counts() {
    // E = 21000, share 1/2: mean 10500, sd = sqrt(21000/4) = 72.46,
    // z = (11000 - 0.5 - 10500) / 72.46 = 6.89 -> p ~ 2.7e-12: significant at 95 %.
    let g = relative(11_000, 1_000_000, 10_000, 1_000_000);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(1.0 - g.observed.unwrap() < 1e-10, "{:?}", g.observed);

    // E = 20150: mean 10075, sd = sqrt(20150/4) = 70.98, z = 74.5 / 70.98 = 1.05 -> p ~ 0.147: not significant.
    let g = relative(10_150, 1_000_000, 10_000, 1_000_000);
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(
        (g.observed.unwrap() - 0.853).abs() < 0.005,
        "{:?}",
        g.observed
    );

    // E = 20300: mean 10150, sd = sqrt(20300/4) = 71.24, z = 149.5 / 71.24 = 2.10 -> p ~ 0.018: significant.
    let g = relative(10_300, 1_000_000, 10_000, 1_000_000);
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(
        (g.observed.unwrap() - 0.982).abs() < 0.005,
        "{:?}",
        g.observed
    );

    // Unequal traffic and ten million errors: canary 1.001 % on 10^8 requests vs 1 % on 9x10^8.
    // E = 10^7 + 1000, share 0.1: mean 1000100, sd = sqrt(E*0.09) = 948.7,
    // z = (1001000 - 0.5 - 1000100) / 948.7 = 0.95 -> p ~ 0.17: not significant.
    let g = relative(1_001_000, 100_000_000, 9_000_000, 900_000_000);
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(
        (g.observed.unwrap() - 0.829).abs() < 0.005,
        "{:?}",
        g.observed
    );
}

#[test]
fn canary_better_than_stable_never_fails() {
    for (ce, se) in [(0, 50), (10, 50), (10, 10), (5_000, 10_000)] {
        let g = relative(ce, 1_000_000, se, 1_000_000);
        assert_eq!(g.verdict, Verdict::Pass, "{ce} vs {se}: {}", g.detail);
    }
    // Even with a configured confidence that any noise would clear.
    let cfg = GateConfig {
        error_rate_confidence: Some(0.0),
        ..window_gates()
    };
    let s = sample(Some(side(1_000, 1, 100.0)), Some(side(1_000, 2, 100.0)));
    assert_eq!(
        run(&s, &cfg).gate("error-rate-vs-stable").unwrap().verdict,
        Verdict::Pass
    );
}

#[test]
fn report_json_and_summary() {
    let mut s = healthy();
    s.canary = Some(side(1_000, 21, 120.0));
    let r = run(&s, &window_gates());
    let v = r.to_json();
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["sampleTakenAt"], "2025-03-01T12:00:00Z");
    let g = &v["gates"][2];
    assert_eq!(g["name"], "error-rate");
    assert_eq!(g["verdict"], "fail");
    assert_eq!(g["requiredFor"], "5m");
    assert_eq!(g["failingSince"], serde_json::Value::Null);
    assert_eq!(v["gates"][0]["verdict"], "pass");
    let back: GateReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

/// One sample at t0 + `at`, fresh, with the given canary errors per 1000 requests
/// (None: the canary side is missing).
fn tick(tracker: &mut BreachTracker, at: TimeDelta, canary_errors: Option<u64>) -> GateReport {
    let now = t0() + at;
    let stats = |errors| SideStats {
        newest_point_at: Some(now),
        ..side(1_000, errors, 100.0)
    };
    let s = HealthSample {
        taken_at: now,
        window: Duration::from_secs(300),
        canary: canary_errors.map(stats),
        // Stable at a typical 0.2 %: the absolute limits stay as configured.
        stable: Some(stats(2)),
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    };
    let cfg = window_gates();
    let mut r = evaluate(&s, &cfg, now);
    tracker.observe(&mut r);
    r
}

#[test]
fn breach_must_be_sustained_and_pass_clears_it() {
    let mut tr = BreachTracker::default();
    let r = tick(&mut tr, mins(0), Some(21));
    let g = gate(&r, "error-rate");
    assert_eq!((g.failing_since, g.sustained), (Some(t0()), false));
    assert_eq!(
        g.breach_progress(r.sample_taken_at).as_deref(),
        Some("canary error rate 2.10 % > 1.00 % for 0s of 5m")
    );

    let r = tick(&mut tr, mins(3), Some(21));
    let g = gate(&r, "error-rate");
    assert_eq!((g.failing_since, g.sustained), (Some(t0()), false));
    assert_eq!(
        g.breach_progress(r.sample_taken_at).as_deref(),
        Some("canary error rate 2.10 % > 1.00 % for 3m of 5m")
    );

    let r = tick(&mut tr, mins(5), Some(21));
    let g = gate(&r, "error-rate");
    assert_eq!((g.failing_since, g.sustained), (Some(t0()), true));
    assert_eq!(
        g.breach_progress(r.sample_taken_at),
        None,
        "sustained: no longer in progress"
    );

    let r = tick(&mut tr, mins(6), Some(5));
    let g = gate(&r, "error-rate");
    assert_eq!(
        (g.verdict, g.failing_since, g.sustained),
        (Verdict::Pass, None, false)
    );

    // A new breach starts over; a gap in data between failures neither confirms nor clears it.
    let r = tick(&mut tr, mins(7), Some(21));
    assert_eq!(gate(&r, "error-rate").failing_since, Some(t0() + mins(7)));
    let r = tick(&mut tr, mins(9), None);
    let g = gate(&r, "error-rate");
    assert_eq!((g.verdict, g.sustained), (Verdict::Inconclusive, false));
    assert_eq!(r.verdict, Verdict::Inconclusive);
    let r = tick(&mut tr, mins(12), Some(21));
    let g = gate(&r, "error-rate");
    assert_eq!((g.failing_since, g.sustained), (Some(t0() + mins(7)), true));
}

#[test]
fn severe_breach_uses_severe_for() {
    let mut tr = BreachTracker::default();
    let r = tick(&mut tr, mins(0), Some(60));
    let g = gate(&r, "error-rate");
    assert!(g.severe && !g.sustained);
    let r = tick(&mut tr, TimeDelta::seconds(30), Some(60));
    let g = gate(&r, "error-rate");
    assert_eq!(
        g.breach_progress(r.sample_taken_at).as_deref(),
        Some("canary error rate 6.00 % > 1.00 %, severe (>= 5.00 %) for 30s of 1m")
    );
    let r = tick(&mut tr, mins(1), Some(60));
    assert!(gate(&r, "error-rate").sustained);

    // A long mild breach that turns severe starts the severe clock afresh: one severe
    // sample after 10 minutes of mild breach is not a sustained severe breach.
    let mut tr = BreachTracker::default();
    tick(&mut tr, mins(0), Some(21));
    let r = tick(&mut tr, mins(10), Some(60));
    let g = gate(&r, "error-rate");
    assert_eq!(
        (g.failing_since, g.severe, g.sustained),
        (Some(t0() + mins(10)), true, false)
    );
    assert_eq!(g.required_for, Duration::from_secs(60));
    let r = tick(&mut tr, mins(11), Some(60));
    assert!(gate(&r, "error-rate").sustained, "severe for 1m of 1m");

    // Dropping back to mild resumes the mild clock from the breach's true start.
    let r = tick(&mut tr, mins(12), Some(21));
    let g = gate(&r, "error-rate");
    assert_eq!(
        (g.failing_since, g.severe, g.sustained),
        (Some(t0()), false, true)
    );
    // And severity must be uninterrupted: mild in between restarts the severe clock.
    let r = tick(&mut tr, mins(13), Some(60));
    let g = gate(&r, "error-rate");
    assert_eq!(
        (g.failing_since, g.sustained),
        (Some(t0() + mins(13)), false)
    );
}

fn any_side() -> impl Strategy<Value = Option<SideStats>> {
    let requests = prop_oneof![0u64..500, 0u64..100_000];
    let p99 = prop_oneof![Just(None), (0.0f64..2_000.0).prop_map(Some)];
    let age = prop_oneof![Just(None), (-60i64..600).prop_map(Some)];
    let broken = prop::bool::weighted(0.05);
    proptest::option::weighted(0.8, (requests, 0.0f64..1.0, broken, p99, age)).prop_map(|o| {
        o.map(|(requests, f, broken, p99_ms, age)| SideStats {
            requests,
            errors: if broken {
                requests + 1
            } else {
                (requests as f64 * f * f) as u64
            },
            p99_ms,
            newest_point_at: age.map(|s| t0() - TimeDelta::seconds(s)),
            ..Default::default()
        })
    })
}

fn stale_or_missing(s: &Option<SideStats>) -> bool {
    match s.as_ref().and_then(|s| s.newest_point_at) {
        None => true,
        Some(t) => t0() - t > TimeDelta::minutes(3),
    }
}

/// Requests from a few scales so small exact sums and large counts are both exercised.
fn requests() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..400, 1u64..100_000, 1u64..20_000_000]
}

proptest! {
    #[test]
    fn missing_or_stale_is_never_pass(canary in any_side(), stable in any_side()) {
        let r = run(&sample(canary.clone(), stable.clone()), &all_gates());
        if stale_or_missing(&canary) || stale_or_missing(&stable) {
            prop_assert_ne!(r.verdict, Verdict::Pass);
        }
    }

    #[test]
    fn p_value_is_a_probability_and_monotone_in_canary_errors(
        nc in requests(), ns in requests(), fc in 0.0f64..1.0, fs in 0.0f64..1.0,
    ) {
        let ec = ((nc as f64 * fc * fc) as u64).min(nc - 1);
        let es = (ns as f64 * fs * fs) as u64;
        let stats = |requests, errors| SideStats { requests, errors, ..Default::default() };
        let p = error_rate_worse_p_value(&stats(nc, ec), &stats(ns, es)).unwrap();
        let p_more = error_rate_worse_p_value(&stats(nc, ec + 1), &stats(ns, es)).unwrap();
        prop_assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&p_more));
        // More canary errors can only raise the confidence (1 - p) that canary is worse.
        prop_assert!(p_more <= p + 1e-12, "{ec}/{nc} vs {es}/{ns}: {p} -> {p_more}");
    }

    #[test]
    fn canary_no_worse_than_stable_never_fails(
        nc in requests(), ns in requests(), fs in 0.0f64..1.0, shrink in 0.0f64..=1.0, c in 0.0f64..=1.0,
    ) {
        let es = (ns as f64 * fs * fs) as u64;
        // Canary rate = stable rate * shrink, so never above stable's.
        let ec = ((es as f64 / ns as f64) * shrink * nc as f64).floor() as u64;
        let cfg = GateConfig { error_rate_confidence: Some(c), min_requests: 1, ..window_gates() };
        let r = run(&sample(Some(side(nc, ec, 100.0)), Some(side(ns, es, 100.0))), &cfg);
        prop_assert_ne!(r.gate("error-rate-vs-stable").unwrap().verdict, Verdict::Fail);
    }

    #[test]
    fn evaluate_never_panics_and_bad_latencies_never_pass(
        cn in any::<u64>(), ce in any::<u64>(), sn in any::<u64>(), se in any::<u64>(),
        small in any::<bool>(),
        cp in any::<f64>(), sp in any::<f64>(),
        c_age in any::<i32>(), s_age in any::<i32>(),
    ) {
        // Half the cases use counts small enough that the error relation varies.
        let shrink = |v: u64| if small { v % 2_000 } else { v };
        let mk = |requests, errors, p99: f64, age: i32| SideStats {
            requests: shrink(requests),
            errors: shrink(errors),
            p50_ms: Some(p99),
            p99_ms: Some(p99),
            newest_point_at: Some(t0() - TimeDelta::seconds(i64::from(age))),
            ..Default::default()
        };
        let s = sample(Some(mk(cn, ce, cp, c_age)), Some(mk(sn, se, sp, s_age)));
        let r = run(&s, &all_gates());
        let _ = (r.to_json(), r.summary());
        for g in &r.gates {
            prop_assert!(g.observed.is_none_or(f64::is_finite), "{g:?}");
        }
        let bad = |v: f64| !v.is_finite() || v < 0.0;
        if bad(cp) {
            prop_assert_ne!(r.gate("p99").unwrap().verdict, Verdict::Pass);
        }
        if bad(cp) || bad(sp) {
            prop_assert_ne!(r.gate("p99-vs-stable").unwrap().verdict, Verdict::Pass);
        }
        if let Some(g) = r.gate("error-rate-vs-stable")
            && let Some(o) = g.observed
        {
            prop_assert!((0.0..=1.0).contains(&o));
        }
    }
}

/// A stable side that errs often raises the absolute error limits to twice its rate, so a
/// canary exactly as healthy as stable never breaches them (issue 13: with a 1 % base rate the
/// fixed 1 % limit halted nearly every healthy canary); without a stable side to compare with,
/// the configured limits hold.
#[test]
fn absolute_error_limits_follow_a_high_stable_base_rate() {
    let cfg = window_gates();
    let stable = side(10_000, 100, 110.0);
    let r = run(
        &sample(Some(side(1_000, 13, 120.0)), Some(stable.clone())),
        &cfg,
    );
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);
    assert_eq!(
        g.detail,
        "canary error rate 1.30 % <= 2.00 % (twice stable's 1.00 %)"
    );
    assert_eq!(g.threshold, Some(0.02));

    let r = run(
        &sample(Some(side(1_000, 23, 120.0)), Some(stable.clone())),
        &cfg,
    );
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(!g.severe);
    assert_eq!(
        g.detail,
        "canary error rate 2.30 % > 2.00 % (twice stable's 1.00 %)"
    );

    // The severe limit follows too: 6 % against a stable at 3 % is not severe, 7 % is.
    let stable3 = side(10_000, 300, 110.0);
    let r = run(
        &sample(Some(side(1_000, 60, 120.0)), Some(stable3.clone())),
        &cfg,
    );
    assert!(
        !gate(&r, "error-rate").severe,
        "{}",
        gate(&r, "error-rate").detail
    );
    let r = run(&sample(Some(side(1_000, 70, 120.0)), Some(stable3)), &cfg);
    assert!(
        gate(&r, "error-rate").severe,
        "{}",
        gate(&r, "error-rate").detail
    );

    // No stable side: the configured 1 % decides (a missing comparison never loosens a gate).
    let r = run(&sample(Some(side(1_000, 13, 120.0)), None), &cfg);
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Fail);
    assert_eq!(g.detail, "canary error rate 1.30 % > 1.00 %");

    // A low stable rate leaves the limit where it was configured.
    let r = run(
        &sample(Some(side(1_000, 13, 120.0)), Some(side(10_000, 20, 110.0))),
        &cfg,
    );
    assert_eq!(
        gate(&r, "error-rate").detail,
        "canary error rate 1.30 % > 1.00 %"
    );

    // The success-rate gate is the same number seen the other way.
    let cfg = GateConfig {
        min_success_rate: Some(0.99),
        ..window_gates()
    };
    let r = run(&sample(Some(side(1_000, 13, 120.0)), Some(stable)), &cfg);
    let g = gate(&r, "success-rate");
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);
    assert_eq!(
        g.detail,
        "canary success rate 98.70 % >= 98.00 % (twice stable's 1.00 %)"
    );
}

// ---- judgment = "stage": sequential tests on the stage's totals ----

fn staged() -> GateConfig {
    GateConfig {
        judgment: Judgment::Stage,
        ..GateConfig::default()
    }
}

/// The window judgment: most tests here are about the window gates themselves.
fn window_gates() -> GateConfig {
    GateConfig {
        judgment: Judgment::Window,
        ..GateConfig::default()
    }
}

/// A window of `canary`/`stable` and stage totals of 30 minutes.
fn with_stage(window: HealthSample, canary: (u64, u64), stable: (u64, u64)) -> HealthSample {
    HealthSample {
        stage: Some(StageTotals {
            since: t0() - mins(30),
            canary: Counts {
                requests: canary.0,
                errors: canary.1,
            },
            stable: Counts {
                requests: stable.0,
                errors: stable.1,
            },
            slow: None,
        }),
        ..window
    }
}

#[test]
fn nine_errors_in_ninety_canary_requests_halt_at_once_under_stage_judgment() {
    let window = sample(Some(side(40, 4, 120.0)), Some(side(5_000, 10, 110.0)));
    let s = with_stage(window, (90, 9), (10_000, 20));
    // Window judgment: the request minimum makes it all inconclusive.
    let r = run(&s, &window_gates());
    assert_eq!(r.verdict, Verdict::Inconclusive, "{r:#?}");

    let cfg = staged();
    let mut tracker = BreachTracker::default();
    let r = judge(&s, &cfg, &mut tracker);
    let g = gate(&r, "error-rate-vs-stable");
    assert_eq!(g.verdict, Verdict::Fail, "{g:#?}");
    assert!(
        g.detail.starts_with("canary 10.00 % (9/90) vs stable 0.20 % this stage: worse (sequential test at 95 %: likelihood ratio "),
        "{}",
        g.detail
    );
    // At 10 % the canary is also past the severe line: a rollback after severe_for, as a
    // severe window would be, rather than a halt at once.
    assert!(
        g.detail.ends_with(">= 500.0), severe (canary >= 5.00 %)"),
        "{}",
        g.detail
    );
    assert!(g.severe, "{g:#?}");
    assert_eq!(g.required_for, cfg.severe_for);

    // 4 in 90 (4.4 %): shown worse, not severe: a sequential test needs no sustain.
    let milder = with_stage(
        sample(Some(side(40, 1, 120.0)), Some(side(5_000, 10, 110.0))),
        (90, 4),
        (10_000, 20),
    );
    let mild = judge(&milder, &cfg, &mut BreachTracker::default());
    let g = gate(&mild, "error-rate-vs-stable");
    assert_eq!((g.verdict, g.severe), (Verdict::Fail, false), "{g:#?}");
    assert!(g.sustained, "a sequential test needs no sustain: {g:#?}");
    assert_eq!(g.required_for, Duration::ZERO);
    // The severe line counts on few requests once the test is decisive.
    let e = gate(&r, "error-rate");
    assert_eq!(e.verdict, Verdict::Fail);
    assert!(e.severe, "{e:#?}");
    assert_eq!(
        e.detail,
        "canary error rate this stage 10.00 % > 1.00 %, severe (>= 5.00 %; decisive on few requests)"
    );
}

#[test]
fn the_evidence_gate_says_how_much_more_is_needed_and_how_long_it_takes() {
    // 120 clean canary requests in 30 minutes: 4 a minute.
    let window = sample(Some(side(20, 0, 120.0)), Some(side(5_000, 10, 110.0)));
    let s = with_stage(window, (120, 0), (30_000, 60));
    let r = run(&s, &staged());
    let g = gate(&r, "min-requests");
    assert_eq!(g.verdict, Verdict::Inconclusive);
    let detail = &g.detail;
    assert!(detail.starts_with("inconclusive: needs about "), "{detail}");
    assert!(detail.contains(" more canary requests: ~"), "{detail}");
    assert!(detail.contains(" at the current rate (to show the canary error rate <= 1.20 % with 80 % confidence; 0 errors in 120 canary requests this stage)"), "{detail}");
    let needed: u64 = detail["inconclusive: needs about ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // What it asks for is what then passes.
    let more = with_stage(
        sample(Some(side(20, 0, 120.0)), Some(side(5_000, 10, 110.0))),
        (120 + needed + needed / 500, needed / 500),
        (30_000, 60),
    );
    let r = run(&more, &staged());
    let g = gate(&r, "min-requests");
    assert_eq!(g.verdict, Verdict::Pass, "{}", g.detail);
    assert!(
        g.detail
            .starts_with("enough evidence: canary error rate <= 1.20 % with 80 % confidence ("),
        "{}",
        g.detail
    );
    // The latency gates wait for a window with enough requests, and say so.
    let p99 = gate(&r, "p99-vs-stable");
    assert_eq!(p99.verdict, Verdict::Pass);
    assert_eq!(
        p99.detail,
        "not judged yet: 20 canary requests in the window < 100 a p99 needs"
    );
    // The healthy canary passes every gate on the stage's evidence.
    assert_eq!(r.verdict, Verdict::Pass, "{r:#?}");
}

#[test]
fn a_canary_failing_above_the_tolerated_rate_is_told_more_traffic_will_not_help() {
    let window = sample(Some(side(20, 1, 120.0)), Some(side(5_000, 10, 110.0)));
    let s = with_stage(window, (150, 3), (30_000, 60));
    let r = run(&s, &staged());
    let g = gate(&r, "min-requests");
    assert_eq!(g.verdict, Verdict::Inconclusive);
    assert_eq!(
        g.detail,
        "inconclusive: canary error rate 2.00 % this stage is not below the tolerated 1.20 %: \
         more requests at this rate will not show it (3 errors in 150 canary requests this stage)"
    );
    // The evidence points the wrong way: the driver is told not to widen on it.
    assert_eq!(
        g.leaning.as_deref(),
        Some(
            "canary error rate 2.00 % this stage is not below the tolerated 1.20 % \
             (3 errors in 150 canary requests this stage)"
        )
    );
}

#[test]
fn a_worse_test_short_of_decisive_but_well_above_even_leans_worse() {
    let cfg = staged();
    let relative = |canary: (u64, u64)| {
        let window = sample(Some(side(20, 0, 120.0)), Some(side(5_000, 10, 110.0)));
        let r = run(&with_stage(window, canary, (30_000, 300)), &cfg);
        gate(&r, "error-rate-vs-stable").clone()
    };
    // Stable 1 %; 1,500 canary requests at 1.7 %: more errors than stable's rate predicts
    // (15), not decisive.
    let g = relative((1_500, 26));
    assert_eq!(g.verdict, Verdict::Pass, "{g:#?}");
    let ratio = g.observed.unwrap();
    assert!(
        (LEANING_RATIO..500.0).contains(&ratio),
        "likelihood ratio {ratio}: {g:#?}"
    );
    let leaning = g.leaning.as_deref().expect("leans worse");
    assert!(
        leaning.starts_with("canary 1.73 % (26/1500) vs stable 1.00 % this stage: looks worse so far (likelihood ratio "),
        "{leaning}"
    );
    assert!(
        leaning.ends_with(" of the 500.0 that decides)"),
        "{leaning}"
    );
    // At stable's rate the ratio falls: nothing leans.
    let g = relative((1_500, 15));
    assert!(g.observed.unwrap() < 1.0, "{g:#?}");
    assert_eq!(g.leaning, None);
    // Decisive is a failure, not a lean.
    let g = relative((1_500, 45));
    assert_eq!(g.verdict, Verdict::Fail, "{g:#?}");
    assert_eq!(g.leaning, None);
}

#[test]
fn without_stage_totals_stage_judgment_uses_the_window_and_says_so() {
    let r = run(&healthy(), &staged());
    let g = gate(&r, "error-rate-vs-stable");
    assert_eq!(g.verdict, Verdict::Pass);
    assert!(
        g.detail
            .contains("in the window (no stage totals from this source): not shown worse"),
        "{}",
        g.detail
    );
}

#[test]
fn the_absolute_gate_on_a_short_window_needs_the_stage_to_show_the_breach() {
    // 3 errors in 250 (1.2 %) is above 1 % but proves nothing: a pass that says why.
    let window = sample(Some(side(30, 0, 120.0)), Some(side(5_000, 10, 110.0)));
    let s = with_stage(window, (250, 3), (30_000, 60));
    let r = run(&s, &staged());
    let g = gate(&r, "error-rate");
    assert_eq!(g.verdict, Verdict::Pass, "{g:#?}");
    assert_eq!(
        g.detail,
        "canary error rate this stage 1.20 % > 1.00 %, not shown beyond it by the sequential test"
    );
    // Window judgment of the same sample: unchanged (the window minimum).
    let r = run(&s, &window_gates());
    assert_eq!(gate(&r, "error-rate").verdict, Verdict::Inconclusive);
}

#[test]
fn judgment_is_read_from_a_document_and_refused_when_unknown() {
    let g: GateConfig = serde_json::from_str(r#"{"judgment": "stage"}"#).unwrap();
    assert_eq!(g.judgment, Judgment::Stage);
    assert_eq!(window_gates().judgment, Judgment::Window);
    let e = serde_json::from_str::<GateConfig>(r#"{"judgment": "stages"}"#).unwrap_err();
    assert!(e.to_string().contains("unknown variant"), "{e}");
}

proptest! {
    /// Under stage judgment, more canary errors in the stage never turn a Fail of the
    /// relative gate into a Pass.
    #[test]
    fn stage_judgment_is_monotone_in_canary_errors(
        cn in 1u64..5_000, ce in 0u64..100, sn in 1_000u64..100_000, se in 0u64..200,
    ) {
        let ce = ce.min(cn - 1);
        let se = se.min(sn);
        let window = sample(Some(side(100, 0, 120.0)), Some(side(5_000, 10, 110.0)));
        let verdict = |ce| {
            let s = with_stage(window.clone(), (cn, ce), (sn, se));
            gate(&run(&s, &staged()), "error-rate-vs-stable").verdict
        };
        if verdict(ce) == Verdict::Fail {
            prop_assert_eq!(verdict(ce + 1), Verdict::Fail);
        }
    }
}

/// The full stage has no stable side: the comparison was made in the stages before, so the
/// evidence gate asks only for the request minimum, and a window at the configured absolute
/// limit (a 1 % service against the default 1 %) is not a breach until a test shows it above.
#[test]
fn stage_judgment_at_the_full_stage_judges_on_the_absolute_gates() {
    let cfg = staged().at_percentage(Percent::FULL);
    let window = sample(Some(side(300, 4, 120.0)), Some(side(0, 0, 0.0)));
    let r = run(&with_stage(window, (250, 3), (0, 0)), &cfg);
    let evidence = gate(&r, "min-requests");
    assert_eq!(evidence.verdict, Verdict::Pass, "{r:#?}");
    assert!(
        evidence
            .detail
            .contains("no stable error rate to compare with"),
        "{}",
        evidence.detail
    );
    // 4 in 300 (1.33 %) is over the 1 % limit but not shown above it.
    let abs = gate(&r, "error-rate");
    assert_eq!(abs.verdict, Verdict::Pass, "{r:#?}");
    assert!(abs.detail.contains("not shown beyond it"), "{}", abs.detail);

    // 15 in 300 (5 %) is: a breach (and severe).
    let window = sample(Some(side(300, 15, 120.0)), Some(side(0, 0, 0.0)));
    let r = run(&with_stage(window, (250, 12), (0, 0)), &cfg);
    assert_eq!(gate(&r, "error-rate").verdict, Verdict::Fail, "{r:#?}");
    // 12 in 300 (4 %), four times the limit: shown above it at 95 %, a breach, not severe.
    let window = sample(Some(side(300, 12, 120.0)), Some(side(0, 0, 0.0)));
    let r = run(&with_stage(window, (250, 10), (0, 0)), &cfg);
    let abs = gate(&r, "error-rate");
    assert_eq!((abs.verdict, abs.severe), (Verdict::Fail, false), "{r:#?}");
}

/// A quiet stable side's window is short of the minimum, but its stage is not: the absolute
/// limits still follow stable's own rate, read from the stage.
#[test]
fn stage_judgment_reads_stable_s_base_rate_from_the_stage() {
    let cfg = staged();
    // Stable errs 1.5 % (limit raised to 3 %); the canary's window 2 % on 400 requests.
    let window = sample(Some(side(400, 8, 120.0)), Some(side(150, 2, 110.0)));
    let r = run(&with_stage(window, (900, 18), (6_000, 90)), &cfg);
    let abs = gate(&r, "error-rate");
    assert_eq!(abs.verdict, Verdict::Pass, "{r:#?}");
    assert!(
        abs.detail.contains("twice stable's 1.50 %"),
        "{}",
        abs.detail
    );
}

/// `with_stage` plus requests over a 250 ms threshold: (canary, stable) slow counts.
fn with_slow(
    window: HealthSample,
    canary: (u64, u64),
    stable: (u64, u64),
    slow: (u64, u64),
) -> HealthSample {
    let mut s = with_stage(window, canary, stable);
    if let Some(t) = s.stage.as_mut() {
        t.slow = Some(SlowTotals {
            threshold_ms: 250.0,
            canary: slow.0,
            stable: slow.1,
        });
    }
    s
}

#[test]
fn slow_requests_this_stage_show_a_slower_canary_before_its_window_p99_can() {
    let cfg = staged();
    // 40 canary requests in the window: too few for a p99, the window gate waits.
    let window = || sample(Some(side(40, 0, 120.0)), Some(side(5_000, 10, 110.0)));
    // 150 canary requests this stage, 18 of them over stable's p99 (12 %) against stable's
    // 1 %: decisive at once, no sustain.
    let decisive = with_slow(window(), (150, 0), (30_000, 60), (18, 300));
    let r = run(&decisive, &cfg);
    let g = gate(&r, "p99-vs-stable");
    assert_eq!(g.verdict, Verdict::Fail, "{g:#?}");
    assert!(
        g.detail.starts_with(
            "canary requests over stable's p99 (250 ms): 12.00 % (18/150) vs stable 1.00 % this stage: slower (sequential test at 95 %: likelihood ratio "
        ),
        "{}",
        g.detail
    );
    assert_eq!(g.required_for, Duration::ZERO);
    assert!(!g.severe);
    // The breach tracker keeps that: sustained on the first sample that shows it (it once
    // put every non-severe gate but the error test on breach_for, 5 more minutes).
    let judged = judge(&decisive, &cfg, &mut BreachTracker::default());
    let g = gate(&judged, "p99-vs-stable");
    assert!(g.sustained, "{g:#?}");
    assert_eq!(g.required_for, Duration::ZERO);

    // A canary like stable (2 of 150): the window's text stands, with the test beside it.
    let r = run(&with_slow(window(), (150, 0), (30_000, 60), (2, 300)), &cfg);
    let g = gate(&r, "p99-vs-stable");
    assert_eq!(g.verdict, Verdict::Pass, "{g:#?}");
    assert!(
        g.detail.starts_with(
            "not judged yet: 40 canary requests in the window < 100 a p99 needs; canary requests over stable's p99 (250 ms): 1.33 % (2/150) vs stable 1.00 % this stage: not shown slower (sequential test at 95 %: likelihood ratio "
        ),
        "{}",
        g.detail
    );
    assert_eq!(g.leaning, None);

    // Between the two (6 of 150, 4 %): not shown, but leaning slower.
    let r = run(&with_slow(window(), (150, 0), (30_000, 60), (6, 300)), &cfg);
    let g = gate(&r, "p99-vs-stable");
    assert_eq!(g.verdict, Verdict::Pass, "{g:#?}");
    let leaning = g.leaning.as_deref().expect("leans slower");
    assert!(
        leaning.starts_with("canary requests over stable's p99 (250 ms): 4.00 % (6/150) vs stable 1.00 % this stage: looks slower so far (likelihood ratio "),
        "{leaning}"
    );

    // Window judgment never reads them.
    let r = run(
        &with_slow(window(), (150, 0), (30_000, 60), (18, 300)),
        &window_gates(),
    );
    assert_ne!(gate(&r, "p99-vs-stable").verdict, Verdict::Fail);
}

proptest! {
    /// More slow canary requests never turn the latency test's Fail into anything else.
    #[test]
    fn the_latency_test_is_monotone_in_slow_canary_requests(
        requests in 1u64..2_000,
        slow in 0u64..2_000,
        more in 1u64..50,
    ) {
        let slow = slow.min(requests);
        let cfg = staged();
        let judge_slow = |k: u64| {
            let s = with_slow(
                sample(Some(side(40, 0, 120.0)), Some(side(5_000, 10, 110.0))),
                (requests, 0),
                (30_000, 60),
                (k.min(requests), 300),
            );
            run(&s, &cfg).gate("p99-vs-stable").unwrap().verdict
        };
        if judge_slow(slow) == Verdict::Fail {
            prop_assert_eq!(judge_slow(slow + more), Verdict::Fail);
        }
    }
}
