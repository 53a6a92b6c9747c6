//! `report`: one rollout's life for the retrospective, as a picture (SVG or PNG, `chart`)
//! or as text (`summary_lines`).
//!
//! `gather` reads what the store and the metrics source know (the rollout, its audit log,
//! its per-minute health over the period) into a `Report`; everything after that is pure.
//! Metrics are asked for the rollout as it was in each stretch of its life (percentage,
//! status, revisions rebuilt from the audit log), so a source that answers by rollout state
//! (the simulator) answers what it would have answered then. Minutes a source has no
//! numbers for stay empty and are named as gaps; nothing is interpolated.

pub mod chart;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use serde_json::Value;

use crate::domain::event::{Event, EventKind};
use crate::domain::health::{GateConfig, GateReport, SideStats};
use crate::domain::rollout::{Rollout, Status, field};
use crate::domain::units::Percent;
use crate::metrics::MetricsSource;
use crate::present::{self, Segment, escape};

/// Points per series at most: a long rollout is sampled coarser than per minute.
pub const MAX_POINTS: usize = 3000;
/// How much of the audit log a report reads.
pub const MAX_EVENTS: usize = 10_000;

/// What one minute's sample of one side says, when it says anything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SidePoint {
    pub requests: u64,
    pub error_rate: f64,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub at: DateTime<Utc>,
    /// Index 0 stable, 1 canary; None where the source had no numbers (or no requests).
    pub sides: [Option<SidePoint>; 2],
}

/// A stretch of minutes one side has no numbers for.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub side: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The source answered, with no requests (no traffic), rather than not at all.
    pub no_requests: bool,
}

impl Gap {
    /// "canary: no data 10:05–10:17", "canary: no traffic 10:05–10:17".
    pub fn label(&self, long: bool) -> String {
        format!(
            "{}: {} {}–{}",
            SIDES[self.side],
            if self.no_requests {
                "no traffic"
            } else {
                "no data"
            },
            when(self.from, long),
            when(self.to, long)
        )
    }
}

pub const SIDES: [&str; 2] = ["stable", "canary"];

/// Everything a report shows, read once.
#[derive(Debug, Clone)]
pub struct Report {
    pub rollout: Rollout,
    /// Oldest first, within the period.
    pub events: Vec<Event>,
    pub segments: Vec<Segment>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step: Duration,
    pub points: Vec<MetricPoint>,
    pub gaps: Vec<Gap>,
    pub gates: GateConfig,
    /// The window each sample covers, as the source said.
    pub window: Option<Duration>,
    /// Which source answered, if there is one.
    pub source: Option<String>,
    /// What went wrong asking the source; the report is still made, with the gaps named.
    pub warnings: Vec<String>,
}

/// The period asked for: `from`/`to` where given, else the rollout's life.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Reads a time given on the command line: RFC 3339, or "YYYY-MM-DD HH:MM[:SS]" /
/// "YYYY-MM-DDTHH:MM[:SS]" in UTC, or a date alone (its midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "'{}' is not a time: use RFC 3339 (2026-12-03T10:00:00Z) or 'YYYY-MM-DD HH:MM' in UTC",
        escape(t)
    ))
}

/// The rollout's life: from its start (or first event) to its end (or now).
fn life(r: &Rollout, events: &[Event], now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = events.iter().map(|e| e.at).min();
    let start = [r.started_at, first]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now);
    let finished = matches!(r.status, Status::Complete | Status::RolledBack);
    let end = if finished {
        let last = events.iter().map(|e| e.at).max();
        [r.completed_at, last, r.last_updated_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now)
    } else {
        now
    };
    (start, end.max(start))
}

/// The period a report covers, checked.
pub fn resolve_period(
    r: &Rollout,
    events: &[Event],
    asked: Period,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    if let (Some(from), Some(to)) = (asked.from, asked.to)
        && from >= to
    {
        return Err(format!(
            "--from {} is not before --to {}",
            from.to_rfc3339(),
            to.to_rfc3339()
        ));
    }
    let (start, end) = life(r, events, now);
    // The rollout's own period runs over whole minutes, so its first minute is drawn.
    let minute = chrono::Duration::minutes(1);
    let from = asked
        .from
        .unwrap_or_else(|| start.duration_trunc(minute).unwrap_or(start));
    let to = asked
        .to
        .unwrap_or_else(|| {
            end.duration_trunc(minute)
                .map_or(end, |t| if t < end { t + minute } else { t })
        })
        .max(from);
    // At least a few minutes, so a rollout made a moment ago still has an axis.
    Ok((from, to.max(from + chrono::Duration::minutes(5))))
}

/// The sampling step: a minute, or coarser (whole minutes) so a series has at most
/// `MAX_POINTS` points.
pub fn step_for(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    let minutes = (to - from).num_minutes().max(1) as u64;
    Duration::from_secs(60 * minutes.div_ceil(MAX_POINTS as u64).max(1))
}

/// The rollout as it was from each time on: the fields metrics depend on (percentage,
/// status, stage, revisions) walked back through the audit log from the document.
pub fn states(r: &Rollout, sorted: &[&Event]) -> Vec<(DateTime<Utc>, Rollout)> {
    let mut out: Vec<(DateTime<Utc>, Rollout)> = Vec::new();
    let mut state = r.clone();
    for e in sorted.iter().rev() {
        out.push((e.at, state.clone()));
        // Before it was created the rollout sent nobody anywhere: the minutes before its
        // creation (the start of the first minute) are read as its first state.
        let before = if e.kind == EventKind::Create {
            &e.after
        } else {
            &e.before
        };
        apply_before(&mut state, before);
    }
    out.push((DateTime::<Utc>::MIN_UTC, state));
    out.reverse();
    out
}

/// `times` cut into the stretches the rollout spent in each state (oldest first, empty
/// stretches left out): a metrics source is asked for each stretch with that state's
/// revisions and percentage.
pub fn state_spans(
    r: &Rollout,
    sorted: &[&Event],
    times: &[DateTime<Utc>],
) -> Vec<(Rollout, Vec<DateTime<Utc>>)> {
    let states = states(r, sorted);
    states
        .iter()
        .enumerate()
        .filter_map(|(i, (since, state))| {
            let until = states.get(i + 1).map(|(t, _)| *t);
            let span: Vec<DateTime<Utc>> = times
                .iter()
                .copied()
                .filter(|t| *t >= *since && until.is_none_or(|u| *t < u))
                .collect();
            (!span.is_empty()).then(|| (state.clone(), span))
        })
        .collect()
}

/// `first`, `first + step`, ... up to `to` inclusive.
pub fn time_grid(
    first: DateTime<Utc>,
    to: DateTime<Utc>,
    step: chrono::Duration,
) -> Vec<DateTime<Utc>> {
    std::iter::successors(Some(first), |t| Some(*t + step))
        .take_while(|t| *t <= to)
        .collect()
}

fn apply_before(state: &mut Rollout, before: &Value) {
    let Value::Object(fields) = before else {
        return;
    };
    for (k, v) in fields {
        match k.as_str() {
            field::ROLLOUT_PERCENTAGE => {
                if let Some(p) = v.as_f64().and_then(|p| Percent::from_f64(p).ok()) {
                    state.percentage = p;
                }
            }
            field::STATUS => {
                if let Some(s) = v.as_str().and_then(Status::parse) {
                    state.status = s;
                }
            }
            field::CURRENT_STAGE => {
                state.current_stage = v.as_u64().and_then(|i| usize::try_from(i).ok());
            }
            field::STABLE_REVISION => state.stable_revision = v.as_str().map(str::to_string),
            field::CANARY_REVISION => state.canary_revision = v.as_str().map(str::to_string),
            _ => {}
        }
    }
}

pub(crate) fn side_point(s: &Option<SideStats>) -> Option<SidePoint> {
    let s = s.as_ref()?;
    Some(SidePoint {
        requests: s.requests,
        error_rate: s.error_rate()?,
        p99_ms: s.p99_ms,
    })
}

/// Reads the report of rollout `r` (with its audit log, any order) over `period`.
/// A source that fails leaves gaps and a warning, never an error.
pub async fn gather(
    r: Rollout,
    events: Vec<Event>,
    source: Option<Arc<dyn MetricsSource>>,
    gate_defaults: &GateConfig,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Report, String> {
    let (from, to) = resolve_period(&r, &events, period, now)?;
    let sorted: Vec<Event> = present::oldest_first(&events)
        .into_iter()
        .cloned()
        .collect();
    let refs: Vec<&Event> = sorted.iter().collect();
    let segments = present::segments(&r, &refs, now);
    let step = step_for(from, to);
    let step_chrono = chrono::Duration::from_std(step).unwrap_or(chrono::Duration::minutes(1));
    let mut warnings = Vec::new();
    let mut answered: BTreeMap<DateTime<Utc>, [Option<SideStats>; 2]> = BTreeMap::new();
    let mut window = None;
    // Aligned to whole minutes (of the step), so sources answer on their own grid.
    let first = from
        .duration_trunc(step_chrono)
        .map(|t| if t < from { t + step_chrono } else { t })
        .unwrap_or(from);
    let times = time_grid(first, to, step_chrono);
    if let Some(source) = &source {
        for (state, span) in state_spans(&r, &refs, &times) {
            let (span_start, last) = (span[0], span[span.len() - 1]);
            match source.history(&state, last, step, span.len()).await {
                Ok(samples) if samples.is_empty() => {
                    let w = format!("{} cannot look back in time", source.describe());
                    if !warnings.contains(&w) {
                        warnings.push(escape(&w).into_owned());
                    }
                }
                Ok(samples) => {
                    window = window.or(samples.first().map(|s| s.window));
                    for s in samples {
                        answered.insert(s.taken_at, [s.stable, s.canary]);
                    }
                }
                Err(e) => {
                    let w = format!(
                        "metrics {}–{}: {}",
                        when(span_start, false),
                        when(last, false),
                        e
                    );
                    warnings.push(escape(&w).into_owned());
                }
            }
        }
    } else {
        warnings.push("no metrics source is configured (metrics.kind = \"none\")".into());
    }
    let points: Vec<MetricPoint> = times
        .iter()
        .map(|t| {
            let sides = answered
                .get(t)
                .map_or([None, None], |[s, c]| [side_point(s), side_point(c)]);
            MetricPoint { at: *t, sides }
        })
        .collect();
    let gaps = if source.is_some() {
        find_gaps(&points, &answered)
    } else {
        Vec::new()
    };
    let gates = r.gates_in_effect(gate_defaults);
    let events = sorted
        .into_iter()
        .filter(|e| e.at >= from && e.at <= to)
        .collect();
    Ok(Report {
        rollout: r,
        events,
        segments,
        from,
        to,
        step,
        points,
        gaps,
        gates,
        window,
        source: source.map(|s| escape(&s.describe()).into_owned()),
        warnings,
    })
}

/// A report the cockpit wrote: where, and what went wrong asking the metrics source.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub path: std::path::PathBuf,
    pub warnings: Vec<String>,
}

/// Gathers and draws the report of `r` as SVG into `dir` (made if missing), named by the
/// rollout and the time: what the cockpit's report key does. The drawing runs off the
/// async threads.
pub async fn write_to_dir(
    r: Rollout,
    events: Vec<Event>,
    source: Option<Arc<dyn MetricsSource>>,
    gate_defaults: &GateConfig,
    now: DateTime<Utc>,
    dir: std::path::PathBuf,
) -> Result<Written, String> {
    let safe: String =
        r.id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    let path = dir.join(format!("{safe}-{}.svg", now.format("%Y%m%d-%H%M%S")));
    let report = gather(r, events, source, gate_defaults, Period::default(), now).await?;
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot make {}: {e}", escape(&dir.display().to_string())))?;
        chart::write(&report, &path, chart::DEFAULT_WIDTH, chart::DEFAULT_HEIGHT)?;
        Ok(Written {
            path,
            warnings: report.warnings,
        })
    })
    .await
    .map_err(|e| format!("drawing the report failed: {e}"))?
}

/// The runs of minutes each side has no numbers for.
pub(crate) fn find_gaps(
    points: &[MetricPoint],
    answered: &BTreeMap<DateTime<Utc>, [Option<SideStats>; 2]>,
) -> Vec<Gap> {
    let mut gaps = Vec::new();
    for side in 0..2 {
        let mut open: Option<Gap> = None;
        for p in points {
            if p.sides[side].is_some() {
                if let Some(g) = open.take() {
                    gaps.push(g);
                }
                continue;
            }
            let no_requests = answered
                .get(&p.at)
                .and_then(|s| s[side].as_ref())
                .is_some_and(|s| s.requests == 0);
            match &mut open {
                Some(g) if g.no_requests == no_requests => g.to = p.at,
                _ => {
                    if let Some(g) = open.take() {
                        gaps.push(g);
                    }
                    open = Some(Gap {
                        side,
                        from: p.at,
                        to: p.at,
                        no_requests,
                    });
                }
            }
        }
        gaps.extend(open);
    }
    gaps.sort_by_key(|g| (g.from, g.side));
    gaps
}

/// A time on the report: the time of day, with the date when the report spans days.
pub fn when(t: DateTime<Utc>, long: bool) -> String {
    if long {
        t.format("%m-%d %H:%M").to_string()
    } else {
        present::clock_minutes(t)
    }
}

/// One stage the rollout went through, with what it served there.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRow {
    pub name: String,
    pub percent: Percent,
    pub entered: DateTime<Utc>,
    pub left: DateTime<Utc>,
    pub rolled_back: bool,
    /// Canary requests served in the stage (the samples' windows scaled to the step).
    pub canary_requests: Option<f64>,
    /// Canary share of all requests in the stage.
    pub canary_share: Option<f64>,
}

impl Report {
    /// The report spans more than a day: times carry their date.
    pub fn long(&self) -> bool {
        self.to - self.from > chrono::Duration::hours(24)
    }

    pub fn when(&self, t: DateTime<Utc>) -> String {
        when(t, self.long())
    }

    /// Requests a sample counts more than once when its window is longer than the step.
    fn overlap(&self, window: Duration) -> f64 {
        (self.step.as_secs_f64() / window.as_secs_f64().max(1.0)).min(1.0)
    }

    /// Requests served by each side between two times (samples' windows scaled to the step).
    fn served(&self, from: DateTime<Utc>, to: DateTime<Utc>, window: Duration) -> [Option<f64>; 2] {
        let mut sums = [None::<f64>; 2];
        // A point on a boundary belongs to the stretch it starts (its state is the new one).
        let last = self.to;
        for p in self
            .points
            .iter()
            .filter(|p| p.at >= from && (p.at < to || (to >= last && p.at == last)))
        {
            for (side, sum) in sums.iter_mut().enumerate() {
                if let Some(s) = p.sides[side] {
                    *sum = Some(sum.unwrap_or(0.0) + s.requests as f64 * self.overlap(window));
                }
            }
        }
        sums
    }

    /// The sample window the source reports in, for scaling request counts.
    pub fn window(&self) -> Duration {
        self.window.unwrap_or(self.step)
    }

    /// Each stretch at one percentage that overlaps the period, oldest first.
    pub fn stages(&self) -> Vec<StageRow> {
        let window = self.window();
        self.segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let left = self
                    .segments
                    .get(i + 1)
                    .map_or(self.to.max(s.from), |n| n.from);
                (s, s.from, left)
            })
            .filter(|(_, entered, left)| *left >= self.from && *entered <= self.to)
            .map(|(s, entered, left)| {
                let [stable, canary] = self.served(entered, left, window);
                let share = match (stable, canary) {
                    (Some(st), Some(c)) if st + c > 0.0 => Some(c / (st + c)),
                    (None, Some(c)) if c > 0.0 => Some(1.0),
                    (Some(st), None) if st > 0.0 => Some(0.0),
                    _ => None,
                };
                StageRow {
                    name: if s.rolled_back {
                        "rolled back".into()
                    } else {
                        present::stage_name(&self.rollout, s.stage, s.percent)
                    },
                    percent: s.percent,
                    entered,
                    left,
                    rolled_back: s.rolled_back,
                    canary_requests: canary,
                    canary_share: share,
                }
            })
            .collect()
    }

    /// How the rollout ended (or where it is), and why.
    pub fn outcome(&self) -> String {
        let r = &self.rollout;
        let last_of = |kind: EventKind| self.events.iter().rev().find(|e| e.kind == kind);
        let by = |e: Option<&Event>| {
            e.map(|e| format!(" by {} at {}", escape(&e.actor), self.when(e.at)))
                .unwrap_or_default()
        };
        match r.status {
            Status::RolledBack => format!(
                "rolled back{}: {}",
                by(last_of(EventKind::Rollback)),
                r.rollback_reason
                    .as_deref()
                    .map_or_else(|| "no reason recorded".into(), |w| escape(w).into_owned())
            ),
            Status::Complete => format!(
                "complete{} at {}",
                by(last_of(EventKind::Complete).or(last_of(EventKind::Promote))),
                r.percentage
            ),
            Status::Paused => format!(
                "paused{} at {}: {}",
                by(last_of(EventKind::Pause)),
                r.percentage,
                r.pause_reason
                    .as_deref()
                    .map_or_else(|| "no reason recorded".into(), |w| escape(w).into_owned())
            ),
            Status::Planned => "planned, not started".into(),
            Status::Canary | Status::Progressive => {
                format!("still running ({}), {}", r.status, present::stage_label(r))
            }
        }
    }

    /// One line per event: when, who, what, and for automatic decisions the gate report.
    pub fn event_lines(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| {
                let mut line = format!(
                    "{}  {}  {}",
                    self.when(e.at),
                    escape(&e.actor),
                    marker_label(e)
                );
                let text = present::event_text(e);
                if !text.is_empty() {
                    line.push_str(&format!("  {text}"));
                }
                if let Some(report) = gate_report(e) {
                    line.push_str(&format!("  [{}]", present::health_line(Some(&report))));
                }
                line
            })
            .collect()
    }

    /// The whole summary, one line each, escaped: the text `report` prints without `--out`
    /// and the block under the charts.
    pub fn summary_lines(&self) -> Vec<String> {
        let r = &self.rollout;
        let mut lines = vec![
            format!(
                "Rollout {}: version {}{}",
                escape(&r.id),
                escape(&r.version),
                r.stable_version
                    .as_deref()
                    .map(|s| format!(" (stable {})", escape(s)))
                    .unwrap_or_default()
            ),
            format!(
                "Period: {} to {} UTC ({})",
                self.from.format("%Y-%m-%d %H:%M"),
                self.to.format("%Y-%m-%d %H:%M"),
                present::minutes(self.to - self.from)
            ),
            format!("Outcome: {}", self.outcome()),
            "Stages:".into(),
        ];
        let stages = self.stages();
        for s in &stages {
            lines.push(format!(
                "  {}  {:<16} {:>7}  {:>6}{}  canary share {}  canary requests {}",
                self.when(s.entered),
                s.name,
                s.percent.to_string(),
                present::minutes(s.left - s.entered),
                if s.rolled_back { " (rollback)" } else { "" },
                s.canary_share
                    .map_or_else(|| "-".into(), |x| format!("{:.2} %", x * 100.0)),
                s.canary_requests
                    .map_or_else(|| "-".into(), |n| format!("~{}", n.round() as u64)),
            ));
        }
        let total: f64 = stages.iter().filter_map(|s| s.canary_requests).sum();
        let any = stages.iter().any(|s| s.canary_requests.is_some());
        lines.push(format!(
            "Exposure: {}",
            if any {
                format!(
                    "~{} canary requests served in the period",
                    total.round() as u64
                )
            } else {
                "unknown (no metrics for the canary)".into()
            }
        ));
        lines.push("Who did what:".into());
        lines.extend(self.event_lines().into_iter().map(|l| format!("  {l}")));
        if self.events.is_empty() {
            lines.push("  (no audit events in the period)".into());
        }
        lines.push(format!(
            "Metrics: {}",
            self.source.as_deref().unwrap_or("none")
        ));
        for g in &self.gaps {
            lines.push(format!("  {}", g.label(self.long())));
        }
        for w in &self.warnings {
            lines.push(format!("Warning: {w}"));
        }
        lines
    }
}

/// An event as its marker names it: "advance", "rollback", "set-percent (operator)".
pub fn marker_label(e: &Event) -> String {
    let kind = present::MarkKind::of(e.kind);
    if kind.word() == e.kind.as_str() {
        e.kind.as_str().to_string()
    } else {
        format!("{} ({})", e.kind.as_str(), kind.word())
    }
}

/// The gate report an automatic decision carries, when it reads.
pub fn gate_report(e: &Event) -> Option<GateReport> {
    serde_json::from_value(e.gate_report.clone()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn times_read_in_the_forms_operators_type() {
        let want = Utc.with_ymd_and_hms(2026, 1, 10, 10, 5, 0).unwrap();
        for text in [
            "2026-01-10T10:05:00Z",
            "2026-01-10T11:05:00+01:00",
            "2026-01-10 10:05",
            "2026-01-10 10:05:00",
            "2026-01-10T10:05",
        ] {
            assert_eq!(parse_time(text), Ok(want), "{text}");
        }
        assert_eq!(
            parse_time("2026-01-10"),
            Ok(Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap())
        );
        assert!(parse_time("10:05").is_err());
        assert!(
            parse_time("yesterday\u{1b}[2J")
                .unwrap_err()
                .contains("\\x1b")
        );
    }

    #[test]
    fn states_walk_the_audit_log_back_from_the_document() {
        let t = |m: i64| {
            Utc.with_ymd_and_hms(2026, 1, 10, 10, 0, 0).unwrap() + chrono::Duration::minutes(m)
        };
        let doc = json!({"version": "v2", "status": "rolled-back", "rolloutPercentage": 0,
            "canaryRevision": "c2"});
        let r = Rollout::from_fields("r", doc.as_object().unwrap()).unwrap();
        let event = |m: i64, kind: EventKind, before: Value| Event {
            rollout_id: "r".into(),
            kind,
            actor: "a".into(),
            at: t(m),
            before,
            after: json!({}),
            reason: None,
            gate_report: None,
        };
        let log = [
            event(
                10,
                EventKind::Advance,
                json!({"rolloutPercentage": 5, "status": "progressive"}),
            ),
            event(5, EventKind::SetRevisions, json!({"canaryRevision": "c1"})),
            event(
                20,
                EventKind::Rollback,
                json!({"rolloutPercentage": 25, "status": "progressive"}),
            ),
        ];
        let sorted = present::oldest_first(&log);
        let states = states(&r, &sorted);
        let seen: Vec<(String, Status, Option<&str>)> = states
            .iter()
            .map(|(_, s)| {
                (
                    s.percentage.to_string(),
                    s.status,
                    s.canary_revision.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("5%".into(), Status::Progressive, Some("c1")),
                ("5%".into(), Status::Progressive, Some("c2")),
                ("25%".into(), Status::Progressive, Some("c2")),
                ("0%".into(), Status::RolledBack, Some("c2")),
            ]
        );
        assert_eq!(states[1].0, t(5));
        assert_eq!(states[3].0, t(20));
    }
}
