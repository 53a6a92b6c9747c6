//! SQLite store: one file in the data directory, shared safely by several
//! cockpits on one host. WAL lets readers run beside a writer; every write is a
//! `BEGIN IMMEDIATE` transaction so compare-and-set cannot interleave.

mod fail;
mod open;
mod rows;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use self::fail::{Fail, other, with_retry};
use self::open::{FileState, Opened, SNAPSHOT_TRIES};
use self::rows::{Cell, Rev, Row};
pub use self::rows::{UNKNOWN_VERSION, UNREADABLE_DOCUMENT, UNREADABLE_DOCUMENT_HEX};
use super::{
    Lease, LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreError, StoreResult,
    StoredRollout,
};
use crate::domain::event::{Event, EventKind};
use crate::domain::freeze::Freeze;
use crate::domain::rollout::{Fields, field};

const WATCH_BUFFER: usize = 256;
/// The settings key of the freeze flag.
const FREEZE_KEY: &str = "freeze";

/// The default store: a SQLite file.
#[derive(Debug, Clone)]
pub struct LocalStore {
    path: PathBuf,
    read_only: bool,
    conn: Arc<Mutex<Opened>>,
}

impl LocalStore {
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("rollouts.db")
    }

    /// Opens (creating if needed) the store at `path`. A file that is not a
    /// rollout-tui database is reported and left untouched.
    pub fn open(path: &Path) -> StoreResult<LocalStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Other(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let conn = open::connect(path, true)?;
        Ok(LocalStore {
            path: path.to_path_buf(),
            read_only: false,
            conn: Arc::new(Mutex::new(Opened {
                conn,
                snapshot: None,
            })),
        })
    }

    /// Opens an existing store for reading only: nothing is created or changed, so a
    /// user who may only read the file can, and a mistyped path is an error rather than
    /// a new empty store. Writes through it fail.
    pub fn open_read_only(path: &Path) -> StoreResult<LocalStore> {
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let opened = open::connect_read_only(path)?;
        Ok(LocalStore {
            path: path.to_path_buf(),
            read_only: true,
            conn: Arc::new(Mutex::new(opened)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A setting kept beside the rollouts (the demo's clock and faults), or None when it
    /// was never set. Stores made before settings existed have no table: also None.
    pub async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_string();
        self.run(move |conn| read_setting(conn, &key)).await
    }

    /// Sets a setting (the table is made on first use: older stores stay readable by
    /// older builds, which check only their own tables).
    pub async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.write_setting(key, Some(value)).await
    }

    /// Sets (Some) or removes (None) a setting.
    async fn write_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        if self.read_only {
            return Err(StoreError::Other(format!(
                "{} is open read-only",
                self.path.display()
            )));
        }
        let (key, value) = (key.to_string(), value.map(str::to_string));
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                [],
            )?;
            match &value {
                Some(value) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, value],
                )?,
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [&key])?,
            };
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn patch_checked(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
        unless_frozen: bool,
    ) -> StoreResult<StoredRollout> {
        let (id, expected, patch, event) = (
            id.to_string(),
            expected.clone(),
            patch.clone(),
            event.clone(),
        );
        self.run(move |conn| {
            match patch_once(conn, &id, &expected, &patch, &event, unless_frozen) {
                Err(f) if f.is_disk_full() && event.kind == EventKind::Rollback => {
                    tracing::warn!(
                        rollout = %id,
                        "disk full: writing the rollback with a compact event"
                    );
                    patch_once(
                        conn,
                        &id,
                        &expected,
                        &patch,
                        &compact(&event),
                        unless_frozen,
                    )
                }
                result => result,
            }
        })
        .await
    }

    /// Runs `op` on the blocking pool with this store's connection.
    async fn run<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> Result<T, Fail> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier op rolled its transaction back on unwind; the connection is fine.
            let mut opened = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            run_on(&mut opened, &path, &op).map_err(|f| f.into_store(&path))
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker failed: {e}")))?
    }
}

/// Runs `op`; a read-only snapshot of a file that changed before or while `op` read it
/// is re-taken and `op` run again, so no answer mixes two states of the file.
fn run_on<T>(
    opened: &mut Opened,
    path: &Path,
    op: &impl Fn(&mut Connection) -> Result<T, Fail>,
) -> Result<T, Fail> {
    for _ in 0..SNAPSHOT_TRIES {
        if let Some(seen) = &opened.snapshot
            && FileState::of(path).ok().as_ref() != Some(seen)
        {
            *opened = open::connect_read_only(path)?;
        }
        let result = with_retry(&mut opened.conn, op);
        match &opened.snapshot {
            Some(seen) if FileState::of(path).ok().as_ref() != Some(seen) => continue,
            _ => return result,
        }
    }
    Err(other(format!(
        "{}: the file kept changing while it was read; run the command again",
        path.display()
    )))
}

/// The settings row `key`, if the table and the row exist (stores made before settings
/// existed have no table).
fn read_setting(conn: &Connection, key: &str) -> Result<Option<String>, Fail> {
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'settings'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(None);
    }
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// The freeze flag as stored. One that cannot be read still freezes: it was set for a reason.
fn read_freeze(conn: &Connection) -> Result<Option<Freeze>, Fail> {
    Ok(read_setting(conn, FREEZE_KEY)?.map(|text| {
        serde_json::from_str(&text).unwrap_or_else(|e| {
            Freeze::unreadable(
                DateTime::UNIX_EPOCH,
                format!("the freeze flag in the store is unreadable ({e}); unfreeze to clear it"),
            )
        })
    }))
}

fn read_row(conn: &Connection, id: &str) -> Result<Option<Row>, Fail> {
    Ok(conn
        .query_row(
            "SELECT revision, doc FROM rollouts WHERE id = ?1",
            [id],
            |r| {
                Ok(Row {
                    id: id.to_string(),
                    revision: Rev::of(r.get_ref(0)?),
                    doc: Cell::of(r.get_ref(1)?),
                })
            },
        )
        .optional()?)
}

fn list_rollouts(conn: &Connection) -> Result<Vec<StoredRollout>, Fail> {
    let mut stmt = conn.prepare("SELECT id, revision, doc FROM rollouts ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Row {
            id: id_text(r.get_ref(0)?),
            revision: Rev::of(r.get_ref(1)?),
            doc: Cell::of(r.get_ref(2)?),
        })
    })?;
    rows.map(|row| Ok(rows::to_stored(&row?))).collect()
}

/// An id as text whatever another tool stored (TEXT affinity already turns numbers into text).
fn id_text(v: rusqlite::types::ValueRef<'_>) -> String {
    match Cell::of(v) {
        Cell::Text(t) => t,
        Cell::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Cell::Null => String::new(),
    }
}

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, Fail> {
    serde_json::to_string(value).map_err(|e| other(format!("cannot encode {what}: {e}")))
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, Fail> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| other(format!("stored time '{text}' is not RFC 3339: {e}")))
}

fn insert_event(conn: &Connection, event: &Event) -> Result<(), Fail> {
    conn.execute(
        "INSERT INTO events (rollout_id, at, body) VALUES (?1, ?2, ?3)",
        params![
            event.rollout_id,
            time_text(event.at),
            to_json("event", event)?
        ],
    )?;
    Ok(())
}

/// One compare-and-set write. A damaged row is rewritten as a valid document (see
/// `rows::patched_text`) with a counter revision above any it can have had: every write
/// adds an event, so the rollout's event count is at least its last counter.
fn patch_once(
    conn: &mut Connection,
    id: &str,
    expected: &Revision,
    patch: &Patch,
    event: &Event,
    unless_frozen: bool,
) -> Result<StoredRollout, Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // In the write's own transaction: a freeze set a moment ago stops it.
    if unless_frozen && let Some(freeze) = read_freeze(&tx)? {
        return Err(StoreError::Frozen(freeze).into());
    }
    let Some(row) = read_row(&tx, id)? else {
        return Err(StoreError::NotFound(id.to_string()).into());
    };
    if !row.revision.matches(expected) {
        return Err(StoreError::Conflict {
            id: id.to_string(),
            current: Box::new(rows::to_stored(&row)),
        }
        .into());
    }
    let next = match row.revision {
        Rev::Counter(r) => r + 1,
        Rev::Bad(_) => {
            let events: i64 = tx.query_row(
                "SELECT count(*) FROM events WHERE rollout_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            events + 1
        }
    };
    let text = rows::patched_text(&row, patch)?;
    tx.execute(
        "UPDATE rollouts SET revision = ?2, doc = ?3 WHERE id = ?1",
        params![id, next, text],
    )?;
    insert_event(&tx, event)?;
    tx.commit()?;
    Ok(rows::to_stored(&Row {
        id: id.to_string(),
        revision: Rev::Counter(next),
        doc: Cell::Text(text),
    }))
}

/// A rollback's event without its detail (before/after values, gate report), for a disk
/// too full to take the whole event: the rollback itself matters more.
fn compact(event: &Event) -> Event {
    let mut after = Map::new();
    for key in [field::STATUS, field::ROLLOUT_PERCENTAGE] {
        if let Some(v) = event.after.get(key) {
            after.insert(key.into(), v.clone());
        }
    }
    after.insert(
        "detailDropped".into(),
        Value::from(
            "the disk was full: the values before and after and any gate report were not recorded",
        ),
    );
    Event {
        before: Value::Null,
        after: Value::Object(after),
        gate_report: None,
        ..event.clone()
    }
}

fn read_lease(conn: &Connection, rollout_id: &str) -> Result<Option<Lease>, Fail> {
    let row = conn
        .query_row(
            "SELECT holder, acquired_at, expires_at FROM leases WHERE rollout_id = ?1",
            [rollout_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(holder, acquired, expires)| {
        Ok(Lease {
            rollout_id: rollout_id.to_string(),
            holder,
            acquired_at: parse_time(&acquired)?,
            expires_at: parse_time(&expires)?,
        })
    })
    .transpose()
}

#[async_trait]
impl RolloutStore for LocalStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn list(&self) -> StoreResult<Vec<StoredRollout>> {
        self.run(|conn| list_rollouts(conn)).await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<StoredRollout>> {
        let id = id.to_string();
        self.run(move |conn| Ok(read_row(conn, &id)?.map(|row| rows::to_stored(&row))))
            .await
    }

    async fn create(&self, id: &str, fields: &Fields, event: &Event) -> StoreResult<StoredRollout> {
        let (id, fields, event) = (id.to_string(), fields.clone(), event.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let taken: Option<i64> = tx
                .query_row("SELECT 1 FROM rollouts WHERE id = ?1", [&id], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists(id.clone()).into());
            }
            tx.execute(
                "INSERT INTO rollouts (id, revision, doc) VALUES (?1, 1, ?2)",
                params![id, to_json("document", &fields)?],
            )?;
            insert_event(&tx, &event)?;
            tx.commit()?;
            Ok(StoredRollout {
                id: id.clone(),
                revision: Revision("1".into()),
                fields: fields.clone(),
                defect: None,
            })
        })
        .await
    }

    async fn patch(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.patch_checked(id, expected, patch, event, false).await
    }

    async fn patch_unless_frozen(
        &self,
        id: &str,
        expected: &Revision,
        patch: &Patch,
        event: &Event,
    ) -> StoreResult<StoredRollout> {
        self.patch_checked(id, expected, patch, event, true).await
    }

    async fn freeze(&self) -> StoreResult<Option<Freeze>> {
        self.run(|conn| read_freeze(conn)).await
    }

    async fn set_freeze(&self, freeze: Option<&Freeze>) -> StoreResult<()> {
        let text = freeze
            .map(|f| to_json("the freeze", f))
            .transpose()
            .map_err(|f| f.into_store(&self.path))?;
        self.write_setting(FREEZE_KEY, text.as_deref()).await
    }

    async fn append_event(&self, event: &Event) -> StoreResult<()> {
        let event = event.clone();
        self.run(move |conn| insert_event(conn, &event)).await
    }

    async fn list_events(&self, rollout_id: &str, limit: usize) -> StoreResult<Vec<Event>> {
        let rollout_id = rollout_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, at, body FROM events WHERE rollout_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let events = stmt.query_map(params![rollout_id, limit], |r| {
                Ok(rows::to_event(
                    r.get(0)?,
                    &rollout_id,
                    &Cell::of(r.get_ref(1)?),
                    &Cell::of(r.get_ref(2)?),
                ))
            })?;
            Ok(events.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        rollout_id: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseOutcome> {
        let (rollout_id, holder) = (rollout_id.to_string(), holder.to_string());
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|e| StoreError::Other(format!("lease ttl {ttl:?}: {e}")))?;
        // Stored with millisecond precision; compute with the same so the returned lease equals a later get_lease.
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = read_lease(&tx, &rollout_id)?.filter(|l| l.expires_at > now);
            let acquired_at = match current {
                Some(l) if l.holder != holder => return Ok(LeaseOutcome::HeldByOther(l)),
                Some(l) => l.acquired_at,
                None => now,
            };
            let lease = Lease { rollout_id: rollout_id.clone(), holder: holder.clone(), acquired_at, expires_at: now + ttl };
            tx.execute(
                "INSERT OR REPLACE INTO leases (rollout_id, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![lease.rollout_id, lease.holder, time_text(lease.acquired_at), time_text(lease.expires_at)],
            )?;
            tx.commit()?;
            Ok(LeaseOutcome::Held(lease))
        })
        .await
    }

    async fn release_lease(&self, rollout_id: &str, holder: &str) -> StoreResult<()> {
        let (rollout_id, holder) = (rollout_id.to_string(), holder.to_string());
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE rollout_id = ?1 AND holder = ?2",
                params![rollout_id, holder],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_lease(&self, rollout_id: &str) -> StoreResult<Option<Lease>> {
        let rollout_id = rollout_id.to_string();
        self.run(move |conn| read_lease(conn, &rollout_id)).await
    }

    async fn watch(&self) -> StoreResult<mpsc::Receiver<StoreChange>> {
        let (path, read_only) = (self.path.clone(), self.read_only);
        // The first snapshot is taken before returning, so any write made after
        // watch() returns is seen as a change rather than folded into the snapshot.
        let (watcher, initial) =
            tokio::task::spawn_blocking(move || watch::Watcher::start(path, read_only))
                .await
                .map_err(|e| StoreError::Other(format!("sqlite watcher failed to start: {e}")))??;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        std::thread::Builder::new()
            .name("rollout-watch".into())
            .spawn(move || watcher.run(tx, initial))
            .map_err(|e| {
                StoreError::Other(format!("cannot start the sqlite watcher thread: {e}"))
            })?;
        Ok(rx)
    }
}
