//! Where stable-vs-canary health comes from.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::health::HealthSample;
use crate::domain::rollout::Rollout;

/// A source of stable-vs-canary numbers. It never fails: an error becomes
/// `source_error` with missing sides, which the gates treat as Inconclusive.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    fn describe(&self) -> String;
    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// "none", "simulator", "cloud-monitoring" or "prometheus".
    pub kind: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            kind: "none".into(),
        }
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), String> {
        match self.kind.as_str() {
            "none" => Ok(()),
            other => Err(format!(
                "metrics.kind = '{other}' is not available; expected \"none\""
            )),
        }
    }
}
