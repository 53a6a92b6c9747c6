//! The simulator: deterministic, follows the rollout's traffic split, and regressions
//! injected at run time show in the next window. Also the per-rollout batch every source
//! without grouped queries uses (`sample_many`'s default).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rollout_tui::domain::health::{GateConfig, HealthSample, Verdict, evaluate};
use rollout_tui::domain::rollout::Rollout;
use rollout_tui::metrics::{
    MetricsConfig, MetricsSource, Regression, SAMPLE_CONCURRENCY, build_source, sample_all,
};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(minutes)
}

fn rollout(id: &str, percent: f64, users: &[&str]) -> Rollout {
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": percent,
        "canaryUsers": users, "stableRevision": "s-1", "canaryRevision": "s-2",
    });
    Rollout::from_fields(id, doc.as_object().unwrap()).unwrap()
}

fn simulator(extra: &str) -> std::sync::Arc<dyn MetricsSource> {
    let cfg: MetricsConfig = toml::from_str(&format!("kind = \"simulator\"\n{extra}")).unwrap();
    cfg.validate().unwrap();
    build_source(&cfg).unwrap().unwrap()
}

async fn samples(src: &dyn MetricsSource, r: &Rollout, times: &[i64]) -> Vec<HealthSample> {
    let mut out = Vec::new();
    for &m in times {
        out.push(src.sample(r, at(m)).await);
    }
    out
}

#[tokio::test]
async fn same_seed_same_numbers_in_any_order() {
    let r = rollout("web", 25.0, &["a@example.com"]);
    let a = simulator("[simulator]\nseed = 42");
    let b = simulator("[simulator]\nseed = 42");
    let forward = samples(a.as_ref(), &r, &[0, 1, 2, 60]).await;
    let mut backward = samples(b.as_ref(), &r, &[60, 2, 1, 0]).await;
    backward.reverse();
    assert_eq!(forward, backward);
    // Windows move: consecutive samples differ.
    assert_ne!(forward[0].canary, forward[1].canary);

    let other = simulator("[simulator]\nseed = 43");
    assert_ne!(samples(other.as_ref(), &r, &[0]).await[0], forward[0]);
    // Rollouts get their own traffic.
    let r2 = rollout("api", 25.0, &["a@example.com"]);
    assert_ne!(a.sample(&r2, at(0)).await.canary, forward[0].canary);
}

#[tokio::test]
async fn traffic_follows_the_percentage_and_canary_users() {
    let src = simulator("");
    let s = src.sample(&rollout("web", 0.0, &[]), at(0)).await;
    let canary = s.canary.clone().unwrap();
    assert_eq!(
        (canary.requests, canary.errors, canary.p99_ms),
        (0, 0, None)
    );
    assert_eq!(canary.error_rate(), None);
    let stable = s.stable.clone().unwrap();
    assert!(
        (14_000..16_000).contains(&stable.requests),
        "50/s for 300s: {stable:?}"
    );
    let report = evaluate(&s, &GateConfig::default(), at(0));
    assert_eq!(
        report.gate("min-requests").unwrap().verdict,
        Verdict::Inconclusive
    );
    assert_eq!(
        report.verdict,
        Verdict::Inconclusive,
        "zero traffic is never healthy"
    );

    // Two canary users at 0.5/s each: ~300 canary requests in 5 minutes.
    let s = src.sample(&rollout("web", 0.0, &["a", "b"]), at(0)).await;
    let n = s.canary.unwrap().requests;
    assert!((240..360).contains(&n), "{n}");

    // Rolled back (or not started): canary users go to stable like everyone else.
    for status in ["rolled-back", "planned"] {
        let doc = json!({
            "version": "2.0.0", "status": status, "rolloutPercentage": 0,
            "canaryUsers": ["a", "b"], "stableRevision": "s-1", "canaryRevision": "s-2",
        });
        let r = Rollout::from_fields("web", doc.as_object().unwrap()).unwrap();
        let s = src.sample(&r, at(0)).await;
        assert_eq!(s.canary.unwrap().requests, 0, "{status}");
        assert!(s.stable.unwrap().requests > 14_000, "{status}");
    }

    // 5 %: 2.5/s, ~750 in 5 minutes.
    let s = src.sample(&rollout("web", 5.0, &[]), at(0)).await;
    let n = s.canary.as_ref().unwrap().requests;
    assert!((650..850).contains(&n), "{n}");
    // The window's own gates: this rollout has no stage start to count from.
    let window_gates = GateConfig {
        judgment: rollout_tui::domain::health::Judgment::Window,
        ..GateConfig::default()
    };
    let report = evaluate(&s, &window_gates, at(0));
    for gate in ["freshness", "min-requests", "error-rate", "p99-vs-stable"] {
        assert_eq!(
            report.gate(gate).unwrap().verdict,
            Verdict::Pass,
            "{report:#?}"
        );
    }
}

#[tokio::test]
async fn injected_regressions_show_in_the_next_window() {
    let src = simulator("[simulator]\nrequests_per_second = 100.0");
    let sim = src.simulator().expect("the simulator behind the source");
    // In its stage for the hour before the first sample.
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 25,
        "stableRevision": "s-1", "canaryRevision": "s-2",
        "stageEnteredAt": at(-60).to_rfc3339(),
    });
    let r = Rollout::from_fields("web", doc.as_object().unwrap()).unwrap();
    let gates = GateConfig::default();
    let before = src.sample(&r, at(0)).await;
    let rate = before.canary.as_ref().unwrap().error_rate().unwrap();
    assert!(rate < 0.01, "{rate}");
    // The stage counts requests over stable's p99 (120 ms x e^(0.5 x 2.326)): about 1 % on
    // each side of a healthy canary.
    let stage = before.stage.clone().expect("stage totals");
    let slow = stage.slow.expect("slow requests");
    assert!((slow.threshold_ms - 384.0).abs() < 0.1, "{slow:?}");
    for (n, k) in [
        (stage.stable.requests, slow.stable),
        (stage.canary.requests, slow.canary),
    ] {
        let share = k as f64 / n as f64;
        assert!((0.005..0.015).contains(&share), "{k} of {n}: {slow:?}");
    }

    sim.inject("web", Regression::ErrorSpike { error_rate: 0.2 });
    let after = src.sample(&r, at(5)).await;
    let rate = after.canary.as_ref().unwrap().error_rate().unwrap();
    assert!((0.17..0.23).contains(&rate), "{rate}");
    let report = evaluate(&after, &gates, at(5));
    let g = report.gate("error-rate").unwrap();
    assert_eq!(g.verdict, Verdict::Fail);
    assert!(g.severe, "20 % is past the 5 % severe line");
    // Stable and other rollouts are untouched.
    assert!(after.stable.as_ref().unwrap().error_rate().unwrap() < 0.01);
    let other = src.sample(&rollout("api", 25.0, &[]), at(5)).await;
    assert!(other.canary.unwrap().error_rate().unwrap() < 0.01);

    sim.clear("web");
    sim.inject("web", Regression::LatencyShift { ms: 800.0 });
    let slow = src.sample(&r, at(10)).await;
    let (c, s) = (slow.canary.as_ref().unwrap(), slow.stable.as_ref().unwrap());
    assert!(
        c.p99_ms.unwrap() > s.p99_ms.unwrap() + 700.0,
        "{c:?} vs {s:?}"
    );
    // 800 ms more puts every canary request of the stage over the threshold.
    let stage = slow.stage.clone().expect("stage totals");
    assert_eq!(stage.slow.unwrap().canary, stage.canary.requests);
    assert!(stage.canary.requests > 0);
    assert_eq!(
        evaluate(&slow, &gates, at(10))
            .gate("p99-vs-stable")
            .unwrap()
            .verdict,
        Verdict::Fail
    );

    sim.inject("web", Regression::TrafficDrop);
    let dropped = src.sample(&r, at(15)).await;
    assert_eq!(dropped.canary.as_ref().unwrap().requests, 0);
    assert_eq!(
        evaluate(&dropped, &gates, at(15)).verdict,
        Verdict::Inconclusive
    );

    // Cleared, the same time gives exactly the numbers from before.
    sim.clear("web");
    assert!(sim.regressions("web").is_empty());
    assert_eq!(src.sample(&r, at(0)).await, before);
}

/// The clock runs 600x: checked against the real time between two readings, bracketed by
/// `Instant`s on both sides, so however late this thread runs the check holds.
#[test]
fn the_demo_clock_runs_compressed() {
    let src = simulator("[simulator]\ntime_compression = 600.0");
    let sim = src.simulator().unwrap();
    let before_a = Instant::now();
    let a = sim.now();
    let after_a = Instant::now();
    // A 10-minute stage passes in one real second: wait for two simulated minutes.
    let deadline = after_a + Duration::from_secs(30);
    let (b, before_b, after_b) = loop {
        let before_b = Instant::now();
        let b = sim.now();
        let after_b = Instant::now();
        if b - a >= chrono::Duration::seconds(120) {
            break (b, before_b, after_b);
        }
        assert!(
            after_b < deadline,
            "the demo clock stands still: {a} then {b}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let advanced = (b - a).to_std().unwrap();
    // Between the readings, at least `before_b - after_a` and at most `after_b - before_a`
    // passed; a millisecond of slack for rounding.
    let (least, most) = (before_b - after_a, after_b - before_a);
    let slack = Duration::from_millis(1);
    println!("demo clock: {advanced:?} simulated in {least:?}..{most:?} real");
    assert!(
        advanced + slack >= least * 600 && advanced <= most * 600 + slack,
        "{advanced:?} simulated in {least:?}..{most:?} real is not 600x"
    );
    assert!(src.describe().contains("600x"), "{}", src.describe());
}

#[tokio::test]
async fn history_is_what_would_have_been_sampled() {
    let src = simulator("");
    let r = rollout("web", 5.0, &["a"]);
    let step = std::time::Duration::from_secs(15);
    let past = src.history(&r, at(10), step, 4).await.unwrap();
    assert_eq!(past.len(), 4);
    for (k, h) in past.iter().enumerate() {
        let when = at(10) - chrono::Duration::seconds(15 * (3 - k as i64));
        assert_eq!(h.taken_at, when);
        // The windows a chart draws; stage totals are the live sample's alone (a day of
        // per-second slots for every point of a chart is what they would cost).
        let live = src.sample(&r, when).await;
        assert!(live.stage.is_some());
        assert_eq!(h.stage, None);
        assert_eq!(
            *h,
            HealthSample {
                stage: None,
                ..live
            }
        );
    }
}

#[tokio::test]
async fn a_batch_is_each_rollouts_own_sample() {
    let src = simulator("[simulator]\nseed = 9");
    let rollouts: Vec<Rollout> = (0..30)
        .map(|k| rollout(&format!("r{k}"), (k % 4) as f64 * 10.0, &[]))
        .collect();
    let mut alone = Vec::new();
    for r in &rollouts {
        alone.push(src.sample(r, at(3)).await);
    }
    assert_eq!(src.sample_many(&rollouts, at(3)).await, alone);
    assert_eq!(sample_all(src, &rollouts, at(3)).await, alone);
}

/// Counts samples in flight and holds each until released; rollout `r7` panics.
struct Held {
    in_flight: AtomicUsize,
    most: AtomicUsize,
    release: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl MetricsSource for Held {
    fn describe(&self) -> String {
        "held".into()
    }

    async fn sample(&self, r: &Rollout, now: DateTime<Utc>) -> HealthSample {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        let _ = self.release.clone().wait_for(|go| *go).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        assert_ne!(r.id, "r7", "a source bug");
        HealthSample {
            taken_at: now,
            window: Duration::from_secs(300),
            stable: None,
            canary: None,
            source_error: Some(format!("answer for {}", r.id)),
            ingestion_delay: Duration::ZERO,
            stage: None,
        }
    }
}

#[tokio::test]
async fn the_per_rollout_batch_is_bounded_ordered_and_survives_a_panic() {
    let (go, release) = tokio::sync::watch::channel(false);
    let src = Arc::new(Held {
        in_flight: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        release,
    });
    let rollouts: Vec<Rollout> = (0..40)
        .map(|k| rollout(&format!("r{k}"), 5.0, &[]))
        .collect();
    let batch = {
        let (src, rollouts) = (src.clone() as Arc<dyn MetricsSource>, rollouts.clone());
        tokio::spawn(async move { sample_all(src, &rollouts, at(0)).await })
    };
    let waited = Instant::now();
    while src.in_flight.load(Ordering::SeqCst) < SAMPLE_CONCURRENCY {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "never {SAMPLE_CONCURRENCY} at once"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(src.most.load(Ordering::SeqCst), SAMPLE_CONCURRENCY);
    go.send(true).unwrap();
    let samples = batch.await.unwrap();
    assert_eq!(src.most.load(Ordering::SeqCst), SAMPLE_CONCURRENCY);
    assert_eq!(samples.len(), 40);
    for (k, s) in samples.iter().enumerate() {
        let want = if k == 7 {
            "sampling rollout r7 crashed".to_string()
        } else {
            format!("answer for r{k}")
        };
        assert_eq!(s.source_error.as_deref(), Some(want.as_str()));
    }
}

#[tokio::test]
async fn stage_totals_count_every_second_since_the_stage_began() {
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 25.0,
        "stableRevision": "s-1", "canaryRevision": "s-2",
        "stageEnteredAt": at(-30).to_rfc3339(),
    });
    let r = Rollout::from_fields("web", doc.as_object().unwrap()).unwrap();
    let src = simulator("window = \"5m\"");
    let s = src.sample(&r, at(0)).await;
    let stage = s.stage.clone().expect("the simulator counts the stage");
    assert_eq!(stage.since, at(-30));
    let window = s.canary.unwrap();
    // Thirty minutes hold six five-minute windows' worth, and the window is part of them.
    assert!(stage.canary.requests > 5 * window.requests, "{stage:?}");
    assert!(stage.canary.requests < 7 * window.requests, "{stage:?}");
    // Sampled again a minute on, the stage holds the earlier count and a minute more.
    let later = src.sample(&r, at(1)).await.stage.unwrap();
    assert!(later.canary.requests > stage.canary.requests);
    // A stage older than a day counts the last day only.
    let old = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 25.0,
        "stableRevision": "s-1", "canaryRevision": "s-2",
        "stageEnteredAt": at(-3 * 24 * 60).to_rfc3339(),
    });
    let r = Rollout::from_fields("web", old.as_object().unwrap()).unwrap();
    let capped = src.sample(&r, at(0)).await.stage.unwrap();
    assert_eq!(capped.since, at(-24 * 60));
}
