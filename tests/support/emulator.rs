//! The official Firestore emulator (`gcloud emulators firestore start`) for tests.
//!
//! One shared emulator per test binary (`shared()`), a unique project id per test
//! (`project()`), and dedicated ones for tests that stop and restart theirs.
//! Each runs in its own process group, stopped by group (killpg(2), TERM then KILL). A
//! small `sh -c` loop in the same group is the watchdog: it kills the group once the
//! test process is gone, because statics are never dropped and a panicking or
//! killed test must not leave a JVM behind.
//!
//! If gcloud or the emulator is missing, `shared()` prints a loud notice and
//! returns `None` (the test returns early), unless `ROLLOUT_TUI_REQUIRE_EMULATOR=1`,
//! where it panics with the reason.

use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime};

#[path = "process_group.rs"]
mod process_group;

use nix::sys::signal::Signal;
use process_group::signal_group;
use rollout_tui::config::StoreConfig;
use rollout_tui::store::firestore::FirestoreStore;
use serde_json::Value;

pub const REQUIRE_ENV: &str = "ROLLOUT_TUI_REQUIRE_EMULATOR";
const READY_WITHIN: Duration = Duration::from_secs(90);

pub struct Emulator {
    pub host: String,
    pub port: u16,
    /// How long the last start took until the emulator answered.
    pub started_in: Duration,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

/// The emulator shared by every test of this binary, started on first use.
pub fn shared() -> Option<&'static Emulator> {
    static SHARED: OnceLock<Result<Emulator, String>> = OnceLock::new();
    match SHARED.get_or_init(|| Emulator::start(free_port())) {
        Ok(e) => Some(e),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// Prints the skip banner, or panics when the emulator is required.
/// Written straight to stderr: libtest would swallow `eprintln!` of a passing test.
pub fn skip(why: &str) {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("the Firestore emulator is required ({REQUIRE_ENV}=1) but unavailable: {why}");
    }
    static BANNER: Once = Once::new();
    let mut err = std::io::stderr().lock();
    BANNER.call_once(|| {
        let line = "!".repeat(78);
        let _ = writeln!(
            err,
            "\n{line}\n!!! SKIPPED: the Firestore emulator tests do not run here.\n!!! {why}\n!!! Install: apt-get install google-cloud-cli-firestore-emulator (and Java 17+).\n!!! Set {REQUIRE_ENV}=1 to make this a failure.\n{line}"
        );
    });
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(err, "!!! SKIPPED {test}: no Firestore emulator");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

pub fn random() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

/// A project id nobody else uses: every test starts with an empty database.
pub fn project(name: &str) -> String {
    let clean: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("test-{clean}-{:08x}", random() as u32)
}

impl Emulator {
    /// Starts an emulator on `port` and waits until it answers.
    pub fn start(port: u16) -> Result<Emulator, String> {
        Emulator::start_with(port, &[])
    }

    /// As `start`, with more `gcloud emulators firestore start` flags
    /// (`--export-on-exit=DIR`, `--import-data=FILE`).
    pub fn start_with(port: u16, flags: &[String]) -> Result<Emulator, String> {
        let host = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!(
            "rollout-tui-emulator-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let started = Instant::now();
        // gcloud makes itself a process-group leader (setpgid(0, 0)) anyway, so it gets
        // its own group from the start, and the watchdog joins that group.
        let child = Command::new("gcloud")
            .args([
                "emulators",
                "firestore",
                "start",
                &format!("--host-port={host}"),
            ])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "gcloud is not installed".to_string(),
                _ => format!("cannot start gcloud: {e}"),
            })?;
        let group = i32::try_from(child.id()).expect("a pid");
        let watchdog = format!(
            "trap '' TERM\n\
             while kill -0 {parent} 2>/dev/null && kill -0 {group} 2>/dev/null; do sleep 0.5; done\n\
             kill -TERM 0; sleep 3; kill -KILL 0\n",
            parent = std::process::id()
        );
        let guarded = Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group)
            .spawn();
        if let Err(e) = guarded {
            signal_group(group as u32, Signal::SIGKILL);
            return Err(format!("cannot start the emulator watchdog: {e}"));
        }
        let mut emulator = Emulator {
            host,
            port,
            started_in: Duration::ZERO,
            log,
            child: Mutex::new(Some(child)),
        };
        loop {
            if emulator.answers() {
                emulator.serves_firestore(started + READY_WITHIN)?;
                emulator.started_in = started.elapsed();
                eprintln!(
                    "firestore emulator on {} served Firestore calls after {:?}",
                    emulator.host, emulator.started_in
                );
                return Ok(emulator);
            }
            let exited = emulator
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!(
                    "the emulator exited ({status}) before answering:\n{}",
                    emulator.log_tail()
                ));
            }
            if started.elapsed() > READY_WITHIN {
                // Dropping `emulator` stops it, after the log is read.
                return Err(format!(
                    "the emulator did not answer within {READY_WITHIN:?}:\n{}",
                    emulator.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn listening(&self) -> bool {
        TcpStream::connect_timeout(
            &self.host.parse().expect("host:port"),
            Duration::from_millis(200),
        )
        .is_ok()
    }

    /// The emulator's root answers "Ok" once it serves requests.
    pub fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(
            &self.host.parse().expect("host:port"),
            Duration::from_millis(500),
        ) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        // Only the status line: the emulator keeps the connection open.
        let mut reply = [0u8; 12];
        s.write_all(request.as_bytes()).is_ok()
            && s.read_exact(&mut reply).is_ok()
            && &reply == b"HTTP/1.1 200"
    }

    /// Waits until the store's own calls (a list, a create, a watch) succeed. The root
    /// answering is not enough: on a busy machine a cold emulator can take longer over its
    /// first Firestore requests than the store's 10 s call timeout, and the first test call
    /// would fail. Runs on its own thread and runtime, as callers may be inside one.
    fn serves_firestore(&self, deadline: Instant) -> Result<(), String> {
        use rollout_tui::store::RolloutStore;
        let config = self.config(&project("warm-up"));
        let warm = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("a runtime for the warm-up: {e}"))?;
            runtime.block_on(async {
                let store = FirestoreStore::open(&config).map_err(|e| e.to_string())?;
                for attempt in 0.. {
                    let id = format!("warm-up-{attempt}");
                    let calls = async {
                        store.list().await?;
                        let doc = super::conformance::seed_doc();
                        store
                            .create(&id, &doc, &super::conformance::create_event(&id))
                            .await?;
                        store.watch().await.map(drop)
                    };
                    match calls.await {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => {
                            return Err(format!(
                                "the emulator answered but did not serve Firestore calls within {READY_WITHIN:?}: {e}\n{}",
                                self.log_tail()
                            ));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                unreachable!("the warm-up loop ends by returning")
            })
        };
        std::thread::scope(|s| s.spawn(warm).join().expect("the warm-up thread"))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Freezes the whole process group (SIGSTOP), as a hung server or a black-holed
    /// network looks to a client: connections stay open and nothing answers. The
    /// guard thaws it (SIGCONT) when dropped, a panicking test included.
    pub fn freeze(&self) -> Frozen<'_> {
        let group = self.group().expect("a running emulator");
        assert!(
            signal_group(group, Signal::SIGSTOP),
            "SIGSTOP to group {group}"
        );
        Frozen(self)
    }

    fn group(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// Stops the whole process group: TERM first, KILL if it lingers.
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        let group = child.id();
        let signal = |sig| signal_group(group, sig);
        // A frozen group would hold TERM until thawed.
        signal(Signal::SIGCONT);
        signal(Signal::SIGTERM);
        // The watchdog shell ignores TERM; once the emulator has let go of its port, KILL the rest.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.listening() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(Signal::SIGKILL);
        let _ = child.wait();
        let _ = std::fs::remove_file(&self.log);
    }

    pub fn config(&self, project: &str) -> StoreConfig {
        StoreConfig {
            kind: "firestore".into(),
            project_id: Some(project.into()),
            emulator_host: Some(self.host.clone()),
            ..StoreConfig::default()
        }
    }

    pub fn store(&self, project: &str) -> FirestoreStore {
        FirestoreStore::open(&self.config(project)).expect("open the firestore store")
    }

    /// The REST root of a project's documents, for writing as "another client".
    pub fn documents_url(&self, project: &str) -> String {
        format!(
            "http://{}/v1/projects/{project}/databases/(default)/documents",
            self.host
        )
    }
}

/// A frozen emulator; dropping this thaws it.
pub struct Frozen<'a>(&'a Emulator);

impl Frozen<'_> {
    pub fn thaw(self) {}
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Some(group) = self.0.group() {
            signal_group(group, Signal::SIGCONT);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// "Another client": the emulator's REST API, one connection reused.
#[derive(Clone, Default)]
pub struct Rest(reqwest::Client);

impl Rest {
    /// A REST call; panics on failure with the answer.
    pub async fn call(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Value {
        let mut request = self.0.request(method.clone(), url).bearer_auth("owner");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {url}: {status}\n{text}");
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {url}: {e}\n{text}"))
        }
    }
}
