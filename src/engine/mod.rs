//! The headless engine under every front end (the cockpit, the wall, and the one-shot
//! commands through `judge`): it owns the store subscription, compare-and-set writes, the
//! drivers and their leases, the clock, bounded sampling, and one health judge per rollout.
//! It takes typed `Command`s and emits one typed stream of `EngineEvent`s that say what
//! changed. Its work runs as supervised tasks: a task that fails is reported as an event
//! and restarted with backoff where that is safe (see `supervise`).
//!
//! ```text
//! front end ──Command──> engine ──> store writes, drivers, fault injection
//!     ^                    │
//!     └────EngineEvent─────┘  store changes, judged samples, leases, write outcomes
//! ```

pub mod backend;
pub mod clock;
pub mod driver;
pub mod judge;
mod notify_feed;
pub mod oneshot;
pub mod supervise;
mod tasks;

pub use tasks::{HISTORY_POINTS, SAMPLER_PANIC_FOR_TEST_ENV};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use crate::domain::actions::Action;
use crate::domain::event::Event;
use crate::domain::health::{GateConfig, GateReport, HealthSample};
use crate::domain::progression::{Decision, Policy};
use crate::domain::rollout::Plan;
use crate::metrics::{MetricsSource, Regression};
use crate::ops::FieldChange;
use crate::store::{Lease, StoreChange, StoredRollout};

use backend::Backend;
use clock::Clock;
use driver::{LeaseState, Step};

/// Events waiting for the front end; when it falls behind, the engine's tasks wait.
const EVENT_BUFFER: usize = 512;
/// Commands waiting for the engine.
const COMMAND_BUFFER: usize = 64;

/// What changed, as the engine saw it.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Store(StoreChange),
    /// A sample and the report the rollout's one judge made of it (the driver acts on this
    /// same report when it drives the rollout).
    Health {
        id: String,
        sample: HealthSample,
        report: GateReport,
    },
    /// Samples from before the screen opened, oldest first (sparklines only, never judged).
    History {
        id: String,
        samples: Vec<HealthSample>,
    },
    Events {
        id: String,
        result: Result<Vec<Event>, String>,
    },
    /// The store's freeze flag (sent at start and when it changes).
    Freeze(Option<crate::domain::freeze::Freeze>),
    /// A notification target is failing (None: all well again).
    NotifyProblem(Option<String>),
    /// The answer to `Command::SetFreeze`.
    FreezeWritten(Result<Option<crate::domain::freeze::Freeze>, String>),
    /// Who drives a rollout now (sent when it changes).
    Lease {
        id: String,
        lease: Option<Lease>,
    },
    Written {
        id: String,
        action: Action,
        outcome: WriteOutcome,
    },
    /// One auto-progression tick's outcome (its sample arrives as `Health`).
    Driver {
        id: String,
        update: DriverUpdate,
    },
    /// The driver's answer to an operator's yes.
    AutoConfirmed {
        id: String,
        result: Result<String, String>,
    },
    /// Auto-progression could not start, or stopped on its own (a crash, read-only mode).
    AutoUnavailable {
        id: String,
        why: String,
    },
    /// Where the report `WriteReport` asked for went, or why it could not be written.
    ReportWritten {
        id: String,
        result: Result<crate::report::Written, String>,
    },
    /// What Cloud Run serves for a rollout the actuator acts on (sent when it changes).
    Traffic(crate::actuator::acting::TrafficView),
    /// The dry run `PlanTraffic` asked for: the split Cloud Run would configure, or why not.
    TrafficPlanned {
        id: String,
        split: crate::actuator::cloud_run::TargetSplit,
        result: Result<String, String>,
    },
    /// The answer to `SyncTraffic`.
    TrafficSynced {
        id: String,
        result: Result<String, String>,
    },
    /// A background task failed; `restart_in` says when it runs again (None: it does not).
    TaskFailed {
        task: String,
        error: String,
        restart_in: Option<Duration>,
    },
}

#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Done {
        summary: String,
        stored: StoredRollout,
        /// The audit event written with it.
        event: Box<crate::domain::event::Event>,
    },
    Conflict {
        changed: Vec<FieldChange>,
        current: StoredRollout,
        /// The newest audit event recorded after the revision the write was based on: who
        /// made the change, when the audit log knows (a writer that logs nothing leaves None).
        by: Option<Box<crate::domain::event::Event>>,
    },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct DriverUpdate {
    pub lease: LeaseState,
    pub decision: Decision,
    pub step: Step,
    pub acted: Option<Result<String, String>>,
    /// The gates behind the decision, for a confirmation dialog.
    pub evidence: Vec<String>,
}

/// What a front end asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A write, compare-and-set against `seen`: the document the operator decided on.
    Perform {
        id: String,
        action: Action,
        seen: Box<StoredRollout>,
    },
    LoadEvents(String),
    /// Simulator only: inject `fault` into the rollout's canary, or clear every fault (None).
    Fault {
        id: String,
        fault: Option<Regression>,
    },
    /// Sets (Some) or lifts (None) the store's freeze flag.
    SetFreeze(Option<crate::domain::freeze::Freeze>),
    StartAuto(String),
    StopAuto(String),
    /// Writes the rollout's report (`report` as SVG) into `dir`, in the background.
    WriteReport {
        id: String,
        dir: std::path::PathBuf,
    },
    /// A server-side dry run (`validateOnly`) of `split`, for a confirmation dialog.
    PlanTraffic {
        id: String,
        split: crate::actuator::cloud_run::TargetSplit,
    },
    /// Sets the service's split to what the rollout's document says.
    SyncTraffic(String),
    /// The operator's answer to auto-progression's question about `stage`.
    AutoAnswer {
        id: String,
        stage: usize,
        yes: bool,
    },
}

/// How the engine judges and acts.
#[derive(Clone)]
pub struct Settings {
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub refresh: Duration,
    pub clock: Clock,
    pub gates: GateConfig,
    pub policy: Policy,
    pub default_plan: Plan,
    /// Who writes (the audit log's actor).
    pub actor: String,
    /// This process as a lease holder: `actor#pid`.
    pub holder: String,
    /// The config's freeze windows, for every write and driver.
    pub freeze_windows: Vec<crate::domain::freeze::FreezeWindow>,
    /// Where halts, rollbacks, waiting confirmations and outages are announced.
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// The services whose traffic split every write and driver also sets (`[actuator]`).
    pub actuators: crate::actuator::Actuators,
    /// What those services serve, read for the screen each refresh (a wall reads them
    /// without `actuators`, so it cannot set a split).
    pub splits: crate::actuator::acting::SplitReader,
}

impl Settings {
    /// What a cockpit write carries.
    pub fn writer(&self) -> backend::Writer {
        backend::Writer {
            actor: self.actor.clone(),
            default_plan: self.default_plan.clone(),
            freeze_windows: self.freeze_windows.clone(),
            traffic: self.actuators.clone(),
        }
    }
}

/// Writes started and not yet answered, so quitting can wait for them.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    settled: Notify,
    /// What each unanswered write is, for the message when quitting cannot wait longer.
    what: std::sync::Mutex<HashMap<u64, String>>,
    next: AtomicUsize,
}

impl InFlight {
    fn begin(self: &Arc<Self>, what: String) -> WriteGuard {
        let key = self.next.fetch_add(1, Ordering::Relaxed) as u64;
        lock(&self.what).insert(key, what);
        self.count.fetch_add(1, Ordering::SeqCst);
        WriteGuard {
            inflight: self.clone(),
            key,
        }
    }
}

/// Ends a write's record when dropped, whatever way the write ended (a panic included).
pub(crate) struct WriteGuard {
    inflight: Arc<InFlight>,
    key: u64,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        lock(&self.inflight.what).remove(&self.key);
        self.inflight.count.fetch_sub(1, Ordering::SeqCst);
        self.inflight.settled.notify_waiters();
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The front end's handle: commands in, events out.
/// How long quitting waits for notifications still being delivered.
const NOTIFY_SETTLE: Duration = Duration::from_secs(5);

pub struct Engine {
    commands: mpsc::Sender<(Command, Option<WriteGuard>)>,
    pub events: mpsc::Receiver<EngineEvent>,
    inflight: Arc<InFlight>,
    stop: watch::Sender<bool>,
    core: tokio::task::JoinHandle<()>,
    notifier: Option<Arc<crate::notify::Notifier>>,
}

/// How quitting went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shutdown {
    /// Writes still unanswered when the wait ended: what each was.
    pub unfinished: Vec<String>,
}

impl Engine {
    /// Starts the engine's tasks on `store` (the full store, or `ReadOnlyStore` for the
    /// wall, which has no way to write).
    pub fn start<B: Backend>(store: B, settings: Settings) -> Engine {
        let (event_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (commands, command_rx) = mpsc::channel(COMMAND_BUFFER);
        let (stop, stop_rx) = watch::channel(false);
        let inflight = Arc::new(InFlight::default());
        let notifier = settings.notifier.clone();
        let core = tokio::spawn(tasks::core(store, settings, command_rx, event_tx, stop_rx));
        Engine {
            commands,
            events,
            inflight,
            stop,
            core,
            notifier,
        }
    }

    /// Queues a command; waits only when the engine is `COMMAND_BUFFER` commands behind.
    /// A write counts as in flight from here, so quitting right after asking for it waits.
    pub async fn send(&self, command: Command) {
        let guard = match &command {
            Command::Perform { id, action, .. } => Some(
                self.inflight
                    .begin(format!("{} of {id}", action.kind().as_str())),
            ),
            Command::SyncTraffic(id) => Some(self.inflight.begin(format!("traffic sync of {id}"))),
            _ => None,
        };
        if self.commands.send((command, guard)).await.is_err() {
            tracing::error!("the engine has stopped; a command was dropped");
        }
    }

    pub fn writes_in_flight(&self) -> usize {
        self.inflight.count.load(Ordering::SeqCst)
    }

    /// Waits until no write is in flight, or `limit` passes.
    pub async fn settle(&self, limit: Duration) -> Shutdown {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.inflight.settled.notified();
            if self.writes_in_flight() == 0 {
                return Shutdown::default();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let unfinished = lock(&self.inflight.what).values().cloned().collect();
                return Shutdown { unfinished };
            }
        }
    }

    /// Stops the drivers (releasing their leases, so another cockpit can take over at once)
    /// and every task, after writes in flight are answered or `limit` passes.
    pub async fn shutdown(self, limit: Duration) -> Shutdown {
        let outcome = self.settle(limit).await;
        // Quitting right after a rollback must still tell people.
        if let Some(n) = &self.notifier
            && !n.settle(NOTIFY_SETTLE).await
        {
            tracing::warn!("quitting with notifications still unsent");
        }
        let _ = self.stop.send(true);
        // The core releases leases on the way out; bounded, so a dead store cannot hold us.
        let _ = tokio::time::timeout(Duration::from_secs(3), self.core).await;
        outcome
    }
}
