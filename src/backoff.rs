//! Exponential backoff with jitter, for anything that retries against a shared server or file.

use std::hash::BuildHasher;
use std::time::Duration;

/// `base * 2^attempt`, capped at `cap`, times a random factor in [0.5, 1) so that clients
/// which failed together do not retry together.
pub fn jittered(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1 << attempt.min(16)).min(cap);
    // A fresh RandomState is seeded from the OS per process and varies per call: enough
    // randomness for spreading retries, without a dependency.
    let r = std::collections::hash_map::RandomState::new().hash_one(attempt);
    full.mul_f64(0.5 + (r % 1000) as f64 / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_a_cap() {
        let (base, cap) = (Duration::from_millis(250), Duration::from_secs(4));
        for attempt in 0..20 {
            let d = jittered(base, cap, attempt);
            let full = base.saturating_mul(1 << attempt.min(16)).min(cap);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }
}
