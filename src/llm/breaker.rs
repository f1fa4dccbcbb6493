//! One circuit breaker per provider, as SPEC.md states it: `threshold` consecutive failures
//! (default 5) open the circuit; after `cooldown` (default 60 s) exactly one request is let
//! through as a half-open probe; its success closes the circuit, its failure opens it again for
//! another cooldown. While open (or while the probe is out) the provider is skipped.
//!
//! Concurrency: the state sits behind one mutex and every decision is one critical section, so
//! two callers can never both become the probe. A probe is a [`Permit`]; dropping it without a
//! verdict (the caller went away) hands the probe slot back so the next request probes.
//!
//! Time comes from the app's [`Clock`], so tests move it instead of sleeping.

use super::ProviderId;
use crate::clock::Clock;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use time::{Duration, OffsetDateTime};

/// Transitions kept per breaker for the dashboard and the API.
const HISTORY: usize = 50;

crate::text_enum! {
    /// A breaker's state; the names are SPEC.md's.
    pub enum CircuitState ("circuit state") {
        Closed = "closed",
        Open = "open",
        HalfOpen = "half_open",
    }
}

impl CircuitState {
    /// The value of the `llm_circuit_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

/// One state change, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub at: String,
    pub from: CircuitState,
    pub to: CircuitState,
    pub reason: String,
}

/// What the API shows of a breaker.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerStatus {
    pub provider: ProviderId,
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub threshold: u32,
    pub cooldown_secs: u64,
    /// When an open circuit lets its probe through (RFC 3339), if open.
    pub retry_at: Option<String>,
    /// Set while a 429's `Retry-After` says to leave the provider alone (RFC 3339).
    pub rate_limited_until: Option<String>,
    pub history: Vec<Transition>,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    failures: u32,
    opened_at: Option<OffsetDateTime>,
    probe_out: bool,
    rate_limited_until: Option<OffsetDateTime>,
    history: VecDeque<Transition>,
}

/// A provider's breaker. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Breaker {
    provider: ProviderId,
    threshold: u32,
    cooldown: Duration,
    clock: Clock,
    inner: Arc<Mutex<Inner>>,
}

/// Why a provider is skipped right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// The circuit is open (or its one probe is out).
    Open,
    /// A 429 asked us to wait until then.
    RateLimited(OffsetDateTime),
}

/// Leave to send one request. Report its verdict with [`Permit::success`] or [`Permit::failure`];
/// dropping it without one counts as neither (a half-open probe slot is handed back).
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    probe: bool,
    done: bool,
}

impl Breaker {
    pub fn new(provider: ProviderId, threshold: u32, cooldown_secs: u64, clock: Clock) -> Self {
        Breaker {
            provider,
            threshold: threshold.max(1),
            cooldown: Duration::seconds(i64::try_from(cooldown_secs).unwrap_or(i64::MAX / 2)),
            clock,
            inner: Arc::new(Mutex::new(Inner {
                state: CircuitState::Closed,
                failures: 0,
                opened_at: None,
                probe_out: false,
                rate_limited_until: None,
                history: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent data (every update is a few field
        // writes), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn move_to(&self, inner: &mut Inner, to: CircuitState, reason: String) {
        if inner.state == to {
            return;
        }
        let t = Transition {
            at: crate::clock::format(self.clock.now()),
            from: inner.state,
            to,
            reason,
        };
        tracing::info!(provider = %self.provider, from = %t.from, to = %t.to, reason = %t.reason, "llm circuit breaker transition");
        metrics::counter!("llm_circuit_transitions_total", "provider" => self.provider.as_str(), "to" => to.as_str()).increment(1);
        metrics::gauge!("llm_circuit_state", "provider" => self.provider.as_str()).set(to.gauge());
        inner.state = to;
        inner.history.push_back(t);
        while inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
    }

    /// Asks to send a request now. At most one caller gets the half-open probe.
    pub fn try_acquire(&self) -> Result<Permit, Skip> {
        let now = self.clock.now();
        let mut inner = self.lock();
        if let Some(until) = inner.rate_limited_until {
            if now < until {
                return Err(Skip::RateLimited(until));
            }
            inner.rate_limited_until = None;
        }
        let probe = match inner.state {
            CircuitState::Closed => false,
            CircuitState::Open => {
                let ready = inner.opened_at.is_none_or(|t| now - t >= self.cooldown);
                if !ready {
                    return Err(Skip::Open);
                }
                self.move_to(
                    &mut inner,
                    CircuitState::HalfOpen,
                    "cooldown elapsed: letting one probe request through".into(),
                );
                inner.probe_out = true;
                true
            }
            CircuitState::HalfOpen => {
                if inner.probe_out {
                    return Err(Skip::Open);
                }
                inner.probe_out = true;
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            probe,
            done: false,
        })
    }

    fn record_success(&self, probe: bool) {
        let mut inner = self.lock();
        inner.failures = 0;
        if probe {
            inner.probe_out = false;
        }
        if inner.state != CircuitState::Closed {
            self.move_to(&mut inner, CircuitState::Closed, "request succeeded".into());
            inner.opened_at = None;
        }
    }

    fn record_failure(&self, probe: bool, reason: &str) {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.failures = inner.failures.saturating_add(1);
        if probe {
            inner.probe_out = false;
        }
        let open = match inner.state {
            CircuitState::Closed => inner.failures >= self.threshold,
            // A probe failed (or a request admitted before the circuit opened failed late).
            CircuitState::HalfOpen | CircuitState::Open => {
                probe || inner.state == CircuitState::HalfOpen
            }
        };
        if open {
            let why = if inner.state == CircuitState::HalfOpen {
                format!("probe failed: {reason}")
            } else {
                format!("{} consecutive failures; last: {reason}", inner.failures)
            };
            self.move_to(&mut inner, CircuitState::Open, why);
            inner.opened_at = Some(now);
        }
    }

    fn release_probe(&self) {
        let mut inner = self.lock();
        inner.probe_out = false;
    }

    /// Honours a 429's `Retry-After`: the provider is skipped until `until`.
    pub fn rate_limited(&self, until: OffsetDateTime) {
        let mut inner = self.lock();
        if inner.rate_limited_until.is_none_or(|u| u < until) {
            inner.rate_limited_until = Some(until);
        }
    }

    /// Closes the circuit and forgets failures and rate limits (the reset button).
    pub fn reset(&self, by: &str) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.opened_at = None;
        inner.probe_out = false;
        inner.rate_limited_until = None;
        self.move_to(&mut inner, CircuitState::Closed, format!("reset by {by}"));
    }

    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    pub fn status(&self) -> BreakerStatus {
        let inner = self.lock();
        BreakerStatus {
            provider: self.provider,
            state: inner.state,
            consecutive_failures: inner.failures,
            threshold: self.threshold,
            cooldown_secs: u64::try_from(self.cooldown.whole_seconds()).unwrap_or(0),
            retry_at: match inner.state {
                CircuitState::Open => inner
                    .opened_at
                    .map(|t| crate::clock::format(t + self.cooldown)),
                _ => None,
            },
            rate_limited_until: inner.rate_limited_until.map(crate::clock::format),
            history: inner.history.iter().cloned().collect(),
        }
    }
}

impl Permit {
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(mut self) {
        self.done = true;
        self.breaker.record_success(self.probe);
    }

    pub fn failure(mut self, reason: &str) {
        self.done = true;
        self.breaker.record_failure(self.probe, reason);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.release_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Breaker, Clock) {
        let clock = Clock::manual();
        (
            Breaker::new(ProviderId::Claude, 5, 60, clock.clone()),
            clock,
        )
    }

    #[test]
    fn five_failures_open_then_one_probe_after_cooldown() {
        let (b, clock) = breaker();
        for i in 0..4 {
            b.try_acquire().unwrap().failure("500");
            assert_eq!(b.state(), CircuitState::Closed, "after {} failures", i + 1);
        }
        b.try_acquire().unwrap().failure("500");
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.try_acquire().unwrap_err(), Skip::Open);
        clock.advance(59);
        assert_eq!(b.try_acquire().unwrap_err(), Skip::Open);
        clock.advance(1);
        let probe = b.try_acquire().expect("probe allowed");
        assert!(probe.is_probe());
        assert_eq!(b.state(), CircuitState::HalfOpen);
        // Only one probe at a time.
        assert_eq!(b.try_acquire().unwrap_err(), Skip::Open);
        probe.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(!b.try_acquire().unwrap().is_probe());
        let h = b.status().history;
        let states: Vec<_> = h.iter().map(|t| t.to).collect();
        assert_eq!(
            states,
            [
                CircuitState::Open,
                CircuitState::HalfOpen,
                CircuitState::Closed
            ]
        );
    }

    #[test]
    fn failed_probe_reopens_for_another_cooldown() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            b.try_acquire().unwrap().failure("timeout");
        }
        clock.advance(60);
        b.try_acquire().unwrap().failure("still down");
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.try_acquire().is_err());
        clock.advance(60);
        assert!(b.try_acquire().is_ok());
    }

    #[test]
    fn success_resets_the_consecutive_count() {
        let (b, _) = breaker();
        for _ in 0..4 {
            b.try_acquire().unwrap().failure("500");
        }
        b.try_acquire().unwrap().success();
        for _ in 0..4 {
            b.try_acquire().unwrap().failure("500");
        }
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn dropped_probe_is_handed_back() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            b.try_acquire().unwrap().failure("500");
        }
        clock.advance(61);
        drop(b.try_acquire().unwrap());
        assert!(b.try_acquire().unwrap().is_probe());
    }

    #[test]
    fn only_one_concurrent_probe() {
        let (b, clock) = breaker();
        for _ in 0..5 {
            b.try_acquire().unwrap().failure("500");
        }
        clock.advance(61);
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.try_acquire().ok())
            })
            .collect();
        let permits: Vec<Option<Permit>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let got = permits.iter().filter(|p| p.is_some()).count();
        assert_eq!(got, 1);
    }

    #[test]
    fn retry_after_skips_until_then() {
        let (b, clock) = breaker();
        b.rate_limited(clock.now() + Duration::seconds(30));
        assert!(matches!(b.try_acquire(), Err(Skip::RateLimited(_))));
        clock.advance(31);
        assert!(b.try_acquire().is_ok());
    }
}
