//! What Cloud Run serves for a rollout, beside what its document says: `status` shows the
//! live split and flags drift (someone changed the split outside rollout-tui). Reading only;
//! nothing here changes traffic.

use serde_json::{Value, json};

use super::Env;
use crate::actuator::cloud_run::{Drift, cloud_run_percent, drift};
use crate::domain::rollout::{Rollout, Status};
use crate::domain::text::escape;

/// The live split of one rollout's service, compared with the document.
pub(super) struct TrafficView {
    id: String,
    service: String,
    expected_canary: Result<u8, String>,
    live: Result<crate::actuator::cloud_run::LiveSplit, String>,
}

impl TrafficView {
    fn drift(&self) -> Option<Drift> {
        match (&self.live, &self.expected_canary) {
            (Ok(live), Ok(expected)) => Some(drift(live, *expected)),
            _ => None,
        }
    }

    /// The `status ID` lines.
    pub fn text(&self) -> String {
        let mut o = format!("  cloud run    {}\n", escape(&self.service));
        match &self.live {
            Ok(live) => {
                let settling = if live.settling {
                    " (a change is still being applied)"
                } else {
                    ""
                };
                o.push_str(&format!(
                    "    serving    {}{settling}\n",
                    escape(&live.describe())
                ));
            }
            Err(e) => o.push_str(&format!("    cannot read the split: {}\n", escape(e))),
        }
        if let Err(e) = &self.expected_canary {
            o.push_str(&format!("    {}\n", escape(e)));
        }
        if let Some(message) = self.drift().and_then(|d| d.message()) {
            o.push_str(&format!("    DRIFT: {}\n", escape(&message)));
            o.push_str(&format!("    {}\n", escape(&self.remedy())));
        }
        o
    }

    /// The `cloudRun` object of `status --json`.
    pub fn json(&self) -> Value {
        let live = self.live.as_ref().ok().map(|l| {
            json!({
                "stable": {"revision": l.stable_revision, "percent": l.stable_percent},
                "canary": {"revision": l.canary_revision, "percent": l.canary_percent},
                "others": l.others.iter().map(|(r, p)| json!({"revision": r, "percent": p})).collect::<Vec<_>>(),
                "settling": l.settling,
            })
        });
        let drift = self.drift();
        json!({
            "service": self.service,
            "live": live,
            "error": self.live.as_ref().err(),
            "expectedCanaryPercent": self.expected_canary.as_ref().ok(),
            "drift": drift.as_ref().map(|d| *d != Drift::None),
            "remedy": drift.as_ref().is_some_and(|d| *d != Drift::None).then(|| self.remedy()),
            "driftMessage": drift.and_then(|d| d.message()),
        })
    }

    /// The two ways to make the split and the document agree again.
    fn remedy(&self) -> String {
        format!(
            "re-apply the document's split: rollout-tui sync-traffic {id} · or roll back: rollout-tui rollback {id} --reason R",
            id = self.id
        )
    }
}

/// The Cloud Run view of `r`, when `[actuator]` acts on its service; None otherwise.
pub(super) async fn view(env: &Env, r: &Rollout) -> Option<TrafficView> {
    let actuator = match env.config.actuator.build_for(&r.id) {
        Ok(Some(a)) => a,
        Ok(None) => return None,
        Err(e) => {
            return Some(TrafficView {
                id: r.id.clone(),
                service: "(not configured correctly)".into(),
                expected_canary: Err(String::new()),
                live: Err(e),
            });
        }
    };
    // What the document means for traffic: nobody on the canary unless it runs.
    let percent = match r.status {
        Status::Planned | Status::RolledBack => crate::domain::units::Percent::ZERO,
        _ => r.percentage,
    };
    let expected_canary = cloud_run_percent(percent).map_err(|e| e.to_string());
    let live = match r.stable_revision.as_deref() {
        None => Err("the document names no stable revision (`set-revisions` records it)".into()),
        Some(stable) => actuator
            .read(stable, r.canary_revision.as_deref())
            .await
            .map_err(|e| e.to_string()),
    };
    Some(TrafficView {
        id: r.id.clone(),
        service: actuator.service_name().to_string(),
        expected_canary,
        live,
    })
}
