//! The statistics behind the relative error gate: a one-sided exact test of two Poisson
//! rates, through a binomial tail that stays accurate for counts far beyond practice.

use super::SideStats;

/// One-sided p-value of "canary's error rate is no worse than stable's": the exact conditional
/// test for two Poisson rates. Given E = e_c + e_s errors, under H0 e_c ~ Binomial(E, n_c/(n_c+n_s));
/// the p-value is P(X >= e_c). None when a side has no requests or more errors than requests.
pub fn error_rate_worse_p_value(canary: &SideStats, stable: &SideStats) -> Option<f64> {
    canary.error_rate()?;
    stable.error_rate()?;
    let (nc, ns) = (canary.requests as f64, stable.requests as f64);
    let n = canary.errors as f64 + stable.errors as f64;
    Some(binomial_upper_tail(
        canary.errors as f64,
        n,
        nc / (nc + ns),
        ns / (nc + ns),
    ))
}

/// Beyond this variance (sd 10^4, ~10^5 summed terms) the normal approximation takes over.
/// The exact sum is used well past the counts seen in practice because switching methods
/// makes the p-value jump, which would break monotonicity in the error count.
const EXACT_VARIANCE_LIMIT: f64 = 1e8;

/// P(X >= k) for X ~ Binomial(n, p) with q = 1 - p passed separately for precision.
fn binomial_upper_tail(k: f64, n: f64, p: f64, q: f64) -> f64 {
    if k <= 0.0 || q <= 0.0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    // Counts past 2^53 lose integer precision in f64, so only the approximation is meaningful there.
    if n * p * q > EXACT_VARIANCE_LIMIT || n > 1e15 {
        let z = (k - 0.5 - n * p) / (n * p * q).sqrt();
        return (0.5 * erfc(z / std::f64::consts::SQRT_2)).clamp(0.0, 1.0);
    }
    // Sum whichever tail lies beyond the mode: its terms only shrink, so the sum can stop early.
    if k > ((n + 1.0) * p).floor() {
        tail_sum(k, n, p, q, true)
    } else {
        1.0 - tail_sum(k - 1.0, n, p, q, false)
    }
}

/// Sum of Binomial(n, p) probabilities from `start` outward (up or down) until the terms vanish.
fn tail_sum(start: f64, n: f64, p: f64, q: f64, up: bool) -> f64 {
    let (mut term, mut sum, mut j) = (1.0, 1.0, start);
    for _ in 0..10_000_000 {
        if up {
            if j >= n {
                break;
            }
            term *= (n - j) / (j + 1.0) * (p / q);
            j += 1.0;
        } else {
            if j <= 0.0 {
                break;
            }
            term *= j / (n - j + 1.0) * (q / p);
            j -= 1.0;
        }
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    (ln_binomial_pmf(start, n, p, q) + sum.ln())
        .exp()
        .clamp(0.0, 1.0)
}

/// ln P(X = x) for X ~ Binomial(n, p), by Loader's saddle-point form (as in R's dbinom),
/// which stays accurate to ~1e-15 relative even for huge n where ln-gamma differences cancel.
fn ln_binomial_pmf(x: f64, n: f64, p: f64, q: f64) -> f64 {
    if x == 0.0 {
        return if p < 0.1 {
            -bd0(n, n * q) - n * p
        } else {
            n * q.ln()
        };
    }
    if x == n {
        return if q < 0.1 {
            -bd0(n, n * p) - n * q
        } else {
            n * p.ln()
        };
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    let lf = (2.0 * std::f64::consts::PI).ln() + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// ln(n!) - ((n + 1/2) ln n - n + ln sqrt(2 pi)) for integer n >= 1.
fn stirlerr(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        let ln_fact: f64 = (2..=n as u32).map(|i| f64::from(i).ln()).sum();
        return ln_fact - (n + 0.5) * n.ln() + n - 0.5 * (2.0 * std::f64::consts::PI).ln();
    }
    let nn = n * n;
    if n > 500.0 {
        (S0 - S1 / nn) / n
    } else if n > 80.0 {
        (S0 - (S1 - S2 / nn) / nn) / n
    } else if n > 35.0 {
        (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
    }
}

/// x ln(x/m) + m - x, summed as a series when x is near m to avoid cancellation.
fn bd0(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        return s;
    }
    x * (x / m).ln() + m - x
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes erfcc, fractional error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * poly.exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X >= k) by summing every term directly, for small n.
    fn brute_upper(k: u32, n: u32, p: f64) -> f64 {
        let choose =
            |n: u32, k: u32| (1..=k).fold(1.0, |c, i| c * f64::from(n - k + i) / f64::from(i));
        (k..=n)
            .map(|j| choose(n, j) * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32))
            .sum()
    }

    #[test]
    fn exact_tail_matches_direct_sum() {
        for n in [1u32, 2, 5, 22, 60, 150] {
            for p in [0.01, 0.2, 0.5, 0.77, 0.99] {
                for k in 0..=n {
                    let got = binomial_upper_tail(f64::from(k), f64::from(n), p, 1.0 - p);
                    let want = brute_upper(k, n, p);
                    assert!(
                        (got - want).abs() <= 1e-12 + 1e-9 * want,
                        "n={n} p={p} k={k}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn stirlerr_is_continuous_across_its_series_cutoffs() {
        // ln(n!) by direct sum against the series just above each cut-off.
        for n in [16u32, 36, 81, 501] {
            let ln_fact: f64 = (2..=n).map(|i| f64::from(i).ln()).sum();
            let nf = f64::from(n);
            let direct =
                ln_fact - (nf + 0.5) * nf.ln() + nf - 0.5 * (2.0 * std::f64::consts::PI).ln();
            assert!((stirlerr(nf) - direct).abs() < 1e-11, "n={n}");
        }
        assert!((stirlerr(1.0) - 0.081_061_466_795_327_26).abs() < 1e-15);
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(
                (erfc(x) - want).abs() <= 1.2e-7 * want.max(1e-300),
                "erfc({x})"
            );
        }
    }

    #[test]
    fn normal_approximation_agrees_with_exact_sum_at_the_switch() {
        // Just below the variance limit the exact sum runs; the approximation there must agree.
        let n = 4.0e8_f64;
        let (p, q) = (0.5, 0.5);
        for dz in [-2.0, 0.0, 1.0, 2.5] {
            let k = (n * p + dz * (n * p * q).sqrt()).round();
            let exact = binomial_upper_tail(k, n, p, q);
            let z = (k - 0.5 - n * p) / (n * p * q).sqrt();
            let approx = 0.5 * erfc(z / std::f64::consts::SQRT_2);
            assert!(
                (exact - approx).abs() < 1e-4,
                "dz={dz}: {exact} vs {approx}"
            );
        }
    }
}
