//! The full-screen front ends: the cockpit, the demo and the read-only watch wall.

use std::sync::Arc;

use chrono::Utc;

use super::{CmdResult, Env, Failure, open_local_store};
use crate::store::RolloutStore;

pub(super) async fn cockpit(env: &Env) -> CmdResult {
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
        crate::ui::Theme::from_env(env.ascii),
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
        theme: crate::ui::Theme::from_env(env.ascii),
    };
    crate::app::runtime::run(cockpit)
        .await
        .map_err(Failure::failed)
}
