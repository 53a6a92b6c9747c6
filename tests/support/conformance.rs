//! The store-conformance suite: every `RolloutStore` implementation must pass
//! it unchanged. Each check assumes an empty store and uses its own ids; it
//! only relies on what the trait promises (revisions are opaque strings).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::freeze::Freeze;
use rollout_tui::domain::rollout::Fields;
use rollout_tui::store::{
    Lease, LeaseOutcome, Patch, RolloutStore, StoreChange, StoreError, StoredRollout,
};
use serde_json::{Value, json};

/// Long enough for a slow emulator, short enough that a hang is a failure.
const WAIT: Duration = Duration::from_secs(10);

/// A fixed instant with millisecond precision (every store keeps at least that).
pub fn at(secs: i64, millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_750_000_000_000 + secs * 1000 + millis).unwrap()
}

pub fn event(
    rollout_id: &str,
    kind: EventKind,
    when: DateTime<Utc>,
    before: Value,
    after: Value,
) -> Event {
    Event {
        rollout_id: rollout_id.to_string(),
        kind,
        actor: "tester@example.com".to_string(),
        at: when,
        before,
        after,
        reason: None,
        gate_report: None,
    }
}

pub fn create_event(rollout_id: &str) -> Event {
    event(
        rollout_id,
        EventKind::Create,
        at(0, 0),
        Value::Null,
        json!({"status": "canary"}),
    )
}

pub fn fields(v: Value) -> Fields {
    v.as_object().expect("a JSON object").clone()
}

/// The seed document's shape plus fields no part of rollout-tui knows about.
pub fn seed_doc() -> Fields {
    fields(json!({
        "version": "0.1.1", "stableVersion": "0.1.0", "status": "canary",
        "canaryUsers": ["alec@getaifactory.com"], "excludedUsers": [],
        "rolloutPercentage": 0, "rolloutStrategy": "manual",
        "stableRevision": "svc-00097-6cg", "canaryRevision": "svc-00098-xyz",
        "startedAt": "2025-12-03T10:00:00Z",
        "canaryErrors": 0, "stableErrors": 3,
        "owner": {"team": "payments", "oncall": {"primary": "ana", "pager": [1, 2, 3]}, "weight": 0.25},
        "labels": ["blue", {"k": "v"}, null, true, 1234567890123_i64],
        "note": null
    }))
}

async fn must<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {WAIT:?}"))
}

async fn create(store: &dyn RolloutStore, id: &str, doc: &Fields) -> StoredRollout {
    must("create", store.create(id, doc, &create_event(id)))
        .await
        .unwrap_or_else(|e| panic!("create {id}: {e}"))
}

async fn get(store: &dyn RolloutStore, id: &str) -> Option<StoredRollout> {
    must("get", store.get(id))
        .await
        .unwrap_or_else(|e| panic!("get {id}: {e}"))
}

fn set(field: &str, value: Value) -> Patch {
    let mut patch = Patch::default();
    patch.set(field, value);
    patch
}

fn percent_event(id: &str, secs: i64, from: Value, to: Value) -> Event {
    event(
        id,
        EventKind::SetPercent,
        at(secs, 0),
        json!({"rolloutPercentage": from}),
        json!({"rolloutPercentage": to}),
    )
}

pub async fn create_then_get(store: &dyn RolloutStore) {
    let doc = seed_doc();
    let created = create(store, "cg-1", &doc).await;
    assert_eq!(created.id, "cg-1");
    assert_eq!(created.fields, doc);
    assert!(
        !created.revision.0.is_empty(),
        "a created document has a revision"
    );
    let read = get(store, "cg-1").await.expect("the created document");
    assert_eq!(read, created);
    read.parse().expect("the seed shape parses");
}

pub async fn create_twice_is_already_exists(store: &dyn RolloutStore) {
    let first = create(store, "ct-1", &seed_doc()).await;
    let mut other = seed_doc();
    other.insert("version".into(), json!("9.9.9"));
    let err = must(
        "create",
        store.create("ct-1", &other, &create_event("ct-1")),
    )
    .await
    .unwrap_err();
    assert_eq!(err, StoreError::AlreadyExists("ct-1".into()));
    assert_eq!(get(store, "ct-1").await.as_ref(), Some(&first));
    let events = must("list_events", store.list_events("ct-1", 10))
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        1,
        "the failed create recorded no event: {events:?}"
    );
}

pub async fn get_missing_is_none(store: &dyn RolloutStore) {
    assert_eq!(get(store, "gm-nothing-here").await, None);
}

pub async fn list_returns_all(store: &dyn RolloutStore) {
    assert!(
        must("list", store.list()).await.unwrap().is_empty(),
        "the store starts empty"
    );
    let mut created = Vec::new();
    for (i, id) in ["la-1", "la-2", "la-3"].into_iter().enumerate() {
        let mut doc = seed_doc();
        doc.insert("version".into(), json!(format!("1.0.{i}")));
        created.push(create(store, id, &doc).await);
    }
    let mut listed = must("list", store.list()).await.unwrap();
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, created);
}

pub async fn patch_keeps_unknown_fields(store: &dyn RolloutStore) {
    let doc = seed_doc();
    let created = create(store, "pk-1", &doc).await;
    let patched = must(
        "patch",
        store.patch(
            "pk-1",
            &created.revision,
            &set("rolloutPercentage", json!(5)),
            &percent_event("pk-1", 1, json!(0), json!(5)),
        ),
    )
    .await
    .expect("patch at the current revision");
    assert_ne!(
        patched.revision, created.revision,
        "a patch moves the revision"
    );
    let read = get(store, "pk-1").await.unwrap();
    assert_eq!(read, patched);
    assert_eq!(read.fields["rolloutPercentage"], json!(5));
    let mut expected = doc.clone();
    expected.insert("rolloutPercentage".into(), json!(5));
    assert_eq!(read.fields, expected, "only rolloutPercentage changed");
    for name in [
        "canaryErrors",
        "stableErrors",
        "owner",
        "labels",
        "note",
        "canaryUsers",
        "startedAt",
    ] {
        assert_eq!(
            read.fields.get(name),
            doc.get(name),
            "{name} survived the patch"
        );
    }
}

pub async fn patch_deletes_field(store: &dyn RolloutStore) {
    let created = create(store, "pd-1", &seed_doc()).await;
    let mut patch = Patch::default();
    patch
        .delete("canaryErrors")
        .set("rolloutPercentage", json!(0.5));
    let ev = event(
        "pd-1",
        EventKind::SetPercent,
        at(1, 0),
        json!({"canaryErrors": 0}),
        json!({"canaryErrors": null}),
    );
    let patched = must("patch", store.patch("pd-1", &created.revision, &patch, &ev))
        .await
        .unwrap();
    let read = get(store, "pd-1").await.unwrap();
    assert_eq!(read, patched);
    assert!(
        !read.fields.contains_key("canaryErrors"),
        "deleted: {:?}",
        read.fields
    );
    assert_eq!(read.fields["rolloutPercentage"], json!(0.5));
    assert_eq!(read.fields.len(), created.fields.len() - 1);
    // Deleting a field that does not exist is not an error.
    let mut patch = Patch::default();
    patch.delete("neverThere");
    let again = must("patch", store.patch("pd-1", &read.revision, &patch, &ev))
        .await
        .unwrap();
    assert_eq!(again.fields, read.fields);
}

pub async fn stale_patch_conflicts(store: &dyn RolloutStore) {
    let created = create(store, "sp-1", &seed_doc()).await;
    let first = must(
        "patch",
        store.patch(
            "sp-1",
            &created.revision,
            &set("rolloutPercentage", json!(10)),
            &percent_event("sp-1", 1, json!(0), json!(10)),
        ),
    )
    .await
    .unwrap();
    let events_before = must("list_events", store.list_events("sp-1", 100))
        .await
        .unwrap();
    let stale = must(
        "patch",
        store.patch(
            "sp-1",
            &created.revision,
            &set("rolloutPercentage", json!(50)),
            &percent_event("sp-1", 2, json!(0), json!(50)),
        ),
    )
    .await
    .expect_err("a stale revision must not write");
    match stale {
        StoreError::Conflict { id, current } => {
            assert_eq!(id, "sp-1");
            assert_eq!(*current, first, "the conflict carries the current document");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        get(store, "sp-1").await.unwrap(),
        first,
        "the store is unchanged"
    );
    let events_after = must("list_events", store.list_events("sp-1", 100))
        .await
        .unwrap();
    assert_eq!(
        events_after, events_before,
        "the failed patch recorded no event"
    );
}

pub async fn patch_missing_is_not_found(store: &dyn RolloutStore) {
    let created = create(store, "pm-exists", &seed_doc()).await;
    // A revision that is real for another document still cannot make a missing one appear.
    let err = must(
        "patch",
        store.patch(
            "pm-missing",
            &created.revision,
            &set("rolloutPercentage", json!(1)),
            &percent_event("pm-missing", 1, json!(0), json!(1)),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err, StoreError::NotFound("pm-missing".into()));
    assert_eq!(get(store, "pm-missing").await, None);
    assert!(
        must("list_events", store.list_events("pm-missing", 10))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn patch_events_are_listed(store: &dyn RolloutStore) {
    let mut current = create(store, "pe-1", &seed_doc()).await;
    let mut written = vec![create_event("pe-1")];
    for (i, percent) in [1, 5, 25].into_iter().enumerate() {
        let ev = percent_event("pe-1", 10 + i as i64, json!(0), json!(percent));
        current = must(
            "patch",
            store.patch(
                "pe-1",
                &current.revision,
                &set("rolloutPercentage", json!(percent)),
                &ev,
            ),
        )
        .await
        .unwrap();
        written.push(ev);
    }
    let stale = current.revision.clone();
    let last = percent_event("pe-1", 15, json!(25), json!(50));
    must(
        "patch",
        store.patch("pe-1", &stale, &set("rolloutPercentage", json!(50)), &last),
    )
    .await
    .unwrap();
    written.push(last);
    let rejected = percent_event("pe-1", 20, json!(25), json!(99));
    let err = must(
        "patch",
        store.patch(
            "pe-1",
            &stale,
            &set("rolloutPercentage", json!(99)),
            &rejected,
        ),
    )
    .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");

    let newest_first: Vec<Event> = written.iter().rev().cloned().collect();
    assert_eq!(
        must("list_events", store.list_events("pe-1", 100))
            .await
            .unwrap(),
        newest_first
    );
    assert_eq!(
        must("list_events", store.list_events("pe-1", 2))
            .await
            .unwrap(),
        newest_first[..2].to_vec()
    );
    assert!(
        must("list_events", store.list_events("pe-1", 0))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn events_round_trip(store: &dyn RolloutStore) {
    let mut first = event(
        "er-1",
        EventKind::Advance,
        at(100, 250),
        json!({"currentStage": 1, "rolloutPercentage": 5}),
        json!({"currentStage": 2, "rolloutPercentage": 25}),
    );
    first.actor = "driver@bastion-1".into();
    first.reason = Some("gates passed for 10m".into());
    first.gate_report = Some(json!({
        "verdict": "pass",
        "gates": [
            {"name": "canary error rate", "verdict": "pass", "value": 0.0012, "limit": 0.01},
            {"name": "p99 ratio", "verdict": "inconclusive", "value": null, "why": "too few requests"}
        ],
        "window": {"from": "2025-06-15T14:00:00Z", "seconds": 600}
    }));
    let mut second = event(
        "er-1",
        EventKind::Rollback,
        at(200, 999),
        json!({"status": "progressive"}),
        json!({"status": "rolled-back"}),
    );
    second.reason = Some("p99 regression, ünïcödé and \"quotes\"".into());
    let elsewhere = event(
        "er-2",
        EventKind::Pause,
        at(150, 0),
        json!({"status": "canary"}),
        json!({"status": "paused"}),
    );
    for ev in [&first, &elsewhere, &second] {
        must("append_event", store.append_event(ev)).await.unwrap();
    }
    assert_eq!(
        must("list_events", store.list_events("er-1", 10))
            .await
            .unwrap(),
        vec![second.clone(), first]
    );
    assert_eq!(
        must("list_events", store.list_events("er-1", 1))
            .await
            .unwrap(),
        vec![second]
    );
    assert_eq!(
        must("list_events", store.list_events("er-2", 10))
            .await
            .unwrap(),
        vec![elsewhere]
    );
    assert!(
        must("list_events", store.list_events("er-none", 10))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn leases(store: &dyn RolloutStore) {
    let ttl = Duration::from_secs(30);
    let t0 = at(1000, 0);
    let secs = |s: i64| t0 + chrono::Duration::seconds(s);
    let lease = |holder: &str, acquired: i64, expires: i64| Lease {
        rollout_id: "ls-1".into(),
        holder: holder.into(),
        acquired_at: secs(acquired),
        expires_at: secs(expires),
    };
    let acquire = |holder: &'static str, now: DateTime<Utc>| async move {
        must(
            "acquire_lease",
            store.acquire_lease("ls-1", holder, ttl, now),
        )
        .await
        .unwrap()
    };
    let current = || async { must("get_lease", store.get_lease("ls-1")).await.unwrap() };
    let release = |holder: &'static str| async move {
        must("release_lease", store.release_lease("ls-1", holder))
            .await
            .unwrap()
    };

    assert_eq!(current().await, None);
    assert_eq!(
        acquire("alice", t0).await,
        LeaseOutcome::Held(lease("alice", 0, 30))
    );
    assert_eq!(current().await, Some(lease("alice", 0, 30)));

    assert_eq!(
        acquire("bob", secs(10)).await,
        LeaseOutcome::HeldByOther(lease("alice", 0, 30))
    );
    assert_eq!(
        current().await,
        Some(lease("alice", 0, 30)),
        "a refused acquire changes nothing"
    );

    // Renewal keeps the start and pushes the end out.
    assert_eq!(
        acquire("alice", secs(20)).await,
        LeaseOutcome::Held(lease("alice", 0, 50))
    );
    assert_eq!(current().await, Some(lease("alice", 0, 50)));

    release("bob").await;
    assert_eq!(
        current().await,
        Some(lease("alice", 0, 50)),
        "only the holder releases"
    );

    // Alice's driver crashed; her lease lapses and Bob takes over.
    assert_eq!(
        acquire("bob", secs(60)).await,
        LeaseOutcome::Held(lease("bob", 60, 90))
    );
    assert_eq!(current().await, Some(lease("bob", 60, 90)));
    assert_eq!(
        acquire("alice", secs(61)).await,
        LeaseOutcome::HeldByOther(lease("bob", 60, 90))
    );

    release("alice").await;
    assert_eq!(current().await, Some(lease("bob", 60, 90)));
    release("bob").await;
    assert_eq!(current().await, None);
    assert_eq!(
        acquire("alice", secs(70)).await,
        LeaseOutcome::Held(lease("alice", 70, 100))
    );

    // Leases are per rollout.
    let other = must(
        "acquire_lease",
        store.acquire_lease("ls-2", "bob", ttl, secs(70)),
    )
    .await
    .unwrap();
    assert!(
        matches!(other, LeaseOutcome::Held(ref l) if l.holder == "bob" && l.rollout_id == "ls-2"),
        "{other:?}"
    );
    assert_eq!(current().await, Some(lease("alice", 70, 100)));
}

/// Waits for the next `Upserted` matching `want`, skipping anything else.
async fn wait_for_upsert(
    rx: &mut tokio::sync::mpsc::Receiver<StoreChange>,
    within: Duration,
    mut want: impl FnMut(&StoredRollout) -> bool,
) -> StoredRollout {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => panic!("no matching change within {within:?}"),
            Ok(None) => panic!("the watch stream ended"),
            Ok(Some(StoreChange::Upserted(doc))) if want(&doc) => return doc,
            Ok(Some(_)) => {}
        }
    }
}

pub async fn watch_sees_existing_and_patches(store: &dyn RolloutStore) {
    let a = create(store, "wa-1", &seed_doc()).await;
    let b = create(store, "wa-2", &seed_doc()).await;
    let mut rx = must("watch", store.watch()).await.expect("watch");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let doc = wait_for_upsert(&mut rx, WAIT, |d| {
            !seen.iter().any(|s: &StoredRollout| s.id == d.id)
        })
        .await;
        seen.push(doc);
    }
    seen.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(seen, vec![a.clone(), b]);

    let patched = must(
        "patch",
        store.patch(
            "wa-1",
            &a.revision,
            &set("rolloutPercentage", json!(25)),
            &percent_event("wa-1", 1, json!(0), json!(25)),
        ),
    )
    .await
    .unwrap();
    let heard = wait_for_upsert(&mut rx, Duration::from_secs(1), |d| {
        d.id == "wa-1" && d.revision == patched.revision
    })
    .await;
    assert_eq!(heard, patched);

    let c = create(store, "wa-3", &seed_doc()).await;
    let heard = wait_for_upsert(&mut rx, Duration::from_secs(1), |d| d.id == "wa-3").await;
    assert_eq!(heard, c);
}

macro_rules! run_checks {
    ($make:expr, $($check:ident),+ $(,)?) => {$(
        eprintln!("conformance: {}", stringify!($check));
        let store = $make().await;
        $check(&*store).await;
    )+};
}

/// Runs every check, each on a fresh empty store from `make_empty_store`.
/// The freeze flag: none at first; set, it is read back whole and stops
/// `patch_unless_frozen` (nothing written, no event) but not `patch`; lifted, the
/// guarded patch writes, and its result is a valid revision to write on.
pub async fn freeze_flag(store: &dyn RolloutStore) {
    assert_eq!(must("freeze", store.freeze()).await.unwrap(), None);
    let created = create(store, "fz-1", &seed_doc()).await;
    let flag = Freeze {
        by: "alice@example.com".into(),
        at: at(5, 123),
        reason: "INC-42: payments degraded".into(),
    };
    must("set_freeze", store.set_freeze(Some(&flag)))
        .await
        .unwrap();
    assert_eq!(
        must("freeze", store.freeze()).await.unwrap(),
        Some(flag.clone())
    );
    let events_before = must("list_events", store.list_events("fz-1", 100))
        .await
        .unwrap();
    let refused = must(
        "patch_unless_frozen",
        store.patch_unless_frozen(
            "fz-1",
            &created.revision,
            &set("rolloutPercentage", json!(25)),
            &percent_event("fz-1", 1, json!(0), json!(25)),
        ),
    )
    .await
    .expect_err("a frozen store must refuse a guarded patch");
    assert_eq!(refused, StoreError::Frozen(flag.clone()));
    assert_eq!(
        get(store, "fz-1").await.unwrap(),
        created,
        "nothing written"
    );
    assert_eq!(
        must("list_events", store.list_events("fz-1", 100))
            .await
            .unwrap(),
        events_before,
        "no event for the refused write"
    );
    // Pauses and rollbacks go through the plain patch, frozen or not.
    let paused = must(
        "patch",
        store.patch(
            "fz-1",
            &created.revision,
            &set("status", json!("paused")),
            &percent_event("fz-1", 2, json!(0), json!(0)),
        ),
    )
    .await
    .expect("a plain patch is not stopped by the freeze");
    must("set_freeze", store.set_freeze(None)).await.unwrap();
    assert_eq!(must("freeze", store.freeze()).await.unwrap(), None);
    let widened = must(
        "patch_unless_frozen",
        store.patch_unless_frozen(
            "fz-1",
            &paused.revision,
            &set("rolloutPercentage", json!(25)),
            &percent_event("fz-1", 3, json!(0), json!(25)),
        ),
    )
    .await
    .expect("unfrozen, the guarded patch writes");
    assert_eq!(widened.fields["rolloutPercentage"], json!(25));
    assert_eq!(get(store, "fz-1").await.unwrap(), widened);
    // Its revision is the stored one: the next compare-and-set on it succeeds, a stale one conflicts.
    must(
        "patch",
        store.patch(
            "fz-1",
            &widened.revision,
            &set("rolloutPercentage", json!(50)),
            &percent_event("fz-1", 4, json!(25), json!(50)),
        ),
    )
    .await
    .expect("the guarded patch's revision is current");
    let stale = must(
        "patch_unless_frozen",
        store.patch_unless_frozen(
            "fz-1",
            &widened.revision,
            &set("rolloutPercentage", json!(100)),
            &percent_event("fz-1", 5, json!(50), json!(100)),
        ),
    )
    .await
    .expect_err("a stale revision conflicts");
    assert!(matches!(stale, StoreError::Conflict { .. }), "{stale:?}");
}

pub async fn run_all<F, Fut>(make_empty_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn RolloutStore>>,
{
    run_checks!(
        make_empty_store,
        create_then_get,
        create_twice_is_already_exists,
        get_missing_is_none,
        list_returns_all,
        patch_keeps_unknown_fields,
        patch_deletes_field,
        stale_patch_conflicts,
        patch_missing_is_not_found,
        patch_events_are_listed,
        events_round_trip,
        leases,
        watch_sees_existing_and_patches,
        freeze_flag,
    );
}
