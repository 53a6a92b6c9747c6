//! A rollout's labels: status, stage, the stage clock, its plan and its user lists.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::actions::UserList;
use crate::domain::health::GateConfig;
use crate::domain::rollout::{Plan, Rollout, Stage, Status, stage_phrase};
use crate::domain::text::escape;
use crate::domain::units::{Percent, format_duration, format_elapsed};

/// A status as people read it (the wall shouts it in capitals).
pub fn status_label(status: Status) -> &'static str {
    status.as_str()
}

/// The stage column: "2/5 25%", or "no plan".
pub fn stage_label(r: &Rollout) -> String {
    match (r.stage(), &r.plan) {
        (Some((i, s)), Some(p)) => format!("{}/{} {}", i + 1, p.stages.len(), escape(&s.name)),
        _ => "no plan".into(),
    }
}

/// A stage named in a sentence: "stage 2/5 '5%' (5%)"; without `total`, "stage 2 '5%' (5%)".
pub fn stage_position(index: usize, total: Option<usize>, name: &str, percent: Percent) -> String {
    escape(&stage_phrase(index, total, name, percent)).into_owned()
}

/// How long a running rollout has been in its stage and when it may move on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageClock {
    /// How long the rollout has been in its stage.
    pub elapsed: chrono::Duration,
    /// "4m00s"
    pub in_stage: String,
    /// "may advance in 6m00s", or "minimum time met"
    pub countdown: String,
}

/// The stage clock of a rollout that is running (or paused) in a stage; None otherwise.
pub fn stage_clock(r: &Rollout, now: DateTime<Utc>) -> Option<StageClock> {
    let left = r.bake_time_left(now)?;
    let in_stage = r.time_in_stage(now)?;
    Some(StageClock {
        elapsed: chrono::Duration::from_std(in_stage).unwrap_or_default(),
        in_stage: format_elapsed(in_stage),
        countdown: countdown(left),
    })
}

/// The time left before a stage's minimum is met.
pub fn countdown(wait: Duration) -> String {
    if wait.is_zero() {
        "minimum time met".into()
    } else {
        format!("may advance in {}", format_elapsed(wait))
    }
}

/// One stage of a plan listing: "2. 5%              5%  min 10m  ", with " confirm" where
/// an operator must confirm. The front end puts its own marker before it.
pub fn stage_row(index: usize, s: &Stage) -> String {
    let confirm = if s.confirm { " confirm" } else { "" };
    format!(
        "{}. {:<14} {:>6}  min {:<5}{confirm}",
        index + 1,
        escape(&s.name),
        s.percent.to_string(),
        format_duration(s.min_duration)
    )
}

/// A plan on one line: "0% -> 5% (10m) -> 25% (30m) -> 50% (1h) -> 100%".
pub fn plan_line(plan: &Plan) -> String {
    plan.stages
        .iter()
        .map(|s| {
            if s.min_duration.is_zero() {
                s.percent.to_string()
            } else {
                format!("{} ({})", s.percent, format_duration(s.min_duration))
            }
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// The first few keys of a user list and how many more there are.
pub fn user_preview(users: &[String]) -> String {
    const SHOWN: usize = 5;
    if users.is_empty() {
        return "-".into();
    }
    let mut s = users
        .iter()
        .take(SHOWN)
        .map(|u| escape(u))
        .collect::<Vec<_>>()
        .join(", ");
    if users.len() > SHOWN {
        s.push_str(&format!(
            " … (+{}; `users list` shows all)",
            users.len() - SHOWN
        ));
    }
    s
}

/// A user list as a title: "Canary users".
pub fn list_title(list: UserList) -> String {
    let label = list.label();
    let mut c = label.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Which gates are switched off, and whose gates these are: a gate that is off never shows
/// in a report, so its absence is said out loud.
pub fn gates_off(own: Option<&GateConfig>, config: &GateConfig) -> String {
    let (gates, whose) = match own {
        Some(g) => (g, "this rollout's own gates"),
        None => (config, "gates from the config"),
    };
    let off = gates.off_gates();
    if off.is_empty() {
        format!("every gate on ({whose})")
    } else {
        format!("gates off: {} ({whose})", off.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollout::PlanPreset;
    use serde_json::json;

    fn rollout(fields: serde_json::Value) -> Rollout {
        let serde_json::Value::Object(m) = fields else {
            unreachable!()
        };
        Rollout::from_fields("web", &m).unwrap()
    }

    fn running() -> Rollout {
        rollout(json!({
            "version": "2.0.0",
            "status": "progressive",
            "rolloutPercentage": 5,
            "plan": Plan::preset(PlanPreset::Canary).to_json(),
            "currentStage": 1,
            "stageEnteredAt": "2026-03-01T08:00:00Z",
            "startedAt": "2026-03-01T07:00:00Z",
        }))
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn stage_labels() {
        let r = running();
        assert_eq!(status_label(r.status), "progressive");
        assert_eq!(status_label(Status::RolledBack), "rolled-back");
        assert_eq!(stage_label(&r), "2/5 5%");
        let bare = rollout(json!({"version": "1", "status": "canary", "rolloutPercentage": 0}));
        assert_eq!(stage_label(&bare), "no plan");
        let p = Percent::from_hundredths(2500).unwrap();
        assert_eq!(
            stage_position(2, Some(5), "25%", p),
            "stage 3/5 '25%' (25%)"
        );
        assert_eq!(
            stage_position(0, None, "a\u{1b}b", p),
            r"stage 1 'a\x1bb' (25%)"
        );
    }

    #[test]
    fn stage_clock_counts_down_to_the_minimum() {
        let r = running();
        assert_eq!(
            stage_clock(&r, at("2026-03-01T08:04:00Z")),
            Some(StageClock {
                elapsed: chrono::Duration::minutes(4),
                in_stage: "4m00s".into(),
                countdown: "may advance in 6m00s".into(),
            })
        );
        assert_eq!(
            stage_clock(&r, at("2026-03-01T08:30:00Z"))
                .unwrap()
                .countdown,
            "minimum time met"
        );
        let mut done = r.clone();
        done.status = Status::Complete;
        assert_eq!(stage_clock(&done, at("2026-03-01T08:04:00Z")), None);
        assert_eq!(countdown(Duration::ZERO), "minimum time met");
        assert_eq!(countdown(Duration::from_secs(252)), "may advance in 4m12s");
    }

    #[test]
    fn plans() {
        let plan = Plan::preset(PlanPreset::Canary);
        assert_eq!(
            plan_line(&plan),
            "0% -> 5% (10m) -> 25% (30m) -> 50% (1h) -> 100%"
        );
        assert_eq!(
            stage_row(1, &plan.stages[1]),
            "2. 5%                 5%  min 10m  "
        );
        assert_eq!(
            stage_row(4, &plan.stages[4]),
            "5. 100%             100%  min 0s    confirm"
        );
    }

    #[test]
    fn user_lists() {
        assert_eq!(user_preview(&[]), "-");
        let few: Vec<String> = vec!["a@x.com".into(), "abc\u{202e}fed".into()];
        assert_eq!(user_preview(&few), r"a@x.com, abc\u{202e}fed");
        let many: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
        assert_eq!(
            user_preview(&many),
            "u0, u1, u2, u3, u4 … (+2; `users list` shows all)"
        );
        assert_eq!(list_title(UserList::Canary), "Canary users");
        assert_eq!(list_title(UserList::Excluded), "Excluded users");
    }

    #[test]
    fn gates_off_says_whose_gates() {
        let config = GateConfig::default();
        assert_eq!(
            gates_off(None, &config),
            "gates off: success-rate, p99 (gates from the config)"
        );
        let all_on = GateConfig {
            min_success_rate: Some(0.99),
            max_p99_ms: Some(500.0),
            ..GateConfig::default()
        };
        assert_eq!(
            gates_off(Some(&all_on), &config),
            "every gate on (this rollout's own gates)"
        );
    }
}
