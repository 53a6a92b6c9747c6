//! Recorded traffic as JSON Lines, and the feed that replays it.
//!
//! One object per line and per side and minute:
//! `{"time":"2026-11-30T10:01:00Z","side":"canary","requests":812,"errors":3,"p50_ms":41.0,
//! "p95_ms":120.0,"p99_ms":210.0,"percent":5}`. `time` is a whole minute, the end of the
//! minute the counts cover (as sources stamp their points); the latencies are optional (null
//! or left out, as they must be when `requests` is 0); `percent` is the rollout percentage
//! the traffic was recorded at, when known. An optional first line
//! `{"rollout":{"id":"checkout","plan":"canary","stableP99Ms":200}}` names the rollout, its
//! plan and stable's p99 as recorded; then a line's optional `slow` counts its requests over
//! that p99, which the latency gate weighs over the stage. A minute with no line for a side
//! is missing data, never zero traffic.
//!
//! The feed sums the minutes of the gates' window that end in `(t - window, t]`, as a source
//! answers for a window; its newest point is the newest minute there, so missing minutes
//! age the data until the freshness gate calls it stale. Latency quantiles of the window are
//! the request-weighted means of the minutes' quantiles (an approximation: the minutes'
//! distributions are not recorded).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::replay::{Fed, SampleFeed};
use crate::domain::health::{Counts, HealthSample, SideStats, SlowTotals, StageTotals};
use crate::domain::rollout::{PlanPreset, Rollout};
use crate::domain::units::Percent;

/// One side's minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub time: DateTime<Utc>,
    pub side: TraceSide,
    pub requests: u64,
    pub errors: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Requests over the header's `stableP99Ms` this minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceSide {
    Stable,
    Canary,
}

impl TraceSide {
    fn index(self) -> usize {
        match self {
            TraceSide::Stable => 0,
            TraceSide::Canary => 1,
        }
    }
}

/// The optional first line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Header {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A plan preset: canary, tiers or cohorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Stable's p99 as recorded: the latency the lines' `slow` counts are over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderLine {
    rollout: Header,
}

/// One minute of both sides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    pub sides: [Option<Line>; 2],
}

impl Minute {
    /// The percentage the minute was recorded at (the canary's line says it first).
    pub fn percent(&self) -> Option<Percent> {
        [1, 0]
            .iter()
            .filter_map(|&i| self.sides[i].as_ref()?.percent)
            .map(|p| Percent::from_f64(p).unwrap_or(Percent::ZERO))
            .next()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub header: Header,
    pub minutes: BTreeMap<DateTime<Utc>, Minute>,
}

/// A trace line that cannot be used: `name:line: what is wrong`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name}:{line}: {problem}")]
pub struct TraceError {
    pub name: String,
    pub line: usize,
    pub problem: String,
}

fn valid_latency(name: &str, v: Option<f64>) -> Result<(), String> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => {
            Err(format!("{name} = {x} is not a latency in milliseconds"))
        }
        _ => Ok(()),
    }
}

fn check(line: &Line) -> Result<(), String> {
    if line.time.second() != 0 || line.time.nanosecond() != 0 {
        return Err(format!(
            "time {} is not on a whole minute",
            line.time.to_rfc3339()
        ));
    }
    if line.errors > line.requests {
        return Err(format!(
            "errors {} > requests {}",
            line.errors, line.requests
        ));
    }
    if let Some(slow) = line.slow
        && slow > line.requests
    {
        return Err(format!("slow {slow} > requests {}", line.requests));
    }
    valid_latency("p50_ms", line.p50_ms)?;
    valid_latency("p95_ms", line.p95_ms)?;
    valid_latency("p99_ms", line.p99_ms)?;
    if line.requests == 0
        && (line.p50_ms.is_some() || line.p95_ms.is_some() || line.p99_ms.is_some())
    {
        return Err("latencies given for a minute without requests".into());
    }
    if let Some(p) = line.percent {
        Percent::from_f64(p).map_err(|e| format!("percent {p}: {e}"))?;
    }
    Ok(())
}

impl Trace {
    /// Reads a trace; `name` is how errors name the file.
    pub fn parse(name: &str, text: &str) -> Result<Trace, TraceError> {
        let mut trace = Trace::default();
        let err = |line: usize, problem: String| TraceError {
            name: name.to_string(),
            line,
            problem,
        };
        let mut seen_data = false;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| err(n, format!("not JSON: {e}")))?;
            if value.get("rollout").is_some() {
                if seen_data || trace.header != Header::default() {
                    return Err(err(n, "the rollout header must be the first line".into()));
                }
                let h: HeaderLine =
                    serde_json::from_value(value).map_err(|e| err(n, e.to_string()))?;
                if let Some(plan) = &h.rollout.plan
                    && PlanPreset::parse(plan).is_none()
                {
                    return Err(err(
                        n,
                        format!("plan '{plan}' is not a plan; expected canary, tiers or cohorts"),
                    ));
                }
                if let Some(id) = &h.rollout.id {
                    crate::domain::actions::validate_rollout_id(id)
                        .map_err(|e| err(n, e.to_string()))?;
                }
                if let Some(p99) = h.rollout.stable_p99_ms
                    && !(p99.is_finite() && p99 > 0.0)
                {
                    return Err(err(
                        n,
                        format!("stableP99Ms = {p99} is not a latency in milliseconds"),
                    ));
                }
                trace.header = h.rollout;
                continue;
            }
            seen_data = true;
            let line: Line = serde_json::from_value(value).map_err(|e| err(n, e.to_string()))?;
            check(&line).map_err(|p| err(n, p))?;
            if line.slow.is_some() && trace.header.stable_p99_ms.is_none() {
                return Err(err(
                    n,
                    "slow counts requests over stable's p99, which the header does not give (\"stableP99Ms\")".into(),
                ));
            }
            let slot = &mut trace.minutes.entry(line.time).or_default().sides[line.side.index()];
            if slot.is_some() {
                return Err(err(
                    n,
                    format!(
                        "a second {:?} line for {}",
                        line.side,
                        line.time.to_rfc3339()
                    )
                    .to_lowercase(),
                ));
            }
            *slot = Some(line);
        }
        if trace.minutes.is_empty() {
            return Err(err(
                text.lines().count().max(1),
                "the trace has no data lines".into(),
            ));
        }
        Ok(trace)
    }

    pub fn first(&self) -> Option<DateTime<Utc>> {
        self.minutes.keys().next().copied()
    }

    pub fn last(&self) -> Option<DateTime<Utc>> {
        self.minutes.keys().next_back().copied()
    }

    /// The recorded percentage from each minute it changed on (None: not recorded).
    pub fn recorded_percentages(&self) -> Vec<(DateTime<Utc>, Option<Percent>)> {
        let mut out: Vec<(DateTime<Utc>, Option<Percent>)> = Vec::new();
        for (t, m) in &self.minutes {
            let p = m.percent();
            if out.last().is_none_or(|(_, last)| *last != p) {
                out.push((*t, p));
            }
        }
        out
    }

    /// `recorded_percentages` within `[start, end]`: what was in force at `start`, then changes.
    pub fn recorded_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, Option<Percent>)> {
        let mut out = vec![(start, self.percent_at(start))];
        for (t, p) in self.recorded_percentages() {
            if t > start && t <= end && out.last().is_some_and(|(_, last)| *last != p) {
                out.push((t, p));
            }
        }
        out
    }

    /// The recorded percentage in force at `t` (the latest minute at or before it).
    pub fn percent_at(&self, t: DateTime<Utc>) -> Option<Percent> {
        self.minutes
            .range(..=t)
            .next_back()
            .and_then(|(_, m)| m.percent())
    }
}

/// Replays a trace as a source would have answered; the rollout's state changes nothing.
pub struct TraceFeed<'a> {
    trace: &'a Trace,
    window: Duration,
}

impl<'a> TraceFeed<'a> {
    pub fn new(trace: &'a Trace, window: Duration) -> TraceFeed<'a> {
        TraceFeed { trace, window }
    }

    /// Each side's minutes in `(since, at]`: the stage's evidence as the trace recorded it.
    /// Requests over stable's p99 only when the header gives it and every line counts them.
    fn stage_totals(&self, since: DateTime<Utc>, at: DateTime<Utc>) -> StageTotals {
        let mut sides = [Counts::default(); 2];
        let mut slow = self.trace.header.stable_p99_ms.map(|p99| (p99, [0u64; 2]));
        for (_, m) in self
            .trace
            .minutes
            .range((Bound::Excluded(since), Bound::Included(at)))
        {
            for (i, line) in m.sides.iter().enumerate() {
                let Some(l) = line else { continue };
                sides[i].requests += l.requests;
                sides[i].errors += l.errors;
                slow = slow.and_then(|(p99, mut over)| {
                    over[i] += l.slow?;
                    Some((p99, over))
                });
            }
        }
        let [stable, canary] = sides;
        StageTotals {
            since,
            stable,
            canary,
            slow: slow.map(|(threshold_ms, [stable, canary])| SlowTotals {
                threshold_ms,
                stable,
                canary,
            }),
        }
    }

    fn side(&self, side: usize, at: DateTime<Utc>) -> Option<SideStats> {
        let from = at - chrono::Duration::from_std(self.window).unwrap_or_default();
        let lines: Vec<&Line> = self
            .trace
            .minutes
            .range((Bound::Excluded(from), Bound::Included(at)))
            .filter_map(|(_, m)| m.sides[side].as_ref())
            .collect();
        let newest = lines.last()?.time;
        let weighted = |q: fn(&Line) -> Option<f64>| {
            let (sum, n) = lines
                .iter()
                .filter(|l| l.requests > 0)
                .filter_map(|l| Some((q(l)? * l.requests as f64, l.requests)))
                .fold((0.0, 0u64), |(s, n), (x, r)| (s + x, n + r));
            (n > 0).then(|| sum / n as f64)
        };
        Some(SideStats {
            requests: lines.iter().map(|l| l.requests).sum(),
            errors: lines.iter().map(|l| l.errors).sum(),
            p50_ms: weighted(|l| l.p50_ms),
            p75_ms: None,
            p95_ms: weighted(|l| l.p95_ms),
            p99_ms: weighted(|l| l.p99_ms),
            newest_point_at: Some(newest),
        })
    }
}

impl SampleFeed for TraceFeed<'_> {
    fn feed(&mut self, rollout: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed {
        let since = rollout
            .stage_entered_at
            .or(rollout.started_at)
            .unwrap_or(at)
            .min(at);
        let stage = self.stage_totals(since, at);
        let stable = self.side(0, at);
        let canary = self.side(1, at);
        let missing: Vec<&str> = [("stable", &stable), ("canary", &canary)]
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(n, _)| *n)
            .collect();
        let canary_served = self
            .trace
            .minutes
            .range((Bound::Excluded(previous), Bound::Included(at)))
            .filter_map(|(_, m)| m.sides[1].as_ref())
            .map(|l| l.requests)
            .sum::<u64>()
            // The first tick counts its own minute.
            + if previous == at {
                self.trace
                    .minutes
                    .get(&at)
                    .and_then(|m| m.sides[1].as_ref())
                    .map_or(0, |l| l.requests)
            } else {
                0
            };
        Fed {
            sample: HealthSample {
                taken_at: at,
                window: self.window,
                stable,
                canary,
                source_error: (!missing.is_empty()).then(|| {
                    format!(
                        "the trace has no {} minute in the window",
                        missing.join(" or ")
                    )
                }),
                ingestion_delay: Duration::ZERO,
                stage: Some(stage),
            },
            canary_served,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"rollout":{"id":"checkout","plan":"canary"}}
{"time":"2026-11-30T10:01:00Z","side":"stable","requests":1000,"errors":2,"p50_ms":40,"p95_ms":100,"p99_ms":200}
{"time":"2026-11-30T10:01:00Z","side":"canary","requests":100,"errors":1,"p99_ms":300,"percent":5}
{"time":"2026-11-30T10:02:00Z","side":"canary","requests":300,"errors":0,"p99_ms":100,"percent":5}
{"time":"2026-11-30T10:09:00Z","side":"canary","requests":0,"errors":0,"p99_ms":null,"percent":25}
"#;

    fn at(m: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 11, 30, 10, m, 0).unwrap()
    }

    #[test]
    fn reads_a_trace_and_sums_a_window() {
        let t = Trace::parse("t.jsonl", GOOD).unwrap();
        assert_eq!(t.header.id.as_deref(), Some("checkout"));
        assert_eq!((t.first(), t.last()), (Some(at(1)), Some(at(9))));
        let five = Percent::from_hundredths(500).unwrap();
        let quarter = Percent::from_hundredths(2500).unwrap();
        assert_eq!(
            t.recorded_percentages(),
            vec![(at(1), Some(five)), (at(9), Some(quarter))]
        );
        assert_eq!(t.percent_at(at(5)), Some(five));
        assert_eq!(t.recorded_between(at(5), at(8)), vec![(at(5), Some(five))]);
        assert_eq!(
            t.recorded_between(at(2), at(9)),
            vec![(at(2), Some(five)), (at(9), Some(quarter))]
        );

        let mut feed = TraceFeed::new(&t, Duration::from_secs(300));
        let r = Rollout::from_fields(
            "x",
            &super::super::replay::new_rollout(
                "x",
                &crate::domain::rollout::Plan::preset(PlanPreset::Canary),
                &[],
                at(0),
            )
            .unwrap(),
        )
        .unwrap();
        let fed = feed.feed(&r, at(1), at(2));
        let c = fed.sample.canary.unwrap();
        assert_eq!((c.requests, c.errors), (400, 1));
        assert_eq!(c.p99_ms, Some((300.0 * 100.0 + 100.0 * 300.0) / 400.0));
        assert_eq!(c.newest_point_at, Some(at(2)));
        assert_eq!(fed.canary_served, 300);
        // The rollout began at 10:00: the stage holds every minute up to 10:02.
        let stage = fed.sample.stage.clone().unwrap();
        assert_eq!((stage.since, stage.canary.requests), (at(0), 400));
        assert_eq!(fed.sample.stable.unwrap().newest_point_at, Some(at(1)));
        // 10:09's window (10:04, 10:09]: stable has no minute; canary served nothing.
        let fed = feed.feed(&r, at(8), at(9));
        assert!(fed.sample.stable.is_none());
        assert_eq!(
            fed.sample.source_error.as_deref(),
            Some("the trace has no stable minute in the window")
        );
        assert_eq!(fed.sample.canary.unwrap().requests, 0);
    }

    #[test]
    fn slow_counts_sum_over_the_stage_when_every_line_has_them() {
        let line = |m: u32, side: &str, requests: u64, slow: Option<u64>| {
            let mut l = serde_json::json!({
                "time": at(m).to_rfc3339(), "side": side, "requests": requests, "errors": 0,
            });
            if let Some(slow) = slow {
                l["slow"] = slow.into();
            }
            l.to_string()
        };
        let text = [
            r#"{"rollout":{"stableP99Ms":200}}"#.to_string(),
            line(1, "stable", 1000, Some(10)),
            line(1, "canary", 60, Some(9)),
            line(2, "stable", 1000, Some(11)),
            line(2, "canary", 60, Some(12)),
            line(3, "stable", 1000, None),
            line(3, "canary", 60, Some(12)),
        ]
        .join("\n");
        let t = Trace::parse("t", &text).unwrap();
        let feed = TraceFeed::new(&t, Duration::from_secs(300));
        assert_eq!(
            feed.stage_totals(at(0), at(2)).slow,
            Some(SlowTotals {
                threshold_ms: 200.0,
                stable: 21,
                canary: 21
            })
        );
        // A minute without its count: the stage's share over the p99 is unknown.
        assert_eq!(feed.stage_totals(at(0), at(3)).slow, None);
        // Without stable's p99 in the header there is nothing to count over.
        let plain = Trace::parse("t", &line(1, "canary", 60, None)).unwrap();
        let feed = TraceFeed::new(&plain, Duration::from_secs(300));
        assert_eq!(feed.stage_totals(at(0), at(1)).slow, None);
    }

    #[test]
    fn a_bad_line_is_named_with_its_number() {
        let cases = [
            (
                "{\"time\":\"2026-11-30T10:01:30Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0}",
                "t:1: time 2026-11-30T10:01:30+00:00 is not on a whole minute",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":2}",
                "t:1: errors 2 > requests 1",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"edge\",\"requests\":1,\"errors\":0}",
                "t:1: unknown variant `edge`",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0,\"p99\":3}",
                "t:1: unknown field `p99`",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":0,\"errors\":0,\"p99_ms\":3}",
                "t:1: latencies given for a minute without requests",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0,\"percent\":101}",
                "t:1: percent 101",
            ),
            (
                "\n{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0}\n{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0}",
                "t:3: a second canary line",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0}\n{\"rollout\":{}}",
                "t:2: the rollout header must be the first line",
            ),
            (
                "{\"rollout\":{\"plan\":\"fast\"}}\n",
                "t:1: plan 'fast' is not a plan",
            ),
            ("{\"rollout\":{}}\n", "t:1: the trace has no data lines"),
            (
                "{\"rollout\":{\"stableP99Ms\":-5}}\n",
                "t:1: stableP99Ms = -5 is not a latency",
            ),
            (
                "{\"rollout\":{\"stableP99Ms\":200}}\n{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0,\"slow\":2}",
                "t:2: slow 2 > requests 1",
            ),
            (
                "{\"time\":\"2026-11-30T10:01:00Z\",\"side\":\"canary\",\"requests\":1,\"errors\":0,\"slow\":1}",
                "t:1: slow counts requests over stable's p99, which the header does not give",
            ),
            ("{not json", "t:1: not JSON"),
        ];
        for (text, want) in cases {
            let got = Trace::parse("t", text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text}\n got: {got}\nwant: {want}");
        }
    }
}
