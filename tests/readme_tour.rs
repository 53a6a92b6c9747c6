//! The README's CLI tour, run as written (with `rt` pointing at the built binary and a
//! temporary data directory), so the README cannot drift from the code.

use std::process::Command;

use serde_json::Value;

/// The `sh` block under "## A tour of the CLI".
fn tour() -> String {
    let readme = include_str!("../README.md");
    let section = readme
        .split("## A tour of the CLI")
        .nth(1)
        .expect("README has a CLI tour");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the tour is a sh block");
    block.to_string()
}

#[test]
fn every_command_of_the_readme_tour_works_as_written() {
    let script = tour();
    let alias = script
        .lines()
        .find(|l| l.starts_with("alias rt="))
        .expect("the tour defines rt");
    assert!(
        alias.contains("cargo run --release -q -- --data-dir"),
        "{alias}"
    );
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("tour");
    let bin = env!("CARGO_BIN_EXE_rollout-tui");
    // The alias runs the release build through cargo; the test runs the same binary directly.
    let body = script.replace(
        alias,
        &format!(
            "rt() {{ '{bin}' --data-dir '{}' --actor tour \"$@\"; }}",
            data.display()
        ),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{body}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("share"))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a tour command failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // The tour's end state, read back from the same store.
    let status = Command::new(bin)
        .args(["--data-dir"])
        .arg(&data)
        .args(["status", "--json"])
        .env("HOME", home.path())
        .env_remove("ROLLOUT_TUI_CONFIG")
        .output()
        .unwrap();
    assert!(status.status.success());
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    let by_id = |id: &str| {
        v["rollouts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {v}"))
            .clone()
    };
    let current = by_id("current");
    // Rolled back, then a new canary revision restarted the plan.
    assert_eq!(current["canaryRevision"], "svc-00099-abc", "{current}");
    assert_eq!(current["currentStage"], 0, "{current}");
    assert_eq!(current["status"], "canary", "{current}");
    let users: Vec<&str> = current["canaryUsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(users, ["alec@getaifactory.com", "bob@example.com"]);
    assert_eq!(current["excludedUsers"][0], "ci-bot");
    assert_eq!(by_id("search-v2")["rolloutPercentage"], 1);
    let ocr = by_id("ocr-fallback");
    assert_eq!(ocr["rolloutPercentage"], 100, "{ocr}");
    // The audit log holds every step the tour took on `current`.
    assert!(stdout.contains("CSS 404 on the login page"), "{stdout}");
}
