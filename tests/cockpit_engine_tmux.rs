//! End to end in tmux: what the engine's supervision and the shell's quitting look like to
//! an operator. A failed background task is reported and restarted while the cockpit stays
//! usable on the alternate screen; quitting with a write in flight waits for it, and says
//! what became of it.

#[path = "support/tmux.rs"]
mod tmux;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tmux::*;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_panicking_sampler_is_reported_and_restarted_while_the_cockpit_stays_usable() {
    let Some(t) = Tmux::start("sampler_panic", 120, 40) else {
        return;
    };
    t.launch("ROLLOUT_TUI_SAMPLER_PANIC_FOR_TEST=1", "demo");
    let screen = t.wait_for("sampler failed (sampler panic requested", LONG);
    assert!(screen.contains("restarting in"), "{screen}");
    assert!(
        t.alternate_screen_on(),
        "the panic left the alternate screen"
    );
    // The restarted sampler judges the rollouts: verdicts appear.
    t.wait_for("✔ pass", LONG);
    // Keys still work: open a rollout and come back.
    t.keys(&["Enter"]);
    t.wait_for("Stable vs canary", LONG);
    // Escape and q in one burst would read as alt-q: wait for the overview in between.
    t.keys(&["Escape"]);
    t.wait_gone("Stable vs canary", LONG);
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(LONG), 0);
    assert!(!t.alternate_screen_on());
    assert_cooked(&t.stty_in_pane(), "after a sampler panic");
}

/// Another process holding the store's write lock, until dropped.
struct HeldLock(Child);

impl HeldLock {
    fn take(db: &std::path::Path) -> Option<HeldLock> {
        let script = format!(
            "import sqlite3, sys\nc = sqlite3.connect({:?}, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('LOCKED', flush=True)\nsys.stdin.read()\n",
            db.display().to_string()
        );
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut()?)
            .read_line(&mut line)
            .ok()?;
        assert_eq!(line.trim(), "LOCKED");
        Some(HeldLock(child))
    }

    fn release(mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Starts the cockpit on a store with one running rollout and begins a rollback that the
/// store cannot answer yet (another process holds its lock), then quits.
fn quit_during_a_blocked_rollback(test: &str) -> Option<(Tmux, HeldLock)> {
    let t = Tmux::start(test, 120, 40)?;
    for args in [
        &["create", "web", "--version", "2.0.0"][..],
        &["advance", "web"],
    ] {
        let out = t.cli(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    t.launch("", "");
    t.wait_for("web", LONG);
    let lock = HeldLock::take(&t.data_dir().join("rollouts.db"))?;
    t.keys(&["Enter"]);
    t.wait_for("Stable vs canary", LONG);
    t.keys(&["R"]);
    t.wait_for("ROLL BACK web", LONG);
    t.type_text("bad canary");
    t.keys(&["Enter", "q"]);
    t.wait_for("quitting: waiting for 1 write(s)", LONG);
    Some((t, lock))
}

#[test]
fn quitting_waits_for_a_write_in_flight_and_it_lands() {
    let Some((t, lock)) = quit_during_a_blocked_rollback("quit_write_lands") else {
        return;
    };
    lock.release();
    assert_eq!(t.wait_exit(LONG), 0);
    let v = t.status_json("web");
    assert_eq!(v["status"], "rolled-back", "{v}");
    assert_eq!(v["rollbackReason"], "bad canary", "{v}");
    assert_cooked(&t.stty_in_pane(), "after quitting with a write");
}

#[test]
fn quitting_with_a_write_that_fails_says_so() {
    let Some((t, lock)) = quit_during_a_blocked_rollback("quit_write_fails") else {
        return;
    };
    // The lock stays held: the store gives up on the write (after its bounded wait).
    let (screen, _) = t.wait_until("the exit code and the failure", LONG, |s| {
        s.contains("EXIT=1") && s.contains("rollback of web failed")
    });
    assert!(screen.contains("locked"), "{screen}");
    drop(lock);
    let v = t.status_json("web");
    assert_eq!(v["status"], "progressive", "nothing was written: {v}");
}
