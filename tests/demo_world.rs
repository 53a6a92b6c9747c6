//! Demo honesty, end to end with the real binary in tmux: the demo keeps its clock and
//! its injected faults in its store, so `status`, an action from the command line and
//! `watch` on the demo store see the demo's time and health, and no timestamp in the store
//! comes from a different clock.

#[path = "support/tmux.rs"]
mod tmux;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tmux::{Tmux, WAIT};

const DEMO_IDS: [&str; 3] = ["current", "search-ranking-v2", "ocr-fallback"];

/// `status --json` of every rollout, by id (the config has no metrics source: any
/// `health` comes from the demo store's own simulator).
fn status_all(t: &Tmux) -> Value {
    let out = t.cli(&["status", "--json"]);
    assert!(
        out.status.success(),
        "status --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

/// Canary p99 minus stable p99 for one rollout, when both are known.
fn p99_gap(status: &Value, id: &str) -> Option<f64> {
    let r = status["rollouts"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)?;
    let p99 = |side: &str| r["health"][side]["p99Ms"].as_f64();
    Some(p99("canary")? - p99("stable")?)
}

fn wait_status(t: &Tmux, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + 2 * WAIT;
    loop {
        let s = status_all(t);
        if ok(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every event's time for one rollout, newest first.
fn event_times(t: &Tmux, id: &str) -> Vec<(String, DateTime<Utc>)> {
    let out = t.cli(&["events", id, "--json"]);
    assert!(out.status.success(), "events {id}: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("events --json");
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let at = e["at"].as_str().expect("at").parse().expect("RFC 3339");
            (e["kind"].as_str().unwrap_or("?").to_string(), at)
        })
        .collect()
}

#[test]
fn status_actions_and_watch_on_a_demo_store_share_its_clock_and_faults() {
    let Some(t) = Tmux::start("demo_world", 200, 60) else {
        return;
    };
    t.launch("", "demo --speed 60");
    t.wait_for_all(&DEMO_IDS, WAIT);

    // The demo's own fault (latency +450 ms on ocr-fallback's canary) reaches `status`,
    // which has no metrics source of its own.
    wait_status(&t, "the demo's latency fault in status", |s| {
        p99_gap(s, "ocr-fallback").is_some_and(|gap| gap > 300.0)
    });

    // Cleared in the cockpit: `status` sees it go.
    t.keys(&["/"]);
    t.type_text("ocr");
    t.keys(&["Enter", "Enter"]);
    t.wait_for("ocr-fallback v1.4.0", WAIT);
    t.keys(&["!", "0"]);
    t.wait_for("ocr-fallback: simulated faults cleared", WAIT);
    wait_status(&t, "the cleared fault in status", |s| {
        p99_gap(s, "ocr-fallback").is_some_and(|gap| gap.abs() < 150.0)
    });

    // An action from the command line is stamped on the demo clock, which runs 60x (so
    // its lead over the wall clock only grows), after everything the demo itself wrote.
    wait_status(&t, "the demo clock a minute ahead of the wall clock", |s| {
        s["rollouts"][0]["health"]["canary"]["newestPointAt"]
            .as_str()
            .and_then(|at| at.parse::<DateTime<Utc>>().ok())
            .is_some_and(|at| at > Utc::now() + chrono::Duration::seconds(60))
    });
    let out = t.cli(&["pause", "ocr-fallback", "--reason", "from the shell"]);
    assert!(out.status.success(), "pause: {out:?}");
    let wall = Utc::now();
    let events = event_times(&t, "ocr-fallback");
    let (kind, paused_at) = events[0].clone();
    assert_eq!(kind, "pause", "{events:?}");
    assert!(
        paused_at > wall + chrono::Duration::seconds(30),
        "the command wrote {paused_at}, wall clock {wall}: not the demo's clock"
    );
    assert!(
        events.iter().all(|(_, at)| *at <= paused_at),
        "an earlier event is later than the pause: {events:?}"
    );

    // The cockpit's next write is later again: one clock for every writer.
    t.wait_for("paused: from the shell", WAIT);
    t.keys(&["p"]);
    t.wait_for("ocr-fallback v1.4.0 (stable 1.3.2)  progressive", WAIT);
    let events = event_times(&t, "ocr-fallback");
    assert_eq!(events[0].0, "resume", "{events:?}");
    assert!(events[0].1 >= paused_at, "{events:?}");

    // Nothing on screen is "in the future" for the demo: every reader shares its clock.
    let out = t.cli(&["status", "ocr-fallback"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("in the future"),
        "{text}"
    );

    // A fault injected again, then the demo quits: the wall on the demo store shows it
    // (as the cockpit did), on the demo's clock.
    t.keys(&["!", "2"]);
    t.wait_for("SIMULATED FAULT: latency +400 ms", WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    t.launch("", "watch");
    // The failing gate is the demo's latency fault (waited for whole: a capture can catch
    // a line being redrawn).
    // `current` (the left column's first panel) is judged on the demo's traffic: passing,
    // or waiting for evidence on its canary users' few requests (which of the two depends
    // on whether the simulated second it samples drew an error), never without data.
    let current_judged = |s: &str| {
        s.lines()
            .any(|l| l.starts_with("│ ✔ PASS") || l.starts_with("│ ? INCONCLUSIVE"))
    };
    let (screen, _) = t.wait_until("ocr-fallback failing p99 on the wall", 2 * WAIT, |s| {
        s.contains("FAIL (ocr-fallback)")
            && s.lines()
                .any(|l| l.contains("canary p99") && l.contains("> 1.50x"))
            && current_judged(s)
    });
    assert!(!screen.contains("in the future"), "{screen}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);

    // A new demo carries the world on: its writes never go back before the old ones.
    let before = event_times(&t, "ocr-fallback")[0].1;
    t.launch("", "demo");
    t.wait_for_all(&DEMO_IDS, WAIT);
    let out = t.cli(&["pause", "ocr-fallback"]);
    assert!(out.status.success(), "pause: {out:?}");
    let after = event_times(&t, "ocr-fallback")[0].1;
    assert!(after >= before, "went back from {before} to {after}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}
