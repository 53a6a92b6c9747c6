//! `backtest` and `simulate`: auto-progression replayed on recorded or simulated traffic
//! (`crate::whatif`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};

use super::{CmdResult, Env, Failure, parsed, print_json};
use crate::cli::BacktestArgs;
use crate::domain::health::{GateConfig, SideStats};
use crate::domain::rollout::{Plan, PlanPreset};
use crate::domain::text::escape;
use crate::domain::units::Percent;
use crate::report::{self, MetricPoint, Period, chart};
use crate::whatif::backtest::Backtest;
use crate::whatif::history::HistoryFeed;
use crate::whatif::replay::{self, Asks, Setup, Stop};
use crate::whatif::trace::{Trace, TraceFeed};

/// Backtests tick once a minute: the resolution of traces and of the sources' history.
const MINUTE: Duration = Duration::from_secs(60);

/// The gates a what-if runs with: `--gates FILE`'s `[gates]`, else the config's; and where
/// they came from, for the output.
pub(super) fn gates_for(env: &Env, file: Option<&Path>) -> Result<(GateConfig, String), Failure> {
    let Some(path) = file else {
        return Ok((env.config.gates.clone(), "the config's [gates]".into()));
    };
    let shown = escape(&path.display().to_string()).into_owned();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::invalid(format!("--gates {shown}: {e}")))?;
    let gates = crate::config::parse_gates_file(&text)
        .map_err(|e| Failure::invalid(format!("--gates {shown}: {e}")))?;
    Ok((gates, format!("[gates] of {shown}")))
}

fn time_arg(flag: &str, text: &Option<String>) -> Result<Option<DateTime<Utc>>, Failure> {
    text.as_deref()
        .map(report::parse_time)
        .transpose()
        .map_err(|e| Failure::invalid(format!("{flag}: {e}")))
}

/// To the whole minute at or after `t`: ticks fall where traces and histories have points.
fn minute_ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    let minute = chrono::Duration::minutes(1);
    t.duration_trunc(minute)
        .map_or(t, |f| if f < t { f + minute } else { f })
}

pub(super) async fn backtest(env: &Env, args: BacktestArgs) -> CmdResult {
    let (gates, gates_from) = gates_for(env, args.gates.as_deref())?;
    let from = time_arg("--from", &args.from)?;
    let to = time_arg("--to", &args.to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(Failure::invalid("--from must be before --to"));
    }
    if let Some(out) = &args.report {
        chart::Format::of(out).map_err(Failure::invalid)?;
    }
    let asks = if args.decline_asks {
        Asks::Decline
    } else {
        args.asks.asks()
    };
    let setup = |start, end, plan: &Plan| Setup {
        start,
        end,
        tick: MINUTE,
        gates: gates.clone(),
        policy: env.config.policy.clone(),
        default_plan: plan.clone(),
        asks,
        stop: Stop::AtEnd,
    };
    let window = env.config.metrics.window;
    let (made, traffic, traffic_window) = match (&args.trace, &args.id) {
        (Some(path), _) => {
            let name = escape(&path.display().to_string()).into_owned();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::invalid(format!("--trace {name}: {e}")))?;
            let trace = Trace::parse(&name, &text).map_err(|e| Failure::invalid(e.to_string()))?;
            let (first, last) = match (trace.first(), trace.last()) {
                (Some(f), Some(l)) => (f, l),
                _ => return Err(Failure::invalid(format!("{name}: no data lines"))),
            };
            let start = from.map_or(first, minute_ceil).max(first);
            let end = to.unwrap_or(last).min(last);
            if start > end {
                return Err(Failure::invalid(format!(
                    "--from/--to leave nothing of {name} ({} to {})",
                    first.to_rfc3339(),
                    last.to_rfc3339()
                )));
            }
            let plan = match (args.plan, &trace.header.plan) {
                (Some(a), _) => Plan::preset(a.preset()),
                (None, Some(p)) => {
                    PlanPreset::parse(p).map_or_else(|| env.default_plan(), Plan::preset)
                }
                (None, None) => env.default_plan(),
            };
            let id = trace.header.id.clone().unwrap_or_else(|| "trace".into());
            let fields = replay::new_rollout(&id, &plan, &[], start).map_err(Failure::invalid)?;
            let mut feed = TraceFeed::new(&trace, window);
            let done = replay::run(&id, fields, &setup(start, end, &plan), &mut feed)
                .map_err(|e| Failure::failed(e.to_string()))?;
            let traffic = trace_points(&trace, start, end);
            (
                Backtest {
                    replay: done,
                    plan,
                    source: format!("trace {name}"),
                    gates_from,
                    from: start,
                    to: end,
                    tick: MINUTE,
                    asks,
                    recorded: trace.recorded_between(start, end),
                },
                traffic,
                MINUTE,
            )
        }
        (None, Some(id)) => {
            let (made, feed) = from_history(
                env,
                id,
                Period { from, to },
                args.plan,
                &setup,
                &gates_from,
                asks,
            )
            .await?;
            let traffic = feed
                .samples()
                .map(|s| (s.taken_at, [s.stable.clone(), s.canary.clone()]))
                .collect();
            let window = feed.samples().next().map_or(window, |s| s.window);
            (made, traffic, window)
        }
        (None, None) => {
            return Err(Failure::invalid(
                "give a rollout ID (with --from/--to) or --trace FILE",
            ));
        }
    };
    if args.json {
        print_json(&made.to_json())?;
    } else {
        for line in made.lines() {
            say!("{line}");
        }
    }
    if let Some(out) = &args.report {
        let picture = picture(&made, &gates, traffic, traffic_window);
        chart::write(&picture, out, chart::DEFAULT_WIDTH, chart::DEFAULT_HEIGHT)
            .map_err(Failure::failed)?;
        if !args.json {
            say!("wrote the replay's picture to {}", out.display());
        }
    }
    Ok(())
}

/// A replay's setup for a period and a plan.
type SetupFor<'a> = dyn Fn(DateTime<Utc>, DateTime<Utc>, &Plan) -> Setup + 'a;

type Traffic = BTreeMap<DateTime<Utc>, [Option<SideStats>; 2]>;

/// Each minute of the trace in the period, per side, for the picture.
fn trace_points(trace: &Trace, start: DateTime<Utc>, end: DateTime<Utc>) -> Traffic {
    trace
        .minutes
        .range(start..=end)
        .map(|(t, m)| {
            let side = |i: usize| {
                m.sides[i].as_ref().map(|l| SideStats {
                    requests: l.requests,
                    errors: l.errors,
                    p50_ms: l.p50_ms,
                    p75_ms: None,
                    p95_ms: l.p95_ms,
                    p99_ms: l.p99_ms,
                    newest_point_at: Some(l.time),
                })
            };
            (*t, [side(0), side(1)])
        })
        .collect()
}

/// The rollout's own history over the period: the source asked for the rollout as it was
/// in each stretch of its life (`report::state_spans`), replayed from the plan's first stage.
async fn from_history(
    env: &Env,
    id: &str,
    period: Period,
    plan: Option<crate::cli::PlanArg>,
    setup: &SetupFor<'_>,
    gates_from: &str,
    asks: Asks,
) -> Result<(Backtest, HistoryFeed), Failure> {
    let store = env.open_store_read_only()?;
    let rollout = parsed(store.as_ref(), id).await?;
    let events = store.list_events(id, report::MAX_EVENTS).await?;
    let (source, clock) = env.source_and_clock().await?;
    let Some(source) = source else {
        return Err(Failure::failed(
            "no metrics source is configured (metrics.kind = \"none\"), so there is no history to replay; record a trace and use --trace FILE",
        ));
    };
    let (from, to) =
        report::resolve_period(&rollout, &events, period, clock.now()).map_err(Failure::invalid)?;
    let (from, to) = (minute_ceil(from), to);
    // A minute a tick: longer periods would ask sources for more points than they answer.
    if (to - from).num_minutes() > report::MAX_POINTS as i64 {
        return Err(Failure::invalid(format!(
            "a backtest reads at most {} minutes of history at a time ({} to {} is longer); narrow --from/--to",
            report::MAX_POINTS,
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let sorted = crate::present::oldest_first(&events);
    let times = report::time_grid(from, to, chrono::Duration::minutes(1));
    let mut samples = Vec::new();
    let mut recorded: Vec<(DateTime<Utc>, Option<Percent>)> = Vec::new();
    for (state, span) in report::state_spans(&rollout, &sorted, &times) {
        let (first, last) = (span[0], span[span.len() - 1]);
        let answered = source
            .history(&state, last, MINUTE, span.len())
            .await
            .map_err(|e| Failure::failed(escape(&format!("metrics history: {e}")).into_owned()))?;
        if answered.is_empty() {
            return Err(Failure::failed(
                escape(&format!(
                    "{} cannot look back in time, so there is no history to replay; record a trace and use --trace FILE",
                    source.describe()
                ))
                .into_owned(),
            ));
        }
        samples.extend(answered);
        let served = matches!(
            state.status,
            crate::domain::rollout::Status::Canary
                | crate::domain::rollout::Status::Progressive
                | crate::domain::rollout::Status::Paused
        )
        .then_some(state.percentage)
        .unwrap_or(Percent::ZERO);
        if recorded.last().is_none_or(|(_, p)| *p != Some(served)) {
            recorded.push((first, Some(served)));
        }
    }
    let plan = match plan {
        Some(arg) => Plan::preset(arg.preset()),
        None => rollout.plan.clone().unwrap_or_else(|| env.default_plan()),
    };
    let fields = replay::restarted(&rollout, &plan, from).map_err(Failure::failed)?;
    let mut feed = HistoryFeed::new(samples);
    let done = replay::run(id, fields, &setup(from, to, &plan), &mut feed)
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok((
        Backtest {
            replay: done,
            plan,
            source: escape(&format!("history of {}", source.describe())).into_owned(),
            gates_from: gates_from.to_string(),
            from,
            to,
            tick: MINUTE,
            asks,
            recorded,
        },
        feed,
    ))
}

/// The replayed rollout drawn over the recorded traffic, as `report` draws a real one: its
/// stages from the replay's transitions, the minutes from the trace or the history.
fn picture(
    made: &Backtest,
    gates: &GateConfig,
    traffic: Traffic,
    window: Duration,
) -> report::Report {
    let r = &made.replay;
    let events: Vec<&crate::domain::event::Event> = r.events.iter().collect();
    let segments = crate::present::segments(&r.rollout, &events, made.to);
    let points: Vec<MetricPoint> =
        std::iter::successors(Some(made.from), |t| Some(*t + chrono::Duration::minutes(1)))
            .take_while(|t| *t <= made.to)
            .map(|t| MetricPoint {
                at: t,
                sides: traffic.get(&t).map_or([None, None], |[s, c]| {
                    [report::side_point(s), report::side_point(c)]
                }),
            })
            .collect();
    let gaps = report::find_gaps(&points, &traffic);
    report::Report {
        rollout: r.rollout.clone(),
        events: r.events.clone(),
        segments,
        from: made.from,
        to: made.to,
        step: MINUTE,
        points,
        gaps,
        gates: r.rollout.gates_in_effect(gates),
        window: Some(window),
        source: Some(made.source.clone()),
        warnings: Vec::new(),
    }
}

/// A percentage given on the command line: "0.2" or "0.2%".
fn percent_arg(flag: &str, text: &str) -> Result<f64, Failure> {
    let t = text.trim().trim_end_matches('%').trim();
    t.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && (0.0..=100.0).contains(x))
        .ok_or_else(|| {
            Failure::invalid(format!(
                "{flag} {}: give a percentage from 0 to 100",
                escape(text)
            ))
        })
}

pub(super) fn simulate(env: &Env, args: crate::cli::SimulateArgs) -> CmdResult {
    use crate::whatif::simulate::{self as sim, Scenario, Summary};
    use crate::whatif::traffic::Regression;
    let (gates, gates_from) = gates_for(env, args.gates.as_deref())?;
    if !(args.rps.is_finite() && args.rps > 0.0 && args.rps <= 1_000_000.0) {
        return Err(Failure::invalid(format!(
            "--rps {}: give requests per second above 0 (at most 1000000)",
            args.rps
        )));
    }
    let base = percent_arg("--base-error-rate", &args.base_error_rate)?;
    let before = Percent::from_f64(percent_arg("--before", &args.before)?)
        .map_err(|e| Failure::invalid(format!("--before: {e}")))?;
    let regression = Regression::parse(&args.regression)
        .map_err(|e| Failure::invalid(format!("--regression: {}", escape(&e))))?;
    let plan_name = args
        .plan
        .map(|p| p.preset())
        .or_else(|| env.config.default_plan_preset().ok())
        .unwrap_or(PlanPreset::Canary);
    let scenario = Scenario {
        plan: Plan::preset(plan_name),
        plan_name: plan_name.as_str().into(),
        gates,
        gates_from,
        policy: env.config.policy.clone(),
        rps: args.rps,
        base_error_rate: base / 100.0,
        regression,
        latency: env.config.metrics.simulator.stable.clone(),
        runs: args.runs,
        seed: args.seed,
        before,
        tick: env.config.metrics.refresh,
        window: env.config.metrics.window,
        asks: args.asks.asks(),
    };
    let runs = sim::simulate(&scenario).map_err(Failure::failed)?;
    let summary = Summary::of(&scenario, &runs);
    if args.json {
        print_json(&sim::to_json(&scenario, &summary))
    } else {
        for line in sim::lines(&scenario, &summary) {
            say!("{line}");
        }
        Ok(())
    }
}
