//! Modelled traffic for `simulate`: a fast, seeded stand-in for a metrics source that
//! follows the rollout's percentage, with a regression injected into the canary.
//!
//! Time is cut into slots of one tick. Each slot's requests per side are Poisson, its errors
//! binomial; a sample sums the slots of the window ending at the tick (newest point at the
//! tick, no ingestion delay), as a source answers for a window. Latencies are log-normal
//! (`median * exp(sigma * z)`); a window's quantile carries the sampling error an empirical
//! quantile of its requests has: each slot draws how far its share of requests above the
//! true quantile strays from the expected count, and the window's quantile moves by the
//! window's summed deviation (so overlapping windows share their slots' errors, as real
//! ones do, and a window of few requests has a noisy p99). The sample also carries the
//! stage totals: every slot since the rollout's current stage began, with its requests over
//! stable's true p99 (drawn from a generator of their own, so the other draws are as they
//! were without them).

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::replay::{Fed, SampleFeed};
use crate::domain::health::{Counts, HealthSample, SideStats, SlowTotals, StageTotals};
use crate::domain::rollout::{Rollout, Status};
use crate::metrics::config::SimulatedSide;
use crate::metrics::simulator::{Rng, mix, p99_ms, share_slower};

/// Share of the service's traffic the canary users send (the canary plan's first stage
/// serves them alone). It comes on top of the percentage, as in the simulator source.
pub const CANARY_USERS_SHARE: f64 = 0.01;

/// The canary's injected fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regression {
    None,
    /// This many percentage points more errors than the base rate.
    Errors(f64),
    /// Every latency this many times longer.
    Latency(f64),
    /// The canary gets no requests.
    NoTraffic,
}

impl Regression {
    /// `none`, `errors+N` (N percentage points), `latency*K` (K a factor > 0) or `no-traffic`.
    pub fn parse(text: &str) -> Result<Regression, String> {
        let t = text.trim();
        let number = |s: &str, what: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("'{s}' in '{t}' is not {what}"))
        };
        match t {
            "none" => Ok(Regression::None),
            "no-traffic" => Ok(Regression::NoTraffic),
            _ if t.starts_with("errors+") => {
                let n = number(&t["errors+".len()..], "a number of percentage points")?;
                if !(n > 0.0 && n <= 100.0) {
                    return Err(format!("errors+{n}: give 0 < N <= 100 percentage points"));
                }
                Ok(Regression::Errors(n))
            }
            _ if t.starts_with("latency*") => {
                let k = number(&t["latency*".len()..], "a factor")?;
                if !(k > 0.0 && k <= 1000.0) {
                    return Err(format!("latency*{k}: give a factor 0 < K <= 1000"));
                }
                Ok(Regression::Latency(k))
            }
            _ => Err(format!(
                "'{t}' is not a regression: use none, errors+N (points), latency*K (factor) or no-traffic"
            )),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Regression::None => "none".into(),
            Regression::Errors(n) => format!("errors+{n}"),
            Regression::Latency(k) => format!("latency*{k}"),
            Regression::NoTraffic => "no-traffic".into(),
        }
    }
}

/// What the traffic looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub rps: f64,
    /// Error rate of stable and of a healthy canary (0.002 = 0.2 %).
    pub base_error_rate: f64,
    pub regression: Regression,
    pub latency: SimulatedSide,
    /// The window a sample covers and the length of a slot (the tick).
    pub window: Duration,
    pub tick: Duration,
}

impl Model {
    /// How many times longer a side's latencies are than the model's (the canary's
    /// `latency*K` regression).
    fn latency_factor(&self, side: usize) -> f64 {
        match (side, self.regression) {
            (1, Regression::Latency(k)) => k,
            _ => 1.0,
        }
    }
}

/// p50, p75, p95, p99 and their standard normal quantiles and densities.
const QUANTILES: [f64; 4] = [0.5, 0.75, 0.95, 0.99];
const Z: [f64; 4] = [0.0, 0.674_489_75, 1.644_853_63, 2.326_347_87];

fn density(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    requests: u64,
    errors: u64,
    /// Requests over stable's true p99.
    slow: u64,
    /// Per quantile: requests above the true quantile minus the expected count.
    deviation: [f64; 4],
}

impl Slot {
    /// Adds (`sign` 1) or removes (`sign` -1) another slot's numbers.
    fn add(&mut self, other: &Slot, sign: f64) {
        if sign > 0.0 {
            self.requests += other.requests;
            self.errors += other.errors;
            self.slow += other.slow;
        } else {
            self.requests -= other.requests;
            self.errors -= other.errors;
            self.slow -= other.slow;
        }
        for (d, x) in self.deviation.iter_mut().zip(other.deviation) {
            *d += sign * x;
        }
    }
}

/// One run's traffic.
pub struct TrafficFeed {
    model: Model,
    rng: Rng,
    slow_rng: Rng,
    /// Stable's true p99, and each side's share of requests over it.
    slow_threshold_ms: f64,
    slow_share: [f64; 2],
    slots: VecDeque<[Slot; 2]>,
    /// The window's totals per side, kept as slots come and go.
    sums: [Slot; 2],
    per_window: usize,
    /// Totals per side since the stage began, and when it began.
    stage: Option<StageTotals>,
}

impl TrafficFeed {
    pub fn new(model: Model, seed: u64) -> TrafficFeed {
        let tick = model.tick.as_secs_f64().max(1.0);
        let per_window = (model.window.as_secs_f64() / tick).round().max(1.0) as usize;
        let slow_threshold_ms = p99_ms(&model.latency);
        let slow_share = [0, 1].map(|side| {
            let latency = SimulatedSide {
                latency_median_ms: model.latency.latency_median_ms * model.latency_factor(side),
                ..model.latency.clone()
            };
            share_slower(&latency, 0.0, slow_threshold_ms)
        });
        TrafficFeed {
            model,
            rng: Rng(mix(seed ^ 0x7261_6666_6963)),
            slow_rng: Rng(mix(seed ^ 0x736c_6f77)),
            slow_threshold_ms,
            slow_share,
            slots: VecDeque::with_capacity(per_window + 1),
            sums: [Slot::default(); 2],
            per_window,
            stage: None,
        }
    }

    /// Requests per second to stable and canary at the rollout's state (as the router
    /// assigns: a planned or rolled-back rollout sends everyone to stable).
    fn rates(&self, r: &Rollout) -> [f64; 2] {
        let total = self.model.rps;
        if matches!(r.status, Status::Planned | Status::RolledBack) {
            return [total, 0.0];
        }
        let users = if r.canary_users.is_empty() {
            0.0
        } else {
            CANARY_USERS_SHARE
        };
        let canary = (total * (r.percentage.as_f64() / 100.0 + users)).min(total);
        let canary_rate = if self.model.regression == Regression::NoTraffic {
            0.0
        } else {
            canary
        };
        [(total - canary).max(0.0), canary_rate]
    }

    fn error_rate(&self, side: usize) -> f64 {
        match (side, self.model.regression) {
            (1, Regression::Errors(points)) => {
                (self.model.base_error_rate + points / 100.0).min(1.0)
            }
            _ => self.model.base_error_rate,
        }
    }

    fn slot(&mut self, side: usize, rate: f64, seconds: f64) -> Slot {
        let requests = self.rng.poisson(rate * seconds);
        let errors = self.rng.binomial(requests, self.error_rate(side));
        let n = requests as f64;
        let deviation = QUANTILES.map(|q| (n * q * (1.0 - q)).sqrt() * self.rng.normal());
        let slow = self.slow_rng.binomial(requests, self.slow_share[side]);
        Slot {
            requests,
            errors,
            slow,
            deviation,
        }
    }

    fn push(&mut self, slot: [Slot; 2]) {
        for (sum, s) in self.sums.iter_mut().zip(&slot) {
            sum.add(s, 1.0);
        }
        self.slots.push_back(slot);
        while self.slots.len() > self.per_window {
            if let Some(old) = self.slots.pop_front() {
                for (sum, s) in self.sums.iter_mut().zip(&old) {
                    sum.add(s, -1.0);
                }
            }
        }
    }

    fn side(&self, side: usize, at: DateTime<Utc>) -> SideStats {
        let Slot {
            requests,
            errors,
            deviation,
            ..
        } = self.sums[side];
        let factor = self.model.latency_factor(side);
        let SimulatedSide {
            latency_median_ms: median,
            latency_sigma: sigma,
            ..
        } = self.model.latency;
        let quantile = |i: usize| {
            (requests > 0).then(|| {
                // More requests above the true quantile than expected: the estimate is higher.
                let dz = deviation[i] / requests as f64 / density(Z[i]);
                median * (sigma * (Z[i] + dz)).exp() * factor
            })
        };
        SideStats {
            requests,
            errors,
            p50_ms: quantile(0),
            p75_ms: quantile(1),
            p95_ms: quantile(2),
            p99_ms: quantile(3),
            newest_point_at: Some(at),
        }
    }
}

impl SampleFeed for TrafficFeed {
    fn feed(&mut self, rollout: &Rollout, previous: DateTime<Utc>, at: DateTime<Utc>) -> Fed {
        let [stable_rate, canary_rate] = self.rates(rollout);
        let tick = self.model.tick.as_secs_f64();
        if self.slots.is_empty() {
            // Stable has served all along; the canary starts with the rollout.
            for _ in 0..self.per_window {
                let stable = self.slot(0, stable_rate + canary_rate, tick);
                self.push([stable, Slot::default()]);
            }
        }
        let seconds = (at - previous).num_milliseconds() as f64 / 1000.0;
        let since = rollout
            .stage_entered_at
            .or(rollout.started_at)
            .unwrap_or(at);
        if self.stage.as_ref().is_none_or(|s| s.since != since) {
            self.stage = Some(StageTotals {
                since,
                stable: Counts::default(),
                canary: Counts::default(),
                slow: Some(SlowTotals {
                    threshold_ms: self.slow_threshold_ms,
                    stable: 0,
                    canary: 0,
                }),
            });
        }
        let mut canary_served = 0;
        if seconds > 0.0 {
            let stable = self.slot(0, stable_rate, seconds);
            let canary = self.slot(1, canary_rate, seconds);
            canary_served = canary.requests;
            if let Some(t) = self.stage.as_mut() {
                for (side, slot) in [(&mut t.stable, &stable), (&mut t.canary, &canary)] {
                    side.requests += slot.requests;
                    side.errors += slot.errors;
                }
                if let Some(slow) = t.slow.as_mut() {
                    slow.stable += stable.slow;
                    slow.canary += canary.slow;
                }
            }
            self.push([stable, canary]);
        }
        Fed {
            sample: HealthSample {
                taken_at: at,
                window: self.model.window,
                stable: Some(self.side(0, at)),
                canary: Some(self.side(1, at)),
                source_error: None,
                ingestion_delay: Duration::ZERO,
                stage: self.stage.clone(),
            },
            canary_served,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regressions_parse_and_say_what_is_wrong() {
        assert_eq!(Regression::parse("none"), Ok(Regression::None));
        assert_eq!(Regression::parse("errors+0.5"), Ok(Regression::Errors(0.5)));
        assert_eq!(Regression::parse("latency*2"), Ok(Regression::Latency(2.0)));
        assert_eq!(Regression::parse("no-traffic"), Ok(Regression::NoTraffic));
        for bad in [
            "errors+",
            "errors+-1",
            "latency*0",
            "latency*x",
            "slow",
            "errors+101",
        ] {
            assert!(Regression::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_of_many_requests_has_the_model_s_numbers() {
        let model = Model {
            rps: 1000.0,
            base_error_rate: 0.01,
            regression: Regression::Latency(2.0),
            latency: SimulatedSide::default(),
            window: Duration::from_secs(300),
            tick: Duration::from_secs(15),
        };
        let plan = crate::domain::rollout::Plan::preset(crate::domain::rollout::PlanPreset::Canary);
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut fields = super::super::replay::new_rollout("s", &plan, &["u".into()], t0).unwrap();
        fields.insert("rolloutPercentage".into(), 50.into());
        let r = Rollout::from_fields("s", &fields).unwrap();
        let mut feed = TrafficFeed::new(model, 7);
        let mut previous = t0;
        let mut fed = feed.feed(&r, t0, t0);
        for k in 1..=20 {
            let at = t0 + chrono::Duration::seconds(15 * k);
            fed = feed.feed(&r, previous, at);
            previous = at;
        }
        let c = fed.sample.canary.unwrap();
        let s = fed.sample.stable.unwrap();
        // 51 % of 1000 req/s for 300 s, within a few standard deviations.
        assert!(
            (c.requests as f64 - 153_000.0).abs() < 2_000.0,
            "{}",
            c.requests
        );
        assert!(
            (s.requests as f64 - 147_000.0).abs() < 2_000.0,
            "{}",
            s.requests
        );
        let rate = c.errors as f64 / c.requests as f64;
        assert!((rate - 0.01).abs() < 0.001, "{rate}");
        let p99 = 120.0 * (0.5 * Z[3]).exp();
        assert!(
            (s.p99_ms.unwrap() / p99 - 1.0).abs() < 0.02,
            "{:?}",
            s.p99_ms
        );
        assert!(
            (c.p99_ms.unwrap() / (2.0 * p99) - 1.0).abs() < 0.02,
            "{:?}",
            c.p99_ms
        );
        assert_eq!(c.newest_point_at, Some(previous));
        // The stage began at t0: its totals hold all 20 ticks, the window the last 20 alike.
        let stage = fed.sample.stage.unwrap();
        assert_eq!(stage.since, t0);
        assert_eq!(stage.canary.requests, c.requests);
        assert_eq!(stage.canary.errors, c.errors);
        // Over stable's true p99 (120 ms x e^(0.5 x 2.326) = 384 ms): 1 % of stable's
        // requests; doubled, the canary's median is 240 ms and 17.4 % of its requests are.
        let slow = stage.slow.unwrap();
        assert!((slow.threshold_ms - 384.0).abs() < 0.1, "{slow:?}");
        let share = |k: u64, n: u64| k as f64 / n as f64;
        assert!(
            (share(slow.stable, stage.stable.requests) - 0.01).abs() < 0.002,
            "{slow:?}"
        );
        assert!(
            (share(slow.canary, stage.canary.requests) - 0.174).abs() < 0.005,
            "{slow:?}"
        );
        // A new stage starts counting afresh.
        let later = previous + chrono::Duration::seconds(15);
        fields.insert(
            "stageEnteredAt".into(),
            crate::domain::rollout::time_to_json(previous),
        );
        let r = Rollout::from_fields("s", &fields).unwrap();
        let fed = feed.feed(&r, previous, later);
        let stage = fed.sample.stage.unwrap();
        assert_eq!(stage.since, previous);
        assert_eq!(stage.canary.requests, fed.canary_served);
        assert!(stage.canary.requests < c.requests / 10);
    }
}
