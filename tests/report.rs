//! `rollout-tui report`: a scripted rollout (create, advance, pause, resume, rollback through
//! the real binary) on the local store with simulated traffic, drawn as SVG and PNG and
//! printed as text; a metrics gap drawn as a gap; bad input refused; a source that is down
//! leaves the report written with the gap named.
//!
//! The script runs on a demo store's clock (the world record in the store, as `demo` keeps
//! it): each step sets the simulated time first, so the rollout spans hours of minutes
//! without the test waiting, and the report samples the demo's simulator over them.

#[path = "support/cli_harness.rs"]
mod cli_harness;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cli_harness::{ACTOR, Cli, block_on};
use rollout_tui::demo::World;
use rollout_tui::domain::event::{Event, EventKind};
use rollout_tui::domain::health::{GateConfig, HealthSample, SideStats};
use rollout_tui::domain::rollout::Rollout;
use rollout_tui::metrics::{MetricsConfig, MetricsSource, SimClock, history_times};
use rollout_tui::report::{self, Period, chart};
use serde_json::json;

const ID: &str = "checkout";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 10, 0, 0).unwrap()
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::minutes(minutes)
}

/// Sets the store's demo clock to `sim` (running at real speed from now on).
fn set_clock(cli: &Cli, sim: DateTime<Utc>) {
    let store = cli.store();
    let world = World {
        clock: SimClock {
            anchor_wall: Utc::now(),
            anchor_sim: sim,
            rate: 1.0,
        },
        simulator: MetricsConfig::default().simulator,
        window_secs: 300,
        faults: Default::default(),
    };
    block_on(world.save(&store)).expect("save the demo world");
}

/// A rollout through its life: created at 10:00, 5 % at 10:15, 25 % at 10:40, paused at
/// 10:50, resumed at 11:10, rolled back at 11:40.
fn scripted() -> Cli {
    let cli = Cli::new();
    cli.write_file("config.toml", "[metrics]\nkind = \"simulator\"\n");
    // The store must exist before the clock can be recorded in it.
    cli.ok(&["create", "warmup", "--version", "v0"]);
    let steps: [(i64, Vec<&str>); 6] = [
        (0, vec!["create", ID, "--version", "v2", "--plan", "canary"]),
        (15, vec!["advance", ID]),
        (40, vec!["advance", ID]),
        (50, vec!["pause", ID, "--reason", "checking the p99"]),
        (70, vec!["resume", ID]),
        (100, vec!["rollback", ID, "--reason", "p99 regression"]),
    ];
    for (minute, args) in steps {
        set_clock(&cli, at(minute));
        let mut full = vec!["--config", "config.toml"];
        full.extend(args);
        cli.ok(&full);
    }
    cli
}

fn report_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--config", "config.toml", "report", ID];
    args.extend_from_slice(extra);
    args
}

fn color_of(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// The polylines drawn in `color`.
fn polylines(doc: &roxmltree::Document, color: plotters::style::RGBColor) -> usize {
    let want = color_of(color);
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case(&want))
        })
        .count()
}

fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_svg_holds_every_series_and_marker() {
    let cli = scripted();
    let out = cli.path("checkout.svg");
    let said = cli.ok(&report_args(&["--out", out.to_str().unwrap()]));
    assert!(said.contains("checkout.svg"), "{said}");
    let text = std::fs::read_to_string(&out).expect("the SVG is written");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");

    // One step line; stable answered all along, the canary from 5 % until the rollback.
    assert_eq!(polylines(&doc, chart::PERCENT_COLOR), 1);
    assert_eq!(polylines(&doc, chart::STABLE_ERROR_COLOR), 1);
    assert_eq!(polylines(&doc, chart::STABLE_P99_COLOR), 1);
    assert_eq!(polylines(&doc, chart::CANARY_ERROR_COLOR), 1);
    assert_eq!(polylines(&doc, chart::CANARY_P99_COLOR), 1);
    assert_eq!(polylines(&doc, chart::CANARY_SHARE_COLOR), 1);

    let texts = texts(&doc);
    let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
    for kind in [
        "create (operator)",
        "advance",
        "pause (halt)",
        "resume",
        "rollback",
    ] {
        let label = format!("{kind} · {ACTOR}");
        assert!(has(&label), "no marker '{label}' in {texts:#?}");
    }
    // Stage bands are named; the gate thresholds are drawn.
    for needle in [
        "canary users",
        "gate: canary error rate",
        "gate: canary p99",
    ] {
        assert!(has(needle), "no '{needle}' in {texts:#?}");
    }
    // The summary block: the outcome and the canary's quiet first stage.
    assert!(
        has("Outcome: rolled back by tester at 11:40: p99 regression"),
        "{texts:#?}"
    );
    assert!(has("canary: no traffic 10:00–10:15"), "{texts:#?}");
}

#[test]
fn the_png_decodes_at_the_size_asked_and_is_drawn() {
    let cli = scripted();
    let out = cli.path("checkout.png");
    cli.ok(&report_args(&[
        "--out",
        out.to_str().unwrap(),
        "--width",
        "900",
        "--height",
        "700",
    ]));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&out).expect("the PNG is written"),
    ));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    assert_eq!((info.width, info.height), (900, 700));
    let bytes = info.color_type.samples();
    let distinct: HashSet<&[u8]> = pixels[..info.buffer_size()].chunks(bytes).collect();
    // Lines in five colours, bands, anti-aliased text: far more than a blank picture's one.
    assert!(distinct.len() > 50, "{} distinct pixels", distinct.len());
}

#[test]
fn without_out_the_summary_is_printed() {
    let cli = scripted();
    let text = cli.ok(&report_args(&[]));
    for needle in [
        "Rollout checkout: version v2",
        "Outcome: rolled back by tester at 11:40: p99 regression",
        "Stages:",
        "10:00  canary users",
        "10:15  5%",
        "10:40  25%",
        "11:40  rolled back",
        "(rollback)",
        "Who did what:",
        "10:50  tester  pause (halt)",
        "reason: checking the p99",
        "11:10  tester  resume",
        "Exposure: ~",
    ] {
        assert!(text.contains(needle), "no '{needle}' in:\n{text}");
    }
    // The 25 % stage served about a quarter of the traffic to the canary.
    let line = text
        .lines()
        .find(|l| l.contains("10:40  25%"))
        .expect("the 25 % stage");
    let share: f64 = line
        .split("canary share ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a share in {line}"));
    assert!((20.0..30.0).contains(&share), "{line}");
}

#[test]
fn bad_input_is_refused_clearly() {
    let cli = scripted();
    let ran = cli.fail(&report_args(&["--out", "x.jpg"]));
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains(".svg or .png"), "{ran}");
    let ran = cli.fail(&report_args(&[
        "--from",
        "2026-01-10 11:00",
        "--to",
        "2026-01-10 10:00",
    ]));
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("--from must be before --to"), "{ran}");
    let ran = cli.fail(&report_args(&["--from", "yesterday"]));
    assert_eq!(ran.code, Some(2));
    let ran = cli.fail(&report_args(&["--out", "no-such-dir/x.svg"]));
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("cannot write"), "{ran}");
    assert!(!cli.path("no-such-dir").exists());
    let ran = cli.fail(&["--config", "config.toml", "report", "nope"]);
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("'nope' does not exist"), "{ran}");
}

#[test]
fn a_source_that_is_down_leaves_the_gap_named() {
    let cli = Cli::new();
    // Nothing listens on port 9 of the loopback: every query fails at once.
    cli.write_file(
        "config.toml",
        "[metrics]\nkind = \"prometheus\"\nendpoint = \"http://127.0.0.1:9\"\ntimeout = \"2s\"\nretries = 0\n",
    );
    cli.ok(&["--config", "config.toml", "create", ID, "--version", "v2"]);
    cli.ok(&[
        "--config",
        "config.toml",
        "set-revisions",
        ID,
        "--stable",
        "web-001",
        "--canary",
        "web-002",
    ]);
    let out = cli.path("down.svg");
    let ran = cli.exec(&report_args(&["--out", out.to_str().unwrap()]));
    assert!(ran.success(), "{ran}");
    assert!(ran.stderr.contains("warning: metrics"), "{ran}");
    let text = std::fs::read_to_string(&out).expect("the SVG is still written");
    let doc = roxmltree::Document::parse(&text).expect("the SVG is XML");
    let texts = texts(&doc);
    assert!(
        texts.iter().any(|t| t.contains("canary: no data")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.trim().starts_with("Warning: metrics")),
        "{texts:#?}"
    );
    assert_eq!(polylines(&doc, chart::STABLE_ERROR_COLOR), 0);
}

/// Both sides answer except the canary from 10:05 to 10:17.
struct Patchy;

#[async_trait]
impl MetricsSource for Patchy {
    fn describe(&self) -> String {
        "patchy test source".into()
    }

    async fn sample(&self, _rollout: &Rollout, now: DateTime<Utc>) -> HealthSample {
        let side = |p99: f64| SideStats {
            requests: 600,
            errors: 3,
            p50_ms: None,
            p75_ms: None,
            p95_ms: None,
            p99_ms: Some(p99),
            newest_point_at: Some(now),
        };
        let silent = now >= at(5) && now <= at(17);
        HealthSample {
            taken_at: now,
            window: std::time::Duration::from_secs(60),
            stable: Some(side(200.0)),
            canary: (!silent).then(|| side(230.0)),
            source_error: None,
            ingestion_delay: std::time::Duration::ZERO,
            stage: None,
        }
    }

    async fn history(
        &self,
        rollout: &Rollout,
        end: DateTime<Utc>,
        step: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        let mut out = Vec::new();
        for t in history_times(end, step, points) {
            out.push(self.sample(rollout, t).await);
        }
        Ok(out)
    }
}

fn patchy_rollout() -> (Rollout, Vec<Event>) {
    let doc = json!({
        "version": "v2",
        "status": "progressive",
        "rolloutPercentage": 10,
        "startedAt": at(0).to_rfc3339(),
        "stageEnteredAt": at(0).to_rfc3339(),
    });
    let fields = doc.as_object().unwrap().clone();
    let r = Rollout::from_fields("patchy", &fields).expect("a rollout");
    let created = Event {
        rollout_id: "patchy".into(),
        kind: EventKind::Create,
        actor: "alice".into(),
        at: at(0),
        before: serde_json::Value::Null,
        after: doc,
        reason: None,
        gate_report: None,
    };
    (r, vec![created])
}

#[test]
fn a_gap_in_metrics_is_drawn_as_a_gap() {
    let (r, events) = patchy_rollout();
    let source: Arc<dyn MetricsSource> = Arc::new(Patchy);
    let made = block_on(report::gather(
        r,
        events,
        Some(source),
        &GateConfig::default(),
        Period::default(),
        at(30),
    ))
    .expect("a report");
    let lines = made.summary_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.trim() == "canary: no data 10:05–10:17"),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("stable: no data")),
        "{lines:#?}"
    );
    let svg = chart::svg(&made, 1200, 900).expect("drawn");
    let doc = roxmltree::Document::parse(&svg).expect("XML");
    // Split in two on either side of the gap, never joined across it.
    assert_eq!(polylines(&doc, chart::CANARY_ERROR_COLOR), 2);
    assert_eq!(polylines(&doc, chart::CANARY_P99_COLOR), 2);
    assert_eq!(polylines(&doc, chart::STABLE_P99_COLOR), 1);
    assert!(
        texts(&doc)
            .iter()
            .any(|t| t.contains("canary: no data 10:05–10:17")),
        "the gap is named on the chart"
    );
}

#[test]
fn the_cockpit_writes_its_report_into_the_reports_directory() {
    let (r, events) = patchy_rollout();
    let dir = tempfile::tempdir().expect("a temp dir");
    let reports = dir.path().join("reports");
    let source: Arc<dyn MetricsSource> = Arc::new(Patchy);
    let written = block_on(report::write_to_dir(
        r,
        events,
        Some(source),
        &GateConfig::default(),
        at(30),
        reports.clone(),
    ))
    .expect("written");
    assert_eq!(written.path, reports.join("patchy-20260110-103000.svg"));
    assert_eq!(written.warnings, Vec::<String>::new());
    let text = std::fs::read_to_string(&written.path).expect("the SVG is there");
    roxmltree::Document::parse(&text).expect("the SVG is XML");
}

#[test]
fn each_minute_counts_in_the_one_stage_it_belongs_to() {
    let (r, mut events) = patchy_rollout();
    events.insert(
        0,
        Event {
            rollout_id: "patchy".into(),
            kind: EventKind::SetPercent,
            actor: "bob".into(),
            at: at(20),
            before: json!({"rolloutPercentage": 10}),
            after: json!({"rolloutPercentage": 20}),
            reason: None,
            gate_report: None,
        },
    );
    let r = Rollout {
        percentage: "20".parse().unwrap(),
        ..r
    };
    let source: Arc<dyn MetricsSource> = Arc::new(Patchy);
    let made = block_on(report::gather(
        r,
        events,
        Some(source),
        &GateConfig::default(),
        Period::default(),
        at(30),
    ))
    .expect("a report");
    let served: Vec<Option<f64>> = made.stages().iter().map(|s| s.canary_requests).collect();
    // 600 a minute: 10:00–10:04 and 10:18–10:19 in the first stage, 10:20–10:30 in the
    // second (the period's last minute included once).
    assert_eq!(served, [Some(7.0 * 600.0), Some(11.0 * 600.0)]);
}

#[test]
fn stored_text_reaches_the_picture_inert() {
    let (r, mut events) = patchy_rollout();
    events[0].actor = "eve<script>&\u{1b}[2J".into();
    let made = block_on(report::gather(
        r,
        events,
        None,
        &GateConfig::default(),
        Period::default(),
        at(30),
    ))
    .expect("a report");
    assert!(
        made.warnings
            .iter()
            .any(|w| w.contains("no metrics source")),
        "{:?}",
        made.warnings
    );
    let svg = chart::svg(&made, 1200, 900).expect("drawn");
    let doc = roxmltree::Document::parse(&svg).expect("still XML");
    let texts = texts(&doc);
    assert!(
        texts.iter().any(|t| t.contains("eve<script>&\\x1b[2J")),
        "{texts:#?}"
    );
    assert!(!svg.contains('\u{1b}'));
}
