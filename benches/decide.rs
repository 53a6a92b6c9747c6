//! `progression::decide` and the gate evaluation that feeds it, per health sample.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use rollout_tui::domain::actions::{self, Action, Context, NewRollout};
use rollout_tui::domain::health::{
    BreachTracker, Counts, GateConfig, HealthSample, Judgment, SideStats, SlowTotals, StageTotals,
    evaluate,
};
use rollout_tui::domain::progression::{Policy, decide};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset, Rollout};

fn bench(c: &mut Criterion) {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let plan = Plan::preset(PlanPreset::Canary);
    let new = NewRollout {
        id: "current".into(),
        version: "2.0.0".into(),
        stable_version: None,
        plan: plan.clone(),
        hashing: Hashing::FractionalV1,
        stable_revision: Some("svc-00001".into()),
        canary_revision: Some("svc-00002".into()),
        canary_users: vec!["alec@getaifactory.com".into()],
        on_breach: None,
    };
    let (mut fields, _) = actions::create(&new, "bench", t0).unwrap();
    let rollout = Rollout::from_fields("current", &fields).unwrap();
    let ctx = Context {
        actor: "bench",
        now: t0,
        default_plan: &plan,
        freeze_windows: &[],
    };
    let t = actions::apply(&rollout, &fields, &Action::Advance, ctx).unwrap();
    t.patch.apply_to(&mut fields);
    let rollout = Rollout::from_fields("current", &fields).unwrap();

    let now = t0 + chrono::Duration::minutes(11);
    let side = |requests, errors, p99| SideStats {
        requests,
        errors,
        p50_ms: Some(p99 / 3.0),
        p75_ms: Some(p99 / 2.0),
        p95_ms: Some(p99 * 0.8),
        p99_ms: Some(p99),
        newest_point_at: Some(now - chrono::Duration::seconds(10)),
    };
    let sample = HealthSample {
        taken_at: now,
        window: Duration::from_secs(300),
        stable: Some(side(20_000, 30, 240.0)),
        canary: Some(side(1_000, 2, 250.0)),
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    };
    let cfg = GateConfig {
        judgment: Judgment::Window,
        ..GateConfig::default()
    };
    let mut report = evaluate(&sample, &cfg, now);
    BreachTracker::default().observe(&mut report);
    let policy = Policy::default();

    c.bench_function("decide (canary plan, 7 gates)", |b| {
        b.iter(|| {
            decide(
                black_box(&rollout),
                black_box(Some(&report)),
                black_box(now),
                &policy,
            )
        })
    });
    c.bench_function("evaluate + observe + decide (window judgment)", |b| {
        let mut tracker = BreachTracker::default();
        b.iter(|| {
            let mut r = evaluate(black_box(&sample), &cfg, now);
            tracker.observe(&mut r);
            decide(&rollout, Some(&r), now, &policy)
        })
    });
    // The default: sequential tests (errors, and requests over stable's p99) and the
    // evidence bound on the stage's 11 minutes.
    let staged_sample = HealthSample {
        stage: Some(StageTotals {
            since: t0 + chrono::Duration::minutes(0),
            stable: Counts {
                requests: 44_000,
                errors: 66,
            },
            canary: Counts {
                requests: 2_200,
                errors: 4,
            },
            slow: Some(SlowTotals {
                threshold_ms: 384.0,
                stable: 440,
                canary: 24,
            }),
        }),
        ..sample.clone()
    };
    let staged = GateConfig::default();
    c.bench_function("evaluate + observe + decide (stage judgment)", |b| {
        let mut tracker = BreachTracker::default();
        b.iter(|| {
            let mut r = evaluate(black_box(&staged_sample), &staged, now);
            tracker.observe(&mut r);
            decide(&rollout, Some(&r), now, &policy)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
