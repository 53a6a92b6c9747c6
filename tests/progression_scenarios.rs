//! Data-driven runs of the progression machine: each `tests/scenarios/*.toml`
//! file is a rollout, a sequence of health samples over time, and the decision
//! expected at each step. With `apply = true` each decision is applied through
//! the same pure actions the CLI uses, so a file can walk a whole rollout.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rollout_tui::domain::actions::{self, Action, Context, NewRollout};
use rollout_tui::domain::health::{BreachTracker, GateConfig, HealthSample, SideStats, evaluate};
use rollout_tui::domain::progression::{Decision, Policy, decide};
use rollout_tui::domain::rollout::{Fields, Hashing, Plan, PlanPreset, Rollout};
use rollout_tui::domain::units::parse_duration;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    #[serde(default = "default_preset")]
    preset: String,
    /// Advance this many times at t0 before the steps (start mid-plan).
    #[serde(default)]
    start_stage: usize,
    #[serde(default)]
    policy: Policy,
    /// Per-rollout gate overrides (the document's camelCase `gates`).
    #[serde(default)]
    gates: Option<GateConfig>,
    #[serde(default)]
    apply: bool,
    step: Vec<Step>,
    #[serde(default)]
    end: Option<End>,
}

fn default_preset() -> String {
    "canary".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: String,
    canary: Option<Side>,
    stable: Option<Side>,
    /// Age of the newest point on both sides when the sample is taken.
    #[serde(default = "default_age")]
    age: String,
    #[serde(default)]
    no_sample: bool,
    expect: String,
    #[serde(default)]
    reason: Option<String>,
    /// For `await`: the operator answers yes (the stage is applied when `apply`).
    #[serde(default)]
    confirm: bool,
}

fn default_age() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Side {
    requests: u64,
    errors: u64,
    #[serde(default)]
    p99: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    status: Option<String>,
    percent: Option<f64>,
    stage: Option<usize>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn offset(text: &str) -> chrono::Duration {
    chrono::Duration::from_std(parse_duration(text).unwrap()).unwrap()
}

fn stats(side: &Side, newest: DateTime<Utc>) -> SideStats {
    SideStats {
        requests: side.requests,
        errors: side.errors,
        p50_ms: side.p99.map(|p| p / 3.0),
        p75_ms: side.p99.map(|p| p / 2.0),
        p95_ms: side.p99.map(|p| p * 0.8),
        p99_ms: side.p99,
        newest_point_at: Some(newest),
    }
}

fn kind(d: &Decision) -> &'static str {
    match d {
        Decision::Hold(_) => "hold",
        Decision::AwaitConfirmation(_) => "await",
        Decision::Advance(_) => "advance",
        Decision::Halt(_) => "halt",
        Decision::Rollback(_) => "rollback",
        Decision::Complete => "complete",
    }
}

/// The action a decision turns into when it is carried out.
fn action_for(d: &Decision, confirmed: bool) -> Option<Action> {
    match d {
        Decision::Advance(_) | Decision::Complete => Some(Action::Advance),
        Decision::AwaitConfirmation(_) if confirmed => Some(Action::Advance),
        Decision::Halt(why) => Some(Action::Pause {
            reason: Some(why.clone()),
        }),
        Decision::Rollback(why) => Some(Action::Rollback {
            reason: why.clone(),
        }),
        _ => None,
    }
}

struct Doc {
    fields: Fields,
    rollout: Rollout,
}

impl Doc {
    fn apply(&mut self, action: &Action, now: DateTime<Utc>, plan: &Plan) {
        let ctx = Context {
            actor: "driver",
            now,
            default_plan: plan,
            freeze_windows: &[],
        };
        let t = actions::apply(&self.rollout, &self.fields, action, ctx)
            .unwrap_or_else(|e| panic!("{action:?}: {e}"));
        t.patch.apply_to(&mut self.fields);
        self.rollout = Rollout::from_fields(&self.rollout.id, &self.fields).unwrap();
    }
}

fn run(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let sc: Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let plan = Plan::preset(PlanPreset::parse(&sc.preset).unwrap());
    let new = NewRollout {
        id: "scenario".into(),
        version: "2.0.0".into(),
        stable_version: Some("1.9.0".into()),
        plan: plan.clone(),
        hashing: Hashing::FractionalV1,
        stable_revision: Some("svc-00001-aaa".into()),
        canary_revision: Some("svc-00002-bbb".into()),
        canary_users: vec!["alec@getaifactory.com".into()],
        on_breach: None,
    };
    let (mut fields, _) = actions::create(&new, "test", t0()).unwrap();
    if let Some(g) = &sc.gates {
        fields.insert("gates".into(), serde_json::to_value(g).unwrap());
    }
    let mut doc = Doc {
        rollout: Rollout::from_fields("scenario", &fields).unwrap(),
        fields,
    };
    for _ in 0..sc.start_stage {
        doc.apply(&Action::Advance, t0(), &plan);
    }
    // Scenario steps are windows without stage totals: judged as windows unless the
    // scenario's gates say otherwise.
    let gate_cfg = doc.rollout.gates.clone().unwrap_or(GateConfig {
        judgment: rollout_tui::domain::health::Judgment::Window,
        ..GateConfig::default()
    });
    let mut tracker = BreachTracker::default();
    for (i, step) in sc.step.iter().enumerate() {
        let now = t0() + offset(&step.at);
        let report = (!step.no_sample).then(|| {
            let newest = now - offset(&step.age);
            let sample = HealthSample {
                taken_at: now,
                window: Duration::from_secs(300),
                stable: step.stable.as_ref().map(|s| stats(s, newest)),
                canary: step.canary.as_ref().map(|s| stats(s, newest)),
                source_error: None,
                ingestion_delay: std::time::Duration::ZERO,
                stage: None,
            };
            let gates = gate_cfg.at_percentage(doc.rollout.percentage);
            let mut report = evaluate(&sample, &gates, now);
            tracker.observe(&mut report);
            report
        });
        let decision = decide(&doc.rollout, report.as_ref(), now, &sc.policy);
        let ctx = format!(
            "{name} ({}) step {} at {}: got {decision:?}",
            sc.description,
            i + 1,
            step.at
        );
        assert_eq!(kind(&decision), step.expect, "{ctx}");
        if let Some(needle) = &step.reason {
            let label = decision.label();
            assert!(
                label.contains(needle.as_str()),
                "{ctx}: label {label:?} lacks {needle:?}"
            );
        }
        if sc.apply
            && let Some(action) = action_for(&decision, step.confirm)
        {
            doc.apply(&action, now, &plan);
        }
    }
    if let Some(end) = &sc.end {
        if let Some(s) = &end.status {
            assert_eq!(doc.rollout.status.as_str(), s, "{name}: final status");
        }
        if let Some(p) = end.percent {
            assert_eq!(
                doc.rollout.percentage.as_f64(),
                p,
                "{name}: final percentage"
            );
        }
        if let Some(st) = end.stage {
            assert_eq!(doc.rollout.current_stage, Some(st), "{name}: final stage");
        }
    }
}

#[test]
fn scenario_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 8,
        "expected the scenario files in {}",
        dir.display()
    );
    for f in &files {
        run(f);
    }
}
