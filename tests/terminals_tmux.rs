//! Terminals, end to end: the real binary in tmux, every byte it writes recorded with
//! `pipe-pane`. `--ascii`, TERM=vt100 and a C locale write nothing above 0x7F; a terminal
//! without 256 colours gets only the classic colour codes; Ctrl-Z gives the shell its
//! terminal back and `fg` brings back a fully drawn screen (cockpit and watch).

#[path = "support/tmux.rs"]
mod tmux;

use std::path::PathBuf;
use std::time::Instant;

use tmux::*;

const DEMO_IDS: [&str; 3] = ["current", "search-ranking-v2", "ocr-fallback"];

/// Records everything the pane's programs write, from now on, into a file.
fn record(t: &Tmux) -> PathBuf {
    let file = t.path("pane-output.bin");
    let out = t
        .tmux()
        .args(["pipe-pane", "-o", "-t", &t.session])
        .arg(format!("cat >> {}", sh_quote(&path_str(&file))))
        .output()
        .expect("tmux pipe-pane");
    assert!(out.status.success(), "pipe-pane: {out:?}");
    file
}

/// Waits until the recording holds `marker` (what the pane wrote reaches the file through
/// a pipe), then returns it.
fn recorded(file: &PathBuf, marker: &str) -> Vec<u8> {
    let start = Instant::now();
    loop {
        let bytes = std::fs::read(file).unwrap_or_default();
        if bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            return bytes;
        }
        assert!(
            start.elapsed() < WAIT,
            "no {marker:?} in the recording:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs the demo with `env_prefix` and `args`, opens a rollout's health panel (borders,
/// verdict marks, sparklines), quits, and returns every byte the pane received meanwhile.
fn demo_bytes(test: &str, env_prefix: &str, args: &str) -> Option<Vec<u8>> {
    let t = Tmux::start(test, 80, 24)?;
    let file = record(&t);
    t.launch(env_prefix, args);
    t.wait_for_all(&DEMO_IDS, WAIT);
    // The first rollout's health table, once sampled (sparklines and verdicts drawn).
    t.keys(&["Enter"]);
    t.wait_for("Stages", WAIT);
    t.keys(&["Tab"]);
    t.wait_for_all(&["STABLE", "requests", "p99"], WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    Some(recorded(&file, "EXIT=0"))
}

fn assert_all_ascii(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.contains("\x1b[?1049h") && DEMO_IDS.iter().all(|id| text.contains(id)),
        "{what}: the recording does not hold the cockpit:\n{text}"
    );
    if let Some(i) = bytes.iter().position(|b| *b >= 0x80) {
        let from = i.saturating_sub(60);
        panic!(
            "{what}: byte {:#x} at {i} of {}; around it: {:?}",
            bytes[i],
            bytes.len(),
            String::from_utf8_lossy(&bytes[from..(i + 20).min(bytes.len())])
        );
    }
    println!("{what}: {} bytes, all ASCII", bytes.len());
}

/// The parameters of every SGR sequence (`ESC [ ... m`) in the recording.
fn sgr_params(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\x1b[")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
            (rest[end..].starts_with('m')).then(|| rest[..end].to_string())
        })
        .collect()
}

/// The colour codes an SGR sets (resets 39/49 are not colours).
fn colour_codes(params: &str) -> Vec<String> {
    let parts: Vec<&str> = params.split(';').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        match parts[i].parse::<u16>().unwrap_or(0) {
            38 | 48 => {
                let n = if parts.get(i + 1) == Some(&"2") { 5 } else { 3 };
                out.push(parts[i..(i + n).min(parts.len())].join(";"));
                i += n;
                continue;
            }
            c @ (30..=37 | 40..=47 | 90..=97 | 100..=107) => out.push(c.to_string()),
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn ascii_flag_writes_no_byte_above_0x7f() {
    let Some(bytes) = demo_bytes("ascii_flag", "", "--ascii demo") else {
        return;
    };
    assert_all_ascii(&bytes, "--ascii");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("+-"), "the panels' frames in ASCII:\n{text}");
}

#[test]
fn ascii_wall_writes_no_byte_above_0x7f() {
    let Some(t) = Tmux::start("ascii_wall", 200, 60) else {
        return;
    };
    for id in DEMO_IDS {
        let out = t.cli(&["create", id, "--version", "1.0.0"]);
        assert!(out.status.success(), "{out:?}");
    }
    let file = record(&t);
    t.launch("", "--ascii watch");
    t.wait_for_all(&DEMO_IDS, WAIT);
    t.wait_for("READ-ONLY", WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    let bytes = recorded(&file, "EXIT=0");
    assert_all_ascii(&bytes, "watch --ascii");
    // The big percentage digits ("0" for a new rollout) in '#'.
    assert!(String::from_utf8_lossy(&bytes).contains("###"));
}

#[test]
fn term_vt100_draws_ascii_without_colour() {
    let Some(bytes) = demo_bytes("term_vt100", "TERM=vt100", "demo") else {
        return;
    };
    assert_all_ascii(&bytes, "TERM=vt100");
    let colours: Vec<String> = sgr_params(&bytes)
        .iter()
        .flat_map(|p| colour_codes(p))
        .collect();
    assert!(colours.is_empty(), "TERM=vt100 got colours: {colours:?}");
}

#[test]
fn c_locale_draws_ascii() {
    let Some(bytes) = demo_bytes("c_locale", "LANG=C.UTF-8 LC_ALL=C", "demo") else {
        return;
    };
    assert_all_ascii(&bytes, "LC_ALL=C");
}

/// TERM=xterm promises 16 colours: the cockpit is coloured, in the classic codes only.
#[test]
fn a_16_colour_terminal_gets_only_classic_colour_codes() {
    let Some(bytes) = demo_bytes("term_xterm", "TERM=xterm", "demo") else {
        return;
    };
    let colours: Vec<String> = sgr_params(&bytes)
        .iter()
        .flat_map(|p| colour_codes(p))
        .collect();
    let extended: Vec<&String> = colours.iter().filter(|c| c.contains(';')).collect();
    assert!(
        extended.is_empty(),
        "256-colour or 24-bit codes on TERM=xterm: {extended:?}"
    );
    // Green for the connection, cyan for the title and the focused panel.
    for code in ["32", "36"] {
        assert!(
            colours.iter().any(|c| c == code),
            "no {code} in {colours:?}"
        );
    }
    // The Unicode locale keeps the box drawing.
    assert!(String::from_utf8_lossy(&bytes).contains('┌'));
}

/// A 256-colour terminal gets the decoration grey from the 256 palette.
#[test]
fn a_256_colour_terminal_gets_its_grey() {
    let Some(bytes) = demo_bytes("term_256", "TERM=xterm-256color", "demo") else {
        return;
    };
    let colours: Vec<String> = sgr_params(&bytes)
        .iter()
        .flat_map(|p| colour_codes(p))
        .collect();
    assert!(colours.iter().any(|c| c == "38;5;244"), "{colours:?}");
    assert!(
        !colours.iter().any(|c| c.starts_with("38;2")),
        "{colours:?}"
    );
}

/// The state letter of `pid` in /proc (T: stopped).
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Starts the binary as the shell's only job (no `; echo` after it: a list would go on
/// while the job is stopped), its pid in `pid` (read by `Tmux::pid`).
fn launch_job(t: &Tmux, env_prefix: &str, args: &str) {
    let inner = format!(
        "echo $$ > {}; exec env {env_prefix} {}",
        sh_quote(&path_str(&t.path("pid"))),
        t.bin_line(args)
    );
    t.run_line(&format!("clear; sh -c {}", sh_quote(&inner)));
}

/// Ctrl-Z: the process stops, the shell's prompt is back on the normal screen in cooked
/// mode; `fg`: the screen is drawn again in full, and keys work.
fn suspend_and_resume(t: &Tmux, what: &str, full_screen: &[&str]) {
    let pid = t.pid();
    t.wait_for_all(full_screen, WAIT);
    assert!(t.alternate_screen_on(), "{what}: on the alternate screen");
    assert_eq!(
        t.display("#{cursor_flag}"),
        "0",
        "{what}: the cursor is hidden"
    );
    t.keys(&["C-z"]);
    let (screen, took) = t.wait_until("the shell prompt after Ctrl-Z", WAIT, |s| {
        s.lines().any(|l| l.trim_end() == "$") && !t.alternate_screen_on()
    });
    println!("{what}: Ctrl-Z to the shell's prompt: {took:?}");
    assert!(
        full_screen.iter().all(|n| !screen.contains(n)),
        "{what}: the screen still shows it after Ctrl-Z:\n{screen}"
    );
    let start = Instant::now();
    while process_state(pid) != Some('T') {
        assert!(
            start.elapsed() < WAIT,
            "{what}: process {pid} not stopped: {:?}",
            process_state(pid)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        t.display("#{cursor_flag}"),
        "1",
        "{what}: the cursor is shown"
    );
    assert_cooked(&t.stty_in_pane(), &format!("{what}, suspended"));
    t.run_line("fg");
    let (screen, took) = t.wait_until("the full screen after fg", WAIT, |s| {
        t.alternate_screen_on() && full_screen.iter().all(|n| s.contains(n))
    });
    println!("{what}: fg to the full screen: {took:?}");
    assert_ne!(process_state(pid), Some('T'), "{what}: still stopped");
    // Fully drawn: the top row, the frame's bottom and the last row, not only what changed.
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        !lines[0].trim().is_empty(),
        "{what}: top row blank:\n{screen}"
    );
    assert!(
        lines.len() == t.height as usize && !lines[t.height as usize - 1].trim().is_empty(),
        "{what}: bottom row blank:\n{screen}"
    );
    t.keys(&["q"]);
    assert!(
        wait_process_gone(pid, WAIT),
        "{what}: still running after q"
    );
    t.wait_until("the normal screen after q", WAIT, |_| {
        !t.alternate_screen_on()
    });
    assert_cooked(&t.stty_in_pane(), &format!("{what}, after q"));
}

#[test]
fn ctrl_z_suspends_the_cockpit_and_fg_redraws_it() {
    let Some(t) = Tmux::start("ctrl_z_cockpit", 80, 24) else {
        return;
    };
    launch_job(&t, "", "demo");
    suspend_and_resume(
        &t,
        "demo",
        &["current", "ocr-fallback", "connected", "q quit"],
    );
}

#[test]
fn ctrl_z_suspends_the_wall_and_fg_redraws_it() {
    let Some(t) = Tmux::start("ctrl_z_watch", 80, 24) else {
        return;
    };
    for id in ["current", "search-ranking-v2"] {
        let out = t.cli(&["create", id, "--version", "1.0.0"]);
        assert!(out.status.success(), "{out:?}");
    }
    launch_job(&t, "", "watch");
    suspend_and_resume(&t, "watch", &["current", "search-ranking-v2", "READ-ONLY"]);
}
