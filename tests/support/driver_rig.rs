//! Scenario runs of the auto-progression driver: a real store, the simulator,
//! and a compressed clock (each tick advances simulated time). Every scenario
//! takes any `RolloutStore`, so the same runs cover SQLite and Firestore.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rollout_tui::domain::actions::{self, Action, Context, NewRollout};
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::health::{BreachTracker, GateConfig, Judgment, Verdict, evaluate};
use rollout_tui::domain::progression::{ConfirmPolicy, HaltPolicy, Policy};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset, Rollout, Status};
use rollout_tui::engine::driver::{Driver, LeaseState, Step, TickReport};
use rollout_tui::metrics::MetricsSource;
use rollout_tui::metrics::config::SimulatorConfig;
use rollout_tui::metrics::simulator::{Regression, Simulator};
use rollout_tui::ops;
use rollout_tui::store::RolloutStore;

pub const ID: &str = "current";
/// Simulated time between driver ticks (the cockpit's refresh is 15 s).
pub const TICK: Duration = Duration::from_secs(15);

pub struct Rig {
    pub store: Arc<dyn RolloutStore>,
    pub sim: Arc<Simulator>,
    pub now: DateTime<Utc>,
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap()
}

impl Rig {
    pub fn new(store: Arc<dyn RolloutStore>) -> Rig {
        let sim = Simulator::new(&SimulatorConfig::default(), Duration::from_secs(300));
        Rig {
            store,
            sim: Arc::new(sim),
            now: t0(),
        }
    }

    /// `current` on the canary plan, advanced by an operator to 5 % at t0.
    pub async fn create_at_five_percent(&self) {
        let plan = Plan::preset(PlanPreset::Canary);
        let new = NewRollout {
            id: ID.into(),
            version: "2.0.0".into(),
            stable_version: Some("1.9.0".into()),
            plan: plan.clone(),
            hashing: Hashing::FractionalV1,
            stable_revision: Some("svc-00001-aaa".into()),
            canary_revision: Some("svc-00002-bbb".into()),
            canary_users: vec!["alec@getaifactory.com".into()],
            on_breach: None,
        };
        let (fields, event) = actions::create(&new, "operator", self.now).unwrap();
        self.store.create(ID, &fields, &event).await.unwrap();
        operator_advance(self.store.as_ref(), self.now).await;
    }

    pub fn driver(&self, holder: &str, policy: Policy) -> Driver {
        self.driver_judging(holder, policy, GateConfig::default())
    }

    pub fn driver_judging(&self, holder: &str, policy: Policy, gates: GateConfig) -> Driver {
        let source: Arc<dyn MetricsSource> = self.sim.clone();
        Driver::new(
            self.store.clone(),
            source,
            ID,
            holder,
            policy,
            gates,
            Plan::preset(PlanPreset::Canary),
        )
    }

    pub async fn rollout(&self) -> Rollout {
        self.store.get(ID).await.unwrap().unwrap().parse().unwrap()
    }

    pub async fn events(&self) -> Vec<Event> {
        let mut e = self.store.list_events(ID, 1000).await.unwrap();
        e.reverse();
        e
    }

    /// Ticks until `stop` says so or `max` ticks pass; confirms every question when
    /// `confirm` is set. Returns the reports.
    pub async fn run(
        &mut self,
        driver: &mut Driver,
        max: usize,
        confirm: bool,
        stop: impl Fn(&Rollout) -> bool,
    ) -> Vec<TickReport> {
        let mut reports = Vec::new();
        for _ in 0..max {
            let report = driver.tick(self.now).await;
            if let (true, Step::AskConfirmation(next)) = (confirm, &report.step) {
                driver
                    .confirm(next.index, self.now)
                    .await
                    .expect("confirmation applies");
            }
            reports.push(report);
            self.now += chrono::Duration::from_std(TICK).unwrap();
            if stop(&self.rollout().await) {
                break;
            }
        }
        reports
    }
}

pub fn policy(confirm: ConfirmPolicy) -> Policy {
    Policy {
        confirm,
        ..Policy::default()
    }
}

fn advances(events: &[Event]) -> Vec<(i64, i64)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Advance)
        .filter_map(|e| {
            Some((
                e.before["currentStage"].as_i64()?,
                e.after["currentStage"].as_i64()?,
            ))
        })
        .collect()
}

pub async fn healthy_canary_reaches_full(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Risky));
    let reports = rig
        .run(&mut d, 2_000, true, |r| r.status == Status::Complete)
        .await;
    let r = rig.rollout().await;
    assert_eq!(
        r.status,
        Status::Complete,
        "last decision: {:?}",
        reports.last().map(|t| &t.decision)
    );
    assert_eq!(r.percentage.as_f64(), 100.0);
    // Exactly one question, for 100 % (risky policy), and it was asked before the move.
    let asked: Vec<_> = reports
        .iter()
        .filter(|t| matches!(t.step, Step::AskConfirmation(_)))
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "{:?}",
        asked.iter().map(|t| &t.decision).collect::<Vec<_>>()
    );
    let events = rig.events().await;
    let decisions: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == EventKind::Decision)
        .filter_map(|e| e.reason.as_deref())
        .collect();
    assert_eq!(
        decisions,
        ["asked to confirm stage 5 '100%' (100%)"],
        "the question is on record, once"
    );
    // Operator 0->1, then the machine 1->2->3, the confirmed 3->4, and completion (4, no change).
    assert_eq!(advances(&events), vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
    for e in events.iter().filter(|e| e.actor.starts_with("auto:")) {
        let report = e
            .gate_report
            .as_ref()
            .expect("automatic decisions carry their gate report");
        assert_eq!(report["verdict"], "pass", "{e:?}");
        assert!(report["gates"].as_array().is_some_and(|g| !g.is_empty()));
    }
    // Minimum times were respected: 10m at 5 %, 30m at 25 %, 60m at 50 %.
    let at = |stage: i64| {
        events
            .iter()
            .find(|e| e.after["currentStage"] == stage)
            .unwrap()
            .at
    };
    assert!(at(2) - at(1) >= chrono::Duration::minutes(10));
    assert!(at(3) - at(2) >= chrono::Duration::minutes(30));
    assert!(at(4) - at(3) >= chrono::Duration::minutes(60));
}

/// An error spike at 25 %: halts (3 %) or rolls back (20 %, severe) within the `for` window.
pub async fn error_spike_at_25(store: Arc<dyn RolloutStore>, error_rate: f64, expect: Status) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    rig.run(&mut d, 500, false, |r| r.percentage.as_f64() >= 25.0)
        .await;
    assert_eq!(rig.rollout().await.percentage.as_f64(), 25.0);
    rig.sim.inject(ID, Regression::ErrorSpike { error_rate });
    let spike_at = rig.now;
    let reports = rig
        .run(&mut d, 200, false, |r| {
            r.status.is_terminal() || r.status == Status::Paused
        })
        .await;
    let r = rig.rollout().await;
    assert_eq!(
        r.status,
        expect,
        "{:?}",
        reports.last().map(|t| &t.decision)
    );
    if expect == Status::Paused {
        // Halted by the default policy: retreated, only the canary users keep the new version.
        assert_eq!(r.percentage.as_f64(), 0.0, "retreated to the canary users");
    }
    let cfg = GateConfig::default();
    let window = if expect == Status::RolledBack {
        cfg.severe_for
    } else {
        cfg.breach_for
    };
    // The breach shows in the first sample after the spike; add one tick for the decision.
    let acted_at = rig.events().await.last().unwrap().at;
    let limit = chrono::Duration::from_std(window + TICK * 2).unwrap();
    assert!(
        acted_at - spike_at <= limit,
        "acted {:?} after the spike",
        acted_at - spike_at
    );
    let last = rig.events().await.pop().unwrap();
    // The errors acted, and nothing else: every failing gate is an error gate.
    let report = last.gate_report.as_ref().unwrap();
    assert_eq!(report["verdict"], "fail");
    let failing: Vec<&str> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["verdict"] == "fail")
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        !failing.is_empty() && failing.iter().all(|n| n.starts_with("error-rate")),
        "{last:?}"
    );
    // Nothing moves afterwards.
    let before = rig.rollout().await;
    rig.sim.clear(ID);
    rig.run(&mut d, 40, true, |_| false).await;
    let after = rig.rollout().await;
    assert_eq!(
        (after.status, after.percentage),
        (before.status, before.percentage)
    );
}

pub async fn latency_regression_halts(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    rig.sim.inject(ID, Regression::LatencyShift { ms: 600.0 });
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    let reports = rig
        .run(&mut d, 200, false, |r| r.status == Status::Paused)
        .await;
    let r = rig.rollout().await;
    assert_eq!(
        r.status,
        Status::Paused,
        "{:?}",
        reports.last().map(|t| &t.decision)
    );
    // The default halt policy retreats: random users back on stable, only the canary users
    // keep the new version while a person looks.
    assert_eq!(r.percentage.as_f64(), 0.0, "retreated");
    assert_eq!(r.current_stage, Some(0), "the canary-users stage");
    assert!(
        r.pause_reason.unwrap().contains("p99"),
        "halted for latency"
    );
}

/// `on_breach = "pause"` keeps the old halt: paused where it is, the canary still serving.
pub async fn latency_regression_pauses_in_place_with_the_pause_policy(
    store: Arc<dyn RolloutStore>,
) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    rig.sim.inject(ID, Regression::LatencyShift { ms: 600.0 });
    let mut d = rig.driver(
        "cockpit-a",
        Policy {
            on_breach: HaltPolicy::Pause,
            ..policy(ConfirmPolicy::Never)
        },
    );
    rig.run(&mut d, 200, false, |r| r.status == Status::Paused)
        .await;
    let r = rig.rollout().await;
    assert_eq!((r.status, r.percentage.as_f64()), (Status::Paused, 5.0));
    assert!(r.pause_reason.unwrap().contains("p99"));
}

/// `on_breach = "rollback"` rolls back on a sustained, non-severe breach.
pub async fn latency_regression_rolls_back_with_the_rollback_policy(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    rig.sim.inject(ID, Regression::LatencyShift { ms: 600.0 });
    let mut d = rig.driver(
        "cockpit-a",
        Policy {
            on_breach: HaltPolicy::Rollback,
            ..policy(ConfirmPolicy::Never)
        },
    );
    rig.run(&mut d, 200, false, |r| r.status.is_terminal())
        .await;
    let r = rig.rollout().await;
    assert_eq!(r.status, Status::RolledBack);
    assert!(
        r.rollback_reason
            .as_deref()
            .is_some_and(|why| why.contains("on_breach = rollback") && why.contains("p99")),
        "{:?}",
        r.rollback_reason
    );
}

/// A breach the cockpit saw before auto-progression was switched on counts from when it
/// was first seen: the driver halts when that `for` window ends, not a whole window later.
/// Judged on windows, where a breach must last `breach_for` (a decisive sequential test on
/// the stage halts at once, with no window to carry over).
pub async fn breach_seen_before_auto_carries_over(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    rig.sim.inject(ID, Regression::LatencyShift { ms: 600.0 });
    let r = rig.rollout().await;
    let window_gates = GateConfig {
        judgment: Judgment::Window,
        ..GateConfig::default()
    };
    let gates = window_gates.at_percentage(r.percentage);
    let seen_at = rig.now;
    let mut report = evaluate(&rig.sim.sample(&r, seen_at).await, &gates, seen_at);
    let mut seen = BreachTracker::default();
    seen.observe(&mut report);
    assert_eq!(report.gate("p99-vs-stable").unwrap().verdict, Verdict::Fail);

    rig.now = seen_at + chrono::Duration::seconds(4 * 60 + 50);
    let mut d = rig
        .driver_judging("cockpit-a", policy(ConfirmPolicy::Never), window_gates)
        .sharing(std::sync::Arc::new(std::sync::Mutex::new(seen)));
    let reports = rig
        .run(&mut d, 200, false, |r| r.status == Status::Paused)
        .await;
    assert_eq!(rig.rollout().await.status, Status::Paused);
    // 4m50s at the first tick (hold), 5m05s at the second (halt).
    assert_eq!(
        reports.len(),
        2,
        "{:?}",
        reports.iter().map(|t| &t.decision).collect::<Vec<_>>()
    );
}

pub async fn zero_canary_traffic_never_advances(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    rig.sim.inject(ID, Regression::TrafficDrop);
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    // Two simulated hours: far past the 10 minute minimum.
    let reports = rig.run(&mut d, 480, true, |_| false).await;
    let r = rig.rollout().await;
    assert_eq!(
        (r.status, r.percentage.as_f64()),
        (Status::Progressive, 5.0)
    );
    assert!(reports.iter().all(|t| t.step == Step::Nothing));
    assert!(reports.iter().skip(1).all(|t| matches!(&t.decision, rollout_tui::domain::progression::Decision::Hold(w) if w.contains("inconclusive"))));
}

/// A driver dies holding the lease; another waits for it to expire, takes over, and
/// finishes without applying any stage twice.
pub async fn killed_driver_is_taken_over(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut a = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    rig.run(&mut a, 500, false, |r| r.percentage.as_f64() >= 25.0)
        .await;
    let dead_lease = rig
        .store
        .get_lease(ID)
        .await
        .unwrap()
        .expect("a holds the lease");
    assert_eq!(dead_lease.holder, "cockpit-a");
    drop(a); // no release: the process died
    let mut b = rig.driver("cockpit-b", policy(ConfirmPolicy::Never));
    let first = b.tick(rig.now).await;
    assert!(
        matches!(&first.lease, LeaseState::HeldByOther(l) if l.holder == "cockpit-a"),
        "{:?}",
        first.lease
    );
    assert_eq!(first.step, Step::Nothing);
    let reports = rig
        .run(&mut b, 2_000, false, |r| r.status == Status::Complete)
        .await;
    let took_over = reports
        .iter()
        .find(|t| matches!(t.lease, LeaseState::Held(_)))
        .expect("b takes over");
    // Not a moment before the dead driver's lease ran out.
    assert!(took_over.report.as_ref().unwrap().sample_taken_at >= dead_lease.expires_at);
    assert_eq!(rig.rollout().await.status, Status::Complete);
    let steps = advances(&rig.events().await);
    assert_eq!(
        steps,
        vec![(0, 1), (1, 2), (2, 3), (3, 4)],
        "each stage applied once"
    );
    let lease = rig.store.get_lease(ID).await.unwrap().unwrap();
    assert_eq!(lease.holder, "cockpit-b");
    b.release().await;
    assert!(
        rig.store.get_lease(ID).await.unwrap().is_none(),
        "quitting releases the lease"
    );
}

/// The operator says no: the stage holds, the answer is on record, and the machine does
/// not ask again for that stage.
pub async fn declined_confirmation_holds(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::EveryStage));
    let mut asked = None;
    for _ in 0..200 {
        let t = d.tick(rig.now).await;
        rig.now += chrono::Duration::from_std(TICK).unwrap();
        if let Step::AskConfirmation(next) = t.step {
            asked = Some(next);
            break;
        }
    }
    let next = asked.expect("the machine asks before 25 %");
    assert_eq!(next.index, 2);
    d.decline(next.index, rig.now).await;
    let later = rig.run(&mut d, 120, false, |_| false).await;
    assert!(
        later.iter().all(|t| t.step == Step::Nothing),
        "not asked again for the declined stage"
    );
    assert!(
        later.iter().all(|t| matches!(
            &t.decision,
            rollout_tui::domain::progression::Decision::Hold(w) if w.starts_with("declined by the operator")
        )),
        "the decision says it holds because of the answer: {:?}",
        later.last().map(|t| &t.decision)
    );
    let r = rig.rollout().await;
    assert_eq!(
        (r.percentage.as_f64(), r.current_stage),
        (5.0, Some(1)),
        "held"
    );
    let reasons: Vec<String> = rig
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Decision)
        .filter_map(|e| e.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "asked to confirm stage 3 '25%' (25%)",
            "operator declined stage 3: holding"
        ]
    );
}

/// An operator's `advance` of the rig's rollout at `now`, through the path the CLI takes.
async fn operator_advance(store: &dyn RolloutStore, now: DateTime<Utc>) {
    let plan = Plan::preset(PlanPreset::Canary);
    let ctx = Context {
        actor: "operator",
        now,
        default_plan: &plan,
        freeze_windows: &[],
    };
    ops::perform(store, &Default::default(), ID, &Action::Advance, ctx)
        .await
        .expect("the operator's advance");
}

/// The simulator, and while armed, an operator's `advance` landing during the sample (as
/// when a metrics query takes seconds and someone advances from the CLI meanwhile).
struct AdvanceDuringSample {
    sim: Arc<Simulator>,
    store: Arc<dyn RolloutStore>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl MetricsSource for AdvanceDuringSample {
    fn describe(&self) -> String {
        self.sim.describe()
    }

    async fn sample(
        &self,
        rollout: &Rollout,
        now: DateTime<Utc>,
    ) -> rollout_tui::domain::health::HealthSample {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            operator_advance(self.store.as_ref(), now).await;
        }
        self.sim.sample(rollout, now).await
    }
}

/// The driver decides on the document it read before sampling. An operator who advances
/// during that sample must not see the driver advance again on top: the driver's write is
/// compare-and-set against what it decided on, so it is refused and the next tick decides
/// afresh (and waits the new stage's minimum time).
pub async fn operator_advance_during_a_sample_is_not_doubled(store: Arc<dyn RolloutStore>) {
    // The simulator is deterministic in time: a scratch run on its own store finds the
    // tick at which the driver first advances.
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch: Arc<dyn RolloutStore> = Arc::new(
        rollout_tui::store::local::LocalStore::open(&scratch_dir.path().join("r.db")).unwrap(),
    );
    let mut dry = Rig::new(scratch);
    dry.create_at_five_percent().await;
    let mut d = dry.driver("cockpit-a", policy(ConfirmPolicy::Never));
    let first_advance = dry
        .run(&mut d, 500, false, |r| r.current_stage == Some(2))
        .await
        .len()
        - 1;

    let mut rig = Rig::new(store.clone());
    rig.create_at_five_percent().await;
    let metrics = Arc::new(AdvanceDuringSample {
        sim: rig.sim.clone(),
        store: store.clone(),
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let mut d = Driver::new(
        store.clone(),
        metrics.clone(),
        ID,
        "cockpit-a",
        policy(ConfirmPolicy::Never),
        GateConfig::default(),
        Plan::preset(PlanPreset::Canary),
    );
    rig.run(&mut d, first_advance, false, |_| false).await;
    metrics
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let raced = d.tick(rig.now).await;
    assert!(
        matches!(
            raced.decision,
            rollout_tui::domain::progression::Decision::Advance(_)
        ),
        "the driver decided to advance on what it read: {:?}",
        raced.decision
    );
    let refused = raced.acted.expect("it tried").expect_err("and was refused");
    assert!(refused.contains("changed"), "{refused}");
    rig.now += chrono::Duration::from_std(TICK).unwrap();
    // Ten more minutes: well inside stage 3's 30-minute minimum.
    let later = rig.run(&mut d, 40, false, |_| false).await;
    assert!(
        later.iter().all(|t| t.acted.is_none()),
        "nothing more was done"
    );
    let r = rig.rollout().await;
    assert_eq!((r.current_stage, r.percentage.as_f64()), (Some(2), 25.0));
    let events = rig.events().await;
    assert_eq!(advances(&events), vec![(0, 1), (1, 2)], "each stage once");
    assert!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Advance)
            .all(|e| e.actor == "operator"),
        "both advances are the operator's"
    );
}

/// With `auto_rollback = false` a sustained severe breach is the operator's call: the
/// machine proposes the rollback once, pauses the canary so nothing advances meanwhile,
/// and never rolls back by itself.
pub async fn severe_spike_without_auto_rollback_pauses_and_proposes_once(
    store: Arc<dyn RolloutStore>,
) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver(
        "cockpit-a",
        Policy {
            auto_rollback: false,
            ..policy(ConfirmPolicy::Never)
        },
    );
    rig.run(&mut d, 500, false, |r| r.percentage.as_f64() >= 25.0)
        .await;
    rig.sim
        .inject(ID, Regression::ErrorSpike { error_rate: 0.2 });
    let reports = rig
        .run(&mut d, 200, false, |r| r.status == Status::Paused)
        .await;
    let proposing = reports.last().unwrap();
    assert!(
        matches!(&proposing.step, Step::ProposeRollback(why) if why.contains("error rate")),
        "{:?}",
        proposing.step
    );
    assert!(
        proposing.acted.as_ref().is_some_and(|a| a.is_ok()),
        "paused"
    );
    let r = rig.rollout().await;
    // While the operator decides, the canary retreats to its canary users (the default policy).
    assert_eq!((r.status, r.percentage.as_f64()), (Status::Paused, 0.0));
    assert!(
        r.pause_reason
            .as_deref()
            .is_some_and(|p| p.contains("rollback proposed")),
        "{:?}",
        r.pause_reason
    );
    // Later ticks neither roll back, nor ask again (the retreat moved the stage, and the
    // proposal stands there), nor move anything.
    let later = rig.run(&mut d, 40, false, |_| false).await;
    assert!(later.iter().all(|t| t.step == Step::Nothing), "asked once");
    assert!(later.iter().all(|t| !matches!(
        t.decision,
        rollout_tui::domain::progression::Decision::Advance(_)
            | rollout_tui::domain::progression::Decision::Complete
            | rollout_tui::domain::progression::Decision::AwaitConfirmation(_)
    )));
    assert_eq!(rig.rollout().await.status, Status::Paused);
    let proposals = rig
        .events()
        .await
        .into_iter()
        .filter(|e| {
            e.reason
                .as_deref()
                .is_some_and(|r| r.starts_with("proposed rollback"))
        })
        .count();
    assert_eq!(proposals, 1);
}

/// A store and a metrics source that can be cut off, to prove the driver stops acting.
struct Cut {
    down: std::sync::atomic::AtomicBool,
}

impl Cut {
    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
}

struct CuttableStore {
    inner: Arc<dyn RolloutStore>,
    cut: Arc<Cut>,
}

impl CuttableStore {
    fn check(&self) -> rollout_tui::store::StoreResult<()> {
        if self.cut.is_down() {
            Err(rollout_tui::store::StoreError::Unavailable(
                "connection refused (test)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl RolloutStore for CuttableStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(
        &self,
    ) -> rollout_tui::store::StoreResult<Vec<rollout_tui::store::StoredRollout>> {
        self.check()?;
        self.inner.list().await
    }
    async fn get(
        &self,
        id: &str,
    ) -> rollout_tui::store::StoreResult<Option<rollout_tui::store::StoredRollout>> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn create(
        &self,
        id: &str,
        fields: &rollout_tui::domain::rollout::Fields,
        event: &Event,
    ) -> rollout_tui::store::StoreResult<rollout_tui::store::StoredRollout> {
        self.check()?;
        self.inner.create(id, fields, event).await
    }
    async fn patch(
        &self,
        id: &str,
        expected: &rollout_tui::store::Revision,
        patch: &rollout_tui::store::Patch,
        event: &Event,
    ) -> rollout_tui::store::StoreResult<rollout_tui::store::StoredRollout> {
        self.check()?;
        self.inner.patch(id, expected, patch, event).await
    }
    async fn patch_unless_frozen(
        &self,
        id: &str,
        expected: &rollout_tui::store::Revision,
        patch: &rollout_tui::store::Patch,
        event: &Event,
    ) -> rollout_tui::store::StoreResult<rollout_tui::store::StoredRollout> {
        self.check()?;
        self.inner
            .patch_unless_frozen(id, expected, patch, event)
            .await
    }
    async fn freeze(
        &self,
    ) -> rollout_tui::store::StoreResult<Option<rollout_tui::domain::freeze::Freeze>> {
        self.check()?;
        self.inner.freeze().await
    }
    async fn set_freeze(
        &self,
        freeze: Option<&rollout_tui::domain::freeze::Freeze>,
    ) -> rollout_tui::store::StoreResult<()> {
        self.check()?;
        self.inner.set_freeze(freeze).await
    }
    async fn append_event(&self, event: &Event) -> rollout_tui::store::StoreResult<()> {
        self.check()?;
        self.inner.append_event(event).await
    }
    async fn list_events(
        &self,
        rollout_id: &str,
        limit: usize,
    ) -> rollout_tui::store::StoreResult<Vec<Event>> {
        self.check()?;
        self.inner.list_events(rollout_id, limit).await
    }
    async fn acquire_lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> rollout_tui::store::StoreResult<rollout_tui::store::LeaseOutcome> {
        self.check()?;
        self.inner.acquire_lease(id, holder, ttl, now).await
    }
    async fn release_lease(&self, id: &str, holder: &str) -> rollout_tui::store::StoreResult<()> {
        self.check()?;
        self.inner.release_lease(id, holder).await
    }
    async fn get_lease(
        &self,
        id: &str,
    ) -> rollout_tui::store::StoreResult<Option<rollout_tui::store::Lease>> {
        self.check()?;
        self.inner.get_lease(id).await
    }
    async fn watch(
        &self,
    ) -> rollout_tui::store::StoreResult<tokio::sync::mpsc::Receiver<rollout_tui::store::StoreChange>>
    {
        self.check()?;
        self.inner.watch().await
    }
}

struct CuttableMetrics {
    sim: Arc<Simulator>,
    cut: Arc<Cut>,
}

#[async_trait::async_trait]
impl MetricsSource for CuttableMetrics {
    fn describe(&self) -> String {
        self.sim.describe()
    }
    async fn sample(
        &self,
        rollout: &Rollout,
        now: DateTime<Utc>,
    ) -> rollout_tui::domain::health::HealthSample {
        if self.cut.is_down() {
            return rollout_tui::domain::health::HealthSample {
                taken_at: now,
                window: Duration::from_secs(300),
                stable: None,
                canary: None,
                source_error: Some("cannot reach the metrics source (test)".into()),
                ingestion_delay: std::time::Duration::ZERO,
                stage: None,
            };
        }
        self.sim.sample(rollout, now).await
    }
}

/// Without its store or its metrics the driver does nothing at all, however long the
/// outage lasts and however healthy the canary was; it carries on once they are back.
pub async fn a_driver_without_store_or_metrics_stops_acting(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store.clone());
    rig.create_at_five_percent().await;
    for part in ["metrics", "store"] {
        let cut = Arc::new(Cut {
            down: std::sync::atomic::AtomicBool::new(false),
        });
        let cut_store: Arc<dyn RolloutStore> = Arc::new(CuttableStore {
            inner: store.clone(),
            cut: if part == "store" {
                cut.clone()
            } else {
                Arc::new(Cut { down: false.into() })
            },
        });
        let metrics = Arc::new(CuttableMetrics {
            sim: rig.sim.clone(),
            cut: if part == "metrics" {
                cut.clone()
            } else {
                Arc::new(Cut { down: false.into() })
            },
        });
        let mut d = Driver::new(
            cut_store,
            metrics,
            ID,
            &format!("cockpit-{part}"),
            policy(ConfirmPolicy::Never),
            GateConfig::default(),
            Plan::preset(PlanPreset::Canary),
        );
        let before = rig.rollout().await;
        d.tick(rig.now).await;
        cut.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let events_before = rig.events().await.len();
        // An hour: past the minimum time of the stages it is in (10m, 30m).
        let reports = rig.run(&mut d, 240, false, |_| false).await;
        assert!(
            reports
                .iter()
                .all(|t| t.acted.is_none() && t.step == Step::Nothing),
            "{part} down: the driver acted"
        );
        if part == "store" {
            assert!(
                reports
                    .iter()
                    .all(|t| matches!(t.lease, LeaseState::Unavailable(_))),
                "no store, no lease"
            );
        } else {
            assert!(reports.iter().all(|t| matches!(
                &t.decision,
                rollout_tui::domain::progression::Decision::Hold(w) if w.contains("inconclusive")
            )));
        }
        let after = rig.rollout().await;
        assert_eq!(
            (after.current_stage, after.percentage),
            (before.current_stage, before.percentage),
            "{part} down: the rollout moved"
        );
        assert_eq!(
            rig.events().await.len(),
            events_before,
            "{part}: nothing recorded"
        );
        // Back: the driver carries on to the next stage.
        cut.down.store(false, std::sync::atomic::Ordering::SeqCst);
        rig.run(&mut d, 200, false, |r| {
            r.current_stage > before.current_stage
        })
        .await;
        assert!(
            rig.rollout().await.current_stage > before.current_stage,
            "{part}: resumes"
        );
        d.release().await;
    }
}

/// A document whose own gates would switch the error-rate gate off (`maxErrorRate: 5`) is a
/// per-rollout error: the driver holds and says why, even with 90 % canary errors for an
/// hour, and rollback still works.
pub async fn invalid_document_gates_are_never_acted_on(store: Arc<dyn RolloutStore>) {
    use rollout_tui::domain::patch::Patch;
    let mut rig = Rig::new(store.clone());
    rig.create_at_five_percent().await;
    let seen = store.get(ID).await.unwrap().unwrap();
    let mut patch = Patch::default();
    patch.set("gates", serde_json::json!({"maxErrorRate": 5.0}));
    let event = Event {
        rollout_id: ID.into(),
        kind: EventKind::Decision,
        actor: "another-tool".into(),
        at: rig.now,
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
        reason: Some("gates edited by hand".into()),
        gate_report: None,
    };
    store
        .patch(ID, &seen.revision, &patch, &event)
        .await
        .unwrap();
    rig.sim
        .inject(ID, Regression::ErrorSpike { error_rate: 0.9 });
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    let before = store.get(ID).await.unwrap().unwrap();
    let mut reports = Vec::new();
    for _ in 0..240 {
        reports.push(d.tick(rig.now).await);
        rig.now += chrono::Duration::from_std(TICK).unwrap();
    }
    let after = store.get(ID).await.unwrap().unwrap();
    assert_eq!(before, after, "nothing was written in an hour");
    for t in &reports {
        assert!(
            matches!(&t.decision, rollout_tui::domain::progression::Decision::Hold(why) if why.contains("gates.maxErrorRate = 5 must be")),
            "{:?}",
            t.decision
        );
        assert!(t.acted.is_none());
    }
    let plan = Plan::preset(PlanPreset::Canary);
    let ctx = Context {
        actor: "operator",
        now: rig.now,
        default_plan: &plan,
        freeze_windows: &[],
    };
    let rolled = ops::perform(
        store.as_ref(),
        &Default::default(),
        ID,
        &Action::Rollback {
            reason: "gates were wrong".into(),
        },
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(rolled.stored.fields["status"], "rolled-back");
}

/// Shadow mode: the driver judges and records what it would do, once per decision, with the
/// gate report behind it, and never changes the rollout — not for a healthy canary past its
/// bake time, not for a severe error spike.
pub async fn shadow_mode_records_and_changes_nothing(store: Arc<dyn RolloutStore>) {
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let before = rig.store.get(ID).await.unwrap().unwrap();
    let mut d = rig.driver(
        "cockpit-a",
        Policy {
            shadow_rollouts: vec![ID.to_string()],
            ..policy(ConfirmPolicy::Never)
        },
    );
    // 30 simulated minutes: three times the stage's 10-minute minimum.
    let healthy = rig.run(&mut d, 120, false, |_| false).await;
    rig.sim
        .inject(ID, Regression::ErrorSpike { error_rate: 0.2 });
    let spiked = rig.run(&mut d, 40, false, |_| false).await;
    let after = rig.store.get(ID).await.unwrap().unwrap();
    assert_eq!(after, before, "shadow mode wrote to the rollout");
    assert!(
        healthy.iter().chain(&spiked).all(|t| t.acted.is_none()),
        "nothing acted"
    );
    let said = |t: &TickReport| match &t.decision {
        rollout_tui::domain::progression::Decision::Hold(why) => why.clone(),
        other => panic!("shadow mode decided {other:?}"),
    };
    assert!(
        said(healthy.last().unwrap())
            .starts_with("shadow: would advance to stage 3 '25%' (25%); changing nothing"),
        "{}",
        said(healthy.last().unwrap())
    );
    assert!(
        said(spiked.last().unwrap()).starts_with("shadow: would roll back: automatic rollback:"),
        "{}",
        said(spiked.last().unwrap())
    );
    let events = rig.events().await;
    let shadow: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Decision)
        .collect();
    let reasons: Vec<&str> = shadow.iter().filter_map(|e| e.reason.as_deref()).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("shadow: would advance to stage 3 '25%'"))
            .count(),
        1,
        "recorded once: {reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("shadow: would roll back"))
            .count(),
        1,
        "recorded once: {reasons:?}"
    );
    for e in &shadow {
        let verdict = &e.gate_report.as_ref().expect("with its gate report")["verdict"];
        let expected = if e
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("roll back")
        {
            "fail"
        } else {
            "pass"
        };
        assert_eq!(verdict, expected, "{e:?}");
        assert!(e.actor.starts_with("auto:"), "{e:?}");
    }
}
