//! Cloud Run metrics from Cloud Monitoring's REST API (`projects.timeSeries.list`).
//!
//! Two list calls per sample, both over `[now - window, now]` with 60 s alignment
//! (Cloud Run writes a point a minute) and `ALIGN_DELTA` + `REDUCE_SUM`:
//! - `run.googleapis.com/request_count` grouped by revision and `response_code_class`:
//!   requests are the sum over every class, errors the `5xx` class;
//! - `run.googleapis.com/request_latencies` grouped by revision: the per-minute
//!   distributions are summed here and the percentiles computed from the merged buckets.
//!   `REDUCE_PERCENTILE_99` would give one p99 per minute, and per-minute percentiles
//!   cannot be combined into the window's; summed buckets give the window's exact
//!   histogram, and all four percentiles from one call.
//!
//! Per-minute points also keep the freshness check honest: the newest point's `endTime` is
//! the end of the newest minute with traffic, not the end of the query interval.
//!
//! Cloud Run's points show up minutes late (`CLOUD_MONITORING_DELAY`), so the interval
//! reaches back the window plus that delay, and every sample carries the delay for the
//! freshness gate.
//!
//! Stage totals (`judgment = "stage"`): one more call per metric and rollout over its two
//! revisions since its stage began (at most a day), aligned to the whole span so each
//! series is one point; a stage's span is its own, so rollouts cannot share the calls. The
//! latency distributions give each side's requests over the bucket holding stable's p99
//! (the sequential latency test's counts). A rollout without a stage start, or a span under
//! a minute (the alignment's least), has none and is judged on the window.
//!
//! `history` (the sparklines, `report`) makes the same two calls once over the whole span
//! and sums each window from the per-minute points it covers.
//!
//! `sample_many` asks the same two calls once for every rollout of the service: filtered on
//! the service (and region) alone, grouped by revision as always, then split by each
//! rollout's revisions. 50 rollouts cost what one does.
//!
//! Every size in an answer is bounded before anything is allocated for it (bucket counts,
//! series, points, pages, the body itself): a hostile or broken answer makes the sample
//! inconclusive with the reason, never exhausts memory.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::FutureExt;
use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tokio::time::Instant;

use super::buckets::{self, quantile_bucket};
use super::config::{CLOUD_MONITORING_DELAY, MetricsConfig};
use super::http::{ERROR_BODY_CHARS, Http};
use super::redact;
use super::{Distinct, MetricsSource, Revisions, StageJob, stage_span, stage_totals_each};
use crate::domain::health::{Counts, HealthSample, SideStats, SlowTotals, StageTotals};
use crate::domain::rollout::Rollout;
use crate::domain::units::format_duration;

pub const REQUEST_COUNT: &str = "run.googleapis.com/request_count";
pub const REQUEST_LATENCIES: &str = "run.googleapis.com/request_latencies";
pub const ALIGNMENT_PERIOD: &str = "60s";
/// A runaway `nextPageToken` loop ends here.
const MAX_PAGES: usize = 100;
/// Per metric and query. Two revisions times five response classes is ten series of one
/// point a minute: these allow for two-week windows and stray revisions with room to spare,
/// or a whole service's serving revisions over hours.
const MAX_SERIES: usize = 2_000;
const MAX_POINTS: usize = 200_000;
/// Cloud Run's latency histograms have about a hundred buckets.
pub const MAX_BUCKETS: usize = 10_000;
/// Google's page tokens are short; a huge one would only grow the next URL.
const MAX_PAGE_TOKEN: usize = 4096;

pub struct CloudMonitoring {
    cfg: MetricsConfig,
    base: String,
    project: String,
    service: String,
    http: Http,
}

impl CloudMonitoring {
    pub fn new(cfg: &MetricsConfig) -> Result<CloudMonitoring, String> {
        let project = cfg
            .project_id
            .clone()
            .ok_or("metrics.project_id is required for cloud-monitoring")?;
        let service = cfg
            .service
            .clone()
            .ok_or("metrics.service is required for cloud-monitoring")?;
        Ok(CloudMonitoring {
            base: cfg.base_url().unwrap_or_default(),
            http: Http::new(
                cfg.effective_credentials(),
                cfg.retries,
                cfg.max_response_bytes,
            )?,
            cfg: cfg.clone(),
            project,
            service,
        })
    }

    /// The `timeSeries.list` URL for one metric over `revisions` (every revision of the
    /// service when there are none) over `[start, end]`, with points `alignment` apart ("60s").
    pub fn list_url(
        &self,
        metric: &str,
        revisions: &[&str],
        (start, now): (DateTime<Utc>, DateTime<Utc>),
        alignment: &str,
        page_token: Option<&str>,
    ) -> Result<Url, String> {
        let mut url = Url::parse(&format!(
            "{}/v3/projects/{}/timeSeries",
            self.base, self.project
        ))
        .map_err(|e| format!("bad Cloud Monitoring URL: {e}"))?;
        let mut filter = format!(
            "metric.type = \"{metric}\" AND resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"{}\"",
            quote(&self.service)
        );
        if let Some(region) = &self.cfg.region {
            filter.push_str(&format!(
                " AND resource.labels.location = \"{}\"",
                quote(region)
            ));
        }
        if !revisions.is_empty() {
            let list: Vec<String> = revisions
                .iter()
                .map(|r| format!("\"{}\"", quote(r)))
                .collect();
            filter.push_str(&format!(
                " AND resource.labels.revision_name = one_of({})",
                list.join(", ")
            ));
        }
        let mut q = url.query_pairs_mut();
        q.append_pair("filter", &filter)
            .append_pair("interval.startTime", &rfc3339(start))
            .append_pair("interval.endTime", &rfc3339(now))
            .append_pair("aggregation.alignmentPeriod", alignment)
            .append_pair("aggregation.perSeriesAligner", "ALIGN_DELTA")
            .append_pair("aggregation.crossSeriesReducer", "REDUCE_SUM")
            .append_pair("aggregation.groupByFields", "resource.labels.revision_name");
        if metric == REQUEST_COUNT {
            q.append_pair(
                "aggregation.groupByFields",
                "metric.labels.response_code_class",
            );
        }
        q.append_pair("view", "FULL");
        if let Some(t) = page_token {
            q.append_pair("pageToken", t);
        }
        drop(q);
        Ok(url)
    }

    /// Every page of one metric over `span` (start, end, alignment), folded into `tally`
    /// (one per routed revision) as it arrives. `filter`: the revisions to ask for; none
    /// asks for the whole service.
    async fn fetch(
        &self,
        metric: &str,
        filter: &[&str],
        routes: &Distinct<'_>,
        span: (DateTime<Utc>, DateTime<Utc>, &str),
        deadline: Instant,
        tally: &mut [SideTally],
    ) -> Result<(), String> {
        self.fetch_pages(metric, filter, span, deadline, |body, budget| {
            add_page(body, metric, routes, &mut Fold::Whole(tally), budget)
        })
        .await
    }

    /// The window's span: `[now - window - delay, now]`, a point a minute.
    fn window_span(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, &'static str) {
        let start = now - chrono::Duration::from_std(self.cfg.query_span()).unwrap_or_default();
        (start, now, ALIGNMENT_PERIOD)
    }

    /// Every page of one metric over `span` (start, end, alignment), each handed to `add`
    /// as it arrives.
    async fn fetch_pages(
        &self,
        metric: &str,
        filter: &[&str],
        (start, end, alignment): (DateTime<Utc>, DateTime<Utc>, &str),
        deadline: Instant,
        mut add: impl FnMut(&str, &mut Budget) -> Result<Option<String>, String>,
    ) -> Result<(), String> {
        let mut token: Option<String> = None;
        let mut budget = Budget::default();
        for _ in 0..MAX_PAGES {
            let url = self.list_url(metric, filter, (start, end), alignment, token.as_deref())?;
            let body = self
                .http
                .get(url, deadline)
                .await
                .map_err(|e| format!("{}: {e}", short(metric)))?;
            token = add(&body, &mut budget).map_err(|e| self.http.scrub_body_text(&e))?;
            if token.is_none() {
                return Ok(());
            }
        }
        Err(format!("{}: more than {MAX_PAGES} pages", short(metric)))
    }
}

#[async_trait]
impl MetricsSource for CloudMonitoring {
    fn describe(&self) -> String {
        let region = self
            .cfg
            .region
            .as_deref()
            .map(|r| format!(" in {r}"))
            .unwrap_or_default();
        format!(
            "Cloud Monitoring: Cloud Run service {}{region}, project {} ({} window, data ~{} behind)",
            self.service,
            self.project,
            format_duration(self.cfg.window),
            format_duration(self.cfg.effective_ingestion_delay())
        )
    }

    fn ingestion_delay(&self) -> std::time::Duration {
        self.cfg.effective_ingestion_delay()
    }

    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample {
        let mut one = self
            .sample_group(std::slice::from_ref(rollout), now, false)
            .await;
        one.remove(0)
    }

    /// One pair of list calls for all `rollouts`, whatever their number.
    async fn sample_many(&self, rollouts: &[Rollout], now: DateTime<Utc>) -> Vec<HealthSample> {
        self.sample_group(rollouts, now, true).await
    }

    /// The same two calls over the whole span, one point a minute per series: each window
    /// is summed from the minutes it covers (requests, errors, latency buckets).
    async fn history(
        &self,
        rollout: &Rollout,
        end: DateTime<Utc>,
        step: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        let times = super::history_times(end, step, points);
        let Some(first) = times.first().copied() else {
            return Ok(Vec::new());
        };
        let revs = [Revisions::of(rollout)];
        let routes = Distinct::of(&revs);
        if routes.names.is_empty() {
            return Err(revs[0].missing(0));
        }
        let start = first - chrono::Duration::from_std(self.cfg.window).unwrap_or_default();
        let deadline = Instant::now() + self.cfg.timeout;
        let mut counts = Minutes::default();
        let mut latency = Minutes::default();
        let work = async {
            tokio::join!(
                self.fetch_pages(
                    REQUEST_COUNT,
                    &routes.names,
                    (start, end, ALIGNMENT_PERIOD),
                    deadline,
                    |body, budget| add_page(
                        body,
                        REQUEST_COUNT,
                        &routes,
                        &mut Fold::ByMinute(&mut counts, routes.names.len()),
                        budget
                    )
                ),
                self.fetch_pages(
                    REQUEST_LATENCIES,
                    &routes.names,
                    (start, end, ALIGNMENT_PERIOD),
                    deadline,
                    |body, budget| add_page(
                        body,
                        REQUEST_LATENCIES,
                        &routes,
                        &mut Fold::ByMinute(&mut latency, routes.names.len()),
                        budget
                    )
                ),
            )
        };
        let grace = std::time::Duration::from_millis(200);
        let (c, l) = tokio::time::timeout_at(deadline + grace, work)
            .await
            .map_err(|_| {
                format!(
                    "Cloud Monitoring did not answer within {}",
                    format_duration(self.cfg.timeout)
                )
            })?;
        c.map_err(|e| self.http.scrub(&format!("Cloud Monitoring {e}")))?;
        let notes: Vec<String> = l
            .err()
            .map(|e| self.http.scrub(&format!("Cloud Monitoring {e}")))
            .into_iter()
            .collect();
        Ok(windows_of(
            &revs[0],
            &routes,
            &counts,
            &latency,
            notes,
            &times,
            self.cfg.window,
        )
        .into_iter()
        .map(|mut s| {
            s.ingestion_delay = self.cfg.effective_ingestion_delay();
            s
        })
        .collect())
    }
}

/// Per-minute tallies of each routed revision, by the minute's end.
type Minutes = std::collections::BTreeMap<DateTime<Utc>, Vec<SideTally>>;

/// Where a page's points go: one tally per revision for the whole interval, or one per
/// revision per minute.
enum Fold<'a> {
    Whole(&'a mut [SideTally]),
    ByMinute(&'a mut Minutes, usize),
}

impl Fold<'_> {
    fn at(&mut self, end: DateTime<Utc>, k: usize) -> &mut SideTally {
        match self {
            Fold::Whole(t) => &mut t[k],
            Fold::ByMinute(m, n) => &mut m
                .entry(end)
                .or_insert_with(|| (0..*n).map(|_| SideTally::default()).collect())[k],
        }
    }
}

/// The windows ending at each of `times`, summed from the minutes they cover.
fn windows_of(
    revs: &Revisions,
    routes: &Distinct,
    counts: &Minutes,
    latency: &Minutes,
    notes: Vec<String>,
    times: &[DateTime<Utc>],
    window: std::time::Duration,
) -> Vec<HealthSample> {
    let span = chrono::Duration::from_std(window).unwrap_or_default();
    let sum = |minutes: &Minutes, t: DateTime<Utc>| -> Vec<SideTally> {
        let mut total = tallies(routes);
        for (_, per_rev) in minutes.range((
            std::ops::Bound::Excluded(t - span),
            std::ops::Bound::Included(t),
        )) {
            for (into, from) in total.iter_mut().zip(per_rev) {
                into.absorb(from);
            }
        }
        total
    };
    times
        .iter()
        .map(|t| {
            let tally = Tally {
                counts: sum(counts, *t),
                latency: sum(latency, *t),
                failed: None,
                notes: notes.clone(),
            };
            tally.finish(revs, routes, *t, window)
        })
        .collect()
}

/// History from already fetched `timeSeries.list` answers (for tests).
pub fn history_from_pages(
    rollout: &Rollout,
    times: &[DateTime<Utc>],
    window: std::time::Duration,
    counts: &[&str],
    latencies: &[&str],
) -> Result<Vec<HealthSample>, String> {
    let revs = [Revisions::of(rollout)];
    let routes = Distinct::of(&revs);
    let mut by_metric = [Minutes::default(), Minutes::default()];
    for (i, (pages, metric)) in [(counts, REQUEST_COUNT), (latencies, REQUEST_LATENCIES)]
        .into_iter()
        .enumerate()
    {
        let mut budget = Budget::default();
        for body in pages {
            add_page(
                body,
                metric,
                &routes,
                &mut Fold::ByMinute(&mut by_metric[i], routes.names.len()),
                &mut budget,
            )?;
        }
    }
    let [c, l] = by_metric;
    Ok(windows_of(
        &revs[0],
        &routes,
        &c,
        &l,
        Vec::new(),
        times,
        window,
    ))
}

impl CloudMonitoring {
    /// `rollout`'s requests and errors per side since its stage began: one `request_count`
    /// call over its two revisions, aligned to the span (whole minutes, at most a day) so
    /// each series is one point. None without a stage start or both revisions, for a stage
    /// under a minute old, or when the call fails (the window judges then). A
    /// `request_latencies` call over the same span gives the requests over stable's p99
    /// bucket (`slow_over_stable_p99`), where both sides have one bucket layout. Both calls
    /// go out at once.
    async fn stage_totals(
        &self,
        rollout: &Rollout,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Option<StageTotals> {
        let minutes = stage_span(rollout, now)?.as_secs() / 60;
        if minutes == 0 {
            return None;
        }
        let span = chrono::Duration::minutes(i64::try_from(minutes).ok()?);
        let revs = [Revisions::of(rollout)];
        let (stable, canary) = (revs[0].get(0)?, revs[0].get(1)?);
        let routes = Distinct::of(&revs);
        let mut tally = tallies(&routes);
        let mut latency = tallies(&routes);
        let alignment = format!("{}s", minutes * 60);
        let span_of = (now - span, now, alignment.as_str());
        let names = &routes.names;
        let (counted, timed) = tokio::join!(
            self.fetch(REQUEST_COUNT, names, &routes, span_of, deadline, &mut tally),
            self.fetch(
                REQUEST_LATENCIES,
                names,
                &routes,
                span_of,
                deadline,
                &mut latency
            ),
        );
        counted.ok()?;
        let slow = timed.ok().and_then(|_| {
            slow_over_stable_p99(
                &latency[routes.index[stable]],
                &latency[routes.index[canary]],
            )
        });
        // A revision that served nobody this stage has no series: zero requests.
        let counts = |rev: &str| {
            let t = &tally[routes.index[rev]];
            Counts {
                requests: t.requests,
                errors: t.errors.min(t.requests),
            }
        };
        Some(StageTotals {
            since: now - span,
            stable: counts(stable),
            canary: counts(canary),
            slow,
        })
    }

    /// Samples `rollouts` from one `timeSeries.list` per metric: over their revisions, or
    /// over the whole service (`service_wide`, so the query does not grow with them). A
    /// failed call fails every rollout's sample alike.
    async fn sample_group(
        &self,
        rollouts: &[Rollout],
        now: DateTime<Utc>,
        service_wide: bool,
    ) -> Vec<HealthSample> {
        let revs: Vec<Revisions> = rollouts.iter().map(Revisions::of).collect();
        let routes = Distinct::of(&revs);
        let mut counts = tallies(&routes);
        let mut latency = tallies(&routes);
        let mut failed = None;
        let mut notes = Vec::new();
        let mut stages = vec![None; rollouts.len()];
        if !routes.names.is_empty() {
            let filter: &[&str] = if service_wide { &[] } else { &routes.names };
            let deadline = Instant::now() + self.cfg.timeout;
            let window = self.window_span(now);
            let stage_jobs: Vec<StageJob> = rollouts
                .iter()
                .map(|r| self.stage_totals(r, now, deadline).boxed())
                .collect();
            let work = async {
                tokio::join!(
                    self.fetch(
                        REQUEST_COUNT,
                        filter,
                        &routes,
                        window,
                        deadline,
                        &mut counts
                    ),
                    self.fetch(
                        REQUEST_LATENCIES,
                        filter,
                        &routes,
                        window,
                        deadline,
                        &mut latency
                    ),
                    stage_totals_each(stage_jobs),
                )
            };
            let grace = std::time::Duration::from_millis(200);
            match tokio::time::timeout_at(deadline + grace, work).await {
                Ok((c, l, totals)) => {
                    stages = totals;
                    if let Err(e) = c {
                        failed = Some(format!("Cloud Monitoring {e}"));
                    } else if let Err(e) = l {
                        notes.push(format!("Cloud Monitoring {e}"));
                    }
                }
                Err(_) => {
                    failed = Some(format!(
                        "Cloud Monitoring did not answer within {}",
                        format_duration(self.cfg.timeout)
                    ))
                }
            }
        }
        let tally = Tally {
            counts,
            latency,
            failed,
            notes,
        };
        revs.iter()
            .zip(stages)
            .map(|(r, stage)| {
                let mut s = tally.finish(r, &routes, now, self.cfg.window);
                s.ingestion_delay = self.cfg.effective_ingestion_delay();
                s.source_error = s.source_error.map(|e| self.http.scrub(&e));
                // Totals beside a failed window would be judged without the data it lacks.
                if tally.failed.is_none() {
                    s.stage = stage;
                }
                s
            })
            .collect()
    }
}

/// One sample from already fetched `timeSeries.list` answers (for tests and benches).
pub fn sample_from_pages(
    rollout: &Rollout,
    now: DateTime<Utc>,
    window: std::time::Duration,
    counts: &[&str],
    latencies: &[&str],
) -> HealthSample {
    let revs = [Revisions::of(rollout)];
    let routes = Distinct::of(&revs);
    let mut tally = Tally {
        counts: tallies(&routes),
        latency: tallies(&routes),
        failed: None,
        notes: Vec::new(),
    };
    for (pages, metric) in [(counts, REQUEST_COUNT), (latencies, REQUEST_LATENCIES)] {
        let mut budget = Budget::default();
        for body in pages {
            let target = if metric == REQUEST_COUNT {
                &mut tally.counts
            } else {
                &mut tally.latency
            };
            if let Err(e) = add_page(body, metric, &routes, &mut Fold::Whole(target), &mut budget) {
                let e = redact::clip(&redact::secrets(&e, &[]), ERROR_BODY_CHARS);
                if metric == REQUEST_COUNT {
                    tally.failed = Some(e);
                } else {
                    tally.notes.push(e);
                }
            }
        }
    }
    let mut s = tally.finish(&revs[0], &routes, now, window);
    s.ingestion_delay = CLOUD_MONITORING_DELAY;
    s
}

/// Requests over the upper bound of the bucket holding stable's p99 this stage, per side
/// (`buckets::slow_over_stable_p99`). None without both sides' distributions in one layout.
fn slow_over_stable_p99(stable: &SideTally, canary: &SideTally) -> Option<SlowTotals> {
    if stable.dist_problem.is_some() || canary.dist_problem.is_some() {
        return None;
    }
    let (layout, stable_counts) = stable.dist.as_ref()?;
    let (canary_layout, canary_counts) = canary.dist.as_ref()?;
    if layout != canary_layout {
        return None;
    }
    buckets::slow_over_stable_p99(stable_counts, canary_counts, |i| layout.bounds(i).1)
}

/// One empty tally per distinct revision.
fn tallies(routes: &Distinct) -> Vec<SideTally> {
    routes.names.iter().map(|_| SideTally::default()).collect()
}

fn short(metric: &str) -> &str {
    metric.rsplit('/').next().unwrap_or(metric)
}

/// Filter strings are double-quoted; a stray quote in a document must not end one early.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a group's two list calls gave, per routed revision.
#[derive(Debug, Default)]
struct Tally {
    counts: Vec<SideTally>,
    latency: Vec<SideTally>,
    /// The request counts are unusable: both sides of every rollout are unknown.
    failed: Option<String>,
    notes: Vec<String>,
}

#[derive(Debug, Default)]
struct SideTally {
    series: usize,
    requests: u64,
    errors: u64,
    newest: Option<DateTime<Utc>>,
    dist: Option<(Layout, Vec<u64>)>,
    dist_problem: Option<String>,
}

impl Tally {
    /// One rollout's sample: the tallies of its two revisions.
    fn finish(
        &self,
        revs: &Revisions,
        routes: &Distinct,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> HealthSample {
        let mut notes = self.notes.clone();
        let mut sides = [None, None];
        if self.failed.is_none() {
            for (i, slot) in sides.iter_mut().enumerate() {
                let Some(rev) = revs.get(i) else {
                    notes.push(revs.missing(i));
                    continue;
                };
                let k = routes.index[rev];
                let c = &self.counts[k];
                if c.series == 0 {
                    notes.push(format!(
                        "no request_count data for revision {rev} in the last {}",
                        format_duration(window)
                    ));
                    continue;
                }
                let mut s = SideStats {
                    requests: c.requests,
                    errors: c.errors,
                    newest_point_at: c.newest,
                    ..SideStats::default()
                };
                let l = &self.latency[k];
                match (&l.dist, &l.dist_problem) {
                    (_, Some(p)) => notes.push(format!("{rev}: {p}")),
                    (Some((layout, counts)), None) => {
                        [s.p50_ms, s.p75_ms, s.p95_ms, s.p99_ms] =
                            [0.50, 0.75, 0.95, 0.99].map(|q| quantile(layout, counts, q));
                    }
                    (None, None) if c.requests > 0 => {
                        notes.push(format!("no request_latencies data for revision {rev}"))
                    }
                    (None, None) => {}
                }
                *slot = Some(s);
            }
        }
        let [stable, canary] = sides;
        let error = self.failed.iter().cloned().chain(notes).collect::<Vec<_>>();
        HealthSample {
            taken_at: now,
            window,
            stable,
            canary,
            source_error: (!error.is_empty()).then(|| error.join("; ")),
            ingestion_delay: std::time::Duration::ZERO,
            stage: None,
        }
    }
}

/// Series and points seen so far in one metric's answer, across its pages.
#[derive(Debug, Default)]
struct Budget {
    series: usize,
    points: usize,
}

/// Folds one page into the tallies of the routed revisions (others are skipped); returns
/// the next page token.
fn add_page(
    body: &str,
    metric: &str,
    routes: &Distinct,
    tally: &mut Fold,
    budget: &mut Budget,
) -> Result<Option<String>, String> {
    let name = short(metric);
    let page: ListPage =
        serde_json::from_str(body).map_err(|e| format!("{name}: malformed answer: {e}"))?;
    if let Some(first) = page.execution_errors.first() {
        return Err(format!(
            "{name}: incomplete answer ({} execution errors, first: {first})",
            page.execution_errors.len()
        ));
    }
    budget.series += page.time_series.len();
    budget.points += page
        .time_series
        .iter()
        .map(|s| s.points.len())
        .sum::<usize>();
    if budget.series > MAX_SERIES || budget.points > MAX_POINTS {
        return Err(format!(
            "{name}: the answer holds {} series and {} points, more than the {MAX_SERIES} series and {MAX_POINTS} points read (shorten metrics.window or set metrics.region)",
            budget.series, budget.points
        ));
    }
    if let Some(t) = page.next_page_token.as_deref()
        && t.len() > MAX_PAGE_TOKEN
    {
        return Err(format!(
            "{name}: a nextPageToken of {} characters is not plausible",
            t.len()
        ));
    }
    for series in &page.time_series {
        let Some(rev) = series.resource.labels.revision_name.as_deref() else {
            continue;
        };
        let Some(&k) = routes.index.get(rev) else {
            continue;
        };
        let is_error = series
            .metric
            .labels
            .response_code_class
            .as_deref()
            .is_some_and(|c| c == "5xx");
        // A series counts once in the whole tally; a minute's tally counts that it had one.
        let by_minute = matches!(tally, Fold::ByMinute(..));
        if !by_minute {
            tally.at(DateTime::UNIX_EPOCH, k).series += 1;
        }
        for p in &series.points {
            let t = tally.at(p.interval.end_time, k);
            if by_minute {
                t.series = 1;
            }
            t.newest = t.newest.max(Some(p.interval.end_time));
            if metric == REQUEST_COUNT {
                let n = p
                    .value
                    .count()
                    .ok_or_else(|| format!("{name}: a point for {rev} has no int64Value"))?;
                t.requests = t.requests.saturating_add(n);
                if is_error {
                    t.errors = t.errors.saturating_add(n);
                }
            } else if let Some(d) = &p.value.distribution_value {
                t.add_distribution(d);
            }
        }
    }
    Ok(page
        .next_page_token
        .filter(|t| !t.is_empty())
        .map(Cow::into_owned))
}

impl SideTally {
    /// Adds another tally of the same revision (a later minute) to this one.
    fn absorb(&mut self, other: &SideTally) {
        self.series += other.series;
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
        self.newest = self.newest.max(other.newest);
        if self.dist_problem.is_none() {
            self.dist_problem = other.dist_problem.clone();
        }
        let Some((layout, counts)) = &other.dist else {
            return;
        };
        match &mut self.dist {
            None => self.dist = Some((layout.clone(), counts.clone())),
            Some((have, sums)) if have == layout => {
                for (sum, c) in sums.iter_mut().zip(counts) {
                    *sum = sum.saturating_add(*c);
                }
            }
            Some(_) => {
                self.dist_problem = Some("latency bucket layouts changed within the window".into());
            }
        }
    }

    fn add_distribution(&mut self, d: &Distribution) {
        if d.count.0 == 0 || self.dist_problem.is_some() {
            return;
        }
        let layout = match d.bucket_options.as_ref().map(Layout::try_from) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                self.dist_problem = Some(e);
                return;
            }
            None => {
                self.dist_problem = Some("a latency distribution has no bucketOptions".into());
                return;
            }
        };
        if d.bucket_counts.len() > layout.buckets() {
            self.dist_problem = Some(format!(
                "a latency distribution has {} bucket counts for {} buckets",
                d.bucket_counts.len(),
                layout.buckets()
            ));
            return;
        }
        let (have, counts) = self
            .dist
            .get_or_insert_with(|| (layout.clone(), vec![0; layout.buckets()]));
        if *have != layout {
            // Merging differently bucketed histograms would invent a distribution.
            self.dist_problem = Some("latency bucket layouts changed within the window".into());
            return;
        }
        for (sum, c) in counts.iter_mut().zip(&d.bucket_counts) {
            *sum = sum.saturating_add(c.0);
        }
    }
}

/// Bucket boundaries as the Distribution type documents them: bucket 0 is the underflow
/// `(-inf, first)`, the last the overflow `[last, +inf)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    Linear {
        finite: usize,
        width: f64,
        offset: f64,
    },
    Exponential {
        finite: usize,
        growth: f64,
        scale: f64,
    },
    Explicit(Vec<f64>),
}

impl Layout {
    /// Buckets including underflow and overflow.
    pub fn buckets(&self) -> usize {
        match self {
            Layout::Linear { finite, .. } | Layout::Exponential { finite, .. } => finite + 2,
            Layout::Explicit(b) => b.len() + 1,
        }
    }

    /// Upper bound of bucket `i` for `i < buckets() - 1`.
    fn upper(&self, i: usize) -> f64 {
        match self {
            Layout::Linear { width, offset, .. } => offset + width * i as f64,
            Layout::Exponential { growth, scale, .. } => scale * growth.powi(i as i32),
            Layout::Explicit(b) => b[i],
        }
    }

    fn bounds(&self, i: usize) -> (f64, f64) {
        let last = self.buckets() - 1;
        let lower = if i == 0 {
            f64::NEG_INFINITY
        } else {
            self.upper(i - 1)
        };
        let upper = if i >= last {
            f64::INFINITY
        } else {
            self.upper(i)
        };
        (lower, upper)
    }
}

impl TryFrom<&BucketOptions> for Layout {
    type Error = String;

    fn try_from(o: &BucketOptions) -> Result<Layout, String> {
        let bad = |what: &str| Err(format!("latency bucketOptions: {what}"));
        // Checked before anything is sized by them: a histogram is allocated per layout.
        let too_many = |n: u64| {
            Err(format!(
                "latency bucketOptions: {n} buckets is more than the {MAX_BUCKETS} read"
            ))
        };
        for n in [
            o.linear_buckets.as_ref().map(|l| l.num_finite_buckets),
            o.exponential_buckets.as_ref().map(|e| e.num_finite_buckets),
        ]
        .into_iter()
        .flatten()
        {
            if n > MAX_BUCKETS as i64 {
                return too_many(n as u64);
            }
        }
        if let Some(x) = &o.explicit_buckets
            && x.bounds.len() > MAX_BUCKETS
        {
            return too_many(x.bounds.len() as u64);
        }
        if let Some(l) = &o.linear_buckets {
            if l.num_finite_buckets < 1
                || !(l.width.is_finite() && l.width > 0.0)
                || !l.offset.is_finite()
            {
                return bad("invalid linearBuckets");
            }
            return Ok(Layout::Linear {
                finite: l.num_finite_buckets as usize,
                width: l.width,
                offset: l.offset,
            });
        }
        if let Some(e) = &o.exponential_buckets {
            if e.num_finite_buckets < 1
                || !(e.growth_factor.is_finite() && e.growth_factor > 1.0)
                || !(e.scale.is_finite() && e.scale > 0.0)
            {
                return bad("invalid exponentialBuckets");
            }
            return Ok(Layout::Exponential {
                finite: e.num_finite_buckets as usize,
                growth: e.growth_factor,
                scale: e.scale,
            });
        }
        if let Some(x) = &o.explicit_buckets {
            if x.bounds.is_empty()
                || x.bounds
                    .windows(2)
                    .any(|w| !(w[0].is_finite() && w[0] < w[1]))
            {
                return bad("explicitBuckets bounds must increase");
            }
            return Ok(Layout::Explicit(x.bounds.clone()));
        }
        bad("none of linearBuckets, exponentialBuckets, explicitBuckets")
    }
}

/// The `q` quantile of a bucketed histogram, interpolated linearly inside its bucket (as
/// Prometheus' `histogram_quantile` does). Latencies are never negative, so the underflow
/// bucket starts at 0; a rank in the overflow bucket answers its lower bound, the largest
/// value the histogram can vouch for.
pub fn quantile(layout: &Layout, counts: &[u64], q: f64) -> Option<f64> {
    let (i, rank, below) = quantile_bucket(counts, q)?;
    let (lower, upper) = layout.bounds(i);
    let lower = if lower.is_finite() {
        lower
    } else {
        upper.min(0.0)
    };
    if !upper.is_finite() {
        return Some(lower);
    }
    let within = ((rank - below as f64) / counts[i] as f64).clamp(0.0, 1.0);
    Some(lower + (upper - lower) * within)
}

// ---- the documented v3 response shapes (only the fields used) ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage<'a> {
    #[serde(default, borrow)]
    time_series: Vec<Series<'a>>,
    #[serde(default, borrow)]
    next_page_token: Option<Cow<'a, str>>,
    #[serde(default)]
    execution_errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Series<'a> {
    #[serde(default, borrow)]
    metric: Labelled<'a>,
    #[serde(default, borrow)]
    resource: Labelled<'a>,
    #[serde(default)]
    points: Vec<Point>,
}

#[derive(Deserialize, Default)]
struct Labelled<'a> {
    #[serde(default, borrow)]
    labels: Labels<'a>,
}

#[derive(Deserialize, Default)]
struct Labels<'a> {
    #[serde(default, borrow)]
    revision_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    response_code_class: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Point {
    interval: Interval,
    value: TypedValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interval {
    end_time: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedValue {
    int64_value: Option<Int>,
    double_value: Option<f64>,
    distribution_value: Option<Distribution>,
}

impl TypedValue {
    fn count(&self) -> Option<u64> {
        self.int64_value.map(|i| i.0).or_else(|| {
            self.double_value
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| d.round() as u64)
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Distribution {
    #[serde(default)]
    count: Int,
    bucket_options: Option<BucketOptions>,
    #[serde(default)]
    bucket_counts: Vec<Int>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketOptions {
    linear_buckets: Option<Linear>,
    exponential_buckets: Option<Exponential>,
    explicit_buckets: Option<Explicit>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Linear {
    num_finite_buckets: i64,
    width: f64,
    #[serde(default)]
    offset: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exponential {
    num_finite_buckets: i64,
    growth_factor: f64,
    scale: f64,
}

#[derive(Deserialize)]
struct Explicit {
    bounds: Vec<f64>,
}

/// An int64 as the JSON mapping sends it: a string ("123"), or a number from lenient servers.
#[derive(Debug, Default, Clone, Copy)]
struct Int(u64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative int64 (as a string or a number)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Int, E> {
                s.parse()
                    .map(Int)
                    .map_err(|_| E::custom(format!("'{s}' is not a count")))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Int, E> {
                Ok(Int(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Int, E> {
                u64::try_from(n)
                    .map(Int)
                    .map_err(|_| E::custom(format!("negative count {n}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_in_every_layout() {
        // Explicit: buckets (-inf,10) [10,20) [20,40) [40,inf).
        let l = Layout::Explicit(vec![10.0, 20.0, 40.0]);
        let c = [0, 50, 40, 10];
        assert_eq!(quantile(&l, &c, 0.5), Some(20.0));
        assert_eq!(quantile(&l, &c, 0.25), Some(15.0));
        assert_eq!(quantile(&l, &c, 0.75), Some(32.5));
        assert_eq!(quantile(&l, &c, 0.99), Some(40.0)); // overflow: its lower bound
        // Underflow starts at 0 for latencies.
        assert_eq!(quantile(&l, &[10, 0, 0, 0], 0.5), Some(5.0));
        // Exponential: scale 1, growth 2: (-inf,1) [1,2) [2,4) [4,8) [8,inf).
        let e = Layout::Exponential {
            finite: 3,
            growth: 2.0,
            scale: 1.0,
        };
        assert_eq!(e.buckets(), 5);
        assert_eq!(quantile(&e, &[0, 0, 0, 4], 0.5), Some(6.0));
        // Linear: width 5 from 0: (-inf,0) [0,5) [5,10) [10,inf).
        let li = Layout::Linear {
            finite: 2,
            width: 5.0,
            offset: 0.0,
        };
        assert_eq!(quantile(&li, &[0, 10, 10], 0.75), Some(7.5));
        assert_eq!(quantile(&li, &[0, 0, 0], 0.5), None);
        // Trailing zero buckets may be left out of bucketCounts.
        assert_eq!(quantile(&li, &[0, 10], 0.5), Some(2.5));
    }

    #[test]
    fn quantiles_of_huge_counts_do_not_overflow() {
        let l = Layout::Explicit(vec![10.0, 20.0, 40.0]);
        let c = [u64::MAX, u64::MAX, u64::MAX, 0];
        assert_eq!(quantile(&l, &c, 0.5), Some(15.0));
    }

    #[test]
    fn slow_counts_of_huge_buckets_saturate_rather_than_overflow() {
        let tally = |counts: Vec<u64>| SideTally {
            dist: Some((Layout::Explicit(vec![10.0, 20.0, 40.0]), counts)),
            ..SideTally::default()
        };
        // Stable's p99 is in [10, 20): everything above 20 ms counts.
        let stable = tally(vec![0, 1_000, 5, 5]);
        let canary = tally(vec![0, 1, u64::MAX, u64::MAX]);
        let slow = slow_over_stable_p99(&stable, &canary).unwrap();
        assert_eq!(slow.threshold_ms, 20.0);
        assert_eq!((slow.stable, slow.canary), (10, u64::MAX));
        // A p99 in the open last bucket has no threshold to count over.
        let top = tally(vec![0, 0, 0, 9]);
        assert_eq!(slow_over_stable_p99(&top, &canary), None);
    }

    #[test]
    fn int64_as_string_or_number() {
        let v: Vec<Int> = serde_json::from_str(r#"["12", 7, "0"]"#).unwrap();
        assert_eq!(v.iter().map(|i| i.0).collect::<Vec<_>>(), [12, 7, 0]);
        assert!(serde_json::from_str::<Int>(r#""-3""#).is_err());
        assert!(serde_json::from_str::<Int>("-3").is_err());
    }
}
