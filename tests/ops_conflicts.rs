//! Lost compare-and-set races: an absolute action is re-validated and applied on
//! the new document; `advance` (relative) refuses, so no stage is applied twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rollout_tui::domain::actions::{self, Action, Context, NewRollout};
use rollout_tui::domain::event::Event;
use rollout_tui::domain::freeze::Freeze;
use rollout_tui::domain::rollout::{Fields, Hashing, Plan, PlanPreset};
use rollout_tui::ops::{PerformError, perform, perform_on};
use rollout_tui::store::local::LocalStore;
use rollout_tui::store::{
    Lease, LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreResult, StoredRollout,
};
use tokio::sync::mpsc;

/// Before the first patch it forwards, another operator's action lands first.
struct RacingStore {
    inner: LocalStore,
    rival: Action,
    raced: AtomicBool,
}

impl RacingStore {
    /// Before the first write this store forwards, the rival's action lands.
    async fn let_the_rival_write_first(&self, id: &str) {
        if !self.raced.swap(true, Ordering::SeqCst) {
            perform(
                &self.inner,
                &Default::default(),
                id,
                &self.rival,
                ctx("rival"),
            )
            .await
            .expect("rival's action");
        }
    }
}

#[async_trait]
impl RolloutStore for RacingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn list(&self) -> StoreResult<Vec<StoredRollout>> {
        self.inner.list().await
    }
    async fn get(&self, id: &str) -> StoreResult<Option<StoredRollout>> {
        self.inner.get(id).await
    }
    async fn create(&self, id: &str, fields: &Fields, event: &Event) -> StoreResult<StoredRollout> {
        self.inner.create(id, fields, event).await
    }
    async fn patch(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.let_the_rival_write_first(id).await;
        self.inner.patch(id, expected, patch, event).await
    }
    async fn patch_unless_frozen(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.let_the_rival_write_first(id).await;
        self.inner
            .patch_unless_frozen(id, expected, patch, event)
            .await
    }
    async fn freeze(&self) -> StoreResult<Option<Freeze>> {
        self.inner.freeze().await
    }
    async fn set_freeze(&self, freeze: Option<&Freeze>) -> StoreResult<()> {
        self.inner.set_freeze(freeze).await
    }
    async fn append_event(&self, event: &Event) -> StoreResult<()> {
        self.inner.append_event(event).await
    }
    async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>> {
        self.inner.list_events(rollout_id, limit).await
    }
    async fn acquire_lease(
        &self,
        id: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseOutcome> {
        self.inner.acquire_lease(id, holder, ttl, now).await
    }
    async fn release_lease(&self, id: &str, holder: &str) -> StoreResult<()> {
        self.inner.release_lease(id, holder).await
    }
    async fn get_lease(&self, id: &str) -> StoreResult<Option<Lease>> {
        self.inner.get_lease(id).await
    }
    async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>> {
        self.inner.watch().await
    }
}

/// Acting now as `actor`, with the canary plan as the default.
fn ctx(actor: &str) -> Context<'_> {
    static PLAN: std::sync::LazyLock<Plan> =
        std::sync::LazyLock::new(|| Plan::preset(PlanPreset::Canary));
    Context {
        actor,
        now: Utc::now(),
        default_plan: &PLAN,
        freeze_windows: &[],
    }
}

async fn racing(rival: Action) -> (tempfile::TempDir, Arc<RacingStore>) {
    let dir = tempfile::tempdir().unwrap();
    let inner = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    let new = NewRollout {
        id: "current".into(),
        version: "1.1.0".into(),
        stable_version: None,
        plan: Plan::preset(PlanPreset::Canary),
        hashing: Hashing::FractionalV1,
        stable_revision: None,
        canary_revision: None,
        canary_users: vec![],
        on_breach: None,
    };
    let (fields, event) = actions::create(&new, "setup", Utc::now()).unwrap();
    inner.create("current", &fields, &event).await.unwrap();
    (
        dir,
        Arc::new(RacingStore {
            inner,
            rival,
            raced: AtomicBool::new(false),
        }),
    )
}

async fn stage_and_percent(store: &dyn RolloutStore) -> (Option<usize>, f64) {
    let r = store
        .get("current")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    (r.current_stage, r.percentage.as_f64())
}

#[tokio::test]
async fn concurrent_advance_is_not_applied_twice() {
    let (_dir, store) = racing(Action::Advance).await;
    let ctx = ctx("me");
    let err = perform(
        store.as_ref(),
        &Default::default(),
        "current",
        &Action::Advance,
        ctx,
    )
    .await
    .unwrap_err();
    let PerformError::Conflict { changed, .. } = &err else {
        panic!("expected a conflict, got {err:?}")
    };
    assert!(
        changed.iter().any(|c| c.field == "currentStage"),
        "{changed:?}"
    );
    assert!(
        err.to_string().contains("rolloutPercentage: 0 -> 5"),
        "{err}"
    );
    // The rival's advance stands; ours was not stacked on top of it.
    assert_eq!(stage_and_percent(store.as_ref()).await, (Some(1), 5.0));
    let events = store.list_events("current", 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind.as_str() == "advance")
            .count(),
        1
    );
}

#[tokio::test]
async fn concurrent_absolute_action_is_revalidated_and_applied() {
    let (_dir, store) = racing(Action::Advance).await;
    let ctx = ctx("me");
    let done = perform(
        store.as_ref(),
        &Default::default(),
        "current",
        &Action::SetPercent("50".parse().unwrap()),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(done.retries, 1);
    assert_eq!(stage_and_percent(store.as_ref()).await, (Some(3), 50.0));
    // Our event's before-values are those of the document we finally changed.
    assert_eq!(
        done.transition.event.before["rolloutPercentage"],
        serde_json::json!(5)
    );
}

#[tokio::test]
async fn concurrent_rollback_then_rollback_is_refused_not_duplicated() {
    let (_dir, store) = racing(Action::Rollback {
        reason: "rival saw errors".into(),
    })
    .await;
    let ctx = ctx("me");
    let err = perform(
        store.as_ref(),
        &Default::default(),
        "current",
        &Action::Rollback {
            reason: "me too".into(),
        },
        ctx,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already rolled back"), "{err}");
    let r = store
        .get("current")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.rollback_reason.as_deref(), Some("rival saw errors"));
}

/// The cockpit and the driver act on the document they saw. If it changed since, even an
/// absolute action is shown as a conflict (what changed), never applied unseen.
#[tokio::test]
async fn acting_on_a_stale_view_is_a_conflict_and_writes_nothing() {
    let (_dir, store) = racing(Action::Advance).await;
    let ctx = ctx("me");
    // What the operator saw: stage 0, 0 %. Another operator advances before the write.
    let seen = store.get("current").await.unwrap().unwrap();
    for action in [Action::Advance, Action::SetPercent("20".parse().unwrap())] {
        let err = perform_on(
            store.as_ref(),
            &Default::default(),
            &seen,
            &action,
            ctx,
            None,
        )
        .await
        .unwrap_err();
        let PerformError::Conflict {
            changed, current, ..
        } = &err
        else {
            panic!("{action:?}: expected a conflict, got {err:?}")
        };
        assert!(
            changed
                .iter()
                .any(|c| c.field == "rolloutPercentage" && c.after == serde_json::json!(5)),
            "{changed:?}"
        );
        assert_ne!(current.revision, seen.revision);
        assert_eq!(stage_and_percent(store.as_ref()).await, (Some(1), 5.0));
    }
    let events = store.list_events("current", 10).await.unwrap();
    assert_eq!(
        events.len(),
        2,
        "create and the rival's advance only: {events:?}"
    );
}

/// A rollback is right whatever changed: on a stale view it is re-applied to the current
/// document rather than bounced back to an operator under stress.
#[tokio::test]
async fn a_rollback_on_a_stale_view_still_rolls_back() {
    let (_dir, store) = racing(Action::Advance).await;
    let ctx = ctx("me");
    let seen = store.get("current").await.unwrap().unwrap();
    let done = perform_on(
        store.as_ref(),
        &Default::default(),
        &seen,
        &Action::Rollback {
            reason: "errors".into(),
        },
        ctx,
        None,
    )
    .await
    .unwrap();
    assert_eq!(done.retries, 1);
    assert_eq!(stage_and_percent(store.as_ref()).await.1, 0.0);
    // The event records the document it changed: the rival's 5 %.
    assert_eq!(
        done.transition.event.before["rolloutPercentage"],
        serde_json::json!(5)
    );
}

/// The cockpit's write path: a lost race comes back with the audit event that says who
/// made the change the write lost to, so the conflict dialog can name them.
#[tokio::test]
async fn the_engine_names_who_made_the_change_a_write_lost_to() {
    use rollout_tui::engine::WriteOutcome;
    use rollout_tui::engine::backend::Backend;
    use rollout_tui::engine::backend::Writer;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    let new = NewRollout {
        id: "current".into(),
        version: "1.1.0".into(),
        stable_version: None,
        plan: Plan::preset(PlanPreset::Canary),
        hashing: Hashing::FractionalV1,
        stable_revision: None,
        canary_revision: None,
        canary_users: vec![],
        on_breach: None,
    };
    // Created a minute ago, so the rival's event is strictly newer than what was seen.
    let created = Utc::now() - chrono::Duration::minutes(1);
    let (fields, event) = actions::create(&new, "setup", created).unwrap();
    local.create("current", &fields, &event).await.unwrap();
    let seen = local.get("current").await.unwrap().unwrap();
    perform(
        &local,
        &Default::default(),
        "current",
        &Action::Advance,
        ctx("rival"),
    )
    .await
    .expect("rival's advance");

    let store: Arc<dyn RolloutStore> = Arc::new(local);
    let outcome = store
        .perform(
            seen,
            Action::Advance,
            Writer {
                actor: "me".into(),
                default_plan: Plan::preset(PlanPreset::Canary),
                freeze_windows: Vec::new(),
                traffic: Default::default(),
            },
            Utc::now(),
        )
        .expect("a writable backend")
        .await;
    let WriteOutcome::Conflict { by, .. } = outcome else {
        panic!("expected a conflict, got {outcome:?}")
    };
    let by = by.expect("the rival's event");
    assert_eq!((by.actor.as_str(), by.kind.as_str()), ("rival", "advance"));
}
