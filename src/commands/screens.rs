//! The full-screen front ends: the cockpit, the demo and the read-only watch wall.

use std::sync::Arc;

use chrono::Utc;

use super::{CmdResult, Env, Failure};
use crate::store::RolloutStore;
use crate::store::local::LocalStore;

pub(super) async fn cockpit(env: &Env) -> CmdResult {
    let store = env.open_store()?;
    // Real stores get real timestamps; a demo store keeps the demo's clock and traffic.
    let (metrics, clock) = env.source_and_clock().await?;
    open_cockpit(
        env,
        store,
        metrics,
        env.config.metrics.refresh,
        clock,
        "rollout-tui",
    )
    .await
}

pub(super) async fn demo(env: &Env, speed: Option<f64>) -> CmdResult {
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
    let local = LocalStore::open(&LocalStore::default_path(&env.data_dir))?;
    // The demo's clock and faults live in its store, so `watch` and `status` on it see
    // the same time and health, and every timestamp in it is on the one demo clock.
    let prior = crate::demo::World::load(&local)
        .await
        .map_err(Failure::failed)?;
    let world = crate::demo::World::starting(prior, &metrics, Utc::now());
    world.save(&local).await.map_err(Failure::failed)?;
    crate::demo::seed_if_empty(&local, world.clock.now()).await?;
    let simulator = crate::demo::owned_simulator(&world, local.clone());
    let clock = crate::engine::clock::Clock::Simulated(simulator.clone());
    // A demo should feel live: sample at least every few seconds.
    let refresh = env.config.metrics.refresh.min(crate::demo::REFRESH);
    let result = open_cockpit(
        env,
        Arc::new(local.clone()),
        Some(simulator.clone()),
        refresh,
        clock,
        "rollout-tui demo",
    )
    .await;
    if let Some(sim) = simulator.simulator()
        && let Err(e) = crate::demo::record_stop(&local, sim).await
    {
        tracing::warn!(error = %e, "cannot record the demo's stop in its store");
    }
    result
}

pub(super) async fn watch(env: &Env, rotate: u64, stale_after: Option<&str>) -> CmdResult {
    let stale_after = match stale_after {
        Some(text) => crate::domain::units::parse_duration(text)
            .map_err(|e| Failure::invalid(format!("--stale-after: {e}")))?,
        None => env.config.gates.max_staleness,
    };
    // Only the read-only type leaves this function: watch mode cannot write. Opening it
    // creates nothing, so a missing store is reported before the terminal is checked.
    let store = crate::store::ReadOnlyStore::new(env.open_store_read_only()?);
    require_terminal()?;
    let (metrics, clock) = env.source_and_clock().await?;
    let now = clock.now();
    let mut state =
        crate::app::state::AppState::new("rollout-tui watch", store.describe(), None, now);
    state.keys = env.config.keymap().map_err(Failure::invalid)?;
    state.gates = env.config.gates.clone();
    state.freeze_windows = env.config.freeze.windows.clone();
    state.wall = Some(crate::app::state::Wall {
        rotate_every: std::time::Duration::from_secs(rotate),
        index: 0,
        last_rotate: now,
        paused: false,
        stale_after,
    });
    state.metrics_desc = metrics.as_ref().map(|m| m.describe());
    crate::app::runtime::run_watch(
        store,
        metrics,
        env.config.metrics.refresh,
        clock,
        state,
        crate::ui::Theme::from_env(env.ascii),
        crate::actuator::acting::SplitReader::new(env.actuators()),
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
    state.freeze_windows = env.config.freeze.windows.clone();
    state.auto_on_start = env.auto.clone();
    state.reports_dir = Some(env.data_dir.join("reports"));
    if let Some(sim) = metrics.as_ref().and_then(|m| m.simulator()) {
        state.simulated = true;
        state.faults = sim.all_regressions();
    }
    state.notify_terminal = env.config.cockpit.notify_terminal;
    // Events from before this start are history, never announced.
    let notifier = match env.config.notify.is_empty() {
        true => None,
        false => Some(Arc::new(
            crate::notify::Notifier::from_config(&env.config.notify, clock.now())
                .map_err(Failure::invalid)?,
        )),
    };
    let cockpit = crate::app::runtime::Cockpit {
        notifier,
        actuators: env.actuators(),
        store,
        metrics,
        refresh,
        clock,
        state,
        theme: crate::ui::Theme::from_env(env.ascii),
    };
    crate::app::runtime::run(cockpit)
        .await
        .map_err(Failure::failed)
}
