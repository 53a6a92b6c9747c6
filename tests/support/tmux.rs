//! Drives the real `rollout-tui` binary inside tmux for end-to-end tests.
//!
//! Every `Tmux` owns a private tmux server (`tmux -L <unique socket>`), a temporary
//! home directory and a data directory. The server starts with a cleared
//! environment: HOME and the XDG directories point into the temporary directory,
//! so the user's real config and data are never read, and the `ROLLOUT_TUI_*`
//! variables of the calling environment never leak in. Panes run `sh` (dash, no
//! line editing, so it never touches the terminal modes the binary leaves behind)
//! with the prompt `$ `.
//!
//! Tests poll the screen with `wait_for` instead of sleeping. If tmux is missing,
//! `Tmux::start` prints a loud notice and returns None (the test then skips), unless
//! `CI` is set: then it panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rollout-tui");

/// How long a screen may take to show what a test waits for before it fails: a deadline
/// against hangs, generous so a busy 2-core machine never trips it (timings are printed).
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True if tmux can run. Without it: a loud skip notice, or a panic under `CI`.
pub fn tmux_available(test: &str) -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: tmux is not installed, and CI is set: the end-to-end tests must run");
    }
    eprintln!(
        "\n\n==================== SKIPPED ====================\n\
         {test}: tmux is not installed, so the end-to-end cockpit tests\n\
         did not run. Install tmux (apt-get install tmux) to run them.\n\
         =================================================\n"
    );
    false
}

/// A private tmux server with one session, and the directories the binary uses.
pub struct Tmux {
    socket: String,
    /// The server's socket file, removed on drop (kill-server leaves it behind).
    socket_path: Option<PathBuf>,
    dir: TempDir,
    pub session: String,
    pub width: u16,
    pub height: u16,
}

impl Tmux {
    /// A `width`x`height` session running `sh`; None (after a loud notice) without tmux.
    pub fn start(test: &str, width: u16, height: u16) -> Option<Tmux> {
        if !tmux_available(test) {
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::Builder::new()
            .prefix("rollout-tui-tmux-")
            .tempdir()
            .expect("temp dir");
        let mut t = Tmux {
            socket: format!("rollout-tui-{}-{n}-{test}", std::process::id()),
            socket_path: None,
            dir,
            session: "main".into(),
            width,
            height,
        };
        for d in [
            "home",
            "data",
            "xdg-config",
            "xdg-data",
            "xdg-state",
            "xdg-cache",
        ] {
            std::fs::create_dir_all(t.path(d)).expect("create dir");
        }
        // No status bar: the pane is the whole window, exactly width x height.
        std::fs::write(
            t.path("tmux.conf"),
            "set -g status off\nset -g remain-on-exit off\nset -g history-limit 1000\n",
        )
        .expect("write tmux.conf");
        let out = t
            .tmux()
            .args(["new-session", "-d", "-s", &t.session, "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .arg("env PS1='$ ' sh")
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux new-session failed: {out:?}");
        t.socket_path = Some(PathBuf::from(t.display("#{socket_path}")));
        // capture-pane trims the prompt's trailing blank.
        t.wait_until("the shell prompt", WAIT, |s| s.lines().any(|l| l == "$"));
        Some(t)
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The data directory every command here uses (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// The environment of the tmux server, its panes and `cli`: nothing else.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |d: &str| self.path(d).display().to_string();
        vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), p("home")),
            ("XDG_CONFIG_HOME".into(), p("xdg-config")),
            ("XDG_DATA_HOME".into(), p("xdg-data")),
            ("XDG_STATE_HOME".into(), p("xdg-state")),
            ("XDG_CACHE_HOME".into(), p("xdg-cache")),
            ("LANG".into(), "C.UTF-8".into()),
            ("SHELL".into(), "/bin/sh".into()),
            ("TERM".into(), "xterm-256color".into()),
        ]
    }

    /// `tmux -u -L <socket> -f <conf>` with the isolated environment.
    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.env_clear()
            .envs(self.env())
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(self.path("tmux.conf"))
            .stdin(Stdio::null());
        cmd
    }

    fn tmux_ok(&self, args: &[&str]) -> String {
        let out = self.tmux().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The binary's command line, shell-quoted, with `--data-dir <data>` and `args`.
    pub fn bin_line(&self, args: &str) -> String {
        format!(
            "{} --data-dir {} {args}",
            sh_quote(BIN),
            sh_quote(&self.data_dir().display().to_string())
        )
    }

    /// Types a command line into the pane's shell and presses Enter.
    pub fn run_line(&self, line: &str) {
        self.type_text(line);
        self.keys(&["Enter"]);
    }

    /// Starts the binary in the pane with `args` (after `env_prefix`, e.g. `NO_COLOR=1`),
    /// via `sh -c 'echo $$ > pidfile; exec ...'` so its pid is known; the shell prints
    /// `EXIT=<code>` when it ends. Returns when the command line is sent.
    pub fn launch(&self, env_prefix: &str, args: &str) {
        let _ = std::fs::remove_file(self.pid_file());
        let inner = format!(
            "echo $$ > {}; exec env {env_prefix} {}",
            sh_quote(&self.pid_file().display().to_string()),
            self.bin_line(args)
        );
        self.run_line(&format!("clear; sh -c {}; echo EXIT=$?", sh_quote(&inner)));
    }

    fn pid_file(&self) -> PathBuf {
        self.path("pid")
    }

    /// The pid of the binary started by `launch`.
    pub fn pid(&self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(text) = std::fs::read_to_string(self.pid_file())
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no pid file from launch");
            std::thread::sleep(POLL);
        }
    }

    /// Sends tmux key names (`Enter`, `Escape`, `Tab`, `Down`, `C-c`, `q`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        self.tmux_ok(&args);
    }

    /// Types text literally (no key-name lookup).
    pub fn type_text(&self, text: &str) {
        self.tmux_ok(&["send-keys", "-t", &self.session, "-l", text]);
    }

    /// Pastes `text` as a terminal would: bracketed (`paste-buffer -p`) when the program
    /// asked for bracketed paste, else as typed keys (line breaks as Enter).
    pub fn paste(&self, text: &str) {
        self.tmux_ok(&["set-buffer", "-b", "pasted", "--", text]);
        self.tmux_ok(&[
            "paste-buffer",
            "-p",
            "-d",
            "-b",
            "pasted",
            "-t",
            &self.session,
        ]);
    }

    /// The visible screen as plain text.
    pub fn capture(&self) -> String {
        self.tmux_ok(&["capture-pane", "-p", "-t", &self.session])
    }

    /// The visible screen with its escape sequences (colours and attributes).
    pub fn capture_styled(&self) -> String {
        self.tmux_ok(&["capture-pane", "-p", "-e", "-t", &self.session])
    }

    /// A tmux format for the pane (`#{alternate_on}`, `#{pane_pid}`, ...).
    pub fn display(&self, format: &str) -> String {
        self.tmux_ok(&["display-message", "-p", "-t", &self.session, format])
            .trim()
            .to_string()
    }

    pub fn alternate_screen_on(&self) -> bool {
        self.display("#{alternate_on}") == "1"
    }

    /// Waits until the screen satisfies `check`; returns the screen and how long it took.
    /// Panics with the last screen after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if check(&screen) {
                return (screen, start.elapsed());
            }
            if start.elapsed() > timeout {
                panic!(
                    "waited {timeout:?} for {what}; the screen ({}x{}) shows:\n{screen}",
                    self.width, self.height
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `needle` is on screen; returns the screen.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{needle:?}"), timeout, |s| s.contains(needle))
            .0
    }

    /// Waits until every needle is on screen at once.
    pub fn wait_for_all(&self, needles: &[&str], timeout: Duration) -> (String, Duration) {
        self.wait_until(&format!("{needles:?}"), timeout, |s| {
            needles.iter().all(|n| s.contains(n))
        })
    }

    /// Waits until `needle` is gone from the screen.
    pub fn wait_gone(&self, needle: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{needle:?} to go away"), timeout, |s| {
            !s.contains(needle)
        })
        .0
    }

    /// Waits for the `EXIT=<code>` line `launch` prints and returns the code.
    pub fn wait_exit(&self, timeout: Duration) -> i32 {
        // The typed command line holds "EXIT=$?" too; only a number counts.
        let code = |s: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix("EXIT=")?.trim().parse::<i32>().ok())
        };
        let (screen, _) = self.wait_until("EXIT=<code>", timeout, |s| code(s).is_some());
        code(&screen).unwrap()
    }

    /// Runs `stty -a` in the pane (on the pane's terminal) and returns what it printed.
    pub fn stty_in_pane(&self) -> String {
        let file = self.path("stty.txt");
        let _ = std::fs::remove_file(&file);
        let marker = format!("STTY-DONE-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        self.run_line(&format!(
            "stty -a > {}; echo {marker}",
            sh_quote(&file.display().to_string())
        ));
        // The typed command holds the marker too: wait for it alone on a line.
        self.wait_until(&marker, WAIT, |s| s.lines().any(|l| l.trim() == marker));
        std::fs::read_to_string(&file).expect("stty output")
    }

    /// Runs the binary outside tmux, with the same environment and data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .env_clear()
            .envs(self.env())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run rollout-tui")
    }

    /// `status ID --json`: the stored document of one rollout.
    pub fn status_json(&self, id: &str) -> Value {
        let out = self.cli(&["status", id, "--json"]);
        assert!(
            out.status.success(),
            "status {id} --json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("status --json prints JSON");
        v["rollouts"][0].clone()
    }

    /// Kills the tmux server now (Drop does it too).
    pub fn kill_server(&self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill_server();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Single-quotes `s` for sh.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether `pid` still runs (a zombie waiting for its parent counts as ended).
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // "pid (comm) S ..." — the state follows the last ')'.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

/// Sends signal `name` ("HUP", "TERM") to one process, with kill(2): never kill(1), whose
/// argument parsing has sent kill(-1) (see Cargo.toml). Pids 0 and 1 are refused.
pub fn signal(pid: u32, name: &str) {
    let sig: nix::sys::signal::Signal = format!("SIG{name}").parse().expect("a signal name");
    let pid = i32::try_from(pid).expect("a pid");
    assert!(pid > 1, "refusing to signal pid {pid}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
        .unwrap_or_else(|e| panic!("kill -{name} {pid} failed: {e}"));
}

/// Waits until `pid` has ended; false after `timeout`.
pub fn wait_process_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !process_running(pid) {
            return true;
        }
        std::thread::sleep(POLL);
    }
    !process_running(pid)
}

/// The terminal is in cooked mode: canonical input and echo on.
pub fn assert_cooked(stty: &str, what: &str) {
    let words: Vec<&str> = stty
        .split(|c: char| c.is_whitespace() || c == ';')
        .collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            words.contains(&flag),
            "{what}: the terminal is not in cooked mode ({flag} missing):\n{stty}"
        );
        let off = format!("-{flag}");
        assert!(
            !words.contains(&off.as_str()),
            "{what}: the terminal was left with {off}:\n{stty}"
        );
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
