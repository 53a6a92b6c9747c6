//! `simulate`: a plan and its gates run many times on modelled traffic (`traffic`) with a
//! regression injected into the canary from the start, each run through the replay core,
//! and the trade-off summed up: how often and how early the regression is caught, how much
//! reached the canary first, false halts of a healthy canary, and the time to 100 %.
//!
//! Each run starts a rollout in the plan's first stage (canary users only for the canary
//! plan; they send `CANARY_USERS_SHARE` of the traffic), answers every confirmation yes at
//! once, and ends at its first halt, rollback or proposed rollback, when it completes, or at
//! the horizon: three times the plan's minimum time to 100 %, at least an hour.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use super::replay::{self, Asks, Kind, Setup, Stop};
use super::traffic::{CANARY_USERS_SHARE, Model, Regression, TrafficFeed};
use crate::domain::health::GateConfig;
use crate::domain::progression::Policy;
use crate::domain::rollout::{Plan, Status};
use crate::domain::units::{Percent, format_duration, format_rate};
use crate::metrics::config::SimulatedSide;
use crate::metrics::simulator::mix;

/// Everything a simulation runs with.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub plan: Plan,
    pub plan_name: String,
    pub gates: GateConfig,
    pub gates_from: String,
    pub policy: Policy,
    pub rps: f64,
    pub base_error_rate: f64,
    pub regression: Regression,
    pub latency: SimulatedSide,
    pub runs: u32,
    pub seed: u64,
    /// "Caught before" counts detections made below this percentage.
    pub before: Percent,
    pub tick: Duration,
    pub window: Duration,
    /// How the simulated operator answers questions.
    pub asks: Asks,
}

/// The time the plan needs at least to reach 100 %: the minimum durations of the stages
/// before its first stage at 100 % (of all stages when none is).
pub fn minimum_to_full(plan: &Plan) -> Duration {
    let full = plan
        .stages
        .iter()
        .position(|s| s.percent == Percent::FULL)
        .unwrap_or(plan.stages.len());
    plan.stages[..full].iter().map(|s| s.min_duration).sum()
}

impl Scenario {
    pub fn horizon(&self) -> Duration {
        (minimum_to_full(&self.plan) * 3).max(Duration::from_secs(3600))
    }
}

/// One run, as the summary needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub detection: Option<Detection>,
    /// Minutes from the start to 100 %.
    pub to_full: Option<f64>,
    pub asks: usize,
    pub completed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub kind: Kind,
    pub minutes: f64,
    pub percent: Percent,
    pub canary_requests: u64,
    pub percent_minutes: f64,
    /// The gate whose sustained breach it was.
    pub gate: String,
}

/// A fixed start: runs do not depend on the day they are made.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Runs the scenario; each run's traffic is seeded from the scenario's seed and its index.
pub fn simulate(s: &Scenario) -> Result<Vec<Run>, String> {
    let start = start();
    let setup = Setup {
        start,
        end: start + chrono::Duration::from_std(s.horizon()).map_err(|e| e.to_string())?,
        tick: s.tick,
        gates: s.gates.clone(),
        policy: s.policy.clone(),
        default_plan: s.plan.clone(),
        asks: s.asks,
        stop: Stop::AtDetection,
    };
    let fields = replay::new_rollout("simulated", &s.plan, &["canary-users".into()], start)?;
    let model = Model {
        rps: s.rps,
        base_error_rate: s.base_error_rate,
        regression: s.regression,
        latency: s.latency.clone(),
        window: s.window,
        tick: s.tick,
    };
    (0..s.runs)
        .map(|i| {
            let seed = mix(s.seed ^ mix(u64::from(i) + 1));
            let mut feed = TrafficFeed::new(model.clone(), seed);
            let r = replay::run("simulated", fields.clone(), &setup, &mut feed)
                .map_err(|e| e.to_string())?;
            let minutes = |t: DateTime<Utc>| (t - start).num_milliseconds() as f64 / 60_000.0;
            Ok(Run {
                detection: r.detection().map(|d| Detection {
                    kind: d.kind,
                    minutes: minutes(d.at),
                    percent: d.percent,
                    canary_requests: d.exposure.canary_requests,
                    percent_minutes: d.exposure.percent_minutes,
                    gate: d
                        .report
                        .failing()
                        .find(|g| g.sustained)
                        .map_or_else(|| "?".into(), |g| g.name.clone()),
                }),
                to_full: r.reached_full_at.map(minutes),
                asks: r.asks(),
                completed: r.rollout.status == Status::Complete,
            })
        })
        .collect()
}

/// Median, 90th percentile and maximum (nearest rank) of some numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut xs: Vec<f64>) -> Option<Spread> {
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let rank = |q: f64| xs[((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1];
        Some(Spread {
            median: rank(0.5),
            p90: rank(0.9),
            max: xs[xs.len() - 1],
        })
    }

    fn to_json(self) -> Value {
        json!({"median": round(self.median), "p90": round(self.p90), "max": round(self.max)})
    }
}

/// Four decimals: JSON that stays the same across platforms' last-bit differences.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The figures an operator weighs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub runs: usize,
    pub halted: usize,
    pub rolled_back: usize,
    pub proposed: usize,
    pub caught_before: usize,
    pub reached_full: usize,
    pub within_2x: usize,
    pub completed: usize,
    pub asked: usize,
    /// Neither caught nor at 100 % by the horizon: held (inconclusive gates, a declined or
    /// unreachable stage).
    pub held: usize,
    pub detect_percent: Option<Spread>,
    pub detect_requests: Option<Spread>,
    pub detect_percent_minutes: Option<Spread>,
    pub detect_minutes: Option<Spread>,
    pub to_full: Option<Spread>,
    /// How many detections each gate made, by gate name.
    pub by_gate: std::collections::BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(s: &Scenario, runs: &[Run]) -> Summary {
        let detections: Vec<&Detection> =
            runs.iter().filter_map(|r| r.detection.as_ref()).collect();
        let count = |k: Kind| detections.iter().filter(|d| d.kind == k).count();
        let limit = minimum_to_full(&s.plan).as_secs_f64() / 60.0 * 2.0;
        Summary {
            runs: runs.len(),
            halted: count(Kind::Halt),
            rolled_back: count(Kind::Rollback),
            proposed: count(Kind::ProposedRollback),
            caught_before: detections.iter().filter(|d| d.percent < s.before).count(),
            reached_full: runs.iter().filter(|r| r.to_full.is_some()).count(),
            within_2x: runs
                .iter()
                .filter(|r| r.to_full.is_some_and(|m| m <= limit))
                .count(),
            completed: runs.iter().filter(|r| r.completed).count(),
            asked: runs.iter().filter(|r| r.asks > 0).count(),
            held: runs
                .iter()
                .filter(|r| r.detection.is_none() && r.to_full.is_none())
                .count(),
            detect_percent: Spread::of(detections.iter().map(|d| d.percent.as_f64()).collect()),
            detect_requests: Spread::of(
                detections
                    .iter()
                    .map(|d| d.canary_requests as f64)
                    .collect(),
            ),
            detect_percent_minutes: Spread::of(
                detections.iter().map(|d| d.percent_minutes).collect(),
            ),
            detect_minutes: Spread::of(detections.iter().map(|d| d.minutes).collect()),
            to_full: Spread::of(runs.iter().filter_map(|r| r.to_full).collect()),
            by_gate: detections
                .iter()
                .fold(std::collections::BTreeMap::new(), |mut m, d| {
                    *m.entry(d.gate.clone()).or_insert(0) += 1;
                    m
                }),
        }
    }

    fn share(&self, n: usize) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            n as f64 / self.runs as f64
        }
    }

    pub fn detected(&self) -> usize {
        self.halted + self.rolled_back + self.proposed
    }
}

fn pct(share: f64) -> String {
    format!("{:5.1} %", share * 100.0)
}

fn minutes_text(m: f64) -> String {
    format_duration(Duration::from_secs_f64((m * 60.0).max(0.0)))
}

/// The summary for people.
pub fn lines(s: &Scenario, sum: &Summary) -> Vec<String> {
    let healthy = s.regression == Regression::None;
    let mut out = vec![
        format!(
            "simulate: plan {} (at least {} to 100 %), gates: {}",
            s.plan_name,
            format_duration(minimum_to_full(&s.plan)),
            s.gates_from
        ),
        format!(
            "traffic: {} req/s, base error rate {}, regression {}; {} runs from seed {}",
            s.rps,
            format_rate(s.base_error_rate),
            s.regression.label(),
            s.runs,
            s.seed
        ),
        format!(
            "a tick every {}, {} windows; canary users send {} of the traffic; confirmations: {}; a run ends at its first halt or rollback, when it completes, or after {}",
            format_duration(s.tick),
            format_duration(s.window),
            format_rate(CANARY_USERS_SHARE),
            s.asks.describe(),
            format_duration(s.horizon())
        ),
        String::new(),
    ];
    let caught = if healthy {
        "false halts (healthy canary)"
    } else {
        "halted or rolled back"
    };
    out.push(format!(
        "{caught:<30}{}  ({} of {}: {} halted, {} rolled back, {} rollbacks proposed)",
        pct(sum.share(sum.detected())),
        sum.detected(),
        sum.runs,
        sum.halted,
        sum.rolled_back,
        sum.proposed
    ));
    if !sum.by_gate.is_empty() {
        let gates: Vec<String> = sum
            .by_gate
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect();
        out.push(format!("{:<30}{}", "detected by", gates.join(", ")));
    }
    if !healthy {
        out.push(format!(
            "{:<30}{}",
            format!("caught before {}", s.before),
            pct(sum.share(sum.caught_before))
        ));
    }
    match (
        sum.detect_percent,
        sum.detect_requests,
        sum.detect_percent_minutes,
        sum.detect_minutes,
    ) {
        (Some(p), Some(r), Some(pm), Some(m)) => {
            out.push(format!(
                "{:<30}median {} at {}%, {} canary requests, {:.0} percent-minutes",
                "exposure at detection",
                minutes_text(m.median),
                p.median,
                r.median,
                pm.median
            ));
            out.push(format!(
                "{:<30}90th percentile {} at {}%, {} canary requests, {:.0} percent-minutes",
                "",
                minutes_text(m.p90),
                p.p90,
                r.p90,
                pm.p90
            ));
        }
        _ => out.push(format!("{:<30}no run was halted", "exposure at detection")),
    }
    let time = sum
        .to_full
        .map_or("-".into(), |t| format!("median {}", minutes_text(t.median)));
    out.push(format!(
        "{:<30}{}  (within 2x the plan's minimum: {}; {})",
        "reached 100 %",
        pct(sum.share(sum.reached_full)),
        pct(sum.share(sum.within_2x)).trim_start(),
        time
    ));
    out.push(format!(
        "{:<30}{}",
        "operator asked",
        pct(sum.share(sum.asked))
    ));
    out.push(format!(
        "{:<30}{}",
        "still holding at the end",
        pct(sum.share(sum.held))
    ));
    out
}

/// The summary for scripts: every figure as a share of runs (0..1) or a spread.
pub fn to_json(s: &Scenario, sum: &Summary) -> Value {
    let spread = |x: Option<Spread>| x.map_or(Value::Null, Spread::to_json);
    let healthy = s.regression == Regression::None;
    json!({
        "plan": s.plan_name,
        "gates": s.gates_from,
        "rps": s.rps,
        "baseErrorRatePercent": round(s.base_error_rate * 100.0),
        "regression": s.regression.label(),
        "runs": s.runs,
        "seed": s.seed,
        "asks": s.asks.as_str(),
        "beforePercent": s.before.to_json(),
        "tick": format_duration(s.tick),
        "window": format_duration(s.window),
        "horizon": format_duration(s.horizon()),
        "minimumToFull": format_duration(minimum_to_full(&s.plan)),
        "canaryUsersShare": CANARY_USERS_SHARE,
        "haltedOrRolledBack": round(sum.share(sum.detected())),
        "halted": round(sum.share(sum.halted)),
        "rolledBack": round(sum.share(sum.rolled_back)),
        "rollbackProposed": round(sum.share(sum.proposed)),
        "falseHalts": healthy.then(|| round(sum.share(sum.detected()))),
        "caughtBefore": round(sum.share(sum.caught_before)),
        "detectedBy": sum.by_gate,
        "exposureAtDetection": {
            "percent": spread(sum.detect_percent),
            "canaryRequests": spread(sum.detect_requests),
            "percentMinutes": spread(sum.detect_percent_minutes),
            "minutes": spread(sum.detect_minutes),
        },
        "reachedFull": round(sum.share(sum.reached_full)),
        "reachedFullWithin2x": round(sum.share(sum.within_2x)),
        "timeToFullMinutes": spread(sum.to_full),
        "completed": round(sum.share(sum.completed)),
        "operatorAsked": round(sum.share(sum.asked)),
        "heldToTheEnd": round(sum.share(sum.held)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollout::PlanPreset;

    fn scenario(regression: Regression, runs: u32) -> Scenario {
        Scenario {
            plan: Plan::preset(PlanPreset::Canary),
            plan_name: "canary".into(),
            gates: GateConfig::default(),
            gates_from: "defaults".into(),
            policy: Policy::default(),
            rps: 100.0,
            base_error_rate: 0.002,
            regression,
            latency: SimulatedSide::default(),
            runs,
            seed: 1,
            before: Percent::from_hundredths(2500).unwrap(),
            tick: Duration::from_secs(15),
            window: Duration::from_secs(300),
            asks: Asks::Accept,
        }
    }

    #[test]
    fn the_canary_plan_needs_100_minutes_to_full() {
        let plan = Plan::preset(PlanPreset::Canary);
        assert_eq!(minimum_to_full(&plan), Duration::from_secs(100 * 60));
        assert_eq!(
            scenario(Regression::None, 1).horizon(),
            Duration::from_secs(300 * 60)
        );
    }

    #[test]
    fn spreads_are_nearest_rank() {
        let s = Spread::of((1..=10).map(f64::from).collect()).unwrap();
        assert_eq!((s.median, s.p90, s.max), (5.0, 9.0, 10.0));
        assert_eq!(Spread::of(vec![]), None);
    }

    #[test]
    fn a_gross_error_regression_is_rolled_back_in_the_first_stages() {
        let s = scenario(Regression::Errors(10.0), 5);
        let runs = simulate(&s).unwrap();
        // The canary-users stage asks as soon as its 0s are over and the canary has served a
        // request, and the simulated operator says yes at once: a run whose first few canary
        // requests all succeed is caught at 5 % instead.
        assert!(runs.iter().all(|r| {
            r.detection.as_ref().is_some_and(|d| {
                d.kind == Kind::Rollback && d.percent <= Percent::from_hundredths(500).unwrap()
            })
        }));
        assert!(runs.iter().all(|r| r.to_full.is_none()));
        assert_eq!(
            runs,
            simulate(&s).unwrap(),
            "the same seed gives the same runs"
        );
    }

    #[test]
    fn a_healthy_canary_usually_reaches_full_in_about_the_minimum() {
        let s = scenario(Regression::None, 10);
        let runs = simulate(&s).unwrap();
        let sum = Summary::of(&s, &runs);
        assert!(sum.reached_full >= 8, "{sum:?}");
        assert!(sum.to_full.unwrap().median < 110.0, "{sum:?}");
        // Every run is asked at least once: when the canary-users stage's time is over.
        assert_eq!(sum.asked, runs.len());
    }
}
