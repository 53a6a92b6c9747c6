//! The wall's tiles (`watch`): each leads with its state in words and shapes (PASS, FAIL,
//! ROLLED BACK, STALE, NO TRAFFIC), stale data never reads as its old verdict, and
//! rotation shows where it is under a summary of every rollout. Snapshots at 80x24 and
//! 200x60, with colour and without (each snapshot lists the styled cells under the text).

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use cockpit_fixture::*;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};
use rollout_tui::app::state::{AppState, Conn, Wall};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::health::{HealthSample, SideStats};
use rollout_tui::domain::rollout::PlanPreset;
use rollout_tui::present::WallWord;
use rollout_tui::ui::Theme;

const STALE_AFTER: StdDuration = StdDuration::from_secs(180);
const COLOR: Theme = Theme::with_color(true);
const NO_COLOR: Theme = Theme::with_color(false);

fn as_wall(s: &mut AppState) {
    s.title = "rollout-tui watch".into();
    s.wall = Some(Wall {
        rotate_every: StdDuration::from_secs(15),
        index: 0,
        last_rotate: t0(),
        paused: false,
        stale_after: STALE_AFTER,
    });
}

/// At 5 % of the canary plan for 30 minutes.
fn at_five(id: &str) -> Built {
    Spec::new(id, PlanPreset::Canary, t0() - mins(120))
        .users(&["alec@getaifactory.com"])
        .step(Action::Advance, t0() - mins(30))
        .build()
}

fn checkout_failing(s: &mut AppState) {
    add(s, &at_five("checkout"));
    feed_samples(s, "checkout", 32, t0(), failing_sample);
}

fn search_rolled_back(s: &mut AppState) {
    let b = Spec::new("search", PlanPreset::Tiers, t0() - mins(600))
        .step(
            Action::Rollback {
                reason: "p99 doubled on the EU shards".into(),
            },
            t0() - mins(12),
        )
        .build();
    add(s, &b);
    feed_samples(s, "search", 32, t0(), healthy_sample);
}

fn current_passing(s: &mut AppState) {
    add(s, &current_at_5());
    feed_samples(s, "current", 32, t0(), healthy_sample);
}

/// Healthy until seven minutes ago, nothing since.
fn ocr_stale(s: &mut AppState) {
    add(s, &ocr_fallback());
    feed_samples(s, "ocr-fallback", 32, t0() - mins(7), healthy_sample);
}

/// The simulator's traffic drop: stable serves, the canary at 5 % gets nothing.
fn no_traffic_sample(at: DateTime<Utc>, i: usize) -> HealthSample {
    let mut s = healthy_sample(at, i);
    s.canary = Some(SideStats {
        requests: 0,
        errors: 0,
        p50_ms: None,
        p75_ms: None,
        p95_ms: None,
        p99_ms: None,
        newest_point_at: Some(at),
    });
    s
}

fn billing_no_traffic(s: &mut AppState) {
    add(s, &at_five("billing"));
    feed_samples(s, "billing", 32, t0(), no_traffic_sample);
}

type Scenario = fn(&mut AppState);

const TILES: [(&str, Scenario, &str); 5] = [
    ("pass", current_passing, "✔ PASS"),
    ("fail", checkout_failing, "✖ FAIL"),
    ("rolled_back", search_rolled_back, "↺ ROLLED BACK"),
    ("stale", ocr_stale, "⧖ STALE (was PASS, 7m old)"),
    ("no_traffic", billing_no_traffic, "∅ NO TRAFFIC"),
];

fn wall_of(scenarios: &[Scenario]) -> AppState {
    let mut s = empty_state();
    for scenario in scenarios {
        scenario(&mut s);
    }
    tick(&mut s, t0());
    as_wall(&mut s);
    s
}

fn style_name(s: Style) -> String {
    let mut out = Vec::new();
    if let Some(fg) = s.fg.filter(|c| *c != Color::Reset) {
        out.push(format!("fg={fg:?}"));
    }
    if let Some(bg) = s.bg.filter(|c| *c != Color::Reset) {
        out.push(format!("bg={bg:?}"));
    }
    for (m, name) in [
        (Modifier::BOLD, "bold"),
        (Modifier::REVERSED, "reversed"),
        (Modifier::DIM, "dim"),
        (Modifier::UNDERLINED, "underlined"),
    ] {
        if s.add_modifier.contains(m) {
            out.push(name.into());
        }
    }
    out.join(",")
}

/// Each row's runs of styled cells: "row 3: 1-36 fg=Green,bold".
fn styles(buf: &Buffer) -> String {
    let area = buf.area;
    let mut rows = Vec::new();
    for y in 0..area.height {
        let mut runs: Vec<(u16, u16, String)> = Vec::new();
        for x in 0..area.width {
            let name = style_name(buf[(x, y)].style());
            match runs.last_mut() {
                Some((_, end, last)) if *last == name && *end + 1 == x => *end = x,
                _ => runs.push((x, x, name)),
            }
        }
        let shown: Vec<String> = runs
            .into_iter()
            .filter(|(_, _, name)| !name.is_empty())
            .map(|(a, b, name)| format!("{a}-{b} {name}"))
            .collect();
        if !shown.is_empty() {
            rows.push(format!("row {y}: {}", shown.join("  ")));
        }
    }
    rows.join("\n")
}

fn snapshot(state: &AppState, theme: Theme, width: u16, height: u16) -> String {
    let buf = draw_with(state, width, height, theme);
    format!("{}\n-- styles --\n{}", screen_text(&buf), styles(&buf))
}

/// The summary under the top bar, its wrapped rows joined again.
fn summary_of(screen: &str) -> String {
    screen
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with(['╭', '┏', '┌', '╔']))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn theme_name(theme: Theme) -> &'static str {
    if theme != NO_COLOR {
        "color"
    } else {
        "no_color"
    }
}

#[test]
fn every_tile_leads_with_its_state_in_words_at_both_sizes_and_both_themes() {
    for (name, scenario, headline) in TILES {
        let s = wall_of(&[scenario]);
        for (w, h) in [(80, 24), (200, 60)] {
            let plain = screen_text(&draw_with(&s, w, h, NO_COLOR));
            let coloured = screen_text(&draw_with(&s, w, h, COLOR));
            assert!(plain.contains(headline), "{name} {w}x{h}:\n{plain}");
            // Colour adds nothing the words do not already say.
            assert_eq!(plain, coloured, "{name} {w}x{h}");
            for theme in [COLOR, NO_COLOR] {
                insta::assert_snapshot!(
                    format!("tile_{name}_{w}x{h}_{}", theme_name(theme)),
                    snapshot(&s, theme, w, h)
                );
            }
        }
    }
}

#[test]
fn large_tiles_chart_stable_against_canary_and_draw_the_state_in_block_letters() {
    let s = wall_of(&[checkout_failing]);
    let screen = screen_text(&draw_with(&s, 200, 60, NO_COLOR));
    assert!(
        screen.contains("error rate  • stable 0.15%  ⠿ canary 2.10%"),
        "{screen}"
    );
    assert!(screen.contains("p99  • stable"), "{screen}");
    // FAIL in 5-row block letters: the F's top bar and the ✖ glyph's first row.
    assert!(screen.contains("█   █     ███ ███ ███ █"), "{screen}");
    // The percentage, second, in block letters on the right: 5%.
    assert!(screen.contains("███ █ █"), "{screen}");
}

#[test]
fn a_stale_pass_renders_stale_and_never_pass() {
    let mut s = wall_of(&[current_passing]);
    let e = s.entry("current").unwrap();
    assert_eq!(s.wall_status(e, STALE_AFTER).word, WallWord::Pass);
    assert!(screen_text(&draw_with(&s, 80, 24, NO_COLOR)).contains("✔ PASS"));
    // At exactly the limit the data still counts.
    tick(&mut s, t0() + mins(3));
    assert!(screen_text(&draw_with(&s, 80, 24, NO_COLOR)).contains("✔ PASS"));
    tick(&mut s, t0() + mins(4));
    let e = s.entry("current").unwrap();
    let status = s.wall_status(e, STALE_AFTER);
    assert_eq!(status.word, WallWord::Stale);
    assert_eq!(status.stale.unwrap().was, WallWord::Pass);
    for (w, h) in [(80, 24), (200, 60), (40, 14)] {
        let screen = screen_text(&draw_with(&s, w, h, NO_COLOR));
        assert!(
            screen.contains("⧖ STALE (was PASS, 4m old)"),
            "{w}x{h}:\n{screen}"
        );
        assert!(!screen.contains("✔ PASS"), "{w}x{h}:\n{screen}");
        assert!(screen.contains("1 rollout: 1 STALE"), "{w}x{h}:\n{screen}");
    }
}

#[test]
fn a_store_down_past_the_limit_makes_every_tile_stale() {
    let mut s = wall_of(&[search_rolled_back, current_passing]);
    s.store_conn = Conn::Disconnected {
        since: t0() - mins(5),
        why: "database is locked".into(),
    };
    let words: Vec<_> = s
        .rollouts
        .iter()
        .map(|e| s.wall_status(e, STALE_AFTER))
        .collect();
    assert!(words.iter().all(|w| w.word == WallWord::Stale), "{words:?}");
    let screen = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
    assert!(
        screen.contains("⧖ STALE (was ROLLED BACK, 5m old)"),
        "{screen}"
    );
    assert!(screen.contains("2 rollouts: 2 STALE"), "{screen}");
}

#[test]
fn a_canary_at_a_percentage_without_traffic_is_never_pass() {
    let mut s = wall_of(&[billing_no_traffic]);
    // Even with the request minimum off, no traffic is not health.
    s.gates.min_requests = 0;
    feed_samples(&mut s, "billing", 1, t0(), no_traffic_sample);
    let e = s.entry("billing").unwrap();
    assert_eq!(s.wall_status(e, STALE_AFTER).word, WallWord::NoTraffic);
    let screen = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
    assert!(!screen.contains("PASS"), "{screen}");
    assert!(
        screen.contains("canary at 5% got no requests in 1m"),
        "{screen}"
    );
}

#[test]
fn without_colour_a_failure_differs_from_a_pass_in_words_shapes_and_reverse_video() {
    let s = wall_of(&[current_passing, checkout_failing]);
    let buf = draw_with(&s, 80, 24, NO_COLOR);
    let screen = screen_text(&buf);
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR draws no colour"
    );
    // The modifiers of the first cell of `needle` on screen.
    let cell = |needle: &str| {
        let first = needle.chars().next().unwrap().to_string();
        let area = buf.area;
        (0..area.height)
            .flat_map(|y| (0..area.width).map(move |x| (x, y)))
            .find(|&(x, y)| {
                buf[(x, y)].symbol() == first
                    && needle.chars().enumerate().all(|(i, c)| {
                        x + (i as u16) < area.width
                            && buf[(x + i as u16, y)].symbol() == c.to_string()
                    })
            })
            .map(|p| buf[p].modifier)
            .unwrap_or_else(|| panic!("{needle}:\n{screen}"))
    };
    assert!(cell("✖ FAIL").contains(Modifier::REVERSED), "{screen}");
    assert!(!cell("✔ PASS").contains(Modifier::REVERSED), "{screen}");
    // The border is a shape too: thick for the failure, rounded for the pass.
    assert!(screen.contains("┏ checkout ━"), "{screen}");
    assert!(screen.contains("╭ current ─"), "{screen}");
}

#[test]
fn rotation_shows_its_position_under_a_summary_of_every_rollout() {
    let scenarios: Vec<Scenario> = TILES.iter().map(|t| t.1).collect();
    let mut s = wall_of(&scenarios);
    let summary =
        "5 rollouts: 1 FAIL (checkout), 1 ROLLED BACK (search), 1 STALE, 1 NO TRAFFIC, 1 PASS";
    let first = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
    assert_eq!(summary_of(&first), summary, "{first}");
    assert!(first.contains(" 1/5 "), "{first}");
    for theme in [COLOR, NO_COLOR] {
        insta::assert_snapshot!(
            format!("rotation_80x24_{}", theme_name(theme)),
            snapshot(&s, theme, 80, 24)
        );
    }
    // Whichever tile rotates in, the summary stays and names the failures.
    for n in 2..=5 {
        tick(&mut s, t0() + chrono::Duration::seconds(15 * (n - 1)));
        let screen = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
        assert!(screen.contains(&format!(" {n}/5 ")), "{screen}");
        assert_eq!(summary_of(&screen), summary, "{screen}");
    }
    // At 200x60 they all fit: a grid, no position.
    let grid = wall_of(&scenarios);
    let screen = screen_text(&draw_with(&grid, 200, 60, NO_COLOR));
    assert!(!screen.contains("1/5"), "{screen}");
    for (_, _, headline) in TILES {
        assert!(screen.contains(headline), "{headline}:\n{screen}");
    }
    for theme in [COLOR, NO_COLOR] {
        insta::assert_snapshot!(
            format!("grid_200x60_{}", theme_name(theme)),
            snapshot(&grid, theme, 200, 60)
        );
    }
}

#[test]
fn an_idle_wall_wakes_when_any_rollouts_data_turns_stale() {
    let mut s = wall_of(&[current_passing]);
    add(&mut s, &at_five("checkout"));
    feed_samples(&mut s, "checkout", 1, t0() - mins(2), healthy_sample);
    tick(&mut s, t0());
    let w = s.wall.as_mut().unwrap();
    w.paused = true;
    w.stale_after = StdDuration::from_secs(150);
    // `checkout`'s only sample is 2 minutes old: it turns stale 30 s from now, before the
    // minute, although `current` is fresh.
    assert_eq!(
        s.next_clock_change(),
        Some(t0() + chrono::Duration::milliseconds(30_001))
    );
}

/// What Cloud Run serves for `current` (its document: 5 % on svc-2), as the engine's split
/// watch reports it.
fn cloud_run_serves(s: &mut AppState, stable: u8, canary: u8) {
    use rollout_tui::actuator::acting::TrafficView;
    use rollout_tui::actuator::cloud_run::LiveSplit;
    use rollout_tui::app::update::{Msg, update};
    let view = TrafficView {
        id: "current".into(),
        service: "web".into(),
        expected_canary: Ok(5),
        live: Ok(LiveSplit {
            stable_revision: "svc-1".into(),
            canary_revision: Some("svc-2".into()),
            stable_percent: stable,
            canary_percent: canary,
            others: Vec::new(),
            etag: "e1".into(),
            settling: false,
        }),
    };
    update(s, Msg::Engine(EngineEvent::Traffic(view)));
}

#[test]
fn a_split_changed_outside_rollout_tui_is_flagged_on_the_wall() {
    let mut s = wall_of(&[current_passing, checkout_failing]);
    cloud_run_serves(&mut s, 95, 5);
    let screen = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
    assert!(!screen.contains("DRIFT"), "the document's split:\n{screen}");

    cloud_run_serves(&mut s, 50, 50);
    for (w, h) in [(80, 24), (200, 60)] {
        let buf = draw_with(&s, w, h, NO_COLOR);
        let screen = screen_text(&buf);
        // In the tile, under its (still passing) health, and in the summary: the wall is
        // read from across the room.
        let said = if w < 100 {
            "DRIFT: Cloud Run serves svc-1 50 %"
        } else {
            "DRIFT: Cloud Run serves svc-1 50 % · svc-2 50 % but the rollout expects svc-1 95 % · svc-2 5 %"
        };
        assert!(screen.contains(said), "{w}x{h}:\n{screen}");
        assert!(screen.contains("✔ PASS"), "{w}x{h}:\n{screen}");
        assert!(
            summary_of(&screen).ends_with("· DRIFT: current"),
            "{w}x{h}:\n{screen}"
        );
        // Without colour it stands out in reverse video.
        let row = (0..buf.area.height)
            .find(|&y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .contains("DRIFT: Cloud Run")
            })
            .unwrap();
        let reversed = (0..buf.area.width)
            .filter(|&x| buf[(x, row)].symbol() == "D")
            .any(|x| buf[(x, row)].modifier.contains(Modifier::REVERSED));
        assert!(reversed, "{w}x{h}:\n{screen}");
    }

    // Back to the document's split: the flag goes.
    cloud_run_serves(&mut s, 95, 5);
    let screen = screen_text(&draw_with(&s, 80, 24, NO_COLOR));
    assert!(!screen.contains("DRIFT"), "{screen}");
}
