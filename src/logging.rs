//! Logs go to `<data dir>/logs/rollout-tui.log`, never to the terminal (the
//! cockpit owns the screen, and CLI output is for people and scripts).

use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;

pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join("rollout-tui.log")
}

/// Installs the file logger. A log that cannot be written must not stop an
/// operator from acting, so failure is reported and otherwise ignored.
pub fn init(data_dir: &Path, level: &str) -> Result<(), String> {
    let path = log_path(data_dir);
    let dir = path.parent().expect("log path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    open(&path, level)
}

/// Installs the file logger only if the log directory already exists: commands that only
/// read must not create the data directory (a mistyped path would then look like a store).
pub fn init_existing(data_dir: &Path, level: &str) -> Result<(), String> {
    let path = log_path(data_dir);
    let dir = path.parent().expect("log path has a parent");
    if !dir.is_dir() {
        return Ok(());
    }
    open(&path, level)
}

fn open(path: &Path, level: &str) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log level '{level}': {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        // A failed log write (a full disk) must not print over the cockpit or a command's output.
        .log_internal_errors(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| e.to_string())
}
