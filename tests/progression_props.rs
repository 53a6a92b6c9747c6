//! Property tests of `progression::decide`: whatever the gates say, the machine
//! never skips a stage, never advances on Fail or Inconclusive, never moves a
//! finished rollout, and respects minimum durations and confirmations.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use rollout_tui::domain::health::{GateReport, GateResult, Verdict};
use rollout_tui::domain::progression::{
    Because, ConfirmPolicy, Decision, HaltPolicy, Policy, decide,
};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset, Rollout, Status};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn gate(verdict: Verdict, severe: bool, sustained: bool) -> GateResult {
    GateResult {
        name: "error-rate".into(),
        verdict,
        detail: format!("{verdict:?} gate"),
        observed: Some(0.02),
        threshold: Some(0.01),
        severe,
        failing_since: (verdict == Verdict::Fail).then(t0),
        sustained: verdict == Verdict::Fail && sustained,
        required_for: Duration::from_secs(300),
        leaning: None,
    }
}

fn report(gates: Vec<GateResult>, taken_at: DateTime<Utc>) -> GateReport {
    let verdict = if gates.iter().any(|g| g.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if gates.iter().any(|g| g.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    GateReport {
        evaluated_at: taken_at,
        sample_taken_at: taken_at,
        gates,
        verdict,
    }
}

fn rollout(preset: PlanPreset, stage: usize, status: Status, entered: DateTime<Utc>) -> Rollout {
    let plan = Plan::preset(preset);
    let stage = stage.min(plan.last_index());
    Rollout {
        id: "r".into(),
        version: "1".into(),
        stable_version: None,
        status,
        canary_users: vec![],
        excluded_users: vec![],
        percentage: plan.stages[stage].percent,
        strategy: None,
        stable_revision: None,
        canary_revision: None,
        started_at: Some(entered),
        last_updated_at: Some(entered),
        completed_at: None,
        approved_by: None,
        rollback_reason: None,
        pause_reason: None,
        plan: Some(plan),
        current_stage: Some(stage),
        stage_entered_at: Some(entered),
        gates: None,
        hashing: Hashing::FractionalV1,
        on_breach: None,
    }
}

fn any_preset() -> impl Strategy<Value = PlanPreset> {
    prop_oneof![
        Just(PlanPreset::Canary),
        Just(PlanPreset::Tiers),
        Just(PlanPreset::Cohorts)
    ]
}

fn any_status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![
            Just(ConfirmPolicy::EveryStage),
            Just(ConfirmPolicy::Risky),
            Just(ConfirmPolicy::Never)
        ],
        any::<bool>(),
        prop_oneof![
            Just(HaltPolicy::Pause),
            Just(HaltPolicy::Retreat),
            Just(HaltPolicy::Rollback)
        ],
    )
        .prop_map(|(confirm, auto_rollback, on_breach)| Policy {
            shadow: false,
            shadow_rollouts: Vec::new(),
            confirm,
            on_breach,
            auto_rollback,
            evidence_wait: rollout_tui::domain::progression::DEFAULT_EVIDENCE_WAIT,
        })
}

fn any_gate() -> impl Strategy<Value = GateResult> {
    (
        prop_oneof![
            Just(Verdict::Pass),
            Just(Verdict::Fail),
            Just(Verdict::Inconclusive)
        ],
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(v, severe, sustained, leaning)| {
            let mut g = gate(v, severe && v == Verdict::Fail, sustained);
            if leaning && v != Verdict::Fail {
                g.leaning = Some("the canary looks worse so far".into());
            }
            g
        })
}

/// A scenario: rollout, optional health report, the time of decision, policy.
fn any_case() -> impl Strategy<Value = (Rollout, Option<GateReport>, DateTime<Utc>, Policy)> {
    (
        any_preset(),
        0usize..5,
        any_status(),
        prop::collection::vec(any_gate(), 0..5),
        any::<bool>(),
        0i64..(30 * 24 * 3600),
        -600i64..600,
        any_policy(),
    )
        .prop_map(
            |(preset, stage, status, gates, has_health, elapsed, sample_offset, policy)| {
                let entered = t0();
                let now = entered + chrono::Duration::seconds(elapsed);
                let r = rollout(preset, stage, status, entered);
                let taken = (now + chrono::Duration::seconds(sample_offset.min(0)))
                    .max(entered - chrono::Duration::seconds(60));
                let h = has_health.then(|| report(gates, taken));
                (r, h, now, policy)
            },
        )
}

fn is_forward(d: &Decision) -> bool {
    matches!(
        d,
        Decision::Advance(_) | Decision::AwaitConfirmation(_) | Decision::Complete
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn never_skips_a_stage((r, h, now, policy) in any_case()) {
        if let Decision::Advance(next) | Decision::AwaitConfirmation(next) = decide(&r, h.as_ref(), now, &policy) {
            prop_assert_eq!(next.index, r.current_stage.unwrap() + 1);
            prop_assert_eq!(next.percent, r.plan.as_ref().unwrap().stages[next.index].percent);
        }
    }

    #[test]
    fn never_moves_forward_without_passing_gates((r, h, now, policy) in any_case()) {
        let d = decide(&r, h.as_ref(), now, &policy);
        if is_forward(&d) {
            let report = h.as_ref().expect("moving forward needs health data");
            prop_assert!(report.gates.iter().all(|g| g.verdict != Verdict::Fail));
            prop_assert!(report.sample_taken_at >= r.stage_entered_at.unwrap());
            // Only a person may widen on evidence that is short; the driver alone never does.
            let asked_with_reason = matches!(&d, Decision::AwaitConfirmation(n) if n.because.is_some());
            if !asked_with_reason {
                prop_assert_eq!(report.verdict, Verdict::Pass);
                prop_assert!(report.gates.iter().all(|g| g.verdict == Verdict::Pass));
            }
        }
    }

    #[test]
    fn never_widens_while_the_evidence_leans_worse((r, h, now, policy) in any_case()) {
        let d = decide(&r, h.as_ref(), now, &policy);
        let leaning = h.as_ref().is_some_and(|h| h.gates.iter().any(|g| g.leaning.is_some()));
        if leaning && is_forward(&d) {
            // Only a person, and only after twice the wait for evidence past the stage's time.
            let asked = matches!(&d, Decision::AwaitConfirmation(n) if matches!(n.because, Some(Because::LooksWorse(_))));
            prop_assert!(asked, "{:?}", d);
            let (_, stage) = r.stage().unwrap();
            prop_assert!(r.time_in_stage(now).unwrap() >= stage.min_duration + policy.evidence_wait * 2);
        }
    }

    #[test]
    fn finished_rollouts_never_move((r, h, now, policy) in any_case()) {
        let d = decide(&r, h.as_ref(), now, &policy);
        if r.status.is_terminal() || r.status == Status::Planned {
            prop_assert!(matches!(d, Decision::Hold(_)), "{:?} -> {:?}", r.status, d);
        }
        if r.status == Status::Paused {
            prop_assert!(matches!(d, Decision::Hold(_) | Decision::Rollback(_)), "paused -> {:?}", d);
        }
    }

    #[test]
    fn respects_minimum_time_in_stage((r, h, now, policy) in any_case()) {
        let d = decide(&r, h.as_ref(), now, &policy);
        if is_forward(&d) {
            let (_, stage) = r.stage().unwrap();
            prop_assert!(r.time_in_stage(now).unwrap() >= stage.min_duration);
        }
    }

    #[test]
    fn respects_confirmations((r, h, now, policy) in any_case()) {
        if let Decision::Advance(next) = decide(&r, h.as_ref(), now, &policy) {
            let stage = &r.plan.as_ref().unwrap().stages[next.index];
            prop_assert!(policy.confirm != ConfirmPolicy::EveryStage);
            if policy.confirm == ConfirmPolicy::Risky {
                prop_assert!(!stage.confirm, "stage marked confirm advanced without asking");
                prop_assert!(stage.percent.points_above(r.percentage) <= 25.0);
                prop_assert!(stage.percent.hundredths() < 10_000);
            }
        }
    }

    #[test]
    fn sustained_severe_breach_always_reaches_rollback((r, _h, now, policy) in any_case()) {
        let running = matches!(r.status, Status::Canary | Status::Progressive | Status::Paused);
        let severe = report(vec![gate(Verdict::Pass, false, false), gate(Verdict::Fail, true, true)], now);
        let d = decide(&r, Some(&severe), now, &policy);
        prop_assert_eq!(running, matches!(d, Decision::Rollback(_)), "{:?} -> {:?}", r.status, d);
    }

    #[test]
    fn no_health_data_holds((r, _h, now, policy) in any_case()) {
        prop_assert!(matches!(decide(&r, None, now, &policy), Decision::Hold(_)));
    }
}

/// A stage whose evidence leans worse is held past its time, said so, and put to a person
/// only after twice the wait for evidence; passing gates without a lean advance at once.
#[test]
fn a_canary_that_looks_worse_holds_its_stage_and_is_asked_about_late() {
    let policy = Policy {
        confirm: ConfirmPolicy::Never,
        ..Policy::default()
    };
    let r = rollout(PlanPreset::Canary, 1, Status::Canary, t0());
    let min = r.stage().unwrap().1.min_duration;
    let at = |after: Duration| t0() + chrono::Duration::from_std(after).unwrap();
    let mut relative = gate(Verdict::Pass, false, false);
    relative.name = "error-rate-vs-stable".into();
    let lean = "canary 1.73 % (26/1500) vs stable 1.00 % this stage: looks worse so far (likelihood ratio 12.0 of the 500.0 that decides)";
    let leaning = |now| {
        let mut g = relative.clone();
        g.leaning = Some(lean.into());
        report(vec![g], now)
    };

    let now = at(min);
    assert_eq!(
        decide(&r, Some(&report(vec![relative.clone()], now)), now, &policy),
        Decision::Advance(rollout_tui::domain::progression::NextStage {
            index: 2,
            name: "25%".into(),
            percent: r.plan.as_ref().unwrap().stages[2].percent,
            because: None,
        })
    );
    assert_eq!(
        decide(&r, Some(&leaning(now)), now, &policy),
        Decision::Hold(format!(
            "the canary looks worse so far, not shown: holding stage 2 '5%' (5%) while the tests decide (1h00m until the operator is asked): {lean}"
        ))
    );
    let now = at(min + policy.evidence_wait * 2 - Duration::from_secs(60));
    assert!(matches!(
        decide(&r, Some(&leaning(now)), now, &policy),
        Decision::Hold(_)
    ));
    let now = at(min + policy.evidence_wait * 2);
    let Decision::AwaitConfirmation(next) = decide(&r, Some(&leaning(now)), now, &policy) else {
        panic!("asks after twice the wait");
    };
    assert_eq!(next.index, 2);
    assert_eq!(
        next.because,
        Some(Because::LooksWorse(format!(
            "the canary still looks worse 1h00m past the stage's minimum time, not shown ({lean}): advance anyway, keep waiting, or roll back?"
        )))
    );
}
