//! Guard rails: what an operator's move would skip over. Widening a rollout while a gate
//! fails or cannot tell, or before the stage's minimum time, is allowed only with a typed
//! reason, and the audit log records what was overridden.

use chrono::{DateTime, Utc};

use crate::domain::health::{GateReport, Verdict};
use crate::domain::rollout::Rollout;
use crate::domain::units::{Percent, format_elapsed};

/// What a move that widens `r` (advance, promote, a higher percentage) overrides, in the
/// operator's words ("p99-vs-stable FAIL", "16h59m of bake time skipped"). Empty when the
/// move is healthy. `report` is the newest judgment; none at all counts as unknown health.
///
/// At 0 % only the canary users reach the canary, so the gates cannot tell and the
/// operator's own testing is the evidence: there only failing gates and bake time count.
pub fn widening_risks(r: &Rollout, report: Option<&GateReport>, now: DateTime<Utc>) -> Vec<String> {
    let mut risks = Vec::new();
    let on_random_users = r.percentage > Percent::ZERO;
    match report {
        None if on_random_users => risks.push("health unknown (no sample yet)".to_string()),
        None => {}
        Some(report) => {
            let named = |verdict: Verdict| {
                report
                    .gates
                    .iter()
                    .filter(move |g| g.verdict == verdict)
                    .map(|g| g.name.as_str())
            };
            risks.extend(named(Verdict::Fail).map(|g| format!("{g} FAIL")));
            let unsure: Vec<&str> = named(Verdict::Inconclusive).collect();
            if !unsure.is_empty() && on_random_users {
                risks.push(format!("{} inconclusive", unsure.join(", ")));
            }
        }
    }
    if let Some(left) = r.bake_time_left(now).filter(|left| !left.is_zero()) {
        risks.push(format!("{} of bake time skipped", format_elapsed(left)));
    }
    risks
}

/// The audit reason of an overriding move: what it overrode, then the operator's words.
pub fn override_reason(risks: &[String], reason: &str) -> String {
    format!("override: {} — {reason}", risks.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::GateResult;
    use crate::domain::rollout::Status;
    use crate::domain::rollout::{Plan, PlanPreset};
    use chrono::Duration;
    use serde_json::{Value, json};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::minutes(minutes)
    }

    fn rollout_in_stage(entered: i64) -> Rollout {
        let plan = Plan::preset(PlanPreset::Canary);
        let doc = json!({
            "version": "2.0.0",
            "status": "canary",
            "rolloutPercentage": plan.stages[1].percent.to_json(),
            "plan": plan.to_json(),
            "currentStage": 1,
            "stageEnteredAt": at(entered).to_rfc3339(),
        });
        let Value::Object(fields) = doc else {
            unreachable!()
        };
        Rollout::from_fields("checkout", &fields).unwrap()
    }

    fn gate(name: &str, verdict: Verdict) -> GateResult {
        GateResult {
            name: name.into(),
            verdict,
            detail: String::new(),
            observed: None,
            threshold: None,
            severe: false,
            failing_since: None,
            sustained: false,
            required_for: std::time::Duration::from_secs(300),
            leaning: None,
        }
    }

    fn report(gates: Vec<GateResult>) -> GateReport {
        GateReport {
            evaluated_at: at(0),
            sample_taken_at: at(0),
            gates,
            verdict: Verdict::Pass,
        }
    }

    #[test]
    fn a_healthy_move_after_the_bake_time_risks_nothing() {
        let r = rollout_in_stage(0);
        let min = r.stage().unwrap().1.min_duration.as_secs() as i64 / 60;
        let ok = report(vec![gate("error-rate", Verdict::Pass)]);
        assert!(widening_risks(&r, Some(&ok), at(min)).is_empty());
    }

    #[test]
    fn failing_and_inconclusive_gates_and_bake_time_are_named() {
        let r = rollout_in_stage(0);
        let bad = report(vec![
            gate("error-rate", Verdict::Pass),
            gate("p99-vs-stable", Verdict::Fail),
            gate("min-requests", Verdict::Inconclusive),
            gate("freshness", Verdict::Inconclusive),
        ]);
        let risks = widening_risks(&r, Some(&bad), at(1));
        let min = r.stage().unwrap().1.min_duration;
        let left = format_elapsed(min - std::time::Duration::from_secs(60));
        assert_eq!(
            risks,
            vec![
                "p99-vs-stable FAIL".to_string(),
                "min-requests, freshness inconclusive".to_string(),
                format!("{left} of bake time skipped"),
            ]
        );
    }

    #[test]
    fn no_judgment_is_not_healthy() {
        let r = rollout_in_stage(-10_000);
        assert_eq!(
            widening_risks(&r, None, at(0)),
            vec!["health unknown (no sample yet)".to_string()]
        );
    }

    #[test]
    fn a_rollout_not_yet_started_has_no_bake_time() {
        let mut r = rollout_in_stage(0);
        r.status = Status::Planned;
        r.percentage = Percent::ZERO;
        let ok = report(vec![gate("error-rate", Verdict::Pass)]);
        assert!(widening_risks(&r, Some(&ok), at(1)).is_empty());
    }

    #[test]
    fn at_zero_percent_only_failures_and_bake_time_count() {
        let mut r = rollout_in_stage(0);
        r.percentage = Percent::ZERO;
        let unsure = report(vec![
            gate("min-requests", Verdict::Inconclusive),
            gate("error-rate", Verdict::Fail),
        ]);
        let late = at(100_000);
        assert_eq!(
            widening_risks(&r, Some(&unsure), late),
            vec!["error-rate FAIL".to_string()]
        );
        assert!(widening_risks(&r, None, late).is_empty());
    }

    #[test]
    fn the_reason_names_what_was_overridden() {
        let text = override_reason(
            &["p99 FAIL".into(), "4m of bake time skipped".into()],
            "hotfix",
        );
        assert_eq!(text, "override: p99 FAIL, 4m of bake time skipped — hotfix");
    }
}
