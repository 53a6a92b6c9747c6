//! SQLite store: one file in the data directory, shared safely by several
//! cockpits on one host. WAL lets readers run beside a writer; every write is a
//! `BEGIN IMMEDIATE` transaction so compare-and-set cannot interleave.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{
    Lease, LeaseOutcome, Patch, Revision, RolloutStore, StoreChange, StoreError, StoreResult,
    StoredRollout,
};
use crate::domain::event::Event;
use crate::domain::rollout::Fields;

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE rollouts (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX events_by_rollout ON events (rollout_id, seq);
CREATE TABLE leases (rollout_id TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE meta (schema_version INTEGER NOT NULL);
";
const TABLES: [&str; 4] = ["rollouts", "events", "leases", "meta"];

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const BUSY_RETRIES: u64 = 5;
const POLL_EVERY: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const WATCH_BUFFER: usize = 256;

/// The default store: a SQLite file.
#[derive(Debug, Clone)]
pub struct LocalStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
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
        let conn = connect(path, true)?;
        Ok(LocalStore {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            with_retry(|| op(&mut conn)).map_err(|f| f.into_store(&path))
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker failed: {e}")))?
    }
}

/// Internal failure: SQLite errors stay typed so busy ones can be retried.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store(self, path: &Path) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Sql(e) => {
                let msg = format!("{}: {e}", path.display());
                match e.sqlite_error_code() {
                    Some(
                        ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::CannotOpen
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::DiskFull,
                    ) => StoreError::Unavailable(msg),
                    _ => StoreError::Other(msg),
                }
            }
        }
    }
}

fn is_busy(f: &Fail) -> bool {
    matches!(f, Fail::Sql(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)))
}

/// busy_timeout already waits, but SQLite returns BUSY at once where waiting
/// could deadlock (lock upgrades, WAL recovery), so retry a few times.
fn with_retry<T>(mut op: impl FnMut() -> Result<T, Fail>) -> Result<T, Fail> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(f) if is_busy(&f) && attempt < BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(25 * attempt));
            }
            result => return result,
        }
    }
}

fn other(msg: impl Into<String>) -> Fail {
    Fail::Store(StoreError::Other(msg.into()))
}

/// A foreign file is refused by SQLite's own header check (NOTADB, on the first read,
/// before anything writes). The file is never opened outside SQLite: closing any other
/// descriptor of it would drop this process's POSIX locks, and another client's close
/// could then checkpoint and delete the WAL under the connections still open here.
fn connect(path: &Path, create: bool) -> StoreResult<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let setup = || -> Result<Connection, Fail> {
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Inspect before anything writes: switching to WAL rewrites the header of a foreign database.
        if with_retry(|| inspect_schema(&conn, path))? {
            if !create {
                return Err(other(format!(
                    "{} has no rollout-tui tables",
                    path.display()
                )));
            }
            set_wal(&conn, path)?;
            with_retry(|| create_schema(&mut conn))?;
            with_retry(|| inspect_schema(&conn, path))?;
        }
        set_wal(&conn, path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    };
    setup().map_err(|f| match f {
        Fail::Sql(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            StoreError::Other(format!(
                "{} is not a SQLite database ({e}); refusing to use or overwrite it",
                path.display()
            ))
        }
        f => f.into_store(path),
    })
}

fn set_wal(conn: &Connection, path: &Path) -> Result<(), Fail> {
    let mode: String =
        with_retry(|| Ok(conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(other(format!(
            "{}: cannot switch to WAL mode (still {mode})",
            path.display()
        )))
    }
}

fn user_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Ok(true) for an empty database, Ok(false) for a compatible store, an error naming the file otherwise.
fn inspect_schema(conn: &Connection, path: &Path) -> Result<bool, Fail> {
    let tables = user_tables(conn)?;
    if tables.is_empty() {
        return Ok(true);
    }
    let incompatible = |why: String| {
        other(format!(
            "{} is a SQLite database but not a compatible rollout-tui store ({why}); refusing to change it",
            path.display()
        ))
    };
    if !tables.iter().any(|t| t == "meta") {
        return Err(incompatible(format!(
            "no meta table; tables: {}",
            tables.join(", ")
        )));
    }
    let version: Option<i64> = conn
        .query_row("SELECT schema_version FROM meta", [], |r| r.get(0))
        .optional()
        .map_err(|e| incompatible(format!("unreadable meta table: {e}")))?;
    match version {
        Some(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(incompatible(format!(
                "schema version {v}, this build reads version {SCHEMA_VERSION}"
            )));
        }
        None => return Err(incompatible("meta table has no schema version".into())),
    }
    if let Some(missing) = TABLES
        .iter()
        .find(|t| !tables.iter().any(|have| have == *t))
    {
        return Err(incompatible(format!("table '{missing}' is missing")));
    }
    Ok(false)
}

fn create_schema(conn: &mut Connection) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have created it since we looked.
    if user_tables(&tx)?.is_empty() {
        tx.execute_batch(SCHEMA)?;
        tx.execute(
            "INSERT INTO meta (schema_version) VALUES (?1)",
            [SCHEMA_VERSION],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn to_stored(id: String, revision: i64, doc: &str) -> Result<StoredRollout, Fail> {
    let fields: Fields = serde_json::from_str(doc).map_err(|e| {
        other(format!(
            "rollout '{id}': stored document is not a JSON object: {e}"
        ))
    })?;
    Ok(StoredRollout {
        id,
        revision: Revision(revision.to_string()),
        fields,
    })
}

fn read_rollout(conn: &Connection, id: &str) -> Result<Option<(i64, StoredRollout)>, Fail> {
    let row = conn
        .query_row(
            "SELECT revision, doc FROM rollouts WHERE id = ?1",
            [id],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    row.map(|(rev, doc)| Ok((rev, to_stored(id.to_string(), rev, &doc)?)))
        .transpose()
}

fn list_rollouts(conn: &Connection) -> Result<Vec<StoredRollout>, Fail> {
    let mut stmt = conn.prepare("SELECT id, revision, doc FROM rollouts ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    rows.map(|row| {
        let (id, rev, doc) = row?;
        to_stored(id, rev, &doc)
    })
    .collect()
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
        self.run(move |conn| Ok(read_rollout(conn, &id)?.map(|(_, doc)| doc)))
            .await
    }

    async fn create(&self, id: &str, fields: &Fields, event: &Event) -> StoreResult<StoredRollout> {
        let (id, fields, event) = (id.to_string(), fields.clone(), event.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_rollout(&tx, &id)?.is_some() {
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
        let (id, patch, event) = (id.to_string(), patch.clone(), event.clone());
        // A revision that is not a counter can never match; it still yields a Conflict with the current document.
        let expected: Option<i64> = expected.0.trim().parse().ok();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some((revision, mut current)) = read_rollout(&tx, &id)? else {
                return Err(StoreError::NotFound(id.clone()).into());
            };
            if expected != Some(revision) {
                return Err(StoreError::Conflict {
                    id: id.clone(),
                    current: Box::new(current),
                }
                .into());
            }
            patch.apply_to(&mut current.fields);
            let next = revision + 1;
            tx.execute(
                "UPDATE rollouts SET revision = ?2, doc = ?3 WHERE id = ?1",
                params![id, next, to_json("document", &current.fields)?],
            )?;
            insert_event(&tx, &event)?;
            tx.commit()?;
            current.revision = Revision(next.to_string());
            Ok(current)
        })
        .await
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
                "SELECT body FROM events WHERE rollout_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let bodies = stmt.query_map(params![rollout_id, limit], |r| r.get::<_, String>(0))?;
            bodies
                .map(|body| {
                    let body = body?;
                    serde_json::from_str(&body)
                        .map_err(|e| other(format!("stored event is unreadable ({e}): {body}")))
                })
                .collect()
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
        let path = self.path.clone();
        // The first snapshot is taken before returning, so any write made after
        // watch() returns is seen as a change rather than folded into the snapshot.
        let (watcher, initial) = tokio::task::spawn_blocking(move || Watcher::start(path))
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

/// Polls `PRAGMA data_version` on its own connection: it changes whenever any
/// other connection (this process's store included) commits.
struct Watcher {
    path: PathBuf,
    conn: Option<Connection>,
    file: FileId,
    data_version: i64,
    known: HashMap<String, i64>,
}

#[cfg(unix)]
type FileId = (u64, u64);
#[cfg(not(unix))]
type FileId = ();

fn file_id(path: &Path) -> std::io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(())
    }
}

impl Watcher {
    fn start(path: PathBuf) -> StoreResult<(Watcher, Vec<StoreChange>)> {
        let mut watcher = Watcher {
            path,
            conn: None,
            file: Default::default(),
            data_version: 0,
            known: HashMap::new(),
        };
        let initial = watcher.connect().map_err(StoreError::Unavailable)?;
        Ok((watcher, initial))
    }

    fn run(mut self, tx: mpsc::Sender<StoreChange>, initial: Vec<StoreChange>) {
        let send_all =
            |changes: Vec<StoreChange>| changes.into_iter().all(|c| tx.blocking_send(c).is_ok());
        if !send_all(initial) {
            return;
        }
        let mut backoff = POLL_EVERY;
        loop {
            std::thread::sleep(if self.conn.is_some() {
                POLL_EVERY
            } else {
                backoff
            });
            if tx.is_closed() {
                return;
            }
            let sent = if self.conn.is_some() {
                match self.poll() {
                    Ok(changes) => send_all(changes),
                    Err(msg) => {
                        self.conn = None;
                        backoff = POLL_EVERY * 2;
                        tracing::warn!("store watcher lost {}: {msg}", self.path.display());
                        tx.blocking_send(StoreChange::Disconnected(msg)).is_ok()
                    }
                }
            } else {
                match self.connect() {
                    Ok(changes) => {
                        tx.blocking_send(StoreChange::Reconnected).is_ok() && send_all(changes)
                    }
                    Err(_) => {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        true
                    }
                }
            };
            if !sent {
                return;
            }
        }
    }

    /// (Re)opens the file and returns a full resync.
    fn connect(&mut self) -> Result<Vec<StoreChange>, String> {
        self.conn = None;
        let conn = connect(&self.path, false).map_err(|e| e.to_string())?;
        self.file = file_id(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.conn = Some(conn);
        let result = self.read_version().and_then(|v| {
            self.data_version = v;
            self.resync(true)
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn poll(&mut self) -> Result<Vec<StoreChange>, String> {
        // A deleted or replaced file keeps answering through the old inode; only the path tells.
        match file_id(&self.path) {
            Ok(id) if id == self.file => {}
            Ok(_) => {
                return Err(format!(
                    "{} was replaced by another file",
                    self.path.display()
                ));
            }
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        }
        // Read before listing: a commit racing the listing then shows up on the next poll.
        let version = self.read_version()?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        self.data_version = version;
        self.resync(false)
    }

    fn read_version(&self) -> Result<i64, String> {
        let conn = self.conn.as_ref().ok_or("not connected")?;
        with_retry(|| Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?))
            .map_err(|f| f.into_store(&self.path).to_string())
    }

    /// Upserts for new or changed revisions (all of them if `full`), removals for vanished ids.
    fn resync(&mut self, full: bool) -> Result<Vec<StoreChange>, String> {
        let conn = self.conn.as_mut().ok_or("not connected")?;
        let known = &self.known;
        let read = || -> Result<(HashMap<String, i64>, Vec<StoreChange>), Fail> {
            // One read transaction, so revisions and documents come from the same snapshot.
            let tx = conn.transaction()?;
            let revisions: Vec<(String, i64)> = tx
                .prepare("SELECT id, revision FROM rollouts ORDER BY id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut changes = Vec::new();
            for (id, revision) in &revisions {
                if (full || known.get(id) != Some(revision))
                    && let Some((_, doc)) = read_rollout(&tx, id)?
                {
                    changes.push(StoreChange::Upserted(doc));
                }
            }
            let now: HashMap<String, i64> = revisions.into_iter().collect();
            let mut removed: Vec<&String> =
                known.keys().filter(|id| !now.contains_key(*id)).collect();
            removed.sort();
            changes.extend(
                removed
                    .into_iter()
                    .map(|id| StoreChange::Removed(id.clone())),
            );
            Ok((now, changes))
        };
        let (now, changes) = with_retry(read).map_err(|f| f.into_store(&self.path).to_string())?;
        self.known = now;
        Ok(changes)
    }
}
