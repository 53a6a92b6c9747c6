//! Latency histograms as the sources answer them: per-bucket counts with upper bounds in
//! milliseconds. Cloud Monitoring's distributions and Prometheus' `le` buckets both end
//! here, so a quantile and the stage's slow requests are found one way.

use crate::domain::health::SlowTotals;

/// The bucket that holds quantile `q` of `counts`, with the rank sought and the count below
/// that bucket. None without counts or for `q` outside [0, 1].
pub(super) fn quantile_bucket(counts: &[u64], q: f64) -> Option<(usize, f64, u128)> {
    // u128: counts from an answer may be anything up to u64::MAX each.
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u128;
    for (i, &c) in counts.iter().enumerate() {
        let c = u128::from(c);
        if c == 0 {
            continue;
        }
        if (below + c) as f64 >= rank {
            return Some((i, rank, below));
        }
        below += c;
    }
    None
}

/// Requests over the upper bound of the bucket holding stable's p99, per side: a threshold
/// fixed by stable's own latencies, which a canary like stable exceeds as often. Both sides'
/// counts are in one layout, whose bucket `i` ends at `upper_ms(i)`. None without stable
/// counts, or when that bucket has no finite upper bound (the overflow bucket).
pub(super) fn slow_over_stable_p99(
    stable: &[u64],
    canary: &[u64],
    upper_ms: impl Fn(usize) -> f64,
) -> Option<SlowTotals> {
    let (bucket, _, _) = quantile_bucket(stable, 0.99)?;
    let threshold_ms = upper_ms(bucket);
    if !threshold_ms.is_finite() {
        return None;
    }
    // Saturating: counts from an answer may be anything up to u64::MAX each.
    let over = |counts: &[u64]| {
        counts
            .iter()
            .skip(bucket + 1)
            .fold(0u64, |sum, c| sum.saturating_add(*c))
    };
    Some(SlowTotals {
        threshold_ms,
        stable: over(stable),
        canary: over(canary),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_requests_are_those_past_stables_p99_bucket() {
        let bounds = [10.0, 20.0, 40.0, f64::INFINITY];
        // Stable: 100 requests, the 99th in the third bucket (ends at 40 ms).
        let stable = [50, 40, 9, 1];
        let canary = [5, 5, 5, 5];
        assert_eq!(
            slow_over_stable_p99(&stable, &canary, |i| bounds[i]),
            Some(SlowTotals {
                threshold_ms: 40.0,
                stable: 1,
                canary: 5
            })
        );
        // Stable's p99 in the overflow bucket: no finite threshold.
        assert_eq!(
            slow_over_stable_p99(&[1, 0, 0, 99], &canary, |i| bounds[i]),
            None
        );
        assert_eq!(slow_over_stable_p99(&[0; 4], &canary, |i| bounds[i]), None);
    }
}
