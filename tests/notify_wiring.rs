//! Notifications from the real binary: a command and the cockpit each announce the
//! transitions they make, once, to a loopback webhook receiver; later refreshes and other
//! writers' changes never repeat them.

#[path = "support/http_fake.rs"]
mod http_fake;
#[path = "support/tmux.rs"]
mod tmux;
#[path = "support/webhook.rs"]
mod webhook;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_fake::{FakeServer, Response};
use tmux::{Tmux, WAIT, sh_quote};
use webhook::{bodies, counts};

fn wait_counts(server: &FakeServer, what: &str, ok: impl Fn(&BTreeMap<String, usize>) -> bool) {
    let deadline = Instant::now() + 2 * WAIT;
    loop {
        let c = counts(server);
        if ok(&c) {
            return;
        }
        assert!(Instant::now() < deadline, "waited for {what}; got {c:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run(t: &Tmux, config: &str, args: &[&str]) {
    let mut all = vec!["--config", config];
    all.extend_from_slice(args);
    let out = t.cli(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn commands_and_the_cockpit_announce_their_own_transitions_once() {
    let Some(t) = Tmux::start("notify_wiring", 120, 40) else {
        return;
    };
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let config = t.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\nkind = \"simulator\"\nrefresh = \"1s\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
            server.url()
        ),
    )
    .unwrap();
    let config = config.display().to_string();

    // From the command line: a pause (a halt), a rollback, a freeze; an advance is not news.
    for id in ["web", "api"] {
        run(&t, &config, &["create", id, "--version", "2.0.0"]);
        run(&t, &config, &["advance", id]);
    }
    assert!(counts(&server).is_empty(), "{:?}", counts(&server));
    run(&t, &config, &["pause", "web", "--reason", "looking"]);
    run(&t, &config, &["rollback", "web", "--reason", "bad canary"]);
    run(&t, &config, &["freeze", "--reason", "INC-9"]);
    run(&t, &config, &["unfreeze"]);
    let expected = BTreeMap::from([
        ("freeze".to_string(), 1),
        ("halt".to_string(), 1),
        ("rollback".to_string(), 1),
    ]);
    assert_eq!(counts(&server), expected);
    let rollback = bodies(&server)
        .into_iter()
        .find(|b| b["event"] == "rollback")
        .unwrap();
    assert_eq!(rollback["rollout"]["id"], "web", "{rollback}");
    assert_eq!(rollback["reason"], "bad canary", "{rollback}");

    // The cockpit announces its own rollback once, and not the changes others make.
    t.launch("", &format!("--config {} --actor bob", sh_quote(&config)));
    t.wait_for_all(&["web", "api"], WAIT);
    t.keys(&["/"]);
    t.type_text("api");
    t.keys(&["Enter", "Enter"]);
    t.wait_for("api v2.0.0", WAIT);
    t.keys(&["R"]);
    t.type_text("error budget gone");
    t.keys(&["Enter"]);
    wait_counts(&server, "the cockpit's rollback", |c| {
        c.get("rollback") == Some(&2)
    });
    // Other writers' changes reach the cockpit (each re-reads the audit log) and are theirs.
    t.wait_for("rolled-back", WAIT);
    t.keys(&["u"]);
    for user in ["a@example.com", "b@example.com", "c@example.com"] {
        run(&t, &config, &["users", "add", "api", user]);
    }
    t.wait_for("c@example.com", WAIT);
    let newest = bodies(&server)
        .into_iter()
        .rfind(|b| b["event"] == "rollback")
        .unwrap();
    assert_eq!(newest["rollout"]["id"], "api", "{newest}");
    assert_eq!(newest["actor"], "bob", "{newest}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    let mut expected_after = expected.clone();
    expected_after.insert("rollback".into(), 2);
    assert_eq!(counts(&server), expected_after, "nothing repeated");
}

/// A driver's own decision is announced by the cockpit running it, once: the demo's
/// latency fault on `ocr-fallback` makes auto-progression halt it.
#[test]
fn a_drivers_halt_is_announced_once_by_its_cockpit() {
    let Some(t) = Tmux::start("notify_driver", 120, 40) else {
        return;
    };
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let config = t.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"{}/hook\"\nevents = [\"halt\", \"rollback\"]\n",
            server.url()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    t.launch(
        "",
        &format!(
            "--config {} demo --speed 60 --auto ocr-fallback",
            sh_quote(&config)
        ),
    );
    wait_counts(&server, "the driver's halt", |c| c.get("halt") == Some(&1));
    let halt = bodies(&server)
        .into_iter()
        .find(|b| b["event"] == "halt")
        .unwrap();
    assert_eq!(halt["rollout"]["id"], "ocr-fallback", "{halt}");
    assert!(
        halt["actor"].as_str().unwrap().starts_with("auto:"),
        "{halt}"
    );
    assert_eq!(
        halt["rollout"]["status"], "paused",
        "the rollout as written: {halt}"
    );
    t.keys(&["q"]);
    t.wait_for("Quit while driving?", WAIT);
    t.keys(&["y"]);
    assert_eq!(t.wait_exit(WAIT), 0);
    assert_eq!(
        counts(&server),
        BTreeMap::from([("halt".to_string(), 1)]),
        "announced once"
    );
}
