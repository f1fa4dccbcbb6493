//! Per-source rate limits on error reports: a token bucket per source (the report's `source`,
//! or `sentry:<project>`), refilled at `rate` tokens per second up to `burst`. A report that
//! finds its bucket empty is refused with the seconds until a token is back (`Retry-After`).
//!
//! In memory, per server: a limit protects this process and its database from a reporting
//! loop gone wild; it is not an accounting quota.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Bound on remembered sources; past it, full (idle) buckets are forgotten, and if that is not
/// enough, all of them (a forgotten bucket starts full again: lenient, never wrong-way strict).
const MAX_SOURCES: usize = 50_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    /// Tokens per second; 0 or less disables the limit.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`, or says how many whole seconds until one is back.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Ok(());
        }
        // Plain data behind the lock: a poisoned lock is still consistent.
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(key) && map.len() >= MAX_SOURCES {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            if map.len() >= MAX_SOURCES {
                map.clear();
            }
        }
        let b = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.rate;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate_then_refill() {
        let l = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check("a", t0), Ok(()));
        }
        assert_eq!(l.check("a", t0), Err(1));
        // Another source has its own bucket.
        assert_eq!(l.check("b", t0), Ok(()));
        // Half a second at 2/s is one token.
        assert_eq!(l.check("a", t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.check("a", t0 + Duration::from_millis(500)).is_err());
        // A slow rate asks for a longer wait.
        let slow = RateLimiter::new(0.1, 1);
        assert_eq!(slow.check("x", t0), Ok(()));
        assert_eq!(slow.check("x", t0), Err(10));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let l = RateLimiter::new(0.0, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.check("a", t0), Ok(()));
        }
    }
}
