//! Edits that should succeed, do (issue 9): eight writers racing on one rollout through the
//! real binary all get through with one event each, and user lists of 100,000 keys can be
//! edited, on the embedded store and on the official Firestore emulator.

#[path = "support/cli_harness.rs"]
mod cli_harness;
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use cli_harness::{Cli, Ran, block_on, exec_cmd};
use rollout_tui::domain::actions::{self, NewRollout};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset, field};
use rollout_tui::store::RolloutStore;
use serde_json::Value;
use support::emulator;

const WRITERS: usize = 8;
const EDITS: usize = 50;
const ID: &str = "web";

/// The binary on one store: the embedded one, or Firestore through a config file.
struct Target {
    cli: Cli,
    config: Option<PathBuf>,
    store: Arc<dyn RolloutStore>,
}

impl Target {
    fn local() -> Target {
        let cli = Cli::new();
        let store: Arc<dyn RolloutStore> = Arc::new(cli.store());
        Target {
            cli,
            config: None,
            store,
        }
    }

    fn firestore(name: &str) -> Option<Target> {
        let e = emulator::shared()?;
        let project = emulator::project(name);
        let cli = Cli::new();
        let config = cli.write_file(
            "config.toml",
            &format!(
                "[store]\nkind = \"firestore\"\nproject_id = \"{project}\"\nemulator_host = \"{}\"\n",
                e.host
            ),
        );
        Some(Target {
            cli,
            config: Some(config),
            store: Arc::new(e.store(&project)),
        })
    }

    fn exec(&self, args: &[&str]) -> Ran {
        let mut cmd = self.cli.command(args);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        exec_cmd(&mut cmd)
    }

    fn ok(&self, args: &[&str]) -> String {
        let ran = self.exec(args);
        assert!(ran.success(), "{args:?}\n{ran}");
        ran.stdout
    }

    /// A rollout at 5 % with `users` canary users, written straight to the store.
    fn create(&self, users: Vec<String>) {
        let plan = Plan::preset(PlanPreset::Canary);
        let new = NewRollout {
            id: ID.into(),
            version: "2.0.0".into(),
            stable_version: None,
            plan,
            hashing: Hashing::FractionalV1,
            stable_revision: None,
            canary_revision: None,
            canary_users: Vec::new(),
            on_breach: None,
        };
        let (mut fields, event) = actions::create(&new, "setup", chrono::Utc::now()).unwrap();
        fields.insert(field::CANARY_USERS.into(), Value::from(users));
        block_on(self.store.create(ID, &fields, &event)).unwrap();
        self.ok(&["advance", ID]);
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let v: Value =
            serde_json::from_str(&self.ok(&["events", ID, "--json", "--limit", "100000"])).unwrap();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    }

    fn rollout(&self) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["status", ID, "--json"])).unwrap();
        v["rollouts"][0].clone()
    }
}

/// Runs `WRITERS` threads, each running `EDITS` commands; returns every result.
fn race(target: &Target, command: impl Fn(usize, usize) -> Vec<String> + Sync) -> Vec<Ran> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let command = &command;
                s.spawn(move || {
                    (0..EDITS)
                        .map(|i| {
                            let args = command(w, i);
                            let args: Vec<&str> = args.iter().map(String::as_str).collect();
                            target.exec(&args)
                        })
                        .collect::<Vec<Ran>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn assert_all_applied(runs: &[Ran], what: &str) {
    let refused: Vec<&Ran> = runs.iter().filter(|r| !r.success()).collect();
    assert!(
        refused.is_empty(),
        "{what}: {} of {} refused; first:\n{}",
        refused.len(),
        runs.len(),
        refused[0]
    );
}

fn users_add_race(target: &Target) {
    target.create(vec!["first@example.com".into()]);
    let runs = race(target, |w, i| {
        vec![
            "users".into(),
            "add".into(),
            ID.into(),
            format!("w{w}-e{i}@example.com"),
        ]
    });
    assert_all_applied(&runs, "users add");
    let r = target.rollout();
    let users = r["canaryUsers"].as_array().unwrap();
    assert_eq!(users.len(), 1 + WRITERS * EDITS, "every key kept");
    for w in 0..WRITERS {
        for i in 0..EDITS {
            let k = format!("w{w}-e{i}@example.com");
            assert!(users.iter().any(|u| u == k.as_str()), "{k} lost");
        }
    }
    let events = target.events("add-users");
    assert_eq!(events.len(), WRITERS * EDITS, "one event per edit");
}

fn set_percent_race(target: &Target) {
    target.create(Vec::new());
    // Every command asks for a value nobody else asks for, so none can be "already there".
    let value = |w: usize, i: usize| format!("{:.1}", (w * EDITS + i + 1) as f64 * 0.2);
    let runs = race(target, |w, i| {
        vec!["set-percent".into(), ID.into(), value(w, i)]
    });
    assert_all_applied(&runs, "set-percent");
    let events = target.events("set-percent");
    assert_eq!(events.len(), WRITERS * EDITS, "one event per edit");
    // The last event says what the document holds.
    let newest = &events[0];
    assert_eq!(
        newest["after"]["rolloutPercentage"],
        target.rollout()["rolloutPercentage"]
    );
}

#[test]
fn eight_writers_adding_users_all_succeed_on_sqlite() {
    users_add_race(&Target::local());
}

#[test]
fn eight_writers_setting_percentages_all_succeed_on_sqlite() {
    set_percent_race(&Target::local());
}

#[test]
fn eight_writers_adding_users_all_succeed_on_firestore() {
    let Some(t) = Target::firestore("race-users") else {
        return;
    };
    users_add_race(&t);
}

#[test]
fn eight_writers_setting_percentages_all_succeed_on_firestore() {
    let Some(t) = Target::firestore("race-percent") else {
        return;
    };
    set_percent_race(&t);
}

/// Adds, removes and lists on a list of `n` keys; each event records only the change.
fn edit_a_big_list(target: &Target, key: impl Fn(usize) -> String, n: usize) {
    target.create((0..n).map(&key).collect());
    target.ok(&["users", "add", ID, "newcomer@example.com"]);
    target.ok(&["users", "remove", ID, &key(n / 2)]);
    target.ok(&["users", "add", ID, "--excluded", "bot@example.com"]);
    let listed = target.ok(&["users", "list", ID]);
    assert_eq!(listed.lines().count(), n, "{n} - 1 + 1 keys");
    assert!(listed.contains("newcomer@example.com"));
    assert!(!listed.lines().any(|l| l == key(n / 2)));
    for kind in ["add-users", "remove-users"] {
        for e in target.events(kind) {
            let size = e.to_string().len();
            assert!(size < 2_000, "a {kind} event of {size} bytes: {e}");
        }
    }
    let added = &target.events("add-users")[1];
    assert_eq!(added["before"]["canaryUsers"]["count"], n);
    assert_eq!(added["after"]["canaryUsers"]["count"], n + 1);
    assert_eq!(
        added["after"]["canaryUsers"]["added"][0],
        "newcomer@example.com"
    );
    let removed = &target.events("remove-users")[0];
    assert_eq!(
        removed["after"]["canaryUsers"]["removed"][0],
        key(n / 2).as_str()
    );
    let text = target.ok(&["events", ID, "--limit", "3"]);
    assert!(
        text.contains(&format!("canaryUsers -{} ({} -> {n})", key(n / 2), n + 1)),
        "{text}"
    );
}

#[test]
fn a_100k_email_list_is_edited_on_sqlite() {
    edit_a_big_list(
        &Target::local(),
        |i| format!("user{i:06}@example.com"),
        100_000,
    );
}

/// Firestore caps a document at 1 MiB: 100,000 short user ids fit (about 0.9 MB); 100,000
/// email addresses cannot be stored in one document at all, by Firestore's own limit.
#[test]
fn a_100k_id_list_is_edited_on_firestore() {
    let Some(t) = Target::firestore("big-list") else {
        return;
    };
    edit_a_big_list(&t, |i| format!("u{i:06}"), 100_000);
}
