//! Explanations that survive 80x24: an event opened in full (who, when, every field, the
//! reason, the gate report behind it), the last automatic decision kept on screen as a
//! card until dismissed, a long rollback reason wrapped in the header, and cut panels that
//! say how much is below. Snapshots at 80x24 and 200x60, plus the reducer's keys.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use cockpit_fixture::*;
use crossterm::event::KeyCode;
use rollout_tui::app::state::{AppState, EventView, Panel, Screen};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::event::EventKind;
use rollout_tui::domain::health::{GateConfig, HealthSample, evaluate};
use rollout_tui::domain::rollout::PlanPreset;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

const AUTO: &str = "auto:bastion-2";

/// Long enough to wrap three times at 80 columns, with its end worth reading.
const LONG_REASON: &str = "automatic rollback: canary error rate 2.10 % > 1.00 % for 5m (sustained since 08:49); \
stable 0.15 % over the same window; the payments team was paged (INC-4127) and the \
canary revision search-00042-c3d is kept for the post-mortem; END-OF-REASON";

fn snap(name: &str, state: &AppState) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(
            format!("{name}_{w}x{h}"),
            screen_text(&draw(state, w, h, false))
        );
    }
}

/// The report a driver would have written: the failing sample judged by default gates.
fn failing_report(at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    // A window sample without stage totals: judged as a window.
    let gates = GateConfig {
        judgment: rollout_tui::domain::health::Judgment::Window,
        ..GateConfig::default()
    };
    evaluate(&failing_sample(at, 0), &gates, at).to_json()
}

/// `checkout-v3`: advanced to 5 %, then rolled back by the driver 6 minutes before `t0`
/// with the gate report behind it; an operator's override advance before that.
fn auto_rolled_back() -> Built {
    let mut built = Spec::new("checkout-v3", PlanPreset::Canary, t0() - mins(60))
        .version("3.0.0", "2.9.1")
        .step(
            Action::Overridden {
                action: Box::new(Action::Advance),
                risks: vec!["error-rate FAIL".into(), "9m of bake time skipped".into()],
                reason: "hotfix for INC-4100 cannot wait".into(),
                gate_report: Some(failing_report(t0() - mins(31))),
            },
            t0() - mins(30),
        )
        .step(
            Action::Rollback {
                reason: LONG_REASON.into(),
            },
            t0() - mins(6),
        )
        .build();
    let rollback = &mut built.events[0];
    rollback.actor = AUTO.into();
    rollback.gate_report = Some(failing_report(t0() - mins(6)));
    built
}

/// The rolled-back canary gets no traffic any more: its live gates are inconclusive.
fn silent_sample(at: chrono::DateTime<chrono::Utc>, i: usize) -> HealthSample {
    let mut s = healthy_sample(at, i);
    if let Some(c) = s.canary.as_mut() {
        c.requests = 0;
        c.errors = 0;
    }
    s
}

fn state_with_auto_rollback() -> AppState {
    let mut s = demo_state();
    add(&mut s, &auto_rolled_back());
    feed_samples(&mut s, "checkout-v3", 8, t0(), silent_sample);
    tick(&mut s, t0());
    s
}

fn open_on(mut state: AppState, id: &str, panel: Panel) -> AppState {
    open(&mut state, id);
    while state.focus != panel {
        press(&mut state, KeyCode::Tab);
    }
    state
}

// ---------------------------------------------------------------- event detail

#[test]
fn enter_opens_the_event_and_esc_returns_to_the_events() {
    let mut s = open_on(state_with_auto_rollback(), "checkout-v3", Panel::Events);
    assert_eq!(s.event_view, None);
    press(&mut s, KeyCode::Down);
    let effects = press(&mut s, KeyCode::Enter);
    assert!(effects.is_empty(), "opening an event writes nothing");
    assert_eq!(
        s.event_view,
        Some(EventView {
            at: t0() - mins(30),
            kind: EventKind::Advance,
            scroll: 0
        })
    );
    assert_eq!(
        s.open_event().map(|(i, e)| (i, e.kind)),
        Some((1, EventKind::Advance)),
        "the second event, the override, is open"
    );
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    assert_eq!(
        s.event_view.map(|v| v.scroll),
        Some(2),
        "arrows scroll the text"
    );
    press(&mut s, KeyCode::Up);
    assert_eq!(s.event_view.map(|v| v.scroll), Some(1));
    // A newer event arriving meanwhile does not change what is open.
    let mut newer = auto_rolled_back();
    let mut note = newer.events[0].clone();
    note.at = t0() - mins(1);
    note.kind = EventKind::Decision;
    newer.events.insert(0, note);
    add(&mut s, &newer);
    assert_eq!(
        s.open_event().map(|(i, e)| (i, e.kind)),
        Some((2, EventKind::Advance))
    );
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.event_view, None, "Esc closes the event");
    assert_eq!(s.screen, Screen::Detail, "... and stays in the detail view");
    assert_eq!(s.focus, Panel::Events);
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.screen, Screen::Overview);
}

#[test]
fn enter_on_another_panel_opens_no_event() {
    let mut s = open_on(state_with_auto_rollback(), "checkout-v3", Panel::Users);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.event_view, None);
}

#[test]
fn event_detail_of_a_driver_rollback() {
    let mut s = open_on(state_with_auto_rollback(), "checkout-v3", Panel::Events);
    press(&mut s, KeyCode::Enter);
    snap("event_detail_auto_rollback", &s);
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(small.contains(AUTO), "{small}");
    assert!(
        small.contains("2026-03-01 08:54:00 UTC (6m00s ago)"),
        "{small}"
    );
    assert!(small.contains("↓"), "the cut says there is more: {small}");
    // Scrolled to the end, the end of the reason and the gates are there to read.
    for _ in 0..40 {
        press(&mut s, KeyCode::Down);
    }
    let end = screen_text(&draw(&s, 80, 24, false));
    assert!(!end.contains("more ─"), "nothing is left below: {end}");
    assert!(end.contains("↑"), "it says what is above: {end}");
    assert!(end.contains("✖ FAIL error-rate"), "{end}");
    assert!(end.contains("observed"), "{end}");
    let wide = screen_text(&draw(&s, 200, 60, false));
    assert!(wide.contains("END-OF-REASON"), "{wide}");
}

#[test]
fn event_detail_of_an_override() {
    let mut s = open_on(state_with_auto_rollback(), "checkout-v3", Panel::Events);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    snap("event_detail_override", &s);
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(small.contains("override: error-rate FAIL"), "{small}");
    assert!(small.contains("rolloutPercentage"), "{small}");
}

#[test]
fn stored_text_in_an_event_is_escaped() {
    let mut built = auto_rolled_back();
    built.events[0].reason = Some("clear\u{1b}[2J screen".into());
    let mut s = demo_state();
    add(&mut s, &built);
    let mut s = open_on(s, "checkout-v3", Panel::Events);
    press(&mut s, KeyCode::Enter);
    let text = screen_text(&draw(&s, 200, 60, false));
    assert!(text.contains(r"clear\x1b[2J screen"), "{text}");
}

// ---------------------------------------------------------------- decision card

#[test]
fn the_last_automatic_decision_stays_as_a_card_until_dismissed() {
    let mut s = open_on(state_with_auto_rollback(), "checkout-v3", Panel::Timeline);
    // Live health is inconclusive now (the canary gets no traffic), yet the card holds
    // the evidence the driver acted on.
    let entry = s.selected_entry().unwrap();
    assert_ne!(
        entry.health.verdict(),
        Some(rollout_tui::domain::health::Verdict::Fail)
    );
    assert!(s.decision_card(entry).is_some());
    snap("decision_card", &s);
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(small.contains("AUTO ROLLBACK · 08:54:00 UTC"), "{small}");
    assert!(small.contains("✖ FAIL"), "{small}");

    ch(&mut s, 'c');
    assert!(s.decision_card(s.selected_entry().unwrap()).is_none());
    let after = screen_text(&draw(&s, 80, 24, false));
    assert!(!after.contains("AUTO ROLLBACK"), "{after}");

    // Dismissal is per rollout: another rollout's decision is untouched...
    assert_eq!(
        s.dismissed_cards.keys().collect::<Vec<_>>(),
        vec!["checkout-v3"]
    );
    // ... and per event: a newer decision brings the card back.
    let mut newer = auto_rolled_back();
    let mut decision = newer.events[0].clone();
    decision.kind = EventKind::Decision;
    decision.at = t0() - mins(1);
    decision.reason = Some("operator declined stage 2: holding".into());
    newer.events.insert(0, decision);
    add(&mut s, &newer);
    let card = s.decision_card(s.selected_entry().unwrap()).map(|e| e.at);
    assert_eq!(card, Some(t0() - mins(1)));
}

#[test]
fn dismissing_without_a_card_says_so() {
    let mut s = open_on(demo_state(), "current", Panel::Timeline);
    ch(&mut s, 'c');
    assert!(s.dismissed_cards.is_empty());
    assert!(
        s.toast
            .as_ref()
            .is_some_and(|t| t.text.contains("no automatic decision")),
        "{:?}",
        s.toast
    );
}

// ---------------------------------------------------------------- header, cut panels

#[test]
fn a_long_rollback_reason_wraps_in_the_header() {
    let mut s = state_with_auto_rollback();
    open(&mut s, "checkout-v3");
    ch(&mut s, 'c');
    snap("header_long_rollback_reason", &s);
    let wide = screen_text(&draw(&s, 200, 60, false));
    assert!(wide.contains("END-OF-REASON"), "{wide}");
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(
        small.contains("INC-4127"),
        "the reason wraps onto more lines: {small}"
    );
}

/// `search-ranking-v2` halted by the driver two minutes ago: its card and the failing
/// live gates share the 80x24 screen, so the gates list is cut.
fn state_with_auto_halt() -> AppState {
    let mut built = Spec::new(
        "search-ranking-v2",
        PlanPreset::Tiers,
        t0() - chrono::Duration::hours(20),
    )
    .version("2.0.0", "1.9.4")
    .step(
        Action::Pause {
            reason: Some("auto-halt: canary error rate 2.10 % > 1.00 %".into()),
        },
        t0() - mins(2),
    )
    .build();
    built.events[0].actor = AUTO.into();
    built.events[0].gate_report = Some(failing_report(t0() - mins(2)));
    let mut s = empty_state();
    add(&mut s, &built);
    feed_samples(&mut s, "search-ranking-v2", 8, t0(), failing_sample);
    tick(&mut s, t0());
    s
}

#[test]
fn a_cut_gates_list_puts_failing_first_and_says_how_much_is_below() {
    let s = open_on(state_with_auto_halt(), "search-ranking-v2", Panel::Timeline);
    snap("gates_cut_failing_first", &s);
    let small = screen_text(&draw(&s, 80, 24, false));
    assert!(small.contains("AUTO HALT"), "{small}");
    let fail = small
        .find("✖ FAIL error-rate ")
        .expect("a failing gate is on screen");
    if let Some(pass) = small.find("✔ pass freshness") {
        assert!(fail < pass, "failing gates come first: {small}");
    }
    assert!(
        small.contains(" more ┘"),
        "the cut says how much is below: {small}"
    );
}

#[test]
fn a_source_error_shared_by_gates_is_shown_once() {
    let mut s = demo_state();
    feed_samples(&mut s, "ocr-fallback", 2, t0(), |at, _| outage_sample(at));
    let s = open_on(s, "ocr-fallback", Panel::Timeline);
    let wide = screen_text(&draw(&s, 200, 60, false));
    assert!(
        wide.contains("? wait min-requests, error-rate, p99-vs-stable, error-rate-vs-stable"),
        "the gates that say the same share one line: {wide}"
    );
    assert_eq!(
        wide.matches("inconclusive: no canary data").count(),
        1,
        "the error is not repeated per gate: {wide}"
    );
}

#[test]
fn a_cut_users_list_says_how_many_more() {
    let mut s = empty_state();
    add(&mut s, &huge_canary());
    let s = open_on(s, "huge-canary", Panel::Users);
    let small = screen_text(&draw(&s, 80, 24, false));
    let cut = small
        .lines()
        .find_map(|l| {
            l.split("↓ ")
                .nth(1)?
                .split(" more")
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no ↓ N more:\n{small}"));
    let shown = small
        .lines()
        .filter(|l| l.starts_with("│▶ ") || l.starts_with("│  "))
        .count();
    assert_eq!(cut + shown, 10_000, "{small}");
}
