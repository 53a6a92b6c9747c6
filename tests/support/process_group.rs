//! Signals to a test server's own process group, never through kill(1) (see Cargo.toml).
#![allow(dead_code)]

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to process group `pgid`. Groups 0 and 1 are refused: 0 is the caller's
/// own group and 1 is init's, and neither is ever a test server's.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    let Ok(pgid) = i32::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    killpg(Pid::from_raw(pgid), signal).is_ok()
}
