//! Seeded, deterministic traffic for demos and tests.
//!
//! Time is cut into one-second slots; each slot's requests and errors for a side are drawn
//! from a generator keyed by (seed, rollout id, side, slot), so a window's numbers depend
//! only on the configuration, the rollout and the times asked for — the same questions get
//! the same answers, in any order, in any process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::config::{SimulatedSide, SimulatorConfig};
use super::{MAX_STAGE_SPAN, MetricsSource};
use crate::domain::health::{
    Counts, HealthSample, SideStats, SlowTotals, StageTotals, normal_upper_tail,
};
use crate::domain::rollout::{Rollout, Status};
use crate::domain::units::format_duration;

/// A fault injected into a rollout's canary side; it shapes every sample taken while it is
/// in place, so the next window shows it in full.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Regression {
    /// The canary fails this share of requests (0.2 = 20 %).
    ErrorSpike { error_rate: f64 },
    /// Every canary latency is this many milliseconds longer.
    LatencyShift { ms: f64 },
    /// The canary gets no traffic at all.
    TrafficDrop,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Regression::ErrorSpike { error_rate } => {
                write!(
                    f,
                    "error spike ({:.0} % of requests fail)",
                    error_rate * 100.0
                )
            }
            Regression::LatencyShift { ms } => write!(f, "latency +{ms:.0} ms"),
            Regression::TrafficDrop => write!(f, "no canary traffic"),
        }
    }
}

pub struct Simulator {
    cfg: SimulatorConfig,
    window: std::time::Duration,
    clock: Mutex<SimClock>,
    injected: Mutex<HashMap<String, Vec<Regression>>>,
    /// Told of every change to the injected faults (a demo keeps them in its store).
    on_fault_change: std::sync::OnceLock<FaultListener>,
}

type FaultListener = Box<dyn Fn(std::collections::BTreeMap<String, Vec<Regression>>) + Send + Sync>;

/// The simulated time: `anchor_sim` at the wall-clock moment `anchor_wall`, running `rate`
/// times faster from there. Defined by the wall clock, so every process that holds the same
/// anchors reads the same time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimClock {
    pub anchor_wall: DateTime<Utc>,
    pub anchor_sim: DateTime<Utc>,
    pub rate: f64,
}

impl SimClock {
    /// Simulated time equal to the wall clock from `now`, running `rate` times faster.
    pub fn starting(now: DateTime<Utc>, rate: f64) -> SimClock {
        SimClock {
            anchor_wall: now,
            anchor_sim: now,
            rate,
        }
    }

    /// The simulated time at the wall-clock moment `wall` (never before the anchor).
    pub fn at(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        let real = (wall - self.anchor_wall).to_std().unwrap_or_default();
        self.anchor_sim + chrono::Duration::from_std(real.mul_f64(self.rate)).unwrap_or_default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// The same simulated time from `wall` on, at a new rate (no jump, never backwards).
    pub fn rerated(&self, wall: DateTime<Utc>, rate: f64) -> SimClock {
        SimClock {
            anchor_wall: wall,
            anchor_sim: self.at(wall),
            rate,
        }
    }
}

/// Standard normal quantiles for p50, p75, p95, p99.
const Z: [f64; 4] = [0.0, 0.674_489_75, 1.644_853_63, 2.326_347_87];

impl Simulator {
    pub fn new(cfg: &SimulatorConfig, window: std::time::Duration) -> Simulator {
        Simulator {
            cfg: cfg.clone(),
            window,
            clock: Mutex::new(SimClock::starting(Utc::now(), cfg.time_compression)),
            injected: Mutex::new(HashMap::new()),
            on_fault_change: std::sync::OnceLock::new(),
        }
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.cfg
    }

    pub fn window(&self) -> std::time::Duration {
        self.window
    }

    /// The demo clock: runs `time_compression` times faster than the wall clock from the
    /// moment the simulator was made (or from the anchors `set_clock` gave), so a
    /// 10-minute stage passes in seconds.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock().now()
    }

    pub fn clock(&self) -> SimClock {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_clock(&self, clock: SimClock) {
        *self.clock.lock().unwrap_or_else(PoisonError::into_inner) = clock;
    }

    pub fn time_compression(&self) -> f64 {
        self.clock().rate
    }

    /// Calls `listener` with every rollout's faults after each change (set once).
    pub fn on_fault_change(
        &self,
        listener: impl Fn(std::collections::BTreeMap<String, Vec<Regression>>) + Send + Sync + 'static,
    ) {
        let _ = self.on_fault_change.set(Box::new(listener));
    }

    fn faults_changed(&self) {
        if let Some(listener) = self.on_fault_change.get() {
            listener(self.all_regressions());
        }
    }

    pub fn inject(&self, rollout_id: &str, regression: Regression) {
        self.lock()
            .entry(rollout_id.to_string())
            .or_default()
            .push(regression);
        self.faults_changed();
    }

    /// Removes every regression from the rollout.
    pub fn clear(&self, rollout_id: &str) {
        self.lock().remove(rollout_id);
        self.faults_changed();
    }

    /// Replaces every rollout's faults (from another process's record); no listener is told.
    pub fn replace_faults(&self, faults: std::collections::BTreeMap<String, Vec<Regression>>) {
        *self.lock() = faults.into_iter().collect();
    }

    /// Every rollout's injected regressions, by rollout id.
    pub fn all_regressions(&self) -> std::collections::BTreeMap<String, Vec<Regression>> {
        self.lock()
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect()
    }

    pub fn regressions(&self, rollout_id: &str) -> Vec<Regression> {
        self.lock().get(rollout_id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Regression>>> {
        self.injected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests per second to each side: the percentage of the service's traffic, plus the
    /// canary users' own requests (which would otherwise have gone to stable).
    pub fn rates(&self, rollout: &Rollout) -> [f64; 2] {
        let total = self.cfg.requests_per_second;
        // As the router assigns: a planned or rolled-back rollout sends everyone to stable.
        if matches!(rollout.status, Status::Planned | Status::RolledBack) {
            return [total, 0.0];
        }
        let users = rollout.canary_users.len() as f64 * self.cfg.canary_user_requests_per_second;
        let canary = total * rollout.percentage.as_f64() / 100.0 + users;
        let canary = canary.min(total.max(users));
        [(total - canary).max(0.0), canary]
    }

    /// One side over `(now - window, now]`, and its counts over `(since, now]` for the
    /// stage totals when asked (the same per-second slots, so window and stage agree where
    /// they overlap; `since` is at most `MAX_STAGE_SPAN` back).
    fn side(
        &self,
        rollout: &Rollout,
        side: usize,
        rate: f64,
        now: DateTime<Utc>,
        faults: &[Regression],
        since: Option<DateTime<Utc>>,
    ) -> (SideStats, Counts, u64) {
        let params = if side == 0 {
            &self.cfg.stable
        } else {
            &self.cfg.canary
        };
        let canary_faults = if side == 1 { faults } else { &[] };
        let rate = if canary_faults.contains(&Regression::TrafficDrop) {
            0.0
        } else {
            rate
        };
        let error_rate = canary_faults
            .iter()
            .fold(params.error_rate, |r, f| match f {
                Regression::ErrorSpike { error_rate } => r.max(*error_rate),
                _ => r,
            });
        let shift: f64 = canary_faults
            .iter()
            .map(|f| {
                if let Regression::LatencyShift { ms } = f {
                    *ms
                } else {
                    0.0
                }
            })
            .sum();
        let key = mix(self.cfg.seed
            ^ fnv(&rollout.id)
            ^ (side as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let end = now.timestamp();
        let slots = self.window.as_secs().max(1) as i64;
        let slow_share = share_slower(params, shift, self.slow_threshold_ms());
        // Requests, errors and (last, so the others stay as they were) requests over the
        // slow threshold, from the same per-second slots.
        let counts = |from: i64, with_slow: bool| {
            let mut c = Counts::default();
            let mut slow = 0;
            for slot in from..=end {
                let mut rng = Rng(mix(key ^ (slot as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)));
                let n = rng.poisson(rate);
                c.requests += n;
                c.errors += rng.binomial(n, error_rate);
                if with_slow {
                    slow += rng.binomial(n, slow_share);
                }
            }
            (c, slow)
        };
        let (Counts { requests, errors }, _) = counts(end - slots + 1, false);
        let (stage, slow) = since.map_or_else(
            || (Counts::default(), 0),
            |since| counts(since.timestamp() + 1, true),
        );
        let quantiles = (requests > 0).then(|| {
            // A few percent of window-to-window wobble, like real percentiles.
            let mut rng = Rng(mix(key ^ end as u64 ^ 0x5bd1_e995));
            Z.map(|z| latency(params, z) * (1.0 + 0.03 * (2.0 * rng.unit() - 1.0)) + shift)
        });
        let [p50_ms, p75_ms, p95_ms, p99_ms] = match quantiles {
            Some(q) => q.map(Some),
            None => [None; 4],
        };
        let stats = SideStats {
            requests,
            errors,
            p50_ms,
            p75_ms,
            p95_ms,
            p99_ms,
            newest_point_at: Some(now),
        };
        (stats, stage, slow)
    }

    /// The latency the stage totals count requests over: stable's configured p99.
    fn slow_threshold_ms(&self) -> f64 {
        p99_ms(&self.cfg.stable)
    }

    /// The sample at `now`, with the stage totals when `with_stage`.
    fn sample_at(&self, rollout: &Rollout, now: DateTime<Utc>, with_stage: bool) -> HealthSample {
        let faults = self.regressions(&rollout.id);
        let [rs, rc] = self.rates(rollout);
        let entered = rollout
            .stage_entered_at
            .or(rollout.started_at)
            .unwrap_or(now);
        // The stage, at most its last `MAX_STAGE_SPAN`.
        let since = entered
            .max(now - chrono::Duration::from_std(MAX_STAGE_SPAN).unwrap_or_default())
            .min(now);
        let counted = with_stage.then_some(since);
        let (stable, stable_stage, stable_slow) = self.side(rollout, 0, rs, now, &faults, counted);
        let (canary, canary_stage, canary_slow) = self.side(rollout, 1, rc, now, &faults, counted);
        HealthSample {
            taken_at: now,
            window: self.window,
            stable: Some(stable),
            canary: Some(canary),
            source_error: None,
            ingestion_delay: std::time::Duration::ZERO,
            stage: with_stage.then(|| StageTotals {
                since,
                stable: stable_stage,
                canary: canary_stage,
                slow: Some(SlowTotals {
                    threshold_ms: self.slow_threshold_ms(),
                    stable: stable_slow,
                    canary: canary_slow,
                }),
            }),
        }
    }
}

/// The share of a side's requests slower than `threshold_ms`: its latencies are log-normal
/// around its median, plus `shift`.
pub(crate) fn share_slower(p: &SimulatedSide, shift: f64, threshold_ms: f64) -> f64 {
    let over = threshold_ms - shift;
    if over <= 0.0 {
        return 1.0;
    }
    if p.latency_median_ms <= 0.0 {
        return 0.0;
    }
    let z = (over / p.latency_median_ms).ln();
    if p.latency_sigma <= 0.0 {
        return if z < 0.0 { 1.0 } else { 0.0 };
    }
    normal_upper_tail(z / p.latency_sigma)
}

fn latency(p: &SimulatedSide, z: f64) -> f64 {
    p.latency_median_ms * (p.latency_sigma * z).exp()
}

/// A side's true p99: the latency the stage totals count slow requests over.
pub(crate) fn p99_ms(p: &SimulatedSide) -> f64 {
    latency(p, Z[3])
}

#[async_trait]
impl MetricsSource for Simulator {
    fn describe(&self) -> String {
        format!(
            "simulator (seed {}, {} req/s, {} window, {}x time)",
            self.cfg.seed,
            self.cfg.requests_per_second,
            format_duration(self.window),
            self.time_compression()
        )
    }

    async fn sample(&self, rollout: &Rollout, now: DateTime<Utc>) -> HealthSample {
        self.sample_at(rollout, now, true)
    }

    fn simulator(&self) -> Option<&Simulator> {
        Some(self)
    }

    /// The simulator can always look back: the same numbers it would have sampled then
    /// (with the regressions in place now).
    async fn history(
        &self,
        rollout: &Rollout,
        end: DateTime<Utc>,
        step: std::time::Duration,
        points: usize,
    ) -> Result<Vec<HealthSample>, String> {
        // Windows only: a chart needs no stage totals, and drawing a day of slots for each
        // of its points kept a cockpit from showing its rollouts for seconds.
        Ok(super::history_times(end, step, points)
            .into_iter()
            .map(|at| self.sample_at(rollout, at, false))
            .collect())
    }
}

/// FNV-1a: a stable hash of the rollout id (std's hasher is seeded per process).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// SplitMix64's finaliser.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small seeded generator (SplitMix64) with the draws traffic needs.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Knuth's method for small means, a rounded normal beyond.
    pub(crate) fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }

    pub(crate) fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if n <= 64 {
            return (0..n).filter(|_| self.unit() < p).count() as u64;
        }
        let mean = n as f64 * p;
        if mean < 30.0 {
            return self.poisson(mean).min(n);
        }
        let sd = (mean * (1.0 - p)).sqrt();
        (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_plausible() {
        let mut rng = Rng(7);
        let n = 20_000;
        let mean = (0..n).map(|_| rng.poisson(4.0)).sum::<u64>() as f64 / n as f64;
        assert!((mean - 4.0).abs() < 0.1, "{mean}");
        let mean = (0..n).map(|_| rng.poisson(100.0)).sum::<u64>() as f64 / n as f64;
        assert!((mean - 100.0).abs() < 0.5, "{mean}");
        let hits = (0..n).map(|_| rng.binomial(1000, 0.01)).sum::<u64>() as f64 / n as f64;
        assert!((hits - 10.0).abs() < 0.2, "{hits}");
    }
}
