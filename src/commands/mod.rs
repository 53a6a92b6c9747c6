//! The headless commands: each reads or changes the store and prints for
//! people (tables) or machines (`--json`).
//!
//! This module resolves the environment, dispatches, and holds the output helpers every
//! command prints through; the commands themselves live in the submodules.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::cli::{Cli, Command, UsersCommand};
use crate::config::{Config, ConfigSource};
use crate::domain::actions::{self, Action, ActionError, UserList};
use crate::domain::rollout::{Plan, PlanPreset, Rollout};
use crate::domain::text::{escape_keeping_lines, is_unsafe_for_terminal};
use crate::domain::units::Percent;
use crate::ops::PerformError;
use crate::store::local::LocalStore;
use crate::store::{RolloutStore, StoreError, StoredRollout};

/// Human output. Whatever it quotes (documents other tools wrote, server errors, user keys)
/// reaches the terminal with every control and invisible formatting character escaped.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::commands::say_raw(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod check_config;
mod edit;
mod inspect;
mod notify_test;
mod report;
mod screens;
mod status;
mod traffic;
mod whatif;

use check_config::check_config;
use edit::{act, create, freeze, sync_traffic, unfreeze};
use inspect::{assign_user, events, list_users};
use notify_test::notify_test;
use report::report;
use screens::{cockpit, demo, watch};
use status::status;

/// A command that did not succeed: what to tell the user and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// The input was wrong (exit 2, like a usage error).
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
    /// The input was fine but the operation could not be done (exit 1).
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::failed(e.to_string())
    }
}

impl From<PerformError> for Failure {
    /// Exit 2 is for input that is wrong whatever the rollout's state; a state that refuses
    /// the action ("already rolled back", "nothing to change") is exit 1.
    fn from(e: PerformError) -> Self {
        match e {
            PerformError::Refused(ActionError::Invalid(_)) => Failure::invalid(e.to_string()),
            _ => Failure::failed(e.to_string()),
        }
    }
}

pub type CmdResult = Result<(), Failure>;

/// How long a command waits for its notifications to be delivered before it exits.
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything a command needs, resolved once from flags, env and config.
pub struct Env {
    pub config: Config,
    pub config_source: ConfigSource,
    pub data_dir: PathBuf,
    pub actor: String,
    /// Rollouts the cockpit drives from the start.
    pub auto: Vec<String>,
    /// `--ascii`: the screens draw with ASCII only, whatever the locale says.
    pub ascii: bool,
    /// Why the log file is not being written, if it is not.
    pub log_problem: Option<String>,
}

impl Env {
    /// What a write from this command carries: who, when, the config's freeze windows and
    /// `plan` (the default plan, which the caller keeps alive).
    pub fn context<'a>(
        &'a self,
        plan: &'a crate::domain::rollout::Plan,
        now: chrono::DateTime<chrono::Utc>,
    ) -> actions::Context<'a> {
        actions::Context {
            actor: &self.actor,
            now,
            default_plan: plan,
            freeze_windows: &self.config.freeze.windows,
        }
    }

    /// The Cloud Run clients writes also set traffic through (`[actuator]`).
    pub fn actuators(&self) -> crate::actuator::Actuators {
        crate::actuator::Actuators::new(&self.config.actuator)
    }

    pub fn resolve(cli: &Cli) -> Result<Env, Failure> {
        let config_source =
            Config::locate(cli.config.as_deref()).map_err(|e| Failure::invalid(e.to_string()))?;
        let config = Config::load(&config_source).map_err(|e| Failure::invalid(e.to_string()))?;
        let data_dir = config
            .data_dir(cli.data_dir.as_deref())
            .map_err(|e| Failure::invalid(e.to_string()))?;
        let actor = config.actor(cli.actor.as_deref());
        if cli.actor.is_some() {
            actions::validate_actor(&actor)
                .map_err(|e| Failure::invalid(format!("--actor / ROLLOUT_TUI_ACTOR: {e}")))?;
        }
        Ok(Env {
            config,
            config_source,
            data_dir,
            actor,
            auto: Vec::new(),
            ascii: false,
            log_problem: None,
        })
    }

    /// The demo world recorded in the local store, when this is a demo store (see
    /// `demo::World`): the clock and traffic every process on it must share.
    pub async fn demo_world(&self) -> Result<Option<(crate::demo::World, LocalStore)>, Failure> {
        if self.config.store.kind == "firestore" {
            return Ok(None);
        }
        let path = LocalStore::default_path(&self.data_dir);
        if !path.exists() {
            return Ok(None);
        }
        let store = LocalStore::open_read_only(&path)?;
        let world = crate::demo::World::load(&store)
            .await
            .map_err(Failure::failed)?;
        Ok(world.map(|w| (w, store)))
    }

    /// The metrics source and clock for this store: on a demo store the demo's own
    /// simulator and clock (whatever `[metrics]` says, the demo store's traffic is the
    /// demo's), otherwise the configured source on the wall clock.
    pub async fn source_and_clock(
        &self,
    ) -> Result<
        (
            Option<Arc<dyn crate::metrics::MetricsSource>>,
            crate::engine::clock::Clock,
        ),
        Failure,
    > {
        if let Some((world, store)) = self.demo_world().await? {
            let source: Arc<dyn crate::metrics::MetricsSource> =
                Arc::new(crate::demo::Linked::new(&world, store));
            return Ok((
                Some(source.clone()),
                crate::engine::clock::Clock::Simulated(source),
            ));
        }
        let source =
            crate::metrics::build_source(&self.config.metrics).map_err(Failure::invalid)?;
        Ok((source, crate::engine::clock::Clock::Wall))
    }

    /// "Now" for what a command writes: the demo clock on a demo store. An unreadable demo
    /// record never blocks a write (a rollback must always go through): the wall clock then.
    pub async fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match self.demo_world().await {
            Ok(Some((world, _))) => world.clock.now(),
            Ok(None) => chrono::Utc::now(),
            Err(e) => {
                tracing::warn!(error = %e.message, "demo record unreadable; using the wall clock");
                chrono::Utc::now()
            }
        }
    }

    /// Tells the `[[notify]]` targets what this command did: the writer announces its own
    /// transitions (a halt, a rollback, a freeze), and waits a few seconds for delivery. A
    /// target that cannot be reached is reported, never a reason for the command to fail.
    pub async fn announce(
        &self,
        rollout: Option<&Rollout>,
        events: &[crate::domain::event::Event],
        system: &[crate::notify::Condition],
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if self.config.notify.is_empty() {
            return;
        }
        let notifier = match crate::notify::Notifier::from_config(&self.config.notify, now) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("notifications not sent: {}", escape_keeping_lines(&e));
                return;
            }
        };
        notifier.observe_events(rollout, events);
        if !system.is_empty() {
            notifier.observe_state(None, system, now);
        }
        let settled = notifier.settle(ANNOUNCE_WAIT).await;
        if let Some(problem) = notifier.status().problem() {
            eprintln!("notifications: {}", escape_keeping_lines(&problem));
        } else if !settled {
            eprintln!(
                "notifications: still being sent after {}s; some may be lost",
                ANNOUNCE_WAIT.as_secs()
            );
        }
    }

    pub fn default_plan(&self) -> Plan {
        // Validated when the config was loaded.
        self.config
            .default_plan()
            .unwrap_or_else(|_| Plan::preset(PlanPreset::Canary))
    }

    pub fn open_store(&self) -> Result<Arc<dyn RolloutStore>, Failure> {
        match self.config.store.kind.as_str() {
            "firestore" => Ok(Arc::new(crate::store::firestore::FirestoreStore::open(
                &self.config.store,
            )?)),
            _ => open_local_store(&self.data_dir),
        }
    }

    /// The store for commands that only read: the local one is opened read-only and must exist.
    pub fn open_store_read_only(&self) -> Result<Arc<dyn RolloutStore>, Failure> {
        match self.config.store.kind.as_str() {
            "firestore" => self.open_store(),
            _ => open_local_store_read_only(&self.data_dir),
        }
    }
}

pub fn open_local_store(data_dir: &Path) -> Result<Arc<dyn RolloutStore>, Failure> {
    let store = LocalStore::open(&LocalStore::default_path(data_dir))?;
    Ok(Arc::new(store))
}

/// Opens the local store without creating or changing anything. A missing store is an
/// error: an empty one made here would look like a healthy system with no rollouts.
pub fn open_local_store_read_only(data_dir: &Path) -> Result<Arc<dyn RolloutStore>, Failure> {
    let path = LocalStore::default_path(data_dir);
    if !path.exists() {
        let what = if data_dir.is_dir() {
            format!("{} does not exist", path.display())
        } else {
            format!("the data directory {} does not exist", data_dir.display())
        };
        return Err(Failure::failed(format!(
            "no rollout store in {}: {what}. Check --data-dir (or ROLLOUT_TUI_DATA_DIR, or data_dir in the config); \
             if this is where the store should be, `rollout-tui create ID --version V` makes it",
            data_dir.display()
        )));
    }
    let store = LocalStore::open_read_only(&path)?;
    Ok(Arc::new(store))
}

/// Commands that only read the store: they create nothing, not even the data directory.
fn is_read_only(command: &Option<Command>) -> bool {
    matches!(
        command,
        Some(
            Command::Status { .. }
                | Command::Events { .. }
                | Command::Assign { .. }
                | Command::Watch { .. }
                | Command::CheckConfig
                | Command::NotifyTest
                | Command::Report(_)
                | Command::Backtest(_)
                | Command::Simulate(_)
                | Command::Users {
                    command: UsersCommand::List { .. },
                }
        )
    )
}

pub async fn run(cli: Cli) -> CmdResult {
    let mut env = Env::resolve(&cli)?;
    // The demo never touches the operator's real store: it lives in demo/ under the data
    // directory, or exactly where --data-dir says (so `status --json` can read it).
    if matches!(cli.command, Some(Command::Demo { .. })) && cli.data_dir.is_none() {
        env.data_dir = env.data_dir.join("demo");
    }
    // A log that cannot be written never stops or clutters a command; check-config says so.
    env.log_problem = if is_read_only(&cli.command) {
        // A reader logs only into a log directory that is already there and writable; one
        // that cannot (a user with read access only) has nothing to record that matters.
        crate::logging::init_existing(&env.data_dir, &env.config.log.level).err()
    } else {
        crate::logging::init(&env.data_dir, &env.config.log.level).err()
    };
    tracing::debug!(command = ?cli.command, actor = %env.actor, "command");
    if !cli.auto.is_empty() && !matches!(cli.command, None | Some(Command::Demo { .. })) {
        return Err(Failure::invalid(
            "--auto ID applies to the cockpit and demo only",
        ));
    }
    for id in &cli.auto {
        actions::validate_rollout_id(id).map_err(|e| Failure::invalid(format!("--auto: {e}")))?;
    }
    env.auto = cli.auto.clone();
    env.ascii = cli.ascii;
    let Some(command) = cli.command else {
        return cockpit(&env).await;
    };
    match command {
        Command::Demo { speed } => demo(&env, speed).await,
        Command::Watch {
            rotate,
            stale_after,
        } => watch(&env, rotate, stale_after.as_deref()).await,
        Command::CheckConfig => check_config(&env),
        Command::NotifyTest => notify_test(&env).await,
        Command::Report(args) => report(&env, args).await,
        Command::Backtest(args) => whatif::backtest(&env, args).await,
        Command::Simulate(args) => whatif::simulate(&env, args),
        Command::Create(args) => create(&env, args).await,
        Command::Status { id, json } => status(&env, id.as_deref(), json).await,
        Command::Assign { id, user, json } => assign_user(&env, &id, &user, json).await,
        Command::Events { id, limit, json } => events(&env, &id, limit as usize, json).await,
        Command::Users {
            command: UsersCommand::List { id, excluded, json },
        } => list_users(&env, &id, excluded, json).await,
        Command::Users {
            command: UsersCommand::Add { id, keys, excluded },
        } => {
            act(
                &env,
                &id,
                Action::AddUsers {
                    list: user_list(excluded),
                    keys,
                },
            )
            .await
        }
        Command::Users {
            command: UsersCommand::Remove { id, keys, excluded },
        } => {
            act(
                &env,
                &id,
                Action::RemoveUsers {
                    list: user_list(excluded),
                    keys,
                },
            )
            .await
        }
        Command::SetRevisions { id, stable, canary } => {
            act(&env, &id, Action::SetRevisions { stable, canary }).await
        }
        Command::SetPercent { id, percent } => {
            let p: Percent = percent
                .parse()
                .map_err(|e| Failure::invalid(format!("invalid percentage: {e}")))?;
            act(&env, &id, Action::SetPercent(p)).await
        }
        Command::Advance { id } => act(&env, &id, Action::Advance).await,
        Command::Pause { id, reason } => act(&env, &id, Action::Pause { reason }).await,
        Command::Resume { id } => act(&env, &id, Action::Resume).await,
        Command::Rollback { id, reason } => act(&env, &id, Action::Rollback { reason }).await,
        Command::SyncTraffic { id } => sync_traffic(&env, &id).await,
        Command::Freeze { reason, pause_all } => freeze(&env, &reason, pause_all).await,
        Command::Unfreeze => unfreeze(&env).await,
        Command::Promote { id, force } => {
            if !force {
                return Err(Failure::invalid(format!(
                    "promote skips the remaining stages and their health gates; run `promote {id} --force` if you mean it"
                )));
            }
            act(&env, &id, Action::Promote).await
        }
    }
}

fn user_list(excluded: bool) -> UserList {
    if excluded {
        UserList::Excluded
    } else {
        UserList::Canary
    }
}

fn say_raw(text: &str) {
    print!("{}", escape_keeping_lines(text));
}

/// JSON for scripts. serde_json escapes C0 controls only; DEL, C1 controls and invisible
/// formatting characters are written as `\uXXXX` too, so piping it to a terminal is as safe
/// as the tables (every such character sits inside a string, where the escape is valid JSON).
fn json_text(value: &Value) -> String {
    let raw = value.to_string();
    if !raw.chars().any(is_unsafe_for_terminal) {
        return raw;
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        if is_unsafe_for_terminal(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes JSON and a newline; a reader that stopped reading (`| head -c 10`) ends it quietly.
fn print_json(value: &Value) -> CmdResult {
    write_out(json_text(value).as_bytes())
}

fn write_out(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(bytes)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::failed(format!("cannot write the output: {e}"))),
    }
}

async fn get_existing(store: &dyn RolloutStore, id: &str) -> Result<StoredRollout, Failure> {
    store
        .get(id)
        .await?
        .ok_or_else(|| Failure::failed(format!("rollout '{id}' does not exist")))
}

async fn parsed(store: &dyn RolloutStore, id: &str) -> Result<Rollout, Failure> {
    get_existing(store, id)
        .await?
        .parse()
        .map_err(|e| Failure::failed(e.to_string()))
}
