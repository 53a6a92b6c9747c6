//! Snapshots of every cockpit view, drawn with `TestBackend` at 80x24 and 200x60
//! from deterministic states (`support/cockpit_fixture.rs`). Text snapshots use no
//! colour; a few `*_color_*` snapshots record the styled runs, and the tests assert
//! that a failing verdict is red and reads "✖ FAIL".

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use cockpit_fixture::*;
use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};
use rollout_tui::app::state::{AppState, Dialog, Panel, Screen};
use rollout_tui::app::update::{Msg, update};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::units::Percent;
use rollout_tui::engine::WriteOutcome;
use rollout_tui::ops::diff_fields;
use rollout_tui::store::{Revision, StoreChange, StoredRollout};

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

fn style_name(style: Style) -> String {
    let mut parts = Vec::new();
    if let Some(fg) = style.fg
        && fg != Color::Reset
    {
        parts.push(format!("fg={fg:?}"));
    }
    if let Some(bg) = style.bg
        && bg != Color::Reset
    {
        parts.push(format!("bg={bg:?}"));
    }
    let m = style.add_modifier;
    for (flag, name) in [
        (Modifier::BOLD, "bold"),
        (Modifier::REVERSED, "reversed"),
        (Modifier::DIM, "dim"),
        (Modifier::ITALIC, "italic"),
        (Modifier::UNDERLINED, "underlined"),
    ] {
        if m.contains(flag) {
            parts.push(name.to_string());
        }
    }
    parts.join(" ")
}

/// The screen text followed by every styled run: `row col: style 'text'`.
fn styled_text(buf: &Buffer) -> String {
    let mut out = screen_text(buf);
    out.push_str("\n---- styled runs (row col: style 'text')\n");
    for y in 0..buf.area.height {
        let mut x = 0u16;
        while x < buf.area.width {
            let style = buf[(x, y)].style();
            let name = style_name(style);
            let start = x;
            let mut text = String::new();
            while x < buf.area.width && style_name(buf[(x, y)].style()) == name {
                text.push_str(buf[(x, y)].symbol());
                x += 1;
            }
            if !name.is_empty() && !text.trim().is_empty() {
                out.push_str(&format!(
                    "{y:>2} {start:>3}: {name} '{}'\n",
                    text.trim_end()
                ));
            }
        }
    }
    out
}

/// Snapshots `state` at 80x24 and 200x60 as `{name}_{w}x{h}`, without colour.
fn snap(name: &str, state: &AppState) {
    for (w, h) in SIZES {
        let buf = draw(state, w, h, false);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen_text(&buf));
    }
}

/// Where `needle` starts on screen, if anywhere.
fn find(buf: &Buffer, needle: &str) -> Vec<(u16, u16)> {
    let mut hits = Vec::new();
    for y in 0..buf.area.height {
        // Column positions: walk cells so wide characters keep their place.
        let cells: Vec<&str> = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        for x in 0..cells.len() {
            let mut s = String::new();
            for c in &cells[x..] {
                s.push_str(c);
                if s.len() >= needle.len() {
                    break;
                }
            }
            if s.starts_with(needle) {
                hits.push((x as u16, y));
            }
        }
    }
    hits
}

/// Every "✖ FAIL" on screen is drawn red and bold; there is at least one.
fn assert_fail_is_red(buf: &Buffer, what: &str) {
    let hits = find(buf, "✖ FAIL");
    assert!(
        !hits.is_empty(),
        "{what}: no '✖ FAIL' on screen:\n{}",
        screen_text(buf)
    );
    for (x, y) in hits {
        for dx in 0..6 {
            let cell = &buf[(x + dx, y)];
            assert_eq!(
                cell.fg,
                Color::Red,
                "{what}: '✖ FAIL' at {x},{y} is not red (cell {dx} is {:?})",
                cell.style()
            );
            assert!(
                cell.modifier.contains(Modifier::BOLD),
                "{what}: '✖ FAIL' at {x},{y} is not bold"
            );
        }
    }
}

fn open_on(mut state: AppState, id: &str, panel: Panel) -> AppState {
    open(&mut state, id);
    while state.focus != panel {
        press(&mut state, KeyCode::Tab);
    }
    state
}

// ---------------------------------------------------------------- overview

#[test]
fn overview() {
    snap("overview", &demo_state());
}

#[test]
fn overview_filter_applied() {
    let mut s = demo_state();
    ch(&mut s, '/');
    type_text(&mut s, "search");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.filter, "search");
    snap("overview_filter_applied", &s);
}

#[test]
fn overview_filter_typing() {
    let mut s = demo_state();
    ch(&mut s, '/');
    type_text(&mut s, "oc");
    snap("overview_filter_typing", &s);
}

#[test]
fn overview_color() {
    let s = demo_state();
    for (w, h) in SIZES {
        let buf = draw(&s, w, h, true);
        assert_fail_is_red(&buf, &format!("overview {w}x{h}"));
        if w == 80 {
            insta::assert_snapshot!("overview_color_80x24", styled_text(&buf));
        }
    }
}

#[test]
fn empty_store() {
    snap("empty_store", &empty_state());
}

// ---------------------------------------------------------------- detail

#[test]
fn detail_timeline_failing() {
    let s = open_on(demo_state(), "search-ranking-v2", Panel::Timeline);
    snap("detail_timeline_failing", &s);
}

#[test]
fn detail_timeline_countdown() {
    let s = open_on(demo_state_current_at_5(), "current", Panel::Timeline);
    assert!(s.countdown_visible());
    snap("detail_timeline_countdown", &s);
}

#[test]
fn detail_health_failing() {
    let s = open_on(demo_state(), "search-ranking-v2", Panel::Health);
    snap("detail_health_failing", &s);
}

#[test]
fn detail_health_healthy() {
    let s = open_on(demo_state(), "current", Panel::Health);
    snap("detail_health_healthy", &s);
}

#[test]
fn detail_health_inconclusive() {
    let s = open_on(demo_state(), "ocr-fallback", Panel::Health);
    snap("detail_health_inconclusive", &s);
}

/// A late source (Cloud Monitoring): the newest points are 3 minutes old by design.
#[test]
fn detail_health_late_source() {
    let mut s = empty_state();
    add(&mut s, &current());
    feed_samples(&mut s, "current", 8, t0(), |at, i| {
        let mut sample = healthy_sample(at, i);
        sample.ingestion_delay = std::time::Duration::from_secs(240);
        for side in [sample.stable.as_mut(), sample.canary.as_mut()]
            .into_iter()
            .flatten()
        {
            side.newest_point_at = Some(at - mins(3));
        }
        sample
    });
    let s = open_on(s, "current", Panel::Health);
    snap("detail_health_late_source", &s);
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(
        small.contains("data 3m00s old (source ~4m behind) · window 1m"),
        "{small}"
    );
    let wide = screen_text(&draw(&s, 200, 60, false));
    assert!(
        wide.contains("newest points 3m old (limit 7m = 3m + 4m source delay)"),
        "{wide}"
    );
}

#[test]
fn detail_users() {
    let s = open_on(demo_state_current_at_5(), "current", Panel::Users);
    snap("detail_users", &s);
}

#[test]
fn detail_users_excluded() {
    let mut s = open_on(demo_state_current_at_5(), "current", Panel::Users);
    ch(&mut s, 'x');
    snap("detail_users_excluded", &s);
}

#[test]
fn detail_events() {
    let s = open_on(demo_state_current_at_5(), "current", Panel::Events);
    snap("detail_events", &s);
}

#[test]
fn detail_color() {
    for (panel, name) in [
        (Panel::Timeline, "detail_timeline_color_80x24"),
        (Panel::Health, "detail_health_color_80x24"),
    ] {
        let s = open_on(demo_state(), "search-ranking-v2", panel);
        for (w, h) in SIZES {
            let buf = draw(&s, w, h, true);
            assert_fail_is_red(&buf, &format!("{name} {w}x{h}"));
            if w == 80 {
                insta::assert_snapshot!(name, styled_text(&buf));
            }
        }
    }
}

#[test]
fn detail_color_wide() {
    let s = open_on(demo_state(), "search-ranking-v2", Panel::Health);
    let buf = draw(&s, 200, 60, true);
    assert_fail_is_red(&buf, "detail 200x60");
    insta::assert_snapshot!("detail_color_200x60", styled_text(&buf));
}

// ---------------------------------------------------------------- dialogs

#[test]
fn dialog_advance_confirm() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, 'a');
    assert!(matches!(s.dialog, Some(Dialog::Confirm { .. })));
    snap("dialog_advance_confirm", &s);
}

#[test]
fn dialog_advance_confirm_failing_health() {
    let mut s = open_on(demo_state(), "search-ranking-v2", Panel::Timeline);
    ch(&mut s, 'a');
    snap("dialog_advance_confirm_failing_health", &s);
}

#[test]
fn dialog_set_percent_valid() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, '%');
    type_text(&mut s, "5");
    snap("dialog_set_percent_valid", &s);
}

#[test]
fn dialog_set_percent_invalid() {
    for (text, name) in [
        ("101", "dialog_set_percent_out_of_range"),
        ("5.123", "dialog_set_percent_too_precise"),
        ("abc", "dialog_set_percent_not_a_number"),
        ("0", "dialog_set_percent_unchanged"),
    ] {
        let mut s = open_on(demo_state(), "current", Panel::Timeline);
        ch(&mut s, '%');
        type_text(&mut s, text);
        snap(name, &s);
    }
}

#[test]
fn dialog_set_percent_big_jump_confirm() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, '%');
    type_text(&mut s, "100");
    press(&mut s, KeyCode::Enter);
    assert!(matches!(s.dialog, Some(Dialog::Confirm { .. })));
    snap("dialog_set_percent_confirm_100", &s);
}

#[test]
fn dialog_add_user_duplicate() {
    let mut s = open_on(demo_state(), "current", Panel::Users);
    ch(&mut s, 'i');
    type_text(&mut s, "QA-team-1");
    // Ids compare exactly, so that one is new; an email compares without case.
    snap("dialog_add_user_new", &s);
    let mut s = open_on(demo_state(), "current", Panel::Users);
    ch(&mut s, 'i');
    type_text(&mut s, "Alec@GetAIFactory.com");
    snap("dialog_add_user_duplicate", &s);
    let mut s = open_on(demo_state(), "current", Panel::Users);
    ch(&mut s, 'i');
    type_text(&mut s, "ci-bot");
    snap("dialog_add_user_in_other_list", &s);
}

#[test]
fn dialog_remove_user_confirm() {
    let mut s = open_on(demo_state(), "current", Panel::Users);
    press(&mut s, KeyCode::Down);
    ch(&mut s, 'd');
    assert!(matches!(s.dialog, Some(Dialog::Confirm { .. })));
    snap("dialog_remove_user_confirm", &s);
}

#[test]
fn dialog_rollback_reason() {
    let mut s = open_on(demo_state(), "search-ranking-v2", Panel::Timeline);
    ch(&mut s, 'R');
    snap("dialog_rollback_empty", &s);
    type_text(&mut s, "error spike on checkout");
    snap("dialog_rollback_reason", &s);
}

#[test]
fn dialog_promote_typed_confirm() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, 'P');
    type_text(&mut s, "curr");
    snap("dialog_promote_partial", &s);
    type_text(&mut s, "ent");
    snap("dialog_promote_typed", &s);
}

/// Someone set `current` to 5 % while this cockpit tried to advance it.
fn conflict_state() -> AppState {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, 'a');
    let effects = ch(&mut s, 'y');
    assert_eq!(effects.len(), 1);
    let before = current().stored;
    let mut after_fields = before.fields.clone();
    after_fields.insert(
        "rolloutPercentage".into(),
        Percent::from_hundredths(500).unwrap().to_json(),
    );
    after_fields.insert("status".into(), "progressive".into());
    after_fields.insert("currentStage".into(), 1.into());
    after_fields.insert("stageEnteredAt".into(), "2026-03-01T08:59:30.000Z".into());
    let current_doc = StoredRollout {
        id: "current".into(),
        revision: Revision("3".into()),
        fields: after_fields,
        defect: None,
    };
    update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::Advance,
            outcome: WriteOutcome::Conflict {
                changed: diff_fields(&before.fields, &current_doc.fields),
                current: current_doc,
                by: None,
            },
        }),
    );
    assert!(matches!(s.dialog, Some(Dialog::Conflict { .. })));
    s
}

#[test]
fn dialog_conflict() {
    snap("dialog_conflict", &conflict_state());
}

#[test]
fn write_failed_toast() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, 'R');
    type_text(&mut s, "bad build");
    press(&mut s, KeyCode::Enter);
    update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::Rollback {
                reason: "bad build".into(),
            },
            outcome: WriteOutcome::Failed(
                "store unavailable: /srv/rollouts/rollouts.db: database is locked".into(),
            ),
        }),
    );
    snap("toast_write_failed", &s);
}

#[test]
fn help_overlay() {
    let mut s = demo_state();
    ch(&mut s, '?');
    assert!(s.help_open);
    snap("help_overlay", &s);
}

// ---------------------------------------------------------------- outages and bad data

#[test]
fn store_outage_banner() {
    let mut s = demo_state();
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected(
            "/srv/rollouts/rollouts.db: No such file or directory (os error 2)".into(),
        ))),
    );
    tick(&mut s, t0() + chrono::Duration::seconds(95));
    snap("store_outage_overview", &s);
    let s = open_on(s, "current", Panel::Timeline);
    snap("store_outage_detail", &s);
}

/// `current` had 32 good samples; the last 4 (one minute) came back with no data.
fn metrics_outage_state() -> AppState {
    let mut s = demo_state();
    let start = t0() + chrono::Duration::seconds(SAMPLE_EVERY_SECS);
    feed_samples(
        &mut s,
        "current",
        4,
        start + chrono::Duration::seconds(45),
        |at, _| outage_sample(at),
    );
    s
}

#[test]
fn metrics_outage() {
    let s = metrics_outage_state();
    snap("metrics_outage_overview", &s);
    let s = open_on(s, "current", Panel::Health);
    snap("metrics_outage_detail_health", &s);
}

#[test]
fn malformed_document() {
    let mut s = demo_state();
    upsert(&mut s, malformed());
    snap("malformed_overview", &s);
    let mut s = open_on(s, "billing-export", Panel::Timeline);
    assert_eq!(s.screen, Screen::Detail);
    snap("malformed_detail", &s);
    // Acting on it is refused with a reason, not attempted.
    let effects = ch(&mut s, 'a');
    assert!(effects.is_empty() && s.dialog.is_none());
    snap("malformed_refused_toast", &s);
}

// ---------------------------------------------------------------- content checks

/// The facts an operator needs are on the 80x24 overview: every id, status,
/// percentage and verdict word.
#[test]
fn overview_80x24_shows_the_key_facts() {
    let s = demo_state();
    let text = screen_text(&draw(&s, 80, 24, false));
    for needle in [
        "current",
        "search-ranking-v2",
        "ocr-fallback",
        "canary",
        "progressive",
        "0%",
        "1%",
        "5%",
        "✔ pass",
        "✖ FAIL",
        "? wait",
        "✖ 1 failing",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
}

/// The help overlay shows every command's real key and description.
fn help_missing(w: u16, h: u16) -> (Vec<String>, String) {
    let mut s = demo_state();
    ch(&mut s, '?');
    let text = screen_text(&draw(&s, w, h, false));
    let missing = s
        .keys
        .help_rows()
        .iter()
        .filter(|(k, what)| !text.contains(&format!(" {k:<8}  {what}")))
        .map(|(k, what)| format!("{k} {what}"))
        .collect();
    (missing, text)
}

#[test]
fn help_lists_every_command_at_200x60() {
    let (missing, text) = help_missing(200, 60);
    assert!(
        missing.is_empty(),
        "help does not show {missing:?}:\n{text}"
    );
    assert!(text.contains("ctrl-c always quits"), "\n{text}");
}

/// At 80x24 the help overlay has two columns for 25 commands, a blank and a footer.
#[test]
fn help_lists_every_command_at_80x24() {
    let (missing, text) = help_missing(80, 24);
    assert!(
        missing.is_empty(),
        "help does not show {missing:?}:\n{text}"
    );
    assert!(text.contains("ctrl-c always quits"), "\n{text}");
}

/// A canary error rate that rises sample by sample: the newest point is the highest.
fn rising_error_state() -> AppState {
    let mut s = empty_state();
    add(&mut s, &current());
    feed_samples(&mut s, "current", 10, t0(), |at, i| {
        let mut sample = healthy_sample(at, i);
        if let Some(c) = sample.canary.as_mut() {
            c.requests = 1000;
            c.errors = i as u64 + 1;
        }
        sample
    });
    s
}

/// The sparkline at the end of `text` (a row's right border and blanks dropped).
fn trailing_spark(text: &str) -> String {
    let inner = text.trim_end().trim_end_matches('│').trim_end();
    let mut spark: Vec<char> = inner
        .chars()
        .rev()
        .take_while(|c| "▁▂▃▄▅▆▇█".contains(*c))
        .collect();
    spark.reverse();
    spark.into_iter().collect()
}

/// The canary error-rate sparklines of the overview: the first data row's, at its right
/// edge, where the width leaves room for one, and the preview's (after "C " on its
/// "err%" line).
fn overview_sparks(buf: &Buffer) -> (Option<String>, Option<String>) {
    let row = Some(trailing_spark(&row_text(buf, 3))).filter(|s| !s.is_empty());
    let preview = (0..buf.area.height).find_map(|y| {
        let text = row_text(buf, y);
        let (_, after) = text.split_once("│err%")?;
        Some(trailing_spark(after.split_once(" C ")?.1))
    });
    (row, preview)
}

/// The overview's sparklines end with the newest point, at every size: the preview's
/// always, the list row's where the width keeps it (not at 80 columns, which drop the
/// sparkline column first).
#[test]
fn overview_sparkline_ends_with_the_newest_point() {
    let s = rising_error_state();
    for (w, h) in SIZES {
        let buf = draw(&s, w, h, false);
        let (row, preview) = overview_sparks(&buf);
        let sparks = if w >= 120 {
            vec![
                row.expect("a sparkline in the row"),
                preview.expect("a preview sparkline"),
            ]
        } else {
            vec![preview.expect("a preview sparkline")]
        };
        for spark in sparks {
            assert!(
                spark.ends_with("▇█"),
                "{w}x{h}: the sparkline does not end with the newest points (▇█):\n{}",
                screen_text(&buf)
            );
        }
    }
}

// ---------------------------------------------------------------- 80x24 problems

/// A malformed document's overview row names the field at 80x24 too.
#[test]
fn malformed_row_names_the_field_at_80x24() {
    let mut s = demo_state();
    upsert(&mut s, malformed());
    let text = screen_text(&draw(&s, 80, 24, false));
    assert!(text.contains("rolloutPercentage"), "\n{text}");
}

/// During a store outage the 80x24 screen says how old the data is and that the
/// store is disconnected in the status line.
#[test]
fn store_outage_shows_data_age_at_80x24() {
    let mut s = demo_state();
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected(
            "/srv/rollouts/rollouts.db: No such file or directory (os error 2)".into(),
        ))),
    );
    tick(&mut s, t0() + chrono::Duration::seconds(95));
    let text = screen_text(&draw(&s, 80, 24, false));
    assert!(text.contains("old"), "no data age on screen:\n{text}");
    assert!(text.contains("writes may fail"), "\n{text}");
    assert!(text.contains("DISCONNECTED"), "\n{text}");
}

/// The status line keeps the connection state and the data age at 80 columns.
#[test]
fn status_line_shows_connection_at_80x24() {
    let s = demo_state();
    let text = screen_text(&draw(&s, 80, 24, false));
    assert!(text.contains("connected"), "\n{text}");
    assert!(text.contains("data 0s old"), "\n{text}");
}

/// Every hint in the detail view's hint line fits at 80 columns.
#[test]
fn detail_hints_fit_at_80x24() {
    let s = open_on(demo_state(), "current", Panel::Timeline);
    let text = screen_text(&draw(&s, 80, 24, false));
    assert!(text.contains("P promote"), "\n{text}");
}

/// A gate's whole detail is readable in the wide layout (200x60).
#[test]
fn gate_details_fit_at_200x60() {
    let s = open_on(demo_state(), "search-ranking-v2", Panel::Timeline);
    let text = screen_text(&draw(&s, 200, 60, false));
    assert!(text.contains("(limit 3m)"), "\n{text}");
    assert!(text.contains("confidence"), "\n{text}");
}

/// Text another tool stored reaches the screen escaped: a user key with a right-to-left
/// override reads as what it is, not as another user, and no escape sequence is drawn.
#[test]
fn stored_text_is_drawn_escaped() {
    let mut stored = current_at_5().stored;
    let f = &mut stored.fields;
    f.insert(
        "version".into(),
        serde_json::json!("2.0\u{1b}]0;PWNED\u{7}"),
    );
    f.insert(
        "canaryUsers".into(),
        serde_json::json!(["abc\u{202e}fed", "zero\u{200b}width"]),
    );
    f.insert("status".into(), serde_json::json!("paused"));
    f.insert(
        "pauseReason".into(),
        serde_json::json!("hold\u{1b}[2J\u{9b}on"),
    );
    let mut s = demo_state();
    upsert(&mut s, stored);
    let s = open_on(s, "current", Panel::Users);
    for (w, h) in SIZES {
        let text = screen_text(&draw(&s, w, h, false));
        for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{200b}'] {
            assert!(!text.contains(c), "{w}x{h}: raw {c:?}\n{text}");
        }
        assert!(text.contains(r"abc\u{202e}fed"), "{w}x{h}\n{text}");
        assert!(text.contains(r"zero\u{200b}width"), "{w}x{h}\n{text}");
        assert!(
            !text.contains("abcfed"),
            "{w}x{h}: shown as another user\n{text}"
        );
        if w == 200 {
            assert!(text.contains(r"v2.0\x1b]0;PWNED\x07"), "\n{text}");
            assert!(text.contains(r"hold\x1b[2J\x9bon"), "\n{text}");
        }
    }
}

/// Text from outside the document (server errors, a malformed document's values) is
/// escaped too: in the banners, the health panel and the malformed-document view.
#[test]
fn outside_text_is_drawn_escaped() {
    let hidden = |at| {
        let mut sample = outage_sample(at);
        sample.source_error = Some("proxy said \u{202e}ok\u{200b}".into());
        sample
    };
    let mut s = demo_state();
    feed_samples(
        &mut s,
        "current",
        2,
        t0() + chrono::Duration::seconds(60),
        |at, _| hidden(at),
    );
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected(
            "gone \u{202e}away".into(),
        ))),
    );
    let mut doc = malformed();
    doc.fields.insert(
        "rolloutPercentage".into(),
        serde_json::json!("lots\u{202e}"),
    );
    upsert(&mut s, doc);
    let check = |s: &AppState, what: &str, needles: &[&str]| {
        let text = screen_text(&draw(s, 200, 60, false));
        for c in ['\u{202e}', '\u{200b}'] {
            assert!(!text.contains(c), "{what}: raw {c:?}\n{text}");
        }
        for n in needles {
            assert!(text.contains(n), "{what}: no {n:?}\n{text}");
        }
    };
    check(
        &s,
        "overview",
        &[r"proxy said \u{202e}ok\u{200b}", r"gone \u{202e}away"],
    );
    let health = open_on(s.clone(), "current", Panel::Health);
    check(&health, "health panel", &[r"proxy said \u{202e}ok\u{200b}"]);
    let broken = open_on(s, "billing-export", Panel::Timeline);
    check(&broken, "malformed detail", &[r"lots\u{202e}"]);
}

/// The detail view names the gates that are off, and whose gates apply.
#[test]
fn detail_lists_gates_that_are_off() {
    let mut stored = current_at_5().stored;
    stored.fields.insert(
        "gates".into(),
        serde_json::json!({"maxErrorRate": "off", "maxP99Ratio": 2.0}),
    );
    let mut s = demo_state();
    upsert(&mut s, stored);
    let s = open_on(s, "current", Panel::Timeline);
    let text = screen_text(&draw(&s, 200, 60, false));
    assert!(
        text.contains("gates off: error-rate, success-rate, p99 (this rollout's own gates)"),
        "\n{text}"
    );
    let s = open_on(demo_state(), "current", Panel::Timeline);
    let text = screen_text(&draw(&s, 80, 24, false));
    assert!(
        text.contains("gates off: success-rate, p99 (gates from the config)"),
        "\n{text}"
    );
}
