//! Sample rollouts for `rollout-tui demo`: one per plan, at believable points
//! in their lives, written through the same actions the operator uses.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::metrics::{MetricsConfig, MetricsSource, Regression, Simulator};

use crate::domain::actions::{self, Action, Context, NewRollout};
use crate::domain::rollout::{Hashing, Plan, PlanPreset, Rollout};
use crate::store::{RolloutStore, StoreError, StoreResult};

pub const DEMO_ACTOR: &str = "demo";
/// The demo samples this often (or faster if the config says so).
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// The demo's traffic: the configured simulator settings, with a latency regression on
/// `ocr-fallback`'s canary so the demo shows what a failing gate looks like.
pub fn simulator(cfg: &MetricsConfig) -> Arc<dyn MetricsSource> {
    let sim = Simulator::new(&cfg.simulator, cfg.window);
    sim.inject("ocr-fallback", Regression::LatencyShift { ms: 450.0 });
    Arc::new(sim)
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
