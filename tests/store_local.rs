//! The SQLite store: the conformance suite, plus what only a file on a shared
//! host has to get right (several processes, change notification, foreign files).
//!
//! Child processes are this test binary re-executed with `--exact <test>` and an
//! environment variable that turns the test function into a worker.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use rollout_tui::domain::event::EventKind;
use rollout_tui::store::local::LocalStore;
use rollout_tui::store::{
    LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreError, StoredRollout,
};
use serde_json::{Value, json};
use support::conformance::{self, create_event, event, seed_doc};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::Receiver;

const WRITER_ENV: &str = "ROLLOUT_TUI_TEST_WRITER";
const PATCHER_ENV: &str = "ROLLOUT_TUI_TEST_PATCHER";
const WRITERS: usize = 8;
const EDITS: usize = 50;
const PATCHES: u64 = 5;
/// How long a change may take to be heard before a test fails: a deadline against hangs,
/// generous so a busy machine never trips it (latencies are printed, not asserted).
const SOON: Duration = Duration::from_secs(30);

fn temp_store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&LocalStore::default_path(dir.path())).unwrap();
    (dir, store)
}

fn add_user(doc: &StoredRollout, user: &str) -> (Patch, rollout_tui::domain::event::Event) {
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

/// Re-executes this test binary to run `test` as a worker with `env` set.
fn spawn_self(test: &str, env: (&str, String)) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("re-execute the test binary")
}

fn check_exit(name: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Text after `marker` on each line of a child's stdout (libtest may print
/// "test name ... " on the same line first).
fn marked<'a>(stdout: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> {
    stdout
        .lines()
        .filter_map(move |l| l.find(marker).map(|i| l[i + marker.len()..].trim()))
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

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run_all(|| {
        let path = dir.path().join(format!(
            "store-{}/rollouts.db",
            n.fetch_add(1, Ordering::SeqCst)
        ));
        async move { Arc::new(LocalStore::open(&path).unwrap()) as Arc<dyn RolloutStore> }
    })
    .await;
}

#[tokio::test]
async fn revisions_count_from_one_and_nonsense_revisions_conflict() {
    let (_dir, store) = temp_store();
    let created = store
        .create("r", &seed_doc(), &create_event("r"))
        .await
        .unwrap();
    assert_eq!(created.revision, Revision("1".into()));
    let (patch, ev) = add_user(&created, "x@example.com");
    let patched = store
        .patch("r", &created.revision, &patch, &ev)
        .await
        .unwrap();
    assert_eq!(patched.revision, Revision("2".into()));
    for bogus in ["", "two", "2.0", "-1", "99999999999999999999999"] {
        match store.patch("r", &Revision(bogus.into()), &patch, &ev).await {
            Err(StoreError::Conflict { current, .. }) => assert_eq!(*current, patched, "{bogus:?}"),
            other => panic!("revision {bogus:?}: expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(store.list_events("r", 100).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_editing_one_rollout_lose_nothing() {
    if let Ok(spec) = std::env::var(WRITER_ENV) {
        return writer(&spec).await;
    }
    let (dir, store) = temp_store();
    let path = store.path().to_path_buf();
    let mut doc = seed_doc();
    doc.insert("canaryUsers".into(), json!([]));
    store
        .create("current", &doc, &create_event("current"))
        .await
        .unwrap();

    let started = Instant::now();
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            let child = spawn_self(
                "processes_editing_one_rollout_lose_nothing",
                (WRITER_ENV, format!("{},{w}", path.display())),
            );
            tokio::spawn(child.wait_with_output())
        })
        .collect();
    let mut conflicts = 0;
    for (w, child) in children.into_iter().enumerate() {
        let out = child.await.unwrap().unwrap();
        check_exit(&format!("writer {w}"), &out);
        conflicts += marked(&String::from_utf8_lossy(&out.stdout), "WRITER conflicts=")
            .next()
            .map(|n| n.parse::<usize>().unwrap())
            .expect("the writer reports its conflicts");
    }
    println!(
        "{WRITERS} processes x {EDITS} edits in {:?}, {conflicts} conflicts retried",
        started.elapsed()
    );

    let after = store.get("current").await.unwrap().unwrap();
    assert_eq!(after.revision, Revision((WRITERS * EDITS + 1).to_string()));
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
    for name in ["canaryErrors", "stableErrors", "owner", "labels"] {
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
    drop(dir);
}

/// Child process: `EDITS` compare-and-set edits, retrying on conflict.
async fn writer(spec: &str) {
    let (path, w) = spec.rsplit_once(',').expect("path,index");
    let store = LocalStore::open(Path::new(path)).unwrap();
    let mut doc = store
        .get("current")
        .await
        .unwrap()
        .expect("the rollout exists");
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
                Err(StoreError::Conflict { .. }) => {
                    conflicts += 1;
                    doc = store.get("current").await.unwrap().unwrap();
                }
                Err(e) => panic!("writer {w}, edit {i}: {e}"),
            }
        }
    }
    println!("WRITER conflicts={conflicts}");
}

/// Each patch by another process is heard, as its own change. Prints the latency from
/// the patch's start to the watcher (no bound asserted). The patcher waits for a line on
/// its stdin before each patch, sent once the previous one was heard, so no two patches
/// fall into one poll (which would be heard as one change); each therefore starts just
/// after a poll, and the figures are near the poll cycle's worst case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_change_is_heard() {
    if let Ok(path) = std::env::var(PATCHER_ENV) {
        return patcher(Path::new(&path)).await;
    }
    let (_dir, store) = temp_store();
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, created);

    let mut child = spawn_self(
        "another_process_change_is_heard",
        (PATCHER_ENV, store.path().display().to_string()),
    );
    let mut go = child.stdin.take().expect("the patcher's stdin");
    let mut heard = HashMap::new();
    for k in 0..PATCHES {
        go.write_all(b"go\n").await.expect("tell the patcher to go");
        let doc = next_upsert(&mut rx, SOON).await;
        assert_eq!(
            doc.revision,
            Revision((k + 2).to_string()),
            "patch {k} heard as its own change"
        );
        heard.insert(doc.revision.0.clone(), SystemTime::now());
    }
    drop(go);
    let out = child.wait_with_output().await.unwrap();
    check_exit("patcher", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut latencies = Vec::new();
    for line in marked(&stdout, "PATCH ") {
        let (rev, started_us) = line.split_once(' ').unwrap();
        let started = UNIX_EPOCH + Duration::from_micros(started_us.parse().unwrap());
        let at = heard
            .get(rev)
            .unwrap_or_else(|| panic!("revision {rev} was never heard"));
        latencies.push(at.duration_since(started).unwrap_or_default());
    }
    assert_eq!(latencies.len(), PATCHES as usize, "{stdout}");
    let worst = *latencies.iter().max().unwrap();
    println!(
        "cross-process notification latency (patch start -> watcher): {latencies:?}, worst {worst:?}"
    );
}

/// This process still holds a POSIX lock on the database file. Without one, the next
/// client to close believes it is the last, checkpoints and deletes the WAL and shared
/// memory the connections here still use (seen with Debian's sqlite3), and this process
/// goes blind to every later write.
async fn assert_holds_a_lock_on(db: &std::path::PathBuf) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(db).unwrap();
    let (major, minor) = (meta.dev() >> 8 & 0xfff, meta.dev() & 0xff);
    let inode = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let pid = std::process::id().to_string();
    let holds = |locks: &str| {
        locks.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.contains(&pid.as_str()) && f.contains(&inode.as_str())
        })
    };
    // A connection being reopened holds no lock for a moment (and, with none open, there is
    // no WAL mapping to lose); the lock must be back within a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut locks = std::fs::read_to_string("/proc/locks").unwrap();
    while !holds(&locks) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        locks = std::fs::read_to_string("/proc/locks").unwrap();
    }
    assert!(
        holds(&locks),
        "no lock of pid {pid} on {} ({inode}):\n{locks}",
        db.display()
    );
}

/// Short-lived clients (CLI invocations, a `sqlite3` session, a backup tool) open the file
/// and close it again. None of them may take the WAL away from a watching, writing process:
/// each one's change is heard, and this process's own writes are seen by the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_clients_never_blind_a_running_process() {
    let (dir, store) = temp_store();
    store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    next_upsert(&mut rx, SOON).await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-tui"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        check_exit(&format!("{args:?}"), &out);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for k in 0..3 {
        cli(&["status"]); // a reader that opens and closes
        assert_holds_a_lock_on(&store.path().to_path_buf()).await;
        let user = format!("cli{k}@example.com");
        cli(&["users", "add", "current", &user]);
        let heard = next_upsert(&mut rx, SOON).await;
        assert!(
            heard.fields["canaryUsers"].to_string().contains(&user),
            "change {k} not heard: {heard:?}"
        );
        let doc = store.get("current").await.unwrap().unwrap();
        assert_eq!(doc, heard, "this process reads what it heard");
        // And the other way: this process's write is what the next client reads.
        let mine = format!("main{k}@example.com");
        let (patch, ev) = add_user(&doc, &mine);
        store
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        next_upsert(&mut rx, SOON).await;
        assert!(
            cli(&["users", "list", "current"]).contains(&mine),
            "{mine} not seen by a new process"
        );
    }
}

/// Child process: `PATCHES` patches, each when a line comes on stdin, printing when each
/// began.
async fn patcher(path: &Path) {
    let store = LocalStore::open(path).unwrap();
    for k in 0..PATCHES {
        let mut line = String::new();
        let read = tokio::task::block_in_place(|| std::io::stdin().read_line(&mut line));
        assert!(
            read.is_ok_and(|n| n > 0),
            "patch {k}: stdin closed before the go"
        );
        let doc = store.get("current").await.unwrap().unwrap();
        let (patch, ev) = add_user(&doc, &format!("p{k}@example.com"));
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let next = store
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        println!("PATCH {} {started}", next.revision);
    }
}

/// Each patch through another connection is heard; the latency is printed, not asserted.
/// Each patch waits until the one before was heard, so none share a poll.
#[tokio::test]
async fn another_connection_change_is_heard() {
    let (dir, watched) = temp_store();
    let writer = LocalStore::open(&LocalStore::default_path(dir.path())).unwrap();
    let mut doc = watched
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = watched.watch().await.unwrap();
    next_upsert(&mut rx, SOON).await;
    let mut latencies = Vec::new();
    for k in 0..5 {
        let (patch, ev) = add_user(&doc, &format!("c{k}@example.com"));
        let started = Instant::now();
        doc = writer
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        assert_eq!(next_upsert(&mut rx, SOON).await, doc);
        latencies.push(started.elapsed());
    }
    let worst = *latencies.iter().max().unwrap();
    println!("cross-connection notification latency: {latencies:?}, worst {worst:?}");
}

#[tokio::test]
async fn watch_reports_a_vanished_file_and_resyncs() {
    let (dir, store) = temp_store();
    let created = store
        .create("current", &seed_doc(), &create_event("current"))
        .await
        .unwrap();
    let mut rx = store.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, created);

    let aside = dir.path().join("aside.db");
    std::fs::rename(store.path(), &aside).unwrap();
    match next_change(&mut rx, SOON).await {
        StoreChange::Disconnected(msg) => assert!(msg.contains("rollouts.db"), "{msg}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    std::fs::rename(&aside, store.path()).unwrap();
    assert_eq!(next_change(&mut rx, SOON).await, StoreChange::Reconnected);
    assert_eq!(
        next_upsert(&mut rx, SOON).await,
        created,
        "a full resync follows"
    );

    // Watching goes on as before.
    let (patch, ev) = add_user(&created, "back@example.com");
    let patched = store
        .patch("current", &created.revision, &patch, &ev)
        .await
        .unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, patched);
}

#[tokio::test]
async fn a_foreign_file_is_refused_by_name_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollouts.db");
    let text = b"# not a database\nrollouts = [\"current\"]\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    match LocalStore::open(&path) {
        Err(StoreError::Other(msg)) => {
            assert!(
                msg.contains(&path.display().to_string()),
                "names the file: {msg}"
            );
            assert!(msg.contains("not a SQLite database"), "{msg}");
        }
        other => panic!("expected a clear error, got {other:?}"),
    }
    assert!(
        std::fs::read(&path).unwrap() == text,
        "the file is untouched"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["rollouts.db"], "no -wal or -shm files appeared");
}

#[tokio::test]
async fn an_incompatible_database_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql, why) in [
        (
            "other-app.db",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ana');",
            "no meta table",
        ),
        (
            "future.db",
            "CREATE TABLE meta (schema_version INTEGER NOT NULL); INSERT INTO meta VALUES (99);",
            "schema version 99",
        ),
    ] {
        let path = dir.path().join(name);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        match LocalStore::open(&path) {
            Err(StoreError::Other(msg)) => {
                assert!(
                    msg.contains(&path.display().to_string()),
                    "names the file: {msg}"
                );
                assert!(msg.contains(why), "{msg}");
            }
            other => panic!("{name}: expected a clear error, got {other:?}"),
        }
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{name} is unchanged"
        );
    }
}

#[tokio::test]
async fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = LocalStore::default_path(&dir.path().join("nested/data"));
    let now = conformance::at(0, 0);
    let (doc, events, lease) = {
        let store = LocalStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert_eq!(store.describe(), format!("sqlite {}", path.display()));
        let created = store
            .create("current", &seed_doc(), &create_event("current"))
            .await
            .unwrap();
        let (patch, ev) = add_user(&created, "kept@example.com");
        let doc = store
            .patch("current", &created.revision, &patch, &ev)
            .await
            .unwrap();
        let LeaseOutcome::Held(lease) = store
            .acquire_lease("current", "cockpit-1", Duration::from_secs(30), now)
            .await
            .unwrap()
        else {
            panic!("the lease is free");
        };
        (doc, store.list_events("current", 10).await.unwrap(), lease)
    };
    let store = LocalStore::open(&path).unwrap();
    assert_eq!(store.list().await.unwrap(), vec![doc]);
    assert_eq!(store.list_events("current", 10).await.unwrap(), events);
    assert_eq!(events.len(), 2);
    assert_eq!(store.get_lease("current").await.unwrap(), Some(lease));
}

/// Changes a row behind the store's back, as another tool could.
fn damage(path: &Path, id: &str, doc: Option<&str>, revision: Option<&str>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    if let Some(doc) = doc {
        conn.execute(
            "UPDATE rollouts SET doc = ?2 WHERE id = ?1",
            rusqlite::params![id, doc],
        )
        .unwrap();
    }
    if let Some(rev) = revision {
        conn.execute(
            "UPDATE rollouts SET revision = ?2 WHERE id = ?1",
            rusqlite::params![id, rev],
        )
        .unwrap();
    }
}

fn rollback_patch() -> Patch {
    let mut patch = Patch::default();
    patch
        .set("status", json!("rolled-back"))
        .set("rolloutPercentage", json!(0))
        .set("rollbackReason", json!("damaged"));
    patch
}

/// A damaged row is one rollout with a defect in every read and in the change stream;
/// the others are unaffected, and a write compare-and-set against its revision text
/// stores a valid document that keeps the damaged text.
#[tokio::test]
async fn a_damaged_row_is_listed_watched_and_rewritten_as_one_rollout() {
    let (_dir, store) = temp_store();
    for id in ["a", "b", "c"] {
        store
            .create(id, &seed_doc(), &create_event(id))
            .await
            .unwrap();
    }
    damage(store.path(), "a", Some("[1, 2]"), Some("one"));
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].revision, Revision("one".into()));
    let defect = listed[0].defect.as_deref().unwrap();
    assert!(
        defect.contains("a JSON list") && defect.contains("'one'"),
        "{defect}"
    );
    let error = listed[0].parse().unwrap_err().to_string();
    assert!(
        error.contains("rollout 'a'") && error.contains(defect),
        "{error}"
    );
    assert!(
        listed[1..]
            .iter()
            .all(|r| r.defect.is_none() && r.parse().is_ok())
    );
    assert_eq!(store.get("a").await.unwrap().as_ref(), Some(&listed[0]));

    let mut rx = store.watch().await.unwrap();
    let initial: Vec<StoredRollout> = vec![
        next_upsert(&mut rx, SOON).await,
        next_upsert(&mut rx, SOON).await,
        next_upsert(&mut rx, SOON).await,
    ];
    assert_eq!(initial, listed);

    damage(
        store.path(),
        "b",
        Some(r#"{"version": "9", "#),
        Some("garbled"),
    );
    let b = next_upsert(&mut rx, SOON).await;
    assert_eq!((b.id.as_str(), b.revision.0.as_str()), ("b", "garbled"));
    assert!(
        b.defect.as_deref().unwrap().contains("not valid JSON"),
        "{b:?}"
    );
    assert_eq!(b.fields.get("version"), Some(&json!("9")), "salvaged");
    let c = store.get("c").await.unwrap().unwrap();
    let (patch, ev) = add_user(&c, "still@example.com");
    let c = store.patch("c", &c.revision, &patch, &ev).await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, c);

    let ev = event(
        "a",
        EventKind::Rollback,
        Utc::now(),
        json!({}),
        json!({"status": "rolled-back"}),
    );
    match store
        .patch("a", &Revision("1".into()), &rollback_patch(), &ev)
        .await
    {
        Err(StoreError::Conflict { current, .. }) => assert_eq!(*current, listed[0]),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let a = store
        .patch("a", &Revision("one".into()), &rollback_patch(), &ev)
        .await
        .unwrap();
    assert_eq!((a.defect.as_ref(), a.revision.0.as_str()), (None, "2"));
    let r = a.parse().unwrap();
    assert_eq!(
        (r.version.as_str(), r.status.as_str()),
        ("(unreadable)", "rolled-back")
    );
    assert_eq!(a.fields["unreadableDocument"], json!("[1, 2]"));
    assert_eq!(next_upsert(&mut rx, SOON).await, a);
    assert_eq!(store.get("a").await.unwrap(), Some(a));
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A read-only store creates nothing (not even a missing file) and cannot write; its
/// watch starts on a store no one has open and hears the writers that come later.
#[tokio::test]
async fn a_read_only_store_creates_nothing_and_its_watch_hears_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = LocalStore::default_path(dir.path());
    let created = {
        let store = LocalStore::open(&path).unwrap();
        store
            .create("current", &seed_doc(), &create_event("current"))
            .await
            .unwrap()
    };
    assert_eq!(names_in(dir.path()), ["rollouts.db"]);
    let missing = dir.path().join("elsewhere.db");
    match LocalStore::open_read_only(&missing) {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("elsewhere.db"), "{msg}"),
        other => panic!("expected an error, got {other:?}"),
    }

    let reader = LocalStore::open_read_only(&path).unwrap();
    assert_eq!(reader.list().await.unwrap(), vec![created.clone()]);
    let mut rx = reader.watch().await.unwrap();
    assert_eq!(next_upsert(&mut rx, SOON).await, created);
    assert_eq!(names_in(dir.path()), ["rollouts.db"], "nothing was created");
    let (patch, ev) = add_user(&created, "ro@example.com");
    match reader
        .patch("current", &created.revision, &patch, &ev)
        .await
    {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("cannot write"), "{msg}"),
        other => panic!("a read-only store wrote: {other:?}"),
    }

    // A short-lived writer (a CLI command: open, write, close) and a lasting one.
    let mut doc = created;
    for k in 0..2 {
        let writer = LocalStore::open(&path).unwrap();
        let (patch, ev) = add_user(&doc, &format!("w{k}@example.com"));
        doc = writer
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        drop(writer);
        assert_eq!(next_upsert(&mut rx, SOON).await, doc);
    }
    let writer = LocalStore::open(&path).unwrap();
    for k in 2..4 {
        let (patch, ev) = add_user(&doc, &format!("w{k}@example.com"));
        doc = writer
            .patch("current", &doc.revision, &patch, &ev)
            .await
            .unwrap();
        assert_eq!(next_upsert(&mut rx, SOON).await, doc);
    }
    assert_eq!(reader.get("current").await.unwrap(), Some(doc));
}
