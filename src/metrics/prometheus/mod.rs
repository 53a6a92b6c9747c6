//! The Prometheus HTTP API (`/api/v1/query`, instant queries at `now`, and
//! `/api/v1/query_range` to backfill the sparklines) with PromQL templates. The same code talks to Cloud Monitoring's PromQL endpoint
//! (`.../v1/projects/P/location/global/prometheus`) with Google credentials.
//!
//! `sample_many` sends each template once for all rollouts when its shape allows it
//! (`promql::group`: `label="{revision}"` becomes `label=~"rev1|rev2|..."` and the result
//! keeps the label), then splits the answer by revision: 7 queries a round, not 14 per
//! rollout. A template that does not allow it makes every rollout use its own queries, and
//! `describe` says so.
//!
//! Answers are read without trusting their sizes: only the first elements of a result are
//! built (the rest are counted and skipped), and a range series longer than Prometheus' own
//! 11,000-point limit is refused, so a huge answer costs no more than its capped body.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use tokio::time::Instant;

use super::config::{MetricsConfig, fill};
use super::http::Http;
use super::promql::{self, Grouped};
use super::{Distinct, MetricsSource, Revisions, SIDE_NAMES};
use crate::domain::health::{HealthSample, SideStats};
use crate::domain::rollout::Rollout;
use crate::domain::units::format_duration;

pub const QUANTILES: [f64; 4] = [0.50, 0.75, 0.95, 0.99];
/// Prometheus refuses range queries of more points per series; so does this reader.
pub const MAX_RANGE_POINTS: usize = 11_000;
/// Result elements built; the rest of a longer result is only counted.
const KEPT_ELEMENTS: usize = 2;
/// Revision names (in characters) one grouped query asks for: about 100 Cloud Run names,
/// so a URL stays well under the 8 KiB proxies allow; more take one more query each.
pub const GROUP_NAME_CHARS: usize = 4000;
/// Grouped queries in flight at once: one round's 7 templates, twice.
const GROUP_QUERIES_IN_FLIGHT: usize = 14;

pub struct Prometheus {
    cfg: MetricsConfig,
    base: String,
    http: Http,
    /// The templates rewritten for many revisions, or why they cannot be.
    grouped: Result<GroupPlan, String>,
}

/// A query's answer: one number and its timestamp, or nothing (an empty vector).
type Answer = Option<(f64, DateTime<Utc>)>;

/// The templates of one sample, grouped: requests, errors, newest (when set), then the four
/// quantiles, in the order of `Answers`.
struct GroupPlan {
    templates: Vec<Grouped>,
    has_newest: bool,
}

impl GroupPlan {
    fn new(cfg: &MetricsConfig) -> Result<GroupPlan, String> {
        let window = format_duration(cfg.query_span());
        let t = &cfg.prometheus;
        let one = |name: &str, template: &str, quantile: Option<f64>| {
            let q = quantile.map(|q| q.to_string()).unwrap_or_default();
            let filled = fill(template, &[("window", &window), ("quantile", &q)]);
            promql::group(&filled).map_err(|e| format!("{name} template: {e}"))
        };
        let mut templates = vec![
            one("requests", &t.requests, None)?,
            one("errors", &t.errors, None)?,
        ];
        let has_newest = !t.newest.trim().is_empty();
        if has_newest {
            templates.push(one("newest", &t.newest, None)?);
        }
        for q in QUANTILES {
            templates.push(one("latency", &t.latency, Some(q))?);
        }
        Ok(GroupPlan {
            templates,
            has_newest,
        })
    }
}

/// One side's answers to its seven queries.
struct Answers {
    requests: Result<Answer, String>,
    errors: Result<Answer, String>,
    /// None when no `newest` template is set.
    newest: Option<Result<Answer, String>>,
    quantiles: [Result<Answer, String>; 4],
}

impl Answers {
    /// From the answers in `GroupPlan` order.
    fn from_list(list: Vec<Result<Answer, String>>, has_newest: bool) -> Answers {
        let mut list = list.into_iter();
        let mut next = || list.next().unwrap_or_else(|| Err("no answer".into()));
        Answers {
            requests: next(),
            errors: next(),
            newest: has_newest.then(&mut next),
            quantiles: [next(), next(), next(), next()],
        }
    }

    /// A side's numbers; the first problem, in the order the answers are read, otherwise.
    fn side(self, rev: &str) -> Result<SideStats, String> {
        let (requests, at) = self
            .requests
            .map_err(|e| format!("requests query: {e}"))?
            .ok_or_else(|| format!("no data for revision {rev}"))?;
        let (errors, _) = self.errors.map_err(|e| format!("errors query: {e}"))?.ok_or_else(|| {
            format!("errors query returned no data for revision {rev} (add `or vector(0)` if no series means no errors)")
        })?;
        let newest_point_at = match self
            .newest
            .transpose()
            .map_err(|e| format!("newest query: {e}"))?
        {
            None => Some(at),
            Some(Some((t, _))) => seconds_to_time(t),
            Some(None) => None,
        };
        let ms = |a: Result<Answer, String>| -> Result<Option<f64>, String> {
            Ok(a.map_err(|e| format!("latency query: {e}"))?
                .map(|(v, _)| v)
                .filter(|v| v.is_finite() && *v >= 0.0))
        };
        let [q0, q1, q2, q3] = self.quantiles;
        Ok(SideStats {
            requests: count(requests, "requests")?,
            errors: count(errors, "errors")?,
            p50_ms: ms(q0)?,
            p75_ms: ms(q1)?,
            p95_ms: ms(q2)?,
            p99_ms: ms(q3)?,
            newest_point_at,
        })
    }
}

impl Prometheus {
    pub fn new(cfg: &MetricsConfig) -> Result<Prometheus, String> {
        let base = cfg
            .base_url()
            .ok_or("metrics.endpoint is required for prometheus")?;
        Ok(Prometheus {
            base,
            http: Http::new(
                cfg.effective_credentials(),
                cfg.retries,
                cfg.max_response_bytes,
            )?,
            cfg: cfg.clone(),
            grouped: GroupPlan::new(cfg),
        })
    }

    pub fn query_url(&self, promql: &str, now: DateTime<Utc>) -> Result<Url, String> {
        let mut url = Url::parse(&format!("{}/api/v1/query", self.base))
            .map_err(|e| format!("bad Prometheus URL: {e}"))?;
        let time = format!("{:.3}", now.timestamp_millis() as f64 / 1000.0);
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("time", &time);
        Ok(url)
    }

    async fn query(
        &self,
        promql: &str,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Answer, String> {
        let body = self
            .http
            .get(self.query_url(promql, now)?, deadline)
            .await?;
        parse_answer(&body).map_err(|e| self.http.scrub_body_text(&e))
    }

    pub fn range_url(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: std::time::Duration,
    ) -> Result<Url, String> {
        let mut url = Url::parse(&format!("{}/api/v1/query_range", self.base))
            .map_err(|e| format!("bad Prometheus URL: {e}"))?;
        let secs = |t: DateTime<Utc>| format!("{:.3}", t.timestamp_millis() as f64 / 1000.0);
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("start", &secs(start))
            .append_pair("end", &secs(end))
            .append_pair("step", &format!("{:.3}", step.as_secs_f64()));
        Ok(url)
    }

    /// One side's requests, errors and p99 at each of `times` (evenly `step` apart).
    async fn side_history(
        &self,
        side: usize,
        rev: &str,
        times: &[DateTime<Utc>],
        step: std::time::Duration,
        deadline: Instant,
    ) -> Result<Vec<Option<SideStats>>, String> {
        let (Some(start), Some(end)) = (times.first(), times.last()) else {
            return Ok(Vec::new());
        };
        let vars = SideVars::new(&self.cfg, side, rev);
        let t = &self.cfg.prometheus;
        let p99 = vars.fill_quantile(&t.latency, 0.99);
        let range = |q: String| async move {
            let body = self
                .http
                .get(self.range_url(&q, *start, *end, step)?, deadline)
                .await?;
            parse_matrix(&body).map_err(|e| self.http.scrub_body_text(&e))
        };
        let (requests, errors, p99) = tokio::join!(
            range(vars.fill(&t.requests)),
            range(vars.fill(&t.errors)),
            range(p99),
        );
        let requests = requests.map_err(|e| format!("requests query: {e}"))?;
        let errors = errors.map_err(|e| format!("errors query: {e}"))?;
        let p99 = p99.map_err(|e| format!("latency query: {e}"))?;
        let [requests, errors, p99] =
            [requests, errors, p99].map(|s| s.into_iter().collect::<HashMap<i64, f64>>());
        let at = |series: &HashMap<i64, f64>, t: &DateTime<Utc>| {
            series.get(&t.timestamp_millis()).copied()
        };
        Ok(times
            .iter()
            .map(|t| {
                let requests = count(at(&requests, t)?, "requests").ok()?;
                let errors = count(at(&errors, t)?, "errors").ok()?;
                Some(SideStats {
                    requests,
                    errors,
                    p50_ms: None,
                    p75_ms: None,
                    p95_ms: None,
                    p99_ms: at(&p99, t).filter(|v| v.is_finite() && *v >= 0.0),
                    newest_point_at: Some(*t),
                })
            })
            .collect())
    }

    async fn side(
        &self,
        side: usize,
        rev: &str,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<SideStats, String> {
        let vars = SideVars::new(&self.cfg, side, rev);
        let t = &self.cfg.prometheus;
        let quantile_queries: Vec<String> = QUANTILES
            .iter()
            .map(|q| vars.fill_quantile(&t.latency, *q))
            .collect();
        let newest_query = (!t.newest.trim().is_empty()).then(|| vars.fill(&t.newest));
        let (requests_query, errors_query) = (vars.fill(&t.requests), vars.fill(&t.errors));
        let (requests, errors, newest, q0, q1, q2, q3) = tokio::join!(
            self.query(&requests_query, now, deadline),
            self.query(&errors_query, now, deadline),
            async {
                match &newest_query {
                    Some(q) => Some(self.query(q, now, deadline).await),
                    None => None,
                }
            },
            self.query(&quantile_queries[0], now, deadline),
            self.query(&quantile_queries[1], now, deadline),
            self.query(&quantile_queries[2], now, deadline),
            self.query(&quantile_queries[3], now, deadline),
        );
        Answers {
            requests,
            errors,
            newest,
            quantiles: [q0, q1, q2, q3],
        }
        .side(rev)
    }

    /// A sample from both sides' outcomes.
    fn finish(
        &self,
        now: DateTime<Utc>,
        stable: Result<SideStats, String>,
        canary: Result<SideStats, String>,
    ) -> HealthSample {
        let mut problems = Vec::new();
        let mut keep = |r: Result<SideStats, String>, name: &str| match r {
            Ok(s) => Some(s),
            Err(e) => {
                let e = format!("{name}: {e}");
                if !problems.contains(&e) {
                    problems.push(e);
                }
                None
            }
        };
        let stable = keep(stable, "stable");
        let canary = keep(canary, "canary");
        HealthSample {
            taken_at: now,
            window: self.cfg.window,
            stable,
            canary,
            source_error: (!problems.is_empty()).then(|| self.http.scrub(&problems.join("; "))),
            ingestion_delay: self.cfg.effective_ingestion_delay(),
        }
    }

    fn too_slow(&self) -> String {
        format!(
            "Prometheus did not answer within {}",
            format_duration(self.cfg.timeout)
        )
    }

    /// Every rollout from one query per grouped template (per `GROUP_NAME_CHARS` of
    /// revision names), split by revision.
    async fn sample_grouped(
        &self,
        plan: &GroupPlan,
        rollouts: &[Rollout],
        now: DateTime<Utc>,
    ) -> Vec<HealthSample> {
        let revs: Vec<Revisions> = rollouts.iter().map(Revisions::of).collect();
        let Distinct { names, index } = Distinct::of(&revs);
        let chunks = chunks(&names);
        let deadline = Instant::now() + self.cfg.timeout;
        let jobs: Vec<(usize, std::ops::Range<usize>)> = (0..plan.templates.len())
            .flat_map(|t| chunks.iter().map(move |c| (t, c.clone())))
            .collect();
        type Job<'f> = futures::future::BoxFuture<
            'f,
            (usize, std::ops::Range<usize>, Vec<Result<Answer, String>>),
        >;
        let jobs: Vec<Job> = jobs
            .into_iter()
            .map(|(t, chunk)| {
                let asked = &names[chunk.clone()];
                self.grouped_query(&plan.templates[t], asked, now, deadline)
                    .map(move |answers| (t, chunk, answers))
                    .boxed()
            })
            .collect();
        let work = futures::stream::iter(jobs)
            .buffer_unordered(GROUP_QUERIES_IN_FLIGHT)
            .collect::<Vec<_>>();
        let grace = std::time::Duration::from_millis(200);
        // answers[template][revision]
        let answers: Result<Vec<Vec<Result<Answer, String>>>, String> =
            match tokio::time::timeout_at(deadline + grace, work).await {
                Err(_) => Err(self.too_slow()),
                Ok(done) => {
                    let mut all =
                        vec![vec![Err("no answer".to_string()); names.len()]; plan.templates.len()];
                    for (t, chunk, got) in done {
                        for (slot, a) in all[t][chunk].iter_mut().zip(got) {
                            *slot = a;
                        }
                    }
                    Ok(all)
                }
            };
        revs.iter()
            .map(|r| {
                let side = |i: usize| -> Result<SideStats, String> {
                    // A timeout stands for both sides, as in `sample`.
                    let all = answers.as_ref().map_err(Clone::clone)?;
                    let rev = r.get(i).ok_or_else(|| r.missing(i))?;
                    let k = index[rev];
                    let list = all.iter().map(|t| t[k].clone()).collect();
                    Answers::from_list(list, plan.has_newest).side(rev)
                };
                self.finish(now, side(0), side(1))
            })
            .collect()
    }

    /// One grouped template for `names`: each name's answer, in order.
    async fn grouped_query(
        &self,
        g: &Grouped,
        names: &[&str],
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Vec<Result<Answer, String>> {
        let regex = escape(&promql::alternatives(names));
        let promql = fill(&g.template, &[("revision", &regex)]);
        let got = async {
            let body = self
                .http
                .get(self.query_url(&promql, now)?, deadline)
                .await?;
            split_answer(&body, &g.label, names).map_err(|e| self.http.scrub_body_text(&e))
        }
        .await;
        // What `vector(N)` answers: N at the evaluation time.
        let at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        match got {
            Err(e) => vec![Err(e); names.len()],
            Ok(found) => found
                .into_iter()
                .map(|f| match f {
                    Found::None => Ok(g.fallback.map(|v| (v, at))),
                    Found::One(t, v) => point(t, &v).map(Some),
                    Found::Many(n) => Err(too_many_series(n)),
                })
                .collect(),
        }
    }
}

/// Consecutive runs of `names` of at most `GROUP_NAME_CHARS` characters (at least one name).
fn chunks(names: &[&str]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut chars) = (0, 0);
    for (i, n) in names.iter().enumerate() {
        let len = n.chars().count() + 1;
        if i > start && chars + len > GROUP_NAME_CHARS {
            out.push(start..i);
            (start, chars) = (i, 0);
        }
        chars += len;
    }
    if start < names.len() {
        out.push(start..names.len());
    }
    out
}

#[async_trait]
impl MetricsSource for Prometheus {
    fn describe(&self) -> String {
        let delay = self.cfg.effective_ingestion_delay();
        let delay = if delay.is_zero() {
            String::new()
        } else {
            format!(", data ~{} behind", format_duration(delay))
        };
        let mode = match &self.grouped {
            Ok(_) => "one query per template for all rollouts".to_string(),
            Err(why) => format!("queries per rollout, {why}"),
        };
        format!(
            "Prometheus at {} ({} window{delay}; {mode})",
            super::redact::secrets(&self.base, &[]),
            format_duration(self.cfg.window)
        )
    }

    fn ingestion_delay(&self) -> std::time::Duration {
        self.cfg.effective_ingestion_delay()
    }

    async fn history(
        &self,
        rollout: &Rollout,
        end: DateTime<Utc>,
        step: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        let grace = std::time::Duration::from_millis(200);
        let history = async {
            let revs = Revisions::of(rollout);
            let times = super::history_times(end, step, points.min(MAX_RANGE_POINTS));
            let deadline = Instant::now() + self.cfg.timeout;
            let one = |i: usize| {
                let (revs, times) = (&revs, &times);
                async move {
                    match revs.get(i) {
                        None => Err(revs.missing(i)),
                        Some(r) => self.side_history(i, r, times, step, deadline).await,
                    }
                }
            };
            let (stable, canary) = tokio::join!(one(0), one(1));
            let (stable, canary) = (stable?, canary?);
            Ok(times
                .iter()
                .zip(stable.into_iter().zip(canary))
                .map(|(t, (stable, canary))| HealthSample {
                    taken_at: *t,
                    window: self.cfg.window,
                    stable,
                    canary,
                    source_error: None,
                    ingestion_delay: self.cfg.effective_ingestion_delay(),
                })
                .collect())
        };
        tokio::time::timeout(self.cfg.timeout + grace, history)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "Prometheus did not answer within {}",
                    format_duration(self.cfg.timeout)
                ))
            })
            .map_err(|e| self.http.scrub(&e))
    }

    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample {
        let revs = Revisions::of(rollout);
        let deadline = Instant::now() + self.cfg.timeout;
        let revs = &revs;
        let one = |i: usize| {
            let rev = revs.get(i);
            async move {
                match rev {
                    None => Err(revs.missing(i)),
                    Some(r) => self.side(i, r, now, deadline).await,
                }
            }
        };
        let grace = std::time::Duration::from_millis(200);
        let (stable, canary) =
            match tokio::time::timeout_at(deadline + grace, async { tokio::join!(one(0), one(1)) })
                .await
            {
                Ok(pair) => pair,
                Err(_) => (Err(self.too_slow()), Err(self.too_slow())),
            };
        self.finish(now, stable, canary)
    }

    async fn sample_many(&self, rollouts: &[Rollout], now: DateTime<Utc>) -> Vec<HealthSample> {
        match &self.grouped {
            Ok(plan) => self.sample_grouped(plan, rollouts, now).await,
            Err(_) => super::sample_each(self, rollouts, now).await,
        }
    }
}

/// The envelope of an answer, with `result` skipped: read first to learn the result type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Head>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    result_type: String,
    #[serde(default)]
    result: Option<IgnoredAny>,
}

/// The answer again, with `result` read as `R`.
#[derive(Deserialize)]
struct Typed<R> {
    data: TypedData<R>,
}

#[derive(Deserialize)]
struct TypedData<R> {
    result: R,
}

/// The result type of a successful answer; a failed query says why.
fn result_type(body: &str) -> Result<String, String> {
    let r: Envelope = serde_json::from_str(body).map_err(|e| format!("malformed answer: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "query failed ({}): {}",
            r.error_type.as_deref().unwrap_or("error"),
            r.error.as_deref().unwrap_or("no reason given")
        ));
    }
    match r.data {
        Some(Head {
            result_type,
            result: Some(_),
        }) => Ok(result_type),
        _ => Err("malformed answer: no data".into()),
    }
}

fn typed_result<'de, R: Deserialize<'de>>(body: &'de str) -> Result<R, String> {
    serde_json::from_str::<Typed<R>>(body)
        .map(|t| t.data.result)
        .map_err(|e| format!("malformed answer: {e}"))
}

/// A JSON array of which only the first `KEPT_ELEMENTS` are built; `total` counts all.
struct FirstOf<T> {
    kept: Vec<T>,
    total: usize,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FirstOf<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = FirstOf<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstOf<T>, A::Error> {
                let mut kept = Vec::new();
                let mut total = 0;
                while total < KEPT_ELEMENTS {
                    match seq.next_element::<T>()? {
                        Some(t) => kept.push(t),
                        None => return Ok(FirstOf { kept, total }),
                    }
                    total += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(FirstOf { kept, total })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// A range series' values, refused past `MAX_RANGE_POINTS` before more are built.
struct RangeValues(Vec<(f64, String)>);

impl<'de> Deserialize<'de> for RangeValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RangeValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of [time, value] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RangeValues, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<(f64, String)>()? {
                    if values.len() == MAX_RANGE_POINTS {
                        return Err(de::Error::custom(format!(
                            "a series of more than {MAX_RANGE_POINTS} points"
                        )));
                    }
                    values.push(v);
                }
                Ok(RangeValues(values))
            }
        }
        d.deserialize_seq(V)
    }
}

fn too_many_series(n: usize) -> String {
    format!("the query returned {n} series; aggregate it to one (sum(...), max(...))")
}

/// One series from a range query as (milliseconds, value), or none (an empty matrix).
pub fn parse_matrix(body: &str) -> Result<Vec<(i64, f64)>, String> {
    let kind = result_type(body)?;
    if kind != "matrix" {
        return Err(format!(
            "the range query returned a {kind}; a range vector (matrix) is needed"
        ));
    }
    let mut series: FirstOf<Series> = typed_result(body)?;
    match series.total {
        0 => Ok(Vec::new()),
        1 => series
            .kept
            .remove(0)
            .values
            .0
            .into_iter()
            .map(|(t, v)| {
                let value =
                    parse_float(&v).ok_or_else(|| format!("malformed answer: value '{v}'"))?;
                if !t.is_finite() {
                    return Err(format!("malformed answer: time {t}"));
                }
                Ok(((t * 1000.0).round() as i64, value))
            })
            .collect(),
        n => Err(too_many_series(n)),
    }
}

#[derive(Deserialize)]
struct Series {
    values: RangeValues,
}

/// One side's values for the template placeholders.
struct SideVars {
    revision: String,
    side: &'static str,
    window: String,
}

impl SideVars {
    fn new(cfg: &MetricsConfig, side: usize, rev: &str) -> SideVars {
        SideVars {
            revision: escape(rev),
            side: SIDE_NAMES[side],
            // The last minutes of a late source are empty: reach back over them too.
            window: format_duration(cfg.query_span()),
        }
    }

    fn vars(&self) -> [(&str, &str); 3] {
        [
            ("revision", self.revision.as_str()),
            ("side", self.side),
            ("window", self.window.as_str()),
        ]
    }

    fn fill(&self, template: &str) -> String {
        fill(template, &self.vars())
    }

    fn fill_quantile(&self, template: &str, quantile: f64) -> String {
        let [r, s, w] = self.vars();
        fill(template, &[r, s, w, ("quantile", &quantile.to_string())])
    }
}

/// A label value inside a double-quoted PromQL string; control characters as `\u` escapes,
/// which PromQL reads back (a raw newline would end the query in an error).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn count(v: f64, what: &str) -> Result<u64, String> {
    if v.is_finite() && v >= 0.0 {
        // increase() extrapolates, so counts arrive as fractions.
        Ok(v.round() as u64)
    } else {
        Err(format!("{what} is {v}, not a count"))
    }
}

fn seconds_to_time(t: f64) -> Option<DateTime<Utc>> {
    t.is_finite()
        .then(|| DateTime::from_timestamp_millis((t * 1000.0).round() as i64))
        .flatten()
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

/// One number from an instant query: a scalar, or a vector of exactly one element.
pub fn parse_answer(body: &str) -> Result<Answer, String> {
    let kind = result_type(body)?;
    match kind.as_str() {
        "scalar" => {
            let (t, v) = typed_result::<(f64, String)>(body)?;
            point(t, &v).map(Some)
        }
        "vector" => {
            let mut v: FirstOf<Sample> = typed_result(body)?;
            match v.total {
                0 => Ok(None),
                1 => {
                    let (t, v) = v.kept.remove(0).value;
                    point(t, &v).map(Some)
                }
                n => Err(too_many_series(n)),
            }
        }
        other => Err(format!(
            "the query returned a {other}; an instant vector or scalar is needed"
        )),
    }
}

/// One element's `[time, "value"]`.
fn point(t: f64, v: &str) -> Result<(f64, DateTime<Utc>), String> {
    let value = parse_float(v).ok_or_else(|| format!("malformed answer: value '{v}'"))?;
    let at = seconds_to_time(t).ok_or_else(|| format!("malformed answer: time {t}"))?;
    Ok((value, at))
}

/// What a grouped answer holds for one revision.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    None,
    /// The only element's time and value.
    One(f64, String),
    /// More than one element: the count.
    Many(usize),
}

/// A grouped query's vector split by `label`, one entry per name. The elements are read one
/// at a time and only what each name needs is kept, so a long answer costs no more than
/// its (capped) body. An element without the label, or with a name not asked for, means
/// the answer is not what grouping expects: the whole answer is refused, never guessed at.
fn split_answer(body: &str, label: &str, names: &[&str]) -> Result<Vec<Found>, String> {
    let kind = result_type(body)?;
    if kind != "vector" {
        return Err(format!(
            "the query returned a {kind}; an instant vector is needed"
        ));
    }
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow)]
        data: RawData<'a>,
    }
    #[derive(Deserialize)]
    struct RawData<'a> {
        #[serde(borrow)]
        result: &'a serde_json::value::RawValue,
    }
    let raw: Raw = serde_json::from_str(body).map_err(|e| format!("malformed answer: {e}"))?;
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut found = vec![Found::None; names.len()];
    let seed = SplitSeed {
        label,
        index: &index,
        found: &mut found,
    };
    let mut de = serde_json::Deserializer::from_str(raw.data.result.get());
    de::DeserializeSeed::deserialize(seed, &mut de)
        .map_err(|e| format!("malformed answer: {e}"))?;
    Ok(found)
}

struct SplitSeed<'s> {
    label: &'s str,
    index: &'s HashMap<&'s str, usize>,
    found: &'s mut Vec<Found>,
}

#[derive(Deserialize)]
struct Element {
    #[serde(default)]
    metric: HashMap<String, String>,
    value: (f64, String),
}

impl<'de> de::DeserializeSeed<'de> for SplitSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SplitSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of vector elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<Element>()? {
            let Some(name) = e.metric.get(self.label) else {
                return Err(de::Error::custom(format!(
                    "an element without the {} label, which grouping needs",
                    self.label
                )));
            };
            let Some(&i) = self.index.get(name.as_str()) else {
                return Err(de::Error::custom(format!(
                    "an element for {}=\"{name}\", which was not asked for",
                    self.label
                )));
            };
            let slot = &mut self.found[i];
            *slot = match std::mem::replace(slot, Found::None) {
                Found::None => Found::One(e.value.0, e.value.1),
                Found::One(..) => Found::Many(2),
                Found::Many(n) => Found::Many(n + 1),
            };
        }
        Ok(())
    }
}

/// Prometheus writes "NaN", "+Inf" and "-Inf".
fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"42.4"]}]}}"#;
        let (v, t) = parse_answer(one).unwrap().unwrap();
        assert_eq!(v, 42.4);
        assert_eq!(t.timestamp_millis(), 1_700_000_000_500);
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_answer(empty).unwrap(), None);
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert!(parse_answer(nan).unwrap().unwrap().0.is_nan());
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(parse_answer(scalar).unwrap().unwrap().0, f64::INFINITY);
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        assert!(parse_answer(two).unwrap_err().contains("2 series"));
        // Elements past the first two are counted, not built (nor even checked).
        let mut elements = vec![r#"{"metric":{},"value":[1,"1"]}"#; 2];
        elements.extend(vec![r#"{"odd":[1,{"x":null}]}"#; 4998]);
        let many = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            elements.join(",")
        );
        assert!(parse_answer(&many).unwrap_err().contains("5000 series"));
        let no_result = r#"{"status":"success","data":{"resultType":"vector"}}"#;
        assert!(parse_answer(no_result).unwrap_err().contains("no data"));
        let err = r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#;
        assert!(parse_answer(err).unwrap_err().contains("bad_data"));
        assert!(parse_answer("<html>").unwrap_err().contains("malformed"));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_answer(matrix).unwrap_err().contains("matrix"));
    }

    #[test]
    fn grouped_answers_split_by_the_label() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"revision":"b","job":"x"},"value":[1772366400.5,"2"]},
            {"metric":{"revision":"a"},"value":[1772366400.5,"1"]},
            {"metric":{"revision":"c"},"value":[1,"3"]},
            {"metric":{"revision":"c"},"value":[1,"4"]}]}}"#;
        let found = split_answer(body, "revision", &["a", "b", "c", "d"]).unwrap();
        assert_eq!(
            found,
            [
                Found::One(1772366400.5, "1".into()),
                Found::One(1772366400.5, "2".into()),
                Found::Many(2),
                Found::None
            ]
        );
        let e = split_answer(body, "revision", &["a", "b"]).unwrap_err();
        assert!(e.contains("revision=\"c\", which was not asked for"), "{e}");
        let e = split_answer(body, "rev", &["a"]).unwrap_err();
        assert!(e.contains("without the rev label"), "{e}");
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        assert!(
            split_answer(scalar, "revision", &["a"])
                .unwrap_err()
                .contains("scalar")
        );
    }

    #[test]
    fn long_name_lists_take_more_queries() {
        let long = "r".repeat(999);
        let names: Vec<&str> = vec![&long; 9];
        // 1000 characters each with the separator: 4 fit in 4000.
        assert_eq!(chunks(&names), [0..4, 4..8, 8..9]);
        let short = chunks(&["a", "b"]);
        assert_eq!((short.len(), short.first()), (1, Some(&(0..2))));
        assert!(chunks(&[]).is_empty());
        let huge = "r".repeat(5000);
        assert_eq!(chunks(&[&huge, "a"]), [0..1, 1..2]);
    }

    #[test]
    fn label_values_are_escaped_for_promql_strings() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\u000ad"#);
    }

    #[test]
    fn counts_refuse_nonsense() {
        assert_eq!(count(41.6, "x").unwrap(), 42);
        assert!(count(f64::NAN, "x").is_err());
        assert!(count(-1.0, "x").is_err());
    }
}
