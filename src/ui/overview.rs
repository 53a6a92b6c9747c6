//! The overview: every rollout on a line, stable beside canary, sorted so the ones that
//! need an operator come first; below the list, when there is room, a preview of the
//! selected rollout (its stages and a stable-vs-canary table).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::Theme;
use super::views::{
    block, error_rate_floor, series_max, spark_error_rates, spark_pair, status_style,
};
use crate::app::state::{AppState, Entry, HistoryPoint};
use crate::domain::health::{GateReport, HealthSample, SideStats, Verdict};
use crate::domain::rollout::{Rollout, Status};
use crate::keys::Command;
use crate::present::{self, Attention, escape as shown, ms, rate_pct, verdict_badge};

/// The preview is drawn only with at least this many rows for it (borders included).
const PREVIEW_MIN_HEIGHT: u16 = 9;
/// The list's sparkline: at least this wide to be worth drawing, at most this wide.
const SPARK_MIN: usize = 6;
const SPARK_MAX: usize = 24;

pub fn overview(state: &AppState, theme: Theme, frame: &mut Frame, area: Rect) {
    let visible = state.visible();
    let selected = state.selected_entry();
    // Borders, header, and the rows (or two lines of explanation when there are none).
    let wanted = visible.len().max(2) as u16 + 3;
    // The list comes first: the preview only takes rows the list can spare once five of
    // its rows (or all, if fewer) are on screen.
    let list_min = wanted.min(3 + 5);
    let (list_area, preview_area) = match selected {
        Some(_) if area.height >= list_min + PREVIEW_MIN_HEIGHT => {
            let list_height = wanted.min(area.height - PREVIEW_MIN_HEIGHT);
            let (list, rest) = split_rows(area, list_height);
            (list, Some(rest))
        }
        _ => (area, None),
    };
    list(state, &visible, theme, frame, list_area);
    if let (Some(e), Some(rect)) = (selected, preview_area) {
        preview(state, e, theme, frame, rect);
    }
}

fn split_rows(area: Rect, top: u16) -> (Rect, Rect) {
    let top = top.min(area.height);
    (
        Rect {
            height: top,
            ..area
        },
        Rect {
            y: area.y + top,
            height: area.height - top,
            ..area
        },
    )
}

/// The list's columns, in the order they are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Id,
    Status,
    Stage,
    Pct,
    Users,
    Health,
    Err,
    P99,
    InStage,
    Last,
    Spark,
}

impl Col {
    const ALL: [Col; 11] = [
        Col::Id,
        Col::Status,
        Col::Stage,
        Col::Pct,
        Col::Users,
        Col::Health,
        Col::Err,
        Col::P99,
        Col::InStage,
        Col::Last,
        Col::Spark,
    ];
    /// What a narrow screen gives up first (pictures before words, history before now),
    /// before the stage name is cut.
    const DROP_FIRST: [Col; 4] = [Col::Spark, Col::Users, Col::Last, Col::InStage];
    /// What goes next, once the stage name is cut as short as it may be.
    const DROP_THEN: [Col; 3] = [Col::P99, Col::Err, Col::Stage];

    fn header(self, spark_width: usize) -> &'static str {
        match self {
            Col::Id => "ID",
            Col::Status => "STATUS",
            Col::Stage => "STAGE",
            Col::Pct => "PCT",
            Col::Users => "USERS",
            Col::Health => "HEALTH",
            Col::Err => "ERR% S/C",
            Col::P99 => "P99 S/C",
            Col::InStage => "IN STAGE",
            Col::Last => "LAST CHANGE",
            Col::Spark if spark_width >= 11 => "CANARY ERR%",
            Col::Spark => "ERR%",
        }
    }

    /// The narrowest a column that stays may be (the stage name may be cut to "1/5 25%"
    /// when `cut_stage`).
    fn min_width(self, content: usize, cut_stage: bool) -> usize {
        match self {
            Col::Stage if cut_stage => content.min(7),
            Col::Spark => SPARK_MIN,
            _ => content,
        }
    }
}

/// The status cell of a document that cannot be read.
const BROKEN: &str = "✖ ERROR";

/// One cell: its text and style.
type Cell = (String, Style);

/// A row of the list: its cells by column, or a document that cannot be read.
enum RowCells {
    Rollout(Vec<Cell>, Style),
    Broken { id: String, problem: String },
}

fn list(state: &AppState, visible: &[usize], theme: Theme, frame: &mut Frame, area: Rect) {
    let needing = visible
        .iter()
        .filter(|&&i| state.attention(&state.rollouts[i]).needs_attention())
        .count();
    let k = |c| state.keys.label(c);
    let filter = match (&state.filter_input, state.filter.is_empty()) {
        (Some(input), _) => format!(" · filter: {}▏", shown(input.value())),
        (None, false) => format!(" · filter: {}", shown(&state.filter)),
        _ => String::new(),
    };
    let need = if needing > 0 {
        format!(
            " · {needing} need attention ({})",
            k(Command::NextAttention)
        )
    } else {
        String::new()
    };
    let title = format!(
        "Rollouts ({}/{}){filter} · sort: {} ({}){need}",
        visible.len(),
        state.rollouts.len(),
        state.sort.label(),
        k(Command::Sort),
    );
    let outer = block(title, true, theme);
    let inner = outer.inner(area);
    let width = inner.width as usize;
    // Sized on every rollout, not just the matching ones, so columns stay put while typing.
    let id_width = state
        .rollouts
        .iter()
        .map(|e| text_width(&shown(e.id())))
        .max()
        .unwrap_or(2)
        .clamp(2, 28);
    let rows: Vec<RowCells> = visible
        .iter()
        .map(|&i| row_cells(state, &state.rollouts[i], theme))
        .collect();
    // Every column as wide as its widest cell or header; then the least useful go until
    // the rest fit (the first cell of a row is the selection mark).
    let mut widths: Vec<(Col, usize)> = Col::ALL
        .iter()
        .map(|&c| {
            let content = rows
                .iter()
                .filter_map(|r| match (r, c) {
                    (RowCells::Rollout(cells, _), _) => Some(text_width(&cells[c as usize].0)),
                    (RowCells::Broken { .. }, Col::Status) => Some(text_width(BROKEN)),
                    (RowCells::Broken { .. }, _) => None,
                })
                .max()
                .unwrap_or(0)
                .max(c.header(SPARK_MIN).len());
            let w = match c {
                Col::Id => id_width,
                Col::Spark => SPARK_MAX,
                _ => content,
            };
            (c, w)
        })
        .collect();
    // Each column and the gap after it; the selection mark stands in for the last gap.
    let needed = |cols: &[(Col, usize)], cut_stage: bool| -> usize {
        cols.iter()
            .map(|&(c, w)| c.min_width(w, cut_stage) + 1)
            .sum::<usize>()
    };
    for drop in Col::DROP_FIRST {
        if needed(&widths, false) <= width {
            break;
        }
        widths.retain(|&(c, _)| c != drop);
    }
    for drop in Col::DROP_THEN {
        if needed(&widths, true) <= width {
            break;
        }
        widths.retain(|&(c, _)| c != drop);
    }
    // Room left over goes to the stage name (up to its length), then to the sparkline.
    let mut spare = width.saturating_sub(needed(&widths, true));
    for (c, w) in widths.iter_mut() {
        let min = c.min_width(*w, true);
        let grow = (*w - min).min(spare);
        spare -= grow;
        *w = min + grow;
    }
    let spark_width = widths
        .iter()
        .find(|(c, _)| *c == Col::Spark)
        .map_or(0, |&(_, w)| w);
    // One scale for every row's sparkline, so rollouts compare by bar height.
    let err_scale = visible
        .iter()
        .map(|&i| {
            let h = &state.rollouts[i].health.history;
            let tail: Vec<Option<f64>> = h
                .iter()
                .skip(h.len().saturating_sub(spark_width))
                .map(|p| p.canary_error_rate)
                .collect();
            series_max(&tail)
        })
        .fold(error_rate_floor(&state.gates), f64::max);

    let body_rows = inner.height.saturating_sub(1) as usize;
    let offset = (state.selected + 1).saturating_sub(body_rows.max(1));
    let below = rows.len().saturating_sub(offset + body_rows);
    let mut outer = outer;
    if offset > 0 || below > 0 {
        let mut parts = Vec::new();
        if offset > 0 {
            parts.push(format!("↑ {offset} more above"));
        }
        if below > 0 {
            parts.push(format!("↓ {below} more below"));
        }
        outer = outer.title_bottom(Span::styled(
            format!(" {} ", parts.join(" · ")),
            theme.accent(),
        ));
    }
    frame.render_widget(outer, area);

    let header_style = theme.header();
    let mut lines = vec![Line::from(
        std::iter::once(Span::raw(" "))
            .chain(
                widths
                    .iter()
                    .map(|&(c, w)| Span::styled(fit(c.header(spark_width), w + 1), header_style)),
            )
            .collect::<Vec<_>>(),
    )];
    for (n, (row, &i)) in rows
        .iter()
        .zip(visible)
        .enumerate()
        .skip(offset)
        .take(body_rows)
    {
        let is_selected = n == state.selected;
        let mark = if is_selected { "▶" } else { " " };
        let mut spans = vec![Span::raw(mark)];
        let line_style = match row {
            RowCells::Rollout(cells, style) => {
                for &(c, w) in &widths {
                    let (text, cell_style) = if c == Col::Spark {
                        let e = &state.rollouts[i];
                        let spark = spark_error_rates(
                            e.health.history.iter().map(|p| p.canary_error_rate),
                            w,
                            err_scale,
                        );
                        (spark, Style::default())
                    } else {
                        cells[c as usize].clone()
                    };
                    spans.push(Span::styled(fit(&text, w + 1), cell_style));
                }
                *style
            }
            RowCells::Broken { id, problem } => {
                let width_of = |col: Col| {
                    widths
                        .iter()
                        .find(|(c, _)| *c == col)
                        .map_or(0, |&(_, w)| w)
                };
                spans.push(Span::raw(fit(id, width_of(Col::Id) + 1)));
                spans.push(Span::styled(
                    fit(BROKEN, width_of(Col::Status) + 1),
                    theme.bad(),
                ));
                // The field name first: the rest may be cut (the preview shows it all).
                spans.push(Span::styled(problem.clone(), theme.bad()));
                Style::default()
            }
        };
        let mut line = Line::from(spans).style(line_style);
        if is_selected {
            let pad = width.saturating_sub(line.width());
            line.spans.push(Span::raw(" ".repeat(pad)));
            line = line.patch_style(theme.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let empty = if state.rollouts.is_empty() {
        Some("No rollouts yet. Create one: rollout-tui create ID --version V".to_string())
    } else if visible.is_empty() {
        Some(format!(
            "No rollout id contains '{}' ({} clears the filter)",
            shown(state.filter_text()),
            k(Command::Back)
        ))
    } else {
        None
    };
    if let Some(text) = empty {
        let rect = Rect {
            x: area.x + 2,
            y: area.y + 3,
            width: area.width.saturating_sub(4),
            height: 2.min(area.height.saturating_sub(3)),
        };
        frame.render_widget(Paragraph::new(text).style(theme.label()), rect);
    }
}

/// The cells of a rollout's row, by `Col` (the sparkline is drawn at its final width).
fn row_cells(state: &AppState, e: &Entry, theme: Theme) -> RowCells {
    let r = match &e.rollout {
        Ok(r) => r,
        Err(err) => {
            return RowCells::Broken {
                id: shown(e.id()).into_owned(),
                problem: shown(&format!("{}: {}", err.field, err.problem)).into_owned(),
            };
        }
    };
    let attention = state.attention(e);
    let verdict = e.health.verdict();
    let health: Cell = match attention {
        Attention::NoTraffic => (format!("✖ {}", attention.word()), theme.bad()),
        Attention::AwaitingConfirmation => (format!("✔ {}", attention.word()), theme.warn()),
        _ => (verdict_badge(verdict).to_string(), theme.verdict(verdict)),
    };
    let sample = shown_sample(e);
    let side = |f: fn(&SideStats) -> Option<f64>| {
        (
            sample.and_then(|s| s.stable.as_ref()).and_then(f),
            sample.and_then(|s| s.canary.as_ref()).and_then(f),
        )
    };
    let (se, ce) = side(|s| s.error_rate().map(|r| r * 100.0));
    let (sp, cp) = side(|s| s.p99_ms);
    let in_stage =
        present::stage_clock(r, state.now).map_or("-".to_string(), |c| present::minutes(c.elapsed));
    let last = present::last_transition(r, e.rolled_back_at(), e.paused_at(), state.now);
    let plain = Style::default();
    // Rolled back and paused rows stand out without colour: bold, the status reversed.
    let (row_style, status_cell_style) = match r.status {
        Status::RolledBack | Status::Paused => (
            Style::default().add_modifier(Modifier::BOLD),
            status_style(r.status, theme).add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        _ => (plain, status_style(r.status, theme)),
    };
    let cells = vec![
        (shown(&r.id).into_owned(), plain),
        (
            present::status_label(r.status).to_string(),
            status_cell_style,
        ),
        (present::stage_label(r), plain),
        (r.percentage.to_string(), plain),
        (r.canary_users.len().to_string(), plain),
        health,
        (pair(se, ce, 2, ""), plain),
        (pair(sp, cp, 0, "ms"), plain),
        (in_stage, plain),
        (last, theme.dim()),
        (String::new(), plain),
    ];
    RowCells::Rollout(cells, row_style)
}

/// The sample the screen shows: the newest with both sides, else the newest.
fn shown_sample(e: &Entry) -> Option<&HealthSample> {
    e.health.last_good.as_ref().or(e.health.latest.as_ref())
}

/// "0.15/2.10": stable, then canary; "-" for a side without a number.
fn pair(stable: Option<f64>, canary: Option<f64>, decimals: usize, unit: &str) -> String {
    if stable.is_none() && canary.is_none() {
        return "-".into();
    }
    let f = |v: Option<f64>| {
        v.filter(|x| x.is_finite())
            .map_or("-".to_string(), |x| format!("{x:.decimals$}"))
    };
    format!("{}/{}{unit}", f(stable), f(canary))
}

fn text_width(text: &str) -> usize {
    Span::raw(text).width()
}

/// `text` cut or padded to exactly `width` columns (a cut ends in "…").
fn fit(text: &str, width: usize) -> String {
    if text_width(text) <= width {
        let pad = width - text_width(text);
        return format!("{text}{}", " ".repeat(pad));
    }
    let mut out = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let w = text_width(ch.encode_utf8(&mut [0; 4]));
        // Room for the ellipsis and the gap to the next column.
        if used + w + 2 > width {
            break;
        }
        out.push(ch);
        used += w;
    }
    out.push('…');
    used += 1;
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

// ---------------------------------------------------------------- preview

fn preview(state: &AppState, e: &Entry, theme: Theme, frame: &mut Frame, area: Rect) {
    let r = match &e.rollout {
        Ok(r) => r,
        Err(err) => {
            let text = vec![
                Line::styled(format!("✖ {}", shown(&err.to_string())), theme.bad()),
                Line::raw(format!(
                    "Only a rollback ({}) can act on a document that cannot be read.",
                    state.keys.label(Command::Rollback)
                )),
            ];
            frame.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: false }).block(block(
                    shown(e.id()).into_owned(),
                    false,
                    theme,
                )),
                area,
            );
            return;
        }
    };
    let b = block(preview_title(state, e, r), false, theme);
    let inner = b.inner(area);
    frame.render_widget(b, area);
    let mut lines = Vec::new();
    if let Some(line) = attention_line(state, e, r, theme) {
        lines.push(line);
    }
    lines.push(stages_line(e, r, state, theme));
    let report = e.health.report.as_ref();
    match shown_sample(e) {
        Some(sample) => {
            lines.extend(side_table(sample, report, theme));
            let gates = r.gates_in_effect(&state.gates);
            lines.extend(spark_lines(
                &e.health.history,
                inner.width as usize,
                error_rate_floor(&gates),
                theme,
            ));
            lines.push(Line::styled(sample_age(sample, state), theme.dim()));
        }
        None => lines.push(Line::styled(
            if state.metrics_desc.is_none() {
                "no metrics source configured: health is unknown"
            } else {
                "waiting for the first sample…"
            },
            theme.dim(),
        )),
    }
    if let Some(report) = report {
        lines.push(Line::raw(""));
        for g in &report.gates {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} ", verdict_badge(Some(g.verdict))),
                    theme.verdict(Some(g.verdict)),
                ),
                Span::styled(format!("{:<21}", shown(&g.name)), theme.dim()),
                Span::raw(present::gate_text(g, report.sample_taken_at)),
            ]));
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// "current · v0.1.1 (stable 0.1.0) · 5% · in stage 4m · advanced 4m ago"
fn preview_title(state: &AppState, e: &Entry, r: &Rollout) -> String {
    let stable = r
        .stable_version
        .as_deref()
        .map(|v| format!(" (stable {})", shown(v)))
        .unwrap_or_default();
    let mut parts = vec![
        shown(&r.id).into_owned(),
        format!("v{}{stable}", shown(&r.version)),
        format!("{} {}", present::status_label(r.status), r.percentage),
    ];
    if let Some(c) = present::stage_clock(r, state.now) {
        parts.push(format!("in stage {}", present::minutes(c.elapsed)));
    }
    parts.push(present::last_transition(
        r,
        e.rolled_back_at(),
        e.paused_at(),
        state.now,
    ));
    parts.join(" · ")
}

/// Why the rollout heads the list, in a sentence (none for a quiet one).
fn attention_line(state: &AppState, e: &Entry, r: &Rollout, theme: Theme) -> Option<Line<'static>> {
    let attention = state.attention(e);
    let why = match attention {
        Attention::Quiet => return None,
        Attention::RolledBack => r
            .rollback_reason
            .as_deref()
            .map_or("everyone is on stable".into(), |w| shown(w).into_owned()),
        Attention::Failing => e
            .health
            .report
            .as_ref()
            .map_or(String::new(), |rep| shown(&rep.summary()).into_owned()),
        Attention::Unreadable => String::new(),
        Attention::AwaitingConfirmation => "auto-progression waits for a yes".into(),
        Attention::NoTraffic => {
            let s = state.signals(e);
            let silent = s
                .canary_silent_since
                .map_or(String::new(), |t| present::minutes(state.now - t));
            format!(
                "the canary at {} has had no requests for {silent} (limit {})",
                r.percentage,
                present::minutes(s.freshness_limit)
            )
        }
        Attention::Paused => r
            .pause_reason
            .as_deref()
            .map_or(String::new(), |w| shown(w).into_owned()),
    };
    let word = attention.word().to_uppercase();
    let text = if why.is_empty() {
        word
    } else {
        format!("{word}: {why}")
    };
    Some(Line::styled(
        text,
        theme.bad().add_modifier(Modifier::REVERSED),
    ))
}

/// "stages ✓ 0% 08:20 → ▶ 5% 08:56 → 25% → 50% → 100%", the current stage marked, and
/// how many users each list holds.
fn stages_line(e: &Entry, r: &Rollout, state: &AppState, theme: Theme) -> Line<'static> {
    let Some(plan) = &r.plan else {
        return Line::styled("stages  no plan in the document", theme.dim());
    };
    let current = r.stage().map(|(i, _)| i);
    let steps = present::stage_steps(plan, current, &e.stage_entries(r), state.now);
    let mut spans = vec![Span::styled("stages  ", theme.dim())];
    for (i, step) in steps.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" → ", theme.dim()));
        }
        let style = match current {
            Some(c) if c == i => theme.accent().add_modifier(Modifier::REVERSED),
            Some(c) if i < c => theme.dim(),
            _ => Style::default(),
        };
        spans.push(Span::styled(step, style));
    }
    spans.push(Span::styled(
        format!(
            "  · users: {} canary, {} excluded",
            r.canary_users.len(),
            r.excluded_users.len()
        ),
        theme.dim(),
    ));
    Line::from(spans)
}

/// The worst of the named gates' verdicts: the one that decides for the row.
fn worst(report: Option<&GateReport>, names: &[&str]) -> Option<Verdict> {
    let rank = |v: Verdict| match v {
        Verdict::Fail => 2,
        Verdict::Inconclusive => 1,
        Verdict::Pass => 0,
    };
    names
        .iter()
        .filter_map(|n| report?.gate(n))
        .map(|g| g.verdict)
        .max_by_key(|&v| rank(v))
}

/// Requests, error rate and latencies, stable beside canary, with the verdict of the
/// gates that judge each line.
fn side_table(
    sample: &HealthSample,
    report: Option<&GateReport>,
    theme: Theme,
) -> Vec<Line<'static>> {
    let (s, c) = (sample.stable.as_ref(), sample.canary.as_ref());
    let count = |v: Option<&SideStats>| v.map_or("-".to_string(), |x| x.requests.to_string());
    let rate = |v: Option<&SideStats>| rate_pct(v.and_then(SideStats::error_rate));
    let rows: [(&str, String, String, &[&str]); 5] = [
        ("requests", count(s), count(c), &["min-requests"]),
        (
            "error rate",
            rate(s),
            rate(c),
            &["error-rate", "error-rate-vs-stable", "success-rate"],
        ),
        (
            "p50",
            ms(s.and_then(|x| x.p50_ms)),
            ms(c.and_then(|x| x.p50_ms)),
            &[],
        ),
        (
            "p95",
            ms(s.and_then(|x| x.p95_ms)),
            ms(c.and_then(|x| x.p95_ms)),
            &[],
        ),
        (
            "p99",
            ms(s.and_then(|x| x.p99_ms)),
            ms(c.and_then(|x| x.p99_ms)),
            &["p99", "p99-vs-stable"],
        ),
    ];
    let mut lines = vec![Line::styled(
        format!("{:<12}{:>12}{:>12}  VERDICT", "", "STABLE", "CANARY"),
        theme.dim().add_modifier(Modifier::BOLD),
    )];
    for (label, sv, cv, gates) in rows {
        let verdict = worst(report, gates);
        let badge = if gates.is_empty() {
            ""
        } else {
            verdict_badge(verdict)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<12}"), theme.dim()),
            Span::raw(format!("{sv:>12}{cv:>12}  ")),
            Span::styled(badge, theme.verdict(verdict)),
        ]));
    }
    lines
}

/// Error rate, p99 and traffic over the kept history, stable and canary on one scale side
/// by side.
fn spark_lines(
    history: &std::collections::VecDeque<HistoryPoint>,
    width: usize,
    err_floor: f64,
    theme: Theme,
) -> Vec<Line<'static>> {
    let w = (width.saturating_sub(12) / 2).min(60).min(history.len());
    if w < SPARK_MIN {
        return Vec::new();
    }
    type Pick = fn(&HistoryPoint) -> Option<f64>;
    let series: [(&str, Pick, Pick, f64); 3] = [
        (
            "err%",
            |p| p.stable_error_rate,
            |p| p.canary_error_rate,
            err_floor,
        ),
        ("p99", |p| p.stable_p99, |p| p.canary_p99, 0.0),
        ("req/s", |p| p.stable_rps, |p| p.canary_rps, 0.0),
    ];
    series
        .into_iter()
        .map(|(name, stable_of, canary_of, floor)| {
            let (s, c) = spark_pair(
                history.iter().map(stable_of).collect(),
                history.iter().map(canary_of).collect(),
                w,
                floor,
            );
            Line::from(vec![
                Span::styled(format!("{name:<6}S "), theme.dim()),
                Span::styled(format!("{s:<w$}"), theme.ok()),
                Span::styled("  C ", theme.dim()),
                Span::styled(c, theme.warn()),
            ])
        })
        .collect()
}

/// "data 5s old · window 1m", or the failure when the source is down.
fn sample_age(sample: &HealthSample, state: &AppState) -> String {
    if let Some(why) = &sample.source_error {
        return format!("NO FRESH DATA: {}", shown(why));
    }
    let age = sample
        .data_age(state.now)
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .unwrap_or(state.now - sample.taken_at);
    format!(
        "{} · window {}",
        present::data_age(Some(age)),
        present::format_duration(sample.window)
    )
}
