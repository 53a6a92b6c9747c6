//! The detail view's stage timeline: the rollout's percentage over time as a step line
//! (what happened solid, the plan's rest dashed from its minimum durations), the audit
//! events as marker letters, and the stable and canary error rate and p99 on the same
//! time axis. A panel too small for charts (80x24) gets one line of stages with their
//! entry times instead. Everything is drawn from the state, its clock included (a demo
//! clock runs fast), and reads without colour: line shapes, letters and a legend.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::Theme;
use super::views::{auto_lines, block};
use crate::app::state::{AppState, Entry, HistoryPoint, Panel};
use crate::domain::event::Event;
use crate::domain::health::GateConfig;
use crate::domain::rollout::{Rollout, Status};
use crate::domain::units::Percent;
use crate::present::stage_name;
use crate::present::{self, verdict_badge};
pub use crate::present::{MarkKind, Segment};

/// Columns left of the plots for the axis labels ("   100%┤", "  2.10%┤", " 214ms┤").
const LABEL_WIDTH: u16 = 8;
/// A narrower plot has no room for the stage labels, a lower panel none for the chart with
/// the gates below it: the compact line is drawn instead (80x24's panel is 78x17).
const MIN_PLOT_WIDTH: u16 = 60;
const MIN_CHART_PANEL_ROWS: u16 = 20;
/// Rows of each metric chart at most, and at least (fewer say nothing).
const MAX_CHART_ROWS: u16 = 8;
const MIN_CHART_ROWS: u16 = 3;
/// Past stages named in the compact line before the older ones are cut.
const COMPACT_PAST: usize = 5;

/// How a mark is drawn: the worse the event, the louder.
fn mark_style(kind: MarkKind, theme: Theme) -> Style {
    match kind {
        MarkKind::Rollback => theme.bad(),
        MarkKind::Halt => theme.warn(),
        MarkKind::Advance | MarkKind::Resume => theme.accent(),
        MarkKind::Operator => Style::default(),
    }
}

/// A stage still to come, from the earliest time the plan's minimum durations allow.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub from: DateTime<Utc>,
    pub percent: Percent,
    pub stage: usize,
    pub min: Duration,
    /// An operator must confirm before the machine advances into it.
    pub confirm: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    pub at: DateTime<Utc>,
    pub kind: MarkKind,
}

/// A rollout's life on one time axis: what happened, and what the plan has left.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub segments: Vec<Segment>,
    pub planned: Vec<Planned>,
    pub marks: Vec<Mark>,
    /// When the current stage's minimum time is met.
    pub may_advance_at: Option<DateTime<Utc>>,
    pub status: Status,
}

impl Timeline {
    fn running(&self) -> bool {
        matches!(
            self.status,
            Status::Canary | Status::Progressive | Status::Paused
        )
    }

    /// The rollout goes on past now (running, or planned and not started): now is marked.
    fn open_ended(&self) -> bool {
        self.running() || !self.planned.is_empty()
    }

    /// Spans over a day name the date too.
    fn long(&self) -> bool {
        self.end - self.start > chrono::Duration::hours(24)
    }

    fn when(&self, t: DateTime<Utc>) -> String {
        if self.long() {
            t.format("%m-%d %H:%M").to_string()
        } else {
            present::clock_minutes(t)
        }
    }

    /// Where segment `i` ends: where the next begins, else now.
    fn segment_end(&self, i: usize) -> DateTime<Utc> {
        self.segments.get(i + 1).map_or(self.now, |s| s.from)
    }

    /// The percentages drawn, lowest first: 0 %, every stage of the plan and every
    /// percentage the rollout was at (one set by hand falls between two stages).
    pub fn levels(&self, r: &Rollout) -> Vec<Percent> {
        let mut levels: Vec<Percent> = std::iter::once(Percent::ZERO)
            .chain(
                r.plan
                    .iter()
                    .flat_map(|p| p.stages.iter().map(|s| s.percent)),
            )
            .chain(self.segments.iter().map(|s| s.percent))
            .chain(self.planned.iter().map(|p| p.percent))
            .collect();
        levels.sort();
        levels.dedup();
        levels
    }
}

/// `d` after `t`; a duration another tool stored beyond the calendar ends it.
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The timeline of `r` from its audit events (any order) and health history, at `now`.
pub fn build(
    r: &Rollout,
    events: &[Event],
    history: &VecDeque<HistoryPoint>,
    now: DateTime<Utc>,
) -> Timeline {
    let sorted = present::oldest_first(events);
    let segments = present::segments(r, &sorted, now);
    let marks: Vec<Mark> = sorted
        .iter()
        .map(|e| Mark {
            at: e.at,
            kind: MarkKind::of(e.kind),
        })
        .collect();

    let running = matches!(
        r.status,
        Status::Canary | Status::Progressive | Status::Paused
    );
    let mut planned = Vec::new();
    let mut may_advance_at = None;
    if let Some(plan) = r
        .plan
        .as_ref()
        .filter(|_| running || r.status == Status::Planned)
    {
        let mut from = now;
        if running && let Some((_, stage)) = r.stage() {
            let entered = r.stage_entered_at.or(r.started_at).unwrap_or(now);
            let met = later(entered, stage.min_duration);
            may_advance_at = Some(met);
            from = met.max(now);
        }
        for (i, s) in plan
            .stages
            .iter()
            .enumerate()
            .skip(r.next_stage_index(plan))
        {
            planned.push(Planned {
                from,
                percent: s.percent,
                stage: i,
                min: s.min_duration,
                confirm: s.confirm,
            });
            from = later(from, s.min_duration);
        }
    }

    let start = segments
        .iter()
        .map(|s| s.from)
        .chain(marks.iter().map(|m| m.at))
        .chain(history.iter().filter_map(|p| p.at))
        .chain([now])
        .min()
        .unwrap_or(now);
    let mut end = planned
        .last()
        .map_or(now, |p| later(p.from, p.min))
        .max(now);
    if !planned.is_empty() {
        // Room to show the last stage, which has no minimum of its own.
        end = end
            .checked_add_signed((end - start) / 12)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }
    let end = end.max(start + chrono::Duration::minutes(1));
    Timeline {
        start,
        end,
        now,
        segments,
        planned,
        marks,
        may_advance_at,
        status: r.status,
    }
}

/// Where `t` falls on a plot `width` cells wide: 0 at `start`, `width - 1` at `end`
/// (clamped to the plot), as a fractional column for chart data.
pub fn x_of(t: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>, width: u16) -> f64 {
    let span = (end - start).num_milliseconds().max(1) as f64;
    let at = (t - start).num_milliseconds() as f64;
    (at / span).clamp(0.0, 1.0) * f64::from(width.saturating_sub(1))
}

/// The cell `t` falls in on a plot `width` cells wide.
pub fn column(t: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>, width: u16) -> u16 {
    x_of(t, start, end, width).round() as u16
}

/// A stage's own name where the percentage does not already say it ("canary users"), else
/// nothing.
fn own_name(r: &Rollout, stage: Option<usize>, percent: Percent) -> String {
    let name = stage_name(r, stage, percent);
    if name == percent.to_string() {
        String::new()
    } else {
        name
    }
}

fn since(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    present::minutes(to - from)
}

/// What a stage in the compact line is, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Past,
    Current,
    RolledBack,
    Planned,
}

/// The compact line's stages in order, each with what it is.
fn compact_parts(tl: &Timeline, r: &Rollout) -> Vec<(String, Part)> {
    let mut past: Vec<(String, Part)> = tl
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = stage_name(r, s.stage, s.percent);
            let last = i + 1 == tl.segments.len();
            if s.rolled_back {
                let text = format!("✖ rolled back {} → {}", tl.when(s.from), s.percent);
                (text, Part::RolledBack)
            } else if last && tl.running() {
                let halted = if tl.status == Status::Paused {
                    ", halted"
                } else {
                    ""
                };
                let text = format!(
                    "[{name} {}, {}{halted}]",
                    tl.when(s.from),
                    since(s.from, tl.now)
                );
                (text, Part::Current)
            } else if last && tl.status == Status::Complete {
                (format!("{name} {} ✔ complete", tl.when(s.from)), Part::Past)
            } else {
                (format!("{name} {}", tl.when(s.from)), Part::Past)
            }
        })
        .collect();
    if tl.status == Status::Planned {
        // Nothing has happened yet: the plan alone says what will.
        past.clear();
    }
    if past.len() > COMPACT_PAST {
        past.drain(..past.len() - COMPACT_PAST);
        past.insert(0, ("…".into(), Part::Past));
    }
    past.into_iter()
        .chain(tl.planned.iter().map(|p| {
            let name = stage_name(r, Some(p.stage), p.percent);
            (format!("{name} ≥{}", tl.when(p.from)), Part::Planned)
        }))
        .collect()
}

/// The whole timeline on one line, for small panels: past stages with their entry times,
/// the current one in brackets with its time so far, the rest from their earliest entry:
/// "canary users 08:20 → 5% 08:30 → [25% 08:40, 20m] → 50% ≥09:10 → 100% ≥10:10".
/// The current stage stands out, the planned rest is dim, a rollback is marked bad.
pub fn compact_line(tl: &Timeline, r: &Rollout, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (text, part)) in compact_parts(tl, r).into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" → ", theme.dim()));
        }
        let style = match part {
            Part::Past => Style::default(),
            Part::Current => theme.accent(),
            Part::RolledBack => theme.bad(),
            Part::Planned => theme.dim(),
        };
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

/// As many of the `pieces` as fit in `width` terminal cells, whole, joined by spaces
/// (a time cut to "08:5" or a name to half of it would mislead).
fn fit_pieces(pieces: &[String], width: usize) -> String {
    let mut out = String::new();
    for piece in pieces.iter().filter(|p| !p.is_empty()) {
        let next = if out.is_empty() {
            piece.clone()
        } else {
            format!("{out} {piece}")
        };
        if Span::raw(next.as_str()).width() > width {
            break;
        }
        out = next;
    }
    out
}

/// `text` cut to `width` terminal cells.
fn fit(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = Span::raw(c.to_string()).width();
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

fn color(style: Style) -> Color {
    style.fg.unwrap_or(Color::Reset)
}

// ---------------------------------------------------------------- drawing

pub fn draw(
    state: &AppState,
    e: &Entry,
    r: &Rollout,
    focused: bool,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let b = block(Panel::Timeline.title().into(), focused, theme);
    let inner = b.inner(area);
    let tl = build(r, &e.events, &e.health.history, state.now);
    let header = header_lines(state, e, r, &tl, theme);
    let footer = gate_lines(state, e, r, theme);
    let rows = |lines: &[Line<'static>]| {
        Paragraph::new(lines.to_vec())
            .wrap(Wrap { trim: false })
            .line_count(inner.width) as u16
    };
    let (header_rows, footer_rows) = (rows(&header), rows(&footer));
    let room = inner.height.saturating_sub(header_rows + footer_rows);
    let levels = tl.levels(r);
    let step_rows = 2 * levels.len() as u16;
    let step_legend = legend_lines(false, inner.width, theme).len() as u16;
    // The step line, its marker row, the time row and the legend.
    let step_block = step_rows + 2 + step_legend;
    let plot_width = inner.width.saturating_sub(LABEL_WIDTH);
    if plot_width < MIN_PLOT_WIDTH || inner.height < MIN_CHART_PANEL_ROWS || room < step_block {
        let mut lines = header;
        lines.push(Line::raw(""));
        lines.push(compact_line(&tl, r, theme));
        lines.push(Line::raw(""));
        lines.extend(footer);
        let hidden = rows(&lines).saturating_sub(inner.height);
        frame.render_widget(super::views::more_below(b, hidden.into(), theme), area);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        return;
    }
    frame.render_widget(b, area);
    let has_history = e.health.history.iter().any(|p| p.at.is_some());
    let legend = legend_lines(has_history, inner.width, theme);
    let chart_legend = legend.len() as u16 - step_legend;
    let spare = (room - step_block).saturating_sub(chart_legend);
    // Two charts, or none where they would be too flat to read.
    let chart_rows = if has_history && spare >= 2 * MIN_CHART_ROWS {
        (spare / 2).min(MAX_CHART_ROWS)
    } else {
        0
    };
    let legend = if chart_rows > 0 {
        legend
    } else {
        legend_lines(false, inner.width, theme)
    };
    let legend_rows = legend.len() as u16;
    let [head, step, marks, err, p99, time, legend_area, foot] = Layout::vertical([
        Constraint::Length(header_rows),
        Constraint::Length(step_rows),
        Constraint::Length(1),
        Constraint::Length(chart_rows),
        Constraint::Length(chart_rows),
        Constraint::Length(1),
        Constraint::Length(legend_rows),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(header).wrap(Wrap { trim: false }), head);
    draw_steps(&tl, r, &levels, theme, frame, step);
    frame.render_widget(Paragraph::new(mark_row(&tl, plot_width, theme)), marks);
    if chart_rows > 0 {
        let gates = r.gates_in_effect(&state.gates);
        let history = &e.health.history;
        for (metric, rect) in [(Metric::ErrorRate, err), (Metric::P99, p99)] {
            draw_metric(&tl, history, metric, &gates, theme, frame, rect);
        }
    }
    frame.render_widget(Paragraph::new(time_row(&tl, plot_width, theme)), time);
    frame.render_widget(Paragraph::new(legend), legend_area);
    frame.render_widget(Paragraph::new(footer).wrap(Wrap { trim: false }), foot);
}

/// Why the rollout may or may not move: its stage clock and who drives it.
fn header_lines(
    state: &AppState,
    e: &Entry,
    r: &Rollout,
    tl: &Timeline,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(clock) = present::stage_clock(r, state.now) {
        let at = tl
            .may_advance_at
            .filter(|t| *t > state.now)
            .map(|t| format!(" (at {})", tl.when(t)))
            .unwrap_or_default();
        lines.push(Line::raw(format!(
            "in stage {} · {}{at}",
            clock.in_stage, clock.countdown
        )));
    }
    lines.extend(auto_lines(state, e, theme));
    if r.plan.is_none() {
        lines.push(Line::styled(
            "no plan in the document (advance adopts the default)",
            theme.dim(),
        ));
    }
    lines
}

/// Each gate's verdict and detail, and the gates that are off.
fn gate_lines(state: &AppState, e: &Entry, r: &Rollout, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(report) = &e.health.report {
        // Failing first; a text several gates share (a source error) is shown once.
        for (verdict, names, text) in present::grouped_gates(&report.gates, report.sample_taken_at)
        {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} ", verdict_badge(Some(verdict))),
                    theme.verdict(Some(verdict)),
                ),
                Span::styled(format!("{names:<20} "), theme.dim()),
                Span::raw(text),
            ]));
        }
    }
    lines.push(Line::styled(
        present::gates_off(r.gates.as_ref(), &state.gates),
        theme.dim(),
    ));
    lines
}

/// The axis label column: `labels` right-aligned on their rows, a tick there, a rule elsewhere.
fn label_column(rows: u16, labels: &[(u16, String)], style: Style) -> Vec<Line<'static>> {
    (0..rows)
        .map(|row| {
            let text = labels
                .iter()
                .rev()
                .find(|(r, _)| *r == row)
                .map(|(_, t)| t.as_str());
            let width = usize::from(LABEL_WIDTH - 1);
            match text {
                Some(t) => Line::styled(format!("{:>width$}┤", fit(t, width)), style),
                None => Line::styled(format!("{:width$}│", ""), style),
            }
        })
        .collect()
}

fn split_labels(area: Rect) -> (Rect, Rect) {
    let [labels, plot] =
        Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Min(0)]).areas(area);
    (labels, plot)
}

/// The percentage over time: a heavy solid line for what happened, a light dashed one for
/// the plan's rest, a light rule at now; above each stretch, when it began and how long it
/// lasted (planned stages: their earliest start and minimum).
fn draw_steps(
    tl: &Timeline,
    r: &Rollout,
    levels: &[Percent],
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let (label_area, plot) = split_labels(area);
    let rows = area.height;
    let level = |p: Percent| levels.iter().position(|l| *l == p).unwrap_or(0) as u16;
    let row_of_level = |i: u16| rows.saturating_sub(1 + 2 * i);
    let labels: Vec<(u16, String)> = levels
        .iter()
        .enumerate()
        .map(|(i, p)| (row_of_level(i as u16), p.to_string()))
        .collect();
    frame.render_widget(
        Paragraph::new(label_column(rows, &labels, theme.dim())),
        label_area,
    );
    let w = plot.width;
    let col = |t: DateTime<Utc>| f64::from(column(t, tl.start, tl.end, w));
    // Canvas units are cells: x a column, y a row counted from the bottom (level i at 2i).
    let y_of = |p: Percent| f64::from(2 * level(p));
    let mut past_h = Vec::new();
    let mut past_v = Vec::new();
    let mut plan_h = Vec::new();
    let mut plan_v = Vec::new();
    let mut prints: Vec<(f64, f64, Span<'static>)> = Vec::new();
    let mut corners: Vec<(f64, f64, char, Style)> = Vec::new();
    let mut corner = |x: f64, from: f64, to: f64, heavy: bool, style: Style| {
        let (low, high) = if heavy {
            ('┛', '┏')
        } else {
            ('┘', '┌')
        };
        let (top_down, bottom_down) = if heavy {
            ('┓', '┗')
        } else {
            ('┐', '└')
        };
        if to > from {
            corners.push((x, from, low, style));
            corners.push((x, to, high, style));
        } else if to < from {
            corners.push((x, from, top_down, style));
            corners.push((x, to, bottom_down, style));
        }
    };
    let past_style = theme.accent();
    let plan_style = theme.dim();
    let first_planned = tl.planned.first().map_or(f64::from(w), |p| col(p.from));
    for (i, s) in tl.segments.iter().enumerate() {
        let (x0, x1, y) = (col(s.from), col(tl.segment_end(i)), y_of(s.percent));
        past_h.push((x0, x1, y));
        if let Some(next) = tl.segments.get(i + 1) {
            let y1 = y_of(next.percent);
            past_v.push((x1, y, y1));
            corner(x1, y, y1, true, past_style);
        }
        // Room for the label up to where the line next turns.
        let until = if i + 1 < tl.segments.len() {
            x1
        } else {
            first_planned
        };
        let spent = since(s.from, tl.segment_end(i));
        let pieces = if s.rolled_back {
            vec![
                format!("✖ {}", tl.when(s.from)),
                spent,
                "rolled back".into(),
            ]
        } else {
            let halted = i + 1 == tl.segments.len() && tl.status == Status::Paused;
            vec![
                tl.when(s.from),
                spent,
                if halted {
                    "halted".into()
                } else {
                    String::new()
                },
                own_name(r, s.stage, s.percent),
            ]
        };
        let style = if s.rolled_back {
            theme.bad()
        } else {
            Style::default()
        };
        label_above(&mut prints, x0, until, y, &pieces, style);
    }
    if let (Some(current), Some(first)) = (tl.segments.last(), tl.planned.first()) {
        // The current stage until its minimum is met.
        let y = y_of(current.percent);
        plan_h.push((col(tl.now), col(first.from), y));
        let mut prev_y = y;
        for (i, p) in tl.planned.iter().enumerate() {
            let x0 = col(p.from);
            let x1 = tl
                .planned
                .get(i + 1)
                .map_or(f64::from(w.saturating_sub(1)), |n| col(n.from));
            let y = y_of(p.percent);
            plan_h.push((x0, x1, y));
            plan_v.push((x0, prev_y, y));
            corner(x0, prev_y, y, false, plan_style);
            prev_y = y;
            let min = if p.min.is_zero() {
                String::new()
            } else {
                present::format_duration(p.min)
            };
            let pieces = vec![
                format!("≥{}", tl.when(p.from)),
                min,
                own_name(r, Some(p.stage), p.percent),
                if p.confirm {
                    "confirm".into()
                } else {
                    String::new()
                },
            ];
            let until = if i + 1 < tl.planned.len() {
                x1
            } else {
                f64::from(w)
            };
            // The last stage's label may reach back left: the row above the top level is free.
            let last_x = if i + 1 == tl.planned.len() {
                let len = Span::raw(fit_pieces(&pieces, usize::MAX)).width() as f64;
                x0.min(f64::from(w) - len - 1.0).max(0.0)
            } else {
                x0
            };
            label_above(&mut prints, last_x, until, y, &pieces, plan_style);
        }
    }
    let now_x = tl.open_ended().then(|| col(tl.now));
    let top = f64::from(rows.saturating_sub(1));
    let canvas = Canvas::default()
        .x_bounds([0.0, f64::from(w.saturating_sub(1)).max(1.0)])
        .y_bounds([0.0, top.max(1.0)])
        .paint(move |ctx| {
            if let Some(x) = now_x {
                ctx.marker(Marker::Custom('│'));
                ctx.draw(&CanvasLine::new(x, 0.0, x, top, color(theme.warn())));
            }
            for (marker, lines, vertical, style) in [
                ('┄', &plan_h, false, plan_style),
                ('┆', &plan_v, true, plan_style),
                ('━', &past_h, false, past_style),
                ('┃', &past_v, true, past_style),
            ] {
                ctx.marker(Marker::Custom(marker));
                for &(a, b, c) in lines {
                    let line = if vertical {
                        CanvasLine::new(a, b, a, c, color(style))
                    } else {
                        CanvasLine::new(a, c, b, c, color(style))
                    };
                    ctx.draw(&line);
                }
            }
            for (x, y, span) in &prints {
                ctx.print(*x, *y, span.clone());
            }
            for &(x, y, c, style) in &corners {
                ctx.print(x, y, Span::styled(c.to_string(), style));
            }
        });
    frame.render_widget(canvas, plot);
}

/// A stretch's label on the row above its line, from the column after it starts up to
/// (not into) `until`, in whole pieces; dropped when not even the time fits.
fn label_above(
    prints: &mut Vec<(f64, f64, Span<'static>)>,
    x0: f64,
    until: f64,
    y: f64,
    pieces: &[String],
    style: Style,
) {
    let room = (until - x0 - 1.0).max(0.0) as usize;
    let text = fit_pieces(pieces, room);
    if !text.is_empty() {
        prints.push((x0 + 1.0, y + 1.0, Span::styled(text, style)));
    }
}

/// The axis under the step line, with a letter where each event happened and a tick at now.
fn mark_row(tl: &Timeline, width: u16, theme: Theme) -> Line<'static> {
    let mut cells: Vec<(char, Option<MarkKind>)> = vec![('─', None); usize::from(width)];
    if tl.open_ended()
        && let Some(c) = cells.get_mut(usize::from(column(tl.now, tl.start, tl.end, width)))
    {
        c.0 = '┴';
    }
    for m in &tl.marks {
        let x = usize::from(column(m.at, tl.start, tl.end, width));
        if let Some(c) = cells.get_mut(x)
            && c.1.is_none_or(|k| k.rank() < m.kind.rank())
        {
            *c = (m.kind.symbol(), Some(m.kind));
        }
    }
    let mut spans = vec![Span::styled(
        format!("{:w$}└", "", w = usize::from(LABEL_WIDTH - 1)),
        theme.dim(),
    )];
    spans.extend(cells.into_iter().map(|(c, kind)| match kind {
        Some(k) => Span::styled(c.to_string(), mark_style(k, theme)),
        None => Span::styled(c.to_string(), theme.dim()),
    }));
    Line::from(spans)
}

/// The time span under the plots: its start and end, and now where it fits between them.
fn time_row(tl: &Timeline, width: u16, theme: Theme) -> Line<'static> {
    let width = usize::from(width);
    let mut row: Vec<char> = vec![' '; width];
    let mut put = |at: usize, text: &str| {
        for (i, c) in text.chars().enumerate() {
            if let Some(cell) = row.get_mut(at + i) {
                *cell = c;
            }
        }
    };
    let start = tl.when(tl.start);
    let end = tl.when(tl.end);
    put(0, &start);
    let end_at = width.saturating_sub(end.chars().count());
    put(end_at, &end);
    if tl.open_ended() {
        let now = format!("now {}", tl.when(tl.now));
        let x = usize::from(column(tl.now, tl.start, tl.end, width as u16));
        let at = x.saturating_sub(now.chars().count() / 2);
        if at > start.chars().count() && at + now.chars().count() < end_at {
            put(at, &now);
        }
    }
    Line::from(vec![
        Span::raw(format!("{:w$}", "", w = usize::from(LABEL_WIDTH))),
        Span::styled(row.into_iter().collect::<String>(), theme.dim()),
    ])
}

/// What each shape and letter means, packed into lines `width` cells wide: the step line's
/// first, then (with the charts) the charts'.
fn legend_lines(charts: bool, width: u16, theme: Theme) -> Vec<Line<'static>> {
    let steps: Vec<String> = ["━ so far", "┄ planned", "│ now"]
        .into_iter()
        .map(String::from)
        .chain(
            MarkKind::ALL
                .iter()
                .map(|k| format!("{} {}", k.symbol(), k.word())),
        )
        .collect();
    let mut lines = pack(&steps, width);
    if charts {
        let items = ["· stable", "⠤ canary", "┄ gate limit"].map(String::from);
        lines.extend(pack(&items, width));
    }
    lines
        .into_iter()
        .map(|l| Line::styled(l, theme.dim()))
        .collect()
}

/// `items` joined by two spaces, a new line wherever the next would not fit.
fn pack(items: &[String], width: u16) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(line)
                if Span::raw(line.as_str()).width() + 2 + Span::raw(item.as_str()).width()
                    <= usize::from(width) =>
            {
                line.push_str("  ");
                line.push_str(item);
            }
            _ => lines.push(item.clone()),
        }
    }
    lines
}

#[derive(Debug, Clone, Copy)]
enum Metric {
    ErrorRate,
    P99,
}

impl Metric {
    fn sides(self, p: &HistoryPoint) -> (Option<f64>, Option<f64>) {
        match self {
            Metric::ErrorRate => (p.stable_error_rate, p.canary_error_rate),
            Metric::P99 => (p.stable_p99, p.canary_p99),
        }
    }

    fn label(self, v: f64) -> String {
        match self {
            Metric::ErrorRate => present::rate_pct(Some(v)),
            Metric::P99 => present::ms(Some(v)),
        }
    }

    /// The gate's limit as a line: an absolute limit, or for p99 a relative one at its
    /// multiple of the newest stable p99.
    fn limit(self, gates: &GateConfig, history: &VecDeque<HistoryPoint>) -> Option<f64> {
        match self {
            Metric::ErrorRate => gates.max_error_rate,
            Metric::P99 => gates.max_p99_ms.or_else(|| {
                let stable = history.iter().rev().find_map(|p| p.stable_p99)?;
                gates.max_p99_ratio.map(|ratio| ratio * stable)
            }),
        }
        .filter(|v| v.is_finite())
    }
}

/// Contiguous runs of a series, as chart points: a gap in the samples stays a gap.
fn runs(
    tl: &Timeline,
    history: &VecDeque<HistoryPoint>,
    width: u16,
    value: impl Fn(&HistoryPoint) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in history {
        match (p.at, value(p).filter(|v| v.is_finite())) {
            (Some(at), Some(v)) => out
                .last_mut()
                .expect("runs start with one")
                .push((x_of(at, tl.start, tl.end, width), v)),
            _ => out.push(Vec::new()),
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

fn draw_metric(
    tl: &Timeline,
    history: &VecDeque<HistoryPoint>,
    metric: Metric,
    gates: &GateConfig,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let (label_area, plot) = split_labels(area);
    let w = plot.width;
    let stable = runs(tl, history, w, |p| metric.sides(p).0);
    let canary = runs(tl, history, w, |p| metric.sides(p).1);
    let limit = metric.limit(gates, history);
    let highest = stable
        .iter()
        .chain(&canary)
        .flatten()
        .map(|&(_, v)| v)
        .chain(limit)
        .fold(0.0f64, f64::max);
    let top = if highest > 0.0 {
        highest * 1.15
    } else {
        match metric {
            Metric::ErrorRate => 0.01,
            Metric::P99 => 100.0,
        }
    };
    let rows = area.height;
    // The row a value is drawn on, as the chart's cell grid rounds it.
    let row_of = |v: f64| ((top - v) * f64::from(rows.saturating_sub(1)) / top).round() as u16;
    let mut labels = vec![(0, metric.label(top)), (row_of(0.0), metric.label(0.0))];
    labels.extend(limit.map(|v| (row_of(v), metric.label(v))));
    frame.render_widget(
        Paragraph::new(label_column(rows, &labels, theme.dim())),
        label_area,
    );
    let right = f64::from(w.saturating_sub(1)).max(1.0);
    let limit_line: Vec<(f64, f64)> = limit.map_or_else(Vec::new, |v| vec![(0.0, v), (right, v)]);
    let mut datasets = vec![
        Dataset::default()
            .marker(Marker::Custom('┄'))
            .graph_type(GraphType::Line)
            .style(theme.bad())
            .data(&limit_line),
    ];
    datasets.extend(stable.iter().map(|run| {
        Dataset::default()
            .marker(Marker::Custom('·'))
            .graph_type(GraphType::Line)
            .style(theme.ok())
            .data(run)
    }));
    datasets.extend(canary.iter().map(|run| {
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.warn())
            .data(run)
    }));
    let chart = Chart::new(datasets)
        .x_axis(Axis::default().bounds([0.0, right]))
        .y_axis(Axis::default().bounds([0.0, top]));
    frame.render_widget(chart, plot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventKind;
    use crate::domain::rollout::{Plan, PlanPreset};
    use serde_json::Value;
    use serde_json::json;

    fn compact(tl: &Timeline, r: &Rollout) -> String {
        let line = compact_line(tl, r, Theme::with_color(false));
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn at(hm: &str) -> DateTime<Utc> {
        format!("2026-03-01T{hm}:00Z").parse().unwrap()
    }

    fn rollout(fields: Value) -> Rollout {
        let Value::Object(m) = fields else {
            unreachable!()
        };
        Rollout::from_fields("web", &m).unwrap()
    }

    fn event(kind: EventKind, when: &str, before: Value, after: Value) -> Event {
        Event {
            rollout_id: "web".into(),
            kind,
            actor: "alice".into(),
            at: at(when),
            before,
            after,
            reason: None,
            gate_report: None,
        }
    }

    fn advance(when: &str, from: u64, to: u64, stage: u64) -> Event {
        event(
            EventKind::Advance,
            when,
            json!({"rolloutPercentage": from, "currentStage": stage - 1}),
            json!({"rolloutPercentage": to, "currentStage": stage}),
        )
    }

    fn created(when: &str) -> Event {
        event(
            EventKind::Create,
            when,
            Value::Null,
            json!({"rolloutPercentage": 0, "currentStage": 0, "status": "canary"}),
        )
    }

    /// The canary plan at 25 %, entered 10:41; created 10:02, 5 % at 10:20.
    fn at_25() -> (Rollout, Vec<Event>) {
        let r = rollout(json!({
            "version": "2", "status": "progressive", "rolloutPercentage": 25,
            "plan": Plan::preset(PlanPreset::Canary).to_json(), "currentStage": 2,
            "startedAt": "2026-03-01T10:02:00Z", "stageEnteredAt": "2026-03-01T10:41:00Z",
        }));
        // Newest first, as the store lists them.
        let events = vec![
            event(
                EventKind::Resume,
                "10:50",
                json!({"status": "paused"}),
                json!({"status": "progressive"}),
            ),
            event(
                EventKind::Pause,
                "10:45",
                json!({"status": "progressive"}),
                json!({"status": "paused"}),
            ),
            advance("10:41", 5, 25, 2),
            advance("10:20", 0, 5, 1),
            created("10:02"),
        ];
        (r, events)
    }

    #[test]
    fn compact_line_names_each_stage_with_its_entry_time() {
        let (r, events) = at_25();
        let tl = build(&r, &events, &VecDeque::new(), at("10:55"));
        assert_eq!(
            compact(&tl, &r),
            "canary users 10:02 → 5% 10:20 → [25% 10:41, 14m] → 50% ≥11:11 → 100% ≥12:11"
        );
        assert_eq!(tl.may_advance_at, Some(at("11:11")));
        let kinds: Vec<char> = tl.marks.iter().map(|m| m.kind.symbol()).collect();
        assert_eq!(kinds, ['o', 'A', 'A', 'H', 'R'], "oldest first");
    }

    #[test]
    fn compact_line_of_a_rollback_and_of_a_finished_rollout() {
        let (mut r, mut events) = at_25();
        r.status = Status::RolledBack;
        r.percentage = Percent::ZERO;
        events.insert(
            0,
            event(
                EventKind::Rollback,
                "10:52",
                json!({"rolloutPercentage": 25, "status": "progressive"}),
                json!({"rolloutPercentage": 0, "status": "rolled-back"}),
            ),
        );
        let tl = build(&r, &events, &VecDeque::new(), at("11:00"));
        assert_eq!(
            compact(&tl, &r),
            "canary users 10:02 → 5% 10:20 → 25% 10:41 → ✖ rolled back 10:52 → 0%"
        );
        assert!(tl.planned.is_empty(), "nothing is planned after a rollback");
        assert_eq!(tl.end, at("11:00"), "the axis ends now");

        let (mut r, mut events) = at_25();
        r.status = Status::Complete;
        r.percentage = Percent::FULL;
        events.insert(0, advance("11:30", 50, 100, 4));
        events.insert(1, advance("11:12", 25, 50, 3));
        let tl = build(&r, &events, &VecDeque::new(), at("12:00"));
        assert_eq!(
            compact(&tl, &r),
            "canary users 10:02 → 5% 10:20 → 25% 10:41 → 50% 11:12 → 100% 11:30 ✔ complete"
        );
    }

    #[test]
    fn a_long_history_keeps_its_newest_stages() {
        let (r, mut events) = at_25();
        // Set by hand back and forth between 5 % and 10 % before 25 %.
        for (i, when) in ["10:21", "10:22", "10:23", "10:24", "10:25", "10:26"]
            .iter()
            .enumerate()
        {
            let (from, to) = if i % 2 == 0 { (5, 10) } else { (10, 5) };
            events.insert(
                2,
                event(
                    EventKind::SetPercent,
                    when,
                    json!({"rolloutPercentage": from}),
                    json!({"rolloutPercentage": to}),
                ),
            );
        }
        let tl = build(&r, &events, &VecDeque::new(), at("10:55"));
        assert_eq!(
            compact(&tl, &r),
            "… → 10% 10:23 → 5% 10:24 → 10% 10:25 → 5% 10:26 → [25% 10:41, 14m] → 50% ≥11:11 → 100% ≥12:11"
        );
        let levels: Vec<String> = tl.levels(&r).iter().map(|p| p.to_string()).collect();
        assert_eq!(levels, ["0%", "5%", "10%", "25%", "50%", "100%"]);
    }

    #[test]
    fn without_events_the_document_alone_places_the_stage() {
        let (r, _) = at_25();
        let tl = build(&r, &[], &VecDeque::new(), at("10:55"));
        assert_eq!(
            compact(&tl, &r),
            "[25% 10:41, 14m] → 50% ≥11:11 → 100% ≥12:11"
        );
        assert!(tl.marks.is_empty());
        assert_eq!(tl.start, at("10:41"));
    }

    #[test]
    fn a_rollout_not_started_shows_the_whole_plan_from_now() {
        let r = rollout(json!({
            "version": "2", "status": "planned", "rolloutPercentage": 0,
            "plan": Plan::preset(PlanPreset::Canary).to_json(),
        }));
        let tl = build(&r, &[], &VecDeque::new(), at("10:00"));
        assert_eq!(
            compact(&tl, &r),
            "canary users ≥10:00 → 5% ≥10:00 → 25% ≥10:10 → 50% ≥10:40 → 100% ≥11:40"
        );
        assert_eq!(tl.may_advance_at, None);
    }

    #[test]
    fn a_minimum_beyond_the_calendar_does_not_overflow() {
        let r = rollout(json!({
            "version": "2", "status": "progressive", "rolloutPercentage": 5,
            "plan": {"stages": [
                {"name": "a", "percent": 5, "minDuration": u64::MAX},
                {"name": "b", "percent": 100, "minDuration": u64::MAX},
            ]},
            "currentStage": 0, "stageEnteredAt": "2026-03-01T10:00:00Z",
        }));
        let tl = build(&r, &[], &VecDeque::new(), at("10:30"));
        assert_eq!(tl.end, DateTime::<Utc>::MAX_UTC);
        assert_eq!(column(at("10:30"), tl.start, tl.end, 80), 0);
    }

    #[test]
    fn times_map_to_columns_across_the_span() {
        let (start, end) = (at("10:00"), at("12:00"));
        assert_eq!(x_of(start, start, end, 121), 0.0);
        assert_eq!(x_of(end, start, end, 121), 120.0);
        assert_eq!(x_of(at("11:00"), start, end, 121), 60.0);
        assert_eq!(x_of(at("10:30"), start, end, 81), 20.0);
        // Outside the span: clamped to the plot's edges.
        assert_eq!(x_of(at("09:00"), start, end, 121), 0.0);
        assert_eq!(x_of(at("13:00"), start, end, 121), 120.0);
        assert_eq!(column(at("10:01"), start, end, 121), 1);
        // A span of no length does not divide by zero.
        assert_eq!(column(start, start, start, 80), 0);
    }

    #[test]
    fn the_axis_covers_the_past_and_the_plans_rest() {
        let (r, events) = at_25();
        let tl = build(&r, &events, &VecDeque::new(), at("10:55"));
        assert_eq!(tl.start, at("10:02"));
        // 100 % may start at 12:11; a twelfth of the span more shows it.
        assert_eq!(tl.end, at("12:11") + (at("12:11") - at("10:02")) / 12);
        let levels: Vec<String> = tl.levels(&r).iter().map(|p| p.to_string()).collect();
        assert_eq!(levels, ["0%", "5%", "25%", "50%", "100%"]);
    }
}
