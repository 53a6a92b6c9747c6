//! What Cloud Run serves for a rollout, beside what its document says: `status` shows the
//! live split and flags drift (someone changed the split outside rollout-tui, or a write
//! left the two apart) with the way out.

use serde_json::{Value, json};

use super::Env;
use crate::actuator::acting::{TrafficView, view_of};
use crate::actuator::cloud_run::Drift;
use crate::domain::rollout::Rollout;
use crate::domain::text::escape;

/// The `status ID` lines.
pub(super) fn text(view: &TrafficView) -> String {
    let mut o = format!("  cloud run    {}\n", escape(&view.service));
    match view.serving() {
        Ok(serving) => o.push_str(&format!("    serving    {}\n", escape(&serving))),
        Err(e) => o.push_str(&format!("    cannot read the split: {}\n", escape(&e))),
    }
    if let Err(e) = &view.expected_canary {
        o.push_str(&format!("    {}\n", escape(e)));
    }
    if let Some(message) = view.drift_message() {
        o.push_str(&format!("    DRIFT: {}\n", escape(&message)));
        o.push_str(&format!("    {}\n", escape(&view.remedy())));
    }
    o
}

/// The `cloudRun` object of `status --json`.
pub(super) fn json(view: &TrafficView) -> Value {
    let live = view.live.as_ref().ok().map(|l| {
        json!({
            "stable": {"revision": l.stable_revision, "percent": l.stable_percent},
            "canary": {"revision": l.canary_revision, "percent": l.canary_percent},
            "others": l.others.iter().map(|(r, p)| json!({"revision": r, "percent": p})).collect::<Vec<_>>(),
            "settling": l.settling,
        })
    });
    let drift = view.drift();
    let drifted = drift.as_ref().is_some_and(|d| *d != Drift::None);
    json!({
        "service": view.service,
        "live": live,
        "error": view.live.as_ref().err(),
        "expectedCanaryPercent": view.expected_canary.as_ref().ok(),
        "drift": drift.as_ref().map(|_| drifted),
        "remedy": drifted.then(|| view.remedy()),
        "driftMessage": view.drift_message(),
    })
}

/// The Cloud Run view of `r`, when `[actuator]` acts on its service; None otherwise.
pub(super) async fn view(env: &Env, r: &Rollout) -> Option<TrafficView> {
    view_of(&env.actuators(), r).await
}
