//! The Prometheus source against a real Prometheus server scraping a loopback exporter with
//! known counters and histograms, plus request-shape and fault checks against a fake.

#[path = "support/http_fake.rs"]
mod http_fake;
#[path = "support/prometheus_server.rs"]
mod prometheus_server;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use http_fake::{FakeServer, Response};
use prometheus_server::PrometheusServer;
use rollout_tui::domain::health::{GateConfig, SideStats, Verdict, evaluate};
use rollout_tui::domain::rollout::Rollout;
use rollout_tui::metrics::{MetricsConfig, MetricsSource, build_source, sample_all};
use serde_json::json;

fn rollout(stable: &str, canary: &str) -> Rollout {
    rollout_named("web", Some(stable), Some(canary))
}

fn rollout_named(id: &str, stable: Option<&str>, canary: Option<&str>) -> Rollout {
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 25,
        "stableRevision": stable, "canaryRevision": canary,
    });
    Rollout::from_fields(id, doc.as_object().unwrap()).unwrap()
}

fn source(url: &str, extra: &str) -> std::sync::Arc<dyn MetricsSource> {
    let text = format!("kind = \"prometheus\"\nendpoint = \"{url}\"\n{extra}");
    let cfg: MetricsConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    build_source(&cfg).unwrap().unwrap()
}

/// One revision's traffic: requests and errors per second, and the cumulative share of
/// requests at or below each histogram bound (seconds).
struct Traffic {
    revision: &'static str,
    rps: f64,
    error_rps: f64,
    cumulative: [(f64, f64); 5],
}

const STABLE: Traffic = Traffic {
    revision: "web-00001",
    rps: 1000.0,
    error_rps: 10.0,
    cumulative: [
        (0.05, 0.30),
        (0.1, 0.70),
        (0.25, 0.90),
        (0.5, 0.98),
        (1.0, 1.0),
    ],
};
const CANARY: Traffic = Traffic {
    revision: "web-00002",
    rps: 200.0,
    error_rps: 20.0,
    cumulative: [
        (0.05, 0.10),
        (0.1, 0.40),
        (0.25, 0.80),
        (0.5, 0.93),
        (1.0, 0.995),
    ],
};

impl Traffic {
    /// The exposition text after `t` seconds: counters grow linearly, as whole requests.
    fn write(&self, out: &mut String, t: f64) {
        let n = |rate: f64| (rate * t).floor();
        let r = self.revision;
        let _ = writeln!(
            out,
            "http_requests_total{{revision=\"{r}\",code=\"200\"}} {}",
            n(self.rps - self.error_rps)
        );
        let _ = writeln!(
            out,
            "http_requests_total{{revision=\"{r}\",code=\"500\"}} {}",
            n(self.error_rps)
        );
        for (le, share) in self.cumulative {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{revision=\"{r}\",le=\"{le}\"}} {}",
                n(self.rps * share)
            );
        }
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{revision=\"{r}\",le=\"+Inf\"}} {}",
            n(self.rps)
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_count{{revision=\"{r}\"}} {}",
            n(self.rps)
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_sum{{revision=\"{r}\"}} {}",
            n(self.rps) * 0.1
        );
    }

    /// The quantile as `histogram_quantile` defines it: linear inside the bucket, the
    /// first bucket starting at 0.
    fn quantile_ms(&self, q: f64) -> f64 {
        let mut lower = (0.0, 0.0);
        for (le, share) in self.cumulative {
            if share >= q {
                return 1000.0 * (lower.0 + (le - lower.0) * (q - lower.1) / (share - lower.1));
            }
            lower = (le, share);
        }
        1000.0 * lower.0
    }
}

fn exporter() -> FakeServer {
    let started = Instant::now();
    FakeServer::start(move |req| {
        if req.path != "/metrics" {
            return Response::text(404, "not found");
        }
        let t = started.elapsed().as_secs_f64();
        let mut out = String::from(
            "# TYPE http_requests_total counter\n# TYPE http_request_duration_seconds histogram\n",
        );
        STABLE.write(&mut out, t);
        CANARY.write(&mut out, t);
        Response::text(200, out)
    })
}

/// Tolerances: `increase()` extrapolates the first and last sample in the window to its
/// edges, which is exact for linearly growing counters when scrapes are regular, so what is
/// left is the whole-request flooring (±1 per end) and scrape jitter (a few ms over a 10 s
/// window). Counts get 3 %, error rates 0.5 points, and quantiles 2.5 %: every bucket rate
/// is the same share of the total, so histogram_quantile's interpolation reproduces the
/// quantiles below up to that flooring, which matters most in the thinnest bucket (stable's
/// p99 sits in one holding 2 % of 10 000 requests: ±2 requests there move it by ~1.3 %).
/// No quantile sits on a bucket bound, where a one-request error could jump buckets.
fn check_side(s: &SideStats, truth: &Traffic, window_s: f64) {
    let near = |got: f64, want: f64, rel: f64| (got - want).abs() <= want * rel + 1.0;
    assert!(
        near(s.requests as f64, truth.rps * window_s, 0.03),
        "{} requests: {s:?}",
        truth.revision
    );
    assert!(
        near(s.errors as f64, truth.error_rps * window_s, 0.05),
        "{} errors: {s:?}",
        truth.revision
    );
    let rate = s.error_rate().unwrap();
    assert!(
        (rate - truth.error_rps / truth.rps).abs() < 0.005,
        "{} error rate {rate}",
        truth.revision
    );
    for (q, got) in [
        (0.5, s.p50_ms),
        (0.75, s.p75_ms),
        (0.95, s.p95_ms),
        (0.99, s.p99_ms),
    ] {
        let want = truth.quantile_ms(q);
        let got = got.unwrap_or_else(|| panic!("{} p{q} missing: {s:?}", truth.revision));
        assert!(
            (got - want).abs() <= want * 0.025,
            "{} q{q}: {got} ms, want {want} ms",
            truth.revision
        );
    }
    let age = Utc::now() - s.newest_point_at.expect("newest point");
    assert!(age.num_seconds() < 5, "newest point {age} old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_gives_the_known_truth() {
    let Some(binary) = prometheus_server::binary_or_skip() else {
        return;
    };
    let exporter = exporter();
    let prom = PrometheusServer::start(&binary, &exporter.addr.to_string());
    // Wait for the first scrape, then for a full window of samples.
    let waited = Instant::now();
    while !exporter.requests().iter().any(|r| r.path == "/metrics") {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "never scraped\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let window = 10.0;
    tokio::time::sleep(Duration::from_secs_f64(window + 3.0)).await;

    let src = source(&prom.url(), "window = \"10s\"");
    let r = rollout(STABLE.revision, CANARY.revision);
    let s = src.sample(&r, Utc::now()).await;
    assert_eq!(s.source_error, None, "{s:?}\n{}", prom.log());
    check_side(s.stable.as_ref().unwrap(), &STABLE, window);
    check_side(s.canary.as_ref().unwrap(), &CANARY, window);
    // A 10 % canary error rate against 1 % fails the gates.
    let gates = GateConfig {
        min_requests: 100,
        ..GateConfig::default()
    };
    let report = evaluate(&s, &gates, Utc::now());
    assert_eq!(
        report.gate("error-rate").unwrap().verdict,
        Verdict::Fail,
        "{report:#?}"
    );
    assert_eq!(
        report.gate("error-rate-vs-stable").unwrap().verdict,
        Verdict::Fail
    );

    // Stage totals: each side's requests and errors since the stage began, 12 s ago.
    let now = Utc::now();
    let entered = now - chrono::Duration::seconds(12);
    let staged_doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 25,
        "stableRevision": STABLE.revision, "canaryRevision": CANARY.revision,
        "stageEnteredAt": entered.to_rfc3339(),
    });
    let staged = Rollout::from_fields("web", staged_doc.as_object().unwrap()).unwrap();
    let s = src.sample(&staged, now).await;
    let totals = s
        .stage
        .clone()
        .unwrap_or_else(|| panic!("{s:?}\n{}", prom.log()));
    assert_eq!(totals.since.timestamp(), entered.timestamp());
    let near = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.05 + 1.0;
    assert!(
        near(totals.stable.requests, STABLE.rps * 12.0),
        "{totals:?}"
    );
    assert!(
        near(totals.canary.requests, CANARY.rps * 12.0),
        "{totals:?}"
    );
    assert!(
        near(totals.canary.errors, CANARY.error_rps * 12.0),
        "{totals:?}"
    );
    // Requests over stable's p99 this stage, from the buckets by le: stable's p99 lies in
    // the bucket ending at 1 s (98 % of its requests are within 0.5 s), which holds all of
    // stable's requests and 99.5 % of the canary's.
    let slow = totals
        .slow
        .unwrap_or_else(|| panic!("no slow counts: {totals:?}\n{}", prom.log()));
    assert_eq!(slow.threshold_ms, 1000.0, "{slow:?}");
    assert!(slow.stable <= 1, "{slow:?}");
    assert!(near(slow.canary, CANARY.rps * 0.005 * 12.0), "{slow:?}");
    // Judged on the stage: the sequential tests name the stage's counts.
    let report = evaluate(&s, &GateConfig::default(), now);
    let relative = report.gate("error-rate-vs-stable").unwrap();
    assert!(relative.detail.contains("this stage"), "{relative:?}");
    assert_eq!(relative.verdict, Verdict::Fail, "{relative:?}");
    let latency = report.gate("p99-vs-stable").unwrap();
    assert!(
        latency
            .detail
            .contains("canary requests over stable's p99 (1000 ms)"),
        "{latency:?}"
    );
    // The window's p99 ratio (1.28) is within its limit: the stage's count decides.
    assert!(
        latency
            .detail
            .starts_with("canary requests over stable's p99"),
        "{latency:?}"
    );
    assert!(
        latency.detail.contains(": slower (sequential test"),
        "{latency:?}"
    );
    assert_eq!(latency.verdict, Verdict::Fail, "{latency:?}");
    // Buckets not kept apart by le cannot be read as a histogram: the counts stay, the
    // latency is left to the window.
    let unbucketed = source(
        &prom.url(),
        "[prometheus]\nbuckets = 'sum(increase(http_request_duration_seconds_bucket{revision=\"{revision}\"}[{window}]))'",
    );
    let s = unbucketed.sample(&staged, now).await;
    let totals = s.stage.clone().expect("stage totals without buckets");
    assert!(
        near(totals.canary.requests, CANARY.rps * 12.0),
        "{totals:?}"
    );
    assert_eq!(totals.slow, None);
    let latency = evaluate(&s, &GateConfig::default(), now);
    let latency = latency.gate("p99-vs-stable").unwrap();
    assert!(!latency.detail.contains("over stable's p99"), "{latency:?}");
    // Without a stage start there is nothing to count from: the window is judged, and said.
    assert_eq!(src.sample(&r, now).await.stage, None);

    // The sparklines' backfill: range queries give the same numbers at each step.
    let end = Utc::now();
    let past = src
        .history(&r, end, Duration::from_secs(1), 3)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prom.log()));
    assert_eq!(past.len(), 3);
    for (k, h) in past.iter().enumerate() {
        let want_at = end - chrono::Duration::seconds(2 - k as i64);
        assert_eq!(h.taken_at.timestamp_millis(), want_at.timestamp_millis());
        let (st, ca) = (h.stable.as_ref().unwrap(), h.canary.as_ref().unwrap());
        let near = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.03 + 1.0;
        assert!(near(st.requests, STABLE.rps * window), "{k}: {st:?}");
        assert!(near(ca.requests, CANARY.rps * window), "{k}: {ca:?}");
        assert!(near(ca.errors, CANARY.error_rps * window), "{k}: {ca:?}");
        let p99 = ca.p99_ms.expect("canary p99");
        let want = CANARY.quantile_ms(0.99);
        assert!(
            (p99 - want).abs() <= want * 0.025,
            "{k}: p99 {p99}, want {want}"
        );
    }

    // A revision Prometheus has never seen: no data, inconclusive, never zeros.
    let s = src
        .sample(&rollout(STABLE.revision, "web-00003"), Utc::now())
        .await;
    assert!(s.stable.is_some());
    assert!(s.canary.is_none());
    assert!(
        s.source_error
            .as_deref()
            .unwrap()
            .contains("no data for revision web-00003"),
        "{s:?}"
    );
    assert_eq!(
        evaluate(&s, &gates, Utc::now()).verdict,
        Verdict::Inconclusive
    );

    // A query Prometheus rejects is reported with its reason.
    let bad = source(
        &prom.url(),
        "[prometheus]\nrequests = 'sum(rate(http_requests_total{revision=\"{revision}\"}))'",
    );
    let s = bad.sample(&r, Utc::now()).await;
    let e = s.source_error.unwrap();
    assert!(e.contains("400") || e.contains("parse error"), "{e}");
}

/// 50 rollouts: five stables shared among them, a canary each; one canary Prometheus never
/// saw and one rollout without a canary yet.
fn fifty_rollouts() -> Vec<Rollout> {
    (0..50)
        .map(|k| {
            let stable = format!("web-s{}", k % 5);
            let canary = match k {
                48 => Some("web-never-seen".to_string()),
                49 => None,
                _ => Some(format!("web-c{k}")),
            };
            rollout_named(&format!("r{k}"), Some(&stable), canary.as_deref())
        })
        .collect()
}

/// An exporter for every revision of `fifty_rollouts` but the unseen one, each with its
/// own rates and latency shape.
fn fleet_exporter() -> FakeServer {
    let started = Instant::now();
    let revisions: Vec<String> = (0..5)
        .map(|i| format!("web-s{i}"))
        .chain((0..48).map(|k| format!("web-c{k}")))
        .collect();
    FakeServer::start(move |req| {
        if req.path != "/metrics" {
            return Response::text(404, "not found");
        }
        let t = started.elapsed().as_secs_f64();
        let mut out = String::from(
            "# TYPE http_requests_total counter\n# TYPE http_request_duration_seconds histogram\n",
        );
        for (i, r) in revisions.iter().enumerate() {
            let f = i as f64;
            let n = |rate: f64| (rate * t).floor();
            let (rps, errors) = (50.0 + 3.0 * f, 1.0 + f % 4.0);
            let _ = writeln!(
                out,
                "http_requests_total{{revision=\"{r}\",code=\"200\"}} {}",
                n(rps - errors)
            );
            let _ = writeln!(
                out,
                "http_requests_total{{revision=\"{r}\",code=\"500\"}} {}",
                n(errors)
            );
            let shares = [0.2 + (f % 5.0) * 0.05, 0.6, 0.85, 0.97, 1.0];
            for (le, share) in [0.05, 0.1, 0.25, 0.5, 1.0].iter().zip(shares) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{revision=\"{r}\",le=\"{le}\"}} {}",
                    n(rps * share)
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{revision=\"{r}\",le=\"+Inf\"}} {}",
                n(rps)
            );
        }
        Response::text(200, out)
    })
}

/// Waits until the server's query log holds `n` queries, then checks it holds no more.
async fn logged(prom: &PrometheusServer, n: usize) -> Vec<String> {
    let waited = Instant::now();
    loop {
        let q = prom.queries();
        if q.len() >= n {
            assert_eq!(q.len(), n, "{q:#?}");
            return q;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "{} of {n} queries logged\n{}",
            q.len(),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rollouts_cost_seven_queries_with_the_same_answers() {
    let Some(binary) = prometheus_server::binary_or_skip() else {
        return;
    };
    let exporter = fleet_exporter();
    let prom = PrometheusServer::start(&binary, &exporter.addr.to_string());
    // Three scrapes: every revision has a rate, a histogram and a newest point.
    let waited = Instant::now();
    while exporter
        .requests()
        .iter()
        .filter(|r| r.path == "/metrics")
        .count()
        < 4
    {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "not scraped\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let src = source(&prom.url(), "window = \"10s\"");
    assert!(
        src.describe()
            .ends_with("; one query per template for all rollouts)"),
        "{}",
        src.describe()
    );
    let rollouts = fifty_rollouts();
    // In the past, so scrapes landing meanwhile change no answer.
    let now = Utc::now() - chrono::Duration::seconds(2);

    // Each rollout on its own: 7 queries per side it has.
    let mut alone = Vec::new();
    for r in &rollouts {
        alone.push(src.sample(r, now).await);
    }
    let per_rollout = logged(&prom, 49 * 14 + 7).await.len();
    assert!(
        alone[0].source_error.is_none(),
        "{:?}\n{}",
        alone[0],
        prom.log()
    );
    assert!(alone[0].canary.as_ref().unwrap().p99_ms.is_some());
    assert!(alone[47].canary.is_some());
    assert!(
        alone[48]
            .source_error
            .as_deref()
            .unwrap()
            .contains("canary: no data for revision web-never-seen")
    );
    assert!(
        alone[49]
            .source_error
            .as_deref()
            .unwrap()
            .contains("no canaryRevision")
    );

    // Batched: 1 rollout and 50 rollouts both cost one query per template, and every
    // rollout's sample is exactly what it got alone.
    let one = src.sample_many(&rollouts[..1], now).await;
    logged(&prom, per_rollout + 7).await;
    assert_eq!(one, alone[..1]);
    let all = sample_all(src.clone(), &rollouts, now).await;
    let queries = logged(&prom, per_rollout + 14).await;
    assert_eq!(all, alone);
    for q in &queries[per_rollout + 7..] {
        assert!(
            q.contains(r#"revision=~"web-s0|web-c0|web-s1|web-c1|"#) && q.contains("by ("),
            "{q}"
        );
    }
}

#[tokio::test]
async fn templates_that_cannot_be_grouped_are_asked_per_rollout() {
    let server = FakeServer::start(|_| {
        Response::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1772366400,"5"]}]}}"#,
        )
    });
    let src = source(
        &server.url(),
        "[prometheus]\nrequests = 'sum(increase(x{revision=\"{revision}\",side=\"{side}\"}[{window}]))'",
    );
    assert!(
        src.describe()
            .ends_with("; queries per rollout, requests template: uses {side})"),
        "{}",
        src.describe()
    );
    let rollouts: Vec<Rollout> = (0..3)
        .map(|k| rollout_named(&format!("r{k}"), Some("s-1"), Some(&format!("c-{k}"))))
        .collect();
    let now = chrono::DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let all = src.sample_many(&rollouts, now).await;
    assert_eq!(server.requests().len(), 3 * 14);
    for s in &all {
        assert_eq!(s.source_error, None);
        assert_eq!(s.canary.as_ref().unwrap().requests, 5);
    }
}

#[tokio::test]
async fn long_revision_lists_are_split_over_queries() {
    // Each query answers every revision it asked for.
    let server = FakeServer::start(|req| {
        let q = req.param("query").unwrap_or_default();
        let Some((_, rest)) = q.split_once("revision=~\"") else {
            return Response::json(400, r#"{"status":"error","error":"not grouped"}"#);
        };
        let asked = rest.split_once('"').map_or(rest, |(a, _)| a);
        let result: Vec<_> = asked
            .split('|')
            .map(|r| json!({"metric": {"revision": r}, "value": [1772366400, "7"]}))
            .collect();
        Response::json(
            200,
            json!({"status": "success", "data": {"resultType": "vector", "result": result}})
                .to_string(),
        )
    });
    let src = source(&server.url(), "");
    // 40 rollouts of two 100-character revisions: 8,080 characters of names.
    let name = |k: usize, side: &str| format!("{side}{k:03}-{}", "x".repeat(95));
    let rollouts: Vec<Rollout> = (0..40)
        .map(|k| rollout_named(&format!("r{k}"), Some(&name(k, "s")), Some(&name(k, "c"))))
        .collect();
    let now = chrono::DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let all = src.sample_many(&rollouts, now).await;
    let chunks = 8_080usize.div_ceil(rollout_tui::metrics::prometheus::GROUP_NAME_CHARS);
    assert_eq!(chunks, 3);
    assert_eq!(server.requests().len(), 7 * chunks);
    for s in &all {
        assert_eq!(s.source_error, None, "{s:?}");
        assert_eq!(
            (
                s.stable.as_ref().unwrap().requests,
                s.canary.as_ref().unwrap().errors
            ),
            (7, 7)
        );
    }
    for r in server.requests() {
        assert!(r.param("query").unwrap().len() < 4_500, "{r:?}");
    }
}

#[tokio::test]
async fn queries_are_filled_and_odd_answers_handled() {
    let vector = |v: &str| {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1772366400.5,"{v}"]}}]}}}}"#
        )
    };
    let server = FakeServer::start(move |req| {
        let q = req.param("query").unwrap_or_default();
        let body = if q.starts_with("requests") {
            vector("1234.6")
        } else if q.starts_with("errors") {
            vector("12")
        } else if q.starts_with("newest") {
            vector("1772366390.25")
        } else if q.contains("0.99") {
            vector("NaN")
        } else {
            vector("87.5")
        };
        Response::json(200, body)
    });
    let extra = "window = \"2m\"\n[prometheus]\nrequests = 'requests{r=\"{revision}\",s=\"{side}\"}[{window}]'\n\
                 errors = 'errors{r=\"{revision}\"}'\nlatency = 'latency{r=\"{revision}\"} {quantile}'\nnewest = 'newest{r=\"{revision}\"}'";
    let src = source(&server.url(), extra);
    let now = chrono::DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let s = src.sample(&rollout("a\"b", "c-2"), now).await;
    assert_eq!(s.source_error, None);
    let c = s.canary.unwrap();
    assert_eq!((c.requests, c.errors), (1235, 12));
    assert_eq!(
        (c.p50_ms, c.p95_ms, c.p99_ms),
        (Some(87.5), Some(87.5), None),
        "NaN is unknown"
    );
    assert_eq!(
        c.newest_point_at.unwrap().timestamp_millis(),
        1_772_366_390_250
    );
    let queries: Vec<String> = server
        .requests()
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/api/v1/query");
            assert_eq!(r.param("time"), Some("1772366400.000"));
            assert_eq!(r.header("authorization"), None);
            r.param("query").unwrap().to_string()
        })
        .collect();
    assert_eq!(queries.len(), 14, "7 per side");
    for want in [
        r#"requests{r="c-2",s="canary"}[2m]"#,
        r#"requests{r="a\"b",s="stable"}[2m]"#,
        r#"latency{r="c-2"} 0.75"#,
        r#"newest{r="c-2"}"#,
    ] {
        assert!(
            queries.iter().any(|q| q == want),
            "{want} not in {queries:#?}"
        );
    }
}

#[tokio::test]
async fn empty_results_and_a_dead_server_are_inconclusive() {
    let server = FakeServer::start(|_| {
        Response::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
    });
    let s = source(&server.url(), "")
        .sample(&rollout("s-1", "s-2"), Utc::now())
        .await;
    assert!(s.stable.is_none() && s.canary.is_none());
    let e = s.source_error.unwrap();
    assert!(
        e.contains("stable: no data for revision s-1")
            && e.contains("canary: no data for revision s-2"),
        "{e}"
    );

    let port = prometheus_server::free_port();
    let s = source(&format!("http://127.0.0.1:{port}"), "retries = 1")
        .sample(&rollout("s-1", "s-2"), Utc::now())
        .await;
    let e = s.source_error.clone().unwrap();
    assert!(
        e.contains("cannot reach 127.0.0.1") && e.contains("after 2 tries"),
        "{e}"
    );
    assert_eq!(
        evaluate(&s, &GateConfig::default(), Utc::now()).verdict,
        Verdict::Inconclusive
    );
}

#[tokio::test]
async fn history_uses_query_range_and_refuses_unaggregated_series() {
    let matrix = |values: &str| {
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{values}]}}]}}}}"#
        )
    };
    let server = FakeServer::start(move |req| {
        let q = req.param("query").unwrap_or_default();
        let body = if q.contains("bad") {
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[]},{"metric":{"a":"2"},"values":[]}]}}"#.to_string()
        } else if q.starts_with("requests") {
            matrix(r#"[1772366340,"100"],[1772366370,"130.4"],[1772366400,"160"]"#)
        } else if q.starts_with("errors") {
            // No point at the first step: that step has no side, never zeros.
            matrix(r#"[1772366370,"2"],[1772366400,"3"]"#)
        } else {
            matrix(r#"[1772366340,"250"],[1772366370,"NaN"],[1772366400,"260"]"#)
        };
        Response::json(200, body)
    });
    let extra = "window = \"1m\"\n[prometheus]\nrequests = 'requests{r=\"{revision}\"}'\nerrors = 'errors{r=\"{revision}\"}'\nlatency = 'latency{r=\"{revision}\"} {quantile}'";
    let src = source(&server.url(), extra);
    let end = chrono::DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let past = src
        .history(&rollout("s-1", "c-1"), end, Duration::from_secs(30), 3)
        .await
        .unwrap();
    let canary: Vec<_> = past
        .iter()
        .map(|h| h.canary.as_ref().map(|c| (c.requests, c.errors, c.p99_ms)))
        .collect();
    assert_eq!(
        canary,
        [None, Some((130, 2, None)), Some((160, 3, Some(260.0)))]
    );
    assert_eq!(past[2].taken_at, end);
    for r in server.requests() {
        assert_eq!(r.path, "/api/v1/query_range");
        assert_eq!(r.param("start"), Some("1772366340.000"));
        assert_eq!(r.param("end"), Some("1772366400.000"));
        assert_eq!(r.param("step"), Some("30.000"));
    }
    assert_eq!(server.requests().len(), 6, "requests, errors, p99 per side");

    let bad = source(
        &server.url(),
        "[prometheus]\nrequests = 'bad{r=\"{revision}\"}'",
    );
    let e = bad
        .history(&rollout("s-1", "c-1"), end, Duration::from_secs(30), 3)
        .await
        .unwrap_err();
    assert!(e.contains("2 series; aggregate it"), "{e}");
}

#[tokio::test]
async fn huge_answers_are_cut_off_and_bounded() {
    // An instant query whose answer never ends: read up to the cap, then inconclusive.
    let element = r#"{"metric":{"revision":"x"},"value":[1772366400,"1"]},"#.repeat(64);
    let times = (32 << 20) / element.len();
    let server = FakeServer::start(move |_| {
        Response::streamed(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":["#,
            element.clone(),
            times,
        )
    });
    let src = source(&server.url(), "max_response_bytes = 65536\nretries = 0");
    let s = src.sample(&rollout("s-1", "c-1"), Utc::now()).await;
    let e = s.source_error.clone().unwrap_or_default();
    assert!(
        e.contains("larger than the 64 KiB limit (metrics.max_response_bytes)"),
        "{e}"
    );
    assert!(s.stable.is_none() && s.canary.is_none());
    assert_eq!(
        evaluate(&s, &GateConfig::default(), Utc::now()).verdict,
        Verdict::Inconclusive
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.answers_done() < server.requests().len() {
        assert!(
            Instant::now() < deadline,
            "the server never stopped writing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let offered = server.requests().len() * (32 << 20);
    let sent = server.body_bytes_sent();
    assert!(
        sent < offered / 4,
        "{sent} of {offered} bytes accepted: the client read far past its cap"
    );

    // A vector of 100,000 series within the cap is refused by count; only the first
    // elements are built.
    let many = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        vec![r#"{"metric":{},"value":[1,"1"]}"#; 100_000].join(",")
    );
    let server = FakeServer::start(move |_| Response::json(200, many.clone()));
    let s = source(&server.url(), "max_response_bytes = 8388608")
        .sample(&rollout("s-1", "c-1"), Utc::now())
        .await;
    let e = s.source_error.unwrap_or_default();
    assert!(e.contains("returned 100000 series; aggregate it"), "{e}");
}

#[tokio::test]
async fn range_answers_with_absurd_point_counts_are_refused() {
    // Asked for 3 points, answered with 20,000: more than Prometheus itself would send.
    let values = (0..20_000)
        .map(|i| format!("[{},\"1\"]", 1_772_346_400 + i))
        .collect::<Vec<_>>()
        .join(",");
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{values}]}}]}}}}"#
    );
    let server = FakeServer::start(move |_| Response::json(200, body.clone()));
    let src = source(&server.url(), "");
    let end = chrono::DateTime::from_timestamp(1_772_366_400, 0).unwrap();
    let e = src
        .history(&rollout("s-1", "c-1"), end, Duration::from_secs(30), 3)
        .await
        .unwrap_err();
    assert!(e.contains("more than 11000 points"), "{e}");

    // Nor does this tool ask for more than that, whatever the caller wants.
    let server = FakeServer::start(|_| {
        Response::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let past = source(&server.url(), "")
        .history(
            &rollout("s-1", "c-1"),
            end,
            Duration::from_secs(1),
            5_000_000,
        )
        .await
        .unwrap();
    assert_eq!(
        past.len(),
        rollout_tui::metrics::prometheus::MAX_RANGE_POINTS
    );
    for r in server.requests() {
        let start: f64 = r.param("start").unwrap().parse().unwrap();
        let stop: f64 = r.param("end").unwrap().parse().unwrap();
        assert_eq!(stop - start, 10_999.0, "{r:?}");
    }
}

#[tokio::test]
async fn secrets_in_answers_and_endpoints_are_redacted() {
    // Not the client's own token: a JWT (a signed assertion) and a bearer credential that
    // a proxy echoes back inside a "successful" answer.
    const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzYUBwcm9qLmlhbSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1ieXRlcw";
    let server = FakeServer::start(|req| {
        let q = req.param("query").unwrap_or_default();
        let body = if q.starts_with("sum(increase(http_requests_total{revision=\"s-1\"}") {
            json!({"status": "error", "errorType": "proxy", "error": format!("upstream said: assertion {JWT} and Authorization: Bearer opaque-proxy-credential-123")}).to_string()
        } else {
            json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, format!("Bearer {JWT}")]}]}}).to_string()
        };
        Response::json(200, body)
    });
    let s = source(&server.url(), "")
        .sample(&rollout("s-1", "c-1"), Utc::now())
        .await;
    let e = s.source_error.unwrap_or_default();
    assert!(e.contains("[redacted]"), "{e}");
    for secret in [
        JWT,
        &JWT[..20],
        "c2lnbmF0dXJlLXNpZ25hdHVyZS1ieXRlcw",
        "opaque-proxy-credential",
    ] {
        assert!(!e.contains(secret), "{secret} in {e}");
    }

    // A configured endpoint with a password is refused without repeating the password.
    let cfg: MetricsConfig = toml::from_str(
        "kind = \"prometheus\"\nendpoint = \"http://alice:s3cret-pw@127.0.0.1:9090\"",
    )
    .unwrap();
    let e = cfg.validate().unwrap_err();
    assert!(e.contains("must not hold credentials"), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");
}
