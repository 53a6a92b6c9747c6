//! Acting beyond the rollout document: where a service routes by its own traffic split
//! (Cloud Run revisions), an applied percentage is also set there.

pub mod acting;
pub mod cloud_run;
pub mod config;

pub use acting::{Actuators, TrafficNote};

pub use cloud_run::{
    ActuatorError, Applied, CloudRunActuator, Drift, LiveSplit, NotRoutable, Planned, TargetSplit,
    cloud_run_percent, describe_split, drift,
};
pub use config::{ActuatorConfig, ActuatorKind, CloudRunSettings};

impl ActuatorConfig {
    /// The Cloud Run client for one rollout, or None when the actuator is off for it.
    pub fn build_for(&self, rollout_id: &str) -> Result<Option<CloudRunActuator>, String> {
        match self.for_rollout(rollout_id)? {
            Some(settings) => CloudRunActuator::new(&settings).map(Some),
            None => Ok(None),
        }
    }
}
