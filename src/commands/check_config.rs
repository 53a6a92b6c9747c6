//! `check-config`: what the configuration resolves to, without connecting to anything.

use super::{CmdResult, Env, Failure};
use crate::config::ConfigSource;
use crate::present::{self, format_duration};
use crate::store::RolloutStore;
use crate::store::local::LocalStore;

pub(super) fn check_config(env: &Env) -> CmdResult {
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
    say!("actuator:     {}", env.config.actuator.describe());
    say!("actor:        {}", env.actor);
    // Validated when the config was loaded; URLs are secrets and shown masked.
    let targets = crate::notify::config::targets(&env.config.notify).map_err(Failure::invalid)?;
    if targets.is_empty() {
        say!("notify:       none (no [[notify]] targets)");
    }
    for t in &targets {
        let events: Vec<&str> = t.events.iter().map(|e| e.as_str()).collect();
        say!(
            "notify:       {}: {} (outages after {})",
            t.label(),
            events.join(", "),
            format_duration(t.outage_after)
        );
    }
    say!(
        "terminal:     notify_terminal {}",
        crate::notify::terminal::mode_name(env.config.cockpit.notify_terminal)
    );
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
        "policy:       confirm {:?}, on breach {}, auto rollback {}",
        env.config.policy.confirm,
        env.config.policy.on_breach.as_str(),
        env.config.policy.auto_rollback
    );
    say!("gates:        (a document's own `gates` field replaces these for its rollout)");
    for g in env.config.gates.settings() {
        let state = if g.on { "on " } else { "OFF" };
        say!("  {state} {:<24} {}", g.key, g.value);
    }
    let g = &env.config.gates;
    say!(
        "      min_requests {}, breach_for {}, severe_for {}, max_staleness {}, judgment {}",
        g.min_requests,
        format_duration(g.breach_for),
        format_duration(g.severe_for),
        format_duration(g.max_staleness),
        g.judgment.as_str()
    );
    say!("config OK");
    Ok(())
}
