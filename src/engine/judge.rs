//! One health judge per rollout: its gates (`Rollout::gates_in_effect`), one breach history,
//! one "now" (the sample's own time). The sampler and the rollout's driver share it, so the
//! screen and the driver can never disagree about a sample.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::health::{BreachTracker, GateConfig, GateReport, HealthSample, judge};
use crate::domain::rollout::Rollout;

/// A rollout's breach history, shared by whoever samples it.
pub type Tracker = Arc<Mutex<BreachTracker>>;

#[derive(Clone, Default)]
pub struct Judges {
    trackers: Arc<Mutex<HashMap<String, Tracker>>>,
}

impl Judges {
    /// The breach history of `id` (made on first use).
    pub fn tracker(&self, id: &str) -> Tracker {
        lock(&self.trackers)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    pub fn judge(
        &self,
        rollout: &Rollout,
        sample: &HealthSample,
        defaults: &GateConfig,
    ) -> GateReport {
        judge_with(&self.tracker(&rollout.id), rollout, sample, defaults)
    }

    /// Forgets rollouts that are gone.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.trackers).retain(|id, _| keep(id));
    }
}

/// Judges `sample` of `rollout` with `tracker`'s breach history.
pub fn judge_with(
    tracker: &Tracker,
    rollout: &Rollout,
    sample: &HealthSample,
    defaults: &GateConfig,
) -> GateReport {
    let gates = rollout.gates_in_effect(defaults);
    judge(sample, &gates, &mut lock(tracker))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
