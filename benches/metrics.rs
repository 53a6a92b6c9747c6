//! Turning 10,000-point Cloud Monitoring answers (JSON text) into a health sample: time
//! (criterion) and allocations (dhat, after the timing), plus the requests per minute a
//! sample round costs for 1 and 50 rollouts on one service (counted by loopback fakes),
//! and the memory a hostile Prometheus answer (50,000 series, under the 4 MiB body cap)
//! costs to refuse.
//!
//! `cargo bench --bench metrics`

#[path = "../tests/support/http_fake.rs"]
mod http_fake;

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use rollout_tui::domain::rollout::Rollout;
use rollout_tui::metrics::cloud_monitoring::sample_from_pages;
use rollout_tui::metrics::prometheus::{MAX_BUCKETS, parse_answer, parse_buckets};
use rollout_tui::metrics::{MetricsConfig, MetricsSource, build_source};
use serde_json::{Value, json};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const POINTS: usize = 10_000;
/// 50 revisions x 4 response classes x 50 one-minute points: the stable and canary
/// revisions are 2 of the 50, the rest must be skipped.
const REVISIONS: usize = 50;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn end(minutes: usize) -> String {
    (now() - chrono::Duration::minutes(minutes as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rev(i: usize) -> String {
    format!("svc-{i:05}-abc")
}

fn counts_page() -> String {
    let per_series = POINTS / (REVISIONS * 4);
    let mut series = Vec::new();
    for r in 0..REVISIONS {
        for class in ["2xx", "3xx", "4xx", "5xx"] {
            let points: Vec<Value> = (0..per_series)
                .map(|m| {
                    json!({
                        "interval": {"startTime": end(m + 1), "endTime": end(m)},
                        "value": {"int64Value": ((r * 7 + m * 13) % 500).to_string()}
                    })
                })
                .collect();
            series.push(json!({
                "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": class}},
                "resource": {"type": "cloud_run_revision", "labels": {
                    "project_id": "proj-1", "service_name": "svc", "location": "europe-west1",
                    "configuration_name": "svc", "revision_name": rev(r)}},
                "metricKind": "DELTA", "valueType": "INT64", "points": points
            }));
        }
    }
    json!({"timeSeries": series, "unit": "1"}).to_string()
}

/// Cloud Run's latency buckets are exponential; each point carries ~30 bucket counts.
fn latencies_page() -> String {
    let per_series = POINTS / REVISIONS;
    let options =
        json!({"exponentialBuckets": {"numFiniteBuckets": 100, "growthFactor": 1.4, "scale": 1.0}});
    let series: Vec<Value> = (0..REVISIONS)
        .map(|r| {
            let points: Vec<Value> = (0..per_series)
                .map(|m| {
                    let counts: Vec<String> = (0..30)
                        .map(|b| ((b * 31 + m + r) % 97).to_string())
                        .collect();
                    let n: u64 = counts.iter().map(|c| c.parse::<u64>().unwrap()).sum();
                    json!({
                        "interval": {"startTime": end(m + 1), "endTime": end(m)},
                        "value": {"distributionValue": {"count": n.to_string(), "mean": 80.5,
                            "bucketOptions": options, "bucketCounts": counts}}
                    })
                })
                .collect();
            json!({
                "metric": {"type": "run.googleapis.com/request_latencies", "labels": {}},
                "resource": {"type": "cloud_run_revision", "labels": {"revision_name": rev(r)}},
                "metricKind": "DELTA", "valueType": "DISTRIBUTION", "unit": "ms", "points": points
            })
        })
        .collect();
    json!({"timeSeries": series, "unit": "ms"}).to_string()
}

/// The two compared revisions' request counts, one point each: sides need counts.
fn small_counts_page() -> String {
    let series: Vec<Value> = [3, 4]
        .iter()
        .map(|&r| {
            json!({
                "metric": {"labels": {"response_code_class": "2xx"}},
                "resource": {"labels": {"revision_name": rev(r)}},
                "points": [{"interval": {"endTime": end(0)}, "value": {"int64Value": "1000"}}]
            })
        })
        .collect();
    json!({"timeSeries": series}).to_string()
}

fn rollout() -> Rollout {
    let doc = json!({"version": "2", "status": "progressive", "rolloutPercentage": 25,
        "stableRevision": rev(3), "canaryRevision": rev(4)});
    Rollout::from_fields("web", doc.as_object().unwrap()).unwrap()
}

const WINDOW: Duration = Duration::from_secs(3000);

fn bench(c: &mut Criterion, counts: &str, latencies: &str) {
    let r = rollout();
    let small = small_counts_page();
    let mut g = c.benchmark_group("cloud_monitoring_10k_points");
    g.bench_function("request_count", |b| {
        b.iter(|| sample_from_pages(&r, now(), WINDOW, black_box(&[counts]), &[]))
    });
    g.bench_function("request_latencies", |b| {
        b.iter(|| sample_from_pages(&r, now(), WINDOW, &[&small], black_box(&[latencies])))
    });
    g.finish();
}

fn allocations(counts: &str, latencies: &str) {
    let r = rollout();
    let small = small_counts_page();
    for (name, c, l) in [
        ("request_count", &[counts][..], &[][..]),
        ("request_latencies", &[small.as_str()][..], &[latencies][..]),
    ] {
        // Testing mode writes no dhat-heap.json.
        let profiler = dhat::Profiler::builder().testing().build();
        let s = black_box(sample_from_pages(&r, now(), WINDOW, c, l));
        let stats = dhat::HeapStats::get();
        let canary = s.canary.as_ref().expect("canary side");
        assert!(
            s.stable.is_some() && (l.is_empty() || canary.p99_ms.is_some()),
            "{s:?}"
        );
        drop(s);
        drop(profiler);
        println!(
            "allocations for a 10,000-point {name} answer -> sample: {} blocks, {} bytes in total, peak {} bytes live",
            stats.total_blocks, stats.total_bytes, stats.max_bytes,
        );
    }
}

/// What refusing a 50,000-series instant-query answer allocates: `parse_answer` builds
/// only the first elements, where building the whole JSON tree first (as the reader once
/// did) costs many times the answer's size, for each of up to 16 x 14 queries in flight.
fn prometheus_allocations() {
    let element = r#"{"metric":{"revision":"web-00001"},"value":[1772366400.123,"12345.6"]}"#;
    let answer = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        vec![element; 50_000].join(",")
    );
    let measure = |name: &str, f: &dyn Fn(&str) -> bool| {
        let profiler = dhat::Profiler::builder().testing().build();
        let refused = black_box(f(black_box(&answer)));
        let stats = dhat::HeapStats::get();
        drop(profiler);
        assert!(refused, "{name}");
        println!(
            "refusing a {} KiB, 50,000-series Prometheus answer with {name}: peak {} bytes live, {} blocks",
            answer.len() / 1024,
            stats.max_bytes,
            stats.total_blocks,
        );
    };
    measure("parse_answer", &|a| {
        parse_answer(a).is_err_and(|e| e.contains("50000 series"))
    });
    // The stage's latency buckets: a `sum by (le)` answer that was not aggregated by `le`
    // alone is refused at the bucket after the cap, whatever follows.
    let buckets: Vec<String> = (0..50_000)
        .map(|i| {
            format!(r#"{{"metric":{{"le":"{i}","pod":"web-{i}"}},"value":[1772366400.123,"{i}"]}}"#)
        })
        .collect();
    let bucket_answer = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        buckets.join(",")
    );
    let profiler = dhat::Profiler::builder().testing().build();
    let refused = black_box(parse_buckets(black_box(&bucket_answer)));
    let stats = dhat::HeapStats::get();
    drop(profiler);
    assert!(refused.is_err_and(|e| e.contains(&format!("more than {MAX_BUCKETS} buckets"))));
    println!(
        "refusing a {} KiB, 50,000-bucket answer with parse_buckets: peak {} bytes live, {} blocks",
        bucket_answer.len() / 1024,
        stats.max_bytes,
        stats.total_blocks,
    );
    measure("a full serde_json::Value first", &|a| {
        serde_json::from_str::<Value>(a)
            .is_ok_and(|v| v["data"]["result"].as_array().map(Vec::len) == Some(50_000))
    });
}

/// 1 or 50 rollouts on one service, each with its own stable and canary revision.
fn fleet(n: usize) -> Vec<Rollout> {
    (0..n)
        .map(|k| {
            let doc = json!({"version": "2", "status": "progressive", "rolloutPercentage": 25,
                "stableRevision": rev(2 * k), "canaryRevision": rev(2 * k + 1)});
            Rollout::from_fields(&format!("r{k}"), doc.as_object().unwrap()).unwrap()
        })
        .collect()
}

/// Requests a loopback fake of each source receives for one sample round, each rollout
/// sampled on its own (as before `sample_many`) and batched, at 1 and 50 rollouts; shown
/// per minute at the default refresh.
fn requests_per_minute() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = MetricsConfig::default();
    let rounds = 60.0 / d.refresh.as_secs_f64();
    let cm =
        http_fake::FakeServer::start(|_| http_fake::Response::json(200, r#"{"timeSeries": []}"#));
    let prom = http_fake::FakeServer::start(|_| {
        http_fake::Response::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
    });
    let sources = [
        (
            "cloud-monitoring",
            &cm,
            format!(
                "kind = \"cloud-monitoring\"\nproject_id = \"p\"\nservice = \"svc\"\nendpoint = \"{}\"\ncredentials = \"none\"",
                cm.url()
            ),
        ),
        (
            "prometheus (default templates)",
            &prom,
            format!("kind = \"prometheus\"\nendpoint = \"{}\"", prom.url()),
        ),
    ];
    println!(
        "requests per minute at refresh {}s, for rollouts on one service:",
        d.refresh.as_secs()
    );
    for (name, server, text) in sources {
        let cfg: MetricsConfig = toml::from_str(&text).unwrap();
        let src: std::sync::Arc<dyn MetricsSource> = build_source(&cfg).unwrap().unwrap();
        let mut line = format!("  {name}:");
        for n in [1, 50] {
            let rollouts = fleet(n);
            let now = now();
            let before = server.requests().len();
            rt.block_on(async {
                for r in &rollouts {
                    src.sample(r, now).await;
                }
            });
            let each = server.requests().len() - before;
            rt.block_on(src.sample_many(&rollouts, now));
            let batched = server.requests().len() - before - each;
            line.push_str(&format!(
                " {n} rollout{}: {} per rollout, {} batched;",
                if n == 1 { "" } else { "s" },
                each as f64 * rounds,
                batched as f64 * rounds,
            ));
        }
        println!("{}", line.trim_end_matches(';'));
    }
}

fn main() {
    let counts = counts_page();
    let latencies = latencies_page();
    println!(
        "answer sizes: request_count {} KiB, request_latencies {} KiB",
        counts.len() / 1024,
        latencies.len() / 1024
    );
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &counts, &latencies);
    c.final_summary();
    allocations(&counts, &latencies);
    prometheus_allocations();
    requests_per_minute();
}
