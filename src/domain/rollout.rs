//! The rollout document: typed view over a JSON map that keeps every field it
//! does not know. Reading is tolerant (aliases, numbers or strings where teams
//! wrote either) but never silently defaults a malformed field: that is a
//! per-rollout error naming the field.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::health::GateConfig;
use super::units::{Percent, format_duration, parse_duration};

/// A JSON object: the stored shape of a rollout document.
pub type Fields = Map<String, Value>;

/// Document field names, camelCase as in the existing Firestore documents.
pub mod field {
    pub const VERSION: &str = "version";
    pub const STABLE_VERSION: &str = "stableVersion";
    pub const STATUS: &str = "status";
    pub const CANARY_USERS: &str = "canaryUsers";
    pub const EXCLUDED_USERS: &str = "excludedUsers";
    pub const ROLLOUT_PERCENTAGE: &str = "rolloutPercentage";
    pub const ROLLOUT_STRATEGY: &str = "rolloutStrategy";
    pub const STABLE_REVISION: &str = "stableRevision";
    pub const CANARY_REVISION: &str = "canaryRevision";
    pub const STARTED_AT: &str = "startedAt";
    pub const LAST_UPDATED_AT: &str = "lastUpdatedAt";
    pub const COMPLETED_AT: &str = "completedAt";
    pub const APPROVED_BY: &str = "approvedBy";
    pub const ROLLBACK_REASON: &str = "rollbackReason";
    pub const ROLLED_BACK_AT: &str = "rolledBackAt";
    pub const PAUSE_REASON: &str = "pauseReason";
    pub const ON_BREACH: &str = "onBreach";
    pub const PLAN: &str = "plan";
    pub const CURRENT_STAGE: &str = "currentStage";
    pub const STAGE_ENTERED_AT: &str = "stageEnteredAt";
    pub const GATES: &str = "gates";
    pub const HASHING: &str = "hashing";

    /// Fields written as timestamps (Firestore `timestampValue`, RFC 3339 in JSON).
    pub const TIMESTAMPS: [&str; 5] = [
        STARTED_AT,
        LAST_UPDATED_AT,
        COMPLETED_AT,
        STAGE_ENTERED_AT,
        ROLLED_BACK_AT,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Planned,
    Canary,
    Progressive,
    Paused,
    Complete,
    RolledBack,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Planned,
        Status::Canary,
        Status::Progressive,
        Status::Paused,
        Status::Complete,
        Status::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Canary => "canary",
            Status::Progressive => "progressive",
            Status::Paused => "paused",
            Status::Complete => "complete",
            Status::RolledBack => "rolled-back",
        }
    }

    /// Reads the canonical names and the aliases other tools wrote.
    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "planned" => Status::Planned,
            "canary" => Status::Canary,
            "progressive" | "in_progress" | "in-progress" => Status::Progressive,
            "paused" => Status::Paused,
            "complete" | "completed" => Status::Complete,
            "rolled-back" | "rolled_back" => Status::RolledBack,
            _ => return None,
        })
    }

    /// Finished rollouts never move again (rollback of a complete one excepted).
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Complete | Status::RolledBack)
    }

    /// The running status for a percentage: canary users only, or a share of everyone.
    pub fn running_at(percent: Percent) -> Status {
        if percent == Percent::ZERO {
            Status::Canary
        } else {
            Status::Progressive
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How users are put into buckets; see ARCHITECTURE.md "Assignment hashing".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Hashing {
    #[default]
    FractionalV1,
    UnleashV1,
}

impl Hashing {
    pub fn as_str(self) -> &'static str {
        match self {
            Hashing::FractionalV1 => "fractional-v1",
            Hashing::UnleashV1 => "unleash-v1",
        }
    }

    pub fn parse(text: &str) -> Option<Hashing> {
        match text {
            "fractional-v1" => Some(Hashing::FractionalV1),
            "unleash-v1" => Some(Hashing::UnleashV1),
            _ => None,
        }
    }

    /// unleash-v1 buckets are whole percents; a fractional threshold cannot be honoured.
    pub fn allows(self, percent: Percent) -> bool {
        match self {
            Hashing::FractionalV1 => true,
            Hashing::UnleashV1 => percent.is_whole(),
        }
    }
}

impl fmt::Display for Hashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub percent: Percent,
    pub min_duration: Duration,
    /// An operator must confirm before the machine advances into this stage.
    pub confirm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

/// A stage named in a sentence, as summaries, decisions and dialogs say it:
/// "stage 2/5 '5%' (5%)", or without the plan's length "stage 2 '5%' (5%)".
pub fn stage_phrase(index: usize, total: Option<usize>, name: &str, percent: Percent) -> String {
    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
    format!("stage {}{of} '{name}' ({percent})", index + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanPreset {
    Canary,
    Tiers,
    Cohorts,
}

impl PlanPreset {
    pub const ALL: [PlanPreset; 3] = [PlanPreset::Canary, PlanPreset::Tiers, PlanPreset::Cohorts];

    pub fn as_str(self) -> &'static str {
        match self {
            PlanPreset::Canary => "canary",
            PlanPreset::Tiers => "tiers",
            PlanPreset::Cohorts => "cohorts",
        }
    }

    pub fn parse(text: &str) -> Option<PlanPreset> {
        PlanPreset::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

fn stage(name: &str, hundredths: u16, minutes: u64, confirm: bool) -> Stage {
    Stage {
        name: name.to_string(),
        percent: Percent::from_hundredths(hundredths).expect("preset percent in range"),
        min_duration: Duration::from_secs(minutes * 60),
        confirm,
    }
}

impl Plan {
    pub fn preset(preset: PlanPreset) -> Plan {
        const HOUR: u64 = 60;
        const WEEK: u64 = 7 * 24 * HOUR;
        let stages = match preset {
            PlanPreset::Canary => vec![
                stage("canary users", 0, 0, false),
                stage("5%", 500, 10, false),
                stage("25%", 2_500, 30, false),
                stage("50%", 5_000, 60, false),
                stage("100%", 10_000, 0, true),
            ],
            PlanPreset::Tiers => vec![
                stage("internal", 100, 48 * HOUR, false),
                stage("early adopters", 1_000, WEEK, true),
                stage("general", 5_000, WEEK, true),
                stage("full", 10_000, 0, true),
            ],
            PlanPreset::Cohorts => vec![
                stage("internal", 50, HOUR, false),
                stage("friendly", 500, 24 * HOUR, true),
                stage("beta", 2_500, 48 * HOUR, true),
                stage("GA", 10_000, 0, true),
            ],
        };
        Plan { stages }
    }

    pub fn last_index(&self) -> usize {
        self.stages.len().saturating_sub(1)
    }

    /// The last stage whose percentage is at or below `percent` (for exact
    /// percentages set by hand); None when below the first stage.
    pub fn stage_for_percent(&self, percent: Percent) -> Option<usize> {
        self.stages.iter().rposition(|s| s.percent <= percent)
    }

    pub fn to_json(&self) -> Value {
        let stages: Vec<Value> = self
            .stages
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "percent": s.percent.to_json(),
                    "minDuration": format_duration(s.min_duration),
                    "confirm": s.confirm,
                })
            })
            .collect();
        serde_json::json!({ "stages": stages })
    }

    /// Stages must exist, have names and never go down in percentage.
    pub fn validate(&self) -> Result<(), String> {
        if self.stages.is_empty() {
            return Err("a plan needs at least one stage".into());
        }
        for (i, pair) in self.stages.windows(2).enumerate() {
            if pair[1].percent < pair[0].percent {
                return Err(format!(
                    "stage {} ({}) goes down from {} to {}",
                    i + 1,
                    pair[1].name,
                    pair[0].percent,
                    pair[1].percent
                ));
            }
        }
        if let Some(s) = self.stages.iter().find(|s| s.name.trim().is_empty()) {
            return Err(format!("a stage at {} has no name", s.percent));
        }
        Ok(())
    }
}

/// The typed view of a rollout document.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub id: String,
    pub version: String,
    pub stable_version: Option<String>,
    pub status: Status,
    pub canary_users: Vec<String>,
    pub excluded_users: Vec<String>,
    pub percentage: Percent,
    pub strategy: Option<String>,
    pub stable_revision: Option<String>,
    pub canary_revision: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_updated_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub rollback_reason: Option<String>,
    pub pause_reason: Option<String>,
    /// None for documents written before plans existed (the seed `current` document).
    pub plan: Option<Plan>,
    pub current_stage: Option<usize>,
    pub stage_entered_at: Option<DateTime<Utc>>,
    /// Per-rollout gate overrides; None means the configured defaults apply.
    pub gates: Option<GateConfig>,
    pub hashing: Hashing,
    /// What a sustained breach does to this rollout (`onBreach`); None: the policy's.
    pub on_breach: Option<crate::domain::progression::HaltPolicy>,
}

/// A malformed document: the rollout is shown with this error and never written from a default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout '{rollout}': field '{field}' {problem}")]
pub struct DocError {
    pub rollout: String,
    pub field: String,
    pub problem: String,
}

struct Reader<'a> {
    id: &'a str,
    fields: &'a Fields,
}

impl<'a> Reader<'a> {
    fn err(&self, field: &str, problem: impl Into<String>) -> DocError {
        DocError {
            rollout: self.id.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// Absent and null both mean "not set".
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, DocError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Version numbers are sometimes written as numbers.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.err(name, format!("must be a string, found {}", kind(other)))),
        }
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, DocError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).map_err(|p| self.err(name, p)),
        }
    }

    fn string_list(&self, name: &str) -> Result<Vec<String>, DocError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.err(
                        name,
                        format!("item {i} must be a string, found {}", kind(other)),
                    )),
                })
                .collect(),
            // The seed design used `canaryUsers` for a count too; a number is not a list of users.
            Some(other) => Err(self.err(
                name,
                format!("must be a list of strings, found {}", kind(other)),
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Timestamps arrive as RFC 3339 strings, as `{seconds, nanos}` / `{_seconds, _nanoseconds}`
/// objects (Firestore exports and JS SDK JSON), or as epoch milliseconds.
pub fn parse_time(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("is not an RFC 3339 timestamp ('{s}': {e})")),
        Value::Number(n) => n
            .as_i64()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| format!("is not a timestamp in epoch milliseconds ({n})")),
        Value::Object(o) => {
            let secs = o
                .get("seconds")
                .or_else(|| o.get("_seconds"))
                .and_then(Value::as_i64);
            let nanos = o
                .get("nanos")
                .or_else(|| o.get("_nanoseconds"))
                .and_then(Value::as_u64);
            match secs {
                Some(s) => DateTime::from_timestamp(s, nanos.unwrap_or(0) as u32)
                    .ok_or_else(|| format!("holds an out-of-range timestamp ({s} s)")),
                None => Err("is an object without 'seconds'".into()),
            }
        }
        other => Err(format!("must be a timestamp, found {}", kind(other))),
    }
}

/// The form every timestamp is written in.
pub fn time_to_json(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn parse_percent_value(v: &Value) -> Result<Percent, String> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().ok_or("is not a number")?;
            Percent::from_f64(f).map_err(|e| format!("is invalid: {e}"))
        }
        Value::String(s) => s.parse::<Percent>().map_err(|e| format!("is invalid: {e}")),
        other => Err(format!("must be a number, found {}", kind(other))),
    }
}

fn parse_duration_value(v: &Value) -> Result<Duration, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("must be a whole number of seconds, found {n}")),
        Value::String(s) => parse_duration(s),
        other => Err(format!(
            "must be a duration such as \"10m\", found {}",
            kind(other)
        )),
    }
}

fn parse_plan(v: &Value) -> Result<Plan, String> {
    let stages_value = match v {
        Value::Object(o) => o.get("stages").ok_or("has no 'stages' list")?,
        Value::Array(_) => v,
        other => {
            return Err(format!(
                "must be an object with 'stages', found {}",
                kind(other)
            ));
        }
    };
    let items = stages_value.as_array().ok_or("'stages' must be a list")?;
    let mut stages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let o = item
            .as_object()
            .ok_or_else(|| format!("stage {i} must be an object"))?;
        let percent = parse_percent_value(
            o.get("percent")
                .ok_or_else(|| format!("stage {i} has no 'percent'"))?,
        )
        .map_err(|e| format!("stage {i} percent {e}"))?;
        let name = match o.get("name") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => percent.to_string(),
            Some(other) => {
                return Err(format!(
                    "stage {i} name must be a string, found {}",
                    kind(other)
                ));
            }
        };
        let min_duration = match o.get("minDuration") {
            None | Some(Value::Null) => Duration::ZERO,
            Some(d) => parse_duration_value(d).map_err(|e| format!("stage {i} minDuration {e}"))?,
        };
        let confirm = match o.get("confirm") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "stage {i} confirm must be true or false, found {}",
                    kind(other)
                ));
            }
        };
        stages.push(Stage {
            name,
            percent,
            min_duration,
            confirm,
        });
    }
    let plan = Plan { stages };
    plan.validate()?;
    Ok(plan)
}

impl Rollout {
    /// Reads a stored document. Unknown fields are ignored here and kept by the store.
    /// The gates that judge this rollout: its own, else `defaults`, without the relative
    /// ones at 100 % (see `GateConfig::at_percentage`). The one rule for every front end.
    pub fn gates_in_effect(&self, defaults: &GateConfig) -> GateConfig {
        self.gates
            .as_ref()
            .unwrap_or(defaults)
            .at_percentage(self.percentage)
    }

    pub fn from_fields(id: &str, fields: &Fields) -> Result<Rollout, DocError> {
        let r = Reader { id, fields };
        let version = r
            .opt_string(field::VERSION)?
            .ok_or_else(|| r.err(field::VERSION, "is missing"))?;
        let status = match r.get(field::STATUS) {
            None => return Err(r.err(field::STATUS, "is missing")),
            Some(Value::String(s)) => Status::parse(s).ok_or_else(|| {
                r.err(
                    field::STATUS,
                    format!(
                        "has unknown value '{s}' (expected planned, canary, progressive, paused, complete or rolled-back)"
                    ),
                )
            })?,
            Some(other) => return Err(r.err(field::STATUS, format!("must be a string, found {}", kind(other)))),
        };
        let percentage = match r.get(field::ROLLOUT_PERCENTAGE) {
            None => Percent::ZERO,
            Some(v) => parse_percent_value(v).map_err(|p| r.err(field::ROLLOUT_PERCENTAGE, p))?,
        };
        let plan = match r.get(field::PLAN) {
            None => None,
            Some(v) => Some(parse_plan(v).map_err(|p| r.err(field::PLAN, p))?),
        };
        let current_stage = match r.get(field::CURRENT_STAGE) {
            None => None,
            Some(Value::Number(n)) => {
                let i = n.as_u64().ok_or_else(|| {
                    r.err(
                        field::CURRENT_STAGE,
                        format!("must be a stage index, found {n}"),
                    )
                })?;
                Some(i as usize)
            }
            Some(other) => {
                return Err(r.err(
                    field::CURRENT_STAGE,
                    format!("must be a stage index, found {}", kind(other)),
                ));
            }
        };
        if let (Some(i), Some(p)) = (current_stage, &plan)
            && i >= p.stages.len()
        {
            return Err(r.err(
                field::CURRENT_STAGE,
                format!("is {i} but the plan has {} stages", p.stages.len()),
            ));
        }
        let gates = match r.get(field::GATES) {
            None => None,
            Some(v) => {
                let gates = serde_json::from_value::<GateConfig>(v.clone())
                    .map_err(|e| r.err(field::GATES, format!("is invalid: {e}")))?;
                // A threshold that cannot fail would switch a gate off unseen: refused, so
                // the driver never acts on this rollout until it is fixed (rollback still works).
                gates
                    .validate(crate::domain::gates::Spelling::Document)
                    .map_err(|e| r.err(field::GATES, format!("is invalid: {e}")))?;
                Some(gates)
            }
        };
        let hashing = match r.get(field::HASHING) {
            None => Hashing::default(),
            Some(Value::String(s)) => Hashing::parse(s).ok_or_else(|| {
                r.err(
                    field::HASHING,
                    format!("has unknown value '{s}' (expected fractional-v1 or unleash-v1)"),
                )
            })?,
            Some(other) => {
                return Err(r.err(
                    field::HASHING,
                    format!("must be a string, found {}", kind(other)),
                ));
            }
        };
        if !hashing.allows(percentage) {
            return Err(r.err(
                field::ROLLOUT_PERCENTAGE,
                format!("is {percentage}, but unleash-v1 hashing takes whole percentages only"),
            ));
        }
        Ok(Rollout {
            id: id.to_string(),
            version,
            stable_version: r.opt_string(field::STABLE_VERSION)?,
            status,
            canary_users: r.string_list(field::CANARY_USERS)?,
            excluded_users: r.string_list(field::EXCLUDED_USERS)?,
            percentage,
            strategy: r.opt_string(field::ROLLOUT_STRATEGY)?,
            stable_revision: r.opt_string(field::STABLE_REVISION)?,
            canary_revision: r.opt_string(field::CANARY_REVISION)?,
            started_at: r.opt_time(field::STARTED_AT)?,
            last_updated_at: r.opt_time(field::LAST_UPDATED_AT)?,
            completed_at: r.opt_time(field::COMPLETED_AT)?,
            approved_by: r.opt_string(field::APPROVED_BY)?,
            rollback_reason: r.opt_string(field::ROLLBACK_REASON)?,
            pause_reason: r.opt_string(field::PAUSE_REASON)?,
            plan,
            current_stage,
            stage_entered_at: r.opt_time(field::STAGE_ENTERED_AT)?,
            gates,
            hashing,
            on_breach: match r.opt_string(field::ON_BREACH)? {
                None => None,
                Some(text) => Some(
                    crate::domain::progression::HaltPolicy::parse(&text).ok_or_else(|| {
                        r.err(
                            field::ON_BREACH,
                            format!(
                                "is {text:?}; it must be \"pause\", \"retreat\" or \"rollback\""
                            ),
                        )
                    })?,
                ),
            },
        })
    }

    /// The current stage of the plan, if the rollout has a plan.
    pub fn stage(&self) -> Option<(usize, &Stage)> {
        let plan = self.plan.as_ref()?;
        let i = self.current_stage.unwrap_or(0).min(plan.last_index());
        plan.stages.get(i).map(|s| (i, s))
    }

    pub fn next_stage(&self) -> Option<(usize, &Stage)> {
        let plan = self.plan.as_ref()?;
        let next = self.current_stage.map_or(0, |i| i + 1);
        plan.stages.get(next).map(|s| (next, s))
    }

    /// The stage an advance enters: the first when not started or when the percentage
    /// (set by hand) is below the current stage's; otherwise the one after the current.
    /// Equal to the number of stages when the last stage is done (advance completes).
    pub fn next_stage_index(&self, plan: &Plan) -> usize {
        if self.status == Status::Planned {
            return 0;
        }
        let current = self
            .current_stage
            .filter(|&i| i < plan.stages.len())
            .or_else(|| plan.stage_for_percent(self.percentage));
        match current {
            None => 0,
            Some(i) if self.percentage < plan.stages[i].percent => i,
            Some(i) => i + 1,
        }
    }

    pub fn time_in_stage(&self, now: DateTime<Utc>) -> Option<Duration> {
        let since = self.stage_entered_at.or(self.started_at)?;
        Some((now - since).to_std().unwrap_or(Duration::ZERO))
    }

    /// The rest of the current stage's minimum time (zero once served), for a rollout
    /// running or paused in a stage; None otherwise.
    pub fn bake_time_left(&self, now: DateTime<Utc>) -> Option<Duration> {
        if !matches!(
            self.status,
            Status::Canary | Status::Progressive | Status::Paused
        ) {
            return None;
        }
        let (_, stage) = self.stage()?;
        Some(stage.min_duration.saturating_sub(self.time_in_stage(now)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn reads_the_seed_document_unchanged() {
        let doc = fields(json!({
            "version": "0.1.1", "status": "canary", "canaryUsers": ["alec@getaifactory.com"],
            "rolloutPercentage": 0, "rolloutStrategy": "manual",
            "stableRevision": "svc-00097-6cg", "canaryRevision": "svc-00098-xyz",
            "startedAt": "2025-12-03T10:00:00Z", "canaryErrors": 0, "stableErrors": 0
        }));
        let r = Rollout::from_fields("current", &doc).unwrap();
        assert_eq!(r.version, "0.1.1");
        assert_eq!(r.status, Status::Canary);
        assert_eq!(r.canary_users, vec!["alec@getaifactory.com"]);
        assert_eq!(r.percentage, Percent::ZERO);
        assert_eq!(r.strategy.as_deref(), Some("manual"));
        assert_eq!(r.stable_revision.as_deref(), Some("svc-00097-6cg"));
        assert_eq!(r.canary_revision.as_deref(), Some("svc-00098-xyz"));
        assert_eq!(
            r.started_at.unwrap().to_rfc3339(),
            "2025-12-03T10:00:00+00:00"
        );
        assert!(r.plan.is_none());
        assert_eq!(r.hashing, Hashing::FractionalV1);
    }

    #[test]
    fn status_aliases_are_read() {
        for (text, status) in [
            ("in_progress", Status::Progressive),
            ("completed", Status::Complete),
            ("rolled_back", Status::RolledBack),
            ("rolled-back", Status::RolledBack),
        ] {
            let doc = fields(json!({"version": "1", "status": text}));
            assert_eq!(Rollout::from_fields("x", &doc).unwrap().status, status);
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn malformed_fields_are_named() {
        let cases = [
            (json!({"version": "1", "status": "flying"}), "status"),
            (
                json!({"version": "1", "status": "canary", "rolloutPercentage": 140}),
                "rolloutPercentage",
            ),
            (
                json!({"version": "1", "status": "canary", "rolloutPercentage": "lots"}),
                "rolloutPercentage",
            ),
            (
                json!({"version": "1", "status": "canary", "canaryUsers": 1}),
                "canaryUsers",
            ),
            (
                json!({"version": "1", "status": "canary", "canaryUsers": ["a", 3]}),
                "canaryUsers",
            ),
            (
                json!({"version": "1", "status": "canary", "startedAt": "yesterday"}),
                "startedAt",
            ),
            (json!({"status": "canary"}), "version"),
            (
                json!({"version": "1", "status": "canary", "hashing": "md5"}),
                "hashing",
            ),
            (
                json!({"version": "1", "status": "canary", "plan": {"stages": [{"percent": 50}, {"percent": 5}]}}),
                "plan",
            ),
            (
                json!({"version": "1", "status": "canary", "plan": {"stages": []}}),
                "plan",
            ),
            (
                json!({"version": "1", "status": "canary", "plan": {"stages": [{"percent": 5}]}, "currentStage": 3}),
                "currentStage",
            ),
            (
                json!({"version": "1", "status": "canary", "hashing": "unleash-v1", "rolloutPercentage": 0.5}),
                "rolloutPercentage",
            ),
        ];
        for (doc, field_name) in cases {
            let err = Rollout::from_fields("r1", &fields(doc.clone())).unwrap_err();
            assert_eq!(err.field, field_name, "{doc}");
            assert_eq!(err.rollout, "r1");
            assert!(err.to_string().contains(field_name));
        }
    }

    #[test]
    fn timestamps_in_several_shapes() {
        let t = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time(&json!("2025-01-02T03:04:05Z")).unwrap(), t);
        assert_eq!(
            parse_time(&json!({"seconds": t.timestamp(), "nanos": 0})).unwrap(),
            t
        );
        assert_eq!(
            parse_time(&json!({"_seconds": t.timestamp(), "_nanoseconds": 0})).unwrap(),
            t
        );
        assert_eq!(parse_time(&json!(t.timestamp_millis())).unwrap(), t);
        assert_eq!(parse_time(&time_to_json(t)).unwrap(), t);
    }

    #[test]
    fn presets_match_the_issue() {
        let canary = Plan::preset(PlanPreset::Canary);
        let pct: Vec<u16> = canary
            .stages
            .iter()
            .map(|s| s.percent.hundredths())
            .collect();
        assert_eq!(pct, vec![0, 500, 2_500, 5_000, 10_000]);
        let mins: Vec<u64> = canary
            .stages
            .iter()
            .map(|s| s.min_duration.as_secs() / 60)
            .collect();
        assert_eq!(mins, vec![0, 10, 30, 60, 0]);
        let tiers = Plan::preset(PlanPreset::Tiers);
        assert_eq!(tiers.stages[0].min_duration, Duration::from_secs(48 * 3600));
        assert_eq!(tiers.stages[1].percent.hundredths(), 1_000);
        let cohorts = Plan::preset(PlanPreset::Cohorts);
        assert_eq!(cohorts.stages[0].percent.hundredths(), 50);
        for preset in PlanPreset::ALL {
            let plan = Plan::preset(preset);
            plan.validate().unwrap();
            assert_eq!(plan.stages.last().unwrap().percent, Percent::FULL);
            // A plan written to a document reads back identically.
            assert_eq!(parse_plan(&plan.to_json()).unwrap(), plan);
        }
    }
}
