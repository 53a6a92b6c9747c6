//! Terminals: ASCII mode (`--ascii`, or automatic) draws every screen with bytes below
//! 0x80 and the same layout; every colour on screen fits the terminal's colour depth; the
//! text that must be read (hints, headers) is never grey.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use std::time::Duration;

use cockpit_fixture::*;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use rollout_tui::app::state::{AppState, Panel, Wall};
use rollout_tui::ui::{ColorDepth, Theme};

const ASCII: Theme = Theme {
    depth: ColorDepth::None,
    ascii: true,
};

fn open_on(mut state: AppState, id: &str, panel: Panel) -> AppState {
    open(&mut state, id);
    while state.focus != panel {
        press(&mut state, crossterm::event::KeyCode::Tab);
    }
    state
}

fn wall_state() -> AppState {
    let mut s = demo_state();
    s.title = "rollout-tui watch".into();
    s.wall = Some(Wall {
        rotate_every: Duration::from_secs(15),
        index: 0,
        last_rotate: t0(),
        paused: false,
        stale_after: Duration::from_secs(180),
    });
    s
}

/// Every byte of every cell is ASCII, and every cell that was ASCII in the Unicode drawing
/// (and not hidden under a wide character) is unchanged: the layout is the same.
fn assert_ascii_twin(state: &AppState, width: u16, height: u16, what: &str) -> Buffer {
    let ascii = draw_with(state, width, height, ASCII);
    let unicode = draw_with(state, width, height, Theme::with_color(false));
    let mut hidden = 0usize;
    for (i, (a, u)) in ascii.content.iter().zip(&unicode.content).enumerate() {
        let (x, y) = (i as u16 % width, i as u16 / width);
        if x == 0 {
            hidden = 0;
        }
        let under_wide = hidden > 0;
        hidden = hidden.saturating_sub(1).max(
            ratatui::text::Span::raw(u.symbol())
                .width()
                .saturating_sub(1),
        );
        assert!(
            a.symbol().bytes().all(|b| b < 0x80),
            "{what}: cell {x},{y} holds {:?}:\n{}",
            a.symbol(),
            screen_text(&ascii)
        );
        if u.symbol().is_ascii() && !under_wide {
            assert_eq!(a.symbol(), u.symbol(), "{what}: cell {x},{y} moved");
        }
    }
    let unicode_cells = unicode
        .content
        .iter()
        .filter(|c| !c.symbol().is_ascii())
        .count();
    assert!(
        unicode_cells > 0,
        "{what}: nothing to replace, a vacuous test"
    );
    ascii
}

#[test]
fn ascii_overview_80x24() {
    let buf = assert_ascii_twin(&demo_state(), 80, 24, "overview");
    insta::assert_snapshot!("ascii_overview_80x24", screen_text(&buf));
}

#[test]
fn ascii_detail_80x24() {
    // The failing rollout: verdict marks, the timeline's pointer and checks, borders.
    let s = open_on(demo_state(), "search-ranking-v2", Panel::Health);
    let buf = assert_ascii_twin(&s, 80, 24, "detail");
    insta::assert_snapshot!("ascii_detail_80x24", screen_text(&buf));
}

#[test]
fn ascii_detail_with_sparklines_200x60() {
    let s = open_on(demo_state_current_at_5(), "current", Panel::Health);
    let buf = assert_ascii_twin(&s, 200, 60, "detail 200x60");
    let text = screen_text(&buf);
    assert!(
        ["_", ".", "-", "=", "+", "*", "%", "#"]
            .iter()
            .any(|c| text.contains(c)),
        "the sparkline ramp is drawn:\n{text}"
    );
}

#[test]
fn ascii_wall_big_text() {
    for (w, h) in [(80, 24), (200, 60)] {
        let buf = assert_ascii_twin(&wall_state(), w, h, &format!("wall {w}x{h}"));
        if w == 80 {
            insta::assert_snapshot!("ascii_wall_80x24", screen_text(&buf));
        } else {
            // The big percentage digits are drawn with full blocks, in ASCII with '#'.
            let unicode = screen_text(&draw_with(&wall_state(), w, h, Theme::with_color(false)));
            assert!(unicode.contains("███"), "{unicode}");
            assert!(screen_text(&buf).contains("###"));
        }
    }
}

#[test]
fn ascii_help_and_dialogs() {
    let mut s = demo_state();
    ch(&mut s, '?');
    assert_ascii_twin(&s, 80, 24, "help");
    let mut s = demo_state();
    ch(&mut s, 'R');
    type_text(&mut s, "né 日本 ✔");
    assert_ascii_twin(&s, 80, 24, "rollback dialog with typed Unicode");
}

/// Named colours are the 16 ANSI ones; 256-colour and 24-bit values only where the depth
/// allows them; none at all without colour.
fn fits(depth: ColorDepth, c: Color) -> bool {
    match c {
        Color::Reset => true,
        Color::Rgb(..) => depth == ColorDepth::TrueColor,
        Color::Indexed(_) => depth >= ColorDepth::Indexed256,
        _ => depth >= ColorDepth::Ansi16,
    }
}

#[test]
fn every_colour_on_every_screen_fits_the_depth() {
    let mut help = demo_state();
    ch(&mut help, '?');
    let screens = [
        ("overview", demo_state()),
        (
            "detail",
            open_on(demo_state(), "search-ranking-v2", Panel::Health),
        ),
        (
            "users",
            open_on(demo_state_current_at_5(), "current", Panel::Users),
        ),
        ("events", open_on(demo_state(), "current", Panel::Events)),
        ("help", help),
        ("wall", wall_state()),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for depth in [
        ColorDepth::None,
        ColorDepth::Ansi16,
        ColorDepth::Indexed256,
        ColorDepth::TrueColor,
    ] {
        let theme = Theme {
            depth,
            ascii: false,
        };
        for (what, state) in &screens {
            let buf = draw_with(state, 200, 60, theme);
            for cell in &buf.content {
                for c in [cell.fg, cell.bg] {
                    assert!(fits(depth, c), "{what} at {depth:?}: {c:?}");
                    seen.insert(format!("{depth:?} {c:?}"));
                }
            }
        }
    }
    // The decoration grey is the one colour that follows the depth.
    for expected in [
        "Ansi16 DarkGray",
        "Indexed256 Indexed(244)",
        "TrueColor Rgb(128, 128, 128)",
    ] {
        assert!(seen.contains(expected), "{expected} not seen: {seen:?}");
    }
    assert!(
        !seen
            .iter()
            .any(|s| s.starts_with("None ") && !s.ends_with("Reset")),
        "{seen:?}"
    );
}

/// The screen column of `needle` in a line of single-width characters.
fn column(line: &str, needle: &str) -> u16 {
    let byte = line.find(needle).expect("needle on the line");
    line[..byte].chars().count() as u16
}

/// Hints (the key line's and a dialog's) and column headers are read on dark screens and
/// projectors: the terminal's own foreground, never grey.
#[test]
fn text_that_matters_is_not_grey() {
    for depth in [
        ColorDepth::Ansi16,
        ColorDepth::Indexed256,
        ColorDepth::TrueColor,
    ] {
        let theme = Theme {
            depth,
            ascii: false,
        };
        let s = demo_state();
        let buf = draw_with(&s, 80, 24, theme);
        let hint_row = 22;
        assert!(
            screen_text(&buf)
                .lines()
                .nth(hint_row)
                .unwrap()
                .contains("q quit"),
            "{}",
            screen_text(&buf)
        );
        for x in 0..80 {
            assert_eq!(
                buf[(x, hint_row as u16)].fg,
                Color::Reset,
                "hint at {x}, {depth:?}"
            );
        }
        // The overview's column headers (row 2: ID STATUS ...).
        for x in 2..8 {
            let cell = &buf[(x, 2)];
            assert_eq!(cell.fg, Color::Reset, "header at {x}, {depth:?}");
        }
        // A dialog's key hint.
        let mut dialog = demo_state();
        ch(&mut dialog, 'R');
        let buf = draw_with(&dialog, 80, 24, theme);
        let text = screen_text(&buf);
        let (y, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("Esc: cancel"))
            .unwrap_or_else(|| panic!("no dialog hint:\n{text}"));
        let x = column(line, "Esc: cancel");
        assert_eq!(buf[(x, y as u16)].symbol(), "E");
        assert_eq!(
            buf[(x, y as u16)].fg,
            Color::Reset,
            "dialog hint, {depth:?}"
        );
        let detail = open_on(demo_state(), "search-ranking-v2", Panel::Health);
        let buf = draw_with(&detail, 200, 60, theme);
        let text = screen_text(&buf);
        let (y, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("STABLE") && l.contains("VERDICT"))
            .expect("the health table's header");
        let x = column(line, "STABLE");
        assert_eq!(buf[(x, y as u16)].symbol(), "S");
        assert_eq!(buf[(x, y as u16)].fg, Color::Reset, "{depth:?}");
    }
}
