//! The headless commands: each reads or changes the store and prints for
//! people (tables) or machines (`--json`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::cli::{Cli, Command, CreateArgs, HashingArg, PlanArg, UsersCommand};
use crate::config::{Config, ConfigSource};
use crate::domain::actions::{self, Action, ActionError, Context, NewRollout, UserList};
use crate::domain::assign;
use crate::domain::event::Event;
use crate::domain::health::{GateReport, HealthSample};
use crate::domain::rollout::{Hashing, Plan, PlanPreset, Rollout};
use crate::domain::text::{escape_keeping_lines, is_unsafe_for_terminal};
use crate::domain::units::Percent;
use crate::ops::{self, PerformError};
use crate::present::{self, escape, format_duration};
use crate::store::local::LocalStore;
use crate::store::{RolloutStore, StoreError, StoredRollout};

/// Human output. Whatever it quotes (documents other tools wrote, server errors, user keys)
/// reaches the terminal with every control and invisible formatting character escaped.
macro_rules! say {
    ($($arg:tt)*) => {
        say_raw(&format!("{}\n", format_args!($($arg)*)))
    };
}

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

/// Everything a command needs, resolved once from flags, env and config.
pub struct Env {
    pub config: Config,
    pub config_source: ConfigSource,
    pub data_dir: PathBuf,
    pub actor: String,
    /// Rollouts the cockpit drives from the start.
    pub auto: Vec<String>,
    /// Why the log file is not being written, if it is not.
    pub log_problem: Option<String>,
}

impl Env {
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
            log_problem: None,
        })
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

async fn cockpit(env: &Env) -> CmdResult {
    let store = env.open_store()?;
    let metrics = crate::metrics::build_source(&env.config.metrics).map_err(Failure::invalid)?;
    open_cockpit(
        env,
        store,
        metrics,
        env.config.metrics.refresh,
        // Real stores get real timestamps, whatever the simulator's demo clock says.
        crate::engine::clock::Clock::Wall,
        "rollout-tui",
    )
    .await
}

async fn demo(env: &Env, speed: Option<f64>) -> CmdResult {
    let mut metrics = env.config.metrics.clone();
    if let Some(speed) = speed {
        if !(speed.is_finite() && (1.0..=3600.0).contains(&speed)) {
            return Err(Failure::invalid(format!(
                "--speed {speed}: give a factor from 1 (real time) to 3600 (an hour a second)"
            )));
        }
        metrics.simulator.time_compression = speed;
    }
    // Before seeding: without a terminal the demo must leave the data directory alone.
    require_terminal()?;
    let store = open_local_store(&env.data_dir)?;
    crate::demo::seed_if_empty(store.as_ref(), Utc::now()).await?;
    let simulator = crate::demo::simulator(&metrics);
    // A compressed simulator clock drives the whole cockpit: stage timers, the driver and
    // the timestamps it writes (the demo store is private to the demo).
    let clock = if metrics.simulator.time_compression > 1.0 {
        crate::engine::clock::Clock::Simulated(simulator.clone())
    } else {
        crate::engine::clock::Clock::Wall
    };
    // A demo should feel live: sample at least every few seconds.
    let refresh = env.config.metrics.refresh.min(crate::demo::REFRESH);
    open_cockpit(
        env,
        store,
        Some(simulator),
        refresh,
        clock,
        "rollout-tui demo",
    )
    .await
}

async fn watch(env: &Env, rotate: u64, stale_after: Option<&str>) -> CmdResult {
    let stale_after = match stale_after {
        Some(text) => crate::domain::units::parse_duration(text)
            .map_err(|e| Failure::invalid(format!("--stale-after: {e}")))?,
        None => env.config.gates.max_staleness,
    };
    // Only the read-only type leaves this function: watch mode cannot write. Opening it
    // creates nothing, so a missing store is reported before the terminal is checked.
    let store = crate::store::ReadOnlyStore::new(env.open_store_read_only()?);
    require_terminal()?;
    let now = Utc::now();
    let mut state =
        crate::app::state::AppState::new("rollout-tui watch", store.describe(), None, now);
    state.keys = env.config.keymap().map_err(Failure::invalid)?;
    state.gates = env.config.gates.clone();
    state.wall = Some(crate::app::state::Wall {
        rotate_every: std::time::Duration::from_secs(rotate),
        index: 0,
        last_rotate: now,
        paused: false,
        stale_after,
    });
    let metrics = crate::metrics::build_source(&env.config.metrics).map_err(Failure::invalid)?;
    state.metrics_desc = metrics.as_ref().map(|m| m.describe());
    crate::app::runtime::run_watch(
        store,
        metrics,
        env.config.metrics.refresh,
        state,
        crate::ui::Theme::from_env(),
    )
    .await
    .map_err(Failure::failed)
}

fn require_terminal() -> CmdResult {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(Failure::invalid(
            "the cockpit needs a terminal; for scripts use `status --json` and the other commands",
        ))
    }
}

async fn open_cockpit(
    env: &Env,
    store: Arc<dyn RolloutStore>,
    metrics: Option<Arc<dyn crate::metrics::MetricsSource>>,
    refresh: std::time::Duration,
    clock: crate::engine::clock::Clock,
    title: &str,
) -> CmdResult {
    require_terminal()?;
    let mut state = crate::app::state::AppState::new(
        title,
        store.describe(),
        metrics.as_ref().map(|m| m.describe()),
        clock.now(),
    );
    state.actor = env.actor.clone();
    state.keys = env.config.keymap().map_err(Failure::invalid)?;
    state.gates = env.config.gates.clone();
    state.default_plan = env.default_plan();
    state.policy = env.config.policy.clone();
    state.auto_on_start = env.auto.clone();
    if let Some(sim) = metrics.as_ref().and_then(|m| m.simulator()) {
        state.simulated = true;
        state.faults = sim.all_regressions();
    }
    let cockpit = crate::app::runtime::Cockpit {
        store,
        metrics,
        refresh,
        clock,
        state,
        theme: crate::ui::Theme::from_env(),
    };
    crate::app::runtime::run(cockpit)
        .await
        .map_err(Failure::failed)
}

fn user_list(excluded: bool) -> UserList {
    if excluded {
        UserList::Excluded
    } else {
        UserList::Canary
    }
}

async fn act(env: &Env, id: &str, action: Action) -> CmdResult {
    let store = env.open_store()?;
    let plan = env.default_plan();
    let ctx = Context {
        actor: &env.actor,
        now: Utc::now(),
        default_plan: &plan,
    };
    let done = ops::perform(store.as_ref(), id, &action, ctx)
        .await
        .inspect_err(|e| {
            tracing::warn!(rollout = id, error = %e, "action refused or failed");
        })?;
    tracing::info!(rollout = id, actor = %env.actor, summary = %done.transition.summary, revision = %done.stored.revision, "action applied");
    match done.stored.parse() {
        Ok(after) => say!(
            "{}: {} (now {} at {}, revision {})",
            id,
            done.transition.summary,
            present::status_label(after.status),
            after.percentage,
            done.stored.revision
        ),
        // Only a rollback is written to a malformed document; it stays malformed.
        Err(e) => {
            say!(
                "{}: {} (revision {})",
                id,
                done.transition.summary,
                done.stored.revision
            );
            eprintln!(
                "{}",
                escape_keeping_lines(&format!(
                    "warning: {e}; fix the document before changing it further"
                ))
            );
        }
    }
    if done.retries > 0 {
        say!("note: the rollout changed meanwhile; re-checked and applied on the current document");
    }
    Ok(())
}

async fn create(env: &Env, args: CreateArgs) -> CmdResult {
    let plan = match args.plan {
        None => env.default_plan(),
        Some(PlanArg::Canary) => Plan::preset(PlanPreset::Canary),
        Some(PlanArg::Tiers) => Plan::preset(PlanPreset::Tiers),
        Some(PlanArg::Cohorts) => Plan::preset(PlanPreset::Cohorts),
    };
    let hashing = match args.hashing {
        None => env.config.default_hashing().map_err(Failure::invalid)?,
        Some(HashingArg::FractionalV1) => Hashing::FractionalV1,
        Some(HashingArg::UnleashV1) => Hashing::UnleashV1,
    };
    let new = NewRollout {
        id: args.id.clone(),
        version: args.version,
        stable_version: args.stable_version,
        plan,
        hashing,
        stable_revision: args.stable_revision,
        canary_revision: args.canary_revision,
        canary_users: args.canary_users,
    };
    let (fields, event) = actions::create(&new, &env.actor, Utc::now())
        .map_err(|e| Failure::invalid(e.to_string()))?;
    let store = env.open_store()?;
    let stored = store.create(&args.id, &fields, &event).await?;
    let r = stored.parse().map_err(|e| Failure::failed(e.to_string()))?;
    let (i, stage) = r.stage().expect("a created rollout has a plan");
    let total = r.plan.as_ref().map(|p| p.stages.len());
    say!(
        "{}: created version {} in {}, status {}",
        r.id,
        r.version,
        present::stage_position(i, total, &stage.name, r.percentage),
        present::status_label(r.status)
    );
    Ok(())
}

fn check_config(env: &Env) -> CmdResult {
    let source = match &env.config_source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Defaults => "none found; using the built-in defaults".into(),
    };
    say!("config file:  {source}");
    say!("data dir:     {}", env.data_dir.display());
    // Neither line connects: the Firestore store and the metrics sources connect on first use.
    let store = match env.config.store.kind.as_str() {
        "firestore" => {
            let cfg = &env.config.store;
            let store = crate::store::firestore::FirestoreStore::open(cfg)?;
            format!(
                "{} (events in {}, leases in {})",
                store.describe(),
                cfg.events_collection,
                cfg.leases_collection
            )
        }
        _ => format!(
            "local ({})",
            LocalStore::default_path(&env.data_dir).display()
        ),
    };
    say!("store:        {store}");
    let metrics = crate::metrics::build_source(&env.config.metrics).map_err(Failure::invalid)?;
    say!(
        "metrics:      {}",
        metrics.map_or_else(
            || "none (no health gates are judged)".into(),
            |m| m.describe()
        )
    );
    say!("actor:        {}", env.actor);
    match &env.log_problem {
        None => {
            let path = crate::logging::log_path(&env.data_dir);
            let note = if path.exists() {
                ""
            } else {
                " (not written yet)"
            };
            say!("log:          {}{note}", path.display())
        }
        Some(why) => say!("log:          not written: {why}"),
    }
    say!(
        "default plan: {} {}",
        env.config.defaults.plan,
        present::plan_line(&env.default_plan())
    );
    say!("hashing:      {}", env.config.defaults.hashing);
    say!(
        "policy:       confirm {:?}, auto rollback {}",
        env.config.policy.confirm,
        env.config.policy.auto_rollback
    );
    say!("gates:        (a document's own `gates` field replaces these for its rollout)");
    for g in env.config.gates.settings() {
        let state = if g.on { "on " } else { "OFF" };
        say!("  {state} {:<24} {}", g.key, g.value);
    }
    let g = &env.config.gates;
    say!(
        "      min_requests {}, breach_for {}, severe_for {}, max_staleness {}",
        g.min_requests,
        format_duration(g.breach_for),
        format_duration(g.severe_for),
        format_duration(g.max_staleness)
    );
    say!("config OK");
    Ok(())
}

/// The JSON form of a stored rollout: `id` first, then every stored field.
/// One rollout as `status --json` shows it. Takes the stored document by value: with 1,000
/// rollouts, copying every field was a large part of the command's time.
fn rollout_json(stored: StoredRollout, error: Option<String>) -> Value {
    let mut m = Map::with_capacity(stored.fields.len() + 3);
    m.insert("id".into(), Value::from(stored.id));
    for (k, v) in stored.fields {
        if k != "id" {
            m.insert(k, v);
        }
    }
    // Tool-added keys carry a leading underscore so they never hide a stored field.
    m.insert("_revision".into(), Value::from(stored.revision.0));
    if let Some(e) = error {
        m.insert("_error".into(), Value::from(e));
    }
    Value::Object(m)
}

async fn status(env: &Env, id: Option<&str>, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let rollouts = match id {
        Some(id) => vec![get_existing(store.as_ref(), id).await?],
        None => store.list().await?,
    };
    if as_json {
        return print_status_json(env, rollouts).await;
    }
    let now = Utc::now();
    let source = crate::metrics::build_source(&env.config.metrics).map_err(Failure::invalid)?;
    match id {
        Some(_) => {
            let stored = &rollouts[0];
            match stored.parse() {
                Ok(r) => {
                    let mut text = detail_text(&r, stored, now);
                    if let Some(source) = source {
                        let judged = crate::engine::oneshot::judge_all(
                            source.clone(),
                            std::slice::from_ref(&r),
                            &env.config.gates,
                            now,
                        )
                        .await;
                        if let Some((sample, report)) = judged.first() {
                            text.push_str(&health_text(&source.describe(), sample, report));
                        }
                    }
                    say_raw(&text);
                }
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "{e}\nstored fields: {}",
                        Value::Object(stored.fields.clone())
                    )));
                }
            }
        }
        None if rollouts.is_empty() => {
            say!(
                "no rollouts in {}; create one with `rollout-tui create ID --version V`",
                store.describe()
            );
        }
        None => {
            let health = match source {
                Some(source) => {
                    let readable: Vec<Rollout> =
                        rollouts.iter().filter_map(|s| s.parse().ok()).collect();
                    let judged =
                        crate::engine::oneshot::judge_all(source, &readable, &env.config.gates, now).await;
                    let column: HashMap<String, String> = readable
                        .iter()
                        .zip(judged)
                        .map(|(r, (_, report))| (r.id.clone(), present::health_cell(&report)))
                        .collect();
                    Some(column)
                }
                None => None,
            };
            say_raw(&table_text(&rollouts, health.as_ref(), now));
        }
    }
    Ok(())
}

/// The health section of `status ID`: both sides' numbers and every gate's verdict.
fn health_text(source: &str, sample: &HealthSample, report: &GateReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "  health       {} (metrics: {source})",
        present::verdict_word(report.verdict)
    );
    if let Some(e) = &sample.source_error {
        let _ = writeln!(o, "               {}", escape(e));
    }
    let ms = present::ms;
    for (name, side) in [("stable", &sample.stable), ("canary", &sample.canary)] {
        match side {
            Some(s) => {
                let rate = present::rate_pct(s.error_rate());
                let _ = writeln!(
                    o,
                    "    {name}  requests {}  errors {} ({rate})  p50 {}  p95 {}  p99 {}",
                    s.requests,
                    s.errors,
                    ms(s.p50_ms),
                    ms(s.p95_ms),
                    ms(s.p99_ms)
                );
            }
            None => {
                let _ = writeln!(o, "    {name}  no data");
            }
        }
    }
    for g in &report.gates {
        let _ = writeln!(
            o,
            "    {:<4} {:<20} {}",
            present::gate_word(g.verdict),
            escape(&g.name),
            escape(&g.detail)
        );
    }
    o
}

async fn print_status_json(env: &Env, rollouts: Vec<StoredRollout>) -> CmdResult {
    let parsed: Vec<Result<Rollout, String>> = rollouts
        .iter()
        .map(|s| s.parse().map_err(|e| e.to_string()))
        .collect();
    // With a metrics source, every readable rollout gets `health`; without one, none does.
    let mut health: Vec<Option<Value>> = vec![None; rollouts.len()];
    if let Some(source) =
        crate::metrics::build_source(&env.config.metrics).map_err(Failure::invalid)?
    {
        let (at, readable): (Vec<usize>, Vec<Rollout>) = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().ok().map(|r| (i, r.clone())))
            .unzip();
        let values =
            crate::engine::oneshot::health_of_all(source, &readable, &env.config.gates, Utc::now()).await;
        for (i, h) in at.into_iter().zip(values) {
            health[i] = Some(h);
        }
    }
    let list: Vec<Value> = rollouts
        .into_iter()
        .zip(parsed)
        .zip(health)
        .map(|((stored, parsed), health)| {
            let mut v = rollout_json(stored, parsed.err());
            if let (Value::Object(m), Some(h)) = (&mut v, health) {
                m.insert("health".into(), h);
            }
            v
        })
        .collect();
    let out = json!({ "rollouts": list });
    let text = json_text(&out);
    // The process ends next; freeing a thousand documents one by one would only cost time.
    std::mem::forget(out);
    write_out(text.as_bytes())?;
    Ok(())
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

/// The rollouts as a table; `health` (by id) adds a HEALTH column when metrics are configured.
fn table_text(
    rollouts: &[StoredRollout],
    health: Option<&HashMap<String, String>>,
    now: DateTime<Utc>,
) -> String {
    let mut header: Vec<String> = [
        "ID", "STATUS", "STAGE", "PERCENT", "CANARY", "VERSION", "UPDATED",
    ]
    .map(String::from)
    .to_vec();
    if health.is_some() {
        header.push("HEALTH".into());
    }
    let mut rows = vec![header];
    let mut errors = Vec::new();
    for stored in rollouts {
        match stored.parse() {
            Ok(r) => rows.push(vec![
                r.id.clone(),
                present::status_label(r.status).into(),
                present::stage_label(&r),
                r.percentage.to_string(),
                r.canary_users.len().to_string(),
                r.version.clone(),
                present::ago(r.last_updated_at.or(r.started_at), now),
            ]),
            Err(e) => {
                rows.push(vec![
                    stored.id.clone(),
                    "ERROR".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                errors.push(e.to_string());
            }
        }
    }
    if let Some(health) = health {
        for row in rows.iter_mut().skip(1) {
            let cell = health.get(&row[0]).cloned().unwrap_or_else(|| "-".into());
            row.push(cell);
        }
    }
    // Escaped before measuring, so a stored newline or escape sequence cannot break a row.
    for cell in rows.iter_mut().flatten() {
        if let std::borrow::Cow::Owned(safe) = escape(cell) {
            *cell = safe;
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
    out
}

fn detail_text(r: &Rollout, stored: &StoredRollout, now: DateTime<Utc>) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "rollout {} (revision {})",
        escape(&r.id),
        escape(&stored.revision.0)
    );
    let stable_version = r
        .stable_version
        .as_deref()
        .map(|v| format!(" (stable {})", escape(v)))
        .unwrap_or_default();
    let _ = writeln!(o, "  version      {}{stable_version}", escape(&r.version));
    let _ = writeln!(o, "  status       {}", present::status_label(r.status));
    let _ = writeln!(o, "  percentage   {}", r.percentage);
    let _ = writeln!(o, "  hashing      {}", r.hashing);
    let _ = writeln!(
        o,
        "  revisions    stable {}  canary {}",
        escape(r.stable_revision.as_deref().unwrap_or("-")),
        escape(r.canary_revision.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(o, "  started      {}", present::ago(r.started_at, now));
    let _ = writeln!(o, "  updated      {}", present::ago(r.last_updated_at, now));
    if let Some(t) = r.completed_at {
        let _ = writeln!(o, "  completed    {}", present::ago(Some(t), now));
    }
    if let Some(by) = &r.approved_by {
        let _ = writeln!(o, "  approved by  {}", escape(by));
    }
    if let Some(why) = &r.pause_reason {
        let _ = writeln!(o, "  paused       {}", escape(why));
    }
    if let Some(why) = &r.rollback_reason {
        let _ = writeln!(o, "  rolled back  {}", escape(why));
    }
    match (&r.plan, r.stage()) {
        (Some(plan), Some((current, _))) => {
            let _ = writeln!(o, "  plan");
            for (i, s) in plan.stages.iter().enumerate() {
                let marker = if i == current { ">" } else { " " };
                let row = format!("   {marker} {}", present::stage_row(i, s));
                let _ = writeln!(o, "{}", row.trim_end());
            }
            if let Some(clock) = present::stage_clock(r, now) {
                let _ = writeln!(o, "  in stage     {} ({})", clock.in_stage, clock.countdown);
            }
        }
        _ => {
            let _ = writeln!(o, "  plan         none (advance adopts the default plan)");
        }
    }
    let _ = writeln!(
        o,
        "  canary users ({}): {}",
        r.canary_users.len(),
        present::user_preview(&r.canary_users)
    );
    let _ = writeln!(
        o,
        "  excluded     ({}): {}",
        r.excluded_users.len(),
        present::user_preview(&r.excluded_users)
    );
    o
}

async fn parsed(store: &dyn RolloutStore, id: &str) -> Result<Rollout, Failure> {
    get_existing(store, id)
        .await?
        .parse()
        .map_err(|e| Failure::failed(e.to_string()))
}

async fn assign_user(env: &Env, id: &str, user: &str, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let r = parsed(store.as_ref(), id).await?;
    let a = assign::assign(&r, user).map_err(|e| Failure::invalid(e.to_string()))?;
    let side = serde_json::to_value(a.side).unwrap_or(Value::Null);
    if as_json {
        print_json(&json!({ "side": side, "reason": a.reason.explain(), "bucket": a.bucket() }))?;
    } else {
        say!(
            "{}: {} ({})",
            user.trim(),
            side.as_str().unwrap_or("?"),
            a.reason.explain()
        );
    }
    Ok(())
}

async fn list_users(env: &Env, id: &str, excluded: bool, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    let r = parsed(store.as_ref(), id).await?;
    let users = if excluded {
        &r.excluded_users
    } else {
        &r.canary_users
    };
    if as_json {
        print_json(&json!({ "users": users }))?;
    } else {
        for u in users {
            say!("{}", escape(u));
        }
    }
    Ok(())
}

fn event_line(e: &Event) -> String {
    format!(
        "{}  {:<13} {}  {}",
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        e.kind.as_str(),
        escape(&e.actor),
        present::event_text(e)
    )
}

async fn events(env: &Env, id: &str, limit: usize, as_json: bool) -> CmdResult {
    let store = env.open_store_read_only()?;
    get_existing(store.as_ref(), id).await?;
    let list = store.list_events(id, limit).await?;
    if as_json {
        print_json(&json!({ "events": list }))?;
    } else if list.is_empty() {
        say!("no events for '{id}'");
    } else {
        for e in &list {
            say!("{}", event_line(e));
        }
    }
    Ok(())
}
