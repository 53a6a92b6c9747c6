//! The headless engine and the cockpit's shell on it: one judgment per sample shared by the
//! screen and the driver, redraws only on visible change, supervised tasks.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use cockpit_fixture::{current_at_5, empty_state};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use futures::future::BoxFuture;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollout_tui::app::runtime::{ShellProbe, shell};
use rollout_tui::app::update::{Msg, update};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::event::Event;
use rollout_tui::domain::health::GateReport;
use rollout_tui::domain::progression::Policy;
use rollout_tui::domain::rollout::{Plan, PlanPreset};
use rollout_tui::engine::backend::Backend;
use rollout_tui::engine::clock::Clock;
use rollout_tui::engine::{Command, Engine, EngineEvent, Settings, WriteOutcome};
use rollout_tui::metrics::MetricsSource;
use rollout_tui::metrics::config::SimulatorConfig;
use rollout_tui::metrics::simulator::{Regression, Simulator};
use rollout_tui::store::local::LocalStore;
use rollout_tui::store::{Lease, RolloutStore, StoreChange, StoreResult, StoredRollout};
use rollout_tui::ui::Theme;
use tokio::sync::mpsc;

/// Polls `check` until it holds; panics with `what` after a generous deadline.
async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 60s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings(metrics: Option<Arc<dyn MetricsSource>>, refresh: Duration) -> Settings {
    Settings {
        freeze_windows: Vec::new(),
        notifier: None,
        actuators: Default::default(),
        splits: Default::default(),
        metrics,
        refresh,
        clock: Clock::Wall,
        gates: Default::default(),
        policy: Policy::default(),
        default_plan: Plan::preset(PlanPreset::Canary),
        actor: "tester".into(),
        holder: "tester#1".into(),
    }
}

/// A store whose changes the test writes itself, and whose lease reads never answer (so no
/// lease event arrives at a time the test does not choose).
#[derive(Clone)]
struct Scripted {
    changes: Arc<Mutex<Option<mpsc::Receiver<StoreChange>>>>,
}

impl Backend for Scripted {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        let taken = self.changes.lock().unwrap().take();
        Box::pin(async move {
            match taken {
                Some(rx) => Ok(rx),
                None => futures::future::pending().await,
            }
        })
    }
    fn load_events_up_to(&self, _: String, _: usize) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn lease(&self, _: String) -> BoxFuture<'_, StoreResult<Option<Lease>>> {
        Box::pin(futures::future::pending())
    }
    fn freeze(&self) -> BoxFuture<'_, StoreResult<Option<rollout_tui::domain::freeze::Freeze>>> {
        Box::pin(futures::future::pending())
    }
    fn perform(
        &self,
        _: StoredRollout,
        _: Action,
        _: rollout_tui::engine::backend::Writer,
        _: chrono::DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>> {
        None
    }
    fn writable(&self) -> Option<Arc<dyn RolloutStore>> {
        None
    }
}

#[tokio::test]
async fn the_screen_is_drawn_only_when_something_visible_changed() {
    let (changes, rx) = mpsc::channel(256);
    let store = Scripted {
        changes: Arc::new(Mutex::new(Some(rx))),
    };
    let engine = Engine::start(store, settings(None, Duration::from_secs(15)));
    let (keys_tx, keys) = mpsc::channel::<TermEvent>(8);
    let probe = Arc::new(ShellProbe::default());
    let running = {
        let probe = probe.clone();
        tokio::spawn(async move {
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
            let mut state = empty_state();
            let end = shell(
                &mut terminal,
                engine,
                keys,
                &mut state,
                Theme::with_color(false),
                Clock::Wall,
                &probe,
            )
            .await;
            (end, terminal.backend().buffer().clone())
        })
    };
    wait_until("the first frame", || probe.frames() == 1).await;
    let doc = current_at_5().stored;
    changes
        .send(StoreChange::Upserted(doc.clone()))
        .await
        .unwrap();
    wait_until("the rollout", || probe.messages() == 1).await;
    assert_eq!(probe.frames(), 2, "a new rollout is drawn");
    // A resync repeats what is shown: fifty messages, no frame.
    for _ in 0..50 {
        changes
            .send(StoreChange::Upserted(doc.clone()))
            .await
            .unwrap();
    }
    wait_until("the repeated documents", || probe.messages() == 51).await;
    assert_eq!(probe.frames(), 2, "unchanged documents are not drawn again");
    // A change that shows is drawn once.
    let mut moved = doc.clone();
    moved
        .fields
        .insert("rolloutPercentage".into(), serde_json::json!(25));
    changes.send(StoreChange::Upserted(moved)).await.unwrap();
    changes
        .send(StoreChange::Disconnected("connection reset".into()))
        .await
        .unwrap();
    wait_until("the change and the outage", || probe.messages() == 53).await;
    assert_eq!(probe.frames(), 4);
    // A key is an answer the operator waits for: drawn.
    keys_tx
        .send(TermEvent::Key(KeyEvent::new(
            KeyCode::Down,
            KeyModifiers::NONE,
        )))
        .await
        .unwrap();
    wait_until("the key", || probe.messages() == 54).await;
    assert_eq!(probe.frames(), 5);
    keys_tx
        .send(TermEvent::Key(KeyEvent::new(
            KeyCode::Char('q'),
            KeyModifiers::NONE,
        )))
        .await
        .unwrap();
    let (end, screen) = running.await.unwrap();
    assert!(end.unwrap().unfinished.is_empty());
    let text: String = screen.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("DISCONNECTED"), "{text}");
}

/// The sampler judges a rollout before auto-progression starts and the driver after: one
/// judge, so a breach the screen showed keeps its start when the driver takes over, and
/// every report the screen shows is the one the driver decided on (its evidence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_and_the_driver_share_one_judgment() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    let store: Arc<dyn RolloutStore> = Arc::new(local);
    let built = current_at_5();
    let doc = built.stored.clone();
    store
        .create(&doc.id, &doc.fields, &built.events[0])
        .await
        .unwrap();
    let sim = Arc::new(Simulator::new(
        &SimulatorConfig::default(),
        Duration::from_secs(300),
    ));
    sim.inject("current", Regression::LatencyShift { ms: 600.0 });
    let source: Arc<dyn MetricsSource> = sim.clone();
    let mut engine = Engine::start(store, settings(Some(source), Duration::from_millis(200)));
    let mut state = empty_state();
    let mut reports: Vec<(bool, GateReport)> = Vec::new();
    let mut driving = false;
    let mut decisions = 0;
    while decisions < 6 {
        let event = tokio::time::timeout(Duration::from_secs(60), engine.events.recv())
            .await
            .expect("the engine keeps talking")
            .expect("the engine runs");
        match &event {
            EngineEvent::Health { id, report, .. } if id == "current" => {
                reports.push((driving, report.clone()));
                if !driving && reports.len() >= 3 {
                    engine.send(Command::StartAuto("current".into())).await;
                    driving = true;
                }
            }
            EngineEvent::Driver { id, update: u } if id == "current" => {
                decisions += 1;
                // The evidence is the report the screen was just sent, gate by gate.
                let (_, shown) = reports.last().expect("a report before a decision");
                assert_eq!(u.evidence.len(), shown.gates.len());
                for (line, gate) in u.evidence.iter().zip(&shown.gates) {
                    assert!(line.contains(&gate.detail), "{line} vs {}", gate.detail);
                }
            }
            _ => {}
        }
        let report_before = reports.last().cloned();
        update(&mut state, Msg::Engine(event));
        if let (Some((_, r)), Some(e)) = (report_before, state.entry("current")) {
            assert_eq!(
                e.health.report.as_ref(),
                Some(&r),
                "the screen shows the engine's report"
            );
        }
    }
    let since: Vec<_> = reports
        .iter()
        .map(|(by_driver, r)| (*by_driver, r.gate("p99-vs-stable").unwrap().failing_since))
        .collect();
    assert!(
        since.iter().any(|(d, _)| !d) && since.iter().any(|(d, _)| *d),
        "{since:?}"
    );
    let first = since[0].1.expect("the regression fails the gate");
    assert!(
        since.iter().all(|(_, s)| *s == Some(first)),
        "one breach, one start, whoever sampled: {since:?}"
    );
    engine.shutdown(Duration::from_secs(5)).await;
}
