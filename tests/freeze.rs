//! The freeze (kill switch) through the real binary, on SQLite and on the Firestore
//! emulator: while frozen no command advances or widens a rollout, rollback and pause still
//! work, every screen says who froze it and why, and a driver running in another process
//! holds until the freeze is lifted.

mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rollout_tui::domain::actions::{self, Action, Context, NewRollout};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset};
use rollout_tui::store::RolloutStore;
use rollout_tui::store::firestore::EMULATOR_ENV;
use rollout_tui::store::local::LocalStore;
use serde_json::Value;
use support::emulator;
use tmux::{Tmux, WAIT, sh_quote};

/// The real binary with a config of its own (a store section for Firestore, freeze windows).
struct Bin {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Bin {
    fn new(config: &str) -> Bin {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Bin { dir, config: path }
    }

    fn sqlite() -> Bin {
        Bin::new("")
    }

    fn firestore(host: &str, project: &str) -> Bin {
        Bin::new(&firestore_config(host, project))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = assert_cmd::Command::cargo_bin("rollout-tui").unwrap();
        for var in [
            "ROLLOUT_TUI_CONFIG",
            "ROLLOUT_TUI_DATA_DIR",
            "ROLLOUT_TUI_ACTOR",
            "RUST_LOG",
            EMULATOR_ENV,
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("NO_COLOR", "1")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--actor", "alice"])
            .args(args)
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run rollout-tui");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "`{}` failed:\n{out}\n{err}", args.join(" "));
        out
    }

    /// Fails with exit `code` and says `needle`; returns stderr.
    fn refused(&self, args: &[&str], code: i32, needle: &str) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "`{}`:\n{out}\n{err}", args.join(" "));
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "`{}`: stderr should say {needle:?}:\n{err}",
            args.join(" ")
        );
        err
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json")
    }

    fn rollout(&self, id: &str) -> Value {
        let v: Value =
            serde_json::from_str(&self.ok(&["status", id, "--json"])).expect("status ID --json");
        v["rollouts"][0].clone()
    }

    fn events(&self, id: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["events", id, "--json"])).unwrap();
        v["events"].as_array().unwrap().clone()
    }
}

fn firestore_config(host: &str, project: &str) -> String {
    format!(
        "[store]\nkind = \"firestore\"\nproject_id = \"{project}\"\nemulator_host = \"{host}\"\n"
    )
}

/// Every command path while frozen, then after unfreezing.
fn commands_respect_the_freeze(bin: &Bin) {
    for (id, steps) in [("web", 1), ("api", 1), ("idle", 0)] {
        bin.ok(&[
            "create",
            id,
            "--version",
            "2.0.0",
            "--canary-user",
            "qa@example.com",
        ]);
        for _ in 0..steps {
            bin.ok(&["advance", id]);
        }
    }
    let status = bin.status();
    assert_eq!(status["frozen"], Value::Null, "{status}");

    bin.refused(&["freeze", "--reason", "  "], 2, "--reason");
    let said = bin.ok(&["freeze", "--reason", "INC-42: payments degraded"]);
    assert!(
        said.contains("FROZEN by alice") && said.contains("INC-42: payments degraded"),
        "{said}"
    );
    let frozen = &bin.status()["frozen"];
    assert_eq!(frozen["by"], "alice");
    assert_eq!(frozen["reason"], "INC-42: payments degraded");
    assert!(frozen["at"].is_string(), "{frozen}");
    bin.refused(
        &["freeze", "--reason", "again"],
        1,
        "already FROZEN by alice",
    );
    let text = bin.ok(&["status"]);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("FROZEN by alice")
                && l.contains("INC-42")
                && l.contains("only rollback and pause work")),
        "the first line of status says so:\n{text}"
    );

    // Nothing advances or widens, and nothing is written for the attempt.
    let before = bin.rollout("web");
    let events_before = bin.events("web").len();
    for args in [
        &["advance", "web"][..],
        &["promote", "web", "--force"],
        &["set-percent", "web", "50"],
        &["advance", "idle"],
    ] {
        let err = bin.refused(args, 1, "FROZEN by alice");
        assert!(err.contains("nothing was written"), "{err}");
        assert!(
            err.contains("rollout-tui unfreeze"),
            "says what to do: {err}"
        );
    }
    assert_eq!(bin.rollout("web"), before, "the document is unchanged");
    assert_eq!(bin.events("web").len(), events_before, "no event recorded");

    // What narrows or stops still works.
    bin.ok(&["set-percent", "web", "1"]);
    bin.ok(&["pause", "web", "--reason", "looking"]);
    bin.ok(&["resume", "web"]);
    bin.ok(&["rollback", "api", "--reason", "bad canary"]);
    assert_eq!(bin.rollout("api")["status"], "rolled-back");

    // Lifted: the same moves go through.
    let said = bin.ok(&["unfreeze"]);
    assert!(
        said.contains("unfrozen") && said.contains("INC-42"),
        "{said}"
    );
    assert_eq!(bin.status()["frozen"], Value::Null);
    bin.refused(&["unfreeze"], 1, "not frozen");
    bin.ok(&["advance", "web"]);
    assert!(bin.rollout("web")["rolloutPercentage"].as_f64().unwrap() > 1.0);

    // --pause-all: every running rollout paused, one event each; the others untouched.
    bin.ok(&["advance", "idle"]);
    let said = bin.ok(&["freeze", "--reason", "change freeze", "--pause-all"]);
    assert!(said.contains("web:") && said.contains("idle:"), "{said}");
    for id in ["web", "idle"] {
        let r = bin.rollout(id);
        assert_eq!(r["status"], "paused", "{id}: {r}");
        let newest = &bin.events(id)[0];
        assert_eq!(newest["kind"], "pause", "{id}: {newest}");
        assert_eq!(newest["reason"], "freeze: change freeze", "{newest}");
    }
    assert_eq!(bin.rollout("api")["status"], "rolled-back");
    assert_eq!(
        bin.events("api")[0]["kind"],
        "rollback",
        "no pause for a finished one"
    );
    bin.ok(&["unfreeze"]);
}

#[test]
fn commands_respect_the_freeze_on_sqlite() {
    commands_respect_the_freeze(&Bin::sqlite());
}

#[test]
fn commands_respect_the_freeze_on_firestore() {
    let Some(emu) = emulator::shared() else {
        return;
    };
    commands_respect_the_freeze(&Bin::firestore(&emu.host, &emulator::project("freeze-cli")));
}

#[test]
fn a_freeze_window_in_the_config_stops_advances_and_is_shown_ahead() {
    let now = Utc::now();
    let iso = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let in_force = Bin::new(&format!(
        "[[freeze.windows]]\nname = \"year-end\"\nfrom = \"{}\"\nto = \"{}\"\n",
        iso(now - chrono::Duration::hours(1)),
        iso(now + chrono::Duration::hours(2)),
    ));
    in_force.ok(&["create", "web", "--version", "2.0.0"]);
    let err = in_force.refused(&["advance", "web"], 1, "freeze window 'year-end'");
    assert!(err.contains("until the window ends"), "{err}");
    assert_eq!(in_force.rollout("web")["rolloutPercentage"], 0);
    assert_eq!(in_force.status()["frozen"]["window"], "year-end");
    let text = in_force.ok(&["status"]);
    assert!(
        text.starts_with("FROZEN: freeze window 'year-end' until"),
        "{text}"
    );
    // `unfreeze` lifts only the flag; it says the window still holds.
    in_force.ok(&["freeze", "--reason", "belt and braces"]);
    let said = in_force.ok(&["unfreeze"]);
    assert!(
        said.contains("but FROZEN: freeze window 'year-end'"),
        "{said}"
    );

    let ahead = Bin::new(&format!(
        "[[freeze.windows]]\nname = \"weekend\"\nfrom = \"{}\"\nto = \"{}\"\n",
        iso(now + chrono::Duration::hours(5)),
        iso(now + chrono::Duration::hours(50)),
    ));
    ahead.ok(&["create", "web", "--version", "2.0.0"]);
    let text = ahead.ok(&["status"]);
    assert!(text.starts_with("freeze window 'weekend' from"), "{text}");
    ahead.ok(&["advance", "web"]);

    let broken = Bin::new("[[freeze.windows]]\nname = \"w\"\nevery = \"friday evening\"\n");
    broken.refused(&["status"], 2, "freeze.windows[0]");
}

/// `web` at 5 % of the canary plan, its stage entered an hour ago: with healthy traffic a
/// driver would advance it at its first tick.
async fn seed_ready_to_advance(store: &dyn RolloutStore) {
    let plan = Plan::preset(PlanPreset::Canary);
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let new = NewRollout {
        id: "web".into(),
        version: "2.0.0".into(),
        stable_version: Some("1.9.0".into()),
        plan: plan.clone(),
        hashing: Hashing::FractionalV1,
        stable_revision: Some("svc-1".into()),
        canary_revision: Some("svc-2".into()),
        canary_users: vec!["qa@example.com".into()],
        on_breach: None,
    };
    let (fields, event) = actions::create(&new, "operator", hour_ago).unwrap();
    store.create("web", &fields, &event).await.unwrap();
    let ctx = Context {
        actor: "operator",
        now: hour_ago,
        default_plan: &plan,
        freeze_windows: &[],
    };
    rollout_tui::ops::perform(store, &Default::default(), "web", &Action::Advance, ctx)
        .await
        .unwrap();
}

const SIMULATOR: &str = "[metrics]\nkind = \"simulator\"\nrefresh = \"1s\"\n";

fn percentage(t: &Tmux, config: &str) -> f64 {
    let out = t.cli(&["--config", config, "status", "web", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["rollouts"][0]["rolloutPercentage"].as_f64().unwrap()
}

fn wait_percentage_above(t: &Tmux, config: &str, floor: f64) -> f64 {
    let deadline = std::time::Instant::now() + 2 * WAIT;
    loop {
        let p = percentage(t, config);
        if p > floor {
            return p;
        }
        assert!(std::time::Instant::now() < deadline, "still at {p} %");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The cockpit's `F` freezes with a typed reason; `a` is refused at once; a driver started
/// in the frozen cockpit holds and says why; `F` then `y` unfreezes and the driver advances.
#[test]
fn the_cockpit_freezes_and_its_driver_holds_until_unfrozen_on_sqlite() {
    let Some(t) = Tmux::start("freeze_cockpit", 120, 40) else {
        return;
    };
    let store = LocalStore::open(&LocalStore::default_path(&t.data_dir())).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed_ready_to_advance(&store));
    drop(store);
    let config = t.path("config.toml");
    std::fs::write(&config, SIMULATOR).unwrap();
    let config = config.display().to_string();
    t.launch("", &format!("--config {} --actor bob", sh_quote(&config)));
    t.wait_for("web", WAIT);
    t.keys(&["F"]);
    t.wait_for("FREEZE every rollout", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("type why", WAIT);
    t.type_text("release train halted");
    t.keys(&["Enter"]);
    t.wait_for("FROZEN by bob", WAIT);
    let out = t.cli(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frozen"]["by"], "bob", "{v}");
    assert_eq!(v["frozen"]["reason"], "release train halted");

    t.keys(&["Enter"]);
    t.wait_for("web v2.0.0", WAIT);
    t.keys(&["a"]);
    t.wait_for("only rollback and pause work", WAIT);
    t.keys(&["A"]);
    t.wait_for("not advancing", 2 * WAIT);
    assert_eq!(percentage(&t, &config), 5.0, "the driver held");

    t.keys(&["F"]);
    t.wait_for("Unfreeze?", WAIT);
    t.keys(&["y"]);
    t.wait_for("unfrozen", WAIT);
    let p = wait_percentage_above(&t, &config, 5.0);
    println!("after unfreezing, the driver advanced to {p} %");
    let out = t.cli(&["events", "web", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let newest = &v["events"][0];
    assert!(
        newest["actor"].as_str().unwrap().starts_with("auto:"),
        "the driver advanced: {newest}"
    );
    t.keys(&["A"]);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}

/// A driver in another process (a cockpit with `--auto`) holds while the store is frozen
/// from the command line, and advances once it is unfrozen. `store_config` is the config's
/// store section; `store` the same store, for seeding and reading the audit log.
fn a_driver_in_another_process_holds_while_frozen(
    t: &Tmux,
    store_config: &str,
    store: Arc<dyn RolloutStore>,
) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(seed_ready_to_advance(store.as_ref()));
    let config = t.path("config.toml");
    std::fs::write(&config, format!("{store_config}{SIMULATOR}")).unwrap();
    let config = config.display().to_string();
    let out = t.cli(&["--config", &config, "freeze", "--reason", "INC-7"]);
    assert!(out.status.success(), "{out:?}");

    t.launch("", &format!("--config {} --auto web", sh_quote(&config)));
    t.wait_for_all(&["FROZEN by", "web progressive"], WAIT);
    t.keys(&["Enter"]);
    t.wait_for("web v2.0.0", WAIT);
    t.wait_for("not advancing", 2 * WAIT);
    assert_eq!(percentage(t, &config), 5.0, "the driver held");
    let frozen_events = runtime.block_on(store.list_events("web", 50)).unwrap();
    assert!(
        frozen_events.iter().all(|e| !e.actor.starts_with("auto:")),
        "the driver wrote nothing while frozen: {frozen_events:?}"
    );

    let out = t.cli(&["--config", &config, "unfreeze"]);
    assert!(out.status.success(), "{out:?}");
    let p = wait_percentage_above(t, &config, 5.0);
    println!("after unfreezing, the driver advanced to {p} %");
    t.wait_gone("FROZEN by", WAIT);
    t.keys(&["q"]);
    t.wait_for("Quit while driving?", WAIT);
    t.keys(&["y"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}

#[test]
fn a_driver_in_another_process_holds_while_frozen_on_sqlite() {
    let Some(t) = Tmux::start("freeze_driver_sqlite", 120, 40) else {
        return;
    };
    let store = LocalStore::open(&LocalStore::default_path(&t.data_dir())).unwrap();
    a_driver_in_another_process_holds_while_frozen(&t, "", Arc::new(store));
}

#[test]
fn a_driver_in_another_process_holds_while_frozen_on_firestore() {
    let Some(emu) = emulator::shared() else {
        return;
    };
    let Some(t) = Tmux::start("freeze_driver_fs", 120, 40) else {
        return;
    };
    let project = emulator::project("freeze-driver");
    let store: Arc<dyn RolloutStore> = Arc::new(emu.store(&project));
    a_driver_in_another_process_holds_while_frozen(
        &t,
        &firestore_config(&emu.host, &project),
        store,
    );
}
