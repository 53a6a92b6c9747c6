//! The change stream of the SQLite store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::fail::{Fail, with_retry};
use super::open::{self, FileId, FileState, Opened};
use super::read_row;
use super::rows::{self, Rev};
use crate::store::{StoreChange, StoreError, StoreResult};

const POLL_EVERY: Duration = Duration::from_millis(100);
/// A store quiet for `QUIET_AFTER` is polled this often instead: an idle wall's main cost
/// was this thread waking ten times a second. A change is still seen within a quarter
/// second, and polling speeds up again at once.
const POLL_QUIET: Duration = Duration::from_millis(250);
const QUIET_AFTER: Duration = Duration::from_secs(10);
/// Between polls that find the files untouched, SQLite itself is asked this often anyway
/// (a file system with coarse timestamps could hide a same-size commit).
const ASK_SQLITE_EVERY: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Polls `PRAGMA data_version` on its own connection: it changes whenever any
/// other connection (this process's store included) commits. A read-only watcher on a
/// store no writer has open reads an immutable snapshot (see `open::connect_read_only`)
/// and re-takes it when the file changes.
pub(super) struct Watcher {
    path: PathBuf,
    read_only: bool,
    conn: Option<Opened>,
    file: FileId,
    data_version: i64,
    /// Each rollout's revision as text (a damaged row's is not a number).
    known: HashMap<String, String>,
    /// The files as the last SQLite check saw them, and when that was.
    files: Option<(Files, Instant)>,
}

/// The database and its write-ahead log as the file system shows them. A commit appends to
/// the WAL and a checkpoint writes the database, both with write(2), so an idle store keeps
/// these still and a poll can skip asking SQLite (an idle wall's main cost).
#[derive(PartialEq)]
struct Files {
    db: FileState,
    wal: Option<(u64, Option<SystemTime>)>,
}

impl Files {
    fn of(path: &Path) -> Option<Files> {
        let wal = std::fs::metadata(super::fail::sibling(path, "-wal"))
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        Some(Files {
            db: FileState::of(path).ok()?,
            wal,
        })
    }
}

fn file_id(path: &Path) -> std::io::Result<FileId> {
    Ok(open::file_id(&std::fs::metadata(path)?))
}

impl Watcher {
    pub fn start(path: PathBuf, read_only: bool) -> StoreResult<(Watcher, Vec<StoreChange>)> {
        let mut watcher = Watcher {
            path,
            read_only,
            conn: None,
            file: Default::default(),
            data_version: 0,
            known: HashMap::new(),
            files: None,
        };
        let initial = watcher.connect().map_err(StoreError::Unavailable)?;
        Ok((watcher, initial))
    }

    pub fn run(mut self, tx: mpsc::Sender<StoreChange>, initial: Vec<StoreChange>) {
        let send_all =
            |changes: Vec<StoreChange>| changes.into_iter().all(|c| tx.blocking_send(c).is_ok());
        if !send_all(initial) {
            return;
        }
        let mut backoff = POLL_EVERY;
        let mut last_change = Instant::now();
        loop {
            std::thread::sleep(match &self.conn {
                Some(_) if last_change.elapsed() < QUIET_AFTER => POLL_EVERY,
                Some(_) => POLL_QUIET,
                None => backoff,
            });
            if tx.is_closed() {
                return;
            }
            let sent = if self.conn.is_some() {
                match self.poll() {
                    Ok(changes) => {
                        if !changes.is_empty() {
                            last_change = Instant::now();
                        }
                        send_all(changes)
                    }
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

    fn open(&self) -> Result<Opened, String> {
        if self.read_only {
            open::connect_read_only(&self.path).map_err(|e| e.to_string())
        } else {
            let conn = open::connect(&self.path, false).map_err(|e| e.to_string())?;
            Ok(Opened {
                conn,
                snapshot: None,
            })
        }
    }

    /// (Re)opens the file and returns a full resync.
    fn connect(&mut self) -> Result<Vec<StoreChange>, String> {
        self.conn = None;
        let opened = self.open()?;
        self.file = file_id(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.conn = Some(opened);
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
        // A snapshot never sees commits: the file's state says when to take a new one.
        let stale_snapshot = self
            .conn
            .as_ref()
            .and_then(|c| c.snapshot.as_ref())
            .is_some_and(|seen| FileState::of(&self.path).ok().as_ref() != Some(seen));
        if stale_snapshot {
            self.conn = Some(self.open()?);
            self.data_version = self.read_version()?;
            return self.resync(false);
        }
        let files = Files::of(&self.path);
        if let (Some(now), Some((seen, at))) = (&files, &self.files)
            && now == seen
            && at.elapsed() < ASK_SQLITE_EVERY
        {
            return Ok(Vec::new());
        }
        // Taken before SQLite is asked: a commit landing in between moves the files again.
        self.files = files.map(|f| (f, Instant::now()));
        // Read before listing: a commit racing the listing then shows up on the next poll.
        let version = self.read_version()?;
        if version == self.data_version {
            return Ok(Vec::new());
        }
        self.data_version = version;
        self.resync(false)
    }

    fn read_version(&mut self) -> Result<i64, String> {
        let opened = self.conn.as_mut().ok_or("not connected")?;
        with_retry(&mut opened.conn, |c| {
            Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?)
        })
        .map_err(|f| f.into_store(&self.path).to_string())
    }

    /// Upserts for new or changed revisions (all of them if `full`), removals for vanished ids.
    fn resync(&mut self, full: bool) -> Result<Vec<StoreChange>, String> {
        let opened = self.conn.as_mut().ok_or("not connected")?;
        let known = &self.known;
        let read = |conn: &mut rusqlite::Connection| -> Result<(HashMap<String, String>, Vec<StoreChange>), Fail> {
            // One read transaction, so revisions and documents come from the same snapshot.
            let tx = conn.transaction()?;
            let revisions: Vec<(String, String)> = tx
                .prepare("SELECT id, revision FROM rollouts ORDER BY id")?
                .query_map([], |r| {
                    Ok((super::id_text(r.get_ref(0)?), Rev::of(r.get_ref(1)?).text()))
                })?
                .collect::<Result<_, _>>()?;
            let mut changes = Vec::new();
            for (id, revision) in &revisions {
                if (full || known.get(id) != Some(revision))
                    && let Some(row) = read_row(&tx, id)?
                {
                    changes.push(StoreChange::Upserted(rows::to_stored(&row)));
                }
            }
            let now: HashMap<String, String> = revisions.into_iter().collect();
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
        let (now, changes) =
            with_retry(&mut opened.conn, read).map_err(|f| f.into_store(&self.path).to_string())?;
        self.known = now;
        Ok(changes)
    }
}
