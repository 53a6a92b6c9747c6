//! Where stable-vs-canary health comes from: one trait, three sources.
//!
//! A source never fails: whatever goes wrong becomes a `HealthSample` with `source_error`
//! set and the affected sides `None`, which every gate answers with Inconclusive. Numbers
//! are never made up: no zeros for missing data, and nothing looks healthy without a source.

mod buckets;
pub mod cloud_monitoring;
pub mod config;
pub(crate) mod http;
pub mod prometheus;
mod promql;
pub mod redact;
pub mod simulator;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};

pub use config::{Credentials, MetricsConfig, SourceKind};
pub use simulator::{Regression, SimClock, Simulator};

use crate::domain::health::{HealthSample, StageTotals};
use crate::domain::rollout::Rollout;
use crate::domain::units::format_duration;

#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// One line for the screen: which source, where.
    fn describe(&self) -> String;

    /// Both sides of the rollout over the configured window ending at `now`.
    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample;

    /// Every rollout's sample, in input order: what `sample` gives each one. Sources whose
    /// queries can answer many revisions at once override it so a sample round costs about
    /// what one rollout's does; by default each rollout is sampled on its own, at most
    /// `SAMPLE_CONCURRENCY` at a time.
    async fn sample_many(&self, rollouts: &[Rollout], now: DateTime<Utc>) -> Vec<HealthSample> {
        sample_each(self, rollouts, now).await
    }

    /// How old this source's newest point normally is when it is read; every sample
    /// carries it so the freshness gate allows for it.
    fn ingestion_delay(&self) -> Duration {
        Duration::ZERO
    }

    /// The simulator behind this source, for its clock and regression injection.
    fn simulator(&self) -> Option<&Simulator> {
        None
    }

    /// Past samples for the sparklines when a screen opens: windows ending at
    /// `end - k * step` for k < `points`, oldest first. Only requests, errors and p99 need
    /// be filled. A source that cannot look back returns none; the screen then fills as
    /// it samples.
    async fn history(
        &self,
        _rollout: &Rollout,
        _end: DateTime<Utc>,
        _step: std::time::Duration,
        _points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        Ok(Vec::new())
    }
}

/// The times `history` covers: `points` steps ending at `end`, oldest first.
pub fn history_times(
    end: DateTime<Utc>,
    step: std::time::Duration,
    points: usize,
) -> Vec<DateTime<Utc>> {
    let step = chrono::Duration::from_std(step).unwrap_or_default();
    (0..points).rev().map(|k| end - step * k as i32).collect()
}

/// The configured source, or None for `kind = "none"` everywhere.
pub fn build_source(cfg: &MetricsConfig) -> Result<Option<Arc<dyn MetricsSource>>, String> {
    let mut global = cfg.clone();
    global.rollouts.clear();
    let default = build_one(&global)?;
    if cfg.rollouts.is_empty() {
        return Ok(default);
    }
    // Rollouts whose merged settings are the same share one source, so they share its
    // queries too (`sample_many`). Simulators are left apart: each keeps its own clock.
    let mut shared: Vec<(MetricsConfig, Option<Arc<dyn MetricsSource>>)> = Vec::new();
    if cfg.kind != SourceKind::Simulator {
        shared.push((global, default.clone()));
    }
    let mut by_rollout = HashMap::new();
    for id in cfg.rollouts.keys() {
        let one = cfg.for_rollout(id)?;
        let source = match shared.iter().find(|(c, _)| *c == one) {
            Some((_, s)) => s.clone(),
            None => {
                let s = build_one(&one)?;
                if one.kind != SourceKind::Simulator {
                    shared.push((one, s.clone()));
                }
                s
            }
        };
        by_rollout.insert(id.clone(), source);
    }
    if default.is_none() && by_rollout.values().all(Option::is_none) {
        return Ok(None);
    }
    Ok(Some(Arc::new(Routed {
        default,
        by_rollout,
    })))
}

fn build_one(cfg: &MetricsConfig) -> Result<Option<Arc<dyn MetricsSource>>, String> {
    Ok(match cfg.kind {
        SourceKind::None => None,
        SourceKind::Simulator => Some(Arc::new(Simulator::new(&cfg.simulator, cfg.window))),
        SourceKind::CloudMonitoring => Some(Arc::new(cloud_monitoring::CloudMonitoring::new(cfg)?)),
        SourceKind::Prometheus => Some(Arc::new(prometheus::Prometheus::new(cfg)?)),
    })
}

/// Per-rollout sources from `[metrics.rollouts.<id>]`, the global one for the rest.
struct Routed {
    default: Option<Arc<dyn MetricsSource>>,
    by_rollout: HashMap<String, Option<Arc<dyn MetricsSource>>>,
}

impl Routed {
    fn pick(&self, rollout_id: &str) -> Option<&Arc<dyn MetricsSource>> {
        match self.by_rollout.get(rollout_id) {
            Some(s) => s.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

#[async_trait]
impl MetricsSource for Routed {
    fn describe(&self) -> String {
        let default = self
            .default
            .as_ref()
            .map_or("no source".into(), |s| s.describe());
        format!("{default} (+{} per-rollout sources)", self.by_rollout.len())
    }

    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample {
        match self.pick(&rollout.id) {
            Some(s) => s.sample(rollout, now).await,
            None => no_source(rollout, now),
        }
    }

    /// Each source answers its own rollouts in one batch; the batches run at once.
    async fn sample_many(&self, rollouts: &[Rollout], now: DateTime<Utc>) -> Vec<HealthSample> {
        let mut out: Vec<Option<HealthSample>> = vec![None; rollouts.len()];
        let mut batches: Vec<(&Arc<dyn MetricsSource>, Vec<usize>)> = Vec::new();
        for (i, r) in rollouts.iter().enumerate() {
            let Some(source) = self.pick(&r.id) else {
                out[i] = Some(no_source(r, now));
                continue;
            };
            match batches.iter_mut().find(|(s, _)| Arc::ptr_eq(s, source)) {
                Some((_, members)) => members.push(i),
                None => batches.push((source, vec![i])),
            }
        }
        let answers =
            futures::future::join_all(batches.iter().map(|(source, members)| async move {
                if members.len() == rollouts.len() {
                    // The common case, one source for all: no copies.
                    return source.sample_many(rollouts, now).await;
                }
                let subset: Vec<Rollout> = members.iter().map(|&i| rollouts[i].clone()).collect();
                source.sample_many(&subset, now).await
            }))
            .await;
        for ((_, members), samples) in batches.iter().zip(answers) {
            for (&i, s) in members.iter().zip(samples) {
                out[i] = Some(s);
            }
        }
        out.into_iter()
            .zip(rollouts)
            .map(|(s, r)| s.unwrap_or_else(|| failed_sample(r, now, "got no sample")))
            .collect()
    }

    fn ingestion_delay(&self) -> Duration {
        self.default
            .as_ref()
            .map_or(Duration::ZERO, |s| s.ingestion_delay())
    }

    fn simulator(&self) -> Option<&Simulator> {
        self.default.as_ref().and_then(|s| s.simulator())
    }

    async fn history(
        &self,
        rollout: &Rollout,
        end: DateTime<Utc>,
        step: Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        match self.pick(&rollout.id) {
            Some(s) => s.history(rollout, end, step, points).await,
            None => Ok(Vec::new()),
        }
    }
}

pub(crate) const SIDE_NAMES: [&str; 2] = ["stable", "canary"];

/// The rollout's revisions, index 0 stable and 1 canary.
pub(crate) struct Revisions<'a>([Option<&'a str>; 2]);

impl<'a> Revisions<'a> {
    pub fn of(r: &'a Rollout) -> Revisions<'a> {
        let clean = |s: &'a Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty());
        Revisions([clean(&r.stable_revision), clean(&r.canary_revision)])
    }

    pub fn get(&self, side: usize) -> Option<&'a str> {
        self.0[side]
    }

    pub fn missing(&self, side: usize) -> String {
        format!("the rollout has no {}Revision", SIDE_NAMES[side])
    }
}

/// The distinct revisions of a batch of rollouts in first-seen order, each with its
/// position: what one query asks for and how its answer is split back.
pub(crate) struct Distinct<'a> {
    pub names: Vec<&'a str>,
    pub index: HashMap<&'a str, usize>,
}

impl<'a> Distinct<'a> {
    pub fn of(revs: &[Revisions<'a>]) -> Distinct<'a> {
        let mut d = Distinct {
            names: Vec::new(),
            index: HashMap::new(),
        };
        for name in revs.iter().flat_map(|r| r.0).flatten() {
            d.index.entry(name).or_insert_with(|| {
                d.names.push(name);
                d.names.len() - 1
            });
        }
        d
    }
}

/// Stage totals count at most the last day: enough evidence for any stage, and a span every
/// source answers cheaply (the simulator draws it a second at a time).
pub(crate) const MAX_STAGE_SPAN: Duration = Duration::from_secs(24 * 3600);

/// Rollouts whose stage totals are asked at once.
const STAGE_TOTALS_IN_FLIGHT: usize = 4;

/// One rollout's stage-totals queries.
pub(crate) type StageJob<'f> = futures::future::BoxFuture<'f, Option<StageTotals>>;

/// Runs `jobs`, one per rollout, `STAGE_TOTALS_IN_FLIGHT` at a time; answers in their order.
/// A stage's span is its own, so no two rollouts share these queries.
pub(crate) async fn stage_totals_each(jobs: Vec<StageJob<'_>>) -> Vec<Option<StageTotals>> {
    futures::stream::iter(jobs)
        .buffered(STAGE_TOTALS_IN_FLIGHT)
        .collect()
        .await
}

/// How far back `rollout`'s stage totals reach at `now`: to its stage's start, at most
/// `MAX_STAGE_SPAN`. None without a stage start, or at or before it.
pub(crate) fn stage_span(rollout: &Rollout, now: DateTime<Utc>) -> Option<Duration> {
    let span = (now - rollout.stage_entered_at?)
        .to_std()
        .ok()?
        .min(MAX_STAGE_SPAN);
    (!span.is_zero()).then_some(span)
}

/// How many rollouts are sampled at once where each needs its own queries: 200 rollouts
/// take ~13 round trips, not 200.
pub const SAMPLE_CONCURRENCY: usize = 16;

/// Samples each rollout on its own, at most `SAMPLE_CONCURRENCY` at a time; results in input
/// order. A sample that panics is that rollout's error, not the others'.
pub async fn sample_each<S: MetricsSource + ?Sized>(
    source: &S,
    rollouts: &[Rollout],
    now: DateTime<Utc>,
) -> Vec<HealthSample> {
    // Boxed up front: a stream closure over `&Rollout` trips the compiler's Send check.
    let samples: Vec<futures::future::BoxFuture<'_, HealthSample>> = rollouts
        .iter()
        .map(|r| {
            std::panic::AssertUnwindSafe(source.sample(r, now))
                .catch_unwind()
                .map(move |done| done.unwrap_or_else(|_| failed_sample(r, now, "crashed")))
                .boxed()
        })
        .collect();
    futures::stream::iter(samples)
        .buffered(SAMPLE_CONCURRENCY)
        .collect()
        .await
}

/// Samples every rollout through the source's batched call; results in input order.
pub async fn sample_all(
    source: Arc<dyn MetricsSource>,
    rollouts: &[Rollout],
    now: DateTime<Utc>,
) -> Vec<HealthSample> {
    match std::panic::AssertUnwindSafe(source.sample_many(rollouts, now))
        .catch_unwind()
        .await
    {
        Ok(samples) if samples.len() == rollouts.len() => samples,
        Ok(samples) => {
            let why = format!(
                "got {} samples for {} rollouts",
                samples.len(),
                rollouts.len()
            );
            rollouts
                .iter()
                .map(|r| failed_sample(r, now, &why))
                .collect()
        }
        Err(_) => rollouts
            .iter()
            .map(|r| failed_sample(r, now, "crashed"))
            .collect(),
    }
}

/// An inconclusive sample: "sampling rollout ID <why>".
fn failed_sample(r: &Rollout, now: DateTime<Utc>, why: &str) -> HealthSample {
    HealthSample {
        taken_at: now,
        window: Duration::ZERO,
        stable: None,
        canary: None,
        source_error: Some(format!("sampling rollout {} {why}", r.id)),
        ingestion_delay: Duration::ZERO,
        stage: None,
    }
}

fn no_source(r: &Rollout, now: DateTime<Utc>) -> HealthSample {
    HealthSample {
        source_error: Some(format!(
            "no metrics source for rollout {} (metrics.kind = \"none\")",
            r.id
        )),
        ..failed_sample(r, now, "")
    }
}

/// The last good sample of each rollout, so a failing source leaves the last numbers on
/// screen, marked with their age. Display only: gates must judge the current sample, so a
/// stale one can never make a rollout look healthy.
#[derive(Debug, Clone, Default)]
pub struct LastGood {
    samples: BTreeMap<String, HealthSample>,
}

/// What to show for a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown<'a> {
    pub sample: &'a HealthSample,
    /// Set when `sample` is an older good one standing in for a failed current one.
    pub stale_for: Option<Duration>,
    /// Why the current sample is not good.
    pub problem: Option<String>,
}

impl LastGood {
    /// Good: both sides answered and the source reported no problem.
    pub fn is_good(s: &HealthSample) -> bool {
        s.stable.is_some() && s.canary.is_some() && s.source_error.is_none()
    }

    /// Remembers `sample` if it is good (and not older than the one kept).
    pub fn record(&mut self, rollout_id: &str, sample: &HealthSample) {
        if !Self::is_good(sample) {
            return;
        }
        match self.samples.get(rollout_id) {
            Some(kept) if kept.taken_at > sample.taken_at => {}
            _ => {
                self.samples.insert(rollout_id.to_string(), sample.clone());
            }
        }
    }

    pub fn get(&self, rollout_id: &str) -> Option<&HealthSample> {
        self.samples.get(rollout_id)
    }

    pub fn forget(&mut self, rollout_id: &str) {
        self.samples.remove(rollout_id);
    }

    /// The current sample when it is good, else the last good one with its age, else the
    /// current one as it is.
    pub fn shown<'a>(
        &'a self,
        rollout_id: &str,
        current: &'a HealthSample,
        now: DateTime<Utc>,
    ) -> Shown<'a> {
        if Self::is_good(current) {
            return Shown {
                sample: current,
                stale_for: None,
                problem: None,
            };
        }
        let problem = Some(
            current
                .source_error
                .clone()
                .unwrap_or_else(|| "a side is missing".into()),
        );
        match self.samples.get(rollout_id) {
            Some(kept) => Shown {
                sample: kept,
                stale_for: Some((now - kept.taken_at).to_std().unwrap_or_default()),
                problem,
            },
            None => Shown {
                sample: current,
                stale_for: None,
                problem,
            },
        }
    }
}

impl Shown<'_> {
    /// "stale 2m30s: <why>" for a stand-in sample, the problem alone otherwise.
    pub fn label(&self) -> Option<String> {
        match (&self.stale_for, &self.problem) {
            (Some(age), Some(p)) => Some(format!("stale {}: {p}", format_duration(*age))),
            (Some(age), None) => Some(format!("stale {}", format_duration(*age))),
            (None, p) => p.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::SideStats;
    use chrono::TimeZone;

    fn sample(at: DateTime<Utc>, good: bool) -> HealthSample {
        let side = SideStats {
            requests: 500,
            errors: 1,
            newest_point_at: Some(at),
            ..SideStats::default()
        };
        HealthSample {
            taken_at: at,
            window: Duration::from_secs(300),
            stable: Some(side.clone()),
            canary: good.then_some(side),
            source_error: (!good).then(|| "HTTP 503".to_string()),
            ingestion_delay: Duration::ZERO,
            stage: None,
        }
    }

    #[test]
    fn last_good_stands_in_with_its_age() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(150);
        let mut cache = LastGood::default();
        let bad = sample(t1, false);
        // Nothing good yet: the bad sample itself, with its problem.
        let shown = cache.shown("r", &bad, t1);
        assert_eq!(shown.sample, &bad);
        assert_eq!(shown.stale_for, None);
        assert_eq!(shown.label().unwrap(), "HTTP 503");

        let good = sample(t0, true);
        cache.record("r", &good);
        cache.record("r", &bad); // not good: ignored
        let shown = cache.shown("r", &bad, t1);
        assert_eq!(shown.sample, &good);
        assert_eq!(shown.stale_for, Some(Duration::from_secs(150)));
        assert_eq!(shown.label().unwrap(), "stale 2m30s: HTTP 503");

        // A good current sample is shown as it is; an older good one does not replace it.
        let newer = sample(t1, true);
        cache.record("r", &newer);
        cache.record("r", &good);
        assert_eq!(cache.get("r"), Some(&newer));
        let shown = cache.shown("r", &newer, t1);
        assert_eq!(
            (shown.sample, shown.stale_for, shown.label()),
            (&newer, None, None)
        );
        assert!(cache.get("other").is_none());
        cache.forget("r");
        assert!(cache.get("r").is_none());
    }
}
