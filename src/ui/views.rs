//! The detail panels, and the drawing helpers the overview shares.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

use super::Theme;
use crate::app::state::{AppState, EVENTS_SHOWN, Entry, HistoryPoint, Panel};
use crate::domain::actions::UserList;
use crate::domain::event::Event;
use crate::domain::health::SideStats;
use crate::domain::health::Verdict;
use crate::domain::rollout::{Rollout, Status};
use crate::present::{self, escape as shown, format_duration, ms, rate_pct, verdict_badge};
use crate::store::LeaseState;

/// Reads one side's value of one metric from a history point.
type Pick = fn(&HistoryPoint) -> Option<f64>;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Error rates on a scale of at least the error-rate gate, so a steady 0.2 % reads as low,
/// not as a full bar; `floor` is also the shared maximum when rows are compared.
pub fn spark_error_rates(
    values: impl Iterator<Item = Option<f64>>,
    width: usize,
    floor: f64,
) -> String {
    let all: Vec<Option<f64>> = values.collect();
    let tail = &all[all.len().saturating_sub(width)..];
    spark_on_scale(tail, series_max(tail).max(floor))
}

/// The scale floor for error-rate sparklines: the configured limit, else 1 %.
pub fn error_rate_floor(gates: &crate::domain::health::GateConfig) -> f64 {
    gates.max_error_rate.unwrap_or(0.01)
}

pub(super) fn series_max(values: &[Option<f64>]) -> f64 {
    values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
}

/// Stable and canary on one scale, so the lines can be compared by height.
pub fn spark_pair(
    stable: Vec<Option<f64>>,
    canary: Vec<Option<f64>>,
    width: usize,
    floor: f64,
) -> (String, String) {
    let s = &stable[stable.len().saturating_sub(width)..];
    let c = &canary[canary.len().saturating_sub(width)..];
    let max = series_max(s).max(series_max(c)).max(floor);
    (spark_on_scale(s, max), spark_on_scale(c, max))
}

fn spark_on_scale(tail: &[Option<f64>], max: f64) -> String {
    tail.iter()
        .map(|v| match v {
            Some(x) if x.is_finite() && max > 0.0 => {
                BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
            Some(x) if x.is_finite() => BARS[0],
            _ => ' ',
        })
        .collect()
}

pub(super) fn block(title: String, focused: bool, theme: Theme) -> Block<'static> {
    let title = if focused {
        format!("▸ {title} ")
    } else {
        format!(" {title} ")
    };
    let style = if focused { theme.accent() } else { theme.dim() };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style))
}

/// A panel's block saying how many lines are cut below it, so nothing hides silently.
pub(super) fn more_below(b: Block<'static>, hidden: usize, theme: Theme) -> Block<'static> {
    if hidden == 0 {
        return b;
    }
    b.title_bottom(Line::styled(format!(" ↓ {hidden} more "), theme.accent()).right_aligned())
}

pub(super) fn status_style(status: Status, theme: Theme) -> ratatui::style::Style {
    match status {
        Status::RolledBack => theme.bad(),
        Status::Paused => theme.warn(),
        Status::Complete => theme.ok(),
        _ => ratatui::style::Style::default(),
    }
}

pub fn detail(state: &AppState, theme: Theme, frame: &mut Frame, area: Rect) {
    let Some(entry) = state.selected_entry() else {
        frame.render_widget(Paragraph::new("No rollout selected (Esc: back)"), area);
        return;
    };
    let r = match &entry.rollout {
        Ok(r) => r,
        Err(e) => {
            let text = vec![
                Line::styled(format!("✖ {}", shown(&e.to_string())), theme.bad()),
                Line::raw(""),
                Line::raw(format!(
                    "This document cannot be read, so nothing here changes it, except a rollback ({}), which writes only the rollback fields.",
                    state.keys.label(crate::keys::Command::Rollback)
                )),
                Line::raw(format!(
                    "Stored fields: {}",
                    shown(&serde_json::Value::Object(entry.stored.fields.clone()).to_string())
                )),
            ];
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(ratatui::widgets::Wrap { trim: false })
                    .block(block(shown(&e.rollout).into_owned(), true, theme)),
                area,
            );
            return;
        }
    };
    // A long rollback or pause reason wraps (up to a third of the screen; the event's own
    // view has all of it) rather than running off the edge.
    let mut header_lines = vec![header_line(r, theme)];
    header_lines.extend(
        entry
            .traffic
            .as_ref()
            .map(|t| traffic_lines(state, t, theme))
            .into_iter()
            .flatten(),
    );
    let header = Paragraph::new(header_lines).wrap(Wrap { trim: false });
    let header_rows = (header.line_count(area.width) as u16).clamp(1, (area.height / 3).max(1));
    let [head, body] =
        Layout::vertical([Constraint::Length(header_rows), Constraint::Min(3)]).areas(area);
    frame.render_widget(header, head);
    if let Some((index, ev)) = state.open_event() {
        event_view(state, entry, (index, ev), theme, frame, body);
        return;
    }
    let body = match state.decision_card(entry) {
        Some(ev) => {
            let card = decision_card(state, ev, theme, body);
            let [card_area, rest] =
                Layout::vertical([Constraint::Length(card.1), Constraint::Min(3)]).areas(body);
            frame.render_widget(card.0, card_area);
            rest
        }
        None => body,
    };
    let wide = body.width >= 120 && body.height >= 30;
    if wide {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        let [tl, tr] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
        let [bl, br] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
            .areas(bottom);
        for (panel, rect) in [
            (Panel::Timeline, tl),
            (Panel::Health, tr),
            (Panel::Users, bl),
            (Panel::Events, br),
        ] {
            draw_panel(state, entry, r, panel, theme, frame, rect);
        }
    } else {
        // Narrow screens show one panel at a time; the tab line says which and what else there is.
        let [tabs, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(body);
        let spans: Vec<Span> = Panel::ALL
            .iter()
            .flat_map(|p| {
                let style = if *p == state.focus {
                    theme.selected()
                } else {
                    theme.dim()
                };
                [
                    Span::styled(format!(" {} ", p.title()), style),
                    Span::raw(" "),
                ]
            })
            .collect();
        frame.render_widget(Paragraph::new(Line::from(spans)), tabs);
        draw_panel(state, entry, r, state.focus, theme, frame, rest);
    }
}

/// What Cloud Run serves, and when it is not what the document says, the two ways out.
fn traffic_lines(
    state: &AppState,
    t: &crate::actuator::acting::TrafficView,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![match t.serving() {
        Ok(serving) => Line::raw(format!("Cloud Run  {}", shown(&serving))),
        Err(e) => Line::styled(
            format!("Cloud Run  cannot read the split: {}", shown(&e)),
            theme.warn(),
        ),
    }];
    if let Some(drift) = t.drift_message() {
        lines.push(Line::styled(
            format!(
                "DRIFT: {} · {}: re-apply the document's split · {}: roll back",
                shown(&drift),
                state.keys.label(crate::keys::Command::SyncTraffic),
                state.keys.label(crate::keys::Command::Rollback)
            ),
            theme.bad(),
        ));
    }
    lines
}

/// A line of the explanation, coloured by the verdict badge it starts with.
fn verdict_styled(text: String, theme: Theme) -> Line<'static> {
    let verdict = [Verdict::Fail, Verdict::Inconclusive, Verdict::Pass]
        .into_iter()
        .find(|v| {
            text.trim_start()
                .starts_with(present::verdict_badge(Some(*v)))
        });
    match verdict {
        Some(v) => Line::styled(text, theme.verdict(Some(v))),
        None => Line::raw(text),
    }
}

/// The last automatic decision and its evidence, kept on screen (even once live gates turn
/// inconclusive) until the operator dismisses it. Returns the widget and its height.
fn decision_card(
    state: &AppState,
    ev: &Event,
    theme: Theme,
    area: Rect,
) -> (Paragraph<'static>, u16) {
    let key = |c| state.keys.label(c);
    // The evidence first: the reason is often in the header already.
    let mut lines = Vec::new();
    if let Some(report) = ev
        .gate_report
        .as_ref()
        .and_then(|v| serde_json::from_value::<crate::domain::health::GateReport>(v.clone()).ok())
    {
        let groups = present::grouped_gates(&report.gates, report.sample_taken_at);
        let passing: usize = report
            .gates
            .iter()
            .filter(|g| g.verdict == Verdict::Pass)
            .count();
        for (verdict, names, text) in groups.into_iter().filter(|g| g.0 != Verdict::Pass) {
            lines.push(verdict_styled(
                format!("{} {names}: {text}", present::verdict_badge(Some(verdict))),
                theme,
            ));
        }
        if passing > 0 {
            lines.push(Line::styled(
                format!(
                    "{} {passing} other gate(s)",
                    present::verdict_badge(Some(Verdict::Pass))
                ),
                theme.ok(),
            ));
        }
    }
    lines.push(Line::raw(format!(
        "why: {}",
        ev.reason
            .as_deref()
            .map_or("(no reason recorded)".into(), shown)
    )));
    let title = format!(
        "AUTO {} · {} UTC ({}) · {}",
        present::decision_word(ev),
        ev.at.format("%H:%M:%S"),
        present::ago(Some(ev.at), state.now),
        shown(&ev.actor)
    );
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: true });
    let inner_width = area.width.saturating_sub(2);
    let needed = paragraph.line_count(inner_width);
    let cap = if area.height >= 30 { 8 } else { 3 };
    let rows = needed.min(cap);
    let mut b = block(title, true, theme).title_bottom(
        Line::styled(
            format!(
                " {} dismiss · {} on its event: in full ",
                key(crate::keys::Command::DismissCard),
                key(crate::keys::Command::Open)
            ),
            theme.dim(),
        )
        .left_aligned(),
    );
    b = more_below(b, needed - rows, theme);
    (paragraph.block(b), rows as u16 + 2)
}

/// One event in full: wrapped, scrollable, with the gate report behind it.
fn event_view(
    state: &AppState,
    e: &Entry,
    (index, ev): (usize, &Event),
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let scroll = state.event_view.map_or(0, |v| v.scroll);
    let key = |c| state.keys.label(c);
    let lines: Vec<Line> = present::event_detail(ev, state.now)
        .into_iter()
        .map(|l| verdict_styled(l, theme))
        .collect();
    let title = format!(
        "Event {} of {} · {} back · {}/{} scroll",
        index + 1,
        e.events.len().min(EVENTS_SHOWN),
        key(crate::keys::Command::Back),
        key(crate::keys::Command::Up),
        key(crate::keys::Command::Down)
    );
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let inner = block(String::new(), true, theme).inner(area);
    let total = paragraph.line_count(inner.width);
    let height = inner.height as usize;
    let scroll = scroll.min(total.saturating_sub(height));
    let hidden = total.saturating_sub(scroll + height);
    let mut b = more_below(block(title, true, theme), hidden, theme);
    if scroll > 0 {
        b = b.title_bottom(Line::styled(format!(" ↑ {scroll} above "), theme.dim()).left_aligned());
    }
    frame.render_widget(
        paragraph
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0))
            .block(b),
        area,
    );
}

fn header_line(r: &Rollout, theme: Theme) -> Line<'static> {
    let stable = r
        .stable_version
        .as_deref()
        .map(|v| format!(" (stable {})", shown(v)))
        .unwrap_or_default();
    let mut spans = vec![
        Span::styled(format!(" {} ", shown(&r.id)), theme.accent()),
        Span::raw(format!("v{}{stable}  ", shown(&r.version))),
        Span::styled(
            present::status_label(r.status),
            status_style(r.status, theme),
        ),
        Span::raw(format!("  {}  {}", r.percentage, present::stage_label(r))),
    ];
    if let Some(why) = &r.rollback_reason {
        spans.push(Span::styled(
            format!("  rolled back: {}", shown(why)),
            theme.bad(),
        ));
    } else if let Some(why) = &r.pause_reason {
        spans.push(Span::styled(
            format!("  paused: {}", shown(why)),
            theme.warn(),
        ));
    }
    Line::from(spans)
}

fn draw_panel(
    state: &AppState,
    e: &Entry,
    r: &Rollout,
    panel: Panel,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let focused = panel == state.focus;
    match panel {
        Panel::Timeline => super::timeline::draw(state, e, r, focused, theme, frame, area),
        Panel::Health => health(state, e, focused, theme, frame, area),
        Panel::Users => users(state, r, focused, theme, frame, area),
        Panel::Events => events(state, e, focused, theme, frame, area),
    }
}

/// Who drives the rollout, and why the machine holds or what it did last.
pub(super) fn auto_lines(state: &AppState, e: &Entry, theme: Theme) -> Vec<Line<'static>> {
    let until = |l: &crate::store::Lease| present::clock(l.expires_at);
    let key = state.keys.label(crate::keys::Command::Auto);
    let Some(auto) = &e.auto else {
        return vec![match &e.lease {
            Some(l) if l.expires_at > state.now => Line::styled(
                format!(
                    "auto: driven by {} (lease until {})",
                    shown(&l.holder),
                    until(l)
                ),
                theme.warn(),
            ),
            _ => Line::styled(format!("auto: off ({key} turns it on)"), theme.dim()),
        }];
    };
    let mut lines = vec![match &auto.lease {
        None => Line::styled("AUTO: starting…", theme.warn()),
        Some(LeaseState::Held(l)) => Line::styled(
            format!("AUTO ● driving (lease until {})", until(l)),
            theme.ok(),
        ),
        Some(LeaseState::HeldByOther(l)) => Line::styled(
            format!(
                "AUTO ○ waiting: {} drives until {}",
                shown(&l.holder),
                until(l)
            ),
            theme.warn(),
        ),
        Some(LeaseState::Unavailable(why)) => {
            Line::styled(format!("AUTO ✖ not acting: {}", shown(why)), theme.bad())
        }
    }];
    if let Some(d) = &auto.decision {
        lines.push(Line::raw(format!("→ {}", shown(&d.label()))));
    }
    if let Some(Err(why)) = &auto.acted {
        lines.push(Line::styled(
            format!("last action failed: {}", shown(why)),
            theme.bad(),
        ));
    }
    lines
}

fn side_row(
    label: &str,
    s: Option<&SideStats>,
    c: Option<&SideStats>,
    f: impl Fn(&SideStats) -> Option<f64>,
    show: fn(Option<f64>) -> String,
) -> (String, String, String, String, Option<f64>) {
    let sv = s.and_then(&f);
    let cv = c.and_then(&f);
    let diff = match (sv, cv) {
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some(b - a),
        _ => None,
    };
    let diff_text = match diff {
        Some(d) => {
            let shown = show(Some(d.abs()));
            // A difference that rounds away is no difference ("-0.00%" says nothing).
            if shown == show(Some(0.0)) {
                "=".into()
            } else if d > 0.0 {
                format!("+{shown}")
            } else if d < 0.0 {
                format!("-{shown}")
            } else {
                "=".into()
            }
        }
        None => "-".into(),
    };
    (label.to_string(), show(sv), show(cv), diff_text, diff)
}

fn health(state: &AppState, e: &Entry, focused: bool, theme: Theme, frame: &mut Frame, area: Rect) {
    let h = &e.health;
    let title = Panel::Health.title().to_string();
    let Some(sample) = h.last_good.as_ref().or(h.latest.as_ref()) else {
        let text = if state.metrics_desc.is_none() {
            "No metrics source configured: health is unknown, nothing counts as healthy."
        } else {
            "Waiting for the first sample…"
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.dim())
                .block(block(title, focused, theme)),
            area,
        );
        return;
    };
    let (s, c) = (sample.stable.as_ref(), sample.canary.as_ref());
    let window = sample.window.as_secs_f64().max(1.0);
    let gate = |name: &str| {
        h.report
            .as_ref()
            .and_then(|r| r.gate(name))
            .map(|g| g.verdict)
    };
    let rows_data = [
        (
            side_row(
                "requests",
                s,
                c,
                |x| Some(x.requests as f64),
                |v| v.map_or("-".into(), |x| format!("{x:.0}")),
            ),
            gate("min-requests"),
        ),
        (
            side_row(
                "req/s",
                s,
                c,
                |x| Some(x.requests as f64 / window),
                |v| v.map_or("-".into(), |x| format!("{x:.1}")),
            ),
            None,
        ),
        (
            side_row("error rate", s, c, SideStats::error_rate, rate_pct),
            gate("error-rate").or(gate("error-rate-vs-stable")),
        ),
        (side_row("p50", s, c, |x| x.p50_ms, ms), None),
        (side_row("p95", s, c, |x| x.p95_ms, ms), None),
        (
            side_row("p99", s, c, |x| x.p99_ms, ms),
            gate("p99-vs-stable").or(gate("p99")),
        ),
    ];
    let rows: Vec<Row> = rows_data
        .into_iter()
        .map(|((label, sv, cv, diff, _), verdict)| {
            let badge = verdict.map_or("", |v| verdict_badge(Some(v)));
            Row::new(vec![
                Cell::from(label),
                Cell::from(sv),
                Cell::from(cv),
                Cell::from(diff),
                Cell::from(badge).style(theme.verdict(verdict)),
            ])
        })
        .collect();
    let header = Row::new(
        ["", "STABLE", "CANARY", "DIFF", "VERDICT"].map(|h| Cell::from(h).style(theme.header())),
    );
    let inner = block(title.clone(), focused, theme).inner(area);
    frame.render_widget(block(title, focused, theme), area);
    let [table_area, age_area, sparks] = Layout::vertical([
        Constraint::Length(7),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let widths = [
        Constraint::Length(10),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(7),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), table_area);
    let stale = h.latest.as_ref().is_some_and(|l| l.source_error.is_some());
    let mut age_line = if stale && h.last_good.is_none() {
        // Only failed samples so far: what is shown is the failure, never "last good".
        Line::styled(
            format!(
                "NO GOOD SAMPLE YET · {}",
                shown(h.source_error().unwrap_or("no data"))
            ),
            theme.bad(),
        )
    } else if stale {
        Line::styled(
            format!(
                "LAST GOOD sample {} · now: {}",
                present::ago(Some(sample.taken_at), state.now),
                shown(h.source_error().unwrap_or("no data"))
            ),
            theme.bad(),
        )
    } else {
        // The data's age, not the sample's: a late source's newest point is minutes old.
        let data_age = sample
            .data_age(state.now)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or(state.now - sample.taken_at);
        let delay = if sample.ingestion_delay.is_zero() {
            String::new()
        } else {
            format!(
                " (source ~{} behind)",
                format_duration(sample.ingestion_delay)
            )
        };
        Line::styled(
            format!(
                "{}{delay} · window {}",
                present::data_age(Some(data_age)),
                format_duration(sample.window)
            ),
            theme.dim(),
        )
    };
    if let Some(faults) = state.faults.get(e.id()).filter(|f| !f.is_empty()) {
        let text = faults
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        age_line.spans.push(Span::styled(
            format!(" · SIMULATED FAULT: {text}"),
            theme.warn(),
        ));
    }
    frame.render_widget(Paragraph::new(age_line), age_area);
    let width = sparks.width.saturating_sub(12) as usize;
    // Error rates are drawn against at least the gate's limit; the others on their own scale.
    let series: [(&str, Pick, Pick, f64); 3] = [
        (
            "err%",
            |p| p.stable_error_rate,
            |p| p.canary_error_rate,
            error_rate_floor(
                e.rollout
                    .as_ref()
                    .ok()
                    .and_then(|r| r.gates.as_ref())
                    .unwrap_or(&state.gates),
            ),
        ),
        ("p99", |p| p.stable_p99, |p| p.canary_p99, 0.0),
        ("req/s", |p| p.stable_rps, |p| p.canary_rps, 0.0),
    ];
    let mut lines = Vec::new();
    for (name, stable_of, canary_of, floor) in series {
        let (s, c) = spark_pair(
            h.history.iter().map(stable_of).collect(),
            h.history.iter().map(canary_of).collect(),
            width,
            floor,
        );
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<6}S "), theme.dim()),
            Span::styled(s, theme.ok()),
        ]));
        lines.push(Line::from(vec![
            Span::styled(format!("{:<6}C ", ""), theme.dim()),
            Span::styled(c, theme.warn()),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), sparks);
}

fn users(
    state: &AppState,
    r: &Rollout,
    focused: bool,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let (list, other_label, other_len) = match state.user_list {
        UserList::Canary => (&r.canary_users, "excluded", r.excluded_users.len()),
        UserList::Excluded => (&r.excluded_users, "canary", r.canary_users.len()),
    };
    let key = |c| state.keys.label(c);
    let title = format!(
        "{} ({}) · {}: {other_label} ({other_len})",
        present::list_title(state.user_list),
        list.len(),
        key(crate::keys::Command::ToggleExcluded)
    );
    let b = block(title, focused, theme);
    let inner = b.inner(area);
    let height = inner.height as usize;
    let cursor = state.user_cursor.min(list.len().saturating_sub(1));
    let start = cursor.saturating_sub(height.saturating_sub(1));
    frame.render_widget(
        more_below(b, list.len().saturating_sub(start + height), theme),
        area,
    );
    if list.is_empty() {
        let add = format!("none · {}: add", key(crate::keys::Command::AddUser));
        frame.render_widget(Paragraph::new(add).style(theme.dim()), inner);
        return;
    }
    // Only the visible slice is laid out, so thousands of users cost the same as ten.
    let lines: Vec<Line> = list
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, u)| {
            if focused && i == cursor {
                Line::styled(format!("▶ {}", shown(u)), theme.selected())
            } else {
                Line::raw(format!("  {}", shown(u)))
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn events(state: &AppState, e: &Entry, focused: bool, theme: Theme, frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = e
        .events
        .iter()
        .take(EVENTS_SHOWN)
        .skip(state.event_offset)
        .enumerate()
        .map(|(i, ev)| {
            let style = if ev.kind.as_str() == "rollback" {
                theme.bad()
            } else {
                ratatui::style::Style::default()
            };
            // The top event is the one Enter opens.
            let marker = if focused && i == 0 { "▶" } else { " " };
            Line::from(vec![
                Span::styled(marker, theme.accent()),
                Span::styled(format!("{} ", ev.at.format("%m-%d %H:%M:%S")), theme.dim()),
                Span::styled(format!("{:<13} ", ev.kind.as_str()), style),
                Span::styled(format!("{} ", shown(&ev.actor)), theme.dim()),
                Span::raw(present::event_text(ev)),
            ])
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::styled("no events loaded", theme.dim())]
    } else {
        lines
    };
    let b = block(format!("Events ({})", e.events.len()), focused, theme);
    let hidden = lines.len().saturating_sub(b.inner(area).height as usize);
    let b = if focused {
        b.title_bottom(
            Line::styled(
                format!(
                    " {}: open in full ",
                    state.keys.label(crate::keys::Command::Open)
                ),
                theme.dim(),
            )
            .left_aligned(),
        )
    } else {
        b
    };
    frame.render_widget(
        Paragraph::new(lines).block(more_below(b, hidden, theme)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rate_sparklines_are_scaled_to_at_least_the_gate() {
        let steady = [Some(0.002); 4];
        assert_eq!(
            spark_error_rates(steady.into_iter(), 4, 0.01),
            "▂▂▂▂",
            "0.2 % against a 1 % gate is low, not a full bar"
        );
        let spike = [Some(0.002), Some(0.05), None, Some(0.0)];
        assert_eq!(spark_error_rates(spike.into_iter(), 4, 0.01), "▁█ ▁");
        // Only the last `width` values are drawn.
        assert_eq!(spark_error_rates(spike.into_iter(), 2, 0.01), " ▁");
    }
}
