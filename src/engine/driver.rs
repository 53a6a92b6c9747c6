//! Auto-progression: holds the rollout's lease, samples health, runs
//! `progression::decide`, and acts on it. `step` is the pure rule; `Driver` is
//! the glue to a store and a metrics source, used by the cockpit and by tests
//! with a compressed clock (time is always passed in).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::judge::{Tracker, judge_with};
use crate::actuator::Actuators;
use crate::domain::actions::{Action, Context};
use crate::domain::event::{Event, EventKind};
use crate::domain::freeze::{self, Freeze, FreezeWindow, Frozen};
use crate::domain::health::{GateConfig, GateReport, HealthSample};
use crate::domain::progression::{Decision, HaltPolicy, NextStage, Policy, decide};
use crate::domain::rollout::{Plan, Rollout, Status};
use crate::metrics::MetricsSource;
use crate::ops::{self, PerformError};
pub use crate::store::LeaseState;
use crate::store::{Lease, LeaseOutcome, RolloutStore, StoredRollout};

/// How long a lease lasts without renewal; a killed driver's lease frees itself after this.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// A driver stops acting this long before its lease runs out.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// What the driver does about a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Nothing,
    Perform(Action),
    AskConfirmation(NextStage),
    /// A rollback the policy does not let the machine do alone: one key from an operator.
    ProposeRollback(String),
}

#[derive(Debug, Clone)]
pub struct StepInput<'a> {
    pub rollout: &'a Rollout,
    pub report: Option<&'a GateReport>,
    pub now: DateTime<Utc>,
    pub policy: &'a Policy,
    /// Our lease, if we hold one.
    pub lease: Option<&'a Lease>,
    /// The operator said no to this stage; do not ask again until the stage changes.
    pub declined_stage: Option<usize>,
    /// A freeze in force: nothing advances (a halt or a rollback still happens).
    pub frozen: Option<&'a Frozen>,
}

/// The pure rule: only a lease holder acts, and only on what `decide` says.
pub fn step(input: &StepInput<'_>) -> (Decision, Step) {
    let lease_ok = input.lease.is_some_and(|l| {
        l.expires_at - chrono::Duration::from_std(LEASE_MARGIN).unwrap_or_default() > input.now
    });
    if !lease_ok {
        return (
            Decision::Hold("not acting: this cockpit does not hold the lease".into()),
            Step::Nothing,
        );
    }
    let decision = match decide(input.rollout, input.report, input.now, input.policy) {
        // Said no: the screen must not keep claiming the machine waits for an answer.
        Decision::AwaitConfirmation(next) if input.declined_stage == Some(next.index) => {
            Decision::Hold(format!(
                "declined by the operator: holding before stage {} '{}' (turn auto off and on to be asked again)",
                next.index + 1,
                next.name
            ))
        }
        Decision::Advance(_) | Decision::Complete | Decision::AwaitConfirmation(_)
            if input.frozen.is_some() =>
        {
            Decision::Hold(format!(
                "{}: not advancing",
                input.frozen.map(Frozen::describe).unwrap_or_default()
            ))
        }
        d => d,
    };
    let step = match &decision {
        Decision::Hold(_) => Step::Nothing,
        Decision::Advance(_) | Decision::Complete => Step::Perform(Action::Advance),
        Decision::AwaitConfirmation(next) => Step::AskConfirmation(next.clone()),
        Decision::Halt(why) => {
            Step::Perform(halt_action(input.policy.on_breach_for(input.rollout), why))
        }
        Decision::Rollback(why) if input.policy.auto_rollback => Step::Perform(Action::Rollback {
            reason: safe_reason(format!("automatic rollback: {why}")),
        }),
        Decision::Rollback(why) => Step::ProposeRollback(why.clone()),
    };
    (decision, step)
}

/// What a sustained breach does, by the rollout's halt policy.
pub fn halt_action(policy: HaltPolicy, why: &str) -> Action {
    match policy {
        HaltPolicy::Pause => Action::Pause {
            reason: Some(safe_reason(format!("auto-halt: {why}"))),
        },
        HaltPolicy::Retreat => Action::Retreat {
            reason: safe_reason(format!("auto-halt: {why}")),
        },
        HaltPolicy::Rollback => Action::Rollback {
            reason: safe_reason(format!("automatic rollback (on_breach = rollback): {why}")),
        },
    }
}

/// While an operator decides on a proposed rollback, nothing may advance: the canary is
/// paused, or with a policy that limits exposure, retreats to its canary users.
pub fn hold_for_proposed_rollback(policy: HaltPolicy, why: &str) -> Action {
    let why = format!("rollback proposed: {why}");
    match policy {
        HaltPolicy::Pause => halt_action(HaltPolicy::Pause, &why),
        HaltPolicy::Retreat | HaltPolicy::Rollback => halt_action(HaltPolicy::Retreat, &why),
    }
}

/// "stage 3 '25%' (25%)": a next stage as decisions name it.
fn stage_words(next: &NextStage) -> String {
    format!(
        "stage {} '{}' ({})",
        next.index + 1,
        next.name,
        next.percent
    )
}

/// A reason the driver writes is built from gate details, which quote what a metrics source
/// said: it must pass the same input rules as an operator's reason, or the halt would be refused.
fn safe_reason(why: String) -> String {
    crate::domain::text::to_safe_line(&why, crate::domain::text::MAX_REASON_CHARS)
}

/// What one tick saw and did.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// The rollout as read for this tick (None when it could not be read).
    pub rollout: Option<Rollout>,
    pub lease: LeaseState,
    pub sample: Option<HealthSample>,
    pub report: Option<GateReport>,
    pub decision: Decision,
    pub step: Step,
    /// The write made for a `Perform` step: its summary, or why it failed.
    pub acted: Option<Result<String, String>>,
}

pub struct Driver {
    store: Arc<dyn RolloutStore>,
    metrics: Arc<dyn MetricsSource>,
    pub id: String,
    pub holder: String,
    policy: Policy,
    default_gates: GateConfig,
    default_plan: Plan,
    tracker: Tracker,
    lease: Option<Lease>,
    declined_stage: Option<usize>,
    last_stage: Option<usize>,
    last_report: Option<GateReport>,
    last_decision: Option<Decision>,
    /// Stages already asked about / stages a rollback was proposed in (recorded once).
    asked_stage: Option<usize>,
    proposed_for: Option<Option<usize>>,
    /// Long enough to outlast the gap between two ticks (see `ticking_every`).
    lease_ttl: Duration,
    /// In shadow mode: the kind and stage of the last "would …" recorded, so each is
    /// recorded once.
    shadow_said: Option<String>,
    freeze_windows: Vec<FreezeWindow>,
    /// What this driver wrote since `take_written`: each rollout as written, and its event.
    written: Vec<(Option<Rollout>, Event)>,
    /// Services whose traffic split each move also sets.
    traffic: Actuators,
}

impl Driver {
    pub fn new(
        store: Arc<dyn RolloutStore>,
        metrics: Arc<dyn MetricsSource>,
        id: &str,
        holder: &str,
        policy: Policy,
        default_gates: GateConfig,
        default_plan: Plan,
    ) -> Driver {
        Driver {
            store,
            metrics,
            id: id.to_string(),
            holder: holder.to_string(),
            policy,
            default_gates,
            default_plan,
            tracker: Tracker::default(),
            lease: None,
            declined_stage: None,
            last_stage: None,
            last_report: None,
            last_decision: None,
            asked_stage: None,
            proposed_for: None,
            lease_ttl: LEASE_TTL,
            shadow_said: None,
            freeze_windows: Vec::new(),
            written: Vec::new(),
            traffic: Actuators::default(),
        }
    }

    /// Every move also sets the service's traffic split where `[actuator]` acts on it.
    pub fn acting_on(mut self, traffic: Actuators) -> Driver {
        self.traffic = traffic;
        self
    }

    /// The config's freeze windows: the driver holds while one is in force.
    pub fn frozen_in(mut self, windows: Vec<FreezeWindow>) -> Driver {
        self.freeze_windows = windows;
        self
    }

    /// The lease is renewed once a tick, so it must last two ticks: a slow
    /// refresh (Cloud Monitoring's minute) must not let the lease lapse between ticks and
    /// two cockpits take turns. A crashed driver's lease then takes as long to expire.
    pub fn ticking_every(mut self, refresh: Duration) -> Driver {
        self.lease_ttl = LEASE_TTL.max(refresh * 2);
        self
    }

    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    fn hold(&self, lease: LeaseState, why: String) -> TickReport {
        TickReport {
            rollout: None,
            lease,
            sample: None,
            report: None,
            decision: Decision::Hold(why),
            step: Step::Nothing,
            acted: None,
        }
    }

    /// Judges with `tracker`, the rollout's one breach history that the engine's sampler
    /// used before auto-progression started: "for 3m of 5m" means the same on every line
    /// of the screen and to the driver.
    pub fn sharing(mut self, tracker: Tracker) -> Driver {
        self.tracker = tracker;
        self
    }

    /// Renews the lease, samples, decides, and performs what the rule allows.
    /// Confirmations and proposed rollbacks are returned, never performed here.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> TickReport {
        let lease = match self
            .store
            .acquire_lease(&self.id, &self.holder, self.lease_ttl, now)
            .await
        {
            Ok(LeaseOutcome::Held(l)) => {
                self.lease = Some(l.clone());
                LeaseState::Held(l)
            }
            Ok(LeaseOutcome::HeldByOther(l)) => {
                self.lease = None;
                LeaseState::HeldByOther(l)
            }
            Err(e) => {
                // Fail safe: without the store there is no lease and nothing is done.
                self.lease = None;
                return self.hold(
                    LeaseState::Unavailable(e.to_string()),
                    format!("store unavailable: {e}"),
                );
            }
        };
        let stored = match self.store.get(&self.id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                // No lease is kept for a rollout that is not there (a mistyped `--auto ID`).
                self.release().await;
                let why = format!("rollout '{}' does not exist", self.id);
                return self.hold(LeaseState::Unavailable(why.clone()), why);
            }
            Err(e) => return self.hold(lease, format!("store unavailable: {e}")),
        };
        let rollout = match stored.parse() {
            Ok(r) => r,
            Err(e) => return self.hold(lease, e.to_string()),
        };
        let stage = rollout.stage().map(|(i, _)| i);
        if stage != self.last_stage {
            self.declined_stage = None;
            self.asked_stage = None;
            self.proposed_for = None;
            self.last_stage = stage;
        }
        let sample = self.metrics.sample(&rollout, now).await;
        let report = judge_with(&self.tracker, &rollout, &sample, &self.default_gates);
        // Fail safe: a freeze flag that cannot be read is taken as set.
        let flag = match self.store.freeze().await {
            Ok(flag) => flag,
            Err(e) => Some(Freeze::unreadable(
                now,
                format!("cannot read the freeze flag: {e}"),
            )),
        };
        let frozen = freeze::frozen_now(flag.as_ref(), &self.freeze_windows, now);
        let (decision, step) = step(&StepInput {
            rollout: &rollout,
            report: Some(&report),
            now,
            policy: &self.policy,
            lease: self.lease.as_ref(),
            declined_stage: self.declined_stage,
            frozen: frozen.as_ref(),
        });
        let (decision, mut step) = if self.policy.shadow_for(&self.id) {
            self.shadow(&rollout, &report, decision, step, now).await
        } else {
            (decision, step)
        };
        let acted = match &step {
            Step::Perform(action) => Some(self.act(&stored, action, &report, now).await),
            // A question is recorded once per stage, with the evidence it was asked on.
            Step::AskConfirmation(next) if self.asked_stage != Some(next.index) => {
                self.asked_stage = Some(next.index);
                let why = format!("asked to confirm {}", stage_words(next));
                self.record_decision(why, &report, now).await;
                None
            }
            // Proposed once per stage: the operator's answer (or Esc) is not asked again
            // every tick; `R` stays one key away. A running canary is paused meanwhile, so
            // nothing advances while the operator decides.
            Step::ProposeRollback(why) if self.proposed_for != Some(stage) => {
                self.proposed_for = Some(stage);
                self.record_decision(format!("proposed rollback: {why}"), &report, now)
                    .await;
                if matches!(rollout.status, Status::Canary | Status::Progressive) {
                    let hold = hold_for_proposed_rollback(self.policy.on_breach_for(&rollout), why);
                    let acted = self.act(&stored, &hold, &report, now).await;
                    // A retreat moved the stage: the proposal stands there too, not made again.
                    if acted.is_ok()
                        && let Some((Some(written), _)) = self.written.last()
                    {
                        self.last_stage = written.stage().map(|(i, _)| i);
                        self.proposed_for = Some(self.last_stage);
                    }
                    Some(acted)
                } else {
                    None
                }
            }
            Step::ProposeRollback(_) => {
                step = Step::Nothing;
                None
            }
            _ => None,
        };
        self.last_report = Some(report.clone());
        self.last_decision = Some(decision.clone());
        TickReport {
            rollout: Some(rollout),
            lease,
            sample: Some(sample),
            report: Some(report),
            decision,
            step,
            acted,
        }
    }

    /// Shadow mode: what the rule would do is said on screen and recorded once (per kind of
    /// move and stage) in the audit log with its gate report; the move itself becomes a hold,
    /// so nothing is written to the rollout.
    async fn shadow(
        &mut self,
        rollout: &Rollout,
        report: &GateReport,
        decision: Decision,
        step: Step,
        now: DateTime<Utc>,
    ) -> (Decision, Step) {
        // The kind keys the record: the numbers in a reason change every sample.
        let (kind, would) = match &step {
            Step::Nothing => return (decision, step),
            Step::Perform(action) => (
                action.kind().as_str().to_string(),
                match (action, &decision) {
                    (Action::Advance, Decision::Advance(next)) => {
                        format!("advance to {}", stage_words(next))
                    }
                    (Action::Advance, _) => "complete the rollout".to_string(),
                    (Action::Rollback { reason }, _) => format!("roll back: {reason}"),
                    (Action::Pause { reason }, _) => {
                        format!("halt: {}", reason.as_deref().unwrap_or_default())
                    }
                    (Action::Retreat { reason }, _) => {
                        format!("retreat to the canary users: {reason}")
                    }
                    (other, _) => other.kind().as_str().to_string(),
                },
            ),
            Step::AskConfirmation(next) => (
                format!("ask {}", next.index),
                format!("ask to confirm {}", stage_words(next)),
            ),
            Step::ProposeRollback(why) => (
                "propose rollback".to_string(),
                format!("propose a rollback: {why}"),
            ),
        };
        let said = format!("{:?} {kind}", rollout.stage().map(|(i, _)| i));
        if self.shadow_said.as_deref() != Some(said.as_str()) {
            self.record_decision(format!("shadow: would {would}"), report, now)
                .await;
            self.shadow_said = Some(said);
        }
        (
            Decision::Hold(format!("shadow: would {would}; changing nothing")),
            Step::Nothing,
        )
    }

    /// Acts on the document the decision was made on: if it changed meanwhile (an operator
    /// advanced during the sample), nothing is written and the next tick decides afresh,
    /// so no stage is ever applied twice.
    async fn act(
        &mut self,
        seen: &StoredRollout,
        action: &Action,
        report: &GateReport,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let evidence: Value = report.to_json();
        let actor = format!("auto:{}", self.holder);
        let ctx = Context {
            actor: &actor,
            now,
            default_plan: &self.default_plan,
            freeze_windows: &self.freeze_windows,
        };
        match ops::perform_on(
            self.store.as_ref(),
            &self.traffic,
            seen,
            action,
            ctx,
            Some(&evidence),
        )
        .await
        {
            Ok(done) => {
                tracing::info!(rollout = %self.id, summary = %done.transition.summary, "auto-progression acted");
                self.written
                    .push((done.stored.parse().ok(), done.transition.event));
                Ok(done.transition.summary)
            }
            // Someone else changed the rollout first: act again only on a fresh decision.
            Err(e @ PerformError::Conflict { .. }) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The changes this driver wrote since the last call, oldest first (for announcing them).
    pub fn take_written(&mut self) -> Vec<(Option<Rollout>, Event)> {
        std::mem::take(&mut self.written)
    }

    /// The operator said yes to `stage`: advance only if the machine still wants that very
    /// stage (nothing moved meanwhile) and this driver still holds the lease.
    pub async fn confirm(&mut self, stage: usize, now: DateTime<Utc>) -> Result<String, String> {
        match &self.last_decision {
            Some(Decision::AwaitConfirmation(next)) if next.index == stage => {}
            _ => {
                return Err("the rollout is no longer waiting for that stage; nothing done".into());
            }
        }
        let lease_ok = self.lease.as_ref().is_some_and(|l| {
            l.expires_at - chrono::Duration::from_std(LEASE_MARGIN).unwrap_or_default() > now
        });
        if !lease_ok {
            return Err("this cockpit no longer holds the lease; nothing done".into());
        }
        let stored = self
            .store
            .get(&self.id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the rollout is gone")?;
        let rollout = stored.parse().map_err(|e| e.to_string())?;
        let plan = rollout
            .plan
            .clone()
            .unwrap_or_else(|| self.default_plan.clone());
        if rollout.next_stage_index(&plan) != stage {
            return Err("the rollout moved since the question was asked; nothing done".into());
        }
        let report = self
            .last_report
            .clone()
            .ok_or("no health report to act on")?;
        let result = self.act(&stored, &Action::Advance, &report, now).await;
        self.last_decision = None;
        result
    }

    /// The operator said no: hold this stage and do not ask again until it changes.
    pub async fn decline(&mut self, stage: usize, now: DateTime<Utc>) {
        self.declined_stage = Some(stage);
        self.last_decision = None;
        if let Some(report) = self.last_report.clone() {
            self.record_decision(
                format!("operator declined stage {}: holding", stage + 1),
                &report,
                now,
            )
            .await;
        }
    }

    /// An audit event for a decision that changed nothing in the document.
    async fn record_decision(&self, reason: String, report: &GateReport, now: DateTime<Utc>) {
        let event = Event {
            rollout_id: self.id.clone(),
            kind: EventKind::Decision,
            actor: format!("auto:{}", self.holder),
            at: now,
            before: Value::Null,
            after: Value::Null,
            reason: Some(safe_reason(reason)),
            gate_report: Some(report.to_json()),
        };
        if let Err(e) = self.store.append_event(&event).await {
            tracing::warn!(rollout = %self.id, error = %e, "could not record an auto-progression decision");
        }
    }

    /// Lets another cockpit take over at once instead of waiting for the lease to expire.
    pub async fn release(&mut self) {
        if self.lease.take().is_some()
            && let Err(e) = self.store.release_lease(&self.id, &self.holder).await
        {
            tracing::warn!(rollout = %self.id, error = %e, "could not release the lease; it expires by itself");
        }
    }
}
