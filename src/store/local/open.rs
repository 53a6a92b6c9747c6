//! Opening the SQLite file: for writing (creating the schema if asked), or read-only
//! without creating or changing anything.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::fail::{Fail, other, sibling, with_retry};
use crate::store::{StoreError, StoreResult};

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE rollouts (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX events_by_rollout ON events (rollout_id, seq);
CREATE TABLE leases (rollout_id TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE meta (schema_version INTEGER NOT NULL);
";
const TABLES: [&str; 4] = ["rollouts", "events", "leases", "meta"];

/// How often a read-only snapshot is re-taken when the file changes while it is read.
pub(super) const SNAPSHOT_TRIES: usize = 5;

/// A connection, and for a read-only snapshot the state of the file it was taken from.
#[derive(Debug)]
pub(super) struct Opened {
    pub conn: Connection,
    pub snapshot: Option<FileState>,
}

/// What tells that the database file changed: identity, size, modification time, and
/// whether a -wal file (a writer) exists beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileState {
    id: FileId,
    len: u64,
    modified: Option<SystemTime>,
    wal: bool,
}

impl FileState {
    pub fn of(path: &Path) -> std::io::Result<FileState> {
        let meta = std::fs::metadata(path)?;
        Ok(FileState {
            id: file_id(&meta),
            len: meta.len(),
            modified: meta.modified().ok(),
            wal: std::fs::symlink_metadata(sibling(path, "-wal")).is_ok(),
        })
    }
}

#[cfg(unix)]
pub(super) type FileId = (u64, u64);
#[cfg(not(unix))]
pub(super) type FileId = ();

pub(super) fn file_id(meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
    }
}

/// Opens for reading and writing. A foreign file is refused by SQLite's own header check
/// (NOTADB, on the first read, before anything writes). The file is never opened outside
/// SQLite: closing any other descriptor of it would drop this process's POSIX locks, and
/// another client's close could then checkpoint and delete the WAL under the connections
/// still open here.
pub(super) fn connect(path: &Path, create: bool) -> StoreResult<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let setup = || -> Result<Connection, Fail> {
        let mut conn = Connection::open_with_flags(path, flags)?;
        // Inspect before anything writes: switching to WAL rewrites the header of a foreign database.
        if with_retry(&mut conn, |c| inspect_schema(c, path))? {
            if !create {
                return Err(no_tables(path));
            }
            set_wal(&mut conn, path)?;
            with_retry(&mut conn, create_schema)?;
            with_retry(&mut conn, |c| inspect_schema(c, path))?;
        }
        set_wal(&mut conn, path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(conn)
    };
    setup().map_err(|f| open_error(path, f))
}

/// Opens read-only, creating nothing: no directory, no database, no -wal or -shm file.
///
/// SQLite reads a WAL database read-only only if its -wal and -shm files exist, or can be
/// created (which a reader must not do, and a user without write access cannot), or the
/// file is opened `immutable` (<https://sqlite.org/wal.html#readonly>). A cleanly closed
/// store has neither file: all of it is in the database file, and no writer is active,
/// so it is read as an immutable snapshot. A writer that starts meanwhile writes to a new
/// -wal and leaves the database file alone until it checkpoints; `FileState` tells when
/// that happened, and the snapshot is re-taken (`LocalStore::run`).
pub(super) fn connect_read_only(path: &Path) -> StoreResult<Opened> {
    for _ in 0..SNAPSHOT_TRIES {
        let before = FileState::of(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
        let setup = || -> Result<Opened, Fail> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let (mut conn, snapshot) = if before.wal {
                (Connection::open_with_flags(path, flags)?, None)
            } else {
                let conn = Connection::open_with_flags(
                    immutable_uri(path),
                    flags | OpenFlags::SQLITE_OPEN_URI,
                )?;
                (conn, Some(before.clone()))
            };
            if with_retry(&mut conn, |c| inspect_schema(c, path))? {
                return Err(no_tables(path));
            }
            Ok(Opened { conn, snapshot })
        };
        let opened = setup().map_err(|f| open_error(path, f))?;
        if opened.snapshot.is_none() || FileState::of(path).ok().as_ref() == Some(&before) {
            return Ok(opened);
        }
    }
    Err(StoreError::Unavailable(format!(
        "{}: the file kept changing while it was read; run the command again",
        path.display()
    )))
}

fn no_tables(path: &Path) -> Fail {
    other(format!(
        "{} has no rollout-tui tables (an empty database)",
        path.display()
    ))
}

fn open_error(path: &Path, f: Fail) -> StoreError {
    match f {
        Fail::Sql(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            StoreError::Other(format!(
                "{} is not a SQLite database ({e}); refusing to use or overwrite it",
                path.display()
            ))
        }
        f => f.into_store(path),
    }
}

/// `file:<path>?immutable=1`, the path percent-encoded so `?`, `#` and `%` in it stay literal.
fn immutable_uri(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().as_bytes().to_vec();
    let mut uri = String::from("file:");
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn set_wal(conn: &mut Connection, path: &Path) -> Result<(), Fail> {
    let mode: String = with_retry(conn, |c| {
        Ok(c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?)
    })?;
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
