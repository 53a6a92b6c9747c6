//! End to end: the real `rollout-tui` binary in tmux. Keys go in with `send-keys`,
//! the screen comes back with `capture-pane`; every change the cockpit makes is also
//! checked with `status --json` against the same data directory.
//!
//! Timings (time to first screen, live-update latency) are printed, never asserted
//! beyond generous timeouts. Run with `--nocapture` to see them.

#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use serde_json::Value;
use tmux::*;

const DEMO_IDS: [&str; 3] = ["current", "search-ranking-v2", "ocr-fallback"];

/// Starts `demo` in a fresh session and waits for its first screen.
fn demo(test: &str, width: u16, height: u16, env_prefix: &str) -> Option<(Tmux, Duration)> {
    let t = Tmux::start(test, width, height)?;
    let started = Instant::now();
    t.launch(env_prefix, "demo");
    let (_, _) = t.wait_for_all(&DEMO_IDS, WAIT);
    let elapsed = started.elapsed();
    Some((t, elapsed))
}

fn users(v: &Value) -> Vec<String> {
    v["canaryUsers"]
        .as_array()
        .unwrap_or_else(|| panic!("no canaryUsers: {v}"))
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// Quits with `q` and checks the shell got its terminal back.
fn quit_and_check(t: &Tmux, what: &str) {
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0, "{what}: exit code after q");
    assert!(
        !t.alternate_screen_on(),
        "{what}: still on the alternate screen"
    );
    assert_cooked(&t.stty_in_pane(), what);
}

/// The issue asks for the first screen within 2 s: the time is printed, not asserted
/// (a busy machine must not fail the suite); `demo` fails if it never comes.
#[test]
fn demo_starts_and_shows_the_three_rollouts() {
    let Some((t, elapsed)) = demo("demo_starts", 80, 24, "") else {
        return;
    };
    println!(
        "time to first screen (demo, 80x24, debug build; the issue asks for 2 s): {elapsed:?}"
    );
    assert!(
        t.alternate_screen_on(),
        "the cockpit draws on the alternate screen"
    );
    let screen = t.capture();
    assert!(screen.contains("rollout-tui demo"), "{screen}");
    assert!(screen.contains("Rollouts (3/3)"), "{screen}");
    // The demo's store is the data directory itself.
    let v = t.status_json("current");
    assert_eq!(v["rolloutPercentage"], 0, "{v}");
    assert_eq!(v["status"], "canary", "{v}");
    quit_and_check(&t, "demo quit");
}

/// A list pasted into the add-user dialog arrives as one text (bracketed paste): its line
/// breaks separate keys instead of pressing Enter, and the whole list is one write.
#[test]
fn pasted_user_list_is_added_in_one_write() {
    let Some((t, _)) = demo("paste_users", 80, 24, "") else {
        return;
    };
    t.keys(&["s", "Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    t.keys(&["u"]);
    t.wait_for("Canary users (2)", WAIT);
    t.keys(&["i"]);
    t.wait_for("Add to canary users of current", WAIT);
    t.paste("ann@example.com\nbo@example.com\nuser-7\n");
    t.wait_for("> ann@example.com bo@example.com user-7", WAIT);
    t.wait_for("✔ ok", WAIT);
    assert_eq!(
        users(&t.status_json("current")).len(),
        2,
        "a pasted line break is not Enter"
    );
    t.keys(&["Enter"]);
    t.wait_for("Canary users (5)", WAIT);
    let v = t.status_json("current");
    for user in ["ann@example.com", "bo@example.com", "user-7"] {
        assert!(users(&v).contains(&user.to_string()), "{user}: {v}");
    }
    quit_and_check(&t, "paste quit");
}

/// The operator flow on `current`: add a canary user, set 5 %, advance with
/// confirmation, roll back with a reason. Each step is checked on screen and in the store.
#[test]
fn operator_flow_add_user_set_5_advance_rollback() {
    let Some((t, _)) = demo("operator_flow", 80, 24, "") else {
        return;
    };
    // Open `current` (the first row by id) and its users panel.
    t.keys(&["s", "Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    t.keys(&["u"]);
    t.wait_for("Canary users (2)", WAIT);

    // 1. Add a canary user.
    t.keys(&["i"]);
    t.wait_for("Add to canary users of current", WAIT);
    t.type_text("new.tester@example.com");
    t.wait_for("> new.tester@example.com", WAIT);
    t.wait_for("✔ ok", WAIT);
    t.keys(&["Enter"]);
    let screen = t.wait_for_all(
        &[
            "current: added to canary users: new.tester@example.com",
            "Canary users (3)",
            "new.tester@example.com",
        ],
        WAIT,
    );
    assert!(!screen.0.contains("Add to canary users"), "{}", screen.0);
    let v = t.status_json("current");
    assert!(
        users(&v).contains(&"new.tester@example.com".to_string()),
        "status --json after adding: {v}"
    );

    // 2. Set 5 % (a small jump: no confirmation).
    t.keys(&["%"]);
    t.wait_for("Set percentage of current", WAIT);
    t.type_text("5");
    t.wait_for("> 5", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("current: percentage 0% -> 5%", WAIT);
    t.wait_for("progressive  5%", WAIT);
    let v = t.status_json("current");
    assert_eq!(v["rolloutPercentage"], 5, "status --json after 5 %: {v}");
    assert_eq!(v["status"], "progressive", "{v}");

    // 3. Advance right away: the 5 % stage's minimum is not served, so it asks for a
    // reason, and writes nothing until one is given.
    t.keys(&["a"]);
    let (screen, _) = t.wait_for_all(
        &["OVERRIDE: Advance current?", "of bake time skipped"],
        WAIT,
    );
    assert!(screen.contains("to   stage 3/5 '25%' (25%)"), "{screen}");
    t.keys(&["Enter"]);
    t.wait_for("type why this cannot wait", WAIT);
    t.keys(&["y"]);
    t.wait_for("> y", WAIT);
    assert_eq!(
        t.status_json("current")["rolloutPercentage"],
        5,
        "nothing is written without a reason"
    );
    t.keys(&["BSpace"]);
    t.type_text("demo walkthrough");
    t.wait_for("> demo walkthrough", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("current: advanced to stage 3/5 '25%' (25%)", WAIT);
    t.wait_for("progressive  25%", WAIT);
    let v = t.status_json("current");
    assert_eq!(
        v["rolloutPercentage"], 25,
        "status --json after advance: {v}"
    );
    assert_eq!(v["currentStage"], 2, "{v}");

    // 4. Roll back with a reason: Enter rolls back at once.
    t.keys(&["R"]);
    t.wait_for("ROLL BACK current", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("a reason is required", WAIT);
    t.type_text("error spike in checkout");
    t.wait_for("> error spike in checkout", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("current: rolled back from 25%: everyone is on stable", WAIT);
    t.wait_for("rolled-back", WAIT);
    let v = t.status_json("current");
    assert_eq!(
        v["status"], "rolled-back",
        "status --json after rollback: {v}"
    );
    assert_eq!(v["rollbackReason"], "error spike in checkout", "{v}");
    assert_eq!(v["rolloutPercentage"], 0, "{v}");

    // The audit log has every step, by the cockpit's actor.
    let out = t.cli(&["events", "current", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..4],
        ["rollback", "advance", "set-percent", "add-users"],
        "{events}"
    );
    let advance = &events["events"][1];
    let reason = advance["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("override: ")
            && reason.contains("of bake time skipped")
            && reason.ends_with("— demo walkthrough"),
        "{advance}"
    );
    quit_and_check(&t, "after the operator flow");
}

/// Advancing over a failing gate needs a typed reason; the audit log records what was
/// overridden and the gate report behind it.
#[test]
fn override_of_a_failing_advance_needs_a_reason_and_is_audited() {
    let Some((t, _)) = demo("override_failing", 200, 60, "") else {
        return;
    };
    t.keys(&["s", "Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    t.keys(&["%"]);
    t.wait_for("Set percentage of current", WAIT);
    t.type_text("5");
    t.keys(&["Enter"]);
    t.wait_for("progressive  5%", WAIT);
    // A simulated error spike in the canary: the error-rate gate fails.
    t.keys(&["!", "1"]);
    t.wait_for("SIMULATED FAULT", WAIT);
    t.wait_until("the error-rate gate to fail", 2 * WAIT, |s| {
        s.lines()
            .any(|l| l.contains("✖ FAIL") && l.contains("error-rate"))
    });
    t.keys(&["a"]);
    let (screen, _) = t.wait_for_all(&["OVERRIDE: Advance current?", "error-rate FAIL"], WAIT);
    assert!(screen.contains("This overrides:"), "{screen}");
    // The safe choice is the default: Enter without a reason writes nothing.
    t.keys(&["Enter"]);
    t.wait_for("type why this cannot wait", WAIT);
    assert_eq!(t.status_json("current")["rolloutPercentage"], 5);
    t.type_text("INC-7 fix must ship");
    t.wait_for("> INC-7 fix must ship", WAIT);
    t.keys(&["Enter"]);
    t.wait_for(
        "current: advanced to stage 3/5 '25%' (25%) (override recorded)",
        WAIT,
    );
    let out = t.cli(&["events", "current", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let advance = &events["events"][0];
    assert_eq!(advance["kind"], "advance", "{events}");
    let reason = advance["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("override: ")
            && reason.contains(" FAIL")
            && reason.ends_with("— INC-7 fix must ship"),
        "{advance}"
    );
    let gates = advance["gateReport"]["gates"]
        .as_array()
        .expect("a gate report");
    assert!(
        gates.iter().any(|g| g["verdict"] == "fail"),
        "the report shows the failing gate: {advance}"
    );
    // The human-readable log says it too.
    let text = String::from_utf8_lossy(&t.cli(&["events", "current"]).stdout).into_owned();
    assert!(text.contains("override: "), "{text}");
    quit_and_check(&t, "after an override");
}

/// A change made by another process shows up without a key press.
#[test]
fn live_update_from_another_process() {
    let Some((t, _)) = demo("live_update", 80, 24, "") else {
        return;
    };
    t.keys(&["Enter"]);
    t.wait_for("current v0.1.1 (stable 0.1.0)  canary  0%", WAIT);
    let started = Instant::now();
    let out = t.cli(&["set-percent", "current", "7"]);
    let cli_time = started.elapsed();
    assert!(
        out.status.success(),
        "set-percent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, _) = t.wait_for_all(&["progressive  7%"], WAIT);
    let latency = started.elapsed();
    println!(
        "live update latency (set-percent in another process -> on screen): {latency:?} \
         (of which the CLI command itself: {cli_time:?})"
    );
    // The events panel follows too.
    t.keys(&["e"]);
    t.wait_for("set-percent", WAIT);
    // And another rollout changing does not disturb the open one.
    let out = t.cli(&["pause", "ocr-fallback", "--reason", "lunch"]);
    assert!(out.status.success(), "{out:?}");
    t.keys(&["Escape"]);
    t.wait_for("paused", WAIT);
    quit_and_check(&t, "after live updates");
}

#[test]
fn q_restores_the_terminal() {
    let Some((t, _)) = demo("q_restores", 80, 24, "") else {
        return;
    };
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    assert!(!t.alternate_screen_on(), "left on the alternate screen");
    let screen = t.capture();
    assert!(
        !screen.contains("Rollouts (3/3)"),
        "the cockpit is still on screen after q:\n{screen}"
    );
    assert_cooked(&t.stty_in_pane(), "after q");
}

#[test]
fn panic_restores_the_terminal() {
    let Some(t) = Tmux::start("panic_restores", 80, 24) else {
        return;
    };
    t.launch("ROLLOUT_TUI_PANIC_FOR_TEST=1", "demo");
    let code = t.wait_exit(WAIT);
    assert_eq!(code, 101, "a panic exits with 101");
    let screen = t.capture();
    assert!(
        screen.contains("panic requested by ROLLOUT_TUI_PANIC_FOR_TEST"),
        "the panic message is readable on the normal screen:\n{screen}"
    );
    assert!(!t.alternate_screen_on(), "left on the alternate screen");
    let stty = t.stty_in_pane();
    assert_cooked(&stty, "after a panic");
    // And the shell takes input normally again.
    t.run_line("echo still-usable-$((40+2))");
    t.wait_for("still-usable-42", WAIT);
}

fn signal_restores(test: &str, sig: &str) {
    let Some((t, _)) = demo(test, 80, 24, "") else {
        return;
    };
    let pid = t.pid();
    assert!(process_running(pid));
    signal(pid, sig);
    let code = t.wait_exit(WAIT);
    assert!(
        wait_process_gone(pid, WAIT),
        "rollout-tui ({pid}) still runs after SIG{sig}"
    );
    assert_eq!(code, 0, "SIG{sig} ends the cockpit like a quit");
    assert!(
        !t.alternate_screen_on(),
        "left on the alternate screen after SIG{sig}"
    );
    assert_cooked(&t.stty_in_pane(), &format!("after SIG{sig}"));
}

#[test]
fn sigterm_restores_the_terminal() {
    signal_restores("sigterm", "TERM");
}

#[test]
fn sighup_restores_the_terminal() {
    signal_restores("sighup", "HUP");
}

#[test]
fn sigint_restores_the_terminal() {
    signal_restores("sigint", "INT");
}

/// Closing the terminal (the tmux window) ends the cockpit: nothing keeps running.
#[test]
fn killing_the_window_ends_the_process() {
    let Some(t) = Tmux::start("kill_window", 80, 24) else {
        return;
    };
    // A second window whose only process is the cockpit (no shell in between).
    let pid_file = t.path("pid2");
    let inner = format!(
        "echo $$ > {}; exec {}",
        sh_quote(&path_str(&pid_file)),
        t.bin_line("demo")
    );
    let out = t
        .tmux()
        .args([
            "new-window",
            "-d",
            "-t",
            "main",
            "-n",
            "cockpit",
            "sh",
            "-c",
            &inner,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + WAIT;
    let pid: u32 = loop {
        if let Ok(p) = std::fs::read_to_string(&pid_file)
            && let Ok(p) = p.trim().parse()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no pid");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Wait for its first screen in that window.
    let deadline = Instant::now() + WAIT;
    loop {
        let out = t
            .tmux()
            .args(["capture-pane", "-p", "-t", "main:cockpit"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("search-ranking-v2") {
            break;
        }
        assert!(Instant::now() < deadline, "the cockpit window never drew");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process_running(pid));
    let out = t
        .tmux()
        .args(["kill-window", "-t", "main:cockpit"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_process_gone(pid, WAIT),
        "rollout-tui ({pid}) still runs after its tmux window was killed"
    );

    // The same for a whole session, killed while the cockpit runs in its shell.
    let Some((t2, _)) = demo("kill_session", 80, 24, "") else {
        return;
    };
    let pid = t2.pid();
    t2.kill_server();
    assert!(
        wait_process_gone(pid, WAIT),
        "rollout-tui ({pid}) still runs after its tmux server was killed"
    );
}

/// NO_COLOR: no colour escapes, and the screen still reads: verdict symbols and words.
#[test]
fn no_color_draws_without_colours() {
    let Some((t, _)) = demo("no_color", 80, 24, "NO_COLOR=1") else {
        return;
    };
    // The demo's simulator has a latency regression on ocr-fallback: it fails. current's
    // canary users' stage may still be gathering evidence ("? wait").
    let (screen, _) = t.wait_until("verdicts", WAIT, |s| {
        let current = row(s, "current");
        row(s, "ocr-fallback").contains("✖ FAIL")
            && ["✔ pass", "✖ FAIL", "? wait"]
                .iter()
                .any(|v| current.contains(v))
    });
    let styled = t.capture_styled();
    let colour = colour_codes(&styled);
    assert!(
        colour.is_empty(),
        "NO_COLOR=1 but the screen has colour codes {colour:?}:\n{styled}"
    );
    for needle in ["▶current", "canary", "progressive"] {
        assert!(screen.contains(needle), "missing {needle:?}:\n{screen}");
    }
    // The header counts the failing rows. Only ocr-fallback has an injected regression, but
    // search-ranking-v2's small canary (about 1 req/s) can fail a gate by chance on a few
    // errors, so the count is checked against the rows rather than fixed at one.
    let failing_rows = ["current", "ocr-fallback", "search-ranking-v2"]
        .iter()
        .filter(|id| row(&screen, id).contains("✖ FAIL"))
        .count();
    assert!(
        screen.contains(&format!("✖ {failing_rows} failing")),
        "the header does not count {failing_rows} failing rows:\n{screen}"
    );
    // Without colour, a failing verdict is still bold, and the selection is reversed.
    let fail = style_at(&styled, "✖ FAIL").expect("✖ FAIL on the styled screen");
    assert!(fail.bold && fail.fg.is_none(), "{fail:?}");
    let selected = style_at(&styled, "▶current").expect("the selected row");
    assert!(
        selected.reverse,
        "no reverse video for the selection: {selected:?}"
    );
    quit_and_check(&t, "NO_COLOR");

    // Without NO_COLOR the same verdict is red.
    let Some((t, _)) = demo("with_color", 80, 24, "") else {
        return;
    };
    t.wait_until("a failing verdict", WAIT, |s| {
        row(s, "ocr-fallback").contains("✖ FAIL")
    });
    let styled = t.capture_styled();
    assert!(
        !colour_codes(&styled).is_empty(),
        "no colour without NO_COLOR"
    );
    let fail = style_at(&styled, "✖ FAIL").expect("✖ FAIL on the styled screen");
    // Red is colour 1: SGR 31, or 38;5;1 as tmux writes it.
    assert!(
        matches!(fail.fg.as_deref(), Some("31" | "38;5;1")),
        "✖ FAIL is not red: {fail:?}"
    );
    assert!(fail.bold, "{fail:?}");
}

/// The overview row of `id` (empty if none).
fn row<'a>(screen: &'a str, id: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(&format!("{id} ")))
        .unwrap_or("")
}

/// What SGR escapes set at a point of the screen.
#[derive(Debug, Default, Clone)]
struct Sgr {
    fg: Option<String>,
    bold: bool,
    reverse: bool,
}

/// The style in effect where `needle` starts on a `capture-pane -e` screen.
fn style_at(styled: &str, needle: &str) -> Option<Sgr> {
    for line in styled.lines() {
        let mut st = Sgr::default();
        let mut rest = line;
        loop {
            let esc = rest.find("\x1b[");
            let hit = rest.find(needle);
            if let Some(h) = hit
                && esc.is_none_or(|e| h < e)
            {
                return Some(st);
            }
            let Some(e) = esc else { break };
            let after = &rest[e + 2..];
            let end = after.find(|c: char| c.is_ascii_alphabetic())?;
            if after.as_bytes()[end] == b'm' {
                apply_sgr(&mut st, &after[..end]);
            }
            rest = &after[end + 1..];
        }
    }
    None
}

fn apply_sgr(st: &mut Sgr, params: &str) {
    let ps: Vec<&str> = params.split(';').collect();
    let mut i = 0;
    while i < ps.len() {
        match ps[i] {
            "" | "0" => *st = Sgr::default(),
            "1" => st.bold = true,
            "22" => st.bold = false,
            "7" => st.reverse = true,
            "27" => st.reverse = false,
            "39" => st.fg = None,
            "38" => {
                // 38;5;n or 38;2;r;g;b
                let n = if ps.get(i + 1) == Some(&"5") { 3 } else { 5 };
                st.fg = Some(ps[i..(i + n).min(ps.len())].join(";"));
                i += n - 1;
            }
            p if matches!(p.parse::<u32>(), Ok(30..=37 | 90..=97)) => st.fg = Some(p.to_string()),
            _ => {}
        }
        i += 1;
    }
}

/// SGR parameters that set a colour (30-37, 90-97, 40-47, 100-107, 38;…, 48;…).
fn colour_codes(styled: &str) -> Vec<String> {
    let mut found = Vec::new();
    for chunk in styled.split("\x1b[").skip(1) {
        let Some(end) = chunk.find('m') else { continue };
        let params = &chunk[..end];
        let colour = params.split(';').any(|p| {
            matches!(
                p.parse::<u32>(),
                Ok(30..=37 | 40..=47 | 90..=97 | 100..=107 | 38 | 48)
            )
        });
        if colour {
            found.push(params.to_string());
        }
    }
    found
}

/// At 80x24 the overview and the detail view show the key facts.
#[test]
fn layout_80x24_shows_the_key_facts() {
    let Some((t, _)) = demo("layout_80", 80, 24, "") else {
        return;
    };
    let screen = t.capture();
    assert_eq!(screen.lines().count(), 24, "{screen}");
    for line in screen.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    // The canary users' count gives way to stable-vs-canary numbers at 80 columns; the
    // preview of the selected rollout says it.
    for row in [
        ["current", "canary", "1/5 canary users", "0%"],
        ["ocr-fallback", "progressive", "2/4 friendly", "5%"],
        ["search-ranking-v2", "progressive", "1/4 internal", "1%"],
    ] {
        let line = screen
            .lines()
            .find(|l| l.contains(&format!("{} ", row[0])))
            .unwrap_or_else(|| panic!("no row for {}:\n{screen}", row[0]));
        let mut at = 0;
        for cell in row {
            let found = line[at..]
                .find(cell)
                .unwrap_or_else(|| panic!("{cell:?} missing or out of order in {line:?}"));
            at += found + cell.len();
        }
    }
    assert!(screen.contains("users: 2 canary, 1 excluded"), "{screen}");
    assert!(screen.contains("q quit"), "{screen}");
    // The detail view: header with version, status, percentage and stage; the stages on one
    // line, the current one in brackets. Sorted by id, the list no longer moves as verdicts
    // arrive: ocr-fallback is second.
    t.keys(&["s", "Down", "Enter"]);
    let (screen, _) = t.wait_for_all(
        &[
            "ocr-fallback v1.4.0 (stable 1.3.2)  progressive  5%  2/4 friendly",
            "→ [friendly ",
            "may advance in",
        ],
        WAIT,
    );
    assert!(screen.contains("Stages"), "{screen}");
    quit_and_check(&t, "layout 80x24");
}

/// At 200x60 the detail view shows all four panels at once.
#[test]
fn layout_200x60_shows_every_panel() {
    let Some((t, _)) = demo("layout_200", 200, 60, "") else {
        return;
    };
    assert_eq!(t.display("#{pane_width}x#{pane_height}"), "200x60");
    t.keys(&["Enter"]);
    let (screen, _) = t.wait_for_all(
        &[
            "current v0.1.1",
            "▸ Stages",
            // The stage timeline's legend: the step chart is drawn.
            "━ so far  ┄ planned",
            "Stable vs canary",
            "Canary users (2)",
            "Events (",
            "alec@getaifactory.com",
            "create",
        ],
        WAIT,
    );
    assert!(
        screen.contains("driver: none") && screen.contains("● connected"),
        "{screen}"
    );
    quit_and_check(&t, "layout 200x60");
}

/// The store file disappears while the cockpit runs: a banner says so; when it is
/// back, the banner goes. A rollback tried meanwhile is reported as it happened.
#[test]
fn store_outage_banner_comes_and_goes() {
    let Some((t, _)) = demo("store_outage", 80, 24, "") else {
        return;
    };
    let db = t.data_dir().join("rollouts.db");
    let away = t.data_dir().join("rollouts.db.away");
    assert!(db.exists());
    std::fs::rename(&db, &away).unwrap();
    let (screen, took) = t.wait_for_all(&["STORE DISCONNECTED"], WAIT);
    println!("store outage banner after {took:?}");
    // The cockpit stays usable for reading.
    t.keys(&["Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    assert!(screen.contains("STORE DISCONNECTED"));

    // A rollback during the outage is attempted and reported.
    t.keys(&["R"]);
    t.wait_for("ROLL BACK current", WAIT);
    t.type_text("store is flaky");
    t.keys(&["Enter"]);
    let (screen, _) = t.wait_until("the rollback's outcome", WAIT, |s| {
        s.contains("current: rolled back from") || s.contains("rollback FAILED")
    });
    let reported_done = screen.contains("current: rolled back from");
    println!(
        "rollback during the store outage was reported as {}",
        if reported_done { "done" } else { "FAILED" }
    );

    std::fs::rename(&away, &db).unwrap();
    let (_, took) = t.wait_until("the banner to go away", WAIT, |s| {
        !s.contains("STORE DISCONNECTED")
    });
    println!("store banner gone {took:?} after the file came back");
    let v = t.status_json("current");
    if reported_done {
        assert_eq!(
            v["status"], "rolled-back",
            "the cockpit said the rollback was done, but the store says: {v}"
        );
    } else {
        assert_ne!(
            v["status"], "rolled-back",
            "the cockpit said the rollback FAILED, but it was written: {v}"
        );
    }
    quit_and_check(&t, "after the store outage");
}

/// The issue: `demo` is driven by a simulator, so a new user sees live numbers
/// (asked for within 2 s: the time is printed, not asserted), and they keep changing
/// without a key press.
#[test]
fn demo_shows_live_health() {
    let Some(t) = Tmux::start("demo_live_health", 200, 60) else {
        return;
    };
    let started = Instant::now();
    t.launch("", "demo");
    let (screen, _) = t.wait_until("a verdict for every rollout", WAIT, |s| {
        DEMO_IDS.iter().all(|id| {
            let r = row(s, id);
            r.contains("✔ pass") || r.contains("? wait") || r.contains("✖ FAIL")
        })
    });
    let elapsed = started.elapsed();
    println!("time to live health numbers (demo, 200x60; the issue asks for 2 s): {elapsed:?}");
    assert!(screen.contains("metrics: simulator"), "{screen}");
    // The numbers move on their own: the stable request count of `current` changes.
    t.keys(&["Enter"]);
    let (first, _) = t.wait_for_all(&["Stable vs canary", "requests"], WAIT);
    let requests = |s: &str| {
        s.lines()
            .find(|l| l.contains("│requests "))
            .unwrap_or("")
            .to_string()
    };
    let before = requests(&first);
    assert!(!before.is_empty(), "{first}");
    let (_, took) = t.wait_until("the numbers to change", 2 * WAIT, |s| {
        let now = requests(s);
        !now.is_empty() && now != before
    });
    println!("health numbers refreshed on their own after {took:?}");
    quit_and_check(&t, "live demo");
}

/// At 80x24 the status line keeps the data age and the connection state.
#[test]
fn demo_80x24_status_line_shows_the_connection() {
    let Some((t, _)) = demo("status_80", 80, 24, "") else {
        return;
    };
    // Before the first sample the line says "no data yet"; the age replaces it once data is in.
    let (screen, _) = t.wait_until("the status line to show the data age", WAIT, |s| {
        s.lines().last().is_some_and(|l| l.contains(" old"))
    });
    let status = screen.lines().last().unwrap_or("");
    assert!(
        status.contains("connected") && status.contains("metrics:"),
        "status line: {status:?}"
    );
}

/// `demo --speed N` runs the whole cockpit on the simulator's compressed clock: stage
/// timers count down N times faster, and auto-progression walks the plan while you watch.
#[test]
fn demo_speed_compresses_time_for_timers_and_auto_progression() {
    let Some(t) = Tmux::start("demo_speed", 200, 60) else {
        return;
    };
    t.launch("", "demo --speed 60");
    t.wait_for_all(&DEMO_IDS, WAIT);
    t.keys(&["Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    t.keys(&["A"]);
    t.wait_for("AUTO ● driving", WAIT);
    // The canary users' stage is long over: the machine asks before random users get it.
    t.wait_for("AUTO-PROGRESSION: current asks you", WAIT);
    t.wait_for("widen to random users?", WAIT);
    t.keys(&["y"]);
    // The 5 % stage's 10 minutes pass in about 10 s of real time, then 25 % follows.
    let started = Instant::now();
    t.wait_for("progressive  25%", 4 * WAIT);
    println!("demo --speed 60: 0 % -> 25 % in {:?}", started.elapsed());
    let v = t.status_json("current");
    assert_eq!(v["rolloutPercentage"], 25, "{v}");
    let out = t.cli(&["events", "current", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let auto_advances = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "advance" && e["actor"].as_str().unwrap().starts_with("auto:"))
        .count();
    assert_eq!(auto_advances, 2, "0 -> 5 -> 25 by the machine: {events}");
    // Quitting while this cockpit drives asks first; n stays, y quits.
    t.keys(&["q"]);
    t.wait_for("Quit while driving?", WAIT);
    t.keys(&["n"]);
    t.wait_gone("Quit while driving?", WAIT);
    t.keys(&["q"]);
    t.wait_for("This cockpit runs auto-progression for current.", WAIT);
    t.keys(&["y"]);
    assert_eq!(t.wait_exit(WAIT), 0, "exit code after q, y");
    assert!(!t.alternate_screen_on(), "still on the alternate screen");
    assert_cooked(&t.stty_in_pane(), "after demo --speed");
}

/// A speed outside 1..=3600 is refused before anything is seeded.
#[test]
fn demo_speed_is_validated() {
    let Some(t) = Tmux::start("demo_speed_bad", 80, 24) else {
        return;
    };
    t.launch("", "demo --speed 0.5");
    assert_eq!(t.wait_exit(WAIT), 2);
    t.wait_for("--speed 0.5: give a factor from 1", WAIT);
    // Nothing was seeded, and no store was created either: reading says there is none.
    let status = t.cli(&["status", "--json"]);
    assert!(
        !status.status.success()
            && String::from_utf8_lossy(&status.stderr).contains("no rollout store"),
        "{status:?}"
    );
}

/// In the demo, `!` injects a fault into the simulated canary at run time; the next
/// sample shows it, and clearing it brings the numbers back.
#[test]
fn demo_faults_injected_at_run_time_show_in_the_next_sample() {
    let Some((t, _)) = demo("demo_fault", 200, 60, "") else {
        return;
    };
    t.keys(&["Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    // A traffic drop: no canary requests, so the gates cannot pass.
    t.keys(&["!"]);
    t.wait_for("Simulate a fault in current's canary", WAIT);
    t.keys(&["3"]);
    t.wait_for("SIMULATED FAULT: no canary traffic", WAIT);
    t.wait_for("inconclusive: no canary requests this stage", WAIT);
    // A latency shift instead: p99 against stable fails.
    t.keys(&["!"]);
    t.wait_for("Simulate a fault in current's canary", WAIT);
    t.keys(&["0"]);
    t.wait_for("current: simulated faults cleared", WAIT);
    t.keys(&["!", "2"]);
    t.wait_for("SIMULATED FAULT: latency +400 ms", WAIT);
    t.wait_until("p99 against stable fails", WAIT, |s| {
        s.lines()
            .any(|l| l.contains("✖ FAIL") && l.contains("p99-vs-stable"))
    });
    quit_and_check(&t, "after injecting faults");
}

/// `o` on the open rollout writes its report (SVG) into the data directory's `reports/`
/// and says where; the cockpit stays usable meanwhile.
#[test]
fn the_report_key_writes_an_svg_into_reports() {
    let Some((t, _)) = demo("report_key", 200, 50, "") else {
        return;
    };
    t.keys(&["s", "Enter"]);
    t.wait_for("current v0.1.1", WAIT);
    t.keys(&["o"]);
    t.wait_for("report of current written to", WAIT);
    let reports = t.data_dir().join("reports");
    let files: Vec<_> = std::fs::read_dir(&reports)
        .expect("the reports directory is made")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("current-") && name.ends_with(".svg"),
        "{name}"
    );
    let svg = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("Rollout current"),
        "{name}"
    );
    quit_and_check(&t, "quit after a report");
}
