//! The cockpit with `[actuator] kind = "cloud-run"` (the real binary in tmux, against the
//! loopback Admin API v2 stand-in): the confirm dialog shows Cloud Run's dry run of the
//! split, `y` sets it before the document, the detail view shows what serves and flags a
//! split changed by someone else, and `T` puts the document's split back. The time from the
//! key press to a confirmed split is printed (run with `--nocapture`), never asserted.

#[path = "support/cloud_run_standin.rs"]
mod cloud_run_standin;
#[path = "support/http_fake.rs"]
mod http_fake;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use cloud_run_standin::{CloudRunStandin, Target, create_web};
use serde_json::Value;
use tmux::*;

fn serving(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    let mut v: Vec<_> = pairs.iter().map(|(r, p)| (r.to_string(), *p)).collect();
    v.sort();
    v
}

fn wait_serving(standin: &CloudRunStandin, want: &[(&str, u32)]) -> Duration {
    let started = Instant::now();
    let want = serving(want);
    while standin.serving() != want {
        assert!(
            started.elapsed() < WAIT * 2,
            "Cloud Run never served {want:?}; it serves {:?}",
            standin.serving()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

#[test]
fn the_cockpit_plans_sets_and_repairs_the_split() {
    let Some(t) = Tmux::start("cloud_run_cockpit", 120, 40) else {
        return;
    };
    let standin = CloudRunStandin::start("svc-1", &["svc-1", "svc-2"]);
    standin.with(|s| s.op_polls = 1);
    let config = t.path("config.toml");
    std::fs::write(&config, standin.screen_config()).unwrap();
    let config = config.display().to_string();
    let cli = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let out = t.cli(&all);
        assert!(out.status.success(), "{args:?}: {out:?}");
        out
    };
    cli(&create_web("svc-2"));
    cli(&["advance", "web"]);
    assert_eq!(standin.serving(), serving(&[("svc-1", 95), ("svc-2", 5)]));

    t.launch("", &format!("--config {} --actor bob", sh_quote(&config)));
    t.wait_for("web", WAIT);
    t.keys(&["Enter"]);
    t.wait_for("Cloud Run  svc-1 95 % · svc-2 5 %", WAIT);

    // The dialog shows the split and Cloud Run's dry run of it; nothing changes yet.
    let patches_before = standin.with(|s| s.applied.len());
    t.keys(&["a"]);
    let screen = t.wait_for("Cloud Run dry run OK: svc-1 75 % · svc-2 25 %", WAIT);
    // No metrics source: health is unknown, so the move needs an override reason.
    assert!(screen.contains("This overrides:"), "{screen}");
    t.type_text("checked by hand");
    assert_eq!(standin.with(|s| s.applied.len()), patches_before);
    assert_eq!(standin.serving(), serving(&[("svc-1", 95), ("svc-2", 5)]));

    let pressed = Instant::now();
    t.keys(&["Enter"]);
    wait_serving(&standin, &[("svc-1", 75), ("svc-2", 25)]);
    let confirmed = pressed.elapsed();
    t.wait_for("Cloud Run  svc-1 75 % · svc-2 25 %", WAIT);
    println!(
        "key press to confirmed split (stand-in, one operation poll, shipped polling): {confirmed:?}"
    );
    let out = cli(&["status", "web", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rollouts"][0]["rolloutPercentage"], 25, "{v}");
    assert_eq!(v["rollouts"][0]["cloudRun"]["drift"], false, "{v}");

    // Cloud Run refuses: the dialog's dry run already says so, the write is refused with the
    // reason, and the document stays where it was.
    standin.with(|s| s.forbid_updates = Some("Permission 'run.services.update' denied".into()));
    t.keys(&["a"]);
    t.wait_for("Cloud Run dry run FAILED", WAIT);
    t.type_text("checked by hand");
    t.keys(&["Enter"]);
    t.wait_for(
        "advance FAILED: nothing was written to the rollout: Cloud Run refused",
        WAIT,
    );
    let out = cli(&["status", "web", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rollouts"][0]["rolloutPercentage"], 25, "{v}");
    assert_eq!(v["rollouts"][0]["cloudRun"]["drift"], false, "{v}");
    standin.with(|s| s.forbid_updates = None);

    // Someone moves the split by hand: the detail view flags it with the way out.
    standin.set_split(vec![
        Target::revision("svc-1", 50),
        Target::revision("svc-2", 50),
    ]);
    t.wait_for_all(
        &[
            "DRIFT: Cloud Run serves svc-1 50 % · svc-2 50 %",
            "T: re-apply the document's split",
        ],
        WAIT,
    );
    t.keys(&["T"]);
    t.wait_for("Re-apply web's split on Cloud Run?", WAIT);
    t.keys(&["y"]);
    wait_serving(&standin, &[("svc-1", 75), ("svc-2", 25)]);
    t.wait_for("traffic re-applied", WAIT);
    t.wait_gone("DRIFT:", WAIT);

    // The rollback dialog names the split it sets: 100 % stable.
    t.keys(&["R"]);
    t.wait_for("Cloud Run dry run OK: svc-1 100 %", WAIT);
    t.type_text("checkout errors");
    t.keys(&["Enter"]);
    wait_serving(&standin, &[("svc-1", 100)]);
    t.wait_for("Cloud Run  svc-1 100 %", WAIT);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
}
