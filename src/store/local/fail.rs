//! SQLite failures: bounded waiting on a held lock, and errors that say who holds it.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use crate::store::StoreError;

/// How long one store call waits for another process's lock, retries included. A CLI
/// write (a rollback above all) must give up soon enough to tell the operator why.
pub(super) const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Internal failure: SQLite errors stay typed so busy ones can be retried.
#[derive(Debug)]
pub(super) enum Fail {
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

pub(super) fn other(msg: impl Into<String>) -> Fail {
    Fail::Store(StoreError::Other(msg.into()))
}

impl Fail {
    pub(super) fn code(&self) -> Option<ErrorCode> {
        match self {
            Fail::Sql(e) => e.sqlite_error_code(),
            Fail::Store(_) => None,
        }
    }

    pub(super) fn is_busy(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }

    pub(super) fn is_disk_full(&self) -> bool {
        self.code() == Some(ErrorCode::DiskFull)
    }

    pub(super) fn into_store(self, path: &Path) -> StoreError {
        let e = match self {
            Fail::Store(e) => return e,
            Fail::Sql(e) => e,
        };
        let at = path.display();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(locked_message(path))
            }
            Some(ErrorCode::DiskFull) => StoreError::Unavailable(format!(
                "{at}: {e}: the disk holding the store is full; free some space there and run the command again"
            )),
            Some(ErrorCode::ReadOnly) => StoreError::Unavailable(format!(
                "{at}: {e}: this user cannot write the store (check the permissions of the file and its directory)"
            )),
            Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure) => {
                StoreError::Unavailable(format!("{at}: {e}"))
            }
            _ => StoreError::Other(format!("{at}: {e}")),
        }
    }
}

/// Runs `op`, waiting out other processes' locks for at most `LOCK_WAIT` in total.
/// busy_timeout does the waiting, but SQLite returns BUSY at once where waiting could
/// deadlock (lock upgrades, WAL recovery), so a busy answer is retried until the deadline.
pub(super) fn with_retry<T>(
    conn: &mut Connection,
    mut op: impl FnMut(&mut Connection) -> Result<T, Fail>,
) -> Result<T, Fail> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut attempt = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        conn.busy_timeout(left.max(Duration::from_millis(1)))?;
        match op(conn) {
            Err(f) if f.is_busy() && Instant::now() < deadline => {
                attempt += 1;
                let pause = Duration::from_millis(25 * attempt);
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            }
            result => return result,
        }
    }
}

/// "locked by pid N (command)", and what to do. The holder is found in /proc/locks by the
/// inodes of the database and its -wal and -shm files: in WAL mode the writer holds a write
/// lock in the -shm file. Nothing here opens those files (see `open::connect`).
fn locked_message(path: &Path) -> String {
    let waited = humantime::format_duration(LOCK_WAIT);
    let holders = lock_holders(path);
    let who = if !holders.writers.is_empty() {
        format!("locked by {}", describe_pids(&holders.writers))
    } else if !holders.others.is_empty() {
        format!(
            "locked by another connection (could not tell which; processes with the store open: {})",
            describe_pids(&holders.others)
        )
    } else {
        "locked by another connection (its process is not visible from here)".to_string()
    };
    format!(
        "{} is {who}; gave up after waiting {waited}. Let that process finish its write or stop it, then run the command again",
        path.display()
    )
}

#[derive(Debug, Default)]
struct Holders {
    /// Processes holding a write lock: the one in the way.
    writers: Vec<u32>,
    /// Other processes holding any lock (readers, idle connections).
    others: Vec<u32>,
}

#[cfg(target_os = "linux")]
fn lock_holders(path: &Path) -> Holders {
    use std::os::unix::fs::MetadataExt;
    let files: Vec<(u64, u64, u64)> = [
        path.to_path_buf(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ]
    .iter()
    .filter_map(|p| std::fs::metadata(p).ok())
    .map(|m| {
        // The userspace dev_t encoding (glibc's gnu_dev_major / gnu_dev_minor).
        let dev = m.dev();
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        (major, minor, m.ino())
    })
    .collect();
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Holders::default();
    };
    let me = std::process::id();
    let mut holders = Holders::default();
    for line in locks.lines() {
        // "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120"; waiters carry "->" after the index.
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[1] == "->" {
            continue;
        }
        let Ok(pid) = f[4].parse::<u32>() else {
            continue; // OFD locks show -1: no process to name.
        };
        let mut id = f[5].split(':');
        let (Some(major), Some(minor), Some(ino)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let parsed = (
            u64::from_str_radix(major, 16),
            u64::from_str_radix(minor, 16),
            ino.parse::<u64>(),
        );
        let (Ok(major), Ok(minor), Ok(ino)) = parsed else {
            continue;
        };
        if pid == me || !files.contains(&(major, minor, ino)) {
            continue;
        }
        let list = if f[3] == "WRITE" {
            &mut holders.writers
        } else {
            &mut holders.others
        };
        if !list.contains(&pid) {
            list.push(pid);
        }
    }
    holders.others.retain(|p| !holders.writers.contains(p));
    holders
}

#[cfg(not(target_os = "linux"))]
fn lock_holders(_path: &Path) -> Holders {
    Holders::default()
}

/// `rollouts.db` + `-wal`: SQLite's names for the files beside the database.
pub(super) fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// "pid 1234 (python3 hold.py)" for each pid, with its command line where /proc shows it.
fn describe_pids(pids: &[u32]) -> String {
    pids.iter()
        .map(|pid| match command_of(*pid) {
            Some(cmd) => format!("pid {pid} ({cmd})"),
            None => format!("pid {pid}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn command_of(pid: u32) -> Option<String> {
    const MAX: usize = 120;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline);
    let mut args = text.split('\0').filter(|a| !a.is_empty());
    // The program's file name and its arguments: the directory it lives in rarely helps.
    let text = args
        .next()
        .map(|prog| prog.rsplit('/').next().unwrap_or(prog))
        .into_iter()
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let text = if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim()
            .to_string()
    } else {
        text
    };
    // A command line is another user's text: keep it on one line and short.
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(if clean.chars().count() > MAX {
        format!("{}…", clean.chars().take(MAX - 1).collect::<String>())
    } else {
        clean
    })
}
