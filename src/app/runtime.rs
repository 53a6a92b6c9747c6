//! The cockpit's thin shell around the engine: the terminal, one `select` over keys, engine
//! events, signals and a 1 s clock; `update` turns each into state and effects; effects go to
//! the engine; the screen is drawn only when something visible changed (`state.dirty`).
//! Ctrl-Z suspends: the terminal is restored, the process stops, and `fg` redraws it all.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::app::sgr::ClassicColors;
use crate::app::state::{AppState, ToastLevel};
use crate::app::update::{Effect, Msg, update};
use crate::engine::clock::Clock;
use crate::engine::{Engine, EngineEvent, Settings, WriteOutcome};
use crate::metrics::MetricsSource;
use crate::store::{ReadOnlyStore, RolloutStore};
use crate::ui::{self, Theme};

/// Set in tests only: the cockpit panics right after its first draw.
pub const PANIC_FOR_TEST_ENV: &str = "ROLLOUT_TUI_PANIC_FOR_TEST";
/// How long quitting waits for writes in flight before it gives up on them (they may still
/// land; the message says how to check).
pub const QUIT_WAIT: Duration = Duration::from_secs(10);
/// Keys waiting for the shell; a stalled screen slows the key reader instead of growing.
const KEY_BUFFER: usize = 64;

pub struct Cockpit {
    pub store: Arc<dyn RolloutStore>,
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub refresh: Duration,
    pub clock: Clock,
    pub state: AppState,
    pub theme: Theme,
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    pub actuators: crate::actuator::Actuators,
}

/// How a run of the shell ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellEnd {
    /// Writes still unanswered when quitting stopped waiting: what each was.
    pub unfinished: Vec<String>,
    /// Writes that failed while quitting waited for them: what each was and why.
    pub failed: Vec<String>,
}

/// Counts of what the shell did, readable while it runs (tests wait on them).
#[derive(Debug, Default)]
pub struct ShellProbe {
    /// Frames drawn.
    pub frames: std::sync::atomic::AtomicUsize,
    /// Messages handled (keys, engine events, ticks).
    pub messages: std::sync::atomic::AtomicUsize,
}

impl ShellProbe {
    pub fn frames(&self) -> usize {
        self.frames.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn messages(&self) -> usize {
        self.messages.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn count(counter: &std::sync::atomic::AtomicUsize) {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn settings(
    state: &AppState,
    metrics: Option<Arc<dyn MetricsSource>>,
    refresh: Duration,
    clock: Clock,
) -> Settings {
    Settings {
        metrics,
        refresh,
        clock,
        gates: state.gates.clone(),
        policy: state.policy.clone(),
        default_plan: state.default_plan.clone(),
        actor: state.actor.clone(),
        holder: format!("{}#{}", state.actor, std::process::id()),
        freeze_windows: state.freeze_windows.clone(),
        notifier: None,
        actuators: crate::actuator::Actuators::default(),
        splits: crate::actuator::acting::SplitReader::default(),
    }
}

/// Runs until the operator quits or the terminal goes away (SIGHUP/SIGTERM/SIGINT).
/// The terminal is restored on every path, panics of the screen's own code included.
pub async fn run(cockpit: Cockpit) -> Result<(), String> {
    let Cockpit {
        store,
        metrics,
        refresh,
        clock,
        mut state,
        theme,
        notifier,
        actuators,
    } = cockpit;
    let mut settings = settings(&state, metrics, refresh, clock.clone());
    settings.notifier = notifier;
    settings.splits = crate::actuator::acting::SplitReader::new(actuators.clone());
    settings.actuators = actuators;
    let engine = Engine::start(store, settings);
    run_in_terminal(engine, &mut state, theme, clock).await
}

/// The read-only wall screen: the same shell on an engine that holds only a `ReadOnlyStore`
/// and reads Cloud Run's splits through `splits` (no actuator: it sets none).
pub async fn run_watch(
    store: ReadOnlyStore,
    metrics: Option<Arc<dyn MetricsSource>>,
    refresh: Duration,
    clock: Clock,
    mut state: AppState,
    theme: Theme,
    splits: crate::actuator::acting::SplitReader,
) -> Result<(), String> {
    let mut settings = settings(&state, metrics, refresh, clock.clone());
    settings.splits = splits;
    let engine = Engine::start(store, settings);
    run_in_terminal(engine, &mut state, theme, clock).await
}

async fn run_in_terminal(
    engine: Engine,
    state: &mut AppState,
    theme: Theme,
    clock: Clock,
) -> Result<(), String> {
    let mut terminal = enter_terminal().map_err(|e| format!("cannot open the terminal: {e}"))?;
    let keys = read_keys();
    let probe = ShellProbe::default();
    let end = run_shell(
        &mut terminal,
        engine,
        keys,
        state,
        theme,
        clock,
        &probe,
        Some(stop_until_resumed),
    )
    .await;
    restore_terminal();
    let end = end?;
    let mut problems = end.failed;
    if !end.unfinished.is_empty() {
        problems.push(format!(
            "quit with {} write(s) still unanswered after {}s: {}. They may still land: check `rollout-tui events ID`",
            end.unfinished.len(),
            QUIT_WAIT.as_secs(),
            end.unfinished.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Raw mode and the alternate screen, with a panic hook that restores the terminal only for
/// a panic of the screen's own code: a background task's panic is the engine's to report
/// (`EngineEvent::TaskFailed`), and restoring then would leave the cockpit drawing on a
/// cooked terminal.
fn enter_terminal() -> std::io::Result<Screen> {
    let ui_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let background = std::thread::current().id() != ui_thread
            || crate::engine::supervise::in_background_task();
        if background {
            tracing::error!(panic = %info, "a background task panicked; the cockpit goes on");
            return;
        }
        restore_terminal();
        previous(info);
    }));
    take_terminal()?;
    Terminal::new(ratatui::backend::CrosstermBackend::new(ClassicColors::new(
        std::io::stdout(),
    )))
}

/// The real terminal, its colours written in the classic codes every terminal reads.
type Screen = Terminal<ratatui::backend::CrosstermBackend<ClassicColors<std::io::Stdout>>>;

fn take_terminal() -> std::io::Result<()> {
    crossterm::terminal::enable_raw_mode()?;
    // Bracketed paste: a pasted list of user keys arrives as one text, not as keystrokes
    // that could trigger commands.
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableBracketedPaste
    )
}

/// Ctrl-Z in raw mode is only a key: the shell gives the terminal back as on quitting, stops
/// the process the way the terminal would have (SIGTSTP, so the shell's job control sees a
/// stopped job), and takes the terminal again once `fg` continues it.
fn stop_until_resumed() -> std::io::Result<()> {
    restore_terminal();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP).map_err(std::io::Error::from)?;
    take_terminal()
}

fn is_suspend_key(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('z')
        && key.modifiers.contains(KeyModifiers::CONTROL)
        && key.kind != KeyEventKind::Release
}

fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableBracketedPaste);
    ratatui::restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
}

/// crossterm's read blocks; a plain thread keeps it off the runtime. It ends when the
/// terminal goes away (read fails) or the shell is gone.
fn read_keys() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(KEY_BUFFER);
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// The event loop, on any ratatui backend (tests use `TestBackend` and count frames). Without
/// a real terminal there is nothing to suspend: Ctrl-Z goes to the reducer like any key.
pub async fn shell<T: ratatui::backend::Backend>(
    terminal: &mut Terminal<T>,
    engine: Engine,
    keys: mpsc::Receiver<TermEvent>,
    state: &mut AppState,
    theme: Theme,
    clock: Clock,
    probe: &ShellProbe,
) -> Result<ShellEnd, String> {
    run_shell(terminal, engine, keys, state, theme, clock, probe, None).await
}

/// `suspend` gives the terminal back and returns once the process is resumed.
#[allow(clippy::too_many_arguments)]
async fn run_shell<T: ratatui::backend::Backend>(
    terminal: &mut Terminal<T>,
    mut engine: Engine,
    mut keys: mpsc::Receiver<TermEvent>,
    state: &mut AppState,
    theme: Theme,
    clock: Clock,
    probe: &ShellProbe,
    suspend: Option<fn() -> std::io::Result<()>>,
) -> Result<ShellEnd, String> {
    state.clock_rate = clock.rate();
    let mut startup: Vec<Effect> = state
        .auto_on_start
        .iter()
        .cloned()
        .map(|id| crate::engine::Command::StartAuto(id).into())
        .collect();
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    state.dirty = true;
    let outcome = loop {
        if state.dirty {
            state.now = clock.now();
            if let Err(e) = terminal.draw(|f| ui::render(state, theme, f)) {
                break Err(format!("cannot draw: {e}"));
            }
            ShellProbe::count(&probe.frames);
            state.dirty = false;
            // Lets the end-to-end tests prove the panic path restores the terminal.
            if std::env::var_os(PANIC_FOR_TEST_ENV).is_some() {
                panic!("panic requested by {PANIC_FOR_TEST_ENV} (terminal restore test)");
            }
        }
        // Woken by the clock only when time alone changes the screen (a countdown each
        // second, the wall once a minute). The deadline is absolute, so messages arriving in
        // between never push it back.
        let wake = state.next_clock_change().map(|at| {
            let wait = (at - clock.now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + wait.div_f64(clock.rate().max(1.0))
        });
        let msg = tokio::select! {
            ev = keys.recv() => match ev {
                Some(TermEvent::Key(k)) if is_suspend_key(&k) && suspend.is_some() => {
                    if let Some(suspend) = suspend
                        && let Err(e) = suspend()
                    {
                        break Err(format!("cannot suspend or resume the terminal: {e}"));
                    }
                    if let Err(e) = redraw_everything(terminal) {
                        break Err(format!("cannot draw: {e}"));
                    }
                    state.dirty = true;
                    continue;
                }
                Some(TermEvent::Key(k)) => Msg::Key(k),
                Some(TermEvent::Resize(..)) => Msg::Resize,
                Some(TermEvent::Paste(text)) => Msg::Paste(text),
                Some(_) => continue,
                None => break Ok(()),
            },
            Some(event) = engine.events.recv() => Msg::Engine(event),
            _ = sigterm.recv() => break Ok(()),
            _ = sighup.recv() => break Ok(()),
            _ = sigint.recv() => break Ok(()),
            _ = sleep_until(wake) => Msg::Tick(clock.now()),
        };
        state.now = clock.now();
        let mut effects = update(state, msg);
        ShellProbe::count(&probe.messages);
        effects.append(&mut startup);
        for effect in effects {
            match effect {
                Effect::Engine(command) => engine.send(command).await,
                Effect::Alert(bytes) => {
                    use std::io::Write as _;
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&bytes).and_then(|()| out.flush());
                }
                Effect::Quit => {}
            }
        }
        state.pending_writes = engine.writes_in_flight();
        if state.quit {
            break Ok(());
        }
    };
    let end = finish_writes(terminal, &mut engine, state, theme, &clock, probe).await;
    engine.shutdown(Duration::ZERO).await;
    outcome.map(|()| end)
}

/// After a suspension the screen holds whatever the shell wrote: clear it and forget the last
/// frame, so the next draw writes every cell. (`Terminal::clear` would ask the terminal for
/// the cursor position, and the key reader would swallow the answer.)
fn redraw_everything<T: ratatui::backend::Backend>(
    terminal: &mut Terminal<T>,
) -> Result<(), T::Error> {
    terminal
        .backend_mut()
        .clear_region(ratatui::backend::ClearType::All)?;
    terminal.swap_buffers();
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Quitting waits for writes in flight, at most `QUIT_WAIT`, and says so on screen; what
/// they answer meanwhile is shown, and a failure is kept to be said after the screen closes.
async fn finish_writes<T: ratatui::backend::Backend>(
    terminal: &mut Terminal<T>,
    engine: &mut Engine,
    state: &mut AppState,
    theme: Theme,
    clock: &Clock,
    probe: &ShellProbe,
) -> ShellEnd {
    let deadline = tokio::time::Instant::now() + QUIT_WAIT;
    let mut failed = Vec::new();
    loop {
        let waiting = engine.writes_in_flight();
        if waiting == 0 {
            return ShellEnd {
                unfinished: Vec::new(),
                failed,
            };
        }
        state.now = clock.now();
        state.toast = Some(crate::app::state::Toast {
            text: format!(
                "quitting: waiting for {waiting} write(s) to be answered (at most {}s)…",
                QUIT_WAIT.as_secs()
            ),
            level: ToastLevel::Info,
            at: state.now,
        });
        let _ = terminal.draw(|f| ui::render(state, theme, f));
        ShellProbe::count(&probe.frames);
        tokio::select! {
            Some(event) = engine.events.recv() => {
                if let EngineEvent::Written { id, action, outcome: WriteOutcome::Failed(why) } = &event {
                    failed.push(format!("{} of {id} failed: {why}", action.kind().as_str()));
                }
                if let EngineEvent::Written { id, action, outcome: WriteOutcome::Conflict { .. } } = &event {
                    failed.push(format!(
                        "{} of {id} was not written: the rollout changed meanwhile",
                        action.kind().as_str()
                    ));
                }
                update(state, Msg::Engine(event));
                ShellProbe::count(&probe.messages);
            }
            _ = tokio::time::sleep_until(deadline) => {
                let unfinished = engine.settle(Duration::ZERO).await.unfinished;
                return ShellEnd { unfinished, failed };
            }
        }
    }
}
