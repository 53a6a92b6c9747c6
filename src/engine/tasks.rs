//! The engine's tasks: the command loop (`core`) and the supervised workers it starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::backend::Backend;
use super::clock::Clock;
use super::driver::Driver;
use super::judge::Judges;
use super::notify_feed::Feed;
use super::supervise::{spawn, supervise};
use super::{Command, DriverUpdate, EngineEvent, Settings, WriteGuard, WriteOutcome};
use crate::domain::freeze::Freeze;
use crate::domain::health::GateReport;
use crate::domain::rollout::{Rollout, Status};
use crate::metrics::MetricsSource;
use crate::store::{Lease, StoreChange};

/// How often the engine asks who drives each rollout (leases last 30 s).
const LEASE_POLL: Duration = Duration::from_secs(10);
/// How soon every screen shows a freeze set elsewhere (a single small read).
const FREEZE_POLL: Duration = Duration::from_secs(2);
/// How often outages are re-observed and the notification targets' health checked.
const NOTIFY_POLL: Duration = Duration::from_secs(5);
/// How many samples the sparklines keep, and so how much history is fetched at start.
pub const HISTORY_POINTS: usize = 120;

/// Set in tests only: the sampler panics on its first round (once per process), to prove a
/// failed task is reported and restarted while the cockpit stays usable.
pub const SAMPLER_PANIC_FOR_TEST_ENV: &str = "ROLLOUT_TUI_SAMPLER_PANIC_FOR_TEST";

/// Operator answers waiting for a driver (one question is open at a time).
const DRIVER_COMMANDS: usize = 8;

/// Rollouts a driver samples itself; the sampler skips them.
type Driven = Arc<Mutex<HashSet<String>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct DriverHandle {
    commands: mpsc::Sender<DriverCmd>,
    task: tokio::task::JoinHandle<Option<String>>,
}

enum DriverCmd {
    Answer { stage: usize, yes: bool },
    Stop,
}

/// Receives commands and runs the workers until `stop`.
pub(super) async fn core<B: Backend>(
    store: B,
    settings: Settings,
    mut commands: mpsc::Receiver<(Command, Option<WriteGuard>)>,
    events: mpsc::Sender<EngineEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let judges = Judges::default();
    let feed: Option<Arc<Feed>> = settings.notifier.clone().map(|n| Arc::new(Feed::new(n)));
    let (rollouts_tx, rollouts_rx) = watch::channel(Vec::<Rollout>::new());
    let rollouts_tx = Arc::new(rollouts_tx);
    let driven: Driven = Arc::default();
    {
        let (store, events2, rollouts_tx, judges, feed, clock) = (
            store.clone(),
            events.clone(),
            rollouts_tx.clone(),
            judges.clone(),
            feed.clone(),
            settings.clock.clone(),
        );
        supervise(
            "store subscription".into(),
            true,
            events.clone(),
            stop.clone(),
            move || {
                Box::pin(forward_store_changes(
                    store.clone(),
                    events2.clone(),
                    rollouts_tx.clone(),
                    judges.clone(),
                    feed.clone(),
                    clock.clone(),
                ))
            },
        );
    }
    if let Some(source) = settings.metrics.clone() {
        let (events2, rollouts_rx, driven, judges, settings, feed) = (
            events.clone(),
            rollouts_rx.clone(),
            driven.clone(),
            judges.clone(),
            settings.clone(),
            feed.clone(),
        );
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        supervise(
            "sampler".into(),
            true,
            events.clone(),
            stop.clone(),
            move || {
                Box::pin(sample_loop(
                    source.clone(),
                    settings.clone(),
                    rollouts_rx.clone(),
                    driven.clone(),
                    SampleSinks {
                        judges: judges.clone(),
                        events: events2.clone(),
                        feed: feed.clone(),
                    },
                    first.clone(),
                ))
            },
        );
    }
    {
        let (store, events2, rollouts_rx) = (store.clone(), events.clone(), rollouts_rx.clone());
        supervise(
            "lease watch".into(),
            true,
            events.clone(),
            stop.clone(),
            move || {
                Box::pin(lease_loop(
                    store.clone(),
                    rollouts_rx.clone(),
                    events2.clone(),
                ))
            },
        );
    }
    if settings.splits.any() {
        let (traffic, events2, rollouts_rx, refresh) = (
            settings.splits.clone(),
            events.clone(),
            rollouts_rx.clone(),
            settings.refresh,
        );
        supervise(
            "traffic split watch".into(),
            true,
            events.clone(),
            stop.clone(),
            move || {
                Box::pin(traffic_loop(
                    traffic.clone(),
                    rollouts_rx.clone(),
                    events2.clone(),
                    refresh,
                ))
            },
        );
    }
    if let Some(feed) = feed.clone() {
        let (events2, clock) = (events.clone(), settings.clock.clone());
        supervise(
            "notifications".into(),
            true,
            events.clone(),
            stop.clone(),
            move || Box::pin(notify_loop(feed.clone(), clock.clone(), events2.clone())),
        );
    }
    {
        let (store, events2) = (store.clone(), events.clone());
        supervise(
            "freeze watch".into(),
            true,
            events.clone(),
            stop.clone(),
            move || Box::pin(freeze_loop(store.clone(), events2.clone())),
        );
    }
    let mut drivers: HashMap<String, DriverHandle> = HashMap::new();
    loop {
        let (command, guard) = tokio::select! {
            c = commands.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        match command {
            Command::Perform { id, action, seen } => {
                let write = store.perform(
                    *seen,
                    action.clone(),
                    settings.writer(),
                    settings.clock.now(),
                );
                let (events, feed) = (events.clone(), feed.clone());
                spawn(async move {
                    let outcome = match write {
                        Some(write) => write.await,
                        None => WriteOutcome::Failed("watch mode is read-only".into()),
                    };
                    tracing::info!(rollout = %id, ?action, ?outcome, "cockpit write");
                    if let (Some(feed), WriteOutcome::Done { stored, event, .. }) =
                        (&feed, &outcome)
                    {
                        feed.written(stored.parse().ok().as_ref(), event);
                    }
                    let _ = events
                        .send(EngineEvent::Written {
                            id,
                            action,
                            outcome,
                        })
                        .await;
                    // Settled only once the outcome is on its way to the screen.
                    drop(guard);
                });
            }
            Command::SetFreeze(freeze) => {
                let (writable, events) = (store.writable(), events.clone());
                let (feed, clock) = (feed.clone(), settings.clock.clone());
                spawn(async move {
                    let result = match writable {
                        None => Err("watch mode is read-only".to_string()),
                        Some(store) => store
                            .set_freeze(freeze.as_ref())
                            .await
                            .map(|()| freeze)
                            .map_err(|e| e.to_string()),
                    };
                    tracing::info!(?result, "freeze flag written");
                    if let (Some(feed), Ok(flag)) = (&feed, &result) {
                        feed.frozen(flag.as_ref(), clock.now());
                    }
                    let _ = events.send(EngineEvent::FreezeWritten(result)).await;
                });
            }
            Command::PlanTraffic { id, split } => {
                let (traffic, events) = (settings.actuators.clone(), events.clone());
                spawn(async move {
                    let result = match traffic.for_rollout(&id) {
                        Ok(Some(client)) => client
                            .plan(&split)
                            .await
                            .map(|p| p.planned.describe())
                            .map_err(|e| e.to_string()),
                        Ok(None) => Err("no [actuator] sets this rollout's traffic".into()),
                        Err(e) => Err(e),
                    };
                    let _ = events
                        .send(EngineEvent::TrafficPlanned { id, split, result })
                        .await;
                });
            }
            Command::SyncTraffic(id) => {
                let (writable, events, writer) =
                    (store.writable(), events.clone(), settings.writer());
                let now = settings.clock.now();
                spawn(async move {
                    let result = match writable {
                        None => Err("watch mode is read-only".to_string()),
                        Some(store) => {
                            let ctx = crate::domain::actions::Context {
                                actor: &writer.actor,
                                now,
                                default_plan: &writer.default_plan,
                                freeze_windows: &writer.freeze_windows,
                            };
                            crate::ops::sync_traffic(store.as_ref(), &writer.traffic, &id, ctx)
                                .await
                                .map_err(|e| e.to_string())
                        }
                    };
                    tracing::info!(rollout = %id, ?result, "cockpit sync-traffic");
                    let _ = events.send(EngineEvent::TrafficSynced { id, result }).await;
                    drop(guard);
                });
            }
            Command::LoadEvents(id) => {
                let (store, events) = (store.clone(), events.clone());
                spawn(async move {
                    let result = store.load_events(id.clone()).await;
                    let _ = events.send(EngineEvent::Events { id, result }).await;
                });
            }
            Command::WriteReport { id, dir } => {
                let rollout = rollouts_rx.borrow().iter().find(|r| r.id == id).cloned();
                let (store, events, settings) = (store.clone(), events.clone(), settings.clone());
                spawn(async move {
                    let result = match rollout {
                        None => Err(format!("rollout {id} is not loaded")),
                        Some(r) => match store
                            .load_events_up_to(id.clone(), crate::report::MAX_EVENTS)
                            .await
                        {
                            Err(e) => Err(format!("cannot read its events: {e}")),
                            Ok(log) => {
                                let now = settings.clock.now();
                                crate::report::write_to_dir(
                                    r,
                                    log,
                                    settings.metrics,
                                    &settings.gates,
                                    now,
                                    dir,
                                )
                                .await
                            }
                        },
                    };
                    let _ = events.send(EngineEvent::ReportWritten { id, result }).await;
                });
            }
            Command::Fault { id, fault } => {
                match settings.metrics.as_ref().and_then(|m| m.simulator()) {
                    Some(sim) => match fault {
                        Some(f) => sim.inject(&id, f),
                        None => sim.clear(&id),
                    },
                    None => tracing::warn!(rollout = %id, "fault asked for without a simulator"),
                }
            }
            Command::StartAuto(id) => {
                if drivers.get(&id).is_some_and(|d| !d.task.is_finished()) {
                    continue;
                }
                let started = match (store.writable(), settings.metrics.clone()) {
                    (None, _) => Err("this mode is read-only".to_string()),
                    (_, None) => Err("no metrics source is configured ([metrics] kind)".into()),
                    (Some(writable), Some(source)) => {
                        let driver = Driver::new(
                            writable,
                            source,
                            &id,
                            &settings.holder,
                            settings.policy.clone(),
                            settings.gates.clone(),
                            settings.default_plan.clone(),
                        )
                        .ticking_every(settings.refresh.mul_f64(settings.clock.rate()))
                        .sharing(judges.tracker(&id))
                        .frozen_in(settings.freeze_windows.clone())
                        .acting_on(settings.actuators.clone());
                        let handle = start_driver(
                            driver,
                            &settings,
                            &events,
                            &stop,
                            driven.clone(),
                            feed.clone(),
                        );
                        lock(&driven).insert(id.clone());
                        drivers.insert(id.clone(), handle);
                        Ok(())
                    }
                };
                if let Err(why) = started {
                    let _ = events.send(EngineEvent::AutoUnavailable { id, why }).await;
                }
            }
            Command::StopAuto(id) => {
                if let Some(d) = drivers.remove(&id) {
                    let _ = d.commands.try_send(DriverCmd::Stop);
                }
                lock(&driven).remove(&id);
            }
            Command::AutoAnswer { id, stage, yes } => {
                if let Some(d) = drivers.get(&id)
                    && d.commands
                        .try_send(DriverCmd::Answer { stage, yes })
                        .is_err()
                {
                    tracing::warn!(rollout = %id, "the driver is not taking answers; dropped one");
                }
            }
        }
    }
    // Leaving releases every lease at once, so another cockpit can take over.
    for (_, d) in drivers.drain() {
        let _ = d.commands.try_send(DriverCmd::Stop);
        let _ = tokio::time::timeout(Duration::from_secs(3), d.task).await;
    }
}

/// A driver as a supervised task; a crash stops auto-progression for that rollout and says so
/// (it is not restarted behind the operator's back: `A` turns it on again).
fn start_driver(
    driver: Driver,
    settings: &Settings,
    events: &mpsc::Sender<EngineEvent>,
    stop: &watch::Receiver<bool>,
    driven: Driven,
    feed: Option<Arc<Feed>>,
) -> DriverHandle {
    let id = driver.id.clone();
    let (commands, command_rx) = mpsc::channel(DRIVER_COMMANDS);
    let slot = Arc::new(Mutex::new(Some((driver, command_rx))));
    let (refresh, clock, events2) = (settings.refresh, settings.clock.clone(), events.clone());
    let supervised = supervise(
        format!("auto-progression of {id}"),
        false,
        events.clone(),
        stop.clone(),
        move || {
            let taken = lock(&slot).take();
            let (clock, events, feed) = (clock.clone(), events2.clone(), feed.clone());
            Box::pin(async move {
                if let Some((driver, commands)) = taken {
                    driver_task(driver, refresh, clock, commands, events, feed).await;
                }
            })
        },
    );
    let events = events.clone();
    let task = spawn(async move {
        let failed = supervised.await.ok().flatten();
        if let Some(error) = &failed {
            lock(&driven).remove(&id);
            let why = format!("auto-progression stopped: it failed ({error}); A turns it on again");
            let _ = events.send(EngineEvent::AutoUnavailable { id, why }).await;
        }
        failed
    });
    DriverHandle { commands, task }
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
    mut commands: mpsc::Receiver<DriverCmd>,
    events: mpsc::Sender<EngineEvent>,
    feed: Option<Arc<Feed>>,
) {
    let id = driver.id.clone();
    loop {
        let now = clock.now();
        let report = driver.tick(now).await;
        announce_written(&mut driver, feed.as_deref());
        if let (Some(feed), Some(rollout)) = (&feed, &report.rollout) {
            feed.driver(
                rollout,
                &report.decision,
                report.report.as_ref(),
                &report.lease,
                now,
            );
            if let Some(sample) = &report.sample {
                feed.sample(rollout, sample.source_error.as_deref(), now);
            }
        }
        if let (Some(sample), Some(judged)) = (report.sample.clone(), report.report.clone()) {
            let health = EngineEvent::Health {
                id: id.clone(),
                sample,
                report: judged,
            };
            if events.send(health).await.is_err() {
                driver.release().await;
                return;
            }
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
        let sent = events
            .send(EngineEvent::Driver {
                id: id.clone(),
                update,
            })
            .await;
        if sent.is_err() {
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
                        announce_written(&mut driver, feed.as_deref());
                        let _ = events.send(EngineEvent::AutoConfirmed { id: id.clone(), result }).await;
                        break;
                    }
                    Some(DriverCmd::Answer { stage, yes: false }) => {
                        driver.decline(stage, clock.now()).await;
                    }
                    Some(DriverCmd::Stop) | None => {
                        driver.release().await;
                        return;
                    }
                },
            }
        }
    }
}

/// Keeps a store subscription alive: a failed subscribe is reported as a disconnect and
/// retried with backoff, so the front end starts (and stays) usable through outages. Also
/// publishes the readable rollouts for the sampler and the lease watch.
async fn forward_store_changes<B: Backend>(
    store: B,
    events: mpsc::Sender<EngineEvent>,
    rollouts: Arc<watch::Sender<Vec<Rollout>>>,
    judges: Judges,
    feed: Option<Arc<Feed>>,
    clock: Clock,
) {
    let mut known: BTreeMap<String, Rollout> = BTreeMap::new();
    let mut backoff = Duration::from_millis(500);
    loop {
        match store.subscribe().await {
            Ok(mut rx) => {
                backoff = Duration::from_millis(500);
                while let Some(change) = rx.recv().await {
                    if let Some(feed) = &feed {
                        tell_feed(feed, &change, clock.now());
                    }
                    let changed = match &change {
                        StoreChange::Upserted(stored) => {
                            match stored.parse() {
                                Ok(r) => known.insert(stored.id.clone(), r),
                                Err(_) => known.remove(&stored.id),
                            };
                            true
                        }
                        StoreChange::Removed(id) => {
                            known.remove(id);
                            judges.retain(|k| k != id);
                            true
                        }
                        _ => false,
                    };
                    if changed {
                        rollouts.send_replace(known.values().cloned().collect());
                    }
                    if events.send(EngineEvent::Store(change)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                if let Some(feed) = &feed {
                    feed.store_outage(Some((clock.now(), e.to_string())), clock.now());
                }
                let down = EngineEvent::Store(StoreChange::Disconnected(e.to_string()));
                if events.send(down).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Where samples go: the rollout's one judge, the screen, and the notifier.
struct SampleSinks {
    judges: Judges,
    events: mpsc::Sender<EngineEvent>,
    feed: Option<Arc<Feed>>,
}

/// Samples every rollout that can have traffic (those a driver samples excepted), with
/// bounded concurrency, and judges each sample with the rollout's one judge.
async fn sample_loop(
    source: Arc<dyn MetricsSource>,
    settings: Settings,
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    driven: Driven,
    sinks: SampleSinks,
    first_run: Arc<std::sync::atomic::AtomicBool>,
) {
    let SampleSinks {
        judges,
        events,
        feed,
    } = sinks;
    let clock = settings.clock.clone();
    // The store's first snapshot arrives just after start; wait briefly so the first
    // samples are not a whole refresh period late.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), rollouts.wait_for(|r| !r.is_empty())).await;
    if first_run.swap(false, std::sync::atomic::Ordering::SeqCst) {
        if std::env::var_os(SAMPLER_PANIC_FOR_TEST_ENV).is_some() {
            panic!("sampler panic requested by {SAMPLER_PANIC_FOR_TEST_ENV}");
        }
        // The sparklines start with the past the source can recall (Prometheus'
        // query_range, the simulator), beside the live samples rather than in front.
        let step = settings.refresh.mul_f64(clock.rate());
        let end = clock.now() - chrono::Duration::from_std(step).unwrap_or_default();
        let known: Vec<Rollout> = rollouts
            .borrow()
            .iter()
            .filter(|r| !matches!(r.status, Status::Planned))
            .cloned()
            .collect();
        for r in known {
            let (source, events) = (source.clone(), events.clone());
            spawn(async move {
                match source.history(&r, end, step, HISTORY_POINTS - 1).await {
                    Ok(samples) if !samples.is_empty() => {
                        let _ = events
                            .send(EngineEvent::History { id: r.id, samples })
                            .await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!(rollout = %r.id, error = %e, "no history for the sparklines")
                    }
                }
            });
        }
    }
    let mut interval = tokio::time::interval(settings.refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let current: Vec<Rollout> = rollouts
            .borrow()
            .iter()
            .filter(|r| !matches!(r.status, Status::Planned) && !lock(&driven).contains(&r.id))
            .cloned()
            .collect();
        let now = clock.now();
        let samples = crate::metrics::sample_all(source.clone(), &current, now).await;
        for (r, sample) in current.iter().zip(samples) {
            if let Some(feed) = &feed {
                feed.sample(r, sample.source_error.as_deref(), now);
            }
            let report = judges.judge(r, &sample, &settings.gates);
            let health = EngineEvent::Health {
                id: r.id.clone(),
                sample,
                report,
            };
            if events.send(health).await.is_err() {
                return;
            }
        }
    }
}

/// The changes a driver wrote go to the notifier (the writer announces its own); drained
/// either way.
fn announce_written(driver: &mut Driver, feed: Option<&Feed>) {
    for (rollout, event) in driver.take_written() {
        if let Some(feed) = feed {
            feed.written(rollout.as_ref(), &event);
        }
    }
}

/// What a store change tells the notifier: the end of a rollout, an outage starting or
/// ending.
fn tell_feed(feed: &Feed, change: &StoreChange, now: chrono::DateTime<chrono::Utc>) {
    match change {
        StoreChange::Upserted(_) => {}
        StoreChange::Removed(id) => feed.removed(id),
        StoreChange::Disconnected(why) => feed.store_outage(Some((now, why.clone())), now),
        StoreChange::Reconnected => feed.store_outage(None, now),
    }
}

/// Keeps outages observed while they last (a target is told once one has lasted its
/// `outage_after`) and tells the screen when a target starts or stops failing.
async fn notify_loop(feed: Arc<Feed>, clock: Clock, events: mpsc::Sender<EngineEvent>) {
    let mut shown: Option<Option<String>> = None;
    let mut interval = tokio::time::interval(NOTIFY_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        feed.tick(clock.now());
        let problem = feed.problem();
        if shown.as_ref() == Some(&problem) {
            continue;
        }
        shown = Some(problem.clone());
        if events
            .send(EngineEvent::NotifyProblem(problem))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Tells the screen the store's freeze flag at start and whenever it changes. A failed read
/// leaves the last known flag on screen (the store banner says the store is down).
async fn freeze_loop<B: Backend>(store: B, events: mpsc::Sender<EngineEvent>) {
    let mut known: Option<Option<Freeze>> = None;
    let mut interval = tokio::time::interval(FREEZE_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Ok(flag) = store.freeze().await else {
            continue;
        };
        if known.as_ref() == Some(&flag) {
            continue;
        }
        known = Some(flag.clone());
        if events.send(EngineEvent::Freeze(flag)).await.is_err() {
            return;
        }
    }
}

/// Reads what Cloud Run serves for every rollout the actuator acts on, each refresh and as
/// soon as a rollout changes (a write that moved the split shows at once), and tells the
/// screen when it differs from what it was.
async fn traffic_loop(
    traffic: crate::actuator::acting::SplitReader,
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    events: mpsc::Sender<EngineEvent>,
    refresh: Duration,
) {
    let mut known: HashMap<String, crate::actuator::acting::TrafficView> = HashMap::new();
    let mut interval = tokio::time::interval(refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = rollouts.changed() => if changed.is_err() { return },
        }
        let current: Vec<Rollout> = rollouts.borrow_and_update().clone();
        known.retain(|id, _| current.iter().any(|r| &r.id == id));
        for r in &current {
            let Some(view) = traffic.view_of(r).await else {
                continue;
            };
            if known.get(&r.id) == Some(&view) {
                continue;
            }
            known.insert(r.id.clone(), view.clone());
            if events.send(EngineEvent::Traffic(view)).await.is_err() {
                return;
            }
        }
    }
}

/// Says who drives every rollout, when that changes, so a front end that does not drive
/// one can still show its driver and when the lease runs out.
async fn lease_loop<B: Backend>(
    store: B,
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    events: mpsc::Sender<EngineEvent>,
) {
    let _ =
        tokio::time::timeout(Duration::from_secs(2), rollouts.wait_for(|r| !r.is_empty())).await;
    let mut known: HashMap<String, Option<Lease>> = HashMap::new();
    let mut interval = tokio::time::interval(LEASE_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let ids: Vec<String> = rollouts.borrow().iter().map(|r| r.id.clone()).collect();
        known.retain(|id, _| ids.contains(id));
        for id in ids {
            // A failed read leaves the last known lease on screen; the store banner says why.
            let Ok(lease) = store.lease(id.clone()).await else {
                continue;
            };
            if known.get(&id) == Some(&lease) {
                continue;
            }
            known.insert(id.clone(), lease.clone());
            if events.send(EngineEvent::Lease { id, lease }).await.is_err() {
                return;
            }
        }
    }
}
