//! Notifications against a loopback receiver: one message per transition however often the
//! same events and state are observed (under a driver running for many refreshes too), both
//! wire shapes, retries, a receiver that hangs or refuses, secrets kept out of every error,
//! and `rollout-tui notify-test` through the real binary.

#[path = "support/cli_harness.rs"]
mod cli_harness;
#[allow(dead_code)]
#[path = "support/driver_rig.rs"]
mod driver_rig;
#[path = "support/http_fake.rs"]
mod http_fake;
#[path = "support/webhook.rs"]
mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_fake::{FakeServer, Request, Response};
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::health::{GateConfig, GateReport, evaluate};
use rollout_tui::domain::progression::{ConfirmPolicy, NextStage};
use rollout_tui::domain::rollout::{Rollout, Status};
use rollout_tui::engine::driver::Step;
use rollout_tui::metrics::MetricsSource;
use rollout_tui::metrics::config::SimulatorConfig;
use rollout_tui::metrics::simulator::{Regression, Simulator};
use rollout_tui::notify::{Condition, Delivery, Notifier, NotifyConfig, Retry, config::targets};
use rollout_tui::store::RolloutStore;
use rollout_tui::store::local::LocalStore;
use serde_json::{Value, json};
use webhook::{bodies, counts};

use driver_rig::{ID, Rig, TICK, policy, t0};

/// Long enough for any delivery here, retries included; the tests wait on conditions.
const SETTLE: Duration = Duration::from_secs(30);

/// Quick retries, so the retry tests take a moment rather than seconds.
fn quick() -> Delivery {
    Delivery {
        retry: Retry {
            attempts: 3,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        ..Delivery::default()
    }
}

fn entry(kind: &str, url: &str, events: &[&str]) -> NotifyConfig {
    let mut text = format!("kind = \"{kind}\"\nurl = \"{url}\"\n");
    if !events.is_empty() {
        text.push_str(&format!("events = {events:?}\n"));
    }
    toml::from_str(&text).unwrap()
}

fn notifier(entries: &[NotifyConfig], delivery: Delivery) -> Notifier {
    Notifier::start(targets(entries).unwrap(), t0(), delivery).unwrap()
}

/// `current` at 5 % on the canary plan, read back from a real store.
async fn rollout() -> (tempfile::TempDir, Rig, Rollout) {
    let (dir, store) = local_store();
    let rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let r = rig.rollout().await;
    (dir, rig, r)
}

fn local_store() -> (tempfile::TempDir, Arc<dyn RolloutStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    (dir, Arc::new(store))
}

/// A failing gate report from the simulator: the canary fails 20 % of requests.
async fn failing_report(r: &Rollout, now: DateTime<Utc>) -> GateReport {
    let sim = Simulator::new(&SimulatorConfig::default(), Duration::from_secs(300));
    sim.inject(&r.id, Regression::ErrorSpike { error_rate: 0.2 });
    let sample = sim.sample(r, now).await;
    evaluate(
        &sample,
        &GateConfig::default().at_percentage(r.percentage),
        now,
    )
}

fn halt_event(at: DateTime<Utc>, report: &GateReport) -> Event {
    Event {
        rollout_id: ID.into(),
        kind: EventKind::Pause,
        actor: "auto:cockpit-a#42".into(),
        at,
        before: json!({"status": "progressive"}),
        after: json!({"status": "paused", "pauseReason": "auto-halt: canary error rate too high"}),
        reason: Some("auto-halt: canary error rate too high".into()),
        gate_report: Some(report.to_json()),
    }
}

fn awaiting(r: &Rollout, report: Option<GateReport>) -> Condition {
    let plan = r.plan.as_ref().unwrap();
    Condition::AwaitingConfirmation {
        next: NextStage {
            index: 2,
            name: plan.stages[2].name.clone(),
            percent: plan.stages[2].percent,
            because: None,
        },
        report,
    }
}

#[tokio::test]
async fn the_same_state_and_events_observed_many_times_send_one_message_each() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let n = notifier(&[entry("webhook", &server.url(), &[])], Delivery::default());
    let (_dir, _rig, r) = rollout().await;
    let now = t0() + chrono::Duration::minutes(11);
    let report = failing_report(&r, now).await;
    let wait = awaiting(&r, None);
    for i in 0..200 {
        n.observe_state(
            Some(&r),
            std::slice::from_ref(&wait),
            now + chrono::Duration::seconds(15 * i),
        );
    }
    let halt = halt_event(now, &report);
    for _ in 0..50 {
        // A re-delivered snapshot: the history, the halt, in any order.
        n.observe_events(Some(&r), std::slice::from_ref(&halt));
    }
    assert!(n.settle(SETTLE).await);
    assert_eq!(
        counts(&server),
        BTreeMap::from([("awaiting_confirmation".into(), 1), ("halt".into(), 1)])
    );
    // Forgotten (the rollout was removed) and seen again: news again.
    n.forget(ID);
    n.observe_state(
        Some(&r),
        std::slice::from_ref(&wait),
        now + chrono::Duration::minutes(59),
    );
    // Ended and started anew: one more.
    n.observe_state(Some(&r), &[], now + chrono::Duration::hours(1));
    for _ in 0..20 {
        n.observe_state(
            Some(&r),
            std::slice::from_ref(&wait),
            now + chrono::Duration::hours(2),
        );
    }
    assert!(n.settle(SETTLE).await);
    assert_eq!(counts(&server)["awaiting_confirmation"], 3);
    let s = &n.status().targets[0];
    assert_eq!((s.sent, s.failed, s.dropped, s.attempts), (4, 0, 0, 4));
}

#[tokio::test]
async fn history_from_before_the_notifier_started_is_not_news() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let n = notifier(&[entry("webhook", &server.url(), &[])], Delivery::default());
    let (_dir, _rig, r) = rollout().await;
    let report = failing_report(&r, t0()).await;
    n.observe_events(
        Some(&r),
        &[halt_event(t0() - chrono::Duration::minutes(1), &report)],
    );
    assert!(n.settle(SETTLE).await);
    assert!(server.requests().is_empty(), "{:?}", bodies(&server));
}

#[tokio::test]
async fn the_generic_webhook_gets_the_transition_the_state_and_the_gate_report() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let n = notifier(
        &[entry("webhook", &server.url(), &["halt"])],
        Delivery::default(),
    );
    let (_dir, _rig, r) = rollout().await;
    let at = t0() + chrono::Duration::minutes(3);
    let report = failing_report(&r, at).await;
    n.observe_events(Some(&r), &[halt_event(at, &report)]);
    // Not subscribed: not sent.
    n.observe_state(Some(&r), &[awaiting(&r, None)], at);
    assert!(n.settle(SETTLE).await);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let b = &bodies(&server)[0];
    assert_eq!(b["source"], "rollout-tui");
    assert_eq!(b["event"], "halt");
    assert_eq!(b["actor"], "auto:cockpit-a#42");
    assert_eq!(
        b["at"],
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(
        b["rollout"],
        json!({"id": ID, "version": "2.0.0", "percent": "5%", "stage": "2/5 5%", "status": "progressive"})
    );
    let text = b["text"].as_str().unwrap();
    assert!(
        text.starts_with("current: HALTED by auto:cockpit-a#42 (auto-progression)")
            && text.contains("auto-halt: canary error rate too high"),
        "{text}"
    );
    assert_eq!(b["change"], "status \"progressive\" -> \"paused\"");
    // The report as stored, for machines, and as lines, for people: failing gates first.
    assert_eq!(b["gateReport"]["verdict"], "fail");
    let gates: Vec<&str> = b["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(gates[0].starts_with("health: FAIL"), "{gates:?}");
    assert!(
        gates[1].contains("FAIL") && gates[1].contains("error-rate"),
        "{gates:?}"
    );
}

#[tokio::test]
async fn the_slack_body_has_text_blocks_and_the_gate_report() {
    let server = FakeServer::start(|_| Response::text(200, "ok"));
    let n = notifier(&[entry("slack", &server.url(), &[])], Delivery::default());
    let (_dir, _rig, r) = rollout().await;
    let at = t0() + chrono::Duration::minutes(3);
    let report = failing_report(&r, at).await;
    let mut halt = halt_event(at, &report);
    halt.reason = Some("auto-halt: <!channel> & friends".into());
    n.observe_events(Some(&r), &[halt]);
    n.observe_state(Some(&r), &[awaiting(&r, Some(report.clone()))], at);
    assert!(n.settle(SETTLE).await);
    let all = bodies(&server);
    assert_eq!(all.len(), 2);
    let halt = all
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("HALTED"))
        .expect("the halt");
    // Stored text cannot mention the channel or make links.
    assert!(
        halt["text"]
            .as_str()
            .unwrap()
            .contains("&lt;!channel&gt; &amp; friends"),
        "{halt}"
    );
    let blocks = halt["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "rollout-tui: halt · current");
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "*Rollout*\ncurrent",
            "*Version*\n2.0.0",
            "*Traffic*\n5%",
            "*Stage*\n2/5 5%",
            "*Status*\nprogressive"
        ]
    );
    let gates = blocks
        .iter()
        .find_map(|b| {
            b["text"]["text"]
                .as_str()
                .filter(|t| t.starts_with("*Gate report*"))
        })
        .expect("a gate report block");
    assert!(
        gates.contains("health: FAIL") && gates.contains("error-rate"),
        "{gates}"
    );
    assert_eq!(blocks.last().unwrap()["type"], "context");
    // The waiting confirmation carries the report it waits on.
    let wait = all
        .iter()
        .find(|b| {
            b["text"]
                .as_str()
                .unwrap()
                .contains("waits for an operator")
        })
        .expect("the awaiting confirmation");
    assert!(wait.to_string().contains("*Gate report*"), "{wait}");
    assert!(
        wait["text"]
            .as_str()
            .unwrap()
            .contains("stage 3 '25%' (25%)"),
        "{wait}"
    );
}

#[tokio::test]
async fn a_500_is_retried_until_it_lands_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = FakeServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::text(500, "backend restarting")
        } else {
            Response::json(200, "{}")
        }
    });
    let n = notifier(&[entry("webhook", &server.url(), &[])], quick());
    let (_dir, _rig, r) = rollout().await;
    n.observe_state(Some(&r), &[awaiting(&r, None)], t0());
    assert!(n.settle(SETTLE).await);
    assert_eq!(
        server.requests().len(),
        2,
        "one failed try, one that landed"
    );
    let all = bodies(&server);
    assert_eq!(all[0], all[1], "the same message, tried again");
    let s = &n.status().targets[0];
    assert_eq!((s.sent, s.failed, s.attempts), (1, 0, 2));
    assert!(!s.failing() && n.status().problem().is_none());
}

#[tokio::test]
async fn a_rate_limit_is_waited_out() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = FakeServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::text(429, "rate_limited").with_header("Retry-After", "0")
        } else {
            Response::text(200, "ok")
        }
    });
    let n = notifier(&[entry("slack", &server.url(), &[])], quick());
    let (_dir, _rig, r) = rollout().await;
    n.observe_state(Some(&r), &[awaiting(&r, None)], t0());
    assert!(n.settle(SETTLE).await);
    let s = &n.status().targets[0];
    assert_eq!((s.sent, s.failed, s.attempts), (1, 0, 2), "{s:?}");
}

/// A handler that holds every answer until `open` is called.
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn new() -> Gate {
        Gate(Arc::new((Mutex::new(false), Condvar::new())))
    }

    fn handler(&self) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
        let g = self.0.clone();
        move |_| {
            let (open, cv) = &*g;
            let mut o = open.lock().unwrap();
            while !*o {
                o = cv.wait(o).unwrap();
            }
            Response::json(200, "{}")
        }
    }

    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

#[tokio::test]
async fn a_receiver_that_hangs_never_blocks_observing_and_the_queue_stays_bounded() {
    let gate = Gate::new();
    let server = FakeServer::start(gate.handler());
    let delivery = Delivery {
        queue: 4,
        ..Delivery::default()
    };
    let n = notifier(&[entry("webhook", &server.url(), &[])], delivery);
    let (_dir, _rig, r) = rollout().await;
    let report = failing_report(&r, t0()).await;
    let halt = |i: i64| halt_event(t0() + chrono::Duration::seconds(i), &report);
    n.observe_events(Some(&r), &[halt(0)]);
    // The sender is inside its POST, and the receiver holds it there.
    tokio::time::timeout(SETTLE, async {
        while server.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first message reaches the receiver");
    for i in 1..=50 {
        n.observe_events(Some(&r), &[halt(i)]);
    }
    // Every observation returned while the receiver still held the first message.
    assert_eq!(server.in_flight(), 1);
    assert_eq!(server.requests().len(), 1);
    let s = &n.status().targets[0];
    assert_eq!((s.queued, s.dropped, s.sent), (5, 46, 0), "{s:?}");
    assert!(s.failing(), "messages lost to a full queue show");
    assert!(n.status().problem().unwrap().contains("46 dropped"));
    gate.open();
    assert!(n.settle(SETTLE).await);
    let s = &n.status().targets[0];
    assert_eq!((s.queued, s.dropped, s.sent), (0, 46, 5));
    assert!(!s.failing(), "delivered since the drops: {s:?}");
    // The newest ones were kept.
    let last = bodies(&server).pop().unwrap();
    assert_eq!(
        last["at"],
        (t0() + chrono::Duration::seconds(50)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
}

const SECRET: &str = "XyZsecretWebhookToken123";

#[tokio::test]
async fn failures_show_in_status_with_the_url_masked() {
    // A revoked Slack webhook: 404 "no_service", echoing the path it was asked for.
    let server = FakeServer::start(|req| Response::text(404, format!("no_service {}", req.path)));
    // Nothing listens here: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!(
        "http://{}/hooks/{SECRET}?token={SECRET}",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let slack_url = format!("{}/services/T0/B0/{SECRET}", server.url());
    let n = notifier(
        &[
            entry("slack", &slack_url, &[]),
            entry("webhook", &closed_url, &[]),
        ],
        quick(),
    );
    let (_dir, _rig, r) = rollout().await;
    n.observe_state(Some(&r), &[awaiting(&r, None)], t0());
    assert!(n.settle(SETTLE).await);
    let status = n.status();
    let (slack, hook) = (&status.targets[0], &status.targets[1]);
    // A 404 will not pass by trying again; a refused connection might.
    assert_eq!((slack.sent, slack.failed, slack.attempts), (0, 1, 1));
    assert_eq!((hook.sent, hook.failed, hook.attempts), (0, 1, 3));
    assert_eq!(slack.label, format!("notify[0] slack {}/***", server.url()));
    let slack_error = slack.last_error.as_deref().unwrap();
    assert!(
        slack_error.contains("404") && slack_error.contains("no_service"),
        "{slack_error}"
    );
    assert!(hook.last_error.is_some() && hook.failing() && slack.failing());
    let problem = status.problem().unwrap();
    assert!(
        problem.contains("notify[0] slack") && problem.contains("and 1 more"),
        "{problem}"
    );
    let everything = format!("{status:?} {problem}");
    assert!(
        !everything.contains(SECRET),
        "a secret leaked: {everything}"
    );
    assert!(
        !everything.contains("/services/T0"),
        "a path leaked: {everything}"
    );
}

/// The cockpit's part, played by the test: after every driver tick, the rollout's events
/// and its waiting confirmation are observed, for hundreds of refreshes.
#[tokio::test]
async fn one_message_per_transition_under_a_driver_running_many_refreshes() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let n = notifier(&[entry("webhook", &server.url(), &[])], Delivery::default());
    let (_dir, store) = local_store();
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::EveryStage));
    let mut refreshes = 0;
    let mut waiting_for = 0;
    let mut done_for = 0;
    // Every question waits 40 refreshes before the operator says yes; after completion the
    // cockpit keeps refreshing for 100 more.
    while done_for < 100 {
        refreshes += 1;
        assert!(refreshes < 5_000, "the rollout never completed");
        let tick = d.tick(rig.now).await;
        let conditions: Vec<Condition> = Condition::awaiting(&tick.decision, tick.report.as_ref())
            .into_iter()
            .collect();
        let r = rig.rollout().await;
        n.observe_events(Some(&r), &rig.events().await);
        n.observe_state(Some(&r), &conditions, rig.now);
        if let Step::AskConfirmation(next) = &tick.step {
            waiting_for += 1;
            if waiting_for == 40 {
                waiting_for = 0;
                d.confirm(next.index, rig.now).await.unwrap();
            }
        }
        if r.status == Status::Complete {
            done_for += 1;
        }
        rig.now += chrono::Duration::from_std(TICK).unwrap();
    }
    assert!(n.settle(SETTLE).await);
    // Questions before 25 %, 50 % and 100 % (every stage asks), then the completion.
    assert_eq!(
        counts(&server),
        BTreeMap::from([("awaiting_confirmation".into(), 3), ("complete".into(), 1)]),
        "over {refreshes} refreshes"
    );
    let stages: Vec<String> = bodies(&server)
        .iter()
        .filter(|b| b["event"] == "awaiting_confirmation")
        .map(|b| b["rollout"]["percent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        stages,
        ["5%", "25%", "50%"],
        "each asked from the stage before"
    );
    eprintln!(
        "{refreshes} refreshes, {} messages",
        server.requests().len()
    );
}

#[tokio::test]
async fn a_driver_halt_is_told_once_with_the_report_behind_it() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let n = notifier(
        &[entry("webhook", &server.url(), &["halt", "rollback"])],
        Delivery::default(),
    );
    let (_dir, store) = local_store();
    let mut rig = Rig::new(store);
    rig.create_at_five_percent().await;
    let mut d = rig.driver("cockpit-a", policy(ConfirmPolicy::Never));
    rig.sim
        .inject(ID, Regression::ErrorSpike { error_rate: 0.03 });
    let mut paused_for = 0;
    let mut refreshes = 0;
    while paused_for < 100 {
        refreshes += 1;
        assert!(refreshes < 2_000, "never halted");
        d.tick(rig.now).await;
        let r = rig.rollout().await;
        n.observe_events(Some(&r), &rig.events().await);
        if r.status == Status::Paused {
            paused_for += 1;
        }
        rig.now += chrono::Duration::from_std(TICK).unwrap();
    }
    assert!(n.settle(SETTLE).await);
    let all = bodies(&server);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["event"], "halt");
    assert_eq!(all[0]["rollout"]["status"], "paused");
    assert_eq!(all[0]["gateReport"]["verdict"], "fail");
}

#[tokio::test]
async fn an_outage_is_told_once_it_lasts_outage_after() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let mut e = entry("webhook", &server.url(), &["outage"]);
    e.outage_after = Duration::from_secs(120);
    let n = notifier(&[e], Delivery::default());
    let down_since = t0();
    let outage = Condition::StoreOutage {
        since: down_since,
        error: "connection refused (Authorization: Bearer abc.def-ghi)".into(),
    };
    for s in (0..600).step_by(15) {
        n.observe_state(
            None,
            std::slice::from_ref(&outage),
            down_since + chrono::Duration::seconds(s),
        );
    }
    assert!(n.settle(SETTLE).await);
    let all = bodies(&server);
    assert_eq!(all.len(), 1);
    let text = all[0]["text"].as_str().unwrap();
    assert!(text.contains("unreachable for 2m"), "{text}");
    assert!(
        !text.contains("abc.def"),
        "credentials are scrubbed: {text}"
    );
    assert_eq!(all[0]["rollout"], Value::Null);
}

fn notify_config(cli: &cli_harness::Cli, entries: &[(&str, String)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (kind, url) in entries {
        text.push_str(&format!(
            "[[notify]]\nkind = \"{kind}\"\nurl = \"{url}\"\n\n"
        ));
    }
    cli.write_file("notify.toml", &text)
}

#[test]
fn notify_test_reaches_every_target() {
    let server = FakeServer::start(|_| Response::json(200, "{}"));
    let cli = cli_harness::Cli::new();
    let config = notify_config(
        &cli,
        &[
            ("slack", format!("{}/services/T0/B0/{SECRET}", server.url())),
            ("webhook", format!("{}/hook", server.url())),
        ],
    );
    let out = cli_harness::ok_cmd(cli.command(&["notify-test"]).arg("--config").arg(&config));
    assert!(
        out.contains(&format!("notify[0] slack {}/***: OK", server.url())),
        "{out}"
    );
    assert!(
        out.contains(&format!("notify[1] webhook {}/***: OK", server.url())),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    let all = bodies(&server);
    assert_eq!(all.len(), 2);
    let slack = all
        .iter()
        .find(|b| b.get("blocks").is_some())
        .expect("the Slack body");
    assert_eq!(slack["blocks"][0]["text"]["text"], "rollout-tui: test");
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("test message from tester"),
        "{slack}"
    );
    let hook = all
        .iter()
        .find(|b| b.get("event").is_some())
        .expect("the webhook body");
    assert_eq!(hook["event"], "test");
}

#[test]
fn notify_test_fails_when_a_target_fails_and_says_which() {
    let ok = FakeServer::start(|_| Response::json(200, "{}"));
    let bad =
        FakeServer::start(|req| Response::text(403, format!("invalid_token for {}", req.path)));
    let cli = cli_harness::Cli::new();
    let config = notify_config(
        &cli,
        &[
            ("webhook", format!("{}/fine", ok.url())),
            ("slack", format!("{}/services/T0/B0/{SECRET}", bad.url())),
        ],
    );
    let ran = cli_harness::exec_cmd(cli.command(&["notify-test"]).arg("--config").arg(&config));
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(
        ran.stdout.contains("notify[0] webhook") && ran.stdout.contains("/***: OK"),
        "{ran}"
    );
    assert!(
        ran.stdout.contains(&format!(
            "notify[1] slack {}/***: FAILED: HTTP 403",
            bad.url()
        )),
        "{ran}"
    );
    assert!(ran.stdout.contains("invalid_token"), "{ran}");
    assert!(
        ran.stderr.contains("1 of 2 notification targets failed"),
        "{ran}"
    );
    assert!(
        !ran.stdout.contains(SECRET) && !ran.stderr.contains(SECRET),
        "{ran}"
    );
    assert_eq!(bad.requests().len(), 1, "a refusal is not retried");
}

#[test]
fn check_config_lists_targets_masked() {
    let cli = cli_harness::Cli::new();
    let config = notify_config(
        &cli,
        &[(
            "slack",
            format!("https://hooks.slack.com/services/T0/B0/{SECRET}"),
        )],
    );
    let out = cli_harness::ok_cmd(cli.command(&["check-config"]).arg("--config").arg(&config));
    assert!(
        out.contains("notify:       notify[0] slack https://hooks.slack.com/***: halt, rollback, awaiting_confirmation, complete, override, freeze, lease_lost, outage (outages after 5m)"),
        "{out}"
    );
    assert!(out.contains("terminal:     notify_terminal off"), "{out}");
    assert!(!out.contains(SECRET), "{out}");
}

#[test]
fn notify_test_without_targets_says_so() {
    let cli = cli_harness::Cli::new();
    let ran = cli.fail(&["notify-test"]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("no notification targets are configured"),
        "{ran}"
    );
    assert!(ran.stderr.contains("[[notify]]"), "{ran}");
}

#[test]
fn a_bad_target_is_refused_naming_its_key_and_not_its_url() {
    let cli = cli_harness::Cli::new();
    let config = cli.write_file(
        "bad.toml",
        &format!(
            "[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/{SECRET}\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"https://example.com/{SECRET}\"\nevents = [\"halt\", \"coffee\"]\n"
        ),
    );
    let ran = cli_harness::exec_cmd(cli.command(&["notify-test"]).arg("--config").arg(&config));
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("notify[1].events") && ran.stderr.contains("coffee"),
        "{ran}"
    );
    assert!(!ran.stderr.contains(SECRET), "{ran}");
}
