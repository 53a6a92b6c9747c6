//! Hostile input through the real binary: text written to deceive a terminal or a reader,
//! gates that would switch themselves off, and small exits that must behave (issue 9).

#[path = "support/cli_harness.rs"]
mod cli_harness;

use std::io::Read;
use std::process::Stdio;

use cli_harness::{Cli, block_on, exec_cmd, parse_json};
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::store::RolloutStore;
use serde_json::{Value, json};

/// Characters that act on a terminal or hide what text says: ESC, BEL, CSI as a C1
/// control, DEL, and a right-to-left override.
const UNSAFE: [char; 5] = ['\u{1b}', '\u{7}', '\u{9b}', '\u{7f}', '\u{202e}'];

fn assert_inert(what: &str, text: &str) {
    let found: Vec<char> = text.chars().filter(|c| UNSAFE.contains(c)).collect();
    assert!(
        found.is_empty(),
        "{what} carries raw {found:?} to the terminal:\n{text}"
    );
}

/// A document another tool wrote, with terminal sequences in every free-text field.
fn hostile_doc() -> Value {
    json!({
        "version": "1\u{1b}]0;PWNED\u{7}",
        "stableVersion": "0.9\u{9b}2J",
        "status": "rolled-back",
        "rolloutPercentage": 0,
        "rollbackReason": "bad canary\u{1b}[2J\u{1b}[H all clear",
        "approvedBy": "mallory\u{7f}",
        "canaryUsers": ["abc\u{202e}fed", "plain@example.com"],
        "excludedUsers": [],
        "plan": {"stages": [
            {"name": "canary\u{1b}[31m users", "percent": 0, "minDuration": "0s"},
            {"name": "all", "percent": 100, "minDuration": "0s"}
        ]},
        "currentStage": 0,
        "stableRevision": "svc-1\u{1b}[8m",
        "lastUpdatedAt": "2026-05-04T10:00:00Z"
    })
}

fn hostile_event(id: &str) -> Event {
    Event {
        rollout_id: id.into(),
        kind: EventKind::Pause,
        actor: "mallory\u{1b}]0;owned\u{7}".into(),
        at: chrono::Utc::now(),
        before: json!({"status": "canary"}),
        after: json!({"status": "paused\u{1b}[2J"}),
        reason: Some("clear\u{1b}[2J\u{1b}[3J screen\u{202e}".into()),
        gate_report: None,
    }
}

#[test]
fn stored_text_reaches_the_terminal_escaped_in_every_output() {
    let cli = Cli::new();
    cli.put_doc("evil", hostile_doc());
    block_on(cli.store().append_event(&hostile_event("evil"))).unwrap();
    for args in [
        &["status"][..],
        &["status", "evil"],
        &["events", "evil"],
        &["users", "list", "evil"],
        &["assign", "evil", "plain@example.com"],
    ] {
        let out = cli.ok(args);
        assert_inert(&format!("`{}` stdout", args.join(" ")), &out);
    }
    // What was stored is shown, visibly escaped, not dropped.
    let detail = cli.ok(&["status", "evil"]);
    assert!(detail.contains(r"1\x1b]0;PWNED\x07"), "{detail}");
    assert!(
        detail.contains(r"bad canary\x1b[2J\x1b[H all clear"),
        "{detail}"
    );
    assert!(detail.contains(r"abc\u{202e}fed"), "{detail}");
    let events = cli.ok(&["events", "evil"]);
    assert!(events.contains(r"mallory\x1b]0;owned\x07"), "{events}");
    assert!(
        events.contains(r"clear\x1b[2J\x1b[3J screen\u{202e}"),
        "{events}"
    );
    let users = cli.ok(&["users", "list", "evil"]);
    assert_eq!(users, "abc\\u{202e}fed\nplain@example.com\n");
}

#[test]
fn json_output_escapes_c1_del_and_bidi_and_keeps_the_text() {
    let cli = Cli::new();
    cli.put_doc("evil", hostile_doc());
    block_on(cli.store().append_event(&hostile_event("evil"))).unwrap();
    for args in [
        &["status", "--json"][..],
        &["status", "evil", "--json"],
        &["events", "evil", "--json"],
        &["users", "list", "evil", "--json"],
    ] {
        let out = cli.ok(args);
        assert_inert(&format!("`{}`", args.join(" ")), &out);
        parse_json(&out, &args.join(" "));
    }
    // Escaped for the terminal, but the same strings for a script.
    let r = cli.rollout("evil");
    assert_eq!(r["stableVersion"], "0.9\u{9b}2J");
    assert_eq!(r["approvedBy"], "mallory\u{7f}");
    assert_eq!(r["canaryUsers"][0], "abc\u{202e}fed");
    let users = cli.json(&["users", "list", "evil", "--json"]);
    assert_eq!(users["users"][0], "abc\u{202e}fed");
}

#[test]
fn error_messages_quote_stored_values_escaped() {
    let cli = Cli::new();
    let mut doc = hostile_doc();
    doc["status"] = json!("\u{1b}]0;PWNED\u{7}");
    cli.put_doc("broken", doc);
    let ran = cli.fail(&["status", "broken"]);
    assert!(ran.stderr.contains("has unknown value"), "{ran}");
    assert_inert("`status broken` stderr", &ran.stderr);
    let ran = cli.fail(&["advance", "broken"]);
    assert_inert("`advance broken` stderr", &ran.stderr);
    // The table names the broken rollout on its own line, escaped.
    let table = cli.ok(&["status"]);
    assert!(
        table.contains("broken") && table.contains("ERROR"),
        "{table}"
    );
    assert_inert("`status`", &table);
}

#[test]
fn control_characters_in_typed_text_are_refused_and_nothing_is_written() {
    let cli = Cli::new();
    cli.ok(&["create", "web", "--version", "1.0.0"]);
    cli.ok(&["advance", "web"]);
    let long = "x".repeat(2001);
    cli.rejects_all(&[
        (
            &["create", "x", "--version", "1\u{1b}]0;PWNED\u{7}"],
            "--version contains a control character (U+001B escape)",
        ),
        (
            &[
                "create",
                "y",
                "--version",
                "1.0",
                "--stable-version",
                "0.9\u{202e}",
            ],
            "right-to-left override",
        ),
        (
            &["rollback", "web", "--reason", "oops\u{1b}[2J"],
            "the rollback reason contains a control character",
        ),
        (
            &["rollback", "web", "--reason", "two\nlines"],
            "U+000A line feed",
        ),
        (&["rollback", "web", "--reason", &long], "limit is 2000"),
        (
            &["pause", "web", "--reason", "a\u{9b}b"],
            "the pause reason contains a control character (U+009B)",
        ),
        (
            &["users", "add", "web", "abc\u{202e}fed"],
            "would make it display as another user",
        ),
        (
            &["users", "add", "web", "zero\u{200b}width"],
            "U+200B zero-width space",
        ),
    ]);
    // Every one of those is invalid input: exit 2.
    for args in [
        &["rollback", "web", "--reason", "oops\u{1b}[2J"][..],
        &["users", "add", "web", "abc\u{202e}fed"],
        &["create", "x", "--version", "1\u{7}"],
    ] {
        assert_eq!(cli.exec(args).code, Some(2), "{args:?}");
    }
    // The actor is typed too.
    let ran = exec_cmd(cli.bare().arg("--data-dir").arg(cli.data_dir()).args([
        "--actor",
        "eve\u{1b}[2J",
        "pause",
        "web",
    ]));
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("the actor name contains a control character"),
        "{ran}"
    );
    assert_eq!(cli.rollout("web")["status"], "progressive");
    // A reason at the limit is fine.
    let at_limit = "y".repeat(2000);
    cli.ok(&["rollback", "web", "--reason", &at_limit]);
    assert_eq!(cli.rollout("web")["rollbackReason"], at_limit.as_str());
}

#[test]
fn a_refusal_by_state_exits_1_and_bad_input_exits_2() {
    let cli = Cli::new();
    cli.ok(&["create", "web", "--version", "1.0.0"]);
    cli.ok(&["advance", "web"]);
    assert_eq!(
        cli.exec(&["set-percent", "web", "5"]).code,
        Some(1),
        "already there"
    );
    assert_eq!(cli.exec(&["resume", "web"]).code, Some(1), "not paused");
    assert_eq!(cli.exec(&["set-percent", "web", "101"]).code, Some(2));
    assert_eq!(cli.exec(&["users", "add", "web", "a@@b"]).code, Some(2));
    assert_eq!(
        cli.exec(&["rollback", "web", "--reason", " "]).code,
        Some(2)
    );
    cli.ok(&["rollback", "web", "--reason", "bad canary"]);
    let again = cli.exec(&["rollback", "web", "--reason", "again"]);
    assert_eq!(again.code, Some(1), "{again}");
    assert!(again.stderr.contains("already rolled back"), "{again}");
}

#[test]
fn an_empty_data_dir_is_refused() {
    let cli = Cli::new();
    let config = cli.write_file("config.toml", "data_dir = \"\"\n");
    let ran = exec_cmd(cli.bare().arg("--config").arg(&config).arg("status"));
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("data_dir = \"\" is empty"), "{ran}");
    // clap refuses an empty flag value before the program sees it.
    let ran = exec_cmd(cli.bare().args(["--data-dir", "", "status"]));
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        !cli.home().join("rollouts.db").exists(),
        "nothing was created in the working directory"
    );
}

#[test]
fn non_finite_and_never_failing_gates_are_refused_in_the_config() {
    let cli = Cli::new();
    for (line, key) in [
        (
            "max_error_rate = nan",
            "gates.max_error_rate = NaN is not a number",
        ),
        (
            "max_p99_ratio = inf",
            "gates.max_p99_ratio = inf is not a number",
        ),
        (
            "severe_error_rate = -inf",
            "gates.severe_error_rate = -inf is not a number",
        ),
        ("max_error_rate = 5.0", "gates.max_error_rate = 5 must be"),
        ("max_error_rate = 1.0", "gates.max_error_rate = 1 must be"),
        (
            "min_success_rate = 0.0",
            "gates.min_success_rate = 0 must be",
        ),
        (
            "max_p99_ratio = 0.5",
            "gates.max_p99_ratio = 0.5 must be at least 1",
        ),
        ("max_error_rate = \"of\"", "\"off\" to switch the gate off"),
    ] {
        let config = cli.write_file("gates.toml", &format!("[gates]\n{line}\n"));
        let ran = exec_cmd(cli.bare().arg("--config").arg(&config).arg("check-config"));
        assert_eq!(ran.code, Some(2), "{line}: {ran}");
        assert!(ran.stderr.contains(key), "{line}: expected {key:?}\n{ran}");
        assert!(!ran.stdout.contains("config OK"), "{line}: {ran}");
    }
}

#[test]
fn switching_a_gate_off_is_explicit_and_listed() {
    let cli = Cli::new();
    let config = cli.write_file(
        "gates.toml",
        "[gates]\nmax_error_rate = \"off\"\nmax_p99_ms = 900\n",
    );
    let out = cli_harness::ok_cmd(cli.bare().arg("--config").arg(&config).arg("check-config"));
    assert!(out.contains("  OFF max_error_rate           off"), "{out}");
    assert!(
        out.contains("  on  max_p99_ms               900 ms"),
        "{out}"
    );
    assert!(out.contains("  on  max_p99_ratio            1.5x"), "{out}");
    assert!(out.contains("config OK"), "{out}");
}

#[test]
fn invalid_gates_in_a_document_make_that_rollout_an_error_that_can_still_roll_back() {
    let cli = Cli::new();
    cli.ok(&["create", "ok", "--version", "1.0.0"]);
    cli.ok(&["create", "web", "--version", "1.0.0"]);
    cli.ok(&["advance", "web"]);
    let mut doc = cli.rollout("web");
    let obj = doc.as_object_mut().unwrap();
    obj.remove("id");
    obj.remove("_revision");
    obj.insert("gates".into(), json!({"maxErrorRate": 5.0}));
    cli.put_doc("bad-gates", doc);
    let table = cli.ok(&["status"]);
    assert!(
        table.contains(
            "error: rollout 'bad-gates': field 'gates' is invalid: gates.maxErrorRate = 5 must be"
        ),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("ok ")), "{table}");
    let ran = cli.fail(&["advance", "bad-gates"]);
    assert!(ran.stderr.contains("gates.maxErrorRate"), "{ran}");
    cli.ok(&["rollback", "bad-gates", "--reason", "gates were wrong"]);
    assert_eq!(cli.rollout("bad-gates")["status"], "rolled-back");
}

/// `status --json | head -c 10`: the reader stops early; the command ends quietly.
#[test]
fn a_closed_pipe_ends_json_output_quietly() {
    let cli = Cli::new();
    let store = cli.store();
    let base = hostile_doc();
    for i in 0..300 {
        let mut doc = base.clone();
        doc["version"] = json!(format!("{i}.0.0 {}", "x".repeat(200)));
        block_on(store.create(
            &format!("r{i:03}"),
            doc.as_object().unwrap(),
            &hostile_event(&format!("r{i:03}")),
        ))
        .unwrap();
    }
    for args in [&["status", "--json"][..], &["status"]] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-tui"))
            .arg("--data-dir")
            .arg(cli.data_dir())
            .args(args)
            .env("HOME", cli.home())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe is closed here, with well over a pipe buffer still to write.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// A log that cannot be written (a full disk) never reaches the terminal.
#[test]
fn log_write_failures_stay_off_the_terminal() {
    let cli = Cli::new();
    let logs = cli.data_dir().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink("/dev/full", logs.join("rollout-tui.log")).unwrap();
    let created = cli.exec(&["create", "web", "--version", "1.0.0"]);
    assert!(created.success(), "{created}");
    assert_eq!(created.stderr, "", "{created}");
    // `advance` logs what it applied: that write fails on /dev/full.
    let advanced = cli.exec(&["advance", "web"]);
    assert!(advanced.success(), "{advanced}");
    assert_eq!(advanced.stderr, "", "{advanced}");
    let status = cli.exec(&["status"]);
    assert!(status.success() && status.stderr.is_empty(), "{status}");
    assert!(status.stdout.contains("web"), "{status}");
}
