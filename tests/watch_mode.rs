//! The read-only `watch` wall screen: no key can write, the layout at 80x24 and
//! 240x67, and end to end in tmux (rotation, live changes from another process,
//! write keys ignored with the store byte-for-byte unchanged).

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use cockpit_fixture::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollout_tui::app::state::{AppState, Wall};
use rollout_tui::app::update::{Effect, Msg, update};
use rollout_tui::ui::{Theme, render};

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

fn text(state: &AppState, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| render(state, Theme::with_color(false), f))
        .unwrap();
    let buf = t.backend().buffer().clone();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn any_key() -> impl Strategy<Value = KeyEvent> {
    let code = prop_oneof![
        any::<char>().prop_map(KeyCode::Char),
        Just(KeyCode::Enter),
        Just(KeyCode::Esc),
        Just(KeyCode::Tab),
        Just(KeyCode::Backspace),
        Just(KeyCode::Up),
        Just(KeyCode::Down),
        Just(KeyCode::Left),
        Just(KeyCode::Right),
        (1u8..13).prop_map(KeyCode::F),
    ];
    let mods = prop_oneof![
        Just(KeyModifiers::NONE),
        Just(KeyModifiers::SHIFT),
        Just(KeyModifiers::ALT)
    ];
    (code, mods).prop_map(|(c, m)| KeyEvent::new(c, m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever is typed, watch mode asks for no write, no dialog, nothing but quit.
    #[test]
    fn no_key_sequence_writes(keys in prop::collection::vec(any_key(), 1..60)) {
        let mut s = wall_state();
        for k in keys {
            for effect in update(&mut s, Msg::Key(k)) {
                prop_assert!(matches!(effect, Effect::Quit), "watch mode emitted {effect:?}");
            }
            prop_assert!(s.dialog.is_none());
            prop_assert!(s.rollouts.iter().all(|e| e.auto.is_none()));
            if s.quit { break; }
        }
    }
}

#[test]
fn write_keys_of_the_cockpit_do_nothing_in_watch_mode() {
    let mut s = wall_state();
    for c in [
        'a', 'p', '%', 'R', 'P', 'A', 'u', 'i', 'd', 'x', 'e', 'y', '/',
    ] {
        assert!(
            update(
                &mut s,
                Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
            )
            .is_empty(),
            "{c}"
        );
        assert!(
            update(
                &mut s,
                Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
            )
            .is_empty()
        );
    }
    assert!(s.dialog.is_none() && !s.quit);
    assert_eq!(
        update(
            &mut s,
            Msg::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE))
        ),
        vec![Effect::Quit]
    );
}

#[test]
fn rotation_follows_the_clock_and_pauses() {
    let mut s = wall_state();
    update(
        &mut s,
        Msg::Tick(t0() + mins(0) + chrono::Duration::seconds(14)),
    );
    assert_eq!(s.wall.as_ref().unwrap().index, 0);
    update(&mut s, Msg::Tick(t0() + chrono::Duration::seconds(15)));
    assert_eq!(s.wall.as_ref().unwrap().index, 1);
    update(
        &mut s,
        Msg::Key(KeyEvent::new(KeyCode::Char(' '), KeyModifiers::NONE)),
    );
    update(&mut s, Msg::Tick(t0() + chrono::Duration::seconds(60)));
    assert_eq!(s.wall.as_ref().unwrap().index, 1, "paused");
    update(
        &mut s,
        Msg::Key(KeyEvent::new(KeyCode::Right, KeyModifiers::NONE)),
    );
    assert_eq!(s.wall.as_ref().unwrap().index, 2);
}

#[test]
fn history_stays_bounded_over_a_long_run() {
    let mut s = wall_state();
    // A day of samples every 15 s.
    feed_samples(
        &mut s,
        "current",
        5_760,
        t0() + chrono::Duration::days(1),
        healthy_sample,
    );
    let e = s
        .rollouts
        .iter()
        .find(|e| e.stored.id == "current")
        .unwrap();
    assert_eq!(e.health.history.len(), rollout_tui::app::state::HISTORY_LEN);
}

#[test]
fn wall_layout_80x24() {
    let screen = text(&wall_state(), 80, 24);
    assert!(screen.contains("READ-ONLY"));
    for id in ["current", "search-ranking-v2", "ocr-fallback"] {
        assert!(screen.contains(id), "{id} on a grid at 80x24:\n{screen}");
    }
    insta::assert_snapshot!("wall_80x24", screen);
}

#[test]
fn wall_layout_240x67() {
    let screen = text(&wall_state(), 240, 67);
    assert!(
        screen.contains("READ-ONLY") && screen.contains("✖ FAIL"),
        "{screen}"
    );
    insta::assert_snapshot!("wall_240x67", screen);
}

#[test]
fn wall_rotates_when_tiles_do_not_fit_and_flags_stale_data() {
    let mut s = wall_state();
    let first = text(&s, 40, 14);
    // Tiles, by their titles (the summary line above them names failing rollouts too).
    let shown = |screen: &str| {
        ["current", "search-ranking-v2", "ocr-fallback"]
            .into_iter()
            .filter(|id| {
                screen
                    .lines()
                    .any(|l| l.starts_with(['╭', '┏', '┌', '╔']) && l.contains(&format!(" {id} ")))
            })
            .count()
    };
    assert_eq!(shown(&first), 1, "one tile at a time:\n{first}");
    update(&mut s, Msg::Tick(t0() + chrono::Duration::seconds(15)));
    let second = text(&s, 40, 14);
    assert_ne!(first, second, "rotated");
    // Ten minutes without a sample: STALE.
    update(&mut s, Msg::Tick(t0() + mins(10)));
    let stale = text(&s, 80, 24);
    assert!(stale.contains("STALE"), "{stale}");
}

/// End to end: `watch` starts, rotates, shows another process's rollback (the time is
/// printed), and no key sent to it changes the store.
#[test]
fn watch_end_to_end_in_tmux() {
    let Some(t) = tmux::Tmux::start("watch_e2e", 40, 14) else {
        return;
    };
    const IDS: [&str; 3] = ["current", "search-ranking-v2", "ocr-fallback"];
    // Seed the demo store without opening the demo cockpit: create the three rollouts via the CLI.
    for (id, plan) in IDS.into_iter().zip(["canary", "tiers", "cohorts"]) {
        let out = t.cli(&[
            "create",
            id,
            "--version",
            "1.0.0",
            "--plan",
            plan,
            "--canary-user",
            "alec@getaifactory.com",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before = (
        t.cli(&["status", "--json"]).stdout,
        t.cli(&["events", "current", "--json"]).stdout,
    );
    t.launch("", "watch --rotate 1");
    // The first frame may come before the store's rollouts: wait for one of them.
    let (screen, _) = t.wait_until("the wall with a rollout", tmux::WAIT, |s| {
        s.contains("READ-ONLY") && IDS.iter().any(|id| s.contains(id))
    });
    let first_id = IDS.into_iter().find(|id| screen.contains(id)).unwrap();
    // Rotation: another rollout takes the screen.
    let (_, took) = t.wait_until("another rollout to rotate in", tmux::WAIT, |s| {
        !s.contains(first_id) && IDS.iter().any(|id| s.contains(id))
    });
    println!("watch --rotate 1: the next rollout after {took:?}");
    // Every write key the cockpit knows, and confirmations, sent to the wall, then `q`.
    // Keys are read in order and quitting waits for writes in flight, so once the process
    // has exited every key before `q` has been handled and anything it wrote is stored.
    // (Had a key opened a dialog, `q` would land in it and the wall would not exit.)
    for k in [
        "a", "y", "p", "%", "5", "Enter", "R", "x", "Enter", "P", "A", "u", "i", "d", "Enter", "y",
        "q",
    ] {
        t.keys(&[k]);
    }
    assert_eq!(t.wait_exit(tmux::WAIT), 0);
    let after = (
        t.cli(&["status", "--json"]).stdout,
        t.cli(&["events", "current", "--json"]).stdout,
    );
    assert_eq!(before, after, "watch mode changed the store");

    // Again without rotation, so `current` stays on screen: another process's rollback
    // must appear.
    t.launch("", "watch --rotate 3600");
    t.wait_for("current", tmux::WAIT);
    let out = t.cli(&["rollback", "current", "--reason", "wall test"]);
    assert!(out.status.success());
    let rolled_back_at = Instant::now();
    t.wait_for("ROLLED-BACK", tmux::WAIT);
    println!(
        "watch: another process's rollback visible after {:?}",
        rolled_back_at.elapsed()
    );
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(tmux::WAIT), 0);
}

/// An idle wall wakes once a minute (its clock and stage times are to the minute), or sooner
/// when data is about to turn stale or the next rollout is due in the rotation.
#[test]
fn an_idle_wall_wakes_once_a_minute_or_when_data_turns_stale() {
    let mut s = wall_state();
    s.wall.as_mut().unwrap().paused = true;
    s.wall.as_mut().unwrap().stale_after = std::time::Duration::from_secs(3600);
    s.now = t0() + chrono::Duration::seconds(10);
    assert_eq!(
        s.next_clock_change(),
        Some(t0() + chrono::Duration::seconds(60)),
        "the next minute"
    );
    // The newest sample is at t0: with a 20 s limit it turns stale at t0 + 20 s.
    s.wall.as_mut().unwrap().stale_after = std::time::Duration::from_secs(20);
    let at = s.next_clock_change().unwrap();
    assert_eq!(
        at.timestamp(),
        (t0() + chrono::Duration::seconds(20)).timestamp()
    );
    // Rotation due before either.
    let w = s.wall.as_mut().unwrap();
    w.paused = false;
    w.last_rotate = t0();
    w.rotate_every = std::time::Duration::from_secs(15);
    assert_eq!(
        s.next_clock_change(),
        Some(t0() + chrono::Duration::seconds(15))
    );
}
