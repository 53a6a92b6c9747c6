//! Where rollout documents live. Every implementation passes the same
//! conformance suite (`tests/support/conformance.rs`).

pub mod firestore;
pub mod local;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::domain::event::Event;
use crate::domain::freeze::Freeze;
pub use crate::domain::patch::Patch;
use crate::domain::rollout::{DocError, Fields, Rollout};

/// Where the rollouts are kept: the `[store]` config table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// "local" (the embedded SQLite store in the data directory) or "firestore".
    pub kind: String,
    /// Firestore: the Google Cloud project (required for kind = "firestore").
    pub project_id: Option<String>,
    /// Firestore: the database id.
    pub database: String,
    /// Firestore: the rollouts collection.
    pub collection: String,
    /// Firestore: the audit event collection.
    pub events_collection: String,
    /// Firestore: the lease collection (one document per driven rollout).
    pub leases_collection: String,
    /// Firestore: the collection of global switches (the freeze document, `freeze`).
    pub control_collection: String,
    /// Firestore: an emulator address (host:port); `FIRESTORE_EMULATOR_HOST` also works.
    pub emulator_host: Option<String>,
}

pub const STORE_KINDS: [&str; 2] = ["local", "firestore"];

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: "local".into(),
            project_id: None,
            database: "(default)".into(),
            collection: "feature_rollouts".into(),
            events_collection: "rollout_events".into(),
            leases_collection: "rollout_leases".into(),
            control_collection: "rollout_control".into(),
            emulator_host: None,
        }
    }
}

impl StoreConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !STORE_KINDS.contains(&self.kind.as_str()) {
            return Err(format!(
                "store.kind = '{}' is not a store kind; expected \"local\" or \"firestore\"",
                self.kind
            ));
        }
        if self.kind == "firestore" {
            match &self.project_id {
                None => {
                    return Err(
                        "store.project_id is required when store.kind = \"firestore\"".into(),
                    );
                }
                Some(p) if p.trim().is_empty() => {
                    return Err("store.project_id must not be empty".into());
                }
                _ => {}
            }
        }
        for (name, value) in [
            ("database", &self.database),
            ("collection", &self.collection),
            ("events_collection", &self.events_collection),
            ("leases_collection", &self.leases_collection),
            ("control_collection", &self.control_collection),
        ] {
            if value.trim().is_empty() || value.contains('/') {
                return Err(format!(
                    "store.{name} = '{value}' must be a non-empty name without '/'"
                ));
            }
        }
        if let Some(host) = &self.emulator_host
            && !host.contains(':')
        {
            return Err(format!(
                "store.emulator_host = '{host}' must be host:port, such as 127.0.0.1:8080"
            ));
        }
        Ok(())
    }
}

/// Opaque compare-and-set token: a counter in SQLite, `update_time` in Firestore.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision(pub String);

impl std::fmt::Display for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document as stored: every field, known or not, and the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRollout {
    pub id: String,
    pub revision: Revision,
    pub fields: Fields,
    /// The stored row itself could not be read (a document that is not a JSON object, a
    /// revision that is not a counter), and why. `fields` then holds what could be
    /// salvaged, and the rollout is shown with this error like a malformed field.
    pub defect: Option<String>,
}

impl StoredRollout {
    pub fn parse(&self) -> Result<Rollout, DocError> {
        if let Some(defect) = &self.defect {
            return Err(DocError {
                rollout: self.id.clone(),
                field: "(stored row)".into(),
                problem: format!(
                    "cannot be read: {defect}. A rollback rewrites it as a valid document and keeps what it cannot read"
                ),
            });
        }
        Rollout::from_fields(&self.id, &self.fields)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub rollout_id: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until `expires_at`.
    Held(Lease),
    /// Someone else holds an unexpired lease.
    HeldByOther(Lease),
}

/// A lease as a driver holds it, or cannot: what the screens show about who drives.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseState {
    Held(Lease),
    HeldByOther(Lease),
    /// The store could not be asked: the driver does nothing until it can.
    Unavailable(String),
}

/// What a watcher hears.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChange {
    /// A rollout was created or changed (by anyone, this process included).
    Upserted(StoredRollout),
    Removed(String),
    /// The store cannot be reached; data on screen is getting stale.
    Disconnected(String),
    /// Reachable again; a full resync follows as `Upserted` changes.
    Reconnected,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("rollout '{0}' does not exist")]
    NotFound(String),
    #[error("rollout '{0}' already exists")]
    AlreadyExists(String),
    /// Someone else wrote first; `current` is what is stored now.
    #[error("rollout '{id}' was changed by someone else (now at revision {}); re-read and try again", current.revision)]
    Conflict {
        id: String,
        current: Box<StoredRollout>,
    },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A move that widens a rollout, refused because the freeze flag is set.
    #[error("{}", crate::domain::freeze::Frozen::Flag(.0.clone()).describe())]
    Frozen(Freeze),
    #[error("store error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait RolloutStore: Send + Sync {
    /// A short human description ("sqlite /path/rollouts.db", "firestore project/db").
    fn describe(&self) -> String;

    async fn list(&self) -> StoreResult<Vec<StoredRollout>>;
    async fn get(&self, id: &str) -> StoreResult<Option<StoredRollout>>;

    /// Creates a document; fails with `AlreadyExists` if the id is taken.
    /// The event is written atomically with the document.
    async fn create(&self, id: &str, fields: &Fields, event: &Event) -> StoreResult<StoredRollout>;

    /// Compare-and-set: applies `patch` only if the document is still at `expected`;
    /// otherwise `Conflict` with the current document. The event is written atomically.
    async fn patch(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout>;

    /// `patch` for a move that widens a rollout: refused with `Frozen` when the freeze flag
    /// is set, checked atomically with the write (a freeze set a moment earlier stops it).
    async fn patch_unless_frozen(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout>;

    /// The freeze flag, if someone set it.
    async fn freeze(&self) -> StoreResult<Option<Freeze>>;
    /// Sets (Some) or lifts (None) the freeze flag.
    async fn set_freeze(&self, freeze: Option<&Freeze>) -> StoreResult<()>;

    async fn append_event(&self, event: &Event) -> StoreResult<()>;
    /// The newest `limit` events of a rollout, newest first.
    async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>>;

    /// Takes the lease if free, expired, or already ours (which renews it).
    async fn acquire_lease(
        &self,
        rollout_id: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseOutcome>;
    /// Drops the lease if `holder` holds it; a no-op otherwise.
    async fn release_lease(&self, rollout_id: &str, holder: &str) -> StoreResult<()>;
    async fn get_lease(&self, rollout_id: &str) -> StoreResult<Option<Lease>>;

    /// A stream of changes; starts with an `Upserted` for every existing rollout.
    /// The background work stops when the receiver is dropped.
    async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>>;
}

/// The only store type watch mode gets: reads, nothing else.
#[derive(Clone)]
pub struct ReadOnlyStore {
    inner: Arc<dyn RolloutStore>,
}

impl ReadOnlyStore {
    pub fn new(inner: Arc<dyn RolloutStore>) -> Self {
        ReadOnlyStore { inner }
    }
    pub fn describe(&self) -> String {
        self.inner.describe()
    }
    pub async fn list(&self) -> StoreResult<Vec<StoredRollout>> {
        self.inner.list().await
    }
    pub async fn get(&self, id: &str) -> StoreResult<Option<StoredRollout>> {
        self.inner.get(id).await
    }
    pub async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>> {
        self.inner.list_events(rollout_id, limit).await
    }
    pub async fn get_lease(&self, rollout_id: &str) -> StoreResult<Option<Lease>> {
        self.inner.get_lease(rollout_id).await
    }
    pub async fn freeze(&self) -> StoreResult<Option<Freeze>> {
        self.inner.freeze().await
    }
    pub async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>> {
        self.inner.watch().await
    }
}
