//! Where stable-vs-canary health comes from.

use serde::{Deserialize, Serialize};

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
