//! The overview as triage: rollouts needing attention first, stable beside canary on
//! every row, a preview of the selected rollout below the list, columns that give way
//! on narrow screens, and a plain notice below the smallest usable size. Drawn with
//! `TestBackend` from deterministic states (`support/cockpit_fixture.rs`).

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use chrono::Duration;
use cockpit_fixture::*;
use crossterm::event::KeyCode;
use ratatui::style::Modifier;
use rollout_tui::app::state::{AppState, Dialog};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::health::{HealthSample, SideStats};
use rollout_tui::domain::rollout::PlanPreset;
use rollout_tui::present::{Attention, SortKey};
use rollout_tui::ui::{MIN_HEIGHT, MIN_WIDTH};

/// The screen as text (no colour), one line per row.
fn screen(state: &AppState, width: u16, height: u16) -> String {
    screen_text(&draw(state, width, height, false))
}

fn ids(state: &AppState) -> Vec<String> {
    state
        .visible()
        .iter()
        .map(|&i| state.rollouts[i].id().to_string())
        .collect()
}

fn selected_id(state: &AppState) -> String {
    state
        .selected_entry()
        .expect("a selection")
        .id()
        .to_string()
}

/// Stable traffic as usual; the canary answers no request at all.
fn silent_canary_sample(at: chrono::DateTime<chrono::Utc>, i: usize) -> HealthSample {
    let mut s = healthy_sample(at, i);
    s.canary = Some(SideStats {
        requests: 0,
        errors: 0,
        newest_point_at: Some(at - Duration::seconds(5)),
        ..SideStats::default()
    });
    s
}

/// `payments-v2`: the canary plan, at 5 % since 20 minutes before `t0`.
fn payments() -> Built {
    Spec::new("payments-v2", PlanPreset::Canary, t0() - mins(60))
        .step(Action::Advance, t0() - mins(20))
        .build()
}

/// `billing-v3`: rolled back 3 minutes before `t0`, from 5 %.
fn billing() -> Built {
    Spec::new("billing-v3", PlanPreset::Canary, t0() - mins(90))
        .step(Action::Advance, t0() - mins(30))
        .step(
            Action::Rollback {
                reason: "checkout 500s on the canary".into(),
            },
            t0() - mins(3),
        )
        .build()
}

/// `legacy-api`: rolled back five hours before `t0`: long enough not to head the list.
fn legacy() -> Built {
    Spec::new("legacy-api", PlanPreset::Canary, t0() - Duration::hours(9))
        .step(Action::Advance, t0() - Duration::hours(8))
        .step(
            Action::Rollback {
                reason: "memory leak".into(),
            },
            t0() - Duration::hours(5),
        )
        .build()
}

/// `checkout`: paused at 5 % twelve minutes before `t0`.
fn checkout() -> Built {
    Spec::new("checkout", PlanPreset::Canary, t0() - mins(80))
        .step(Action::Advance, t0() - mins(40))
        .step(
            Action::Pause {
                reason: Some("waiting for the dashboard".into()),
            },
            t0() - mins(12),
        )
        .build()
}

/// The three demo rollouts and four more: one of every kind of trouble, and an old
/// rollback. The clock ends at `t0`; the cursor is where the first rollout left it.
fn triage_state() -> AppState {
    let mut s = demo_state();
    for b in [payments(), billing(), legacy(), checkout()] {
        add(&mut s, &b);
    }
    feed_samples(&mut s, "payments-v2", 32, t0(), silent_canary_sample);
    feed_samples(&mut s, "checkout", 32, t0(), healthy_sample);
    tick(&mut s, t0());
    s
}

const TRIAGE_ORDER: [&str; 7] = [
    "billing-v3",
    "search-ranking-v2",
    "payments-v2",
    "checkout",
    "current",
    "legacy-api",
    "ocr-fallback",
];

// ---------------------------------------------------------------- order

#[test]
fn attention_comes_first_in_the_documented_order() {
    let s = triage_state();
    assert_eq!(ids(&s), TRIAGE_ORDER);
    let groups: Vec<Attention> = s
        .visible()
        .iter()
        .map(|&i| s.attention(&s.rollouts[i]))
        .collect();
    assert_eq!(
        groups,
        [
            Attention::RolledBack,
            Attention::Failing,
            Attention::NoTraffic,
            Attention::Paused,
            Attention::Quiet,
            Attention::Quiet,
            Attention::Quiet,
        ]
    );
}

#[test]
fn the_sort_key_cycles_and_is_named_in_the_list_title() {
    let mut s = triage_state();
    assert_eq!(s.sort, SortKey::Attention);
    assert!(screen(&s, 120, 40).contains("sort: attention (s)"));
    ch(&mut s, 's');
    assert_eq!(s.sort, SortKey::Id);
    let mut by_id = TRIAGE_ORDER.map(String::from).to_vec();
    by_id.sort();
    assert_eq!(ids(&s), by_id);
    assert!(screen(&s, 120, 40).contains("sort: id (s)"));
    ch(&mut s, 's');
    assert_eq!(s.sort, SortKey::Updated);
    // Most recently changed first: the rollback 3 minutes ago; the untouched 20-hour-old
    // rollout last.
    assert_eq!(ids(&s)[0], "billing-v3");
    assert_eq!(
        ids(&s).last().map(String::as_str),
        Some("search-ranking-v2")
    );
    ch(&mut s, 's');
    assert_eq!(s.sort, SortKey::Attention);
    assert_eq!(ids(&s), TRIAGE_ORDER);
}

#[test]
fn the_cursor_follows_its_rollout_when_the_order_changes() {
    let mut s = triage_state();
    select(&mut s, "ocr-fallback");
    let before = s.selected;
    ch(&mut s, 's');
    assert_eq!(selected_id(&s), "ocr-fallback", "after the sort key");
    assert_ne!(s.selected, before, "the row moved, and the cursor with it");
    ch(&mut s, 's');
    ch(&mut s, 's');
    assert_eq!(selected_id(&s), "ocr-fallback");
    // `current` starts failing: it moves up past the cursor, which stays on its rollout.
    let pos_current = ids(&s).iter().position(|id| id == "current").unwrap();
    feed_samples(&mut s, "current", 40, t0() + mins(10), failing_sample);
    assert!(ids(&s).iter().position(|id| id == "current").unwrap() < pos_current);
    assert_eq!(selected_id(&s), "ocr-fallback", "after a re-sort by health");
    // A key acts on the rollout under the cursor.
    ch(&mut s, 'R');
    assert!(matches!(&s.dialog, Some(Dialog::Rollback { id, .. }) if id == "ocr-fallback"));
}

#[test]
fn n_jumps_to_the_next_rollout_needing_attention_and_wraps() {
    let mut s = triage_state();
    select(&mut s, "current");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "billing-v3", "wraps to the top");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "search-ranking-v2");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "payments-v2");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "checkout");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "billing-v3", "quiet rollouts are skipped");
    // Sorted by id the jumps follow the list as shown.
    ch(&mut s, 's');
    select(&mut s, "checkout");
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "payments-v2");
}

#[test]
fn n_says_so_when_nothing_needs_attention() {
    let mut s = empty_state();
    add(&mut s, &current());
    feed_samples(&mut s, "current", 8, t0(), healthy_sample);
    ch(&mut s, 'n');
    assert_eq!(selected_id(&s), "current");
    let toast = s.toast.as_ref().expect("a message");
    assert!(
        toast.text.contains("no rollout needs attention"),
        "{toast:?}"
    );
}

#[test]
fn a_driver_waiting_for_a_yes_puts_its_rollout_under_failing_ones() {
    use rollout_tui::app::update::{Msg, update};
    use rollout_tui::domain::progression::{Decision, NextStage};
    use rollout_tui::domain::units::Percent;
    use rollout_tui::engine::DriverUpdate;
    use rollout_tui::engine::driver::{LeaseState, Step};
    use rollout_tui::store::Lease;

    let mut s = triage_state();
    select(&mut s, "ocr-fallback");
    ch(&mut s, 'A');
    let next = NextStage {
        index: 2,
        name: "25%".into(),
        percent: Percent::from_hundredths(2_500).unwrap(),
        because: None,
    };
    update(
        &mut s,
        Msg::Engine(EngineEvent::Driver {
            id: "ocr-fallback".into(),
            update: DriverUpdate {
                lease: LeaseState::Held(Lease {
                    rollout_id: "ocr-fallback".into(),
                    holder: "me@host#1".into(),
                    acquired_at: t0(),
                    expires_at: t0() + Duration::seconds(30),
                }),
                decision: Decision::AwaitConfirmation(next.clone()),
                step: Step::AskConfirmation(next),
                acted: None,
                evidence: vec![],
            },
        }),
    );
    let e = s.entry("ocr-fallback").unwrap();
    assert_eq!(s.attention(e), Attention::AwaitingConfirmation);
    assert_eq!(
        ids(&s),
        [
            "billing-v3",
            "search-ranking-v2",
            "ocr-fallback",
            "payments-v2",
            "checkout",
            "current",
            "legacy-api",
        ]
    );
    assert_eq!(selected_id(&s), "ocr-fallback", "the cursor moved with it");
    // Behind the question, the row says what it waits for.
    press(&mut s, KeyCode::Esc);
    let text = screen(&s, 200, 60);
    let row = text
        .lines()
        .find(|l| l.contains("ocr-fallback "))
        .expect("the row");
    assert!(row.contains("✔ confirm?"), "{row}");
}

// ---------------------------------------------------------------- no traffic

#[test]
fn a_silent_canary_is_flagged_no_traffic_not_a_quiet_wait() {
    let s = triage_state();
    let text = screen(&s, 200, 60);
    let row = text
        .lines()
        .find(|l| l.contains("payments-v2") && l.contains("5%"))
        .expect("the payments row");
    assert!(row.contains("✖ no traffic"), "{row}");
    assert!(!row.contains("? wait"), "{row}");
}

#[test]
fn a_canary_silent_for_less_than_the_freshness_limit_is_not_flagged() {
    let mut s = empty_state();
    add(&mut s, &payments());
    // Two minutes of silence (8 samples, 15 s apart, the first 1m45s before `t0`)
    // against the 3m limit, after traffic before.
    feed_samples(&mut s, "payments-v2", 20, t0() - mins(2), healthy_sample);
    feed_samples(&mut s, "payments-v2", 8, t0(), silent_canary_sample);
    let e = s.entry("payments-v2").unwrap();
    assert_eq!(s.attention(e), Attention::Quiet);
    // Past the limit with no new sample showing traffic: flagged.
    feed_samples(
        &mut s,
        "payments-v2",
        8,
        t0() + mins(2),
        silent_canary_sample,
    );
    let e = s.entry("payments-v2").unwrap();
    assert_eq!(s.attention(e), Attention::NoTraffic);
    // Traffic again: quiet again.
    feed_samples(&mut s, "payments-v2", 1, t0() + mins(3), healthy_sample);
    let e = s.entry("payments-v2").unwrap();
    assert_eq!(s.attention(e), Attention::Quiet);
}

/// No sample has to arrive for the flag: the overview wakes at the moment the silence
/// passes the limit (and once a minute for the stage times), and ranks the rollout then.
#[test]
fn the_overview_wakes_when_a_silence_passes_the_limit_without_a_new_sample() {
    let mut s = empty_state();
    add(&mut s, &payments());
    feed_samples(&mut s, "payments-v2", 20, t0() - mins(2), healthy_sample);
    feed_samples(&mut s, "payments-v2", 8, t0(), silent_canary_sample);
    tick(&mut s, t0());
    let e = s.entry("payments-v2").unwrap();
    assert_eq!(s.attention(e), Attention::Quiet);
    let signals = s.signals(e);
    let flips_at = signals.canary_silent_since.unwrap() + signals.freshness_limit;
    let mut wakes = 0;
    while s.attention(s.entry("payments-v2").unwrap()) != Attention::NoTraffic {
        let wake = s
            .next_clock_change()
            .expect("the overview has a next change");
        assert!(wake > s.now, "a wake in the past: {wake}");
        assert!(
            wake <= flips_at + Duration::seconds(1),
            "slept past the flip at {flips_at}: {wake}"
        );
        tick(&mut s, wake);
        wakes += 1;
        assert!(wakes < 10, "never flagged");
    }
    assert!(s.now > flips_at && s.now <= flips_at + Duration::seconds(1));
}

#[test]
fn a_metrics_outage_is_not_a_silence() {
    let mut s = empty_state();
    add(&mut s, &payments());
    feed_samples(&mut s, "payments-v2", 40, t0(), |at, _| outage_sample(at));
    let e = s.entry("payments-v2").unwrap();
    assert_eq!(s.attention(e), Attention::Quiet);
}

// ---------------------------------------------------------------- rows

#[test]
fn rows_show_stable_beside_canary_time_in_stage_and_the_last_change() {
    let s = triage_state();
    let text = screen(&s, 200, 60);
    let row = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {id} ")) || l.contains(&format!("▶{id} ")))
            .unwrap_or_else(|| panic!("no row for {id}:\n{text}"))
            .to_string()
    };
    // Error rate 0.15 % stable (30 of 20000) and 2.10 % canary (42 of 2000).
    assert!(
        row("search-ranking-v2").contains("0.15/2.10 177/214ms"),
        "{text}"
    );
    assert!(row("billing-v3").contains("rolled back 3m ago"), "{text}");
    assert!(
        row("legacy-api").contains("rolled back 5h00m ago"),
        "{text}"
    );
    assert!(row("checkout").contains("paused"), "{text}");
    assert!(row("current").contains("started 4m ago"), "{text}");
    assert!(row("ocr-fallback").contains("advanced 7h00m ago"), "{text}");
    // Time in stage: 20 minutes at 5 %.
    assert!(row("payments-v2").contains(" 20m "), "{text}");
}

#[test]
fn rolled_back_and_paused_rows_stand_out_without_colour() {
    let s = triage_state();
    let buf = draw(&s, 200, 60, false);
    let text = screen(&s, 200, 60);
    for (id, word) in [("billing-v3", "rolled-back"), ("checkout", "paused")] {
        let y = text
            .lines()
            .position(|l| l.contains(id) && l.contains(word))
            .unwrap_or_else(|| panic!("no {word} row for {id}:\n{text}")) as u16;
        let line = text.lines().nth(y as usize).unwrap();
        // The word's column: characters before it, not bytes (every one is one cell wide).
        let col = line[..line.find(word).unwrap()].chars().count() as u16;
        let cell = &buf[(col, y)];
        assert!(
            cell.modifier.contains(Modifier::BOLD) && cell.modifier.contains(Modifier::REVERSED),
            "{id}: '{word}' is not bold and reversed: {:?}",
            cell.style()
        );
    }
}

#[test]
fn ids_are_never_cut_while_the_list_fits_the_smallest_screen() {
    let s = triage_state();
    for w in [MIN_WIDTH, 70, 80, 100, 120, 160, 200] {
        let text = screen(&s, w, 40);
        for id in TRIAGE_ORDER {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("│ {id} "))
                        || l.starts_with(&format!("│▶{id} "))),
                "{w} columns: {id} is cut:\n{text}"
            );
        }
    }
}

#[test]
fn on_the_smallest_screen_the_list_keeps_its_rows_before_the_preview() {
    let s = demo_state();
    let text = screen(&s, MIN_WIDTH, MIN_HEIGHT);
    for id in ["current", "ocr-fallback", "search-ranking-v2"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("│ {id} ")) || l.starts_with(&format!("│▶{id} "))),
            "{id} is not listed:\n{text}"
        );
    }
    assert!(!text.contains("STABLE"), "no room for a preview:\n{text}");
    // With room to spare, the preview is there.
    assert!(screen(&s, 80, 24).contains("STABLE"));
}

#[test]
fn a_long_list_says_how_many_more_rows_are_below() {
    let mut s = empty_state();
    for n in 0..30 {
        let b = Spec::new(&format!("svc-{n:02}"), PlanPreset::Canary, t0() - mins(60)).build();
        add(&mut s, &b);
    }
    tick(&mut s, t0());
    let text = screen(&s, 80, 24);
    assert!(text.contains("more below"), "{text}");
    let shown = text
        .lines()
        .filter(|l| l.starts_with("│ svc-") || l.starts_with("│▶svc-"))
        .count();
    assert!(
        text.contains(&format!("↓ {} more below", 30 - shown)),
        "{text}"
    );
    // At the bottom of the list, the rows above are counted instead.
    for _ in 0..29 {
        press(&mut s, KeyCode::Down);
    }
    let text = screen(&s, 80, 24);
    assert!(text.contains("▶svc-29"), "{text}");
    assert!(text.contains("more above"), "{text}");
}

// ---------------------------------------------------------------- snapshots

#[test]
fn sorted_overview_with_preview() {
    let mut s = triage_state();
    select(&mut s, "search-ranking-v2");
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        insta::assert_snapshot!(format!("overview_triage_{w}x{h}"), screen(&s, w, h));
    }
}

#[test]
fn preview_of_a_silent_canary() {
    let mut s = triage_state();
    select(&mut s, "payments-v2");
    let text = screen(&s, 120, 40);
    assert!(
        text.contains("NO TRAFFIC: the canary at 5% has had no requests for"),
        "{text}"
    );
    insta::assert_snapshot!("overview_no_traffic_120x40", text);
}

#[test]
fn below_the_smallest_size_the_screen_says_so_and_rollback_still_works() {
    let mut s = triage_state();
    select(&mut s, "search-ranking-v2");
    let text = screen(&s, 40, 12);
    assert!(
        text.contains(&format!("need at least {MIN_WIDTH}x{MIN_HEIGHT}")),
        "{text}"
    );
    insta::assert_snapshot!("overview_too_small_40x12", text);
    ch(&mut s, 'R');
    type_text(&mut s, "errors");
    let text = screen(&s, 40, 12);
    assert!(text.contains("ROLL BACK search-ranking-v2"), "{text}");
    assert!(text.contains("reason: errors"), "{text}");
    insta::assert_snapshot!("overview_too_small_rollback_40x12", text);
    let effects = press(&mut s, KeyCode::Enter);
    assert!(
        effects
            .iter()
            .any(|e| format!("{e:?}").contains("Rollback")),
        "Enter sends the rollback: {effects:?}"
    );
    // Exactly the smallest size draws the cockpit.
    assert!(!screen(&s, MIN_WIDTH, MIN_HEIGHT).contains("terminal too small"));
    // And q still quits.
    let mut s = triage_state();
    let effects = ch(&mut s, 'q');
    assert!(s.quit, "{effects:?}");
}
