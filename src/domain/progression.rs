//! The auto-progression state machine. `decide` is pure: given the rollout as
//! read, the latest gate report (already annotated by a `BreachTracker`), the
//! time and the policy, it says what to do next. It never skips a stage, never
//! advances on failing or inconclusive gates, never moves a finished rollout.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::health::{GateReport, Verdict};
use super::rollout::{Rollout, Stage, Status, stage_phrase};
use super::units::{Percent, format_duration, format_elapsed};

/// When the machine asks an operator before advancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfirmPolicy {
    /// Before every stage.
    EveryStage,
    /// Where the plan's stage says `confirm`, on a jump of more than 25 points, and into 100 %.
    #[default]
    Risky,
    /// Never; the plan's `confirm` flags are ignored too.
    Never,
}

/// What a sustained, non-severe breach does to a running canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaltPolicy {
    /// Pause where it is: the canary keeps serving its percentage until a person acts.
    Pause,
    /// Back to the canary-users stage at 0 % and paused: random users return to stable,
    /// the canary users keep the new version while a person looks.
    #[default]
    Retreat,
    /// Roll back: everyone on stable.
    Rollback,
}

impl HaltPolicy {
    pub const ALL: [HaltPolicy; 3] = [HaltPolicy::Pause, HaltPolicy::Retreat, HaltPolicy::Rollback];

    pub fn as_str(self) -> &'static str {
        match self {
            HaltPolicy::Pause => "pause",
            HaltPolicy::Retreat => "retreat",
            HaltPolicy::Rollback => "rollback",
        }
    }

    pub fn parse(text: &str) -> Option<HaltPolicy> {
        HaltPolicy::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default, deny_unknown_fields)]
pub struct Policy {
    pub confirm: ConfirmPolicy,
    /// What a sustained non-severe breach does (a rollout's own `onBreach` wins).
    pub on_breach: HaltPolicy,
    /// Roll back without asking on a sustained severe breach; otherwise the rollback is proposed.
    pub auto_rollback: bool,
    /// How long past a stage's minimum time the driver waits for enough evidence before it
    /// asks the operator (advance, keep waiting, or roll back) instead of waiting forever.
    #[serde(with = "crate::domain::health::duration_text")]
    pub evidence_wait: std::time::Duration,
    /// Shadow mode for every rollout: auto-progression judges and records what it would do
    /// ("would advance", "would roll back", with the gate report) and changes nothing.
    pub shadow: bool,
    /// Shadow mode for these rollouts only.
    pub shadow_rollouts: Vec<String>,
}

impl Policy {
    /// What a sustained breach does to `rollout`: its own `onBreach`, else the policy's.
    pub fn on_breach_for(&self, rollout: &Rollout) -> HaltPolicy {
        rollout.on_breach.unwrap_or(self.on_breach)
    }

    /// Whether auto-progression of `rollout_id` only says what it would do.
    pub fn shadow_for(&self, rollout_id: &str) -> bool {
        self.shadow || self.shadow_rollouts.iter().any(|id| id == rollout_id)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            confirm: ConfirmPolicy::Risky,
            on_breach: HaltPolicy::default(),
            auto_rollback: true,
            evidence_wait: DEFAULT_EVIDENCE_WAIT,
            shadow: false,
            shadow_rollouts: Vec::new(),
        }
    }
}

/// How long past a stage's minimum time a driver waits for enough evidence before asking.
pub const DEFAULT_EVIDENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A jump bigger than this many percentage points counts as risky.
pub const RISKY_JUMP_POINTS: f64 = 25.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStage {
    pub index: usize,
    pub name: String,
    pub percent: Percent,
    /// Why the operator is asked when it is not the confirmation policy.
    pub because: Option<Because>,
}

/// Why auto-progression asks about a stage the confirmation policy would not ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Because {
    /// The canary-users stage's time is over: its traffic is the operator's own testing.
    UsersTested(String),
    /// The evidence stayed short past the stage's minimum time and the wait for it.
    ThinEvidence(String),
    /// The canary still looks worse, not shown, past twice the wait for evidence.
    LooksWorse(String),
}

impl Because {
    pub fn text(&self) -> &str {
        match self {
            Because::UsersTested(t) | Because::ThinEvidence(t) | Because::LooksWorse(t) => t,
        }
    }

    /// Asked with evidence short of a pass (a careful operator keeps waiting on these).
    pub fn unproven(&self) -> bool {
        matches!(self, Because::ThinEvidence(_) | Because::LooksWorse(_))
    }
}

impl NextStage {
    /// "stage 3 '25%' (25%)"
    pub fn phrase(&self) -> String {
        stage_phrase(self.index, None, &self.name, self.percent)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Hold(String),
    AwaitConfirmation(NextStage),
    Advance(NextStage),
    /// Pause the rollout: a sustained breach.
    Halt(String),
    /// Roll back: a sustained severe breach.
    Rollback(String),
    /// The last stage has passed its gates and its minimum time.
    Complete,
}

impl Decision {
    pub fn label(&self) -> String {
        match self {
            Decision::Hold(why) => format!("holding: {why}"),
            Decision::AwaitConfirmation(n) => match &n.because {
                None => format!("ready for {}: waiting for confirmation", n.phrase()),
                Some(why) => format!("asking about {}: {}", n.phrase(), why.text()),
            },
            Decision::Advance(n) => format!("advancing to {}", n.phrase()),
            Decision::Halt(why) => format!("halting: {why}"),
            Decision::Rollback(why) => format!("rolling back: {why}"),
            Decision::Complete => "completing: last stage healthy for its minimum time".into(),
        }
    }
}

/// The canary requests the sample had, as the request-count gate saw them.
fn canary_requests(report: &GateReport) -> Option<f64> {
    report.gate("min-requests").and_then(|g| g.observed)
}

/// Does moving from `current` percent into `next` need an operator's yes?
pub fn needs_confirmation(policy: ConfirmPolicy, current: Percent, next: &Stage) -> bool {
    match policy {
        ConfirmPolicy::EveryStage => true,
        ConfirmPolicy::Never => false,
        ConfirmPolicy::Risky => {
            next.confirm
                || next.percent == Percent::FULL
                || next.percent.points_above(current) > RISKY_JUMP_POINTS
        }
    }
}

pub fn decide(
    rollout: &Rollout,
    health: Option<&GateReport>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Decision {
    match rollout.status {
        Status::RolledBack => return Decision::Hold("rolled back: nothing moves".into()),
        Status::Complete => return Decision::Hold("complete: nothing moves".into()),
        Status::Planned => {
            return Decision::Hold("planned: not started; advance by hand to start".into());
        }
        Status::Paused | Status::Canary | Status::Progressive => {}
    }
    let Some(report) = health else {
        return Decision::Hold("no health data yet".into());
    };
    // Evidence from before this stage began says nothing about the current percentage.
    if let Some(entered) = rollout.stage_entered_at
        && report.sample_taken_at < entered
    {
        return Decision::Hold("waiting for a health sample taken in this stage".into());
    }
    let sustained_failures = || {
        report
            .gates
            .iter()
            .filter(|g| g.verdict == Verdict::Fail && g.sustained)
    };
    // A paused rollout still serves its canary, so a severe breach must still reach rollback.
    if let Some(g) = sustained_failures().find(|g| g.severe) {
        return Decision::Rollback(format!(
            "{} (sustained {})",
            g.detail,
            format_duration(g.required_for)
        ));
    }
    if rollout.status == Status::Paused {
        let why = rollout.pause_reason.as_deref().unwrap_or("by an operator");
        return Decision::Hold(format!("paused ({why}); resume to continue"));
    }
    if let Some(g) = sustained_failures().next() {
        return Decision::Halt(format!(
            "{} (sustained {})",
            g.detail,
            format_duration(g.required_for)
        ));
    }
    if let Some(g) = report.gates.iter().find(|g| g.verdict == Verdict::Fail) {
        let progress = g
            .breach_progress(report.sample_taken_at)
            .unwrap_or_else(|| g.detail.clone());
        return Decision::Hold(progress);
    }
    // Not enough evidence yet: said, and (below) asked about once the stage's time is
    // over, rather than waited on forever.
    let short_of_evidence = report
        .gates
        .iter()
        .find(|g| g.verdict == Verdict::Inconclusive)
        .map(|g| {
            if g.detail.starts_with("inconclusive") {
                g.detail.clone()
            } else {
                format!("inconclusive: {}", g.detail)
            }
        });
    if short_of_evidence.is_none() && report.verdict != Verdict::Pass {
        return Decision::Hold(format!("gates did not pass: {}", report.summary()));
    }
    let Some(plan) = rollout.plan.as_ref() else {
        if let Some(why) = short_of_evidence {
            return Decision::Hold(why);
        }
        return Decision::Hold(
            "the document has no plan; advance once by hand to adopt the default plan".into(),
        );
    };
    let current_index = rollout
        .current_stage
        .unwrap_or_else(|| plan.stage_for_percent(rollout.percentage).unwrap_or(0))
        .min(plan.last_index());
    if rollout.next_stage_index(plan) <= current_index {
        let stage = &plan.stages[current_index];
        return Decision::Hold(format!(
            "{} is below {}; advance by hand to enter it",
            rollout.percentage,
            stage_phrase(current_index, None, &stage.name, stage.percent)
        ));
    }
    let current = &plan.stages[current_index];
    let current_phrase = stage_phrase(current_index, None, &current.name, current.percent);
    let with_evidence = |text: String| match &short_of_evidence {
        Some(why) => format!("{text}; {why}"),
        None => text,
    };
    let in_stage = rollout.time_in_stage(now).unwrap_or_default();
    if in_stage < current.min_duration {
        let left = current.min_duration - in_stage;
        return Decision::Hold(with_evidence(format!(
            "waiting {} more in stage",
            format_elapsed(left)
        )));
    }
    let next_stage = |because: Option<Because>| {
        plan.stages.get(current_index + 1).map(|next| NextStage {
            index: current_index + 1,
            name: next.name.clone(),
            percent: next.percent,
            because,
        })
    };
    // Asking about thin evidence is for data that is there and fresh; a source that is down
    // or late is an outage, waited out (and announced), never put to the operator as a move.
    let data_fresh = report
        .gate("freshness")
        .is_none_or(|g| g.verdict == Verdict::Pass);
    // A canary that served nobody has shown nothing: no one is asked to widen on that.
    if data_fresh && canary_requests(report) == Some(0.0) {
        return Decision::Hold(with_evidence(if current.percent == Percent::ZERO {
            format!(
                "{current_phrase} is over, but the canary has served no requests yet: test the new version as a canary user"
            )
        } else {
            format!(
                "the canary served no requests at {}: check that traffic reaches the new version",
                current.percent
            )
        }));
    }
    // Evidence leaning toward a breach it does not show yet: widening would add exposure
    // while the tests decide, so the stage holds; a person is asked only after twice the
    // wait for evidence (a canary that hovers at the line would otherwise hold forever).
    if let Some(why) = report.gates.iter().find_map(|g| g.leaning.as_deref())
        && data_fresh
    {
        let waited = in_stage.saturating_sub(current.min_duration);
        let patience = policy.evidence_wait * 2;
        if waited < patience {
            return Decision::Hold(format!(
                "the canary looks worse so far, not shown: holding {current_phrase} while the tests decide ({} until the operator is asked): {why}",
                format_elapsed(patience - waited)
            ));
        }
        return match next_stage(Some(Because::LooksWorse(format!(
            "the canary still looks worse {} past the stage's minimum time, not shown ({why}): advance anyway, keep waiting, or roll back?",
            format_elapsed(waited)
        )))) {
            Some(next) => Decision::AwaitConfirmation(next),
            None => Decision::Hold(format!("last stage: the canary looks worse so far ({why})")),
        };
    }
    // The canary-users stage's traffic is the operator's own testing: when its time is over
    // and the canary has served them, the operator says whether it looked right, whatever
    // the gates could judge.
    if current.percent == Percent::ZERO && data_fresh {
        // A breach on the canary users' own traffic gets the time to show before anyone is
        // asked to widen (the canary plan's first stage has no minimum time of its own).
        let breach_time = report
            .gates
            .iter()
            .map(|g| g.required_for)
            .max()
            .unwrap_or_default();
        if in_stage < breach_time {
            return Decision::Hold(with_evidence(format!(
                "{current_phrase}: watching the canary users' traffic {} more before asking to widen",
                format_elapsed(breach_time - in_stage)
            )));
        }
        if let Some(next) = next_stage(Some(Because::UsersTested(format!(
            "{current_phrase} is over ({} served); its traffic is your own testing: widen to random users?",
            format_elapsed(in_stage)
        )))) {
            return Decision::AwaitConfirmation(next);
        }
    }
    if let Some(why) = short_of_evidence {
        let waited = in_stage.saturating_sub(current.min_duration);
        if !data_fresh {
            return Decision::Hold(why);
        }
        if waited < policy.evidence_wait {
            return Decision::Hold(format!(
                "stage time served, not enough evidence yet ({} until the operator is asked): {why}",
                format_elapsed(policy.evidence_wait - waited)
            ));
        }
        return match next_stage(Some(Because::ThinEvidence(format!(
            "still not enough evidence {} past the stage's minimum time ({why}): advance anyway, keep waiting, or roll back?",
            format_elapsed(waited)
        )))) {
            Some(next) => Decision::AwaitConfirmation(next),
            None => Decision::Hold(format!("last stage: completes once the gates pass ({why})")),
        };
    }
    let Some(next) = next_stage(None) else {
        return Decision::Complete;
    };
    if needs_confirmation(policy.confirm, rollout.percentage, &plan.stages[next.index]) {
        Decision::AwaitConfirmation(next)
    } else {
        Decision::Advance(next)
    }
}
