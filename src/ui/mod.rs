//! Drawing: `render(&AppState, &mut Frame)` is a pure function of the state.
//! Everything reads without colour too: verdicts carry symbols and words.

pub mod ascii;
mod dialogs;
mod overview;
pub mod terminal;
mod timeline;
mod views;
mod wall;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::state::{AppState, Conn, Panel, Screen, ToastLevel};
use crate::domain::health::Verdict;
use crate::domain::rollout::Status;
use crate::keys::Command;
use crate::present::{self, escape as shown};
pub use terminal::ColorDepth;

/// What the terminal shows: its colour depth (none with `NO_COLOR`: styles then only use
/// bold and reverse) and whether it is limited to ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub depth: ColorDepth,
    pub ascii: bool,
}

impl Theme {
    /// From `NO_COLOR`, `TERM`, `COLORTERM` and the locale; `force_ascii` is `--ascii`.
    pub fn from_env(force_ascii: bool) -> Theme {
        // Lossy: a value that is not UTF-8 (NO_COLOR=\xff) still counts as set.
        let var = |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let term = var("TERM");
        Theme {
            depth: terminal::color_depth(
                var("NO_COLOR").as_deref(),
                term.as_deref(),
                var("COLORTERM").as_deref(),
            ),
            ascii: force_ascii
                || terminal::wants_ascii(
                    var("LC_ALL").as_deref(),
                    var("LC_CTYPE").as_deref(),
                    var("LANG").as_deref(),
                    term.as_deref(),
                ),
        }
    }

    /// Unicode, with the 16 ANSI colours or none.
    pub const fn with_color(color: bool) -> Theme {
        Theme {
            depth: if color {
                ColorDepth::Ansi16
            } else {
                ColorDepth::None
            },
            ascii: false,
        }
    }

    fn fg(self, c: Color) -> Style {
        match self.depth.fit(c) {
            Some(c) => Style::default().fg(c),
            None => Style::default(),
        }
    }
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    /// Decoration only (borders, placeholders, sparkline labels): a mid grey that recedes.
    /// Text that must be read on a dark screen or a projector uses `label` or `header`.
    pub fn dim(self) -> Style {
        self.fg(Color::Rgb(128, 128, 128))
    }
    /// Secondary text that must stay readable (hints, sources, ages): the terminal's own
    /// foreground, never grey on black.
    pub fn label(self) -> Style {
        Style::default()
    }
    /// Column headers: bold in the terminal's foreground.
    pub fn header(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn banner(self) -> Style {
        if self.depth > ColorDepth::None {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn verdict(self, v: Option<Verdict>) -> Style {
        match v {
            Some(Verdict::Pass) => self.ok(),
            Some(Verdict::Fail) => self.bad(),
            Some(Verdict::Inconclusive) => self.warn(),
            None => self.dim(),
        }
    }
}

pub fn render(state: &AppState, theme: Theme, frame: &mut Frame) {
    draw(state, theme, frame);
    if theme.ascii {
        ascii::to_ascii(frame.buffer_mut());
    }
}

fn draw(state: &AppState, theme: Theme, frame: &mut Frame) {
    if let Some(w) = &state.wall {
        wall::render_wall(state, w, theme, frame);
        return;
    }
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(state, theme, frame);
        return;
    }
    let banners = banner_lines(state);
    let [top, banner, body, hints, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banners.len() as u16),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(title_line(state, theme)), top);
    frame.render_widget(
        Paragraph::new(
            banners
                .into_iter()
                .map(|b| Line::styled(b, theme.banner()))
                .collect::<Vec<_>>(),
        ),
        banner,
    );
    match state.screen {
        Screen::Overview => overview::overview(state, theme, frame, body),
        Screen::Detail => views::detail(state, theme, frame, body),
    }
    frame.render_widget(Paragraph::new(hint_line(state, theme, hints.width)), hints);
    frame.render_widget(
        Paragraph::new(status_line(state, theme, status.width)),
        status,
    );
    if state.help_open {
        dialogs::help(state, theme, frame, area);
    }
    if let Some(d) = &state.dialog {
        dialogs::dialog(state, d, theme, frame, area);
    }
}

/// The smallest screen the cockpit draws on: below it, dialogs and their inputs would be
/// cut without a word, so the whole screen says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// What a too-small terminal shows: the size needed, the way out, and a rollback in
/// progress (the keys work at any size, so its reason can still be typed and sent).
fn too_small(state: &AppState, theme: Theme, frame: &mut Frame) {
    let k = |c| state.keys.label(c);
    let mut lines = vec![
        Line::styled(
            format!("terminal too small (need at least {MIN_WIDTH}x{MIN_HEIGHT})"),
            theme.bad(),
        ),
        Line::raw(format!(
            "{} quit · {} roll back",
            k(Command::Quit),
            k(Command::Rollback)
        )),
    ];
    if let Some(crate::app::state::Dialog::Rollback { id, input }) = &state.dialog {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("ROLL BACK {}", shown(id)),
            theme.bad(),
        ));
        lines.push(Line::raw(format!("reason: {}▏", shown(input.value()))));
        lines.push(Line::styled("Enter rolls back · Esc cancels", theme.dim()));
    }
    if let Some(t) = &state.toast {
        lines.push(Line::raw(""));
        lines.push(Line::raw(shown(&t.text).into_owned()));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        frame.area(),
    );
}

fn title_line(state: &AppState, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(format!(" {} ", state.title), theme.accent())];
    let counts = state.rollouts.iter().fold([0usize; 3], |mut acc, e| {
        match e.health.verdict() {
            Some(Verdict::Fail) => acc[0] += 1,
            Some(Verdict::Inconclusive) => acc[1] += 1,
            _ => acc[2] += 1,
        }
        acc
    });
    let n = state.rollouts.len();
    spans.push(Span::raw(format!(
        "{n} rollout{}",
        if n == 1 { "" } else { "s" }
    )));
    if counts[0] > 0 {
        spans.push(Span::styled(
            format!("  ✖ {} failing", counts[0]),
            theme.bad(),
        ));
    }
    if state.pending_writes > 0 {
        spans.push(Span::styled(
            format!("  writing… ({})", state.pending_writes),
            theme.warn(),
        ));
    }
    Line::from(spans)
}

fn banner_lines(state: &AppState) -> Vec<String> {
    let mut lines: Vec<String> = state.freeze_line().into_iter().collect();
    if let Some(problem) = &state.notify_problem {
        lines.push(format!(" NOTIFICATIONS FAILING: {} ", shown(problem)));
    }
    if let Conn::Disconnected { since, why } = &state.store_conn {
        let age = present::data_age(state.data_age());
        // The essentials first: at 80 columns the cause may be cut, never the age.
        lines.push(format!(
            " STORE DISCONNECTED {} · {age} · writes may fail · {} ",
            present::since(state.now - *since),
            shown(why)
        ));
    }
    let failing: Vec<&str> = state
        .rollouts
        .iter()
        .filter_map(|e| e.health.source_error().map(|_| e.id()))
        .collect();
    if !failing.is_empty() && state.metrics_desc.is_some() {
        let first = state
            .rollouts
            .iter()
            .find_map(|e| e.health.source_error())
            .unwrap_or_default();
        lines.push(format!(
            " METRICS UNAVAILABLE for {}: {} — health is inconclusive ",
            shown(&failing.join(", ")),
            shown(first)
        ));
    }
    lines
}

/// Keeps the end of a long description (a path's file name matters most).
fn shorten_left(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let tail: String = text.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

/// Key hints, most important first, as many as fit the width (rollback always does, and
/// `?` help is always last). They follow the selected rollout: pause or resume as it is,
/// and no moves on a finished one.
fn hint_line(state: &AppState, theme: Theme, width: u16) -> Line<'static> {
    let k = &state.keys;
    let hint = |c: Command, what: &str| format!("{} {what}", k.label(c));
    let status = state
        .selected_entry()
        .and_then(|e| e.rollout.as_ref().ok())
        .map(|r| r.status);
    let finished = matches!(status, Some(Status::RolledBack | Status::Complete));
    let moves = |items: &mut Vec<String>, cmds: &[(Command, &str)]| {
        if !finished {
            items.extend(cmds.iter().map(|(c, what)| hint(*c, what)));
        }
    };
    let pause = if status == Some(Status::Paused) {
        "resume"
    } else {
        "pause"
    };
    let items: Vec<String> = if state.filter_input.is_some() {
        vec![
            "type to filter".into(),
            "Enter keep".into(),
            "Esc cancel".into(),
        ]
    } else {
        let mut items = Vec::new();
        match state.screen {
            Screen::Overview => {
                items.push(hint(Command::Quit, "quit"));
                items.push(hint(Command::Rollback, "rollback"));
                items.push(hint(Command::Open, "open"));
                moves(
                    &mut items,
                    &[
                        (Command::Advance, "advance"),
                        (Command::SetPercent, "percent"),
                    ],
                );
                items.push(hint(Command::Filter, "filter"));
                moves(&mut items, &[(Command::Auto, "auto")]);
                items.push(hint(Command::NextAttention, "next needing attention"));
                items.push(hint(Command::Sort, "sort"));
            }
            Screen::Detail if state.focus == Panel::Users => items.extend([
                hint(Command::Back, "back"),
                hint(Command::Rollback, "rollback"),
                hint(Command::AddUser, "add"),
                hint(Command::RemoveUser, "remove"),
                hint(Command::ToggleExcluded, "canary/excluded"),
                hint(Command::Which, "which side"),
                hint(Command::NextPanel, "panel"),
            ]),
            Screen::Detail => {
                items.push(hint(Command::Back, "back"));
                items.push(hint(Command::Rollback, "rollback"));
                moves(
                    &mut items,
                    &[
                        (Command::Advance, "advance"),
                        (Command::PauseResume, pause),
                        (Command::SetPercent, "percent"),
                        (Command::Promote, "promote"),
                    ],
                );
                items.push(hint(Command::NextPanel, "panel"));
                items.push(hint(Command::Users, "users"));
                items.push(hint(Command::Which, "which side"));
                moves(&mut items, &[(Command::Auto, "auto")]);
            }
        }
        items
    };
    // Help is the way to every other key: it always fits, at the end.
    let help = (state.filter_input.is_none()).then(|| hint(Command::Help, "help"));
    let reserved = help.as_ref().map_or(0, |h| h.chars().count() + 2);
    let mut text = String::new();
    for item in items {
        if text.chars().count() + item.chars().count() + 2 + reserved > width as usize {
            break;
        }
        text.push_str("  ");
        text.push_str(&item);
    }
    if let Some(help) = help {
        text.push_str("  ");
        text.push_str(&help);
    }
    Line::styled(text, theme.label())
}

fn status_line(state: &AppState, theme: Theme, width: u16) -> Line<'static> {
    if let Some(t) = &state.toast {
        let style = match t.level {
            ToastLevel::Info => theme.ok(),
            ToastLevel::Error => theme.bad(),
        };
        let mark = match t.level {
            ToastLevel::Info => "✔",
            ToastLevel::Error => "✖",
        };
        // Toasts quote store and server errors, and user keys.
        return Line::styled(format!(" {mark} {}", shown(&t.text)), style);
    }
    let conn = match &state.store_conn {
        Conn::Connected => Span::styled("● connected", theme.ok()),
        Conn::Disconnected { .. } => Span::styled("○ DISCONNECTED", theme.bad()),
    };
    let age = present::data_age(state.data_age());
    let driver = state
        .selected_entry()
        .and_then(|e| e.lease.as_ref())
        .filter(|l| l.expires_at > state.now)
        .map_or("driver: none".to_string(), |l| {
            format!("driver: {}", shown(&l.holder))
        });
    // Connection, data age and driver first: at 80 columns the descriptions get cut.
    let metrics = state.metrics_desc.as_deref().unwrap_or("none");
    let metrics_kind = metrics.split(" (").next().unwrap_or(metrics);
    // Narrow screens name only the kind of source, leaving room for the store's name.
    let metrics_kind = if width < 120 {
        metrics_kind.split(' ').next().unwrap_or(metrics_kind)
    } else {
        metrics_kind
    };
    let mut spans = vec![
        Span::raw(" "),
        conn,
        Span::raw(format!(" │ {age} │ {driver} │ ")),
        Span::styled(format!("metrics: {metrics_kind} │ "), theme.label()),
    ];
    // The store gets what is left, cut from the left so the file or collection name stays;
    // with too little room for a useful tail it is left out (the help and check-config say it).
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = (width as usize).saturating_sub(used).min(40);
    if room >= 12 {
        spans.push(Span::styled(
            shorten_left(&state.store_desc, room),
            theme.label(),
        ));
    }
    Line::from(spans)
}
