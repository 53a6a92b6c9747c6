//! What the engine can do with a store. The cockpit gets the full store; the wall gets
//! `ReadOnlyStore`, which has no write methods, so it cannot write whatever happens.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::WriteOutcome;
use crate::actuator::Actuators;
use crate::domain::actions::{Action, Context};
use crate::domain::event::Event;
use crate::domain::freeze::{Freeze, FreezeWindow};
use crate::domain::rollout::Plan;
use crate::ops::{self, PerformError};
use crate::store::{Lease, ReadOnlyStore, RolloutStore, StoreChange, StoreResult, StoredRollout};

/// Events loaded for the detail view.
pub const EVENTS_LOADED: usize = 50;

/// A write that takes longer than this is reported as failed (it may still land; the
/// store's change stream will show it).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// Who writes and under which rules: what every cockpit write carries.
#[derive(Clone, Debug)]
pub struct Writer {
    pub actor: String,
    pub default_plan: Plan,
    pub freeze_windows: Vec<FreezeWindow>,
    /// Services whose traffic split a write also sets.
    pub traffic: Actuators,
}

pub trait Backend: Clone + Send + Sync + 'static {
    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>>;
    /// The newest `EVENTS_LOADED` events, for the detail view.
    fn load_events(&self, id: String) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        self.load_events_up_to(id, EVENTS_LOADED)
    }
    /// The newest `limit` events (a report reads the whole log, up to its own limit).
    fn load_events_up_to(
        &self,
        id: String,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Event>, String>>;
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>>;
    fn freeze(&self) -> BoxFuture<'_, StoreResult<Option<Freeze>>>;
    /// Runs a write and reports its outcome; `None` when this backend cannot write.
    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>>;
    /// The store a driver may write through; `None` in read-only mode.
    fn writable(&self) -> Option<Arc<dyn RolloutStore>>;
}

impl Backend for Arc<dyn RolloutStore> {
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>> {
        Box::pin(async move { self.get_lease(&id).await })
    }

    fn freeze(&self) -> BoxFuture<'_, StoreResult<Option<Freeze>>> {
        Box::pin(async move { RolloutStore::freeze(self.as_ref()).await })
    }

    fn writable(&self) -> Option<Arc<dyn RolloutStore>> {
        Some(self.clone())
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events_up_to(
        &self,
        id: String,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move {
            self.list_events(&id, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>> {
        let store = self.clone();
        Some(Box::pin(async move {
            let id = seen.id.clone();
            let ctx = Context {
                actor: &writer.actor,
                now,
                default_plan: &writer.default_plan,
                freeze_windows: &writer.freeze_windows,
            };
            let result = tokio::time::timeout(
                WRITE_TIMEOUT,
                ops::perform_on(store.as_ref(), &writer.traffic, &seen, &action, ctx, None),
            )
            .await;
            match result {
                Err(_) => WriteOutcome::Failed(format!(
                    "no answer from the store in {}s; check `events {id}` before retrying",
                    WRITE_TIMEOUT.as_secs()
                )),
                Ok(Ok(done)) => WriteOutcome::Done {
                    summary: done.transition.summary,
                    stored: done.stored,
                    event: Box::new(done.transition.event),
                },
                Ok(Err(PerformError::Conflict {
                    current, changed, ..
                })) => {
                    let by = newest_event_after(store.as_ref(), &seen).await;
                    WriteOutcome::Conflict {
                        changed,
                        current: *current,
                        by: by.map(Box::new),
                    }
                }
                Ok(Err(e)) => WriteOutcome::Failed(e.to_string()),
            }
        }))
    }
}

impl Backend for ReadOnlyStore {
    fn lease(&self, id: String) -> BoxFuture<'_, StoreResult<Option<Lease>>> {
        Box::pin(async move { self.get_lease(&id).await })
    }

    fn freeze(&self) -> BoxFuture<'_, StoreResult<Option<Freeze>>> {
        Box::pin(async move { ReadOnlyStore::freeze(self).await })
    }

    fn writable(&self) -> Option<Arc<dyn RolloutStore>> {
        None
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<StoreChange>>> {
        Box::pin(self.watch())
    }

    fn load_events_up_to(
        &self,
        id: String,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Event>, String>> {
        Box::pin(async move {
            self.list_events(&id, limit)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn perform(
        &self,
        seen: StoredRollout,
        action: Action,
        _: Writer,
        _: DateTime<Utc>,
    ) -> Option<BoxFuture<'static, WriteOutcome>> {
        tracing::error!(rollout = %seen.id, ?action, "read-only watch mode was asked to write; refused");
        None
    }
}

/// The newest audit event of `seen`'s rollout written after `seen` was: who changed it
/// since. None when the log has none (or cannot be read, or the seen revision carries no
/// time to compare with): the dialog then says it is not known.
async fn newest_event_after(store: &dyn RolloutStore, seen: &StoredRollout) -> Option<Event> {
    let seen_at = seen.parse().ok()?.last_updated_at?;
    let newest = tokio::time::timeout(WRITE_TIMEOUT, store.list_events(&seen.id, 1))
        .await
        .ok()?
        .ok()?
        .into_iter()
        .next()?;
    (newest.at > seen_at).then_some(newest)
}
