//! Sample rollouts for `rollout-tui demo`: one per plan, at believable points
//! in their lives, written through the same actions the operator uses.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::health::HealthSample;
use crate::metrics::config::SimulatorConfig;
use crate::metrics::{MetricsConfig, MetricsSource, Regression, SimClock, Simulator};
use crate::store::local::LocalStore;

use crate::domain::actions::{self, Action, Context, NewRollout};
use crate::domain::rollout::{Hashing, Plan, PlanPreset, Rollout};
use crate::store::{RolloutStore, StoreError, StoreResult};

pub const DEMO_ACTOR: &str = "demo";
/// The demo samples this often (or faster if the config says so).
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// The settings key under which a demo store keeps its `World`.
pub const WORLD_KEY: &str = "demo";

/// What makes a demo store's numbers: the simulator, its clock and the injected faults.
/// The demo keeps it in its store, so every process that opens the store (`watch`,
/// `status`, an action, a second cockpit) reads the same time and the same health, and
/// every timestamp written to the store is on the one demo clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub clock: SimClock,
    pub simulator: SimulatorConfig,
    pub window_secs: u64,
    pub faults: BTreeMap<String, Vec<Regression>>,
}

impl World {
    /// The demo's starting faults: a latency regression on `ocr-fallback`'s canary, so
    /// the demo shows what a failing gate looks like.
    fn first_faults() -> BTreeMap<String, Vec<Regression>> {
        BTreeMap::from([(
            "ocr-fallback".to_string(),
            vec![Regression::LatencyShift { ms: 450.0 }],
        )])
    }

    /// The world a demo starting at `wall` with `cfg` runs in: the stored one carried on
    /// (its time continues without a jump, at the new rate; its faults stay), or a new one.
    pub fn starting(prior: Option<World>, cfg: &MetricsConfig, wall: DateTime<Utc>) -> World {
        let rate = cfg.simulator.time_compression;
        let (clock, faults) = match prior {
            Some(p) if p.clock.at(wall) >= wall => (p.clock.rerated(wall, rate), p.faults),
            Some(p) => (SimClock::starting(wall, rate), p.faults),
            None => (SimClock::starting(wall, rate), World::first_faults()),
        };
        World {
            clock,
            simulator: cfg.simulator.clone(),
            window_secs: cfg.window.as_secs().max(1),
            faults,
        }
    }

    pub fn simulator(&self) -> Simulator {
        let mut cfg = self.simulator.clone();
        cfg.time_compression = self.clock.rate;
        let sim = Simulator::new(&cfg, std::time::Duration::from_secs(self.window_secs));
        sim.set_clock(self.clock);
        sim.replace_faults(self.faults.clone());
        sim
    }

    pub async fn load(store: &LocalStore) -> Result<Option<World>, String> {
        let Some(text) = store.setting(WORLD_KEY).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "the demo record in {} is unreadable: {e}",
                store.path().display()
            )
        })
    }

    pub async fn save(&self, store: &LocalStore) -> Result<(), String> {
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        store
            .put_setting(WORLD_KEY, &text)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The demo's own simulator: every fault injected or cleared is written to the store, in
/// order, so other processes see it at their next sample.
pub fn owned_simulator(world: &World, store: LocalStore) -> Arc<dyn MetricsSource> {
    let sim = world.simulator();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<World>();
    let base = world.clone();
    sim.on_fault_change(move |faults| {
        let _ = tx.send(World {
            faults,
            ..base.clone()
        });
    });
    tokio::spawn(async move {
        while let Some(mut world) = rx.recv().await {
            // Only the newest matters once several are queued.
            while let Ok(newer) = rx.try_recv() {
                world = newer;
            }
            if let Err(e) = world.save(&store).await {
                tracing::warn!(error = %e, "cannot record the demo's faults in its store");
            }
        }
    });
    Arc::new(sim)
}

/// After the demo: its world goes on at real time from where the demo left it, so a
/// reader's clock neither races on nor jumps back behind the stored timestamps.
pub async fn record_stop(store: &LocalStore, sim: &Simulator) -> Result<(), String> {
    let now = Utc::now();
    let stopped = World {
        clock: sim.clock().rerated(now, 1.0),
        simulator: sim.config().clone(),
        window_secs: sim.window().as_secs().max(1),
        faults: sim.all_regressions(),
    };
    stopped.save(store).await
}

/// How often a linked reader looks for a changed record (the demo's faults, a restart).
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The demo's simulator as seen from another process: built from the store's record and
/// kept in step with it.
pub struct Linked {
    sim: Simulator,
    store: LocalStore,
    last_reload: Mutex<std::time::Instant>,
}

impl Linked {
    pub fn new(world: &World, store: LocalStore) -> Linked {
        Linked {
            sim: world.simulator(),
            store,
            last_reload: Mutex::new(std::time::Instant::now()),
        }
    }

    async fn reload_if_due(&self) {
        {
            let mut last = self
                .last_reload
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < RELOAD_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        match World::load(&self.store).await {
            Ok(Some(world)) => {
                self.sim.set_clock(world.clock);
                self.sim.replace_faults(world.faults);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the demo record; keeping the last one")
            }
        }
    }
}

#[async_trait]
impl MetricsSource for Linked {
    fn describe(&self) -> String {
        format!("the demo's {}", self.sim.describe())
    }

    async fn sample(
        &self,
        rollout: &crate::domain::rollout::Rollout,
        now: DateTime<Utc>,
    ) -> HealthSample {
        self.reload_if_due().await;
        self.sim.sample(rollout, now).await
    }

    fn simulator(&self) -> Option<&Simulator> {
        Some(&self.sim)
    }

    async fn history(
        &self,
        rollout: &crate::domain::rollout::Rollout,
        end: DateTime<Utc>,
        step: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        self.reload_if_due().await;
        self.sim.history(rollout, end, step, points).await
    }
}

struct Sample {
    id: &'static str,
    version: &'static str,
    stable_version: &'static str,
    preset: PlanPreset,
    revisions: (&'static str, &'static str),
    canary_users: &'static [&'static str],
    excluded_users: &'static [&'static str],
    /// How long ago it was created, and how long ago each advance happened.
    created_ago: Duration,
    advanced_ago: &'static [i64],
}

fn samples() -> [Sample; 3] {
    [
        Sample {
            id: "current",
            version: "0.1.1",
            stable_version: "0.1.0",
            preset: PlanPreset::Canary,
            revisions: ("svc-00097-6cg", "svc-00098-xyz"),
            canary_users: &["alec@getaifactory.com", "qa-team-1"],
            excluded_users: &["ci-bot"],
            created_ago: Duration::minutes(4),
            advanced_ago: &[],
        },
        Sample {
            id: "search-ranking-v2",
            version: "2.0.0",
            stable_version: "1.9.4",
            preset: PlanPreset::Tiers,
            revisions: ("search-00041-a1b", "search-00042-c3d"),
            canary_users: &["ana@example.com"],
            excluded_users: &[],
            created_ago: Duration::hours(20),
            advanced_ago: &[],
        },
        Sample {
            id: "ocr-fallback",
            version: "1.4.0",
            stable_version: "1.3.2",
            preset: PlanPreset::Cohorts,
            revisions: ("ocr-00310-k2m", "ocr-00311-p9q"),
            canary_users: &["pilot-partner-7", "maria@example.org"],
            excluded_users: &["loadtest@example.com"],
            created_ago: Duration::hours(30),
            advanced_ago: &[7 * 60],
        },
    ]
}

/// Seeds an empty store; a store that already has rollouts is left alone (a demo
/// directory may be reused, and an explicit `--data-dir` must never be clobbered).
pub async fn seed_if_empty(store: &dyn RolloutStore, now: DateTime<Utc>) -> StoreResult<bool> {
    if !store.list().await?.is_empty() {
        return Ok(false);
    }
    for s in samples() {
        let created = now - s.created_ago;
        let new = NewRollout {
            id: s.id.into(),
            version: s.version.into(),
            stable_version: Some(s.stable_version.into()),
            plan: Plan::preset(s.preset),
            hashing: Hashing::FractionalV1,
            stable_revision: Some(s.revisions.0.into()),
            canary_revision: Some(s.revisions.1.into()),
            canary_users: s.canary_users.iter().map(|u| u.to_string()).collect(),
            on_breach: None,
        };
        let (fields, event) = actions::create(&new, DEMO_ACTOR, created)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let mut stored = store.create(s.id, &fields, &event).await?;
        let plan = Plan::preset(s.preset);
        let mut steps: Vec<(Action, DateTime<Utc>)> = Vec::new();
        if !s.excluded_users.is_empty() {
            let keys = s.excluded_users.iter().map(|u| u.to_string()).collect();
            steps.push((
                Action::AddUsers {
                    list: actions::UserList::Excluded,
                    keys,
                },
                created,
            ));
        }
        for minutes in s.advanced_ago {
            steps.push((Action::Advance, now - Duration::minutes(*minutes)));
        }
        for (action, at) in steps {
            let rollout = Rollout::from_fields(s.id, &stored.fields)
                .map_err(|e| StoreError::Other(e.to_string()))?;
            let ctx = Context {
                actor: DEMO_ACTOR,
                now: at,
                default_plan: &plan,
                freeze_windows: &[],
            };
            let t = actions::apply(&rollout, &stored.fields, &action, ctx)
                .map_err(|e| StoreError::Other(e.to_string()))?;
            stored = store
                .patch(s.id, &stored.revision, &t.patch, &t.event)
                .await?;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000 + secs)
    }

    fn config(rate: f64) -> MetricsConfig {
        let mut cfg = MetricsConfig::default();
        cfg.simulator.time_compression = rate;
        cfg
    }

    #[test]
    fn a_new_world_starts_on_the_wall_clock_with_the_demo_fault() {
        let w = World::starting(None, &config(60.0), at(0));
        assert_eq!(w.clock.at(at(0)), at(0));
        assert_eq!(w.clock.at(at(10)), at(600));
        assert_eq!(
            w.faults.get("ocr-fallback"),
            Some(&vec![Regression::LatencyShift { ms: 450.0 }])
        );
    }

    #[test]
    fn a_stored_world_goes_on_without_a_jump_and_keeps_its_faults() {
        let first = World::starting(None, &config(60.0), at(0));
        let mut stored = first.clone();
        stored.faults.clear();
        // Ten real seconds at 60x: the demo clock is ten minutes ahead.
        let next = World::starting(Some(stored), &config(1.0), at(10));
        assert_eq!(next.clock.at(at(10)), at(600));
        assert_eq!(next.clock.at(at(20)), at(610), "the new rate");
        assert!(next.faults.is_empty(), "cleared faults stay cleared");
    }

    #[test]
    fn a_world_behind_the_wall_clock_starts_again_at_the_wall_clock() {
        let mut old = World::starting(None, &config(1.0), at(0));
        old.clock.anchor_sim = at(-3_600);
        let next = World::starting(Some(old), &config(1.0), at(0));
        assert_eq!(next.clock.at(at(0)), at(0));
    }

    #[test]
    fn the_record_round_trips_every_kind_of_fault() {
        let mut w = World::starting(None, &config(2.0), at(0));
        w.faults.insert(
            "x".into(),
            vec![
                Regression::ErrorSpike { error_rate: 0.2 },
                Regression::TrafficDrop,
            ],
        );
        let text = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<World>(&text).unwrap(), w);
        let sim = w.simulator();
        assert_eq!(sim.time_compression(), 2.0);
        assert_eq!(sim.regressions("x").len(), 2);
    }
}
