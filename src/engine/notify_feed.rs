//! What the engine tells the notifier. Transitions are reported by the process that made
//! them (its operator's writes and its own drivers'), so two cockpits on one store do not
//! both announce one halt; conditions (a confirmation waiting, a lost lease, an outage) are
//! what this process sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::domain::event::Event;
use crate::domain::freeze::Freeze;
use crate::domain::health::GateReport;
use crate::domain::progression::Decision;
use crate::domain::rollout::Rollout;
use crate::notify::{Condition, Notifier};
use crate::store::LeaseState;

#[derive(Default)]
struct System {
    store_outage: Option<Condition>,
    frozen: Option<Condition>,
}

/// One rollout's conditions: every observation names them all (one left out has ended).
#[derive(Default)]
struct Conditions {
    awaiting: Option<Condition>,
    lease_lost: Option<Condition>,
    metrics_outage: Option<Condition>,
    /// This process's driver held the lease at its last tick.
    held: bool,
}

pub struct Feed {
    notifier: Arc<Notifier>,
    system: Mutex<System>,
    rollouts: Mutex<HashMap<String, Conditions>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Feed {
    pub fn new(notifier: Arc<Notifier>) -> Feed {
        Feed {
            notifier,
            system: Mutex::default(),
            rollouts: Mutex::default(),
        }
    }

    /// A change this process wrote (its operator's or its drivers'), with the rollout as
    /// written.
    pub fn written(&self, rollout: Option<&Rollout>, event: &Event) {
        self.notifier
            .observe_events(rollout, std::slice::from_ref(event));
    }

    pub fn removed(&self, id: &str) {
        lock(&self.rollouts).remove(id);
        self.notifier.forget(id);
    }

    pub fn store_outage(&self, outage: Option<(DateTime<Utc>, String)>, now: DateTime<Utc>) {
        let mut system = lock(&self.system);
        let keep_since = match &system.store_outage {
            Some(Condition::StoreOutage { since, .. }) => Some(*since),
            _ => None,
        };
        system.store_outage = outage.map(|(since, error)| Condition::StoreOutage {
            since: keep_since.unwrap_or(since),
            error,
        });
        self.observe_system(&system, now);
    }

    /// The freeze this process set (or lifted): announced by whoever froze.
    pub fn frozen(&self, flag: Option<&Freeze>, now: DateTime<Utc>) {
        let mut system = lock(&self.system);
        system.frozen = flag.map(|f| Condition::Frozen {
            by: f.by.clone(),
            reason: f.reason.clone(),
            since: f.at,
        });
        self.observe_system(&system, now);
    }

    /// Observes the system's conditions again: an outage is announced once it has lasted
    /// a target's `outage_after`, which only a later observation can tell.
    pub fn tick(&self, now: DateTime<Utc>) {
        let system = lock(&self.system);
        self.observe_system(&system, now);
    }

    fn observe_system(&self, system: &System, now: DateTime<Utc>) {
        let active: Vec<Condition> = [&system.store_outage, &system.frozen]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        self.notifier.observe_state(None, &active, now);
    }

    /// A driver's tick: a confirmation it waits for, and a lease it had and lost.
    pub fn driver(
        &self,
        rollout: &Rollout,
        decision: &Decision,
        report: Option<&GateReport>,
        lease: &LeaseState,
        now: DateTime<Utc>,
    ) {
        let mut all = lock(&self.rollouts);
        let c = all.entry(rollout.id.clone()).or_default();
        c.awaiting = Condition::awaiting(decision, report);
        let holds = matches!(lease, LeaseState::Held(_));
        c.lease_lost = match lease {
            LeaseState::Held(_) => None,
            _ if !c.held && c.lease_lost.is_none() => None,
            LeaseState::HeldByOther(l) => Some(Condition::LeaseLost {
                why: format!("now held by {}", l.holder),
            }),
            LeaseState::Unavailable(why) => Some(Condition::LeaseLost { why: why.clone() }),
        };
        c.held = holds;
        self.observe_rollout(rollout, c, now);
    }

    /// A sample of the rollout: a source error starts (or continues) a metrics outage.
    pub fn sample(&self, rollout: &Rollout, source_error: Option<&str>, now: DateTime<Utc>) {
        let mut all = lock(&self.rollouts);
        let c = all.entry(rollout.id.clone()).or_default();
        let since = match &c.metrics_outage {
            Some(Condition::MetricsOutage { since, .. }) => *since,
            _ => now,
        };
        let next = source_error.map(|e| Condition::MetricsOutage {
            since,
            error: e.to_string(),
        });
        let changed = next.is_some() || c.metrics_outage.is_some();
        c.metrics_outage = next;
        if changed {
            self.observe_rollout(rollout, c, now);
        }
    }

    fn observe_rollout(&self, rollout: &Rollout, c: &Conditions, now: DateTime<Utc>) {
        let active: Vec<Condition> = [&c.awaiting, &c.lease_lost, &c.metrics_outage]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        self.notifier.observe_state(Some(rollout), &active, now);
    }

    /// One line for the screen when a target is failing.
    pub fn problem(&self) -> Option<String> {
        self.notifier.status().problem()
    }
}
