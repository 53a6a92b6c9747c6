//! The cockpit's event loop: terminal input, store changes, metric samples and
//! timers become `Msg`s; `update` returns `Effect`s, which run as tokio tasks and
//! report back as `Msg`s. The screen is redrawn only when something changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crossterm::event::Event as TermEvent;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use futures::future::BoxFuture;

use crate::app::state::{AppState, EVENTS_SHOWN};
use crate::app::update::{Effect, Msg, WriteOutcome, update};
use crate::domain::actions::{Action, Context};
use crate::domain::event::Event;
use crate::domain::rollout::{Plan, Rollout, Status};
use crate::metrics::MetricsSource;
use crate::ops::{self, PerformError};
use crate::store::{ReadOnlyStore, RolloutStore, StoreChange, StoreResult};
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
    pub state: AppState,
    pub theme: Theme,
}

/// What the event loop can do with a store. The cockpit gets the full store; `watch`
/// gets `ReadOnlyStore`, which has no write methods, so it cannot write whatever happens.
trait Backend: Clone + Send + Sync + 'static {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>>;
    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>>;
    /// Runs a write and reports its outcome; `None` when this backend cannot write.
    fn perform(&self, id: String, action: Action, actor: String, plan: Plan) -> Option<BoxFuture<'static, WriteOutcome>>;
}

impl Backend for Arc<dyn RolloutStore> {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move { self.list_events(&id, EVENTS_SHOWN).await.map_err(|e| e.to_string()) })
    }

    fn perform(&self, id: String, action: Action, actor: String, plan: Plan) -> Option<BoxFuture<'static, WriteOutcome>> {
        let store = self.clone();
        Some(Box::pin(async move {
            let ctx = Context { actor: &actor, now: Utc::now(), default_plan: &plan };
            let result = tokio::time::timeout(WRITE_TIMEOUT, ops::perform(store.as_ref(), &id, &action, ctx)).await;
            match result {
                Err(_) => WriteOutcome::Failed(format!(
                    "no answer from the store in {}s; check `events {id}` before retrying",
                    WRITE_TIMEOUT.as_secs()
                )),
                Ok(Ok(done)) => WriteOutcome::Done { summary: done.transition.summary, stored: done.stored },
                Ok(Err(PerformError::Conflict { current, changed, .. })) => {
                    WriteOutcome::Conflict { changed, current: *current }
                }
                Ok(Err(e)) => WriteOutcome::Failed(e.to_string()),
            }
        }))
    }
}

impl Backend for ReadOnlyStore {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move { self.list_events(&id, EVENTS_SHOWN).await.map_err(|e| e.to_string()) })
    }

    fn perform(&self, id: String, action: Action, _: String, _: Plan) -> Option<BoxFuture<'static, WriteOutcome>> {
        tracing::error!(rollout = %id, ?action, "read-only watch mode was asked to write; refused");
        None
    }
}

/// Runs until the operator quits or the terminal goes away (SIGHUP/SIGTERM/SIGINT).
/// The terminal is restored on every path, panics included (ratatui's hook).
pub async fn run(cockpit: Cockpit) -> Result<(), String> {
    let Cockpit { store, metrics, refresh, mut state, theme } = cockpit;
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, store, metrics, refresh, &mut state, theme).await;
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
    let result = event_loop(&mut terminal, store, metrics, refresh, &mut state, theme).await;
    ratatui::restore();
    result
}

async fn event_loop<B: Backend>(
    terminal: &mut ratatui::DefaultTerminal,
    store: B,
    metrics: Option<Arc<dyn MetricsSource>>,
    refresh: Duration,
    state: &mut AppState,
    theme: Theme,
) -> Result<(), String> {
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
    let watcher = tokio::spawn(forward_store_changes(store.clone(), msg_tx.clone()));
    let sampler =
        metrics.map(|m| tokio::spawn(sample_loop(m, refresh, rollouts_rx, msg_tx.clone())));

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut dirty = true;
    let outcome = loop {
        if dirty {
            state.now = Utc::now();
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
            _ = tokio::time::sleep(Duration::from_secs(1)), if ticking => Msg::Tick(Utc::now()),
        };
        state.now = Utc::now();
        let publish = matches!(msg, Msg::Store(_) | Msg::Performed { .. });
        let effects = update(state, msg);
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
                Effect::Perform { id, action } => {
                    let tx = msg_tx.clone();
                    match store.perform(id.clone(), action.clone(), state.actor.clone(), state.default_plan.clone()) {
                        Some(write) => {
                            tokio::spawn(async move {
                                let outcome = write.await;
                                tracing::info!(rollout = %id, ?action, ?outcome, "cockpit write");
                                let _ = tx.send(Msg::Performed { id, action, outcome });
                            });
                        }
                        None => {
                            let outcome = WriteOutcome::Failed("watch mode is read-only".into());
                            let _ = tx.send(Msg::Performed { id, action, outcome });
                        }
                    }
                }
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
    if let Some(s) = sampler {
        s.abort();
    }
    outcome
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
    mut rollouts: watch::Receiver<Vec<Rollout>>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    // The store's first snapshot arrives just after start; wait briefly so the first
    // samples are not a whole refresh period late.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), rollouts.wait_for(|r| !r.is_empty())).await;
    let mut interval = tokio::time::interval(refresh);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let current: Vec<Rollout> = rollouts
            .borrow()
            .iter()
            .filter(|r| !matches!(r.status, Status::Planned))
            .cloned()
            .collect();
        let samples = futures::future::join_all(current.iter().map(|r| {
            let source = source.clone();
            async move { (r.id.clone(), source.sample(r, Utc::now()).await) }
        }))
        .await;
        for (id, sample) in samples {
            if tx.send(Msg::Sample { id, sample }).is_err() {
                return;
            }
        }
    }
}
