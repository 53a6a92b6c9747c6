//! A real Prometheus server (Debian's `prometheus` package) for one test: its own config,
//! a free loopback port, a temporary TSDB, a query log, its own process group, killed on
//! drop (also when the test panics). No system service is used or needed.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tempfile::TempDir;

#[path = "process_group.rs"]
mod process_group;
use process_group::signal_group;

pub const REQUIRE_ENV: &str = "ROLLOUT_TUI_REQUIRE_PROMETHEUS";

pub struct PrometheusServer {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// The `prometheus` binary on PATH. When it is missing the test is skipped with a loud
/// notice, unless CI or ROLLOUT_TUI_REQUIRE_PROMETHEUS=1 demand it (then it fails).
pub fn binary_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
            || std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
        let msg =
            "prometheus is not installed (Debian: apt-get install prometheus; .ci/run installs it)";
        assert!(!required, "{msg}, and CI or {REQUIRE_ENV}=1 requires it");
        eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    }
    found
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PrometheusServer {
    /// Starts a server scraping `target` (host:port) every second; waits until it is ready.
    pub fn start(binary: &std::path::Path, target: &str) -> PrometheusServer {
        let dir = tempfile::Builder::new()
            .prefix("rollout-tui-prometheus-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  query_log_file: {}\n\
                 scrape_configs:\n  - job_name: exporter\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n",
                dir.path().join("queries.log").display()
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start prometheus");
        let server = PrometheusServer { child, port, dir };
        server.wait_ready(Duration::from_secs(60));
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The PromQL of every query the server has run, oldest first, from its query log.
    pub fn queries(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("queries.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["params"]["query"].as_str().map(str::to_string))
            .collect()
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if http_get(self.port, "/-/ready").is_some_and(|(status, _)| status == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus was not ready within {limit:?}\n{}", self.log());
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        // The whole group, then the child itself, so nothing outlives the test.
        signal_group(self.child.id(), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking GET: (status, body).
pub fn http_get(port: u16, path_and_query: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
