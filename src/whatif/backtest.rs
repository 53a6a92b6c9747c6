//! What `backtest` prints: a replay over recorded traffic as text or JSON. Recorded traffic
//! cannot react to a different percentage, so both say which percentages the traffic was
//! recorded at next to the replayed plan's, and nothing is scaled.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::replay::{Asks, Exposure, Record, Replay};
use crate::domain::rollout::{Plan, stage_phrase};
use crate::domain::units::{Percent, format_duration};

/// A finished backtest and what it ran on.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub replay: Replay,
    pub plan: Plan,
    /// "trace FILE" or the metrics source's description.
    pub source: String,
    /// Where the gates came from: "config" or the `--gates` file.
    pub gates_from: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tick: Duration,
    pub asks: Asks,
    /// The percentage the traffic was recorded at from each time it changed (None: unknown).
    pub recorded: Vec<(DateTime<Utc>, Option<Percent>)>,
}

fn percent_text(p: Option<Percent>) -> String {
    p.map_or("unknown".into(), |p| p.to_string())
}

fn percent_json(p: Option<Percent>) -> Value {
    p.map_or(Value::Null, Percent::to_json)
}

impl Backtest {
    fn long(&self) -> bool {
        self.to - self.from > chrono::Duration::hours(24)
    }

    fn when(&self, t: DateTime<Utc>) -> String {
        if self.long() {
            t.format("%m-%d %H:%M").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }

    /// The recorded percentage in force at `t`.
    pub fn recorded_at(&self, t: DateTime<Utc>) -> Option<Percent> {
        self.recorded
            .iter()
            .take_while(|(from, _)| *from <= t)
            .last()
            .and_then(|(_, p)| *p)
    }

    fn plan_percentages(&self) -> Vec<Percent> {
        self.plan.stages.iter().map(|s| s.percent).collect()
    }

    /// Whether a decision's replayed percentage differs from the recorded one.
    fn mismatch(&self, r: &Record) -> bool {
        self.recorded_at(r.at).is_some_and(|p| p != r.percent)
    }

    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let id = &self.replay.rollout.id;
        out.push(format!(
            "backtest of '{id}' on {}, {} to {} UTC, a tick every {}",
            self.source,
            self.from.format("%Y-%m-%d %H:%M"),
            if self.long() {
                self.to.format("%Y-%m-%d %H:%M").to_string()
            } else {
                self.to.format("%H:%M").to_string()
            },
            format_duration(self.tick)
        ));
        let stages: Vec<String> = self
            .plan
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| stage_phrase(i, None, &s.name, s.percent))
            .collect();
        out.push(format!("plan: {}", stages.join(", ")));
        out.push(format!(
            "gates: {}; confirmations: {}",
            self.gates_from,
            self.asks.describe()
        ));
        let recorded: Vec<String> = self
            .recorded
            .iter()
            .map(|(t, p)| format!("{} from {}", percent_text(*p), self.when(*t)))
            .collect();
        let plan: Vec<String> = self
            .plan_percentages()
            .iter()
            .map(ToString::to_string)
            .collect();
        out.push(format!(
            "traffic recorded at: {}; the replayed plan's stages are at {}",
            recorded.join(", "),
            plan.join(", ")
        ));
        out.push(
            "the recorded counts are replayed as they are: the canary's traffic does not follow the replayed percentage, and nothing is scaled"
                .into(),
        );
        out.push(String::new());
        if self.replay.records.is_empty() {
            out.push("no decision but holding in the whole period".into());
        }
        for r in &self.replay.records {
            out.push(format!(
                "{}  {:<17} {}",
                self.when(r.at),
                r.kind.as_str(),
                r.reason
            ));
            let stage = r
                .stage
                .as_ref()
                .map(|(i, name)| stage_phrase(*i, None, name, r.percent))
                .unwrap_or_else(|| r.percent.to_string());
            let recorded = self.recorded_at(r.at);
            let note = if self.mismatch(r) { " (differs)" } else { "" };
            out.push(format!(
                "       in {stage}, traffic recorded at {}{note}; gates: {}",
                percent_text(recorded),
                r.gates
            ));
            out.push(format!(
                "       exposure so far: {}",
                exposure_text(&r.exposure)
            ));
        }
        out.push(String::new());
        let end = &self.replay;
        let stage = end
            .rollout
            .stage()
            .map(|(i, s)| stage_phrase(i, None, &s.name, s.percent))
            .unwrap_or_default();
        let state = match &end.last_hold {
            Some(why) => format!("{} in {stage}, holding: {why}", end.rollout.status),
            None => format!("{} in {stage}", end.rollout.status),
        };
        out.push(format!("end {}: {state}", self.when(end.ended_at)));
        out.push(format!("exposure: {}", exposure_text(&end.exposure)));
        out
    }

    pub fn to_json(&self) -> Value {
        let r = &self.replay;
        let decisions: Vec<Value> = r
            .records
            .iter()
            .map(|d| {
                json!({
                    "at": d.at.to_rfc3339(),
                    "kind": d.kind.as_str(),
                    "stage": d.stage.as_ref().map(|(i, _)| i + 1),
                    "stageName": d.stage.as_ref().map(|(_, n)| n.clone()),
                    "percent": d.percent.to_json(),
                    "recordedPercent": percent_json(self.recorded_at(d.at)),
                    "to": d.to.as_ref().map(|(i, name, p)| json!({
                        "stage": i + 1, "stageName": name, "percent": p.to_json()
                    })),
                    "reason": d.reason,
                    "verdict": d.report.verdict,
                    "gates": d.gates,
                    "failing": d.report.failing().map(|g| g.name.clone()).collect::<Vec<_>>(),
                    "exposure": d.exposure,
                })
            })
            .collect();
        json!({
            "rollout": r.rollout.id,
            "source": self.source,
            "gates": self.gates_from,
            "from": self.from.to_rfc3339(),
            "to": self.to.to_rfc3339(),
            "tick": format_duration(self.tick),
            "asks": self.asks.as_str(),
            "plan": self.plan.to_json()["stages"],
            "recordedPercentages": self.recorded.iter().map(|(t, p)| json!({
                "from": t.to_rfc3339(), "percent": percent_json(*p)
            })).collect::<Vec<_>>(),
            "scaled": false,
            "decisions": decisions,
            "end": {
                "at": r.ended_at.to_rfc3339(),
                "status": r.rollout.status.as_str(),
                "stage": r.rollout.stage().map(|(i, _)| i + 1),
                "percent": r.rollout.percentage.to_json(),
                "holding": r.last_hold,
                "reachedFullAt": r.reached_full_at.map(|t| t.to_rfc3339()),
                "exposure": r.exposure,
            },
        })
    }
}

/// "812 canary requests, 40.0 percent-minutes"
pub fn exposure_text(e: &Exposure) -> String {
    format!(
        "{} canary requests, {:.1} percent-minutes",
        e.canary_requests, e.percent_minutes
    )
}
