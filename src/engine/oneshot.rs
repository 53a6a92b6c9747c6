//! The engine for one-shot commands (`status`, `status --json`): every rollout sampled in
//! one batch (grouped queries per service where the source can) and judged by the same
//! judge the cockpit's sampler and the driver use.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::judge::{Tracker, judge_with};
use crate::domain::health::{GateConfig, GateReport, HealthSample, SideStats};
use crate::domain::rollout::{Rollout, time_to_json};
use crate::metrics::MetricsSource;

/// The `health` object of `status --json`.
pub fn health_json(sample: &HealthSample, report: &GateReport) -> Value {
    let side = |s: Option<&SideStats>| match s {
        None => Value::Null,
        Some(s) => json!({
            "requests": s.requests,
            "errors": s.errors,
            "errorRate": s.error_rate(),
            "p50Ms": s.p50_ms,
            "p95Ms": s.p95_ms,
            "p99Ms": s.p99_ms,
            "newestPointAt": s.newest_point_at.map(time_to_json),
        }),
    };
    let gates: Vec<Value> = report
        .gates
        .iter()
        .map(|g| json!({ "name": g.name, "verdict": g.verdict, "detail": g.detail }))
        .collect();
    let mut h = json!({
        "stable": side(sample.stable.as_ref()),
        "canary": side(sample.canary.as_ref()),
        "gates": gates,
        "verdict": report.verdict,
    });
    if let Some(e) = &sample.source_error {
        h["sourceError"] = Value::from(e.as_str());
    }
    h
}

/// Samples and judges every rollout with the gates the cockpit and the driver use: its own,
/// else `default_gates`, without the relative ones at 100 %.
pub async fn judge_all(
    source: Arc<dyn MetricsSource>,
    rollouts: &[Rollout],
    default_gates: &GateConfig,
    now: DateTime<Utc>,
) -> Vec<(HealthSample, GateReport)> {
    let samples = crate::metrics::sample_all(source, rollouts, now).await;
    samples
        .into_iter()
        .zip(rollouts)
        .map(|(s, r)| {
            // The engine's own judge, with a fresh breach history.
            let report = judge_with(&Tracker::default(), r, &s, default_gates);
            (s, report)
        })
        .collect()
}

/// `judge_all` as the `health` objects of `status --json`.
pub async fn health_of_all(
    source: Arc<dyn MetricsSource>,
    rollouts: &[Rollout],
    default_gates: &GateConfig,
    now: DateTime<Utc>,
) -> Vec<Value> {
    judge_all(source, rollouts, default_gates, now)
        .await
        .iter()
        .map(|(s, report)| health_json(s, report))
        .collect()
}
