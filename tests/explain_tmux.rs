//! End to end at 80x24: the full reason of a rollback is readable in the cockpit, through
//! the event's own view, however long it is. The rollback is an operator's, written by the
//! CLI into the demo's store while the cockpit runs (an automatic one needs a breach to be
//! sustained for minutes, too slow and timing-bound for a test); the event view shows any
//! event the same way. The cockpit runs with NO_COLOR.

#[path = "support/tmux.rs"]
mod tmux;

use tmux::*;

/// Numbered words, so each part of the reason can be found on some screen; far longer
/// than the header's wrapped lines can hold at 80x24.
fn long_reason() -> String {
    let mut words: Vec<String> = (1..=70).map(|i| format!("part{i:02}")).collect();
    words.insert(0, "checkout errors after deploy:".into());
    words.push("END-OF-REASON".into());
    words.join(" ")
}

#[test]
fn a_long_rollback_reason_is_readable_through_the_event_view_at_80x24() {
    let Some(t) = Tmux::start("explain_reason", 80, 24) else {
        return;
    };
    t.launch("NO_COLOR=1", "demo");
    t.wait_for_all(&["current", "search-ranking-v2", "ocr-fallback"], WAIT);
    let reason = long_reason();
    let out = t.cli(&["rollback", "current", "--reason", &reason]);
    assert!(out.status.success(), "rollback: {out:?}");

    // Open `current` (filtered, so the attention order does not matter), then its events.
    t.keys(&["/"]);
    t.type_text("current");
    t.keys(&["Enter"]);
    t.keys(&["Enter"]);
    t.wait_for("rolled back:", WAIT);
    let header = t.capture();
    assert!(
        !header.contains("END-OF-REASON"),
        "the reason is long enough that the header cannot hold all of it:\n{header}"
    );
    t.keys(&["e"]);
    // The kind column of the events list (the hint line says "rollback" too).
    t.wait_for("rollback      ", WAIT);
    t.keys(&["Enter"]);
    let first = t.wait_for("kind:   rollback", WAIT);
    assert!(
        first.contains(" more "),
        "the event is cut and says so:\n{first}"
    );

    // Scroll one line at a time to the end, keeping every screen.
    let mut screens = vec![first];
    for n in 1..200 {
        if !screens.last().unwrap().contains(" more ") {
            break;
        }
        t.keys(&["Down"]);
        let (screen, _) = t.wait_for_all(&[&format!("↑ {n} above")], WAIT);
        screens.push(screen);
    }
    let last = screens.last().unwrap();
    assert!(!last.contains(" more "), "scrolled to the end:\n{last}");
    println!(
        "the rollback event at 80x24 took {} lines of scrolling; its end:\n{last}",
        screens.len() - 1
    );
    // Only the event's box counts (the wrapped header shows the reason's start too).
    let all: String = screens
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.starts_with('│'))
        .collect::<Vec<_>>()
        .join("\n");
    for word in reason.split(' ') {
        assert!(
            all.contains(word),
            "{word:?} of the reason was never on screen; the last screen:\n{last}"
        );
    }
    assert!(last.contains("END-OF-REASON"), "{last}");

    // Esc goes back to the events; q quits from there.
    t.keys(&["Escape"]);
    t.wait_gone("kind:   rollback", WAIT);
    t.wait_for("Events (", WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}
