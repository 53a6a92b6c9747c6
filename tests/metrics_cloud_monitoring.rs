//! The Cloud Monitoring source against a loopback fake that answers with the documented
//! `projects.timeSeries.list` shapes (v3 JSON): paging, int64 values as strings,
//! distributions with exponential and explicit buckets, empty series, and faults.

#[path = "support/http_fake.rs"]
mod http_fake;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use http_fake::{FakeServer, Request, Response};
use rollout_tui::domain::health::{GateConfig, HealthSample, SlowTotals, Verdict, evaluate};
use rollout_tui::domain::rollout::Rollout;
use rollout_tui::metrics::cloud_monitoring::{history_from_pages, sample_from_pages};
use rollout_tui::metrics::{MetricsConfig, MetricsSource, build_source, sample_all};
use serde_json::{Value, json};

const STABLE: &str = "svc-00001-abc";
const CANARY: &str = "svc-00002-def";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn ago(minutes: i64) -> String {
    (now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rollout(id: &str) -> Rollout {
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 5,
        "stableRevision": STABLE, "canaryRevision": CANARY,
    });
    Rollout::from_fields(id, doc.as_object().unwrap()).unwrap()
}

fn config(url: &str, extra: &str) -> MetricsConfig {
    let text = format!(
        "kind = \"cloud-monitoring\"\nproject_id = \"proj-1\"\nservice = \"svc\"\n\
         region = \"europe-west1\"\nendpoint = \"{url}\"\ncredentials = \"none\"\n{extra}"
    );
    let cfg: MetricsConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn source(cfg: &MetricsConfig) -> Arc<dyn MetricsSource> {
    build_source(cfg).unwrap().expect("a source")
}

/// A `request_count` series after ALIGN_DELTA + REDUCE_SUM: int64 values as strings,
/// newest point first.
fn count_series(rev: &str, class: &str, points: &[(i64, &str)]) -> Value {
    json!({
        "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": class}},
        "resource": {"type": "cloud_run_revision", "labels": {"project_id": "proj-1", "revision_name": rev}},
        "metricKind": "DELTA", "valueType": "INT64",
        "points": points.iter().map(|(m, v)| json!({
            "interval": {"startTime": ago(m + 1), "endTime": ago(*m)},
            "value": {"int64Value": v}
        })).collect::<Vec<_>>()
    })
}

fn latency_series(rev: &str, options: Value, points: &[(i64, &[&str])]) -> Value {
    json!({
        "metric": {"type": "run.googleapis.com/request_latencies", "labels": {}},
        "resource": {"type": "cloud_run_revision", "labels": {"revision_name": rev}},
        "metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "ms",
        "points": points.iter().map(|(m, counts)| {
            let n: u64 = counts.iter().map(|c| c.parse::<u64>().unwrap()).sum();
            json!({
                "interval": {"startTime": ago(m + 1), "endTime": ago(*m)},
                "value": {"distributionValue": {
                    "count": n.to_string(), "mean": 42.0, "bucketOptions": options,
                    "bucketCounts": counts,
                }}
            })
        }).collect::<Vec<_>>()
    })
}

fn page(series: Vec<Value>, next: &str) -> String {
    json!({"timeSeries": series, "nextPageToken": next, "unit": ""}).to_string()
}

/// The truth the pages below encode.
/// Stable: 100+120+80 (2xx) + 7 (4xx) + 3 (5xx) = 310 requests, 3 errors.
/// Canary: 50+45 (2xx) + 5 (5xx) = 100 requests, 5 errors.
fn count_pages() -> Vec<String> {
    vec![
        page(
            vec![
                count_series(STABLE, "2xx", &[(1, "100"), (2, "120"), (3, "80")]),
                count_series(STABLE, "4xx", &[(1, "7")]),
            ],
            "p2",
        ),
        page(
            vec![
                count_series(STABLE, "5xx", &[(2, "3")]),
                count_series(CANARY, "2xx", &[(1, "50"), (2, "45")]),
                count_series("svc-00000-old", "2xx", &[(1, "999")]),
            ],
            "p3",
        ),
        page(
            vec![
                count_series(CANARY, "5xx", &[(1, "5")]),
                count_series(CANARY, "3xx", &[]),
            ],
            "",
        ),
    ]
}

/// Stable: exponential buckets (-inf,10) [10,20) [20,40) [40,80) [80,inf), two minutes
/// summing to [0, 8, 6, 4, 2]: p50 = 20 + 20*2/6, p75 = 40 + 40*1/4, p95 = p99 = 80.
/// Canary: explicit bounds 50/100/200/400, counts [1, 2, 5, 2]: p50 = 140, p75 = 190,
/// p95 = 350, p99 = 390.
fn latency_pages() -> Vec<String> {
    let exp =
        json!({"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 2.0, "scale": 10.0}});
    let explicit = json!({"explicitBuckets": {"bounds": [50.0, 100.0, 200.0, 400.0]}});
    let linear = json!({"linearBuckets": {"numFiniteBuckets": 4, "width": 10.0, "offset": 0.0}});
    vec![
        page(
            vec![latency_series(
                STABLE,
                exp,
                &[(1, &["0", "5", "2", "1"]), (2, &["0", "3", "4", "3", "2"])],
            )],
            "L2",
        ),
        page(
            vec![
                latency_series(CANARY, explicit, &[(1, &["1", "2", "5", "2"])]),
                latency_series("svc-00000-old", linear, &[(1, &["9"])]),
            ],
            "",
        ),
    ]
}

/// Answers like Cloud Monitoring, by metric and page token.
fn answer(req: &Request) -> Response {
    let filter = req.param("filter").unwrap_or_default();
    let pages = if filter.contains("request_count") {
        count_pages()
    } else {
        latency_pages()
    };
    let i = match req.param("pageToken") {
        None => 0,
        Some("p2") | Some("L2") => 1,
        Some("p3") => 2,
        Some(other) => {
            return Response::json(
                400,
                format!(r#"{{"error":{{"code":400,"message":"bad page token {other}"}}}}"#),
            );
        }
    };
    Response::json(200, pages[i].clone())
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn check_known_truth(s: &HealthSample) {
    assert_eq!(s.source_error, None, "{s:?}");
    let st = s.stable.as_ref().expect("stable side");
    let ca = s.canary.as_ref().expect("canary side");
    assert_eq!((st.requests, st.errors), (310, 3));
    assert_eq!((ca.requests, ca.errors), (100, 5));
    let newest = now() - chrono::Duration::minutes(1);
    assert_eq!(st.newest_point_at, Some(newest));
    assert_eq!(ca.newest_point_at, Some(newest));
    assert!(close(st.p50_ms, 20.0 + 20.0 * 2.0 / 6.0), "{st:?}");
    assert!(close(st.p75_ms, 50.0), "{st:?}");
    assert!(close(st.p95_ms, 80.0) && close(st.p99_ms, 80.0), "{st:?}");
    assert!(close(ca.p50_ms, 140.0) && close(ca.p75_ms, 190.0), "{ca:?}");
    assert!(close(ca.p95_ms, 350.0) && close(ca.p99_ms, 390.0), "{ca:?}");
    assert_eq!(s.window, Duration::from_secs(300));
    assert_eq!(s.ingestion_delay, Duration::from_secs(240));
}

#[tokio::test]
async fn pages_strings_and_distributions_add_up_to_the_known_truth() {
    let server = FakeServer::start(answer);
    let src = source(&config(&server.url(), ""));
    let s = src.sample(&rollout("web"), now()).await;
    check_known_truth(&s);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 5, "3 pages of counts, 2 of latencies");
    let counts: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.param("filter").unwrap().contains("request_count"))
        .collect();
    assert_eq!(counts.len(), 3);
    for r in &reqs {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/v3/projects/proj-1/timeSeries");
        assert_eq!(r.header("authorization"), None, "credentials = none");
        // The 5m window plus Cloud Monitoring's 4m ingestion delay.
        assert_eq!(r.param("interval.startTime"), Some("2026-03-01T11:51:00Z"));
        assert_eq!(r.param("interval.endTime"), Some("2026-03-01T12:00:00Z"));
        assert_eq!(r.param("aggregation.alignmentPeriod"), Some("60s"));
        assert_eq!(r.param("aggregation.perSeriesAligner"), Some("ALIGN_DELTA"));
        assert_eq!(
            r.param("aggregation.crossSeriesReducer"),
            Some("REDUCE_SUM")
        );
        assert_eq!(r.param("view"), Some("FULL"));
    }
    let c = counts[0];
    assert_eq!(
        c.param("filter").unwrap(),
        "metric.type = \"run.googleapis.com/request_count\" AND resource.type = \"cloud_run_revision\" \
         AND resource.labels.service_name = \"svc\" AND resource.labels.location = \"europe-west1\" \
         AND resource.labels.revision_name = one_of(\"svc-00001-abc\", \"svc-00002-def\")"
    );
    assert_eq!(
        c.params("aggregation.groupByFields"),
        [
            "resource.labels.revision_name",
            "metric.labels.response_code_class"
        ]
    );
    let page_tokens: Vec<Option<&str>> = counts.iter().map(|r| r.param("pageToken")).collect();
    assert_eq!(page_tokens, [None, Some("p2"), Some("p3")]);
    let l = reqs
        .iter()
        .find(|r| r.param("filter").unwrap().contains("request_latencies"))
        .unwrap();
    assert_eq!(
        l.params("aggregation.groupByFields"),
        ["resource.labels.revision_name"]
    );

    // The same pages folded offline give the same sample.
    let cp = count_pages();
    let lp = latency_pages();
    let offline = sample_from_pages(
        &rollout("web"),
        now(),
        Duration::from_secs(300),
        &cp.iter().map(String::as_str).collect::<Vec<_>>(),
        &lp.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(offline, s);
}

/// The report's history: the same two calls once over the whole span, each window summed
/// from the per-minute points it covers.
#[tokio::test]
async fn history_sums_each_window_from_its_minutes() {
    let server = FakeServer::start(answer);
    let src = source(&config(&server.url(), ""));
    let samples = src
        .history(&rollout("web"), now(), Duration::from_secs(60), 3)
        .await
        .expect("a history");
    let at: Vec<DateTime<Utc>> = samples.iter().map(|s| s.taken_at).collect();
    assert_eq!(at, [2, 1, 0].map(|m| now() - chrono::Duration::minutes(m)));
    // Ending now, the 5-minute window holds every minute: the known truth.
    let last = &samples[2];
    let (st, ca) = (last.stable.as_ref().unwrap(), last.canary.as_ref().unwrap());
    assert_eq!(
        (st.requests, st.errors, ca.requests, ca.errors),
        (310, 3, 100, 5)
    );
    assert!(close(ca.p99_ms, 390.0), "{ca:?}");
    // Ending two minutes ago: minutes 2 and 3 only (the newest minute is not in it yet).
    let first = &samples[0];
    let (st, ca) = (
        first.stable.as_ref().unwrap(),
        first.canary.as_ref().unwrap(),
    );
    assert_eq!(
        (st.requests, st.errors, ca.requests, ca.errors),
        (203, 3, 45, 0)
    );
    assert_eq!(
        ca.p99_ms, None,
        "the canary's only latency point is the newest minute's"
    );
    // Two calls (five pages) over [first window's start, end].
    let reqs = server.requests();
    assert_eq!(reqs.len(), 5);
    for r in &reqs {
        assert_eq!(r.param("interval.startTime"), Some(ago(7).as_str()));
        assert_eq!(r.param("interval.endTime"), Some(ago(0).as_str()));
        assert_eq!(r.param("aggregation.alignmentPeriod"), Some("60s"));
    }
    // The same pages folded offline give the same history.
    let cp = count_pages();
    let lp = latency_pages();
    let offline = history_from_pages(
        &rollout("web"),
        &at,
        Duration::from_secs(300),
        &cp.iter().map(String::as_str).collect::<Vec<_>>(),
        &lp.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .expect("pages fold");
    let strip = |v: &[HealthSample]| -> Vec<_> {
        v.iter()
            .map(|s| (s.taken_at, s.stable.clone(), s.canary.clone()))
            .collect()
    };
    assert_eq!(strip(&offline), strip(&samples));
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_servers_delay() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = FakeServer::start(move |req| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            return Response::json(
                429,
                r#"{"error":{"code":429,"message":"Quota exceeded for quota metric 'Time series queries'","status":"RESOURCE_EXHAUSTED"}}"#,
            )
            .with_header("Retry-After", "1");
        }
        answer(req)
    });
    let src = source(&config(&server.url(), ""));
    let started = Instant::now();
    let s = src.sample(&rollout("web"), now()).await;
    check_known_truth(&s);
    assert_eq!(server.requests().len(), 6, "one 429, then 5 pages");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_inconclusive() {
    let server = FakeServer::start(|_| {
        Response::json(
            500,
            r#"{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}"#,
        )
    });
    let cfg = config(&server.url(), "retries = 2");
    let s = source(&cfg).sample(&rollout("web"), now()).await;
    assert_eq!((s.stable.as_ref(), s.canary.as_ref()), (None, None));
    let e = s.source_error.clone().unwrap();
    assert!(
        e.contains("500")
            && e.contains("Internal error encountered.")
            && e.contains("after 3 tries"),
        "{e}"
    );
    let count_calls = server
        .requests()
        .iter()
        .filter(|r| r.param("filter").unwrap().contains("request_count"))
        .count();
    assert_eq!(count_calls, 3, "1 try + 2 retries");
    let report = evaluate(&s, &GateConfig::default(), now());
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert!(
        report
            .gates
            .iter()
            .all(|g| g.verdict == Verdict::Inconclusive)
    );
    assert!(report.summary().contains("500"), "{}", report.summary());
}

#[tokio::test]
async fn bad_answers_are_inconclusive_with_the_reason() {
    let cases: [(&str, &str); 4] = [
        ("{\"timeSeries\": [", "malformed answer"),
        (
            "{}",
            "no request_count data for revision svc-00001-abc in the last 5m",
        ),
        (
            r#"{"timeSeries": [{"resource": {"labels": {"revision_name": "svc-00001-abc"}}, "points": [{"interval": {"endTime": "2026-03-01T11:59:00Z"}, "value": {"int64Value": "-5"}}]}]}"#,
            "'-5' is not a count",
        ),
        (
            r#"{"timeSeries": [], "executionErrors": [{"code": 4, "message": "deadline"}]}"#,
            "incomplete answer",
        ),
    ];
    for (body, needle) in cases {
        let server = FakeServer::start(move |_| Response::json(200, body));
        let s = source(&config(&server.url(), ""))
            .sample(&rollout("web"), now())
            .await;
        let e = s.source_error.clone().unwrap_or_default();
        assert!(e.contains(needle), "{body}\n=> {e}");
        assert!(s.stable.is_none(), "{body}: never zeros");
        assert_eq!(
            evaluate(&s, &GateConfig::default(), now()).verdict,
            Verdict::Inconclusive,
            "{body}"
        );
    }
}

#[tokio::test]
async fn old_points_are_stale_and_inconclusive() {
    let old = |minutes: i64| {
        let mut pages = vec![page(
            vec![
                count_series(STABLE, "2xx", &[(minutes, "5000")]),
                count_series(CANARY, "2xx", &[(minutes, "5000")]),
            ],
            "",
        )];
        pages.push(page(vec![], ""));
        pages
    };
    let pages = old(20);
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let s = sample_from_pages(
        &rollout("web"),
        now(),
        Duration::from_secs(1800),
        &refs[..1],
        &refs[1..],
    );
    let report = evaluate(&s, &GateConfig::default(), now());
    let freshness = report.gate("freshness").unwrap();
    assert_eq!(freshness.verdict, Verdict::Inconclusive);
    assert!(freshness.detail.contains("stale"), "{}", freshness.detail);
    assert_eq!(report.verdict, Verdict::Inconclusive);
}

/// A server that never answers: the sample ends at the configured timeout, while the
/// server is still holding the request (nothing is timed; the server is released after).
#[tokio::test]
async fn a_slow_server_is_cut_off_at_the_timeout() {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let server = FakeServer::start(move |req| {
        // Blocks until the test has its answer (or gives up), whatever the client does.
        let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(120));
        answer(req)
    });
    let cfg = config(&server.url(), "timeout = \"1s\"");
    let started = Instant::now();
    let s = tokio::time::timeout(
        Duration::from_secs(60),
        source(&cfg).sample(&rollout("web"), now()),
    )
    .await
    .expect("the sample gave up by itself, without the server answering");
    println!("cut off after {:?} (timeout 1s)", started.elapsed());
    assert!(
        server.in_flight() > 0,
        "the server was still holding the request"
    );
    let e = s.source_error.unwrap();
    assert!(
        e.contains("timed out") || e.contains("did not answer"),
        "{e}"
    );
    assert!(s.stable.is_none() && s.canary.is_none());
    let _ = release.send(());
}

#[tokio::test]
async fn missing_revisions_are_named() {
    let server = FakeServer::start(answer);
    let doc = json!({"version": "1", "status": "canary", "stableRevision": STABLE});
    let r = Rollout::from_fields("web", doc.as_object().unwrap()).unwrap();
    let s = source(&config(&server.url(), "")).sample(&r, now()).await;
    assert!(s.stable.is_some());
    assert!(s.canary.is_none());
    assert!(s.source_error.unwrap().contains("no canaryRevision"));
    assert!(
        server.requests()[0]
            .param("filter")
            .unwrap()
            .ends_with("one_of(\"svc-00001-abc\")")
    );
}

/// Series per page in `service_fake`: small, so a service's answer takes several pages.
const PAGE: usize = 25;

/// One revision's numbers in `service_fake`, made up from its name: 2xx and 5xx requests a
/// minute (5xx may be 0: then, as on Cloud Monitoring, there is no 5xx series) and latency
/// bucket counts for bounds 50/100/200/400 ms.
fn traffic(rev: &str) -> (u64, u64, [u64; 5]) {
    let h: u64 = rev.bytes().map(u64::from).sum();
    (
        100 + h % 97,
        h % 5,
        [h % 7, 10 + h % 11, 5 + h % 13, h % 3, 1],
    )
}

/// Cloud Monitoring for Cloud Run services, each with the revisions that served traffic in
/// the last two minutes: honours the filter's service and `one_of` revisions, groups by
/// revision (and response class for counts), and pages `PAGE` series at a time.
fn service_fake(services: Vec<(&'static str, Vec<String>)>) -> FakeServer {
    service_fake_failing(services, None)
}

/// `service_fake` whose request_count calls for service `failing` answer 503.
fn service_fake_failing(
    services: Vec<(&'static str, Vec<String>)>,
    failing: Option<&'static str>,
) -> FakeServer {
    FakeServer::start(move |req| {
        let filter = req.param("filter").unwrap_or_default();
        let service = filter
            .split_once("service_name = \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(s, _)| s)
            .unwrap_or_default();
        if failing == Some(service) && filter.contains("request_count") {
            return Response::json(
                503,
                r#"{"error":{"code":503,"message":"The service is currently unavailable."}}"#,
            );
        }
        let only: Option<Vec<&str>> = filter.split_once("one_of(").map(|(_, rest)| {
            rest.trim_end_matches(')')
                .split(", ")
                .map(|q| q.trim_matches('"'))
                .collect()
        });
        let revisions = services
            .iter()
            .filter(|(name, _)| *name == service)
            .flat_map(|(_, revs)| revs)
            .filter(|r| only.as_ref().is_none_or(|o| o.contains(&r.as_str())));
        let explicit = json!({"explicitBuckets": {"bounds": [50.0, 100.0, 200.0, 400.0]}});
        let mut series = Vec::new();
        for rev in revisions {
            let (ok, errors, buckets) = traffic(rev);
            if filter.contains("request_count") {
                let (a, b) = ((ok / 2).to_string(), (ok - ok / 2).to_string());
                series.push(count_series(rev, "2xx", &[(1, &a), (2, &b)]));
                if errors > 0 {
                    series.push(count_series(rev, "5xx", &[(2, &errors.to_string())]));
                }
            } else {
                let counts: Vec<String> = buckets.iter().map(u64::to_string).collect();
                let counts: Vec<&str> = counts.iter().map(String::as_str).collect();
                series.push(latency_series(rev, explicit.clone(), &[(1, &counts)]));
            }
        }
        let from: usize = req
            .param("pageToken")
            .map_or(0, |t| t.trim_start_matches('s').parse().unwrap());
        let to = (from + PAGE).min(series.len());
        let next = if to < series.len() {
            format!("s{to}")
        } else {
            String::new()
        };
        Response::json(200, page(series[from..to].to_vec(), &next))
    })
}

fn rev(service: &str, i: usize) -> String {
    format!("{service}-{i:05}-x")
}

fn rollout_on(id: &str, stable: Option<&str>, canary: Option<&str>) -> Rollout {
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 5,
        "stableRevision": stable, "canaryRevision": canary,
    });
    Rollout::from_fields(id, doc.as_object().unwrap()).unwrap()
}

/// 50 rollouts on `service`: five stables shared among them, a canary each; one canary
/// never served traffic and one rollout has no canary yet.
fn fifty_rollouts(service: &str, prefix: &str) -> Vec<Rollout> {
    (0..50)
        .map(|k| {
            let stable = rev(service, k % 5);
            let canary = match k {
                48 => Some(format!("{service}-never-served")),
                49 => None,
                _ => Some(rev(service, 10 + k)),
            };
            rollout_on(&format!("{prefix}{k}"), Some(&stable), canary.as_deref())
        })
        .collect()
}

/// Revisions 0-4 (stables), 10-57 (canaries) and 60-69 (serving, but no rollout's).
fn serving(service: &str) -> Vec<String> {
    (0..5)
        .chain(10..58)
        .chain(60..70)
        .map(|i| rev(service, i))
        .collect()
}

/// List calls (pages included) one service-wide round of `revisions` costs in `service_fake`.
fn pages_for(revisions: &[String]) -> usize {
    let counts: usize = revisions
        .iter()
        .map(|r| if traffic(r).1 > 0 { 2 } else { 1 })
        .sum();
    counts.div_ceil(PAGE) + revisions.len().div_ceil(PAGE)
}

#[tokio::test]
async fn fifty_rollouts_on_one_service_cost_what_one_does() {
    let revisions = serving("svc");
    let server = service_fake(vec![("svc", revisions.clone())]);
    let src = source(&config(&server.url(), ""));
    let rollouts = fifty_rollouts("svc", "r");

    // Each rollout on its own: its two revisions' list calls, 50 times over.
    let mut alone = Vec::new();
    for r in &rollouts {
        alone.push(src.sample(r, now()).await);
    }
    let per_rollout_calls = server.requests().len();
    assert!(per_rollout_calls >= 2 * 50, "{per_rollout_calls}");
    // The answers are worth comparing: both sides, no data, and no canary revision.
    assert!(
        alone[0].source_error.is_none() && alone[0].canary.is_some(),
        "{:?}",
        alone[0]
    );
    assert!(
        alone[48]
            .source_error
            .as_deref()
            .unwrap()
            .contains("no request_count data for revision svc-never-served"),
        "{:?}",
        alone[48]
    );
    assert!(
        alone[49]
            .source_error
            .as_deref()
            .unwrap()
            .contains("no canaryRevision")
    );

    // Batched: one round for 1 rollout, then for 50, cost exactly the same calls: the
    // service's pages of each metric.
    let pages = pages_for(&revisions);
    assert!(pages > 2, "the answer spans pages: {pages}");
    let one = src.sample_many(&rollouts[..1], now()).await;
    let calls_for_one = server.requests().len() - per_rollout_calls;
    assert_eq!(calls_for_one, pages);
    assert_eq!(one, alone[..1]);
    let all = sample_all(src.clone(), &rollouts, now()).await;
    let calls_for_fifty = server.requests().len() - per_rollout_calls - calls_for_one;
    assert_eq!(calls_for_fifty, pages, "50 rollouts cost what 1 does");
    // Split by revision, every rollout gets exactly what it got alone.
    assert_eq!(all, alone);

    for r in &server.requests()[per_rollout_calls..] {
        let filter = r.param("filter").unwrap();
        assert!(
            filter.ends_with(
                "resource.labels.service_name = \"svc\" AND resource.labels.location = \"europe-west1\""
            ),
            "filtered on the service, not on revisions: {filter}"
        );
        assert_eq!(
            r.params("aggregation.groupByFields")[0],
            "resource.labels.revision_name"
        );
    }
}

/// Rollouts `api-*` on another service through `[metrics.rollouts.ID]`: identical overrides
/// share one source, so each service is one group.
fn two_service_config(url: &str, top: &str, api: &[Rollout]) -> MetricsConfig {
    let tables: String = api
        .iter()
        .map(|r| format!("[rollouts.{}]\nservice = \"api\"\n", r.id))
        .collect();
    config(url, &format!("{top}\n{tables}"))
}

#[tokio::test]
async fn two_services_are_two_groups() {
    let svc = serving("svc");
    let api = serving("api");
    let server = service_fake(vec![("svc", svc.clone()), ("api", api.clone())]);
    let mut rollouts = fifty_rollouts("svc", "r");
    let api_rollouts = fifty_rollouts("api", "api-");
    rollouts.extend(api_rollouts.iter().cloned());
    let src = source(&two_service_config(&server.url(), "", &api_rollouts));

    let mut alone = Vec::new();
    for r in &rollouts {
        alone.push(src.sample(r, now()).await);
    }
    let before = server.requests().len();
    let all = sample_all(src, &rollouts, now()).await;
    assert_eq!(all, alone);
    let calls = &server.requests()[before..];
    let on = |service: &str| {
        calls
            .iter()
            .filter(|r| {
                r.param("filter")
                    .unwrap()
                    .contains(&format!("service_name = \"{service}\""))
            })
            .count()
    };
    assert_eq!((on("svc"), on("api")), (pages_for(&svc), pages_for(&api)));
    assert_eq!(calls.len(), pages_for(&svc) + pages_for(&api));
}

#[tokio::test]
async fn one_failing_call_fails_every_rollout_of_its_group_alone() {
    // The api service's request_count calls fail; everything else is answered.
    let server = service_fake_failing(
        vec![("svc", serving("svc")), ("api", serving("api"))],
        Some("api"),
    );
    let mut rollouts = fifty_rollouts("svc", "r");
    let api_rollouts = fifty_rollouts("api", "api-");
    rollouts.extend(api_rollouts.iter().cloned());
    let src = source(&two_service_config(
        &server.url(),
        "retries = 0",
        &api_rollouts,
    ));
    let all = sample_all(src, &rollouts, now()).await;
    for (r, s) in rollouts.iter().zip(&all) {
        if r.id.starts_with("api-") {
            assert_eq!(
                (s.stable.as_ref(), s.canary.as_ref()),
                (None, None),
                "{s:?}"
            );
            let e = s.source_error.as_deref().unwrap();
            assert!(
                e.starts_with("Cloud Monitoring request_count: ")
                    && e.contains("503")
                    && e.contains("The service is currently unavailable."),
                "{e}"
            );
            assert_eq!(
                evaluate(s, &GateConfig::default(), now()).verdict,
                Verdict::Inconclusive
            );
        } else if r.id != "r48" && r.id != "r49" {
            assert!(s.source_error.is_none() && s.canary.is_some(), "{s:?}");
        }
    }
    // One failed call for the whole api group (no retries), not one per rollout.
    let failed = server
        .requests()
        .iter()
        .filter(|r| {
            let f = r.param("filter").unwrap();
            f.contains("service_name = \"api\"") && f.contains("request_count")
        })
        .count();
    assert_eq!(failed, 1);
}

/// Count and latency pages whose newest point is `minutes` old (negative: in the future),
/// with enough traffic for every gate.
fn pages_at(minutes: i64) -> (String, String) {
    let exp =
        json!({"exponentialBuckets": {"numFiniteBuckets": 3, "growthFactor": 2.0, "scale": 10.0}});
    let counts = page(
        vec![
            count_series(STABLE, "2xx", &[(minutes, "5000")]),
            count_series(CANARY, "2xx", &[(minutes, "1000")]),
        ],
        "",
    );
    let latencies = page(
        vec![
            latency_series(STABLE, exp.clone(), &[(minutes, &["0", "50", "40", "10"])]),
            latency_series(CANARY, exp, &[(minutes, &["0", "50", "40", "10"])]),
        ],
        "",
    );
    (counts, latencies)
}

fn serve_pages((counts, latencies): (String, String)) -> FakeServer {
    FakeServer::start(move |req| {
        let filter = req.param("filter").unwrap_or_default();
        let body = if filter.contains("request_count") {
            counts.clone()
        } else {
            latencies.clone()
        };
        Response::json(200, body)
    })
}

#[tokio::test]
async fn points_minutes_late_are_fresh_for_cloud_monitoring() {
    // Cloud Run's newest point is normally 2 to 4 minutes old: with the bare 3m limit the
    // gates would hold forever. The limit is 3m plus the source's 4m delay.
    let server = serve_pages(pages_at(4));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    assert_eq!(s.source_error, None, "{s:?}");
    let report = evaluate(&s, &GateConfig::default(), now());
    let fresh = report.gate("freshness").unwrap();
    assert_eq!(fresh.verdict, Verdict::Pass, "{}", fresh.detail);
    assert_eq!(
        fresh.detail,
        "newest points 4m old (limit 7m = 3m + 4m source delay)"
    );
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");

    // Late beyond that is still stale, and says why the limit is what it is.
    let server = serve_pages(pages_at(8));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    let report = evaluate(&s, &GateConfig::default(), now());
    let fresh = report.gate("freshness").unwrap();
    assert_eq!(fresh.verdict, Verdict::Inconclusive);
    assert!(
        fresh
            .detail
            .contains("stale: newest canary point 8m old > 7m limit = 3m + 4m source delay"),
        "{}",
        fresh.detail
    );
    assert_eq!(report.verdict, Verdict::Inconclusive);

    // An operator who sets the delay to 0s gets the bare limit, and the query window back.
    let server = serve_pages(pages_at(4));
    let s = source(&config(&server.url(), "ingestion_delay = \"0s\""))
        .sample(&rollout("web"), now())
        .await;
    assert_eq!(s.ingestion_delay, Duration::ZERO);
    let report = evaluate(&s, &GateConfig::default(), now());
    assert_eq!(
        report.gate("freshness").unwrap().verdict,
        Verdict::Inconclusive
    );
    assert_eq!(
        server.requests()[0].param("interval.startTime"),
        Some("2026-03-01T11:55:00Z")
    );
}

#[tokio::test]
async fn points_from_the_future_are_inconclusive() {
    let server = serve_pages(pages_at(-7));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    let report = evaluate(&s, &GateConfig::default(), now());
    let fresh = report.gate("freshness").unwrap();
    assert_eq!(fresh.verdict, Verdict::Inconclusive);
    assert!(
        fresh
            .detail
            .contains("newest canary point is 7m in the future: check the clocks"),
        "{}",
        fresh.detail
    );
    // Every gate that needs the canary's numbers holds too: none counts as healthy.
    let error_rate = report.gate("error-rate").unwrap();
    assert_eq!(error_rate.verdict, Verdict::Inconclusive);
    assert!(error_rate.detail.contains("check the clocks"));
    assert_eq!(report.verdict, Verdict::Inconclusive);

    // A minute ahead is ordinary clock skew: fresh.
    let server = serve_pages(pages_at(-1));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    let report = evaluate(&s, &GateConfig::default(), now());
    assert_eq!(report.gate("freshness").unwrap().verdict, Verdict::Pass);
}

#[tokio::test]
async fn an_absurd_bucket_count_is_inconclusive_not_an_abort() {
    // 4e12 buckets: sizing a histogram by it would abort the process (allocation failure),
    // leaving the operator's terminal in raw mode.
    let huge = json!({"exponentialBuckets": {"numFiniteBuckets": 4_000_000_000_000_i64, "growthFactor": 2.0, "scale": 10.0}});
    let (counts, _) = pages_at(1);
    let latencies = page(vec![latency_series(CANARY, huge, &[(1, &["1", "2"])])], "");
    let server = serve_pages((counts, latencies));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    let e = s.source_error.clone().unwrap_or_default();
    assert!(
        e.contains("4000000000000 buckets is more than the 10000 read"),
        "{e}"
    );
    let canary = s.canary.as_ref().expect("the counts still stand");
    assert_eq!(canary.p99_ms, None, "no latency made up");
    let gates = GateConfig {
        max_p99_ms: Some(500.0),
        ..GateConfig::default()
    };
    assert_eq!(evaluate(&s, &gates, now()).verdict, Verdict::Inconclusive);
}

#[tokio::test]
async fn too_many_series_are_refused_with_the_reason() {
    let series: Vec<Value> = (0..2_001)
        .map(|i| count_series(&format!("svc-{i:05}-zzz"), "2xx", &[(1, "1")]))
        .collect();
    let counts = page(series, "");
    let server = serve_pages((counts, page(vec![], "")));
    let s = source(&config(&server.url(), ""))
        .sample(&rollout("web"), now())
        .await;
    let e = s.source_error.clone().unwrap_or_default();
    assert!(
        e.contains("2001 series") && e.contains("more than the 2000 series"),
        "{e}"
    );
    assert!(s.stable.is_none() && s.canary.is_none());
    assert_eq!(
        evaluate(&s, &GateConfig::default(), now()).verdict,
        Verdict::Inconclusive
    );
}

#[tokio::test]
async fn an_endless_answer_is_read_only_up_to_the_cap() {
    // 64 MiB of series with no Content-Length: the client cannot know the size up front.
    let chunk = format!("{},", count_series(STABLE, "2xx", &[(1, "1")])).repeat(16);
    let times = (64 << 20) / chunk.len();
    let server = FakeServer::start(move |_| {
        Response::streamed(200, "{\"timeSeries\": [", chunk.clone(), times)
    });
    let cfg = config(&server.url(), "max_response_bytes = 65536\nretries = 0");
    let s = source(&cfg).sample(&rollout("web"), now()).await;
    let e = s.source_error.clone().unwrap_or_default();
    assert!(
        e.contains("larger than the 64 KiB limit (metrics.max_response_bytes)"),
        "{e}"
    );
    assert!(s.stable.is_none() && s.canary.is_none());
    // Both metrics were asked once; wait until the server has stopped writing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.answers_done() < server.requests().len() {
        assert!(
            Instant::now() < deadline,
            "the server never stopped writing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = server.body_bytes_sent();
    assert!(
        sent < 2 * (16 << 20),
        "{sent} bytes were accepted of {} offered: the client read far past its cap",
        2 * (64 << 20)
    );

    // A declared Content-Length over the cap is refused before reading.
    let big = page(
        vec![count_series(STABLE, "2xx", &[(1, &"9".repeat(100_000))])],
        "",
    );
    let server = FakeServer::start(move |_| Response::json(200, big.clone()));
    let s = source(&cfg).sample(&rollout("web"), now()).await;
    assert!(
        s.source_error
            .unwrap_or_default()
            .contains("larger than the 64 KiB limit"),
    );
    drop(server);
}

// ---- stage totals (judgment = "stage") ----

/// A rollout at 5 % whose stage began `minutes` (and 30 s) before `now()`.
fn staged_rollout(id: &str, stable: &str, canary: &str, minutes: i64) -> Rollout {
    let entered = now() - chrono::Duration::seconds(minutes * 60 + 30);
    let doc = json!({
        "version": "2.0.0", "status": "progressive", "rolloutPercentage": 5,
        "stableRevision": stable, "canaryRevision": canary,
        "stageEnteredAt": entered.to_rfc3339(),
    });
    Rollout::from_fields(id, doc.as_object().unwrap()).unwrap()
}

/// The window's pages as `answer` gives them; a call aligned to more than a minute is a
/// stage-totals call and answers, per asked revision, one point over the whole interval:
/// 2,000 requests and 4 errors for stable, 90 and 9 for the canary (none for a revision
/// named `*-quiet`, which served nobody); latencies in buckets bounded 50/100/200/400 ms,
/// stable [100, 500, 300, 90, 10] (its p99 in [200, 400), so 10 over 400 ms), the canary
/// [1, 20, 30, 20, 19]. `fail_stage` answers those calls 503.
fn stage_fake(fail_stage: bool) -> FakeServer {
    FakeServer::start(move |req| {
        if req.param("aggregation.alignmentPeriod") == Some("60s") {
            return answer(req);
        }
        if fail_stage {
            return Response::json(503, r#"{"error":{"code":503,"message":"unavailable"}}"#);
        }
        let filter = req.param("filter").unwrap_or_default();
        let (start, end) = (
            req.param("interval.startTime").unwrap().to_string(),
            req.param("interval.endTime").unwrap().to_string(),
        );
        let whole = |rev: &str, class: &str, v: &str| {
            json!({
                "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": class}},
                "resource": {"type": "cloud_run_revision", "labels": {"revision_name": rev}},
                "metricKind": "DELTA", "valueType": "INT64",
                "points": [{"interval": {"startTime": start, "endTime": end}, "value": {"int64Value": v}}]
            })
        };
        let asked: Vec<&str> = filter
            .split_once("one_of(")
            .map(|(_, rest)| {
                rest.trim_end_matches(')')
                    .split(", ")
                    .map(|q| q.trim_matches('"'))
                    .collect()
            })
            .unwrap_or_default();
        let mut series = Vec::new();
        for rev in asked {
            if rev.ends_with("-quiet") {
                continue;
            }
            let stable = rev.contains("00001");
            if filter.contains("request_latencies") {
                let counts: &[&str] = if stable {
                    &["100", "500", "300", "90", "10"]
                } else {
                    &["1", "20", "30", "20", "19"]
                };
                let n: u64 = counts.iter().map(|c| c.parse::<u64>().unwrap()).sum();
                series.push(json!({
                    "metric": {"type": "run.googleapis.com/request_latencies", "labels": {}},
                    "resource": {"type": "cloud_run_revision", "labels": {"revision_name": rev}},
                    "metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "ms",
                    "points": [{"interval": {"startTime": start, "endTime": end}, "value": {"distributionValue": {
                        "count": n.to_string(), "mean": 100.0,
                        "bucketOptions": {"explicitBuckets": {"bounds": [50.0, 100.0, 200.0, 400.0]}},
                        "bucketCounts": counts,
                    }}}]
                }));
                continue;
            }
            let (ok, errors) = if stable { ("1996", "4") } else { ("81", "9") };
            series.push(whole(rev, "2xx", ok));
            series.push(whole(rev, "5xx", errors));
        }
        Response::json(200, page(series, ""))
    })
}

#[tokio::test]
async fn stage_totals_are_asked_per_rollout_over_its_stage() {
    let server = stage_fake(false);
    let src = source(&config(&server.url(), ""));
    let r = staged_rollout("web", STABLE, CANARY, 42);
    let s = src.sample(&r, now()).await;
    check_known_truth(&s);
    let stage = s.stage.clone().expect("stage totals");
    assert_eq!((stage.stable.requests, stage.stable.errors), (2_000, 4));
    assert_eq!((stage.canary.requests, stage.canary.errors), (90, 9));
    // Whole minutes of the stage: the half minute before is not counted.
    assert_eq!(stage.since, now() - chrono::Duration::minutes(42));
    // Over the bucket holding stable's p99: 10 of stable's 1,000, 19 of the canary's 90.
    assert_eq!(
        stage.slow,
        Some(SlowTotals {
            threshold_ms: 400.0,
            stable: 10,
            canary: 19
        })
    );

    let reqs = server.requests();
    let stage_calls: Vec<&Request> = reqs
        .iter()
        .filter(|q| q.param("aggregation.alignmentPeriod") != Some("60s"))
        .collect();
    assert_eq!(
        reqs.len(),
        5 + 2,
        "the window's 5 pages and a stage call per metric"
    );
    let mut metrics = Vec::new();
    for q in &stage_calls {
        assert_eq!(q.param("aggregation.alignmentPeriod"), Some("2520s"));
        assert_eq!(q.param("interval.startTime"), Some(ago(42).as_str()));
        assert_eq!(q.param("interval.endTime"), Some(ago(0).as_str()));
        let filter = q.param("filter").unwrap();
        assert!(
            filter.contains(&format!("one_of(\"{STABLE}\", \"{CANARY}\")")),
            "{filter}"
        );
        metrics.push(if filter.contains("run.googleapis.com/request_count") {
            "count"
        } else {
            "latency"
        });
    }
    metrics.sort();
    assert_eq!(metrics, ["count", "latency"]);

    // Judged on the stage: 9 errors in 90 against 0.2 % is decisive whatever the window.
    let cfg: GateConfig = serde_json::from_str(r#"{"judgment": "stage"}"#).unwrap();
    let report = evaluate(&s, &cfg, now());
    let g = report
        .gates
        .iter()
        .find(|g| g.name == "error-rate-vs-stable")
        .unwrap();
    assert_eq!(g.verdict, Verdict::Fail, "{g:#?}");
    assert!(
        g.detail
            .starts_with("canary 10.00 % (9/90) vs stable 0.20 % this stage: worse"),
        "{}",
        g.detail
    );
}

#[tokio::test]
async fn stage_totals_need_a_stage_start_a_minute_and_an_answer() {
    // No stage start (the window fixtures): no stage call at all.
    let server = stage_fake(false);
    let src = source(&config(&server.url(), ""));
    let s = src.sample(&rollout("web"), now()).await;
    assert_eq!(s.stage, None);
    assert_eq!(server.requests().len(), 5);
    // A stage under a minute old: none either (the alignment's least is a minute).
    let s = src
        .sample(&staged_rollout("web", STABLE, CANARY, 0), now())
        .await;
    assert_eq!(s.stage, None);
    assert_eq!(server.requests().len(), 10);

    // A canary that served nobody this stage has no series: zero requests, not unknown.
    let quiet = "svc-00002-quiet";
    let s = src
        .sample(&staged_rollout("web", STABLE, quiet, 10), now())
        .await;
    let stage = s.stage.expect("stage totals");
    assert_eq!((stage.canary.requests, stage.canary.errors), (0, 0));
    assert_eq!(stage.stable.requests, 2_000);
    // No canary distribution to count from: no slow counts (the window judges latency).
    assert_eq!(stage.slow, None);

    // The stage call failing leaves the window's sample as it was, judged on the window.
    let failing = stage_fake(true);
    let src = source(&config(&failing.url(), "retries = 0\n"));
    let s = src
        .sample(&staged_rollout("web", STABLE, CANARY, 42), now())
        .await;
    check_known_truth(&s);
    assert_eq!(s.stage, None);
}

#[tokio::test]
async fn grouped_rollouts_ask_their_stage_totals_each() {
    let server = stage_fake(false);
    let src = source(&config(&server.url(), ""));
    let rollouts = [
        staged_rollout("web", STABLE, CANARY, 42),
        staged_rollout("api", STABLE, "svc-00003-ghi", 7),
        rollout("plain"),
    ];
    let samples = src.sample_many(&rollouts, now()).await;
    let spans: Vec<Option<DateTime<Utc>>> = samples
        .iter()
        .map(|s| s.stage.as_ref().map(|t| t.since))
        .collect();
    assert_eq!(
        spans,
        [
            Some(now() - chrono::Duration::minutes(42)),
            Some(now() - chrono::Duration::minutes(7)),
            None
        ]
    );
    let mut periods: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|q| q.param("aggregation.alignmentPeriod").map(str::to_string))
        .filter(|p| p != "60s")
        .collect();
    periods.sort();
    assert_eq!(
        periods,
        ["2520s", "2520s", "420s", "420s"],
        "a stage call per metric and staged rollout"
    );
}
