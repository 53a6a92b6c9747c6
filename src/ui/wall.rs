//! The wall screen of `watch`: big, high-contrast tiles, a grid when they fit,
//! otherwise one rollout at a time, rotating.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};

use super::Theme;
use super::views::{error_rate_floor, spark_pair};
use crate::app::state::{AppState, Conn, Entry, Wall};
use crate::domain::health::Verdict;
use crate::domain::rollout::{Rollout, Status};
use crate::present::{self, escape as shown, format_elapsed, verdict_badge};

/// Smallest tile that still shows everything; below it the wall rotates.
const TILE_MIN: (u16, u16) = (38, 11);

/// 3x5 block glyphs for the percentage, readable across a room.
fn glyph(c: char) -> [&'static str; 5] {
    match c {
        '0' => ["███", "█ █", "█ █", "█ █", "███"],
        '1' => [" ██", "  █", "  █", "  █", "  █"],
        '2' => ["███", "  █", "███", "█  ", "███"],
        '3' => ["███", "  █", "███", "  █", "███"],
        '4' => ["█ █", "█ █", "███", "  █", "  █"],
        '5' => ["███", "█  ", "███", "  █", "███"],
        '6' => ["███", "█  ", "███", "█ █", "███"],
        '7' => ["███", "  █", "  █", "  █", "  █"],
        '8' => ["███", "█ █", "███", "█ █", "███"],
        '9' => ["███", "█ █", "███", "  █", "███"],
        '.' => ["   ", "   ", "   ", "   ", " █ "],
        '%' => ["█ █", "  █", " █ ", "█  ", "█ █"],
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
    let [top, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(1)]).areas(area);
    top_bar(state, wall, theme, frame, top);
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
                if let Some(e) = entries.get(r * cols_used + c) {
                    tile(state, e, theme, frame, *tile_area);
                }
            }
        }
    } else {
        let i = wall.index % entries.len();
        tile(state, entries[i], theme, frame, body);
    }
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
    let rotation = if wall.paused {
        "  rotation paused (space)"
    } else {
        ""
    };
    let line = Line::from(vec![
        Span::styled(" READ-ONLY ", marker),
        Span::styled(format!(" {} ", state.title), theme.accent()),
        Span::raw(format!("{} UTC  ", present::clock_minutes(state.now))),
        conn,
        Span::styled(rotation, theme.label()),
    ]);
    let age = state.data_age();
    let stale = age.is_some_and(|a| a.to_std().unwrap_or_default() > wall.stale_after);
    let second = match age {
        Some(a) if stale => Line::styled(
            format!(
                " STALE: newest data is {} old (limit {}) ",
                present::minutes(a),
                format_elapsed(wall.stale_after)
            ),
            theme.banner(),
        ),
        Some(_) => Line::styled(format!(" {}", present::data_age(age)), theme.label()),
        None => Line::styled(format!(" {}", present::data_age(age)), theme.warn()),
    };
    frame.render_widget(Paragraph::new(vec![line, second]), area);
}

fn status_style(r: &Rollout, verdict: Option<Verdict>, theme: Theme) -> Style {
    match (r.status, verdict) {
        (Status::RolledBack, _) | (_, Some(Verdict::Fail)) => theme.bad(),
        (Status::Paused, _) | (_, Some(Verdict::Inconclusive)) => theme.warn(),
        _ => theme.ok(),
    }
}

fn tile(state: &AppState, e: &Entry, theme: Theme, frame: &mut Frame, area: Rect) {
    let r = match &e.rollout {
        Ok(r) => r,
        Err(err) => {
            let block = Block::default()
                .borders(Borders::ALL)
                .border_style(theme.bad())
                .title(format!(" {} ", shown(e.id())));
            frame.render_widget(
                Paragraph::new(format!("✖ {}", shown(&err.to_string())))
                    .style(theme.bad())
                    .block(block),
                area,
            );
            return;
        }
    };
    let verdict = e.health.verdict();
    let style = status_style(r, verdict, theme);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(style)
        .title(Span::styled(
            format!(" {} ", shown(&r.id)),
            style.add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!(" {} ", present::status_label(r.status).to_uppercase()),
            style.add_modifier(Modifier::REVERSED),
        ),
        Span::raw("  "),
        Span::styled(
            verdict_badge(verdict).to_uppercase(),
            theme.verdict(verdict).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  v{}", shown(&r.version))),
    ])];
    let pct = r.percentage.to_string();
    let big = big_text(&pct);
    if inner.height >= 12 && big[0].chars().count() as u16 + 2 <= inner.width {
        lines.push(Line::raw(""));
        lines.extend(
            big.into_iter()
                .map(|l| Line::styled(format!(" {l}"), style)),
        );
    } else {
        lines.push(Line::styled(
            format!(" {pct}"),
            style.add_modifier(Modifier::BOLD),
        ));
    }
    let stage = match r.stage() {
        Some(_) => format!("stage {}", present::stage_label(r)),
        None => present::stage_label(r),
    };
    // To the minute: the wall is read from across the room and redrawn once a minute.
    let in_stage = present::stage_clock(r, state.now)
        .map(|clock| format!("in stage {}", present::minutes(clock.elapsed)));
    match in_stage {
        // On one line where it fits; a narrow tile gives the clock its own line, never a cut.
        Some(t) if stage.chars().count() + t.chars().count() + 5 <= inner.width as usize => {
            lines.push(Line::raw(format!(" {stage} · {t}")));
        }
        Some(t) => {
            lines.push(Line::raw(format!(" {stage}")));
            lines.push(Line::raw(format!(" {t}")));
        }
        None => lines.push(Line::raw(format!(" {stage}"))),
    }
    if let Some(why) = r.rollback_reason.as_deref().or(r.pause_reason.as_deref()) {
        lines.push(Line::styled(format!(" {}", shown(why)), style));
    }
    let width = inner.width.saturating_sub(30) as usize;
    let h = &e.health;
    let latest = h.last_good.as_ref();
    let rate = |s: Option<&crate::domain::health::SideStats>| {
        present::rate_pct(s.and_then(|s| s.error_rate()))
    };
    let p99 = |s: Option<&crate::domain::health::SideStats>| present::ms(s.and_then(|s| s.p99_ms));
    let (stable, canary) = (
        latest.and_then(|s| s.stable.as_ref()),
        latest.and_then(|s| s.canary.as_ref()),
    );
    // Stable and canary side by side on one scale (stable dim, canary bright), so a canary
    // that runs hot stands out against its own baseline.
    let half = width.saturating_sub(1) / 2;
    let pair = |pick: fn(&crate::app::state::HistoryPoint) -> (Option<f64>, Option<f64>),
                floor: f64| {
        let (s, c): (Vec<_>, Vec<_>) = h.history.iter().map(pick).unzip();
        spark_pair(s, c, half, floor)
    };
    let (err_s, err_c) = pair(
        |p| (p.stable_error_rate, p.canary_error_rate),
        error_rate_floor(&state.gates),
    );
    let (p99_s, p99_c) = pair(|p| (p.stable_p99, p.canary_p99), 0.0);
    for (label, values, (spark_s, spark_c)) in [
        (" err  ", (rate(stable), rate(canary)), (err_s, err_c)),
        (" p99  ", (p99(stable), p99(canary)), (p99_s, p99_c)),
    ] {
        lines.push(Line::from(vec![
            Span::raw(format!("{label} S {:>7} C {:>7} ", values.0, values.1)),
            Span::styled(spark_s, theme.dim()),
            Span::raw(" "),
            Span::styled(spark_c, theme.warn()),
        ]));
    }
    if let Some(report) = &h.report {
        // Tall tiles list every gate; short ones only say what is wrong.
        if (inner.height as usize) > lines.len() + report.gates.len() + 1 {
            lines.push(Line::raw(""));
            for g in &report.gates {
                lines.push(Line::styled(
                    format!(" {}", present::gate_line(g)),
                    theme.verdict(Some(g.verdict)),
                ));
            }
        } else if report.verdict != Verdict::Pass {
            lines.push(Line::styled(
                format!(" {}", shown(&report.summary())),
                theme.verdict(Some(report.verdict)),
            ));
        }
    }
    // Wrapped, so a long gate detail loses its tail row, never the words on the right.
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
