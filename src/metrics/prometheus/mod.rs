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
//!
//! This module runs the queries; `grouped` builds and splits the queries for many rollouts
//! at once, and `answer` reads what Prometheus answers.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Url;
use tokio::time::Instant;

use super::config::{MetricsConfig, fill};
use super::http::Http;
use super::{MetricsSource, Revisions, SIDE_NAMES, buckets, stage_span};
use crate::domain::health::{Counts, HealthSample, SideStats, SlowTotals, StageTotals};
use crate::domain::rollout::Rollout;
use crate::domain::units::format_duration;

mod answer;
mod grouped;

pub use answer::{Buckets, MAX_BUCKETS, parse_answer, parse_buckets, parse_matrix};
pub use grouped::GROUP_NAME_CHARS;

use answer::{Answer, Answers, count};
use grouped::GroupPlan;

pub const QUANTILES: [f64; 4] = [0.50, 0.75, 0.95, 0.99];
/// Prometheus refuses range queries of more points per series; so does this reader.
pub const MAX_RANGE_POINTS: usize = 11_000;

pub struct Prometheus {
    cfg: MetricsConfig,
    base: String,
    http: Http,
    /// The templates rewritten for many revisions, or why they cannot be.
    grouped: Result<GroupPlan, String>,
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
        self.ask(promql, now, deadline, parse_answer).await
    }

    /// An instant query's answer as `read` reads it.
    async fn ask<T>(
        &self,
        promql: &str,
        now: DateTime<Utc>,
        deadline: Instant,
        read: fn(&str) -> Result<T, String>,
    ) -> Result<T, String> {
        let body = self
            .http
            .get(self.query_url(promql, now)?, deadline)
            .await?;
        read(&body).map_err(|e| self.http.scrub_body_text(&e))
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

    /// Each side's requests and errors since the rollout's stage began: the requests and
    /// errors templates over that span (at most a day), so stage judgment has the whole
    /// stage's evidence, and from the buckets template each side's requests over stable's
    /// p99 (`slow_requests`). None when the stage's start is unknown or a count fails: the
    /// gates then judge the window, and say so; a failed buckets query leaves latency to
    /// the window.
    async fn stage_totals(
        &self,
        rollout: &Rollout,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Option<StageTotals> {
        let span = stage_span(rollout, now)?;
        // The last minutes of a late source are empty: reach back over them too.
        let window = format!(
            "{}s",
            (span + self.cfg.effective_ingestion_delay())
                .as_secs()
                .max(1)
        );
        let revs = Revisions::of(rollout);
        let t = &self.cfg.prometheus;
        let counts = |i: usize| {
            let rev = revs.get(i).map(str::to_string);
            let window = window.clone();
            async move {
                let vars = SideVars {
                    window,
                    ..SideVars::new(&self.cfg, i, &rev?)
                };
                let (requests_query, errors_query) = (vars.fill(&t.requests), vars.fill(&t.errors));
                let buckets_query = (!t.buckets.trim().is_empty()).then(|| vars.fill(&t.buckets));
                let (requests, errors, buckets) = tokio::join!(
                    self.query(&requests_query, now, deadline),
                    self.query(&errors_query, now, deadline),
                    async {
                        let q = buckets_query.as_ref()?;
                        self.ask(q, now, deadline, parse_buckets)
                            .await
                            .map_err(|e| {
                                let error = self.http.scrub(&e);
                                tracing::warn!(%error, "buckets query failed; latency is judged on the window");
                            })
                            .ok()
                    },
                );
                let value = |a: Result<answer::Answer, String>, what: &str| {
                    a.ok().flatten().and_then(|(v, _)| count(v, what).ok())
                };
                let requests = value(requests, "requests")?;
                // A side's errors never exceed its requests, whatever extrapolation gave.
                let errors = value(errors, "errors")?.min(requests);
                Some((Counts { requests, errors }, buckets))
            }
        };
        let (stable, canary) = tokio::join!(counts(0), counts(1));
        let ((stable, stable_buckets), (canary, canary_buckets)) = (stable?, canary?);
        let slow = stable_buckets
            .zip(canary_buckets)
            .and_then(|(s, c)| slow_requests(&s, &c, canary.requests, t.bucket_unit_ms));
        Some(StageTotals {
            since: now - chrono::Duration::from_std(span).ok()?,
            stable,
            canary,
            slow,
        })
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
            stage: None,
        }
    }

    fn too_slow(&self) -> String {
        format!(
            "Prometheus did not answer within {}",
            format_duration(self.cfg.timeout)
        )
    }
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
                    stage: None,
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
        let (stable, canary, stage) = match tokio::time::timeout_at(deadline + grace, async {
            tokio::join!(one(0), one(1), self.stage_totals(rollout, now, deadline))
        })
        .await
        {
            Ok(all) => all,
            Err(_) => (Err(self.too_slow()), Err(self.too_slow()), None),
        };
        HealthSample {
            stage,
            ..self.finish(now, stable, canary)
        }
    }

    async fn sample_many(&self, rollouts: &[Rollout], now: DateTime<Utc>) -> Vec<HealthSample> {
        match &self.grouped {
            Ok(plan) => self.sample_grouped(plan, rollouts, now).await,
            Err(_) => super::sample_each(self, rollouts, now).await,
        }
    }
}

/// Each side's requests over the upper bound of the bucket holding stable's p99, from both
/// sides' buckets (`le` in units of `unit_ms` milliseconds). A canary without buckets
/// counts none only when it served no request; otherwise, or when the sides' buckets
/// differ, there is no count.
fn slow_requests(
    stable: &Buckets,
    canary: &Buckets,
    canary_requests: u64,
    unit_ms: f64,
) -> Option<SlowTotals> {
    let no_canary_requests = vec![0; stable.le.len()];
    let canary_counts = if canary.le.is_empty() && canary_requests == 0 {
        &no_canary_requests
    } else if canary.le == stable.le {
        &canary.counts
    } else {
        return None;
    };
    buckets::slow_over_stable_p99(&stable.counts, canary_counts, |i| stable.le[i] * unit_ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_requests_need_one_bucket_layout() {
        let inf = f64::INFINITY;
        let stable = Buckets {
            le: vec![0.1, 0.5, inf],
            counts: vec![90, 9, 1],
        };
        let canary = Buckets {
            le: vec![0.1, 0.5, inf],
            counts: vec![10, 5, 5],
        };
        let slow = slow_requests(&stable, &canary, 20, 1000.0).unwrap();
        assert_eq!(
            slow,
            SlowTotals {
                threshold_ms: 500.0,
                stable: 1,
                canary: 5
            }
        );
        let none = Buckets {
            le: Vec::new(),
            counts: Vec::new(),
        };
        // A canary that served nobody has no buckets and no slow requests...
        assert_eq!(slow_requests(&stable, &none, 0, 1.0).unwrap().canary, 0);
        // ...but one that served some without buckets is not counted as fast.
        assert_eq!(slow_requests(&stable, &none, 20, 1.0), None);
        let other = Buckets {
            le: vec![0.2, inf],
            counts: vec![10, 10],
        };
        assert_eq!(slow_requests(&stable, &other, 20, 1.0), None);
        assert_eq!(slow_requests(&none, &canary, 20, 1.0), None);
    }

    #[test]
    fn label_values_are_escaped_for_promql_strings() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\u000ad"#);
    }
}
