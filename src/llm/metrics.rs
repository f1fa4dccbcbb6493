//! In-memory gateway metrics since this server started: per provider, attempts, successes,
//! failures and a latency histogram (time to the answer, or to the first event of a stream).
//! Every update is mirrored to the Prometheus recorder (`/metrics`): `llm_requests_total`,
//! `llm_request_duration_seconds`, `llm_tokens_total`, `llm_cost_nanodollars_total`,
//! `llm_failovers_total`, `llm_circuit_state`, `llm_budget_warnings_total`.
//! Durable totals (cost, tokens, requests over days) come from the ledger in the database.

use super::{Nanos, ProviderId, Usage};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in milliseconds (the last bucket is unbounded).
pub const LATENCY_BUCKETS_MS: [u64; 14] = [
    1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProviderCounters {
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    /// Counts per bucket of [`LATENCY_BUCKETS_MS`], plus one overflow bucket.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_ms: u64,
}

impl ProviderCounters {
    /// An estimate of the latency under which `q` (0..1) of the successful attempts fell: the
    /// bucket holding that rank, interpolated linearly inside it (as Prometheus'
    /// `histogram_quantile` does), so it is off by at most that bucket's width. A rank in the
    /// overflow bucket reads as the last bound, [`LATENCY_FLOOR_OF_OVERFLOW_MS`] (at least
    /// that long).
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.latency_buckets.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = LATENCY_BUCKETS_MS.get(i) else {
                    return Some(LATENCY_FLOOR_OF_OVERFLOW_MS);
                };
                let lower = if i == 0 { 0 } else { LATENCY_BUCKETS_MS[i - 1] };
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + ((upper - lower) as f64 * within).round() as u64);
            }
            below += n;
        }
        None
    }
}

/// What a quantile in the overflow bucket (slower than every bound) reads as.
pub const LATENCY_FLOOR_OF_OVERFLOW_MS: u64 = LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1];

/// Shared counters; one short critical section per update.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<HashMap<ProviderId, ProviderCounters>>,
}

impl Metrics {
    fn with(&self, p: ProviderId, f: impl FnOnce(&mut ProviderCounters)) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(p).or_insert_with(|| ProviderCounters {
            latency_buckets: vec![0; LATENCY_BUCKETS_MS.len() + 1],
            ..ProviderCounters::default()
        });
        f(c);
    }

    pub fn success(&self, p: ProviderId, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.with(p, |c| {
            c.attempts += 1;
            c.successes += 1;
            c.latency_sum_ms = c.latency_sum_ms.saturating_add(ms);
            let i = LATENCY_BUCKETS_MS
                .iter()
                .position(|b| ms <= *b)
                .unwrap_or(LATENCY_BUCKETS_MS.len());
            c.latency_buckets[i] += 1;
        });
        metrics::counter!("llm_requests_total", "provider" => p.as_str(), "outcome" => "success")
            .increment(1);
        metrics::histogram!("llm_request_duration_seconds", "provider" => p.as_str())
            .record(latency.as_secs_f64());
    }

    pub fn failure(&self, p: ProviderId, reason_kind: &'static str) {
        self.with(p, |c| {
            c.attempts += 1;
            c.failures += 1;
        });
        metrics::counter!("llm_requests_total", "provider" => p.as_str(), "outcome" => "failure")
            .increment(1);
        metrics::counter!("llm_provider_failures_total", "provider" => p.as_str(), "kind" => reason_kind).increment(1);
    }

    pub fn failover(from: ProviderId, reason_kind: &'static str) {
        metrics::counter!("llm_failovers_total", "from" => from.as_str(), "reason" => reason_kind)
            .increment(1);
    }

    pub fn usage(p: ProviderId, u: Usage, cost: Nanos) {
        metrics::counter!("llm_tokens_total", "provider" => p.as_str(), "direction" => "input")
            .increment(u.input_tokens);
        metrics::counter!("llm_tokens_total", "provider" => p.as_str(), "direction" => "output")
            .increment(u.output_tokens);
        metrics::counter!("llm_cost_nanodollars_total", "provider" => p.as_str())
            .increment(u64::try_from(cost).unwrap_or(0));
    }

    pub fn snapshot(&self) -> HashMap<ProviderId, ProviderCounters> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_interpolated_inside_their_bucket() {
        let m = Metrics::default();
        for ms in [3, 3, 3, 3, 3, 3, 3, 3, 3, 400] {
            m.success(ProviderId::Ollama, Duration::from_millis(ms));
        }
        let c = &m.snapshot()[&ProviderId::Ollama];
        assert_eq!(c.successes, 10);
        // Rank 5 of the 9 in (1, 5] ms: 1 + 4 * 5/9; the bucket's bound would say 5.
        assert_eq!(c.quantile_ms(0.5), Some(3));
        // Rank 9.9 is 0.9 of the way through the one sample in (250, 500] ms.
        assert_eq!(c.quantile_ms(0.99), Some(475));
        assert_eq!(
            c.quantile_ms(0.0),
            Some(1),
            "the lowest estimate is the first bucket's"
        );
        assert_eq!(c.quantile_ms(1.0), Some(500));
        assert_eq!(
            ProviderCounters::default().quantile_ms(0.5),
            None,
            "no sample, no estimate"
        );

        let m = Metrics::default();
        for ms in [0, 7, 7, 30, 80, 120, 120, 900, 3_000, 70_000] {
            m.success(ProviderId::Claude, Duration::from_millis(ms));
        }
        let c = &m.snapshot()[&ProviderId::Claude];
        assert_eq!(c.quantile_ms(0.05), Some(1));
        // Rank 2.5 is 0.75 through (5, 10] ms, which holds the 2nd and 3rd samples.
        assert_eq!(c.quantile_ms(0.25), Some(9));
        // Rank 6 is halfway through (100, 250] ms, which holds the 6th and 7th.
        assert_eq!(c.quantile_ms(0.6), Some(175));
        assert_eq!(
            c.quantile_ms(0.99),
            Some(LATENCY_FLOOR_OF_OVERFLOW_MS),
            "a rank among the slowest-than-every-bound reads as the last bound"
        );
    }
}
