//! A harness for end-to-end tests of the `rollout-tui` binary.
//!
//! Every `Cli` owns a temporary home directory. Commands run with a clean
//! environment: HOME and the XDG directories point into that directory and the
//! `ROLLOUT_TUI_*` variables are removed, so the user's real config and data are
//! never read. `run` adds `--data-dir <tmp>/data --actor tester`; `bare` adds
//! nothing, for tests of how flags, variables and config files combine.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use chrono::Utc;
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::rollout::Fields;
use rollout_tui::store::local::LocalStore;
use rollout_tui::store::{RolloutStore, StoredRollout};
use serde_json::Value;
use tempfile::TempDir;

pub const BIN: &str = "rollout-tui";
pub const ACTOR: &str = "tester";

const CLEARED_ENV: [&str; 4] = [
    "ROLLOUT_TUI_CONFIG",
    "ROLLOUT_TUI_DATA_DIR",
    "ROLLOUT_TUI_ACTOR",
    "RUST_LOG",
];

pub struct Cli {
    home: TempDir,
}

impl Default for Cli {
    fn default() -> Self {
        Cli::new()
    }
}

/// The parts of a finished command the tests look at.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Ran {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A failure the program reported itself: non-zero exit, no panic, no signal.
    pub fn is_clean_failure(&self) -> bool {
        matches!(self.code, Some(c) if c != 0 && c != 101) && !self.stderr.contains("panicked")
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Cli {
    pub fn new() -> Cli {
        let home = tempfile::Builder::new()
            .prefix("rollout-tui-cli-")
            .tempdir()
            .expect("temp dir");
        Cli { home }
    }

    /// The temporary home directory; everything a test writes lives below it.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path inside the temporary home directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.home().join(relative)
    }

    /// The data directory `run` passes with `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    pub fn db_path(&self) -> PathBuf {
        LocalStore::default_path(&self.data_dir())
    }

    /// Writes a file below the home directory and returns its path.
    pub fn write_file(&self, relative: &str, text: &str) -> PathBuf {
        let p = self.path(relative);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).expect("create parent dir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }

    /// The binary with an isolated environment and no arguments at all.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::cargo_bin(BIN).expect("the rollout-tui binary is built");
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env("XDG_CACHE_HOME", self.path("xdg-cache"))
            .env("NO_COLOR", "1")
            .current_dir(self.home());
        cmd
    }

    /// `rollout-tui --data-dir <data> --actor tester <args>`.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .args(["--actor", ACTOR])
            .args(args);
        cmd
    }

    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command(args).output().expect("run rollout-tui")
    }

    pub fn exec<S: AsRef<OsStr>>(&self, args: &[S]) -> Ran {
        self.run(args).into()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let ran = self.exec(args);
        assert!(ran.success(), "`{}` should succeed\n{ran}", show(args));
        ran.stdout
    }

    /// Runs a command that must succeed and print one JSON value.
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        parse_json(&self.ok(args), &show(args))
    }

    /// Runs a command that must fail cleanly; returns what it said.
    pub fn fail<S: AsRef<OsStr>>(&self, args: &[S]) -> Ran {
        let ran = self.exec(args);
        assert!(
            ran.is_clean_failure(),
            "`{}` should fail cleanly\n{ran}",
            show(args)
        );
        ran
    }

    /// The stored state as the CLI shows it: `status --json`, and `events ID --json`
    /// of every rollout in it (concatenated, one line per rollout).
    pub fn snapshot(&self) -> (String, String) {
        let status = self.ok(&["status", "--json"]);
        let events = rollout_ids(&parse_json(&status, "status --json"))
            .iter()
            .map(|id| self.ok(&["events", id.as_str(), "--json", "--limit", "100000"]))
            .collect::<String>();
        (status, events)
    }

    /// Checks that a command is refused: non-zero exit without a panic, stderr
    /// containing `needle`, and the store byte-for-byte unchanged.
    pub fn check_rejected<S: AsRef<OsStr>>(&self, args: &[S], needle: &str) -> Result<Ran, String> {
        let before = self.snapshot();
        let ran = self.exec(args);
        let after = self.snapshot();
        let mut problems = Vec::new();
        if !ran.is_clean_failure() {
            problems.push("it did not fail cleanly".to_string());
        }
        if !ran.stderr.contains(needle) {
            problems.push(format!("stderr does not mention {needle:?}"));
        }
        if before.0 != after.0 {
            problems.push(format!(
                "`status --json` changed:\n  before {}\n  after  {}",
                before.0, after.0
            ));
        }
        if before.1 != after.1 {
            problems.push(format!(
                "the events changed:\n  before {}\n  after  {}",
                before.1, after.1
            ));
        }
        if problems.is_empty() {
            Ok(ran)
        } else {
            Err(format!("`{}`: {}\n{ran}", show(args), problems.join("; ")))
        }
    }

    pub fn rejects<S: AsRef<OsStr>>(&self, args: &[S], needle: &str) -> Ran {
        self.check_rejected(args, needle)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs every `(args, needle)` case through `check_rejected` and reports all
    /// the cases that misbehave at once.
    pub fn rejects_all(&self, cases: &[(&[&str], &str)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(args, needle)| self.check_rejected(args, needle).err())
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases misbehaved:\n\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }

    /// One rollout as `status ID --json` shows it.
    pub fn rollout(&self, id: &str) -> Value {
        let v = self.json(&["status", id, "--json"]);
        let list = v["rollouts"]
            .as_array()
            .unwrap_or_else(|| panic!("no rollouts list: {v}"));
        assert_eq!(list.len(), 1, "status {id} --json: {v}");
        assert_eq!(list[0]["id"], id, "{v}");
        list[0].clone()
    }

    /// The events of a rollout, newest first.
    pub fn events(&self, id: &str) -> Vec<Value> {
        let v = self.json(&["events", id, "--json", "--limit", "100000"]);
        v["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events list: {v}"))
            .clone()
    }

    /// Opens the SQLite store in the data directory directly (as another tool would).
    pub fn store(&self) -> LocalStore {
        LocalStore::open(&self.db_path()).expect("open the local store")
    }

    /// Writes a document straight into the store, bypassing every validation.
    pub fn put_doc(&self, id: &str, doc: Value) -> StoredRollout {
        let fields = as_fields(doc);
        let event = Event {
            rollout_id: id.to_string(),
            kind: EventKind::Create,
            actor: "another-tool".into(),
            at: Utc::now(),
            before: Value::Null,
            after: Value::Object(fields.clone()),
            reason: None,
            gate_report: None,
        };
        let store = self.store();
        block_on(store.create(id, &fields, &event)).unwrap_or_else(|e| panic!("create {id}: {e}"))
    }

    /// A document exactly as stored.
    pub fn stored(&self, id: &str) -> StoredRollout {
        let store = self.store();
        block_on(store.get(id))
            .expect("store get")
            .unwrap_or_else(|| panic!("rollout {id} is not stored"))
    }
}

/// Runs a prepared command (from `bare` or `command`) and captures what it said.
pub fn exec_cmd(cmd: &mut Command) -> Ran {
    cmd.output().expect("run rollout-tui").into()
}

/// Runs a prepared command that must succeed; returns its stdout.
pub fn ok_cmd(cmd: &mut Command) -> String {
    let ran = exec_cmd(cmd);
    assert!(ran.success(), "{cmd:?} should succeed\n{ran}");
    ran.stdout
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(f)
}

pub fn as_fields(doc: Value) -> Fields {
    match doc {
        Value::Object(m) => m,
        other => panic!("a document must be a JSON object, not {other}"),
    }
}

pub fn parse_json(text: &str, what: &str) -> Value {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("`{what}` printed no JSON ({e}):\n{text}"))
}

pub fn rollout_ids(status: &Value) -> Vec<String> {
    status["rollouts"]
        .as_array()
        .unwrap_or_else(|| panic!("no rollouts list: {status}"))
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .unwrap_or_else(|| panic!("rollout without id: {r}"))
                .to_string()
        })
        .collect()
}

pub fn show<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| format!("{:?}", a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}
