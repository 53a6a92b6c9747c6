//! The wall screen of `watch`: big, high-contrast tiles, a grid when they fit,
//! otherwise one rollout at a time, rotating, under a summary of every rollout.
//!
//! Each tile leads with its state (PASS, FAIL, ROLLED BACK, STALE, NO TRAFFIC, ...): a
//! word and a symbol, with reverse video in a thick border for the states that need
//! someone, so it reads without colour. The percentage comes second.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, BorderType, Borders, Chart, Dataset, GraphType, Paragraph, Wrap,
};

use super::Theme;
use super::views::{error_rate_floor, spark_pair};
use crate::app::state::{AppState, Conn, Entry, HistoryPoint, Wall};
use crate::domain::health::{SideStats, Verdict};
use crate::domain::rollout::Rollout;
use crate::present::{self, WallStatus, WallWord, escape as shown};

/// Smallest tile that still shows everything; below it the wall rotates.
const TILE_MIN: (u16, u16) = (38, 11);
/// Inner height from which the state is drawn in block letters.
const BIG_MIN_HEIGHT: u16 = 14;
/// Inner size from which stable and canary get charts instead of sparklines.
const CHART_MIN: (u16, u16) = (60, 8);

/// Block glyphs five rows high, readable across a room: 3 columns for letters and digits,
/// 5 for the state symbols (each its own shape, as on the one-line badges).
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' | 'O' => ["███", "█ █", "█ █", "█ █", "███"],
        '1' => [" ██", "  █", "  █", "  █", "  █"],
        '2' => ["███", "  █", "███", "█  ", "███"],
        '3' => ["███", "  █", "███", "  █", "███"],
        '4' => ["█ █", "█ █", "███", "  █", "  █"],
        '5' | 'S' => ["███", "█  ", "███", "  █", "███"],
        '6' => ["███", "█  ", "███", "█ █", "███"],
        '7' => ["███", "  █", "  █", "  █", "  █"],
        '8' => ["███", "█ █", "███", "█ █", "███"],
        '9' => ["███", "█ █", "███", "  █", "███"],
        '.' => ["   ", "   ", "   ", "   ", " █ "],
        '%' => ["█ █", "  █", " █ ", "█  ", "█ █"],
        'A' => ["███", "█ █", "███", "█ █", "█ █"],
        'B' => ["██ ", "█ █", "██ ", "█ █", "██ "],
        'C' => ["███", "█  ", "█  ", "█  ", "███"],
        'D' => ["██ ", "█ █", "█ █", "█ █", "██ "],
        'E' => ["███", "█  ", "██ ", "█  ", "███"],
        'F' => ["███", "█  ", "██ ", "█  ", "█  "],
        'I' => ["███", " █ ", " █ ", " █ ", "███"],
        'K' => ["█ █", "█ █", "██ ", "█ █", "█ █"],
        'L' => ["█  ", "█  ", "█  ", "█  ", "███"],
        'M' => ["█ █", "███", "███", "█ █", "█ █"],
        'N' => ["██ ", "█ █", "█ █", "█ █", "█ █"],
        'P' => ["███", "█ █", "███", "█  ", "█  "],
        'R' => ["██ ", "█ █", "██ ", "█ █", "█ █"],
        'T' => ["███", " █ ", " █ ", " █ ", " █ "],
        'U' => ["█ █", "█ █", "█ █", "█ █", "███"],
        'V' => ["█ █", "█ █", "█ █", "█ █", " █ "],
        '✖' => ["█   █", " █ █ ", "  █  ", " █ █ ", "█   █"],
        '✔' => ["    █", "   █ ", "█ █  ", " █   ", "     "],
        '↺' => ["  █  ", " ██  ", "█████", " ██  ", "  █  "],
        '⧖' => ["█████", " █ █ ", "  █  ", " █ █ ", "█████"],
        '∅' => [" ███ ", "█  ██", "█ █ █", "██  █", " ███ "],
        '‖' => ["██ ██", "██ ██", "██ ██", "██ ██", "██ ██"],
        '?' => [" ███ ", "█   █", "  ██ ", "     ", "  █  "],
        '○' => [" ███ ", "█   █", "█   █", "█   █", " ███ "],
        _ => ["   ", "   ", "   ", "   ", "   "],
    }
}

fn big_text(text: &str) -> Vec<String> {
    (0..5)
        .map(|row| {
            text.chars()
                .map(|c| glyph(c)[row])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn cols(text: &str) -> usize {
    text.chars().count()
}

/// The number of columns that makes every tile largest (relative to the minimum tile),
/// or None when even the best grid would make tiles too small: then the wall rotates.
fn grid_columns(count: usize, width: u16, height: u16) -> Option<usize> {
    (1..=count)
        .filter_map(|cols| {
            let rows = count.div_ceil(cols);
            let (w, h) = (width as usize / cols, height as usize / rows);
            let fits = w >= TILE_MIN.0 as usize && h >= TILE_MIN.1 as usize;
            let scale = (w as f64 / TILE_MIN.0 as f64).min(h as f64 / TILE_MIN.1 as f64);
            fits.then_some((cols, scale))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(cols, _)| cols)
}

pub fn render_wall(state: &AppState, wall: &Wall, theme: Theme, frame: &mut Frame) {
    let area = frame.area();
    let statuses: Vec<WallStatus> = state
        .rollouts
        .iter()
        .map(|e| state.wall_status(e, wall.stale_after))
        .collect();
    // Every rollout's state stays on screen, whatever the rotation shows: a failure is
    // never hidden for a whole turn.
    let summary = summary_line(state, &statuses, theme);
    let summary_rows = Paragraph::new(summary.clone())
        .wrap(Wrap { trim: false })
        .line_count(area.width)
        .clamp(1, 3) as u16;
    let freeze = state.freeze_line();
    let [top, freeze_area, summary_area, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(freeze.is_some())),
        Constraint::Length(summary_rows),
        Constraint::Min(1),
    ])
    .areas(area);
    top_bar(state, wall, theme, frame, top);
    if let Some(line) = freeze {
        let style = if state.frozen().is_some() {
            theme.banner()
        } else {
            theme.warn()
        };
        frame.render_widget(Paragraph::new(Line::styled(line, style)), freeze_area);
    }
    frame.render_widget(
        Paragraph::new(summary).wrap(Wrap { trim: false }),
        summary_area,
    );
    let entries: Vec<&Entry> = state.rollouts.iter().collect();
    if entries.is_empty() {
        frame.render_widget(
            Paragraph::new("No rollouts in the store.").style(theme.label()),
            body,
        );
        return;
    }
    if let Some(cols_used) = grid_columns(entries.len(), body.width, body.height) {
        let rows_needed = entries.len().div_ceil(cols_used);
        let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows_needed]).split(body);
        for (r, row_area) in row_areas.iter().enumerate() {
            let col_areas =
                Layout::horizontal(vec![Constraint::Fill(1); cols_used]).split(*row_area);
            for (c, tile_area) in col_areas.iter().enumerate() {
                let i = r * cols_used + c;
                if let Some(e) = entries.get(i) {
                    tile(state, wall, e, statuses[i], None, theme, frame, *tile_area);
                }
            }
        }
    } else {
        let i = wall.index % entries.len();
        let position = Some((i + 1, entries.len()));
        tile(
            state,
            wall,
            entries[i],
            statuses[i],
            position,
            theme,
            frame,
            body,
        );
    }
}

fn summary_line(state: &AppState, statuses: &[WallStatus], theme: Theme) -> Line<'static> {
    if statuses.is_empty() {
        return Line::styled(" 0 rollouts", theme.label());
    }
    let mut text = present::wall_summary(
        state
            .rollouts
            .iter()
            .zip(statuses)
            .map(|(e, s)| (e.id(), s.word)),
    );
    // A split changed behind the document's back alarms whatever the health says.
    let drifting: Vec<String> = state
        .rollouts
        .iter()
        .filter(|e| drift_text(e).is_some())
        .map(|e| shown(e.id()).into_owned())
        .collect();
    if !drifting.is_empty() {
        text.push_str(&format!(" · DRIFT: {}", drifting.join(", ")));
    }
    let style = if !drifting.is_empty() || statuses.iter().any(|s| s.word.alarming()) {
        theme.banner()
    } else if statuses.iter().all(|s| s.word == WallWord::Pass) {
        theme.ok()
    } else {
        theme.warn()
    };
    Line::styled(format!(" {text}"), style)
}

fn top_bar(state: &AppState, wall: &Wall, theme: Theme, frame: &mut Frame, area: Rect) {
    let marker = Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let conn = match &state.store_conn {
        Conn::Connected => Span::styled("● store connected", theme.ok()),
        Conn::Disconnected { since, .. } => Span::styled(
            format!(
                "○ STORE DISCONNECTED {}",
                present::minutes(state.now - *since)
            ),
            theme.bad(),
        ),
    };
    let age = state.data_age();
    let stale = age.is_some_and(|a| a.to_std().unwrap_or_default() > wall.stale_after);
    let age = match age {
        Some(a) if stale => Span::styled(
            format!(
                " STALE: data {} old (limit {}) ",
                present::minutes(a),
                present::format_duration(wall.stale_after)
            ),
            theme.banner(),
        ),
        Some(_) => Span::styled(present::data_age(age), theme.label()),
        None => Span::styled(present::data_age(age), theme.warn()),
    };
    let rotation = if wall.paused {
        "  rotation paused (space)"
    } else {
        ""
    };
    let mut spans = vec![
        Span::styled(" READ-ONLY ", marker),
        Span::styled(format!(" {} ", state.title), theme.accent()),
        Span::raw(format!("{} UTC  ", present::clock_minutes(state.now))),
        conn,
        Span::raw("  "),
        age,
        Span::styled(rotation, theme.label()),
    ];
    // The title is what a narrow wall can spare; the state of the data never.
    if spans.iter().map(Span::width).sum::<usize>() > area.width as usize {
        spans[1] = Span::raw(" ");
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn word_style(word: WallWord, theme: Theme) -> Style {
    match word {
        WallWord::Fail | WallWord::RolledBack | WallWord::Error => theme.bad(),
        WallWord::Pass | WallWord::Complete => theme.ok(),
        WallWord::Planned => theme.label(),
        WallWord::Stale
        | WallWord::NoTraffic
        | WallWord::Paused
        | WallWord::Inconclusive
        | WallWord::NoData => theme.warn(),
    }
}

/// The border is a shape too: thick for what needs someone, double for stale data.
fn border_type(word: WallWord) -> BorderType {
    match word {
        w if w.alarming() => BorderType::Thick,
        WallWord::Stale => BorderType::Double,
        WallWord::Pass | WallWord::Complete => BorderType::Rounded,
        _ => BorderType::Plain,
    }
}

/// A line filled to `width`, so reverse video makes a solid bar.
fn bar(left: String, right: String, width: u16, style: Style) -> Line<'static> {
    let pad = (width as usize).saturating_sub(cols(&left) + cols(&right));
    Line::styled(format!("{left}{}{right}", " ".repeat(pad)), style)
}

#[allow(clippy::too_many_arguments)]
fn tile(
    state: &AppState,
    wall: &Wall,
    e: &Entry,
    status: WallStatus,
    position: Option<(usize, usize)>,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let word = status.word;
    let style = word_style(word, theme);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_type(border_type(word))
        .border_style(style)
        .title(Span::styled(
            format!(" {} ", shown(e.id())),
            style.add_modifier(Modifier::BOLD),
        ));
    if let Some((i, n)) = position {
        let paused = if wall.paused { " paused" } else { "" };
        block = block.title_top(Line::from(format!(" {i}/{n}{paused} ")).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let head_style = if word.alarming() {
        style.add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else {
        style.add_modifier(Modifier::BOLD)
    };
    let r = match &e.rollout {
        Ok(r) => r,
        Err(err) => {
            let lines = vec![
                bar(
                    format!(" {}", status.headline()),
                    String::new(),
                    inner.width,
                    head_style,
                ),
                Line::styled(format!(" {}", shown(&err.to_string())), style),
            ];
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
            return;
        }
    };
    let mut lines = Vec::new();
    let pct = r.percentage.to_string();
    let big_word = big_text(&format!("{} {}", word.symbol(), word.label()));
    let big_pct = big_text(&pct);
    let room = inner.width as usize;
    let big = inner.height >= BIG_MIN_HEIGHT && cols(&big_word[0]) + 2 <= room;
    let pct_beside = big && cols(&big_word[0]) + cols(&big_pct[0]) + 6 <= room;
    if big {
        for (w, p) in big_word.iter().zip(&big_pct) {
            let mut spans = vec![Span::styled(format!(" {w}"), style)];
            if pct_beside {
                let gap = room - cols(w) - cols(p) - 2;
                spans.push(Span::raw(" ".repeat(gap)));
                spans.push(Span::styled(
                    p.clone(),
                    Style::default().add_modifier(Modifier::BOLD),
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    // The headline in plain letters (with what stale data said); the percentage on its
    // right unless it is already drawn big.
    let pct_text = if pct_beside {
        String::new()
    } else {
        format!("{pct} ")
    };
    lines.push(bar(
        format!(" {}", status.headline()),
        pct_text,
        inner.width,
        head_style,
    ));
    if let Some(why) = why_line(state, wall, e, r, status) {
        lines.push(Line::styled(format!(" {why}"), style));
    }
    if let Some(drift) = drift_text(e) {
        lines.push(Line::styled(
            format!(" {drift}"),
            theme
                .bad()
                .add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ));
    }
    lines.extend(stage_lines(state, r, inner.width));
    let used = rows(&lines, inner.width) as u16;
    // A stale tile's gates are old news: its why line says so instead.
    let gates = if word == WallWord::Stale {
        Vec::new()
    } else {
        gate_lines(e, theme)
    };
    let rest = inner.height.saturating_sub(used);
    let has_history = e.health.history.iter().filter(|p| p.at.is_some()).count() >= 2;
    if inner.width >= CHART_MIN.0 && rest > CHART_MIN.1 && has_history {
        // Charts first; the gates get what is left, condensed if need be.
        let gates = fit_gates(e, gates, (rest - CHART_MIN.1) as usize, inner.width, theme);
        let chart_rows = rest - rows(&gates, inner.width) as u16;
        let [text_area, chart_area, gate_area] = Layout::vertical([
            Constraint::Length(used),
            Constraint::Length(chart_rows),
            Constraint::Min(0),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
        charts(state, e, theme, frame, chart_area);
        frame.render_widget(Paragraph::new(gates).wrap(Wrap { trim: false }), gate_area);
        return;
    }
    lines.extend(number_lines(state, e, inner.width, theme));
    // Tall tiles list every gate (after a blank row when there is one to spare); short
    // ones the gates that do not pass and a count.
    let mut room = (inner.height as usize).saturating_sub(rows(&lines, inner.width));
    if room > rows(&gates, inner.width) {
        lines.push(Line::raw(""));
        room -= 1;
    }
    lines.extend(fit_gates(e, gates, room, inner.width, theme));
    // Wrapped, so a long gate detail loses its tail row, never the words on the right.
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// "DRIFT: Cloud Run serves ... but the rollout expects ...", when the live split of the
/// rollout's service is not its document's.
fn drift_text(e: &Entry) -> Option<String> {
    let drift = e.traffic.as_ref()?.drift_message()?;
    Some(format!("DRIFT: {}", shown(&drift)))
}

/// What is behind the word: the stale data's age, the rollback or pause reason, the gate
/// that fails, the canary that gets nothing.
fn why_line(
    state: &AppState,
    wall: &Wall,
    e: &Entry,
    r: &Rollout,
    status: WallStatus,
) -> Option<String> {
    let h = &e.health;
    let report = h.report.as_ref();
    let text = match status.word {
        WallWord::Stale => format!(
            "no fresh data for {} (limit {})",
            present::minutes(status.stale.map(|s| s.age).unwrap_or_default()),
            present::format_duration(wall.stale_after)
        ),
        WallWord::RolledBack => r.rollback_reason.as_deref()?.to_string(),
        WallWord::Paused => match report.filter(|rep| rep.verdict != Verdict::Pass) {
            Some(rep) => format!(
                "{} · {}",
                r.pause_reason.as_deref().unwrap_or("paused"),
                rep.summary()
            ),
            None => r.pause_reason.as_deref()?.to_string(),
        },
        WallWord::NoTraffic => {
            let window = h.last_good.as_ref().map(|s| s.window).unwrap_or_default();
            format!(
                "canary at {} got no requests in {}",
                r.percentage,
                present::format_duration(window)
            )
        }
        WallWord::NoData if state.metrics_desc.is_none() => "no metrics source".to_string(),
        WallWord::Fail | WallWord::Inconclusive | WallWord::NoData => match h.source_error() {
            Some(err) => err.to_string(),
            None => report?.summary(),
        },
        WallWord::Pass | WallWord::Complete | WallWord::Planned | WallWord::Error => {
            return None;
        }
    };
    Some(shown(&text).into_owned())
}

/// "CANARY · stage 1/5 canary users · in stage 4m · v0.1.1", on two lines where it does
/// not fit, never cut.
fn stage_lines(state: &AppState, r: &Rollout, width: u16) -> Vec<Line<'static>> {
    let status = present::status_label(r.status).to_uppercase();
    let stage = match r.stage() {
        Some(_) => format!("stage {}", present::stage_label(r)),
        None => present::stage_label(r),
    };
    // To the minute: the wall is read from across the room and redrawn once a minute.
    let mut second = Vec::new();
    if let Some(clock) = present::stage_clock(r, state.now) {
        second.push(format!("in stage {}", present::minutes(clock.elapsed)));
    }
    second.push(format!("v{}", shown(&r.version)));
    let first = format!(" {status} · {stage}");
    let rest = second.join(" · ");
    if cols(&first) + cols(&rest) + 4 <= width as usize {
        vec![Line::raw(format!("{first} · {rest}"))]
    } else {
        vec![Line::raw(first), Line::raw(format!(" {rest}"))]
    }
}

fn newest_sides(e: &Entry) -> (Option<&SideStats>, Option<&SideStats>) {
    let latest = e.health.last_good.as_ref();
    (
        latest.and_then(|s| s.stable.as_ref()),
        latest.and_then(|s| s.canary.as_ref()),
    )
}

fn rate(s: Option<&SideStats>) -> String {
    present::rate_pct(s.and_then(|s| s.error_rate()))
}

fn p99(s: Option<&SideStats>) -> String {
    present::ms(s.and_then(|s| s.p99_ms))
}

/// Error rate and p99 of both sides, with sparklines on one scale (stable dim, canary
/// bright), for tiles too small for charts.
fn number_lines(state: &AppState, e: &Entry, width: u16, theme: Theme) -> Vec<Line<'static>> {
    let (stable, canary) = newest_sides(e);
    let h = &e.health;
    let half = (width.saturating_sub(30) as usize).saturating_sub(1) / 2;
    let pair = |pick: fn(&HistoryPoint) -> (Option<f64>, Option<f64>), floor: f64| {
        let (s, c): (Vec<_>, Vec<_>) = h.history.iter().map(pick).unzip();
        spark_pair(s, c, half, floor)
    };
    let err = pair(
        |p| (p.stable_error_rate, p.canary_error_rate),
        error_rate_floor(&state.gates),
    );
    let lat = pair(|p| (p.stable_p99, p.canary_p99), 0.0);
    [
        (" err  ", (rate(stable), rate(canary)), err),
        (" p99  ", (p99(stable), p99(canary)), lat),
    ]
    .into_iter()
    .map(|(label, values, (spark_s, spark_c))| {
        Line::from(vec![
            Span::raw(format!("{label} S {:>7} C {:>7} ", values.0, values.1)),
            Span::styled(spark_s, theme.dim()),
            Span::raw(" "),
            Span::styled(spark_c, theme.warn()),
        ])
    })
    .collect()
}

fn gate_lines(e: &Entry, theme: Theme) -> Vec<Line<'static>> {
    e.health.report.as_ref().map_or_else(Vec::new, |report| {
        report
            .gates
            .iter()
            .map(|g| {
                Line::styled(
                    format!(" {}", present::gate_line(g)),
                    theme.verdict(Some(g.verdict)),
                )
            })
            .collect()
    })
}

/// Rows `lines` take in `width` columns, wrapped.
fn rows(lines: &[Line<'static>], width: u16) -> usize {
    Paragraph::new(lines.to_vec())
        .wrap(Wrap { trim: false })
        .line_count(width)
}

/// Every gate where they fit in `room` rows; otherwise the gates that do not pass, then
/// how many pass. A failing gate is never the one cut.
fn fit_gates(
    e: &Entry,
    all: Vec<Line<'static>>,
    room: usize,
    width: u16,
    theme: Theme,
) -> Vec<Line<'static>> {
    let Some(report) = e
        .health
        .report
        .as_ref()
        .filter(|_| rows(&all, width) > room)
    else {
        return all;
    };
    let total = report.gates.len();
    let passing = report
        .gates
        .iter()
        .filter(|g| g.verdict == Verdict::Pass)
        .count();
    // One row says how many pass and how many more there are than fit.
    let budget = room.saturating_sub(1);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (g, line) in report.gates.iter().zip(all) {
        if g.verdict != Verdict::Pass {
            lines.push(line);
            if rows(&lines, width) > budget {
                lines.pop();
                break;
            }
        }
    }
    let unshown = total - passing - lines.len();
    if room > 0 {
        let text = if unshown > 0 {
            format!(" {passing} of {total} gates pass, {unshown} more not shown")
        } else {
            format!(" ✔ {passing} of {total} gates pass")
        };
        lines.push(Line::styled(
            text,
            if unshown > 0 {
                theme.warn()
            } else {
                theme.ok()
            },
        ));
    }
    lines
}

/// Stable against canary over the kept history, error rate and p99 side by side. The two
/// sides differ by marker as well as colour: stable in dots, canary in braille.
fn charts(state: &AppState, e: &Entry, theme: Theme, frame: &mut Frame, area: Rect) {
    let (stable, canary) = newest_sides(e);
    let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
    chart(
        state,
        e,
        ChartSpec {
            name: "error rate",
            short: "err",
            values: (rate(stable), rate(canary)),
            pick: |p| (p.stable_error_rate, p.canary_error_rate),
            floor: error_rate_floor(&state.gates),
            label: |v| present::rate_pct(Some(v)),
        },
        theme,
        frame,
        left,
    );
    chart(
        state,
        e,
        ChartSpec {
            name: "p99",
            short: "p99",
            values: (p99(stable), p99(canary)),
            pick: |p| (p.stable_p99, p.canary_p99),
            floor: 0.0,
            label: |v| present::ms(Some(v)),
        },
        theme,
        frame,
        right,
    );
}

struct ChartSpec {
    name: &'static str,
    short: &'static str,
    /// The newest numbers, stable and canary, for the title.
    values: (String, String),
    pick: fn(&HistoryPoint) -> (Option<f64>, Option<f64>),
    floor: f64,
    label: fn(f64) -> String,
}

fn chart(
    state: &AppState,
    e: &Entry,
    spec: ChartSpec,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    // One point per finished minute (its newest sample), at whole minutes before the current
    // one: the picture moves once a minute rather than with every sample, which keeps an idle
    // wall's output small, and the gap after the newest point still shows how old it is.
    let this_minute = state.now.timestamp().div_euclid(60);
    let mut per_minute = std::collections::BTreeMap::new();
    for p in &e.health.history {
        let Some(at) = p.at else { continue };
        let minute = at.timestamp().div_euclid(60);
        if minute < this_minute {
            per_minute.insert(minute, (spec.pick)(p));
        }
    }
    let mut stable = Vec::new();
    let mut canary = Vec::new();
    for (minute, (s, c)) in per_minute {
        let x = (minute - this_minute) as f64;
        stable.extend(s.filter(|v| v.is_finite()).map(|v| (x, v)));
        canary.extend(c.filter(|v| v.is_finite()).map(|v| (x, v)));
    }
    let oldest = stable
        .iter()
        .chain(&canary)
        .map(|(x, _)| *x)
        .fold(0.0f64, f64::min)
        .min(-1.0);
    let top = stable
        .iter()
        .chain(&canary)
        .map(|(_, y)| *y)
        .fold(spec.floor, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let make_title = |name: &str, stable: &str, canary: &str| {
        Line::from(vec![
            Span::raw(format!(" {name}  ")),
            Span::styled(format!("• {stable} {}", spec.values.0), theme.label()),
            Span::raw("  "),
            Span::styled(format!("⠿ {canary} {} ", spec.values.1), theme.warn()),
        ])
    };
    // The numbers matter more than the words: narrow charts abbreviate the words.
    let mut title = make_title(spec.name, "stable", "canary");
    if title.width() + 2 > area.width as usize {
        title = make_title(spec.short, "S", "C");
    }
    let ago = present::minutes(chrono::Duration::seconds((-oldest * 60.0) as i64));
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Line)
            .style(theme.dim())
            .data(&stable),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.warn())
            .data(&canary),
    ];
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.dim())
                .title(title),
        )
        .x_axis(
            Axis::default()
                .bounds([oldest, 0.0])
                .labels([format!("{ago} ago"), "now".to_string()])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), (spec.label)(top)])
                .style(theme.dim()),
        );
    frame.render_widget(chart, area);
}
