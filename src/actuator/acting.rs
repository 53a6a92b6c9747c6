//! What a document change means for a service's traffic split, and the clients that set it.
//! `ops` asks `change_for` before every write and sets the split first (see `ops::act_on`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};

use super::cloud_run::{
    ActuatorError, Applied, CloudRunActuator, Drift, LiveSplit, TargetSplit, cloud_run_percent,
    drift,
};
use super::config::ActuatorConfig;
use crate::domain::rollout::{Fields, Rollout, Status, field};
use crate::domain::units::Percent;

/// The Cloud Run clients of every rollout the config acts on, built once per rollout.
#[derive(Clone, Default)]
pub struct Actuators {
    config: Arc<ActuatorConfig>,
    built: Arc<Mutex<HashMap<String, Arc<CloudRunActuator>>>>,
    poll: Option<(Duration, Duration)>,
}

impl std::fmt::Debug for Actuators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actuators")
            .field("kind", &self.config.kind)
            .finish_non_exhaustive()
    }
}

impl Actuators {
    pub fn new(config: &ActuatorConfig) -> Actuators {
        Actuators {
            config: Arc::new(config.clone()),
            ..Actuators::default()
        }
    }

    /// Operation polling for every client built from here (tests poll a loopback stand-in fast).
    pub fn polling(mut self, first: Duration, cap: Duration) -> Actuators {
        self.poll = Some((first, cap));
        self
    }

    /// Whether any rollout's split is set by rollout-tui.
    pub fn any(&self) -> bool {
        self.config.kind != super::ActuatorKind::None
            || self
                .config
                .rollouts
                .values()
                .any(|r| r.kind.is_some_and(|k| k != super::ActuatorKind::None))
    }

    /// The client for `rollout_id`, None when the actuator leaves it alone; a config that
    /// cannot name the service is an error.
    pub fn for_rollout(&self, rollout_id: &str) -> Result<Option<Arc<CloudRunActuator>>, String> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = built.get(rollout_id) {
            return Ok(Some(a.clone()));
        }
        let Some(mut actuator) = self.config.build_for(rollout_id)? else {
            return Ok(None);
        };
        if let Some((first, cap)) = self.poll {
            actuator = actuator.with_poll_interval(first, cap);
        }
        let actuator = Arc::new(actuator);
        built.insert(rollout_id.to_string(), actuator.clone());
        Ok(Some(actuator))
    }
}

/// The split a rollout in this state should be served with: nobody on the canary unless it
/// runs; a rolled-back rollout sends everything to stable with the canary left out.
pub fn split_of(r: &Rollout) -> Result<TargetSplit, ActuatorError> {
    let stable = r.stable_revision.as_deref().unwrap_or_default();
    match r.status {
        Status::RolledBack => TargetSplit::rollback(stable),
        status => {
            let percent = if status == Status::Planned {
                Percent::ZERO
            } else {
                r.percentage
            };
            TargetSplit::for_percent(
                stable,
                r.canary_revision.as_deref().unwrap_or_default(),
                percent,
            )
        }
    }
}

/// The split to set for a write from `before` to `after` (not a rollback), or None when
/// who-gets-what stays as it is.
pub fn change_for(
    before: Option<&Rollout>,
    after: &Rollout,
) -> Result<Option<TargetSplit>, ActuatorError> {
    let target = split_of(after)?;
    let unchanged = before
        .and_then(|b| split_of(b).ok())
        .is_some_and(|b| b == target);
    Ok((!unchanged).then_some(target))
}

/// A rollback's split, from the rolled-back document's raw fields: a document too broken to
/// parse still names its stable revision. Always set, even when nothing seems to change: it
/// also repairs a split someone else moved.
pub fn rollback_split(fields: &Fields) -> Result<TargetSplit, ActuatorError> {
    let stable = fields
        .get(field::STABLE_REVISION)
        .and_then(Value::as_str)
        .unwrap_or_default();
    TargetSplit::rollback(stable)
}

/// What happened to the traffic split on a write, for its audit event and summary.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficNote {
    Set {
        service: String,
        split: TargetSplit,
        applied: Applied,
    },
    /// A rollback whose split could not be set: the document was rolled back anyway.
    Failed {
        service: String,
        /// None when the document names no revision to roll back to.
        split: Option<TargetSplit>,
        error: String,
    },
}

impl TrafficNote {
    /// The `cloudRunTraffic` object an audit event carries in its `after`.
    pub fn to_json(&self) -> Value {
        match self {
            TrafficNote::Set {
                service,
                split,
                applied,
            } => json!({
                "service": service,
                "stable": {"revision": split.stable, "percent": split.stable_percent()},
                "canary": {"revision": split.canary, "percent": split.canary_percent},
                "confirmed": true,
                "calls": applied.calls,
            }),
            TrafficNote::Failed {
                service,
                split,
                error,
            } => json!({
                "service": service,
                "stable": split.as_ref().map(|s| json!({"revision": s.stable, "percent": 100})),
                "confirmed": false,
                "error": error,
            }),
        }
    }

    /// Appended to the write's summary.
    pub fn summary(&self, rollout_id: &str) -> String {
        match self {
            TrafficNote::Set { split, .. } => format!("{} confirmed", split.describe()),
            TrafficNote::Failed { service, error, .. } => format!(
                "BUT the split of {service} was NOT set to 100 % stable: {error}. The document is rolled back; set the split with `rollout-tui sync-traffic {rollout_id}`"
            ),
        }
    }
}

pub const EVENT_FIELD: &str = "cloudRunTraffic";

/// What Cloud Run serves for one rollout beside what its document says: `status` and the
/// cockpit show it and flag drift.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficView {
    pub id: String,
    pub service: String,
    /// The canary share the document means (none unless it runs), or why it has none.
    pub expected_canary: Result<u8, String>,
    pub live: Result<LiveSplit, String>,
}

impl TrafficView {
    pub fn drift(&self) -> Option<Drift> {
        match (&self.live, &self.expected_canary) {
            (Ok(live), Ok(expected)) => Some(drift(live, *expected)),
            _ => None,
        }
    }

    /// The drift text, when the live split is not the document's.
    pub fn drift_message(&self) -> Option<String> {
        self.drift().and_then(|d| d.message())
    }

    /// "svc-1 95 % · svc-2 5 %", "(a change is still being applied)" after it while settling.
    pub fn serving(&self) -> Result<String, String> {
        self.live.as_ref().map_err(Clone::clone).map(|live| {
            let settling = if live.settling {
                " (a change is still being applied)"
            } else {
                ""
            };
            format!("{}{settling}", live.describe())
        })
    }

    /// The two ways to make the split and the document agree again, as commands.
    pub fn remedy(&self) -> String {
        format!(
            "re-apply the document's split: rollout-tui sync-traffic {id} · or roll back: rollout-tui rollback {id} --reason R",
            id = self.id
        )
    }
}

/// Reads the live split of `r`'s service with `client`.
pub async fn read_view(client: &CloudRunActuator, r: &Rollout) -> TrafficView {
    // What the document means for traffic: nobody on the canary unless it runs.
    let percent = match r.status {
        Status::Planned | Status::RolledBack => Percent::ZERO,
        _ => r.percentage,
    };
    let live = match r.stable_revision.as_deref() {
        None => Err("the document names no stable revision (`set-revisions` records it)".into()),
        Some(stable) => client
            .read(stable, r.canary_revision.as_deref())
            .await
            .map_err(|e| e.to_string()),
    };
    TrafficView {
        id: r.id.clone(),
        service: client.service_name().to_string(),
        expected_canary: cloud_run_percent(percent).map_err(|e| e.to_string()),
        live,
    }
}

/// Reads what Cloud Run serves for the rollouts `[actuator]` acts on, and nothing else: a
/// wall flags drift through this while it can write nothing (it has no write to call).
#[derive(Clone, Debug, Default)]
pub struct SplitReader(Actuators);

impl SplitReader {
    pub fn new(actuators: Actuators) -> SplitReader {
        SplitReader(actuators)
    }

    /// Whether any rollout's split is read at all.
    pub fn any(&self) -> bool {
        self.0.any()
    }

    pub async fn view_of(&self, r: &Rollout) -> Option<TrafficView> {
        view_of(&self.0, r).await
    }
}

/// The view of `r` when the actuator acts on it (None when it leaves it alone).
pub async fn view_of(traffic: &Actuators, r: &Rollout) -> Option<TrafficView> {
    match traffic.for_rollout(&r.id) {
        Ok(Some(client)) => Some(read_view(&client, r).await),
        Ok(None) => None,
        Err(e) => Some(TrafficView {
            id: r.id.clone(),
            service: "(not configured correctly)".into(),
            expected_canary: Err(String::new()),
            live: Err(e),
        }),
    }
}
