//! The replay core of `backtest` and `simulate`: the driver's own rule run on a virtual
//! clock. Each tick asks a `SampleFeed` for the sample a source would have given, judges it
//! with `health::judge` and one `BreachTracker`, runs `driver::step` (the function the driver
//! runs, with a lease that never expires and no freeze), and moves the in-memory document
//! with `actions::apply` and the patch, exactly as a store write would. Nothing here is
//! async or does IO, so a simulation runs thousands of ticks per millisecond.
//!
//! Choices a replay has to make that a live driver leaves to a person:
//! - a confirmation ask is recorded as "would ask"; with `Asks::Accept` the operator is taken
//!   to say yes at once (the advance follows on the same tick), with `Asks::Decline` the
//!   operator says no and the stage is held as the driver holds it after a no; with
//!   `Asks::Careful` the operator says yes except to a question asked because the evidence
//!   stayed short or looks worse (keeps waiting);
//! - a halt pauses the rollout as the driver would. `Stop::AtDetection` ends the replay there
//!   (simulate: the regression was caught); `Stop::AtEnd` goes on, so a paused rollout can
//!   still be rolled back on a sustained severe breach (backtest shows what followed);
//! - a rollback the policy does not let the machine do alone is recorded as proposed, and the
//!   rollout is paused, as the driver does while the operator decides;
//! - shadow mode and freeze windows are not replayed: the replay says what the driver would do.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::actions::{self, Action, Context};
use crate::domain::event::Event;
use crate::domain::health::{BreachTracker, GateConfig, GateReport, HealthSample, judge};
use crate::domain::progression::{Because, Decision, Policy};
use crate::domain::rollout::{Fields, Plan, Rollout, Status, field, time_to_json};
use crate::domain::units::Percent;
use crate::engine::driver::{Step, StepInput, step};
use crate::store::Lease;

/// The actor a replay's transitions are made by (as the driver's `auto:<holder>`).
pub const ACTOR: &str = "auto:whatif";

/// What a source would have said at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Fed {
    pub sample: HealthSample,
    /// Canary requests served since the previous tick (for the exposure).
    pub canary_served: u64,
}

/// Where a replay's samples come from: a recorded trace, a metrics source's history, or
/// simulated traffic (which follows the rollout's percentage; recorded traffic cannot).
pub trait SampleFeed {
    /// The sample a source would give for `rollout` at `at`, the window ending at `at`;
    /// `previous` is the previous tick (the start for the first one).
    fn feed(&mut self, rollout: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed;
}

/// What a confirmation ask gets in a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Asks {
    /// The operator says yes at once.
    #[default]
    Accept,
    /// The operator says no: the stage is held.
    Decline,
    /// Yes, except to a question asked because the evidence stayed short: that one is
    /// answered "keep waiting" (as `Decline`), as is one asked because the canary looks worse.
    Careful,
}

impl Asks {
    /// The `--asks` value and the JSON field.
    pub fn as_str(self) -> &'static str {
        match self {
            Asks::Accept => "yes",
            Asks::Decline => "no",
            Asks::Careful => "careful",
        }
    }

    /// How the questions are answered, for the output's header.
    pub fn describe(self) -> &'static str {
        match self {
            Asks::Accept => "the operator is assumed to say yes at once",
            Asks::Decline => "the operator says no (keeps the stage)",
            Asks::Careful => {
                "the operator says yes at once, except to a question asked because the evidence stayed short or looks worse (keeps waiting)"
            }
        }
    }
}

/// When a replay ends besides the end of its time or a finished rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stop {
    /// At the first halt, rollback or proposed rollback.
    AtDetection,
    /// Only at the end: a paused rollout may still be rolled back.
    #[default]
    AtEnd,
}

/// Everything a replay runs with besides the rollout and the feed.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The first tick; ticks follow every `tick` up to and including `end`.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tick: Duration,
    /// The configured gates (a rollout's own gates win, as `gates_in_effect` says).
    pub gates: GateConfig,
    pub policy: Policy,
    /// For a document without a plan (as the driver's `default_plan`).
    pub default_plan: Plan,
    pub asks: Asks,
    pub stop: Stop,
}

/// The kinds of decision a replay records (every one that is not a plain hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Advance,
    Ask,
    Declined,
    Halt,
    Rollback,
    ProposedRollback,
    Complete,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Advance => "advance",
            Kind::Ask => "ask",
            Kind::Declined => "declined",
            Kind::Halt => "halt",
            Kind::Rollback => "rollback",
            Kind::ProposedRollback => "proposed-rollback",
            Kind::Complete => "complete",
        }
    }

    /// A halt, a rollback or a proposed rollback: the gates caught something.
    pub fn is_detection(self) -> bool {
        matches!(self, Kind::Halt | Kind::Rollback | Kind::ProposedRollback)
    }
}

/// What had reached the canary by a moment of the replay.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exposure {
    /// Canary requests served since the start.
    pub canary_requests: u64,
    /// The rollout percentage integrated over time, in percentage points x minutes.
    pub percent_minutes: f64,
}

/// One decision that was not a plain hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub kind: Kind,
    /// The stage and percentage the rollout was in when it decided.
    pub stage: Option<(usize, String)>,
    pub percent: Percent,
    /// Where an advance went: the stage entered (None for a completion).
    pub to: Option<(usize, String, Percent)>,
    /// The decision in words (`Decision::label`).
    pub reason: String,
    /// One line of the gate report (`GateReport::summary`) and its verdict.
    pub gates: String,
    pub report: GateReport,
    pub exposure: Exposure,
}

/// A whole replay: its decisions, where it ended, and what moved the document.
#[derive(Debug, Clone)]
pub struct Replay {
    pub records: Vec<Record>,
    /// The rollout as it was after the last tick.
    pub rollout: Rollout,
    pub ended_at: DateTime<Utc>,
    /// Why the last tick held, if it did.
    pub last_hold: Option<String>,
    pub exposure: Exposure,
    /// The audit events the replayed transitions would have written, oldest first.
    pub events: Vec<Event>,
    /// When the rollout first reached 100 %, if it did.
    pub reached_full_at: Option<DateTime<Utc>>,
    pub ticks: u64,
}

impl Replay {
    /// The first halt, rollback or proposed rollback.
    pub fn detection(&self) -> Option<&Record> {
        self.records.iter().find(|r| r.kind.is_detection())
    }

    pub fn asks(&self) -> usize {
        self.records.iter().filter(|r| r.kind == Kind::Ask).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the starting rollout cannot be read: {0}")]
    Document(String),
    #[error("at {at}: the driver's move was refused ({0}); the replay stops", at = .1.to_rfc3339())]
    Refused(String, DateTime<Utc>),
}

/// The in-memory document and the driver's per-stage memory.
struct State {
    id: String,
    fields: Fields,
    rollout: Rollout,
    tracker: BreachTracker,
    declined_stage: Option<usize>,
    asked_stage: Option<usize>,
    proposed_for: Option<Option<usize>>,
    last_stage: Option<usize>,
    events: Vec<Event>,
}

impl State {
    /// Applies `action` as a store write would: the transition's patch on the document,
    /// read back through `Rollout::from_fields`.
    fn perform(
        &mut self,
        action: &Action,
        report: &GateReport,
        setup: &Setup,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        let ctx = Context {
            actor: ACTOR,
            now,
            default_plan: &setup.default_plan,
            freeze_windows: &[],
        };
        let transition = actions::apply(&self.rollout, &self.fields, action, ctx)
            .map_err(|e| ReplayError::Refused(e.to_string(), now))?
            .with_gate_report(report.to_json());
        transition.patch.apply_to(&mut self.fields);
        self.fields
            .insert(field::LAST_UPDATED_AT.into(), time_to_json(now));
        self.rollout = Rollout::from_fields(&self.id, &self.fields)
            .map_err(|e| ReplayError::Refused(e.to_string(), now))?;
        self.events.push(transition.event);
        Ok(())
    }
}

/// The lease a replay holds: its own, never expiring.
fn endless_lease(id: &str, start: DateTime<Utc>) -> Lease {
    Lease {
        rollout_id: id.to_string(),
        holder: "whatif".into(),
        acquired_at: start,
        expires_at: DateTime::<Utc>::MAX_UTC,
    }
}

/// Runs the driver's rule over `setup`'s ticks, starting from the document `fields` of `id`.
pub fn run(
    id: &str,
    fields: Fields,
    setup: &Setup,
    feed: &mut dyn SampleFeed,
) -> Result<Replay, ReplayError> {
    let rollout =
        Rollout::from_fields(id, &fields).map_err(|e| ReplayError::Document(e.to_string()))?;
    let mut state = State {
        id: id.to_string(),
        fields,
        last_stage: rollout.stage().map(|(i, _)| i),
        rollout,
        tracker: BreachTracker::default(),
        declined_stage: None,
        asked_stage: None,
        proposed_for: None,
        events: Vec::new(),
    };
    // A replay judges and acts whatever shadow mode says: it shows what the driver would do.
    let policy = Policy {
        shadow: false,
        shadow_rollouts: Vec::new(),
        ..setup.policy.clone()
    };
    let lease = endless_lease(id, setup.start);
    let tick = chrono::Duration::from_std(setup.tick.max(Duration::from_secs(1)))
        .unwrap_or(chrono::Duration::minutes(1));
    let mut records = Vec::new();
    let mut exposure = Exposure::default();
    let mut reached_full_at = (state.rollout.percentage == Percent::FULL).then_some(setup.start);
    let mut last_hold = None;
    let mut previous = setup.start;
    let mut now = setup.start;
    let mut ticks = 0;
    while now <= setup.end {
        ticks += 1;
        let fed = feed.feed(&state.rollout, previous, now);
        exposure.canary_requests += fed.canary_served;
        exposure.percent_minutes +=
            state.rollout.percentage.as_f64() * (now - previous).num_seconds() as f64 / 60.0;
        previous = now;

        let gates = state.rollout.gates_in_effect(&setup.gates);
        let report = judge(&fed.sample, &gates, &mut state.tracker);
        let stage = state.rollout.stage().map(|(i, _)| i);
        if stage != state.last_stage {
            state.declined_stage = None;
            state.asked_stage = None;
            state.proposed_for = None;
            state.last_stage = stage;
        }
        let (decision, step) = step(&StepInput {
            rollout: &state.rollout,
            report: Some(&report),
            now,
            policy: &policy,
            lease: Some(&lease),
            declined_stage: state.declined_stage,
            frozen: None,
        });
        // Where the rollout was when it decided (not the whole document: this runs every tick).
        let stage_before = state.rollout.stage().map(|(i, s)| (i, s.name.clone()));
        let percent_before = state.rollout.percentage;
        let record = |kind: Kind, reason: String, after: &Rollout, exposure: Exposure| Record {
            at: now,
            kind,
            stage: stage_before.clone(),
            percent: percent_before,
            to: (kind == Kind::Advance)
                .then(|| after.stage().map(|(i, s)| (i, s.name.clone(), s.percent)))
                .flatten(),
            reason,
            gates: report.summary(),
            report: report.clone(),
            exposure,
        };
        last_hold = None;
        match &step {
            Step::Nothing => {
                if let Decision::Hold(why) = &decision {
                    last_hold = Some(why.clone());
                }
            }
            Step::Perform(action) => {
                let kind = match (&decision, action) {
                    (Decision::Complete, _) => Kind::Complete,
                    (_, Action::Advance) => Kind::Advance,
                    (_, Action::Rollback { .. }) => Kind::Rollback,
                    _ => Kind::Halt,
                };
                state.perform(action, &report, setup, now)?;
                records.push(record(kind, decision.label(), &state.rollout, exposure));
            }
            Step::AskConfirmation(next) => {
                if state.asked_stage != Some(next.index) {
                    state.asked_stage = Some(next.index);
                    records.push(record(
                        Kind::Ask,
                        decision.label(),
                        &state.rollout,
                        exposure,
                    ));
                }
                let thin = next.because.as_ref().is_some_and(Because::unproven);
                match setup.asks {
                    // `Driver::confirm`: the machine still wants this very stage, so it advances.
                    Asks::Careful if !thin => {
                        state.perform(&Action::Advance, &report, setup, now)?;
                        let said = format!("advancing to {} (confirmed)", next.phrase());
                        records.push(record(Kind::Advance, said, &state.rollout, exposure));
                    }
                    Asks::Accept => {
                        state.perform(&Action::Advance, &report, setup, now)?;
                        let said = format!("advancing to {} (confirmed)", next.phrase());
                        records.push(record(Kind::Advance, said, &state.rollout, exposure));
                    }
                    Asks::Decline | Asks::Careful => {
                        state.declined_stage = Some(next.index);
                        let said = format!("operator declined {}: holding", next.phrase());
                        records.push(record(Kind::Declined, said, &state.rollout, exposure));
                    }
                }
            }
            Step::ProposeRollback(why) => {
                if state.proposed_for != Some(stage) {
                    state.proposed_for = Some(stage);
                    // As the driver: a running canary is paused while the operator decides.
                    if matches!(state.rollout.status, Status::Canary | Status::Progressive) {
                        let hold = crate::engine::driver::hold_for_proposed_rollback(
                            setup.policy.on_breach_for(&state.rollout),
                            why,
                        );
                        state.perform(&hold, &report, setup, now)?;
                        // A retreat moved the stage: the proposal stands there too, not
                        // made again.
                        state.last_stage = state.rollout.stage().map(|(i, _)| i);
                        state.proposed_for = Some(state.last_stage);
                    }
                    records.push(record(
                        Kind::ProposedRollback,
                        format!("proposing a rollback: {why}"),
                        &state.rollout,
                        exposure,
                    ));
                }
            }
        }
        if reached_full_at.is_none() && state.rollout.percentage == Percent::FULL {
            reached_full_at = Some(now);
        }
        let detected = records
            .last()
            .is_some_and(|r| r.at == now && r.kind.is_detection());
        if state.rollout.status.is_terminal() || (setup.stop == Stop::AtDetection && detected) {
            break;
        }
        now += tick;
    }
    Ok(Replay {
        records,
        rollout: state.rollout,
        ended_at: previous,
        last_hold,
        exposure,
        events: state.events,
        reached_full_at,
        ticks,
    })
}

/// The document a replay starts from: a rollout created at `start` in its plan's first
/// stage, as `create` writes it.
pub fn new_rollout(
    id: &str,
    plan: &Plan,
    canary_users: &[String],
    start: DateTime<Utc>,
) -> Result<Fields, String> {
    let new = actions::NewRollout {
        id: id.to_string(),
        version: "replayed".into(),
        stable_version: None,
        plan: plan.clone(),
        hashing: crate::domain::rollout::Hashing::default(),
        stable_revision: None,
        canary_revision: None,
        canary_users: canary_users.to_vec(),
        on_breach: None,
    };
    actions::create(&new, ACTOR, start)
        .map(|(fields, _)| fields)
        .map_err(|e| e.to_string())
}

/// The document a replay of a stored rollout starts from: that rollout (its users,
/// revisions, own gates and hashing) as `create` would have written it at `start` in the
/// first stage of `plan`, whatever stage it was really in then.
pub fn restarted(rollout: &Rollout, plan: &Plan, start: DateTime<Utc>) -> Result<Fields, String> {
    let first = plan
        .stages
        .first()
        .ok_or("a plan needs at least one stage")?;
    let mut f = Fields::new();
    f.insert(field::VERSION.into(), Value::from(rollout.version.clone()));
    f.insert(
        field::STATUS.into(),
        Value::from(Status::running_at(first.percent).as_str()),
    );
    f.insert(
        field::CANARY_USERS.into(),
        Value::from(rollout.canary_users.clone()),
    );
    f.insert(
        field::EXCLUDED_USERS.into(),
        Value::from(rollout.excluded_users.clone()),
    );
    f.insert(field::ROLLOUT_PERCENTAGE.into(), first.percent.to_json());
    for (name, value) in [
        (field::STABLE_REVISION, &rollout.stable_revision),
        (field::CANARY_REVISION, &rollout.canary_revision),
    ] {
        if let Some(v) = value {
            f.insert(name.into(), Value::from(v.clone()));
        }
    }
    f.insert(field::PLAN.into(), plan.to_json());
    f.insert(field::CURRENT_STAGE.into(), Value::from(0));
    if let Some(gates) = &rollout.gates {
        f.insert(
            field::GATES.into(),
            serde_json::to_value(gates).map_err(|e| e.to_string())?,
        );
    }
    f.insert(field::HASHING.into(), Value::from(rollout.hashing.as_str()));
    f.insert(field::STARTED_AT.into(), time_to_json(start));
    f.insert(field::STAGE_ENTERED_AT.into(), time_to_json(start));
    f.insert(field::LAST_UPDATED_AT.into(), time_to_json(start));
    Rollout::from_fields(&rollout.id, &f).map_err(|e| e.to_string())?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::SideStats;
    use crate::domain::rollout::PlanPreset;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap()
    }

    fn minutes(m: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::minutes(m)
    }

    /// Both sides busy with fixed numbers; the canary's error rate and p99 as given, or no
    /// data at all for the canary.
    struct Fixed {
        canary_error_rate: f64,
        canary_p99: f64,
        canary_missing: bool,
    }

    fn healthy() -> Fixed {
        Fixed {
            canary_error_rate: 0.001,
            canary_p99: 200.0,
            canary_missing: false,
        }
    }

    impl SampleFeed for Fixed {
        fn feed(&mut self, _: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed {
            let side = |rate: f64, p99: f64| SideStats {
                requests: 10_000,
                errors: (10_000.0 * rate) as u64,
                p50_ms: Some(50.0),
                p75_ms: None,
                p95_ms: Some(120.0),
                p99_ms: Some(p99),
                newest_point_at: Some(at),
            };
            Fed {
                sample: HealthSample {
                    taken_at: at,
                    window: Duration::from_secs(300),
                    stable: Some(side(0.001, 200.0)),
                    canary: (!self.canary_missing)
                        .then(|| side(self.canary_error_rate, self.canary_p99)),
                    source_error: None,
                    ingestion_delay: Duration::ZERO,
                    stage: None,
                },
                canary_served: (at - previous).num_minutes() as u64 * 100,
            }
        }
    }

    /// Window judgment: these feeds are windows without stage totals.
    fn setup(hours: i64) -> Setup {
        Setup {
            start: t0(),
            end: t0() + chrono::Duration::hours(hours),
            tick: Duration::from_secs(60),
            gates: GateConfig {
                judgment: crate::domain::health::Judgment::Window,
                ..GateConfig::default()
            },
            policy: Policy::default(),
            default_plan: Plan::preset(PlanPreset::Canary),
            asks: Asks::Accept,
            stop: Stop::AtEnd,
        }
    }

    fn replay(setup: &Setup, feed: &mut dyn SampleFeed) -> Replay {
        let plan = Plan::preset(PlanPreset::Canary);
        let fields = new_rollout("web", &plan, &["ann".into()], setup.start).unwrap();
        run("web", fields, setup, feed).unwrap()
    }

    fn kinds(r: &Replay) -> Vec<(i64, Kind)> {
        r.records
            .iter()
            .map(|x| ((x.at - t0()).num_minutes(), x.kind))
            .collect()
    }

    #[test]
    fn a_healthy_canary_goes_through_every_stage_at_its_minimum_times() {
        let r = replay(&setup(4), &mut healthy());
        assert_eq!(
            kinds(&r),
            vec![
                // The canary-users stage asks when its time is over (its traffic is the
                // operator's own testing), and the replay's operator says yes.
                (5, Kind::Ask),
                (5, Kind::Advance),
                (15, Kind::Advance),
                (45, Kind::Advance),
                (105, Kind::Ask),
                (105, Kind::Advance),
                (106, Kind::Complete),
            ]
        );
        assert_eq!(r.rollout.status, Status::Complete);
        assert_eq!(r.reached_full_at, Some(minutes(105)));
        assert_eq!(r.ended_at, minutes(106));
        assert_eq!(r.asks(), 2);
        assert!(r.detection().is_none());
        let into_25 = &r.records[2];
        assert_eq!(into_25.percent, Percent::from_hundredths(500).unwrap());
        assert_eq!(
            into_25.to,
            Some((2, "25%".into(), Percent::from_hundredths(2500).unwrap()))
        );
        assert_eq!(into_25.gates, "all 5 gates pass");
        // Canary users from minute 0 to 5, 5 % from 5 to 15; the exposure is what had been
        // served before the move (this feed serves the canary 100 requests a minute).
        assert_eq!(into_25.exposure.percent_minutes, 5.0 * 10.0);
        assert_eq!(into_25.exposure.canary_requests, 15 * 100);
        // By the end: 5 % x 10 + 25 % x 30 + 50 % x 60 + 100 % x 1 minutes.
        assert_eq!(r.exposure.percent_minutes, 50.0 + 750.0 + 3000.0 + 100.0);
        // The transitions are the ones a store would have recorded.
        assert_eq!(r.events.len(), 5);
        assert!(
            r.events
                .iter()
                .all(|e| e.actor == ACTOR && e.gate_report.is_some())
        );
    }

    #[test]
    fn a_severe_error_regression_is_rolled_back_after_severe_for() {
        let mut feed = Fixed {
            canary_error_rate: 0.10,
            ..healthy()
        };
        let r = replay(&setup(2), &mut feed);
        // The first sample fails at 0 % (canary users only); sustained one minute later.
        assert_eq!(kinds(&r), vec![(1, Kind::Rollback)]);
        assert_eq!(r.rollout.status, Status::RolledBack);
        let d = r.detection().unwrap();
        assert!(
            d.reason
                .starts_with("rolling back: canary error rate 10.00 %"),
            "{}",
            d.reason
        );
        assert_eq!(d.percent, Percent::ZERO);
    }

    #[test]
    fn without_auto_rollback_the_rollback_is_proposed_once_and_the_canary_paused() {
        let mut s = setup(1);
        s.policy.auto_rollback = false;
        let mut feed = Fixed {
            canary_error_rate: 0.10,
            ..healthy()
        };
        let r = replay(&s, &mut feed);
        assert_eq!(kinds(&r), vec![(1, Kind::ProposedRollback)]);
        assert_eq!(r.rollout.status, Status::Paused);
        assert_eq!(r.ended_at, minutes(60));
    }

    #[test]
    fn a_mild_breach_halts_after_breach_for_and_stop_at_detection_ends_there() {
        let mut feed = Fixed {
            canary_error_rate: 0.02,
            ..healthy()
        };
        let r = replay(&setup(2), &mut feed);
        assert_eq!(kinds(&r), vec![(5, Kind::Halt)]);
        assert_eq!(r.rollout.status, Status::Paused);
        assert_eq!(r.ended_at, minutes(120), "a paused rollout is replayed on");

        let mut s = setup(2);
        s.stop = Stop::AtDetection;
        let r = replay(&s, &mut feed);
        assert_eq!(r.ended_at, minutes(5));
        assert_eq!(r.exposure.canary_requests, 5 * 100);
    }

    #[test]
    fn a_declined_ask_holds_the_stage_and_is_not_asked_again() {
        let mut s = setup(4);
        s.asks = Asks::Decline;
        let r = replay(&s, &mut healthy());
        // The first question is the canary-users stage's: a no keeps the rollout there.
        assert_eq!(kinds(&r), vec![(5, Kind::Ask), (5, Kind::Declined)]);
        assert_eq!(r.rollout.percentage, Percent::ZERO);
        assert!(r.last_hold.unwrap().contains("declined by the operator"));
    }

    #[test]
    fn no_canary_data_never_moves_anything() {
        let mut feed = Fixed {
            canary_missing: true,
            ..healthy()
        };
        let r = replay(&setup(1), &mut feed);
        assert!(r.records.is_empty());
        assert_eq!(r.ticks, 61);
        assert!(r.last_hold.unwrap().contains("inconclusive"));
        assert_eq!(r.rollout.percentage, Percent::ZERO);
    }
}
