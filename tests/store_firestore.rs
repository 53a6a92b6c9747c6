//! The Firestore store against the official emulator: the conformance suite,
//! documents written by other clients, the real CLI, concurrency, and faults.
//! Without the emulator every test prints a loud notice and passes, unless
//! `ROLLOUT_TUI_REQUIRE_EMULATOR=1` (CI), where it fails.
//!
//! Measurements are printed, never asserted: run
//! `cargo test --test store_firestore -- --nocapture measure` to see them.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::rollout::field;
use rollout_tui::store::firestore::{EMULATOR_ENV, FirestoreStore};
use rollout_tui::store::{
    LeaseOutcome, Patch, RolloutStore, StoreChange, StoreError, StoredRollout,
};
use serde_json::{Value, json};
use support::conformance::{self, create_event, event, seed_doc};
use support::emulator::{self, Emulator, Rest};
use tokio::sync::mpsc::Receiver;

const WRITERS: usize = 8;
const EDITS: usize = 50;
/// How long a change may take to be heard before a test fails: a deadline against hangs,
/// generous so a busy machine never trips it (latencies are printed, not asserted).
const SOON: Duration = Duration::from_secs(30);
/// How long one CLI command may run before it counts as hung.
const HANG: Duration = Duration::from_secs(60);

macro_rules! emulator_or_skip {
    () => {
        match emulator::shared() {
            Some(e) => e,
            None => return,
        }
    };
}

fn add_user(doc: &StoredRollout, user: &str) -> (Patch, Event) {
    let mut users = doc.fields["canaryUsers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    users.push(json!(user));
    let mut patch = Patch::default();
    patch.set("canaryUsers", Value::Array(users));
    let ev = event(
        &doc.id,
        EventKind::AddUsers,
        Utc::now(),
        json!({}),
        json!({"canaryUsers": [user]}),
    );
    (patch, ev)
}

async fn next_change(rx: &mut Receiver<StoreChange>, within: Duration) -> StoreChange {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no change within {within:?}"))
        .expect("the watch stream ended")
}

async fn next_upsert(rx: &mut Receiver<StoreChange>, within: Duration) -> StoredRollout {
    match next_change(rx, within).await {
        StoreChange::Upserted(doc) => doc,
        other => panic!("expected Upserted, got {other:?}"),
    }
}

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} median {:.1?} p99 {:.1?} min {:.1?} max {:.1?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[0],
        samples[samples.len() - 1]
    )
}

/// The real binary with `[store] kind = "firestore"` in a temporary config.
struct Cli {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Cli {
    fn new(emulator_host: &str, project: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nkind = \"firestore\"\nproject_id = \"{project}\"\nemulator_host = \"{emulator_host}\"\n"
            ),
        )
        .unwrap();
        Cli { dir, config }
    }

    fn command(&self, args: &[&str]) -> assert_cmd::Command {
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
        cmd.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("NO_COLOR", "1")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--actor", "tester"])
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().expect("run rollout-tui");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "`{}` failed:\n{stdout}\n{stderr}", args.join(" "));
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{text}", args.join(" ")))
    }

    fn fails(&self, args: &[&str], needle: &str) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(!ok, "`{}` should fail:\n{stdout}", args.join(" "));
        assert!(
            stderr.contains(needle) && !stderr.contains("panicked"),
            "`{}`: stderr should mention {needle:?}:\n{stderr}",
            args.join(" ")
        );
        stderr
    }

    fn rollout(&self, id: &str) -> Value {
        let v = self.json(&["status", id, "--json"]);
        v["rollouts"][0].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let emu = emulator_or_skip!();
    conformance::run_all(|| async {
        Arc::new(emu.store(&emulator::project("conformance"))) as Arc<dyn RolloutStore>
    })
    .await;
}

/// The existing document shape with typed values, and fields rollout-tui does not know.
fn typed_seed(project: &str) -> Value {
    json!({"fields": {
        "version": {"stringValue": "0.1.1"},
        "status": {"stringValue": "canary"},
        "canaryUsers": {"arrayValue": {"values": [{"stringValue": "alec@getaifactory.com"}]}},
        "rolloutPercentage": {"integerValue": "0"},
        "rolloutStrategy": {"stringValue": "manual"},
        "stableRevision": {"stringValue": "svc-00097-6cg"},
        "canaryRevision": {"stringValue": "svc-00098-xyz"},
        "startedAt": {"timestampValue": "2025-12-03T10:00:00.123456Z"},
        "canaryErrors": {"integerValue": "0"},
        "stableErrors": {"integerValue": "3"},
        // Unknown to rollout-tui:
        "owner": {"mapValue": {"fields": {
            "team": {"stringValue": "payments"},
            "pager": {"arrayValue": {"values": [{"integerValue": "1"}, {"integerValue": "2"}]}},
            "weight": {"doubleValue": 0.25}
        }}},
        "labels": {"arrayValue": {"values": [
            {"stringValue": "blue"}, {"nullValue": null}, {"booleanValue": true},
            {"mapValue": {"fields": {"k": {"stringValue": "v"}}}}
        ]}},
        "thumbprint": {"bytesValue": "3q2+7w=="},
        "site": {"geoPointValue": {"latitude": 52.52, "longitude": 13.405}},
        "errorBudget": {"doubleValue": 0.999},
        "wholeDouble": {"doubleValue": 2.0},
        "bigCount": {"integerValue": "9007199254740993"},
        "deployedAt": {"timestampValue": "2025-12-01T08:30:00Z"},
        "service": {"referenceValue": format!("projects/{project}/databases/(default)/documents/services/checkout")},
        "nothing": {"nullValue": null}
    }})
}

const UNKNOWN: [&str; 10] = [
    "owner",
    "labels",
    "thumbprint",
    "site",
    "errorBudget",
    "wholeDouble",
    "bigCount",
    "deployedAt",
    "service",
    "nothing",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_document_keeps_every_unknown_field_through_the_cli() {
    let emu = emulator_or_skip!();
    let project = emulator::project("foreign");
    let rest = Rest::default();
    let url = format!("{}/feature_rollouts/current", emu.documents_url(&project));
    rest.call(Method::PATCH, &url, Some(&typed_seed(&project)))
        .await;
    let before = rest.call(Method::GET, &url, None).await;

    // Read as rollout-tui sees it.
    let store = emu.store(&project);
    let read = store.get("current").await.unwrap().expect("the document");
    let r = read.parse().expect("the seed shape parses");
    assert_eq!((r.version.as_str(), r.canary_users.len()), ("0.1.1", 1));
    assert_eq!(
        read.fields["startedAt"],
        json!("2025-12-03T10:00:00.123456Z")
    );
    assert_eq!(read.fields["deployedAt"], json!("2025-12-01T08:30:00Z"));
    assert_eq!(read.fields["thumbprint"], json!({"bytesValue": "3q2+7w=="}));
    assert_eq!(
        read.fields["site"],
        json!({"geoPointValue": {"latitude": 52.52, "longitude": 13.405}})
    );
    assert!(read.fields["wholeDouble"].is_f64() && read.fields["bigCount"].is_i64());
    assert_eq!(read.fields["bigCount"], json!(9007199254740993_i64));

    let cli = Cli::new(&emu.host, &project);
    cli.ok(&["set-percent", "current", "5"]);
    cli.ok(&["users", "add", "current", "bob@example.com"]);

    let after = rest.call(Method::GET, &url, None).await;
    let (b, a) = (&before["fields"], &after["fields"]);
    for name in UNKNOWN {
        assert_eq!(a[name], b[name], "{name} kept its typed value");
    }
    // Fields no action touched are unchanged too; the ones written have the right types.
    let events = store.list_events("current", 10).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let written: BTreeSet<String> = events
        .iter()
        .flat_map(|e| e.after.as_object().unwrap().keys().cloned())
        .chain([field::LAST_UPDATED_AT.to_string()])
        .collect();
    for (name, value) in b.as_object().unwrap() {
        if !written.contains(name) {
            assert_eq!(&a[name], value, "{name} untouched");
        }
    }
    assert_eq!(a["rolloutPercentage"], json!({"integerValue": "5"}));
    assert_eq!(
        a["canaryUsers"],
        json!({"arrayValue": {"values": [{"stringValue": "alec@getaifactory.com"}, {"stringValue": "bob@example.com"}]}})
    );
    for name in field::TIMESTAMPS {
        if let Some(v) = a.get(name) {
            assert!(v.get("timestampValue").is_some(), "{name}: {v}");
        }
    }
    // And the CLI shows the unknown fields in their JSON forms.
    let shown = cli.rollout("current");
    assert_eq!(shown["thumbprint"], json!({"bytesValue": "3q2+7w=="}));
    assert_eq!(shown["errorBudget"], json!(0.999));
    assert_eq!(shown["owner"]["pager"], json!([1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cli_command_works_against_firestore() {
    let emu = emulator_or_skip!();
    let project = emulator::project("cli");
    let cli = Cli::new(&emu.host, &project);
    let alec = "alec@getaifactory.com";

    let out = cli.ok(&[
        "create",
        "web",
        "--version",
        "2.0.0",
        "--stable-revision",
        "s1",
        "--canary-revision",
        "c1",
        "--canary-user",
        alec,
    ]);
    assert!(out.contains("web: created version 2.0.0"), "{out}");
    cli.fails(&["create", "web", "--version", "3"], "already exists");
    let status = cli.json(&["status", "--json"]);
    assert_eq!(status["rollouts"].as_array().unwrap().len(), 1, "{status}");
    let web = &status["rollouts"][0];
    assert_eq!(
        (web["id"].as_str(), web["status"].as_str()),
        (Some("web"), Some("canary"))
    );
    assert!(
        web["_revision"].as_str().is_some_and(|r| r.ends_with('Z')),
        "{web}"
    );

    cli.ok(&["users", "add", "web", "bob@example.com", "user-42"]);
    cli.ok(&["users", "add", "web", "eve@example.com", "--excluded"]);
    cli.ok(&["users", "remove", "web", "user-42"]);
    assert_eq!(
        cli.json(&["users", "list", "web", "--json"]),
        json!({"users": [alec, "bob@example.com"]})
    );
    assert_eq!(
        cli.json(&["users", "list", "web", "--excluded", "--json"]),
        json!({"users": ["eve@example.com"]})
    );
    assert_eq!(
        cli.ok(&["users", "list", "web"]),
        format!("{alec}\nbob@example.com\n")
    );

    cli.ok(&["set-percent", "web", "0.5"]);
    assert_eq!(cli.rollout("web")["rolloutPercentage"], json!(0.5));
    cli.ok(&["advance", "web"]);
    let r = cli.rollout("web");
    assert_eq!(
        (r["rolloutPercentage"].as_f64(), r["status"].as_str()),
        (Some(5.0), Some("progressive"))
    );
    cli.ok(&["pause", "web", "--reason", "looking at a dashboard"]);
    assert_eq!(cli.rollout("web")["status"], "paused");
    cli.ok(&["resume", "web"]);
    assert_eq!(cli.rollout("web")["status"], "progressive");

    let a = cli.json(&["assign", "web", alec, "--json"]);
    assert_eq!(a["side"], "canary", "{a}");
    let a = cli.json(&["assign", "web", "eve@example.com", "--json"]);
    assert_eq!(a["side"], "stable", "{a}");

    cli.ok(&["set-revisions", "web", "--stable", "s2"]);
    assert_eq!(cli.rollout("web")["stableRevision"], "s2");
    cli.ok(&["set-revisions", "web", "--canary", "c2"]);
    let r = cli.rollout("web");
    assert_eq!(
        (r["canaryRevision"].as_str(), r["currentStage"].as_u64()),
        (Some("c2"), Some(0))
    );
    cli.ok(&["rollback", "web", "--reason", "errors spiked"]);
    let r = cli.rollout("web");
    assert_eq!(
        (r["status"].as_str(), r["rolloutPercentage"].as_f64()),
        (Some("rolled-back"), Some(0.0))
    );

    cli.ok(&["create", "done", "--version", "1"]);
    cli.ok(&["promote", "done", "--force"]);
    let r = cli.rollout("done");
    assert_eq!(
        (r["status"].as_str(), r["rolloutPercentage"].as_f64()),
        (Some("complete"), Some(100.0))
    );

    let events = cli.json(&["events", "web", "--json", "--limit", "100"]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "rollback",
            "set-revisions",
            "set-revisions",
            "resume",
            "pause",
            "advance",
            "set-percent",
            "remove-users",
            "add-users",
            "add-users",
            "create"
        ]
    );
    let limited = cli.json(&["events", "web", "--json", "--limit", "2"]);
    assert_eq!(limited["events"].as_array().unwrap().len(), 2);
    assert_eq!(limited["events"][0]["reason"], "errors spiked");
    assert!(cli.ok(&["events", "done"]).contains("promote"));

    let table = cli.ok(&["status"]);
    assert!(table.contains("web") && table.contains("done"), "{table}");
    assert!(
        cli.ok(&["status", "web"])
            .contains("rolled back  errors spiked")
    );
    let checked = cli.ok(&["check-config"]);
    let store_line = checked
        .lines()
        .find(|l| l.starts_with("store:"))
        .unwrap_or_else(|| panic!("no store line:\n{checked}"));
    for want in [
        format!("firestore {project}/(default)/feature_rollouts"),
        format!("(emulator {})", emu.host),
        "events in rollout_events".to_string(),
    ] {
        assert!(store_line.contains(&want), "{want:?} not in {store_line}");
    }
    assert!(!store_line.contains("rollouts.db"), "{store_line}");
    cli.fails(&["advance", "missing"], "does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_lose_nothing() {
    let emu = emulator_or_skip!();
    let project = emulator::project("writers");
    let store = emu.store(&project);
    let mut doc = seed_doc();
    doc.insert("canaryUsers".into(), json!([]));
    store
        .create("current", &doc, &create_event("current"))
        .await
        .unwrap();

    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            // A separate client per writer, as separate cockpits would have.
            let store = emu.store(&project);
            tokio::spawn(async move {
                let mut doc = store.get("current").await.unwrap().unwrap();
                let mut conflicts = 0;
                for i in 0..EDITS {
                    let user = format!("w{w}-{i}@example.com");
                    loop {
                        let (patch, ev) = add_user(&doc, &user);
                        match store.patch("current", &doc.revision, &patch, &ev).await {
                            Ok(next) => {
                                doc = next;
                                break;
                            }
                            Err(StoreError::Conflict { current, .. }) => {
                                conflicts += 1;
                                doc = *current;
                            }
                            Err(e) => panic!("writer {w}, edit {i}: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for w in writers {
        conflicts += w.await.unwrap();
    }
    println!(
        "{WRITERS} writers x {EDITS} compare-and-set edits in {:?}, {conflicts} conflicts re-read and retried",
        started.elapsed()
    );

    let after = store.get("current").await.unwrap().unwrap();
    let users: Vec<&str> = after.fields["canaryUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|w| (0..EDITS).map(move |i| format!("w{w}-{i}@example.com")))
        .collect();
    assert_eq!(users.len(), WRITERS * EDITS, "no user added twice or lost");
    assert_eq!(
        users.iter().map(|u| u.to_string()).collect::<BTreeSet<_>>(),
        expected
    );
    for name in [
        "canaryErrors",
        "stableErrors",
        "owner",
        "labels",
        "startedAt",
    ] {
        assert_eq!(after.fields.get(name), doc.get(name), "{name} survived");
    }
    let events = store.list_events("current", 10_000).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::AddUsers)
            .count(),
        WRITERS * EDITS
    );
    assert_eq!(events.len(), WRITERS * EDITS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpits_racing_for_a_lease_have_exactly_one_winner() {
    let emu = emulator_or_skip!();
    let project = emulator::project("leases");
    let ttl = Duration::from_secs(30);
    let cockpits: Vec<Arc<FirestoreStore>> =
        (0..4).map(|_| Arc::new(emu.store(&project))).collect();
    let mut wins = [0; 4];
    for round in 0..25 {
        let id = format!("race-{round}");
        let now = Utc::now();
        let racers: Vec<_> = cockpits
            .iter()
            .enumerate()
            .map(|(c, store)| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    store
                        .acquire_lease(&id, &format!("cockpit-{c}"), ttl, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for r in racers {
            outcomes.push(r.await.unwrap());
        }
        let held: Vec<_> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(c, o)| match o {
                LeaseOutcome::Held(l) => Some((c, l.clone())),
                LeaseOutcome::HeldByOther(_) => None,
            })
            .collect();
        assert_eq!(held.len(), 1, "round {round}: {outcomes:?}");
        let (winner, lease) = &held[0];
        wins[*winner] += 1;
        for o in &outcomes {
            if let LeaseOutcome::HeldByOther(l) = o {
                assert_eq!(l, lease, "losers see the winner");
            }
        }
        assert_eq!(
            cockpits[0].get_lease(&id).await.unwrap().as_ref(),
            Some(lease)
        );
    }
    println!("lease races won per cockpit: {wins:?}");

    // A crashed driver's lease lapses and another cockpit takes over.
    let (a, b) = (&cockpits[0], &cockpits[1]);
    let t0 = conformance::at(0, 0);
    let secs = |s| t0 + chrono::Duration::seconds(s);
    assert!(matches!(
        a.acquire_lease("x", "a", ttl, t0).await.unwrap(),
        LeaseOutcome::Held(_)
    ));
    assert!(matches!(
        b.acquire_lease("x", "b", ttl, secs(29)).await.unwrap(),
        LeaseOutcome::HeldByOther(l) if l.holder == "a"
    ));
    match b.acquire_lease("x", "b", ttl, secs(31)).await.unwrap() {
        LeaseOutcome::Held(l) => assert_eq!((l.holder.as_str(), l.acquired_at), ("b", secs(31))),
        other => panic!("the expired lease should be taken over: {other:?}"),
    }
    a.release_lease("x", "a").await.unwrap();
    assert_eq!(
        b.get_lease("x").await.unwrap().unwrap().holder,
        "b",
        "only the holder releases"
    );
    b.release_lease("x", "b").await.unwrap();
    assert_eq!(a.get_lease("x").await.unwrap(), None);
}

#[tokio::test]
async fn a_rejected_event_rejects_the_whole_patch() {
    let emu = emulator_or_skip!();
    let store = emu.store(&emulator::project("atomic"));
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let (patch, mut ev) = add_user(&created, "x@example.com");
    // Firestore refuses arrays directly inside arrays: the event write fails, so must the update.
    ev.gate_report = Some(json!({"gates": [[1, 2]]}));
    let err = store
        .patch("current", &created.revision, &patch, &ev)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert_eq!(store.get("current").await.unwrap().unwrap(), created);
    assert_eq!(store.list_events("current", 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_hears_other_clients_and_measure_latency() {
    let emu = emulator_or_skip!();
    let project = emulator::project("watch");
    let store = emu.store(&project);
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, created);

    let rest = Rest::default();
    let docs = format!("{}/feature_rollouts", emu.documents_url(&project));
    let (mut latencies, mut from_commit, mut write_times) = (Vec::new(), Vec::new(), Vec::new());
    for tick in 0..200 {
        let url = format!("{docs}/current?updateMask.fieldPaths=tick");
        let body = json!({"fields": {"tick": {"integerValue": tick.to_string()}}});
        let started = Instant::now();
        // The write runs on its own task: its answer may arrive after the change does.
        let write = tokio::spawn({
            let rest = rest.clone();
            async move {
                rest.call(Method::PATCH, &url, Some(&body)).await;
                started.elapsed()
            }
        });
        let doc = next_upsert(&mut rx, SOON).await;
        latencies.push(started.elapsed());
        let committed = chrono::DateTime::parse_from_rfc3339(&doc.revision.0).unwrap();
        from_commit.push(
            (Utc::now() - committed.to_utc())
                .to_std()
                .unwrap_or_default(),
        );
        write_times.push(write.await.unwrap());
        assert_eq!(doc.fields["tick"], json!(tick));
        assert_eq!(doc.fields["owner"], seed_doc()["owner"]);
    }
    println!(
        "watch latency, write sent by another client (REST) -> change in the stream: {}",
        stats(latencies)
    );
    println!(
        "  commit (update_time) -> change in the stream: {}",
        stats(from_commit)
    );
    println!("  the REST write's own round trip: {}", stats(write_times));

    // Created and deleted by another client.
    let other =
        json!({"fields": {"version": {"stringValue": "9"}, "status": {"stringValue": "planned"}}});
    rest.call(Method::PATCH, &format!("{docs}/other"), Some(&other))
        .await;
    let doc = next_upsert(&mut rx, SOON).await;
    assert_eq!(
        (doc.id.as_str(), &doc.fields["version"]),
        ("other", &json!("9"))
    );
    rest.call(Method::DELETE, &format!("{docs}/other"), None)
        .await;
    assert_eq!(
        next_change(&mut rx, SOON).await,
        StoreChange::Removed("other".into())
    );

    // Dropping the receiver stops the listener: nothing to observe but the absence of a hang.
    drop(rx);
    store.list().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_stopped_mid_run_disconnects_and_resyncs() {
    if emulator::shared().is_none() {
        return;
    }
    // A dedicated emulator: stopping it must not disturb the other tests. Its data is
    // saved before the stop and loaded by the restart, so what survived can be checked.
    let port = emulator::free_port();
    let emu = Emulator::start(port).unwrap_or_else(|e| panic!("{e}"));
    let project = emulator::project("faults");
    let store = emu.store(&project);
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, created);
    // (`--export-on-exit` does not export when the emulator is stopped by a signal.)
    let saved = tempfile::tempdir().unwrap();
    Rest::default()
        .call(
            Method::POST,
            &format!("http://{}/emulator/v1/projects/{project}:export", emu.host),
            Some(&json!({
                "database": format!("projects/{project}/databases/(default)"),
                "export_directory": saved.path(),
            })),
        )
        .await;

    let stopped = Instant::now();
    tokio::task::block_in_place(|| emu.stop());
    match next_change(&mut rx, SOON).await {
        StoreChange::Disconnected(msg) => {
            println!(
                "disconnected {:?} after the stop began: {msg}",
                stopped.elapsed()
            );
            assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }

    let (patch, ev) = add_user(&created, "lost@example.com");
    match store.patch("current", &created.revision, &patch, &ev).await {
        Err(StoreError::Unavailable(msg)) => {
            println!("patch while stopped: {msg}");
            assert!(
                msg.contains("emulator") && msg.contains(&port.to_string()),
                "{msg}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        store.list().await,
        Err(StoreError::Unavailable(_))
    ));

    let metadata = std::fs::read_dir(saved.path())
        .unwrap()
        .filter_map(Result::ok)
        .flat_map(|dir| std::fs::read_dir(dir.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".overall_export_metadata"))
        .unwrap_or_else(|| panic!("the emulator saved nothing in {}", saved.path().display()));
    let restarted = Emulator::start_with(port, &[format!("--import-data={}", metadata.display())])
        .unwrap_or_else(|e| panic!("{e}"));
    // The watch retried all through the restart (a JVM start: seconds, many backoffs).
    println!(
        "the emulator was down for {:?}, its restart took {:?}",
        stopped.elapsed(),
        restarted.started_in
    );
    // Another client changes the rollout as soon as the emulator is back, before this
    // store has necessarily reconnected: the resync must catch up with it.
    let other = restarted.store(&project);
    let seen = other
        .get("current")
        .await
        .unwrap()
        .expect("the document survived");
    // (An import gives every document a new update time, so the fields are compared.)
    assert_eq!(seen.fields, created.fields, "no partial write: unchanged");
    assert_eq!(
        other.list_events("current", 10).await.unwrap().len(),
        1,
        "only the creation: the failed patch left no event"
    );
    let (patch, ev) = add_user(&seen, "meanwhile@example.com");
    let meanwhile = other
        .patch("current", &seen.revision, &patch, &ev)
        .await
        .unwrap();
    // Disconnected is said once, not once per retry: the next change is Reconnected.
    assert_eq!(
        next_change(&mut rx, SOON).await,
        StoreChange::Reconnected,
        "nothing between Disconnected and Reconnected while the emulator was down"
    );
    // The resync (and any change heard after it) ends at the other client's version.
    let deadline = Instant::now() + SOON;
    loop {
        let doc = next_upsert(&mut rx, deadline.saturating_duration_since(Instant::now())).await;
        assert!(
            !doc.fields["canaryUsers"]
                .to_string()
                .contains("lost@example.com"),
            "{doc:?}"
        );
        if doc == meanwhile {
            break;
        }
        assert!(doc == seen, "only the saved or the newer version: {doc:?}");
    }
    let (patch, ev) = add_user(&meanwhile, "back@example.com");
    let patched = store
        .patch("current", &meanwhile.revision, &patch, &ev)
        .await
        .unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, patched);
    drop(restarted);
}

/// Fails, and does not hang (the time it took is printed).
#[test]
fn an_unreachable_emulator_is_a_clear_error() {
    let port = emulator::free_port();
    let cli = Cli::new(&format!("127.0.0.1:{port}"), "nowhere");
    let started = Instant::now();
    let out = cli.command(&["status"]).timeout(HANG).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "`status` against an unreachable emulator still ran after {took:?} ({}):\n{stderr}",
        out.status
    );
    println!("`status` against an unreachable emulator failed after {took:?}");
    assert!(!out.status.success(), "`status` should fail: {stderr}");
    assert!(
        stderr.contains("is the emulator running") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

/// Offline (as tests are) the channel fails before credentials are looked up, so the
/// message names both remedies: credentials and the network.
#[test]
fn an_unreachable_real_project_says_what_to_do() {
    let cli = Cli::new("unused:1", "some-project");
    std::fs::write(
        &cli.config,
        "[store]\nkind = \"firestore\"\nproject_id = \"some-project\"\n",
    )
    .unwrap();
    let missing = cli.dir.path().join("no-such-key.json");
    let out = cli
        .command(&["status"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", &missing)
        .timeout(HANG)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for needle in [
        "Firestore project 'some-project'",
        "gcloud auth application-default login",
        "emulator_host",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_status_json_with_200_rollouts() {
    let emu = emulator_or_skip!();
    let project = emulator::project("status200");
    let store = Arc::new(emu.store(&project));
    let started = Instant::now();
    let batches: Vec<_> = (0..4)
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (b * 50)..(b * 50 + 50) {
                    let id = format!("svc-{i:03}");
                    store
                        .create(&id, &seed_doc(), &create_event(&id))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for b in batches {
        b.await.unwrap();
    }
    println!(
        "created 200 rollouts through the store in {:?}",
        started.elapsed()
    );

    let cli = Cli::new(&emu.host, &project);
    let mut runs = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let status = tokio::task::block_in_place(|| cli.json(&["status", "--json"]));
        runs.push(started.elapsed());
        assert_eq!(status["rollouts"].as_array().unwrap().len(), 200);
    }
    println!(
        "`status --json` with 200 rollouts (whole process): {}",
        stats(runs)
    );
    let started = Instant::now();
    assert_eq!(store.list().await.unwrap().len(), 200);
    println!(
        "store.list() of 200 rollouts in-process: {:?}",
        started.elapsed()
    );
}

/// How many freeze/thaw cycles `a_frozen_emulator_goes_stale_then_catches_up` runs;
/// more give a better measurement (`ROLLOUT_TUI_FREEZE_RUNS=10`).
const FREEZE_RUNS_ENV: &str = "ROLLOUT_TUI_FREEZE_RUNS";
/// The store's limits (as the README promises): Disconnected after 20 s of silence, which
/// its message states as measured, and one-shot calls give up after 10 s, which theirs
/// name. The times are measured and printed; the test's deadlines only catch a hang, far
/// enough past the limits that a busy machine never trips them.
const SILENCE_SECS: u64 = 20;
const CALL_LIMIT_SAID: &str = "no answer within 10s";
const STALE_DEADLINE: Duration = Duration::from_secs(90);
const CALL_DEADLINE: Duration = Duration::from_secs(60);

/// A one-shot call against a frozen server: Unavailable after the store's call limit.
async fn times_out<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Duration {
    let started = Instant::now();
    let result = tokio::time::timeout(CALL_DEADLINE, call)
        .await
        .unwrap_or_else(|_| panic!("{what} against a frozen store hung for {CALL_DEADLINE:?}"));
    match result {
        Err(StoreError::Unavailable(msg)) => {
            assert!(
                msg.contains(CALL_LIMIT_SAID) && msg.contains("is the emulator running"),
                "{what}: {msg}"
            );
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    started.elapsed()
}

/// A frozen server (SIGSTOP: connections stay open, nothing answers) is what a hung
/// backend or a black-holed network looks like. The watch says so (after its 20 s of
/// silence), one-shot calls fail (after their 10 s), and after the thaw the watch
/// reconnects and catches up with a change made after it. Prints how long the store
/// took to show as stale, from the freeze, and how long the calls took to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_emulator_goes_stale_then_catches_up() {
    if emulator::shared().is_none() {
        return;
    }
    let runs: usize = std::env::var(FREEZE_RUNS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    // A dedicated emulator: freezing it must not stall the other tests.
    let emu = Emulator::start(emulator::free_port()).unwrap_or_else(|e| panic!("{e}"));
    let project = emulator::project("frozen");
    let store = emu.store(&project);
    let mut doc = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, doc);

    let (mut stale, mut back, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // Freeze at a random point of the heartbeat cycle. (This sleep only spreads the
        // measurement over the cycle; nothing asserted depends on it.)
        tokio::time::sleep(Duration::from_millis(emulator::random() % 10_000)).await;
        let frozen_at = Instant::now();
        let frozen = emu.freeze();
        match next_change(&mut rx, STALE_DEADLINE).await {
            StoreChange::Disconnected(msg) => {
                stale.push(frozen_at.elapsed());
                assert!(msg.contains(&emu.host), "{msg}");
                // Said after the silence, never before it (a busy machine can only delay it).
                let silent: u64 = msg
                    .split_once("no word from the store for ")
                    .and_then(|(_, rest)| rest.split_once(" s ")?.0.parse().ok())
                    .unwrap_or_else(|| panic!("no silence in seconds: {msg}"));
                assert!(silent >= SILENCE_SECS, "stale after {silent} s: {msg}");
                if run == 0 {
                    println!("frozen store: {msg}");
                }
            }
            other => panic!("run {run}: expected Disconnected, got {other:?}"),
        }
        if run == 0 {
            let (patch, ev) = add_user(&doc, "lost@example.com");
            calls.push(times_out("get", store.get("current")).await);
            calls.push(times_out("list", store.list()).await);
            calls
                .push(times_out("patch", store.patch("current", &doc.revision, &patch, &ev)).await);
        }
        let thawed_at = Instant::now();
        frozen.thaw();
        // Another client changes the rollout right after the thaw.
        let other = emu.store(&project);
        let (patch, ev) = add_user(&doc, &format!("thawed-{run}@example.com"));
        let meanwhile = other
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .expect("the failed patch wrote nothing, so this one is not a conflict");
        assert_eq!(
            next_change(&mut rx, Duration::from_secs(60)).await,
            StoreChange::Reconnected,
            "run {run}: said Disconnected once, then Reconnected"
        );
        back.push(thawed_at.elapsed());
        let deadline = Instant::now() + SOON;
        loop {
            let seen =
                next_upsert(&mut rx, deadline.saturating_duration_since(Instant::now())).await;
            if seen == meanwhile {
                break;
            }
            assert_eq!(seen, doc, "run {run}: only the old or the newer version");
        }
        doc = meanwhile;
    }
    println!(
        "frozen store -> Disconnected in the watch, from the freeze: {}",
        stats(stale)
    );
    println!("thaw -> Reconnected: {}", stats(back));
    println!("get, list, patch against the frozen store failed after: {calls:?}");
}

/// Events list in commit order, whatever the writers' clocks say: here each later
/// commit carries an older `at`, from two clients. An event written before commit
/// times were recorded (only `at`, as another tool or an older version writes it)
/// still lists, by its `at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_in_commit_order_whatever_the_clocks_say() {
    let emu = emulator_or_skip!();
    let project = emulator::project("event-order");
    let legacy = json!({"fields": {
        "rolloutId": {"stringValue": "current"},
        "kind": {"stringValue": "pause"},
        "actor": {"stringValue": "old-version@example.com"},
        "at": {"timestampValue": "2020-01-01T00:00:00Z"},
        "before": {"mapValue": {}},
        "after": {"mapValue": {"fields": {"status": {"stringValue": "paused"}}}},
    }});
    Rest::default()
        .call(
            Method::POST,
            &format!(
                "{}/rollout_events?documentId=legacy-1",
                emu.documents_url(&project)
            ),
            Some(&legacy),
        )
        .await;
    let (a, b) = (emu.store(&project), emu.store(&project));
    // Whole seconds: Firestore keeps microseconds.
    let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let mut doc = a
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut written = Vec::new();
    for (i, writer) in [&b, &a, &b].into_iter().enumerate() {
        let (patch, mut ev) = add_user(&doc, &format!("u{i}@example.com"));
        // A clock further behind with every write.
        ev.at = now - chrono::Duration::hours(i as i64 + 1);
        doc = writer
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        written.push(ev);
    }
    let listed = a.list_events("current", 10).await.unwrap();
    let users: Vec<String> = listed
        .iter()
        .map(|e| match e.kind {
            EventKind::AddUsers => e.after["canaryUsers"][0].as_str().unwrap().to_string(),
            kind => kind.as_str().to_string(),
        })
        .collect();
    assert_eq!(
        users,
        [
            "u2@example.com",
            "u1@example.com",
            "u0@example.com",
            "create",
            "pause"
        ],
        "newest commit first"
    );
    assert_eq!(listed[0], written[2]);
    assert_eq!(listed[4].actor, "old-version@example.com");
    assert_eq!(
        b.list_events("current", 2).await.unwrap(),
        [written[2].clone(), written[1].clone()]
    );
}

/// Sets `canaryUsers` to `n` keys made by `key`; `Err` with the message when refused.
async fn set_users(
    store: &FirestoreStore,
    doc: &mut StoredRollout,
    n: usize,
    key: fn(usize) -> String,
) -> Result<(), String> {
    let users: Vec<Value> = (0..n).map(|i| json!(key(i))).collect();
    let mut patch = Patch::default();
    patch.set("canaryUsers", Value::Array(users));
    let ev = event(
        &doc.id,
        EventKind::AddUsers,
        Utc::now(),
        json!({}),
        json!({"canaryUsers": n}),
    );
    match store.patch(&doc.id, &doc.revision, &patch, &ev).await {
        Ok(next) => {
            *doc = next;
            Ok(())
        }
        Err(StoreError::Other(msg)) => Err(msg),
        Err(e) => panic!("{n} users: {e}"),
    }
}

/// A write over Firestore's 1 MiB document limit fails before it is sent, saying so
/// and what makes it big, and changes nothing. Then measures how many canary users
/// fit in one rollout: the most this store lets through, which the emulator takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_one_mebibyte_is_refused_before_sending() {
    let emu = emulator_or_skip!();
    let project = emulator::project("one-mib");
    let store = emu.store(&project);
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();

    // Through the CLI, 5,000 keys of 250 bytes: about 1.25 MB. (Fewer, longer keys
    // than real ones: adding users checks each against the list, so tens of
    // thousands in one command take minutes in a debug build.)
    let cli = Cli::new(&emu.host, &project);
    let keys: Vec<String> = (0..5_000)
        .map(|i| format!("canary{i:06}-{}@example.com", "x".repeat(225)))
        .collect();
    let mut args = vec!["users", "add", "current"];
    args.extend(keys.iter().map(String::as_str));
    let stderr = tokio::task::block_in_place(|| cli.fails(&args, "over Firestore's 1 MiB limit"));
    for needle in [
        "the document would be 1.2",
        "canaryUsers (5,001 entries)",
        "Nothing was written",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    assert_eq!(store.get("current").await.unwrap().unwrap(), created);
    assert_eq!(store.list_events("current", 10).await.unwrap().len(), 1);

    // How many fit: a binary search on the real store, refusals made before sending.
    let email: fn(usize) -> String = |i| format!("canary{i:06}@example.com");
    let short: fn(usize) -> String = |i| format!("u{i:06}");
    for (kind, key) in [
        ("email-like keys of 24 chars", email),
        ("ids like u123456", short),
    ] {
        let mut doc = store.get("current").await.unwrap().unwrap();
        let (mut fits, mut refused) = (0, 1_000_000);
        while refused - fits > 1 {
            let n = (fits + refused) / 2;
            match set_users(&store, &mut doc, n, key).await {
                Ok(()) => fits = n,
                Err(msg) => {
                    assert!(msg.contains("over Firestore's 1 MiB limit"), "{msg}");
                    refused = n;
                }
            }
        }
        // The emulator took the largest; one more is refused here, before sending,
        // and the emulator itself refuses it too: the limit is Firestore's, exactly.
        let stored = store.get("current").await.unwrap().unwrap();
        assert_eq!(stored.fields["canaryUsers"].as_array().unwrap().len(), fits);
        let values: Vec<Value> = (0..=fits).map(|i| json!({"stringValue": key(i)})).collect();
        let refused = reqwest::Client::new()
            .patch(format!(
                "{}/feature_rollouts/current?updateMask.fieldPaths=canaryUsers",
                emu.documents_url(&project)
            ))
            .bearer_auth("owner")
            .json(&json!({"fields": {"canaryUsers": {"arrayValue": {"values": values}}}}))
            .send()
            .await
            .unwrap();
        let status = refused.status();
        let text = refused.text().await.unwrap_or_default();
        assert!(
            status == reqwest::StatusCode::BAD_REQUEST && text.contains("maximum entity size"),
            "{} {kind} straight to the emulator: {status} {text}",
            fits + 1
        );
        println!(
            "canary users that fit in one Firestore rollout document ({kind}, with the seed's other fields): {fits}"
        );
    }
}

/// A rollout document another tool filled with values of the wrong Firestore types
/// (and some rollout-tui has no JSON for) is one rollout's problem: `list`, `get`
/// and `watch` return it with every other rollout, and it fails to parse on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_rollout_does_not_hide_the_others() {
    let emu = emulator_or_skip!();
    let project = emulator::project("hostile");
    let store = emu.store(&project);
    let good = store
        .create("good", &seed_doc(), &create_event("good"))
        .await
        .unwrap();
    let mut deep = json!({"stringValue": "bottom"});
    for _ in 0..18 {
        deep = json!({"mapValue": {"fields": {"d": deep}}});
    }
    let hostile = json!({"fields": {
        "version": {"integerValue": "2"},
        "status": {"geoPointValue": {"latitude": 1.0, "longitude": 2.0}},
        "canaryUsers": {"stringValue": "not-a-list"},
        "rolloutPercentage": {"mapValue": {"fields": {"x": {"integerValue": "1"}}}},
        "startedAt": {"bytesValue": "/w=="},
        "plan": {"arrayValue": {"values": [{"nullValue": null}, {"doubleValue": "NaN"}]}},
        "nan": {"doubleValue": "NaN"},
        "infinity": {"doubleValue": "-Infinity"},
        "far": {"timestampValue": "9999-12-31T23:59:59.999999Z"},
        "early": {"timestampValue": "0001-01-01T00:00:00Z"},
        "a.b": {"stringValue": "a dotted name"},
        "deep": deep,
    }});
    Rest::default()
        .call(
            Method::PATCH,
            &format!("{}/feature_rollouts/hostile", emu.documents_url(&project)),
            Some(&hostile),
        )
        .await;

    let listed = store.list().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["good", "hostile"]);
    assert_eq!(listed[0], good);
    assert!(listed[0].parse().is_ok());
    let bad = &listed[1];
    let err = bad
        .parse()
        .expect_err("the hostile document does not parse");
    println!("the hostile rollout: {err}");
    assert_eq!(bad.fields["nan"], json!("NaN"));
    assert_eq!(bad.fields["far"], json!("9999-12-31T23:59:59.999999Z"));
    assert_eq!(bad.fields["a.b"], json!("a dotted name"));
    assert_eq!(store.get("hostile").await.unwrap().as_ref(), Some(bad));

    let mut rx = store.watch().await.unwrap();
    let mut heard = vec![
        next_upsert(&mut rx, SOON).await,
        next_upsert(&mut rx, SOON).await,
    ];
    heard.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(heard, listed);

    // The good rollout stays usable next to it, from the CLI too.
    let cli = Cli::new(&emu.host, &project);
    cli.ok(&["set-percent", "good", "5"]);
    let status = cli.json(&["status", "--json"]);
    let rollouts = status["rollouts"].as_array().unwrap();
    assert_eq!(rollouts.len(), 2, "{status}");
    assert_eq!(rollouts[0]["rolloutPercentage"], json!(5));
    assert!(
        rollouts[1]["_error"]
            .as_str()
            .is_some_and(|e| e.contains("'hostile'") && e.contains("status")),
        "{}",
        rollouts[1]
    );
}

/// One audit event another tool wrote wrongly is listed as unreadable, with what it held,
/// among the rollout's other events; `events` keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_event_does_not_hide_the_others() {
    let emu = emulator_or_skip!();
    let project = emulator::project("bad-event");
    let store = emu.store(&project);
    store
        .create("web", &seed_doc(), &create_event("web"))
        .await
        .unwrap();
    let bad = json!({"fields": {
        "rolloutId": {"stringValue": "web"},
        "kind": {"integerValue": "42"},
        "actor": {"stringValue": "other-tool"},
        "at": {"timestampValue": "2026-05-04T11:00:00Z"},
    }});
    Rest::default()
        .call(
            Method::PATCH,
            &format!("{}/rollout_events/bad-one", emu.documents_url(&project)),
            Some(&bad),
        )
        .await;
    let events = store.list_events("web", 10).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let unreadable = events
        .iter()
        .find(|e| e.after.get("unreadableEvent").is_some())
        .expect("the bad event is listed");
    assert_eq!(unreadable.actor, "other-tool");
    assert!(
        unreadable
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("could not be read")),
        "{unreadable:?}"
    );
    assert!(events.iter().any(|e| e.kind == EventKind::Create));
    let cli = Cli::new(&emu.host, &project);
    let text = cli.ok(&["events", "web"]);
    assert!(text.contains("could not be read"), "{text}");
}
