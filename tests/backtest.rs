//! `rollout-tui backtest --trace`: the labelled traces under tests/traces/ replayed by the
//! real binary give the expected decisions; `--json` is stable; bad input is refused with
//! the file and line.
//!
//! The traces are generated here, deterministically, and committed; a test checks the
//! committed files are what the generator makes (`UPDATE_TRACES=1` rewrites them).
//! Every trace is 130 minutes of a service at 100 req/s whose traffic was recorded as a
//! canary rollout: canary users only (1 % of requests) for 10 minutes, then 5 %, 25 % from
//! minute 40 and 50 % from minute 100 (so the replayed stages and the recorded ones differ).

#[path = "support/cli_harness.rs"]
mod cli_harness;

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use cli_harness::{Cli, Ran};
use serde_json::{Value, json};

const MINUTES: i64 = 130;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap()
}

/// A fixed jitter in [-1, 1) for (minute, side, what): SplitMix64.
fn jitter(minute: i64, side: u64, what: u64) -> f64 {
    let mut z = (minute as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (side << 32) ^ (what << 48);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn recorded_percent(minute: i64) -> f64 {
    match minute {
        ..10 => 0.0,
        10..40 => 5.0,
        40..100 => 25.0,
        _ => 50.0,
    }
}

/// What the canary did in a minute.
struct Canary {
    error_rate: f64,
    latency_factor: f64,
    /// Requests per minute to the whole service.
    total: f64,
    /// No canary line at all this minute.
    missing: bool,
    /// How much of the per-minute jitter the error counts get (1: all of it; at a few
    /// requests a minute it alone makes errors).
    error_jitter: f64,
    /// Lines count their requests over stable's p99 (the header gives it).
    slow_counts: bool,
}

/// Stable's recorded p99 (ms), and the share of requests over it for a log-normal latency
/// of shape 0.5 at `factor` times stable's: 1 % for stable's own, 17.4 % when doubled.
const STABLE_P99_MS: f64 = 200.0;
fn share_over_stable_p99(factor: f64) -> f64 {
    if factor == 1.0 {
        0.01
    } else {
        assert_eq!(factor, 2.0, "only a doubled latency is tabled");
        0.174
    }
}

fn trace(canary: impl Fn(i64) -> Canary) -> String {
    let mut header = json!({"rollout": {"id": "checkout", "plan": "canary"}});
    if canary(0).slow_counts {
        header["rollout"]["stableP99Ms"] = json!(STABLE_P99_MS);
    }
    let mut out = format!("{header}\n");
    for m in 0..MINUTES {
        let c = canary(m);
        let time = (t0() + chrono::Duration::minutes(m))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let percent = recorded_percent(m);
        let canary_share = percent / 100.0 + 0.01;
        for (side, share, rate, factor) in [
            (0u64, 1.0 - canary_share, 0.002, 1.0),
            (1, canary_share, c.error_rate, c.latency_factor),
        ] {
            if side == 1 && c.missing {
                continue;
            }
            let requests = (c.total * share * (1.0 + 0.05 * jitter(m, side, 0)))
                .round()
                .max(0.0);
            let errors = (requests * rate + c.error_jitter * jitter(m, side, 1))
                .round()
                .clamp(0.0, requests);
            let q = |base: f64, what: u64| {
                let v = base * factor * (1.0 + 0.03 * jitter(m, side, what));
                (v * 10.0).round() / 10.0
            };
            let mut line = json!({
                "time": time,
                "side": if side == 0 { "stable" } else { "canary" },
                "requests": requests as u64,
                "errors": errors as u64,
                "percent": percent,
            });
            if requests > 0.0 {
                line["p50_ms"] = json!(q(40.0, 2));
                line["p95_ms"] = json!(q(100.0, 3));
                line["p99_ms"] = json!(q(STABLE_P99_MS, 4));
            }
            if c.slow_counts {
                line["slow"] = json!((requests * share_over_stable_p99(factor)).round() as u64);
            }
            out.push_str(&line.to_string());
            out.push('\n');
        }
    }
    out
}

fn healthy(_: i64) -> Canary {
    Canary {
        error_rate: 0.002,
        latency_factor: 1.0,
        total: 6000.0,
        missing: false,
        error_jitter: 1.0,
        slow_counts: false,
    }
}

/// The labelled cases: name and contents.
fn traces() -> Vec<(&'static str, String)> {
    vec![
        ("healthy", trace(healthy)),
        // 8 % errors from minute 20: severe once the window is mostly bad.
        (
            "error-regression",
            trace(|m| Canary {
                error_rate: if m >= 20 { 0.08 } else { 0.002 },
                ..healthy(m)
            }),
        ),
        // p99 (and every latency) doubled from minute 20: past the 1.5x ratio, not severe.
        (
            "latency-regression",
            trace(|m| Canary {
                latency_factor: if m >= 20 { 2.0 } else { 1.0 },
                ..healthy(m)
            }),
        ),
        // 1 req/s: the canary never has the 200 requests a verdict needs.
        (
            "sparse-traffic",
            trace(|m| Canary {
                total: 60.0,
                ..healthy(m)
            }),
        ),
        // 10 req/s, p99 doubled from the start, each minute's requests over stable's p99
        // counted: a window of the canary users' traffic never holds the 100 canary requests
        // a p99 needs, the stage's counts do.
        (
            "sparse-latency-regression",
            trace(|m| Canary {
                total: 600.0,
                latency_factor: 2.0,
                error_jitter: 0.0,
                slow_counts: true,
                ..healthy(m)
            }),
        ),
        // No canary minute from 10:08 to 10:39.
        (
            "missing-data",
            trace(|m| Canary {
                missing: (8..40).contains(&m),
                ..healthy(m)
            }),
        ),
    ]
}

fn trace_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/traces")
        .join(format!("{name}.jsonl"))
}

#[test]
fn the_committed_traces_are_the_generated_ones() {
    for (name, text) in traces() {
        let path = trace_path(name);
        if std::env::var_os("UPDATE_TRACES").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_TRACES=1 writes it)", path.display()));
        assert!(committed == text, "{name}.jsonl differs from its generator");
    }
}

fn backtest(cli: &Cli, name: &str, extra: &[&str]) -> Ran {
    let path = trace_path(name);
    let mut args = vec!["backtest", "--trace", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli.exec(&args)
}

/// The decisions of a JSON backtest: (minutes from 10:00, kind).
fn decisions(v: &Value) -> Vec<(i64, String)> {
    v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let at = DateTime::parse_from_rfc3339(d["at"].as_str().unwrap()).unwrap();
            (
                (at.with_timezone(&Utc) - t0()).num_minutes(),
                d["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn json_of(cli: &Cli, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let ran = backtest(cli, name, &args);
    assert!(ran.success(), "{ran}");
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran}"))
}

fn kinds(list: &[(i64, String)]) -> Vec<&str> {
    list.iter().map(|(_, k)| k.as_str()).collect()
}

#[test]
fn a_healthy_trace_goes_through_every_stage() {
    let cli = Cli::new();
    let v = json_of(&cli, "healthy", &[]);
    let d = decisions(&v);
    assert_eq!(
        kinds(&d),
        [
            "ask", "advance", "advance", "advance", "ask", "advance", "complete"
        ],
        "{v}"
    );
    // The canary users' stage asks once a breach could have shown (5 minutes of their
    // traffic), then each stage's minimum time: 10, 30 and 60 minutes.
    let times: Vec<i64> = d.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [5, 5, 15, 45, 105, 105, 106], "{v}");
    let first_ask = v["decisions"][0]["reason"].as_str().unwrap();
    assert!(first_ask.contains("your own testing"), "{first_ask}");
    assert_eq!(v["end"]["status"], "complete");
    assert_eq!(v["scaled"], false);
    // The replayed 25 % stage began at 10:15 on traffic recorded at 5 %.
    assert_eq!(v["decisions"][2]["to"]["percent"], 25);
    assert_eq!(v["decisions"][2]["recordedPercent"], 5);
    let recorded: Vec<f64> = v["recordedPercentages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(recorded, [0.0, 5.0, 25.0, 50.0]);

    let text = backtest(&cli, "healthy", &[]);
    assert!(text.success(), "{text}");
    assert!(
        text.stdout.contains("traffic recorded at: 0% from 10:00, 5% from 10:10, 25% from 10:40, 50% from 11:40; the replayed plan's stages are at 0%, 5%, 25%, 50%, 100%"),
        "{text}"
    );
    assert!(text.stdout.contains("nothing is scaled"), "{text}");
    assert!(
        text.stdout
            .contains("10:15  advance           advancing to stage 3 '25%' (25%)"),
        "{text}"
    );
    // Completing at 100 % on traffic recorded at 50 %: said, not scaled.
    assert!(
        text.stdout
            .contains("in stage 5 '100%' (100%), traffic recorded at 50% (differs)"),
        "{text}"
    );
    assert!(text.stdout.contains("end 11:46: complete"), "{text}");
}

#[test]
fn the_json_of_a_backtest_is_stable() {
    let cli = Cli::new();
    let first = backtest(&cli, "healthy", &["--json"]);
    let second = backtest(&cli, "healthy", &["--json"]);
    assert!(first.success(), "{first}");
    assert_eq!(first.stdout, second.stdout);
    let mut v: Value = serde_json::from_str(&first.stdout).unwrap();
    // The path is where this checkout is; the rest must not change.
    let source = v["source"].as_str().unwrap();
    assert!(
        source.starts_with("trace ") && source.ends_with("healthy.jsonl"),
        "{source}"
    );
    v["source"] = json!("trace healthy.jsonl");
    insta::assert_json_snapshot!("backtest_healthy_json", v);
}

#[test]
fn an_error_regression_is_rolled_back() {
    let cli = Cli::new();
    let v = json_of(&cli, "error-regression", &[]);
    let d = decisions(&v);
    assert_eq!(
        kinds(&d),
        ["ask", "advance", "advance", "halt", "rollback"],
        "{v}"
    );
    // Bad from 10:20: the sequential test on the stage's requests shows it in that first
    // minute and the rollout retreats to the canary users at once; the canary users' own
    // traffic is then severe (>= 5 %), sustained 1m at 10:22: rolled back.
    assert_eq!((d[3].0, d[4].0), (20, 22), "{v}");
    let halt = &v["decisions"][3];
    assert_eq!(halt["percent"], 25);
    assert_eq!(halt["failing"], json!(["error-rate-vs-stable"]), "{halt}");
    let rollback = &v["decisions"][4];
    assert_eq!(rollback["percent"], 0);
    assert!(
        rollback["reason"].as_str().unwrap().contains("severe"),
        "{rollback}"
    );
    assert!(rollback["exposure"]["canaryRequests"].as_u64().unwrap() > 0);
    assert_eq!(v["end"]["status"], "rolled-back");

    // The same trace judged on windows: the 25 % stage serves the bad canary until the
    // window is severe (10:23) and that has lasted 1m.
    cli.write_file("window.toml", "[gates]\njudgment = \"window\"\n");
    let gates = cli.path("window.toml");
    let w = json_of(
        &cli,
        "error-regression",
        &["--gates", gates.to_str().unwrap()],
    );
    let d = decisions(&w);
    assert_eq!(kinds(&d), ["ask", "advance", "advance", "rollback"], "{w}");
    assert_eq!(d[3].0, 24, "{w}");
    assert_eq!(w["decisions"][3]["percent"], 25);
    // Stage judgment stopped random users' exposure earlier.
    assert!(
        halt["exposure"]["percentMinutes"].as_f64().unwrap()
            < w["decisions"][3]["exposure"]["percentMinutes"]
                .as_f64()
                .unwrap(),
        "{v}\n{w}"
    );
}

#[test]
fn without_auto_rollback_the_rollback_is_proposed() {
    let cli = Cli::new();
    cli.write_file("config.toml", "[policy]\nauto_rollback = false\n");
    let config = cli.path("config.toml");
    let v = json_of(
        &cli,
        "error-regression",
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(
        kinds(&decisions(&v)),
        ["ask", "advance", "advance", "halt", "proposed-rollback"],
        "{v}"
    );
    assert_eq!(v["end"]["status"], "paused");
}

#[test]
fn a_latency_regression_halts_after_breach_for() {
    let v = json_of(&Cli::new(), "latency-regression", &[]);
    let d = decisions(&v);
    assert_eq!(kinds(&d), ["ask", "advance", "advance", "halt"], "{v}");
    let halt = &v["decisions"][3];
    assert_eq!(halt["failing"], json!(["p99-vs-stable"]), "{halt}");
    // The window's p99 passes 1.5x stable's within a few minutes of 10:20; sustained 5m.
    assert!((26..=29).contains(&d[3].0), "{v}");
    // Paused, not severe: nothing more happens, and the replay went on to the end.
    assert_eq!(v["end"]["status"], "paused");
    assert_eq!(v["end"]["at"], "2026-11-30T12:09:00+00:00");
}

#[test]
fn sparse_traffic_is_judged_on_the_stage_and_never_widened_on_thin_windows() {
    // At 1 req/s the trace's rounding gives the canary 39 errors in 1,978 requests (2.0 %)
    // against stable's 43 in 5,836 (0.74 %): worse, but never in one window.
    let cli = Cli::new();
    let v = json_of(&cli, "sparse-traffic", &[]);
    let d = decisions(&v);
    // The canary users' own traffic already looks worse: nobody is asked to widen, and the
    // stage's requests show it before a random user is exposed (5 errors in 31).
    assert_eq!(kinds(&d), ["rollback"], "{v}");
    assert_eq!(d[0].0, 15, "{v}");
    assert_eq!(v["decisions"][0]["percent"], 0);
    assert!(
        v["decisions"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("canary error rate this stage 16.13 %"),
        "{v}"
    );
    assert_eq!(v["end"]["exposure"]["percentMinutes"], 0.0, "{v}");

    // Judged on windows, nothing is ever shown: each move is a yes to a question asked at
    // that minute, never the driver's own.
    cli.write_file("window.toml", "[gates]\njudgment = \"window\"\n");
    let gates = cli.path("window.toml");
    let gates = gates.to_str().unwrap();
    let v = json_of(&cli, "sparse-traffic", &["--gates", gates]);
    let d = decisions(&v);
    assert!(!d.is_empty(), "{v}");
    for (i, (at, kind)) in d.iter().enumerate() {
        if kind == "advance" {
            assert_eq!(d[i - 1], (*at, "ask".to_string()), "{v}");
        }
    }
    // Past the canary users, each question says the evidence stayed short, and when.
    let asks: Vec<&str> = v["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "ask")
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(asks[0].contains("your own testing"), "{asks:?}");
    assert!(asks.len() >= 2, "{asks:?}");
    for ask in &asks[1..] {
        assert!(
            ask.contains("still not enough evidence 30m00s past the stage's minimum time"),
            "{ask}"
        );
    }

    // A careful operator keeps waiting when asked on thin evidence: held at 5 %.
    let careful = json_of(
        &cli,
        "sparse-traffic",
        &["--gates", gates, "--asks", "careful"],
    );
    let d = decisions(&careful);
    assert_eq!(
        kinds(&d),
        ["ask", "advance", "ask", "declined"],
        "{careful}"
    );
    assert_eq!(careful["end"]["percent"], 5);
    assert_eq!(careful["asks"], "careful");
}

#[test]
fn a_sparse_latency_regression_is_caught_on_the_stages_slow_requests() {
    // 10 req/s with the p99 doubled: the canary users' 6 requests a minute never give a
    // window the 100 a p99 needs, but 6 of their first 36 went over stable's recorded p99
    // against 1 % of stable's: halted at once, before a random user gets the canary.
    let cli = Cli::new();
    let v = json_of(&cli, "sparse-latency-regression", &[]);
    let d = decisions(&v);
    assert_eq!(d, [(6, "halt".to_string())], "{v}");
    assert_eq!(v["decisions"][0]["percent"], 0);
    let reason = v["decisions"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "canary requests over stable's p99 (200 ms): 16.67 % (6/36) vs stable 1.01 % this stage: slower"
        ),
        "{reason}"
    );
    assert_eq!(v["end"]["exposure"]["percentMinutes"], 0.0, "{v}");

    // The same minutes without the counts: only the window's p99 can tell, at 5 % and
    // after breach_for, with random users exposed.
    let text = std::fs::read_to_string(trace_path("sparse-latency-regression")).unwrap();
    let mut plain: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    plain[0]["rollout"]
        .as_object_mut()
        .unwrap()
        .remove("stableP99Ms");
    for line in &mut plain[1..] {
        line.as_object_mut().unwrap().remove("slow");
    }
    let plain: Vec<String> = plain.iter().map(Value::to_string).collect();
    cli.write_file("plain.jsonl", &plain.join("\n"));
    let path = cli.path("plain.jsonl");
    let ran = cli.exec(&["backtest", "--trace", path.to_str().unwrap(), "--json"]);
    assert!(ran.success(), "{ran}");
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    let d = decisions(&v);
    let (at, kind) = d.last().unwrap();
    assert_eq!(kind, "halt", "{v}");
    assert!(*at > 10, "{v}");
    let last = v["decisions"].as_array().unwrap().last().unwrap();
    assert_eq!(last["percent"], 5, "{v}");
    assert!(
        last["reason"].as_str().unwrap().contains("canary p99"),
        "{v}"
    );
    assert!(v["end"]["exposure"]["percentMinutes"].as_f64().unwrap() > 0.0);
}

#[test]
fn missing_canary_minutes_hold_until_data_is_back() {
    let v = json_of(&Cli::new(), "missing-data", &[]);
    let d = decisions(&v);
    // Into 5 % at 10:05; 25 % was due at 10:15, but from 10:11 the newest canary minute
    // (10:07) is stale: held (never asked about: an outage is not thin evidence) until
    // the first canary minute back at 10:40.
    assert_eq!(
        d[..2],
        [(5, "ask".to_string()), (5, "advance".to_string())],
        "{v}"
    );
    assert_eq!(d[2], (40, "advance".to_string()), "{v}");
    assert_eq!(v["decisions"][2]["to"]["percent"], 25);
}

#[test]
fn a_declined_ask_holds_the_stage() {
    let v = json_of(&Cli::new(), "healthy", &["--decline-asks"]);
    assert_eq!(kinds(&decisions(&v)), ["ask", "declined"], "{v}");
    // No to the canary users' question: random users never get the new version.
    assert_eq!(v["end"]["percent"], 0);
    assert_eq!(v["asks"], "no");
    assert_eq!(json_of(&Cli::new(), "healthy", &["--asks", "no"]), v);
}

#[test]
fn other_plans_and_gates_on_the_same_data() {
    let cli = Cli::new();
    // Stricter latency: the healthy trace's p99 (about 200 ms) fails an absolute 150 ms gate.
    cli.write_file("gates.toml", "[gates]\nmax_p99_ms = 150\n");
    let gates = cli.path("gates.toml");
    let v = json_of(&cli, "healthy", &["--gates", gates.to_str().unwrap()]);
    assert_eq!(kinds(&decisions(&v)), ["halt"], "{v}");
    assert!(v["gates"].as_str().unwrap().contains("gates.toml"));

    let v = json_of(&cli, "healthy", &["--plan", "cohorts"]);
    assert_eq!(v["plan"][0]["name"], "internal");
    // The cohorts plan starts in 'internal' (0.5 %) for an hour; 'friendly' asks first.
    let d = decisions(&v);
    assert_eq!(kinds(&d), ["ask", "advance"], "{v}");
    assert_eq!(d[0].0, 60, "{v}");

    cli.write_file("bad-gates.toml", "[gates]\nmax_error_rate = 3.0\n");
    let bad = cli.path("bad-gates.toml");
    let ran = backtest(&cli, "healthy", &["--gates", bad.to_str().unwrap()]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("gates.max_error_rate"), "{ran}");
}

#[test]
fn a_bad_trace_line_is_named_by_file_and_line() {
    let cli = Cli::new();
    let mut text = traces().remove(0).1;
    text.push_str(
        "{\"time\":\"2026-11-30T12:10:00Z\",\"side\":\"canary\",\"requests\":5,\"errors\":9}\n",
    );
    cli.write_file("bad.jsonl", &text);
    let path = cli.path("bad.jsonl");
    let ran = cli.exec(&["backtest", "--trace", path.to_str().unwrap()]);
    assert_eq!(ran.code, Some(2), "{ran}");
    let line = text.lines().count();
    assert!(
        ran.stderr
            .contains(&format!("bad.jsonl:{line}: errors 9 > requests 5")),
        "{ran}"
    );
    let ran = cli.exec(&["backtest"]);
    assert_eq!(ran.code, Some(2), "{ran}");
}

#[test]
fn a_report_picture_of_the_replay() {
    let cli = Cli::new();
    let out = cli.path("replay.svg");
    let ran = backtest(
        &cli,
        "error-regression",
        &["--report", out.to_str().unwrap()],
    );
    assert!(ran.success(), "{ran}");
    let svg = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("checkout"), "{text}");
    assert!(
        text.to_lowercase().contains("rollback") || text.contains("rolled"),
        "{text}"
    );
}

#[test]
fn a_rollout_s_own_history_is_replayed_from_its_metrics_source() {
    let cli = Cli::new();
    let config = cli.write_file("config.toml", "[metrics]\nkind = \"simulator\"\n");
    let config = config.to_str().unwrap();
    // Two canary users send 1 req/s between them: enough for a verdict in a 5m window.
    cli.ok(&[
        "--config",
        config,
        "create",
        "web",
        "--version",
        "v2",
        "--canary-user",
        "a",
        "--canary-user",
        "b",
    ]);
    // Fixed times (before the rollout existed: its first state), so the simulator's traffic
    // is the same on every run.
    let period = [
        "--from",
        "2026-01-10T10:00:00Z",
        "--to",
        "2026-01-10T12:30:00Z",
    ];
    let ran = cli.exec(
        &[
            &["--config", config, "backtest", "web", "--json"][..],
            &period,
        ]
        .concat(),
    );
    assert!(ran.success(), "{ran}");
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert!(
        v["source"]
            .as_str()
            .unwrap()
            .starts_with("history of simulator"),
        "{v}"
    );
    assert_eq!(
        kinds(&decisions(&v)),
        [
            "ask", "advance", "advance", "advance", "ask", "advance", "complete"
        ],
        "{v}"
    );
    // The traffic was served at the rollout's first stage throughout: said, not scaled.
    assert_eq!(v["recordedPercentages"][0]["percent"], 0, "{v}");
    assert_eq!(v["recordedPercentages"].as_array().unwrap().len(), 1, "{v}");

    // Another plan on the same history: the tiers plan's first stage lasts 48 hours.
    let ran = cli.exec(
        &[
            &[
                "--config", config, "backtest", "web", "--json", "--plan", "tiers",
            ][..],
            &period,
        ]
        .concat(),
    );
    assert!(ran.success(), "{ran}");
    let v: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(v["plan"][0]["name"], "internal", "{v}");
    assert_eq!(decisions(&v), vec![], "{v}");
    assert!(
        v["end"]["holding"].as_str().unwrap().starts_with("waiting"),
        "{v}"
    );

    let ran = cli.exec(&[
        "--config",
        config,
        "backtest",
        "web",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-10",
    ]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("at most 3000 minutes"), "{ran}");

    let ran = cli.exec(&[&["backtest", "web"][..], &period].concat());
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(ran.stderr.contains("metrics.kind = \"none\""), "{ran}");
}

#[test]
fn from_and_to_cut_the_trace() {
    let cli = Cli::new();
    // From 10:30 the window is all bad minutes: severe at once, sustained a minute later.
    let v = json_of(&cli, "error-regression", &["--from", "2026-11-30 10:30"]);
    assert_eq!(decisions(&v), vec![(31, "rollback".to_string())], "{v}");
    assert_eq!(v["from"], "2026-11-30T10:30:00+00:00");
    assert_eq!(
        v["recordedPercentages"],
        json!([
            {"from": "2026-11-30T10:30:00+00:00", "percent": 5},
            {"from": "2026-11-30T10:40:00+00:00", "percent": 25},
            {"from": "2026-11-30T11:40:00+00:00", "percent": 50},
        ]),
        "{v}"
    );
    // Up to 10:20 of the healthy trace: into 5 % and 25 %, then the period ends.
    let v = json_of(&cli, "healthy", &["--to", "2026-11-30T10:20:00Z"]);
    assert_eq!(kinds(&decisions(&v)), ["ask", "advance", "advance"], "{v}");
    assert_eq!(v["end"]["at"], "2026-11-30T10:20:00+00:00");
    let ran = backtest(&cli, "healthy", &["--from", "2026-12-01 00:00"]);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("leave nothing of"), "{ran}");
}
