//! Texts the cockpit's reducer puts in toasts and dialogs.

use crate::domain::actions::Action;
use crate::domain::rollout::{Plan, Rollout};
use crate::domain::text::escape;
use crate::domain::units::Percent;

use super::rollout::stage_position;

/// An action named in a sentence: "Your set percentage was not written".
pub fn action_label(action: &Action) -> &'static str {
    match action {
        Action::SetPercent(_) => "set percentage",
        Action::AddUsers { .. } => "add user",
        Action::RemoveUsers { .. } => "remove user",
        Action::Advance => "advance",
        Action::Pause { .. } => "pause",
        Action::Retreat { .. } => "retreat",
        Action::Resume => "resume",
        Action::Rollback { .. } => "rollback",
        Action::Promote => "promote",
        Action::SetRevisions { .. } => "set revisions",
        Action::Overridden { action, .. } => action_label(action),
    }
}

/// The move an advance would make: "from stage 1/5 'canary users' (0%)" and
/// "to   stage 2/5 '5%' (5%)" (or "to   complete" after the last stage).
pub fn advance_lines(r: &Rollout, plan: &Plan) -> [String; 2] {
    let total = Some(plan.stages.len());
    let from = match r.stage() {
        Some((i, s)) => stage_position(i, total, &s.name, r.percentage),
        None => r.percentage.to_string(),
    };
    let next = r.next_stage_index(plan);
    let to = match plan.stages.get(next) {
        Some(s) => stage_position(next, total, &s.name, s.percent),
        None => "complete".to_string(),
    };
    [format!("from {from}"), format!("to   {to}")]
}

/// A percentage jump that asks first: "a jump from 5% to 100%".
pub fn jump_line(from: Option<Percent>, to: Percent) -> String {
    let from = from.map_or("?".into(), |c| c.to_string());
    format!("a jump from {from} to {to}")
}

/// What auto-progression did on its own, for a toast; Err when it could not act.
pub fn auto_acted(id: &str, result: &Result<String, String>) -> Result<String, String> {
    match result {
        Ok(summary) => Ok(format!("{id}: auto: {}", escape(summary))),
        Err(why) => Err(format!(
            "{id}: auto-progression could not act: {}",
            escape(why)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollout::PlanPreset;
    use serde_json::json;

    fn rollout(stage: u64, percent: u64) -> Rollout {
        let serde_json::Value::Object(m) = json!({
            "version": "2.0.0",
            "status": "progressive",
            "rolloutPercentage": percent,
            "plan": Plan::preset(PlanPreset::Canary).to_json(),
            "currentStage": stage,
        }) else {
            unreachable!()
        };
        Rollout::from_fields("web", &m).unwrap()
    }

    #[test]
    fn advance_lines_name_both_stages() {
        let plan = Plan::preset(PlanPreset::Canary);
        assert_eq!(
            advance_lines(&rollout(1, 5), &plan),
            [
                "from stage 2/5 '5%' (5%)".to_string(),
                "to   stage 3/5 '25%' (25%)".to_string()
            ]
        );
        assert_eq!(advance_lines(&rollout(4, 100), &plan)[1], "to   complete");
    }

    #[test]
    fn labels_and_lines() {
        assert_eq!(
            action_label(&Action::SetPercent(Percent::FULL)),
            "set percentage"
        );
        assert_eq!(
            action_label(&Action::Rollback { reason: "x".into() }),
            "rollback"
        );
        let five = Percent::from_hundredths(500).unwrap();
        assert_eq!(
            jump_line(Some(five), Percent::FULL),
            "a jump from 5% to 100%"
        );
        assert_eq!(jump_line(None, Percent::FULL), "a jump from ? to 100%");
        assert_eq!(
            auto_acted("web", &Ok("advanced to 25%".into())),
            Ok("web: auto: advanced to 25%".into())
        );
        assert_eq!(
            auto_acted("web", &Err("lease lost".into())),
            Err("web: auto-progression could not act: lease lost".into())
        );
    }
}
