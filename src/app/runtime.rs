//! The cockpit's event loop: terminal input, store changes, metric samples and
//! timers become `Msg`s; `update` returns `Effect`s, which run as tokio tasks and
//! report back as `Msg`s. The screen is redrawn only when something changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::Event as TermEvent;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use futures::future::BoxFuture;

use std::collections::{HashMap, HashSet};

use crate::app::clock::Clock;
use crate::app::driver::Driver;
use crate::app::state::{AppState, EVENTS_SHOWN, HISTORY_LEN};
use crate::app::update::{DriverUpdate, Effect, Msg, WriteOutcome, update};
use crate::domain::actions::{Action, Context};
use crate::domain::event::Event;
use crate::domain::health::GateReport;
use crate::domain::rollout::{Plan, Rollout, Status};
use crate::metrics::MetricsSource;
use crate::ops::{self, PerformError};
use crate::store::{Lease, ReadOnlyStore, RolloutStore, StoreChange, StoreResult, StoredRollout};
use crate::ui::{self, Theme};

/// A write that takes longer than this is reported as failed (it may still land; the
/// store's change stream will show it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Set in tests only: the cockpit panics right after its first draw.
pub const PANIC_FOR_TEST_ENV: &str = "ROLLOUT_TUI_PANIC_FOR_TEST";

pub struct Cockpit {
    pub store: Arc<dyn RolloutStore>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub refresh: Duration,
    pub clock: Clock,
    pub state: AppState,
    pub theme: Theme,
}

/// What the event loop can do with a store. The cockpit gets the full store; `watch`
/// gets `ReadOnlyStore`, which has no write methods, so it cannot write whatever happens.
trait Backend: Clone + Send + Sync + 'static {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>>;
    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>>;
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>>;
    /// Runs a write and reports its outcome; `None` when this backend cannot write.
    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        actor: String,
        plan: Plan,
        now: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>>;
    /// The store a driver may write through; `None` in read-only mode.
    fn writable(&self) -> Option<Arc<dyn RolloutStore>>;
}

impl Backend for Arc<dyn RolloutStore> {
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>> {
        Box::pin(async move { self.get_lease(&id).await })
    }

    fn writable(&self) -> Option<Arc<dyn RolloutStore>> {
        Some(self.clone())
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move {
            self.list_events(&id, EVENTS_SHOWN)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        actor: String,
        plan: Plan,
        now: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>> {
        let store = self.clone();
        Some(Box::pin(async move {
            let id = seen.id.clone();
            let ctx = Context {
                actor: &actor,
                now,
                default_plan: &plan,
            };
            let result = tokio::time::timeout(
                WRITE_TIMEOUT,
                ops::perform_on(store.as_ref(), &seen, &action, ctx, None),
            )
            .await;
            match result {
                Err(_) => WriteOutcome::Failed(format!(
                    "no answer from the store in {}s; check `events {id}` before retrying",
                    WRITE_TIMEOUT.as_secs()
                )),
                Ok(Ok(done)) => WriteOutcome::Done {
                    summary: done.transition.summary,
                    stored: done.stored,
                },
                Ok(Err(PerformError::Conflict {
                    current, changed, ..
                })) => WriteOutcome::Conflict {
                    changed,
                    current: *current,
                },
                Ok(Err(e)) => WriteOutcome::Failed(e.to_string()),
            }
        }))
    }
}

impl Backend for ReadOnlyStore {
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>> {
        Box::pin(async move { self.get_lease(&id).await })
    }

    fn writable(&self) -> Option<Arc<dyn RolloutStore>> {
        None
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move {
            self.list_events(&id, EVENTS_SHOWN)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        _: String,
        _: Plan,
        _: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>> {
        tracing::error!(rollout = %seen.id, ?action, "read-only watch mode was asked to write; refused");
        None
    }
}

/// Runs until the operator quits or the terminal goes away (SIGHUP/SIGTERM/SIGINT).
/// The terminal is restored on every path, panics included (ratatui's hook).
pub async fn run(cockpit: Cockpit) -> Result<(), String> {
    let Cockpit {
        store,
        metrics,
        refresh,
        clock,
        mut state,
        theme,
    } = cockpit;
    let mut terminal = ratatui::init();
    let result = event_loop(
        &mut terminal,
        store,
        metrics,
        refresh,
        clock,
        &mut state,
        theme,
    )
    .await;
    ratatui::restore();
    result
}

/// The read-only wall screen: the same loop, holding only a `ReadOnlyStore`.
pub async fn run_watch(
    store: ReadOnlyStore,
    metrics: Option<Arc<dyn MetricsSource>>,
    refresh: Duration,
    mut state: AppState,
    theme: Theme,
) -> Result<(), String> {
    let mut terminal = ratatui::init();
    let result = event_loop(
        &mut terminal,
        store,
        metrics,
        refresh,
        Clock::Wall,
        &mut state,
        theme,
    )
    .await;
    ratatui::restore();
    result
}

async fn event_loop<B: Backend>(
    terminal: &mut ratatui::DefaultTerminal,
    store: B,
    metrics: Option<Arc<dyn MetricsSource>>,
    refresh: Duration,
    clock: Clock,
    state: &mut AppState,
    theme: Theme,
) -> Result<(), String> {
    state.clock_rate = clock.rate();
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel::<Msg>();
    let (key_tx, mut key_rx) = mpsc::unbounded_channel::<TermEvent>();
    // crossterm's read blocks; a plain thread keeps it off the runtime. It ends when the
    // terminal goes away (read fails) or the receiver is dropped.
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if key_tx.send(ev).is_err() {
                break;
            }
        }
    });
    let (rollouts_tx, rollouts_rx) = watch::channel(Vec::<Rollout>::new());
    let rollouts_rx_for_leases = rollouts_rx.clone();
    let watcher = tokio::spawn(forward_store_changes(store.clone(), msg_tx.clone()));
    // Driven rollouts are sampled by their driver; the display sampler skips them.
    let driven: Driven = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let sampler = metrics.clone().map(|m| {
        tokio::spawn(sample_loop(
            m,
            refresh,
            clock.clone(),
            rollouts_rx,
            driven.clone(),
            msg_tx.clone(),
        ))
    });
    let leases = tokio::spawn(lease_loop(
        store.clone(),
        LEASE_POLL,
        rollouts_rx_for_leases,
        msg_tx.clone(),
    ));
    let mut drivers: HashMap<String, DriverHandle> = HashMap::new();
    let holder = format!("{}#{}", state.actor, std::process::id());
    let mut startup: Vec<Effect> = state
        .auto_on_start
        .iter()
        .cloned()
        .map(Effect::StartAuto)
        .collect();

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut dirty = true;
    // One clock for the whole loop: a sleep made afresh on every pass would be reset by each
    // message, so a steady stream of them (metrics, leases) would stop clocks and rotation.
    let mut second = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        if dirty {
            state.now = clock.now();
            if let Err(e) = terminal.draw(|f| ui::render(state, theme, f)) {
                break Err(format!("cannot draw: {e}"));
            }
            dirty = false;
            // Lets the end-to-end tests prove the panic path restores the terminal.
            if std::env::var_os(PANIC_FOR_TEST_ENV).is_some() {
                panic!("panic requested by {PANIC_FOR_TEST_ENV} (terminal restore test)");
            }
        }
        // A 1 s tick only while something on screen counts down or a message must expire.
        let ticking = state.countdown_visible() || state.toast.is_some();
        let msg = tokio::select! {
            ev = key_rx.recv() => match ev {
                Some(TermEvent::Key(k)) => Msg::Key(k),
                Some(TermEvent::Resize(..)) => Msg::Resize,
                Some(_) => continue,
                None => break Ok(()),
            },
            Some(msg) = msg_rx.recv() => msg,
            _ = sigterm.recv() => break Ok(()),
            _ = sighup.recv() => break Ok(()),
            _ = sigint.recv() => break Ok(()),
            _ = second.tick(), if ticking => Msg::Tick(clock.now()),
        };
        state.now = clock.now();
        let publish = matches!(msg, Msg::Store(_) | Msg::Performed { .. });
        let mut effects = update(state, msg);
        effects.append(&mut startup);
        dirty = true;
        if publish {
            let parsed: Vec<Rollout> = state
                .rollouts
                .iter()
                .filter_map(|e| e.rollout.as_ref().ok().cloned())
                .collect();
            rollouts_tx.send_replace(parsed);
        }
        for effect in effects {
            match effect {
                Effect::Quit => {}
                Effect::StartAuto(id) => {
                    let started = match (store.writable(), metrics.clone()) {
                        (None, _) => Err("this mode is read-only".to_string()),
                        (_, None) => {
                            Err("no metrics source is configured ([metrics] kind)".to_string())
                        }
                        (Some(writable), Some(source)) => {
                            let driver = Driver::new(
                                writable,
                                source,
                                &id,
                                &holder,
                                state.policy.clone(),
                                state.gates.clone(),
                                state.default_plan.clone(),
                            )
                            .ticking_every(refresh.mul_f64(clock.rate()));
                            let driver = match state.entry(&id) {
                                Some(e) => driver.continuing(e.health.tracker.clone()),
                                None => driver,
                            };
                            let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                            let task = tokio::spawn(driver_task(
                                driver,
                                refresh,
                                clock.clone(),
                                cmd_rx,
                                msg_tx.clone(),
                            ));
                            lock(&driven).insert(id.clone());
                            drivers.insert(
                                id.clone(),
                                DriverHandle {
                                    task,
                                    commands: cmd_tx,
                                },
                            );
                            Ok(())
                        }
                    };
                    if let Err(why) = started {
                        let _ = msg_tx.send(Msg::AutoUnavailable { id, why });
                    }
                }
                Effect::StopAuto(id) => {
                    if let Some(d) = drivers.remove(&id) {
                        let _ = d.commands.send(DriverCmd::Stop);
                    }
                    lock(&driven).remove(&id);
                }
                Effect::AutoAnswer { id, stage, yes } => {
                    if let Some(d) = drivers.get(&id) {
                        let _ = d.commands.send(DriverCmd::Answer { stage, yes });
                    }
                }
                Effect::Perform { id, action, seen } => {
                    let tx = msg_tx.clone();
                    match store.perform(
                        *seen,
                        action.clone(),
                        state.actor.clone(),
                        state.default_plan.clone(),
                        clock.now(),
                    ) {
                        Some(write) => {
                            tokio::spawn(async move {
                                let outcome = write.await;
                                tracing::info!(rollout = %id, ?action, ?outcome, "cockpit write");
                                let _ = tx.send(Msg::Performed {
                                    id,
                                    action,
                                    outcome,
                                });
                            });
                        }
                        None => {
                            let outcome = WriteOutcome::Failed("watch mode is read-only".into());
                            let _ = tx.send(Msg::Performed {
                                id,
                                action,
                                outcome,
                            });
                        }
                    }
                }
                Effect::Fault { id, fault } => match metrics.as_ref().and_then(|m| m.simulator()) {
                    Some(sim) => match fault {
                        Some(f) => sim.inject(&id, f),
                        None => sim.clear(&id),
                    },
                    None => tracing::warn!(rollout = %id, "fault asked for without a simulator"),
                },
                Effect::LoadEvents(id) => {
                    let (store, tx) = (store.clone(), msg_tx.clone());
                    tokio::spawn(async move {
                        let result = store.load_events(id.clone()).await;
                        let _ = tx.send(Msg::Events { id, result });
                    });
                }
            }
        }
        if state.quit {
            break Ok(());
        }
    };
    watcher.abort();
    leases.abort();
    if let Some(s) = sampler {
        s.abort();
    }
    // Quitting releases every lease at once, so another cockpit can take over.
    for (_, d) in drivers.drain() {
        let _ = d.commands.send(DriverCmd::Stop);
        let _ = tokio::time::timeout(Duration::from_secs(3), d.task).await;
    }
    outcome
}

/// How often the cockpit asks who drives each rollout (leases last 30 s).
const LEASE_POLL: Duration = Duration::from_secs(10);

/// Tells the screen who drives every rollout, so a cockpit that does not drive one can
/// still show its driver and when the lease runs out.
async fn lease_loop<B: Backend>(
    store: B,
    every: Duration,
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let _ =
        tokio::time::timeout(Duration::from_secs(2), rollouts.wait_for(|r| !r.is_empty())).await;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let ids: Vec<String> = rollouts.borrow().iter().map(|r| r.id.clone()).collect();
        for id in ids {
            // A failed read leaves the last known lease on screen; the store banner says why.
            if let Ok(lease) = store.lease(id.clone()).await
                && tx.send(Msg::Lease { id, lease }).is_err()
            {
                return;
            }
        }
    }
}

type Driven = Arc<std::sync::Mutex<HashSet<String>>>;

fn lock(driven: &Driven) -> std::sync::MutexGuard<'_, HashSet<String>> {
    driven
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct DriverHandle {
    task: tokio::task::JoinHandle<()>,
    commands: mpsc::UnboundedSender<DriverCmd>,
}

enum DriverCmd {
    Answer { stage: usize, yes: bool },
    Stop,
}

/// One line per gate: what a confirmation dialog shows as evidence.
fn evidence_lines(report: &GateReport) -> Vec<String> {
    report.gates.iter().map(crate::present::gate_line).collect()
}

/// Ticks a driver every `refresh` and relays the operator's answers to it.
async fn driver_task(
    mut driver: Driver,
    refresh: Duration,
    clock: Clock,
    mut commands: mpsc::UnboundedReceiver<DriverCmd>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let id = driver.id.clone();
    loop {
        let report = driver.tick(clock.now()).await;
        if let Some(sample) = report.sample.clone() {
            let _ = tx.send(Msg::Sample {
                id: id.clone(),
                sample,
            });
        }
        let evidence = report
            .report
            .as_ref()
            .map(evidence_lines)
            .unwrap_or_default();
        let update = DriverUpdate {
            lease: report.lease,
            decision: report.decision,
            step: report.step,
            acted: report.acted,
            evidence,
        };
        if tx
            .send(Msg::Driver {
                id: id.clone(),
                update,
            })
            .is_err()
        {
            driver.release().await;
            return;
        }
        let next_tick = tokio::time::sleep(refresh);
        tokio::pin!(next_tick);
        loop {
            tokio::select! {
                _ = &mut next_tick => break,
                cmd = commands.recv() => match cmd {
                    Some(DriverCmd::Answer { stage, yes: true }) => {
                        let result = driver.confirm(stage, clock.now()).await;
                        let _ = tx.send(Msg::AutoConfirmed { id: id.clone(), result });
                        break;
                    }
                                        Some(DriverCmd::Answer { stage, yes: false }) => driver.decline(stage, clock.now()).await,
                    Some(DriverCmd::Stop) | None => {
                        driver.release().await;
                        return;
                    }
                },
            }
        }
    }
}

/// Keeps a store subscription alive: a failed subscribe is reported as a disconnect
/// and retried with backoff, so the cockpit starts (and stays) usable through outages.
async fn forward_store_changes<B: Backend>(store: B, tx: mpsc::UnboundedSender<Msg>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match store.subscribe().await {
            Ok(mut rx) => {
                backoff = Duration::from_millis(500);
                while let Some(change) = rx.recv().await {
                    if tx.send(Msg::Store(change)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if tx
                    .send(Msg::Store(StoreChange::Disconnected(e.to_string())))
                    .is_err()
                {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Samples every rollout that can have traffic, at once and then every `refresh`.
async fn sample_loop(
    source: Arc<dyn MetricsSource>,
    refresh: Duration,
    clock: Clock,
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    driven: Driven,
    tx: mpsc::UnboundedSender<Msg>,
) {
    // The store's first snapshot arrives just after start; wait briefly so the first
    // samples are not a whole refresh period late.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), rollouts.wait_for(|r| !r.is_empty())).await;
    // The sparklines start with the past the source can recall (Prometheus' query_range,
    // the simulator), beside the live samples rather than in front of them.
    let step = refresh.mul_f64(clock.rate());
    let end = clock.now() - chrono::Duration::from_std(step).unwrap_or_default();
    let known: Vec<Rollout> = rollouts
        .borrow()
        .iter()
        .filter(|r| !matches!(r.status, Status::Planned))
        .cloned()
        .collect();
    for r in known {
        let (source, tx) = (source.clone(), tx.clone());
        tokio::spawn(async move {
            match source.history(&r, end, step, HISTORY_LEN - 1).await {
                Ok(samples) if !samples.is_empty() => {
                    let _ = tx.send(Msg::History { id: r.id, samples });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::info!(rollout = %r.id, error = %e, "no history for the sparklines")
                }
            }
        });
    }
    let mut interval = tokio::time::interval(refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let current: Vec<Rollout> = rollouts
            .borrow()
            .iter()
            .filter(|r| !matches!(r.status, Status::Planned) && !lock(&driven).contains(&r.id))
            .cloned()
            .collect();
        let samples = futures::future::join_all(current.iter().map(|r| {
            let (source, now) = (source.clone(), clock.now());
            async move { (r.id.clone(), source.sample(r, now).await) }
        }))
        .await;
        for (id, sample) in samples {
            if tx.send(Msg::Sample { id, sample }).is_err() {
                return;
            }
        }
    }
}
