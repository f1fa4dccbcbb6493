//! The one backoff formula: `base * 2^failures`, capped at `max`, scaled by a jitter factor in
//! [0.5, 1] so that things that failed together (a flapping server, many workers) do not all
//! come back in the same instant. Used by the task queue's retries, the node agent and the
//! workers while the server is unreachable, their result reports, and background loops after a
//! panicking tick.

use rand::Rng;
use std::time::Duration;

/// The delay after `failures` earlier failures. `jitter` in [0, 1] picks the factor
/// `0.5 + 0.5 * jitter` (passed in so tests can pin it; 1.0 means no jitter).
pub fn delay(base: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let raw = base.as_secs_f64() * 2f64.powi(failures.min(40) as i32);
    let capped = raw.min(max.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
}

/// A retry loop's state: how many failures in a row.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// After a success: the next failure waits `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The wait after one more failure (random jitter).
    pub fn next_delay(&mut self) -> Duration {
        let jitter = rand::thread_rng().gen_range(0.0..1.0);
        let d = delay(self.base, self.max, self.failures, jitter);
        self.failures = self.failures.saturating_add(1);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters() {
        let (s, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(delay(s, max, 0, 1.0), Duration::from_secs(1));
        assert_eq!(delay(s, max, 0, 0.0), Duration::from_millis(500));
        assert_eq!(delay(s, max, 3, 1.0), Duration::from_secs(8));
        assert_eq!(delay(s, max, 30, 1.0), max);
        assert!(delay(s, max, 30, 0.3) < max);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
        for _ in 0..10 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }
}
