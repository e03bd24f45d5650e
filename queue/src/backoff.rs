//! Retry backoff: exponential in the attempt number, with full jitter on
//! the upper half so that a burst of failures does not retry in lockstep.

use std::time::Duration;

/// How long to wait before retrying after failed attempt `attempt` (1-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failure, before jitter.
    pub base: Duration,
    /// The longest delay, before jitter.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(10 * 60),
        }
    }
}

impl Backoff {
    /// The un-jittered delay after attempt `attempt`: `base * 2^(attempt-1)`,
    /// capped at `max`.
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.base.saturating_mul(1 << exponent).min(self.max)
    }

    /// The delay to use: uniformly random in `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: i32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_attempt_until_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(2), Duration::from_secs(2));
        assert_eq!(b.ceiling(4), Duration::from_secs(8));
        assert_eq!(b.ceiling(5), Duration::from_secs(10));
        assert_eq!(b.ceiling(1000), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_the_upper_half_and_varies() {
        let b = Backoff::default();
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        let ceiling = b.ceiling(3);
        assert!(delays.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(
            distinct.len() > 100,
            "jitter produced only {} distinct delays",
            distinct.len()
        );
    }
}
