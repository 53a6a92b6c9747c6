//! Snapshots of the detail view's stage timeline at 80x24 (the compact line) and 200x60
//! (the step line over time, its event markers and the error-rate and p99 charts), drawn
//! with `TestBackend` from deterministic states (`support/cockpit_fixture.rs`), without
//! colour: the shapes, letters and legend must read on their own.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use cockpit_fixture::*;
use crossterm::event::KeyCode;
use rollout_tui::app::state::{AppState, Panel};
use rollout_tui::domain::actions::{Action, UserList};
use rollout_tui::domain::rollout::PlanPreset;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

/// Snapshots `state` at 80x24 and 200x60 as `{name}_{w}x{h}`; returns the texts.
fn snap(name: &str, state: &AppState) -> [String; 2] {
    SIZES.map(|(w, h)| {
        let text = screen_text(&draw(state, w, h, false));
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
        text
    })
}

fn open_timeline(mut state: AppState, id: &str) -> AppState {
    open(&mut state, id);
    while state.focus != Panel::Timeline {
        press(&mut state, KeyCode::Tab);
    }
    state
}

fn state_with(built: &Built) -> AppState {
    let mut s = empty_state();
    add(&mut s, built);
    s
}

/// `checkout`: the canary plan, created 08:00, 5 % at 08:10, 25 % at 08:30, halted at
/// 08:40 and resumed at 08:48; its canary fails the error-rate gate for the last 3 minutes.
fn mid_plan() -> AppState {
    let b = Spec::new("checkout", PlanPreset::Canary, t0() - mins(60))
        .version("3.2.0", "3.1.9")
        .users(&["qa-team-1"])
        .step(
            Action::AddUsers {
                list: UserList::Canary,
                keys: vec!["beta@example.com".into()],
            },
            t0() - mins(55),
        )
        .step(Action::Advance, t0() - mins(50))
        .step(Action::Advance, t0() - mins(30))
        .step(
            Action::Pause {
                reason: Some("latency review".into()),
            },
            t0() - mins(20),
        )
        .step(Action::Resume, t0() - mins(12))
        .build();
    let mut s = state_with(&b);
    feed_samples(&mut s, "checkout", 40, t0(), |at, i| {
        if at < t0() - mins(3) {
            healthy_sample(at, i)
        } else {
            failing_sample(at, i)
        }
    });
    open_timeline(s, "checkout")
}

/// `payments`: 5 % at 08:15, 25 % at 08:30, rolled back at 08:50.
fn rolled_back() -> AppState {
    let b = Spec::new("payments", PlanPreset::Canary, t0() - mins(50))
        .step(Action::Advance, t0() - mins(45))
        .step(Action::Advance, t0() - mins(30))
        .step(
            Action::Rollback {
                reason: "error spike".into(),
            },
            t0() - mins(10),
        )
        .build();
    let mut s = state_with(&b);
    feed_samples(&mut s, "payments", 40, t0(), |at, i| {
        if at < t0() - mins(10) {
            failing_sample(at, i)
        } else {
            healthy_sample(at, i)
        }
    });
    open_timeline(s, "payments")
}

/// `current` at 5 %, its document alone: no events loaded, no samples yet.
fn no_events() -> AppState {
    let mut s = empty_state();
    upsert(&mut s, current_at_5().stored);
    tick(&mut s, t0());
    open_timeline(s, "current")
}

#[test]
fn mid_plan_with_events_and_a_failing_gate() {
    let [small, wide] = snap("timeline_mid_plan", &mid_plan());
    // 80x24: one line of stages with entry times, the current one with its time so far.
    assert!(
        small.contains("canary users 08:00 → 5% 08:10 → [25% 08:30, 30m] → 50% ≥09:00"),
        "\n{small}"
    );
    assert!(small.contains("✖ FAIL error-rate"), "\n{small}");
    // 200x60: the markers, now, the may-advance time, the charts' units and time span.
    for needle in [
        "A advance",
        "H halt",
        "R resume",
        "now 09:00",
        "≥09:00",
        "08:30 30m",
        "1.00%┤",
        "ms┤",
        "· stable",
    ] {
        assert!(wide.contains(needle), "no {needle:?}\n{wide}");
    }
    let marks: String = wide
        .lines()
        .find(|l| l.contains('└') && l.contains('A'))
        .expect("a marker row")
        .chars()
        .filter(|c| "AHRXo".contains(*c))
        .collect();
    assert_eq!(
        marks, "ooAAHR",
        "create, add user, two advances, halt, resume"
    );
}

#[test]
fn rolled_back_drops_to_zero_with_a_marker() {
    let [small, wide] = snap("timeline_rolled_back", &rolled_back());
    assert!(
        small.contains("25% 08:30 → ✖ rolled back 08:50 → 0%"),
        "\n{small}"
    );
    assert!(wide.contains("✖ 08:50 10m"), "\n{wide}");
    assert!(
        wide.contains('┓') && wide.contains('┗'),
        "the line drops\n{wide}"
    );
    assert!(
        !wide.contains('≥'),
        "nothing is planned after a rollback\n{wide}"
    );
    assert!(!wide.contains("now 09:00"), "the axis ends now\n{wide}");
    let marks = wide
        .lines()
        .find(|l| l.contains('└') && l.contains('X'))
        .expect("a rollback marker");
    assert!(marks.contains('A'), "\n{marks}");
}

#[test]
fn no_events_still_draws_the_stage() {
    let [small, wide] = snap("timeline_no_events", &no_events());
    assert!(small.contains("[5% 08:56, 4m] → 25% ≥09:06"), "\n{small}");
    assert!(wide.contains("≥09:06 30m"), "\n{wide}");
    assert!(wide.contains("no events loaded"), "\n{wide}");
}

/// However small the panel, the timeline never collapses to nothing.
#[test]
fn small_panels_keep_the_compact_line() {
    let s = mid_plan();
    for (w, h) in [(60, 16), (80, 24), (100, 30), (120, 40)] {
        let text = screen_text(&draw(&s, w, h, false));
        assert!(
            text.contains("[25% 08:30") || text.contains("08:30 30m"),
            "{w}x{h}\n{text}"
        );
    }
}

/// A stage name another tool stored reaches the timeline escaped, in both forms.
#[test]
fn stage_names_are_drawn_escaped() {
    let mut b = current_at_5();
    b.stored.fields["plan"]["stages"][4]["name"] = serde_json::json!("beta\u{1b}[2J\u{202e}");
    let s = open_timeline(state_with(&b), "current");
    for (w, h) in SIZES {
        let text = screen_text(&draw(&s, w, h, false));
        assert!(!text.contains('\u{1b}'), "{w}x{h}\n{text}");
        assert!(!text.contains('\u{202e}'), "{w}x{h}\n{text}");
        assert!(
            text.contains(r"beta\x1b[2J\u{202e}"),
            "{w}x{h}: the name, escaped\n{text}"
        );
    }
}

/// A minimum another tool stored beyond the calendar draws (the plan runs off the axis).
#[test]
fn a_minimum_beyond_the_calendar_draws() {
    let mut b = current_at_5();
    b.stored.fields["plan"]["stages"][2]["minDuration"] = serde_json::json!(u64::MAX);
    let s = open_timeline(state_with(&b), "current");
    for (w, h) in SIZES {
        let text = screen_text(&draw(&s, w, h, false));
        assert!(text.contains("may advance in 6m00s"), "{w}x{h}\n{text}");
    }
}
