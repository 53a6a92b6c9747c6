//! Sequential tests on a stage's accumulated requests, valid however often they are looked at.
//!
//! Both are mixture likelihood ratios: nonnegative (super)martingales under their null
//! hypothesis, so by Ville's inequality the chance that one *ever* reaches `1 / alpha` is at
//! most `alpha`. A gate may look every 15 s for hours and needs no sustain on top.
//!
//! - `canary_worse`: conditioned on the errors seen, each error is the canary's with
//!   probability `pi0 = Nc / (Nc + Ns)` if both sides fail alike. Against that, a canary whose
//!   rate is `(1 + d)` times stable's, for each `d` in `WORSE_BY` (`WORSE_WEIGHTS`). Decisive at
//!   `LR >= 1 / alpha`: "9 errors in 90 canary requests against 0.2 % on stable" is decisive at
//!   once, whatever the request count. `pi0` is taken from the totals (the traffic split of a
//!   stage is fixed, so the totals estimate it well).
//! - `canary_at_most`: "enough evidence to pass". The canary's own counts against the
//!   hypothesis "its error rate is at least `tolerated`", with alternatives `r x tolerated` for
//!   `r` in `BELOW_BY`. For a rate at or above `tolerated` each term is a supermartingale, so
//!   reaching `1 / alpha` shows the rate below `tolerated` with confidence `1 - alpha` across
//!   all looks (an always-valid upper confidence bound).

use super::Counts;

/// Relative increases of the canary's error rate the worse-test weighs (canary = (1 + d) x stable).
pub const WORSE_BY: [f64; 9] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The worse-test's weight on each of `WORSE_BY` (summing to 1). Small increases get more:
/// they take many requests to show, while a large one's ratio grows so fast that a lower
/// weight costs it little (4 errors in 90 canary requests against 0.2 % on stable stay
/// decisive). Measured with `simulate` (1 % base, 100 req/s, +0.5 points): caught before
/// 25 % more often than with equal weights.
pub const WORSE_WEIGHTS: [f64; 9] = [0.2, 0.2, 0.14, 0.1, 0.08, 0.07, 0.07, 0.07, 0.07];

/// Shares of the tolerated rate the pass test weighs as the canary's real rate.
pub const BELOW_BY: [f64; 5] = [1.0 / 16.0, 1.0 / 8.0, 1.0 / 4.0, 1.0 / 2.0, 3.0 / 4.0];

/// ln of the mean of `exp(x)` over `xs`, without overflow.
fn ln_mean_exp(xs: impl Iterator<Item = f64>) -> f64 {
    let xs: Vec<f64> = xs.collect();
    let weight = 1.0 / xs.len() as f64;
    ln_weighted_mean_exp(xs.into_iter().map(|x| (x, weight)))
}

/// ln of the weighted mean of `exp(x)` over `(x, weight)` terms, without overflow.
fn ln_weighted_mean_exp(terms: impl Iterator<Item = (f64, f64)>) -> f64 {
    let terms: Vec<(f64, f64)> = terms.collect();
    let max = terms
        .iter()
        .map(|(x, _)| *x)
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = terms.iter().map(|(x, w)| w * (x - max).exp()).sum();
    max + sum.ln()
}

/// `a * ln(b)` with `0 * ln(0) = 0`.
fn xlny(a: f64, b: f64) -> f64 {
    if a == 0.0 { 0.0 } else { a * b.ln() }
}

/// The worse-test's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorseTest {
    /// ln of the mixture likelihood ratio "canary worse" vs "alike".
    pub ln_ratio: f64,
    /// `1 / alpha`: the ratio at which the evidence is decisive.
    pub threshold: f64,
}

impl WorseTest {
    pub fn ratio(&self) -> f64 {
        self.ln_ratio.exp()
    }

    pub fn decisive(&self) -> bool {
        self.ln_ratio >= self.threshold.ln()
    }
}

/// Is the canary's error rate worse than stable's? None when a side has no requests or
/// impossible counts, or `alpha` is not in (0, 1).
pub fn canary_worse(canary: Counts, stable: Counts, alpha: f64) -> Option<WorseTest> {
    if !(alpha > 0.0 && alpha < 1.0 && canary.valid() && stable.valid()) {
        return None;
    }
    let (nc, ns) = (canary.requests as f64, stable.requests as f64);
    let (ec, es) = (canary.errors as f64, stable.errors as f64);
    let pi0 = nc / (nc + ns);
    let ln_ratio = ln_weighted_mean_exp(WORSE_BY.iter().zip(WORSE_WEIGHTS).map(|(d, w)| {
        let pi1 = pi0 * (1.0 + d) / (pi0 * (1.0 + d) + (1.0 - pi0));
        (xlny(ec, pi1 / pi0) + xlny(es, (1.0 - pi1) / (1.0 - pi0)), w)
    }));
    Some(WorseTest {
        ln_ratio,
        threshold: 1.0 / alpha,
    })
}

/// ln of the mixture likelihood ratio "the canary's rate is below `tolerated`" vs "at
/// `tolerated`" on the canary's own counts. None for impossible counts or a tolerated rate
/// outside (0, 1).
pub fn canary_at_most(canary: Counts, tolerated: f64) -> Option<f64> {
    if !(tolerated > 0.0 && tolerated < 1.0) || canary.errors > canary.requests {
        return None;
    }
    let e = canary.errors as f64;
    let ok = (canary.requests - canary.errors) as f64;
    Some(ln_mean_exp(BELOW_BY.iter().map(|r| {
        xlny(e, *r) + xlny(ok, (1.0 - r * tolerated) / (1.0 - tolerated))
    })))
}

/// ln of the mixture likelihood ratio "the canary's rate is above `limit`" vs "at `limit`"
/// on its own counts, alternatives `(1 + d) x limit` for `d` in `WORSE_BY` (those below 1).
/// A supermartingale for any rate at or below `limit`. None for impossible counts or a
/// limit outside (0, 1).
pub fn canary_above(canary: Counts, limit: f64) -> Option<f64> {
    if !(limit > 0.0 && limit < 1.0) || canary.errors > canary.requests {
        return None;
    }
    let e = canary.errors as f64;
    let ok = (canary.requests - canary.errors) as f64;
    Some(ln_mean_exp(
        WORSE_BY
            .iter()
            .map(|d| limit * (1.0 + d))
            .filter(|p1| *p1 < 1.0)
            .map(|p1| xlny(e, p1 / limit) + xlny(ok, (1.0 - p1) / (1.0 - limit))),
    ))
}

/// Does the pass test reach `1 / alpha`?
pub fn shown_at_most(canary: Counts, tolerated: f64, alpha: f64) -> bool {
    canary_at_most(canary, tolerated).is_some_and(|ln| ln >= (1.0 / alpha).ln())
}

/// About how many more canary requests the pass test needs if the canary goes on failing at
/// `rate`: None when it never would (`rate` at or above `tolerated`, or beyond a billion).
pub fn more_requests_needed(canary: Counts, tolerated: f64, alpha: f64, rate: f64) -> Option<u64> {
    if shown_at_most(canary, tolerated, alpha) {
        return Some(0);
    }
    if !(rate >= 0.0 && rate < tolerated) {
        return None;
    }
    let after = |k: u64| Counts {
        requests: canary.requests + k,
        errors: canary.errors + (k as f64 * rate).round() as u64,
    };
    let mut hi = 1u64;
    while !shown_at_most(after(hi), tolerated, alpha) {
        hi *= 2;
        if hi > 1_000_000_000 {
            return None;
        }
    }
    // The projection adds errors in whole steps, so the search is for the first k that
    // passes between a failing lo and a passing hi, which is what an operator wants to read.
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if shown_at_most(after(mid), tolerated, alpha) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::metrics::simulator::Rng;

    fn c(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    #[test]
    fn nine_errors_in_ninety_requests_against_a_quiet_stable_are_decisive_at_once() {
        let t = canary_worse(c(90, 9), c(10_000, 20), 0.05).unwrap();
        assert!(t.decisive(), "{t:?}");
        assert!(t.ratio() > 1e6, "{t:?}");
        // The same share of errors on both sides is nowhere near.
        let t = canary_worse(c(90, 0), c(10_000, 20), 0.05).unwrap();
        assert!(!t.decisive() && t.ratio() < 1.0, "{t:?}");
    }

    #[test]
    fn the_worse_test_weights_are_a_distribution_over_its_increases() {
        assert_eq!(WORSE_WEIGHTS.len(), WORSE_BY.len());
        assert!(WORSE_WEIGHTS.iter().all(|w| *w > 0.0));
        assert!((WORSE_WEIGHTS.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_errors_anywhere_is_no_evidence_either_way() {
        let t = canary_worse(c(500, 0), c(500, 0), 0.05).unwrap();
        assert!(t.ln_ratio.abs() < 1e-12, "{t:?}");
        assert_eq!(canary_worse(c(0, 0), c(10, 0), 0.05), None);
        assert_eq!(canary_worse(c(10, 11), c(10, 0), 0.05), None);
        assert_eq!(canary_worse(c(10, 1), c(10, 0), 1.0), None);
    }

    #[test]
    fn the_pass_test_needs_a_few_hundred_clean_requests_at_one_percent() {
        assert!(!shown_at_most(c(100, 0), 0.012, 0.2));
        let n = more_requests_needed(c(0, 0), 0.012, 0.2, 0.0).unwrap();
        assert!((150..400).contains(&n), "{n}");
        assert!(shown_at_most(c(n, 0), 0.012, 0.2));
        assert!(!shown_at_most(c(n - 1, 0), 0.012, 0.2));
        // A canary failing at the tolerated rate never shows less.
        assert_eq!(more_requests_needed(c(100, 2), 0.012, 0.2, 0.012), None);
        assert!(!shown_at_most(c(1_000_000, 12_000), 0.012, 0.2));
    }

    /// Healthy canaries looked at after every request of a long stage: the worse-test's false
    /// alarms stay below alpha, as Ville's inequality promises.
    #[test]
    fn looking_after_every_request_costs_no_extra_false_alarms() {
        let mut rng = Rng(42);
        let (runs, alpha, rate) = (400, 0.05, 0.01);
        let mut alarms = 0;
        for _ in 0..runs {
            let (mut canary, mut stable) = (c(0, 0), c(0, 0));
            for _ in 0..600 {
                canary.requests += 5;
                canary.errors += rng.binomial(5, rate);
                stable.requests += 95;
                stable.errors += rng.binomial(95, rate);
                if canary_worse(canary, stable, alpha).is_some_and(|t| t.decisive()) {
                    alarms += 1;
                    break;
                }
            }
        }
        assert!(alarms as f64 / runs as f64 <= alpha, "{alarms} of {runs}");
    }

    /// The pass test as an upper bound: a canary failing at the tolerated rate passes in at
    /// most alpha of the runs, however often it is looked at. At exactly the tolerated rate the
    /// ratio is a martingale and Ville's bound is nearly tight, so the check allows the
    /// sampling error of 400 runs (2.5 standard errors); a little above it, far fewer pass.
    #[test]
    fn a_canary_at_the_tolerated_rate_rarely_passes() {
        let mut rng = Rng(7);
        let (runs, alpha, tolerated) = (400, 0.2, 0.012);
        let mut passed = 0;
        for _ in 0..runs {
            let mut canary = c(0, 0);
            for _ in 0..400 {
                canary.requests += 10;
                canary.errors += rng.binomial(10, tolerated);
                if shown_at_most(canary, tolerated, alpha) {
                    passed += 1;
                    break;
                }
            }
        }
        let slack = 2.5 * (alpha * (1.0 - alpha) / runs as f64).sqrt();
        assert!(
            passed as f64 / runs as f64 <= alpha + slack,
            "{passed} of {runs}"
        );
        let mut above = 0;
        for _ in 0..runs {
            let mut canary = c(0, 0);
            for _ in 0..400 {
                canary.requests += 10;
                canary.errors += rng.binomial(10, tolerated * 1.5);
                if shown_at_most(canary, tolerated, alpha) {
                    above += 1;
                    break;
                }
            }
        }
        assert!(
            above as f64 / runs as f64 <= alpha / 2.0,
            "{above} of {runs}"
        );
    }

    #[test]
    fn above_a_limit_needs_errors_well_beyond_it() {
        let decisive = |c: Counts| canary_above(c, 0.01).unwrap() >= (1.0f64 / 0.002).ln();
        assert!(!decisive(c(300, 5)), "1.7 % of 300 is not decisive");
        assert!(decisive(c(300, 15)), "5 % of 300 is");
        assert!(decisive(c(90, 9)));
        assert_eq!(canary_above(c(10, 0), 1.0), None);
    }

    proptest! {
        #[test]
        fn more_canary_errors_are_never_less_evidence_of_worse(
            nc in 1u64..100_000, ns in 1u64..100_000, ec in 0u64..500, es in 0u64..500,
        ) {
            let ec = ec.min(nc - 1);
            let es = es.min(ns);
            let a = canary_worse(c(nc, ec), c(ns, es), 0.05).unwrap();
            let b = canary_worse(c(nc, ec + 1), c(ns, es), 0.05).unwrap();
            prop_assert!(b.ln_ratio >= a.ln_ratio - 1e-9, "{a:?} {b:?}");
            prop_assert!(a.ln_ratio.is_finite());
        }

        #[test]
        fn more_stable_errors_are_never_more_evidence_of_worse(
            nc in 1u64..100_000, ns in 2u64..100_000, ec in 0u64..500, es in 0u64..500,
        ) {
            let ec = ec.min(nc);
            let es = es.min(ns - 1);
            let a = canary_worse(c(nc, ec), c(ns, es), 0.05).unwrap();
            let b = canary_worse(c(nc, ec), c(ns, es + 1), 0.05).unwrap();
            prop_assert!(b.ln_ratio <= a.ln_ratio + 1e-9, "{a:?} {b:?}");
        }

        #[test]
        fn clean_requests_only_add_evidence_of_a_low_rate(
            n in 0u64..100_000, e in 0u64..200, tolerated in 0.001f64..0.5,
        ) {
            let e = e.min(n);
            let a = canary_at_most(c(n, e), tolerated).unwrap();
            let b = canary_at_most(c(n + 1, e), tolerated).unwrap();
            prop_assert!(b >= a - 1e-9);
            let worse = canary_at_most(c(n + 1, e + 1), tolerated).unwrap();
            prop_assert!(worse <= b + 1e-9);
        }

        #[test]
        fn more_errors_are_more_evidence_of_a_rate_above_the_limit(
            n in 1u64..100_000, e in 0u64..500, limit in 0.001f64..0.5,
        ) {
            let e = e.min(n - 1);
            let a = canary_above(c(n, e), limit).unwrap();
            let b = canary_above(c(n, e + 1), limit).unwrap();
            prop_assert!(b >= a - 1e-9);
        }

        #[test]
        fn the_projection_is_what_the_test_then_says(
            n in 0u64..5_000, e in 0u64..20, tolerated in 0.005f64..0.1, share in 0.0f64..0.9,
        ) {
            let e = e.min(n);
            let rate = tolerated * share;
            if let Some(k) = more_requests_needed(c(n, e), tolerated, 0.2, rate) {
                let more = (k as f64 * rate).round() as u64;
                prop_assert!(shown_at_most(c(n + k, e + more), tolerated, 0.2));
            }
        }
    }
}
