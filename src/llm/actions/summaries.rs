//! Summaries built from the ledger: `GET /api/llm-metrics/summary` and the per-provider
//! reports.

use super::super::store::{self, GroupBy, GroupTotals, Totals};
use super::*;
use crate::llm::LlmState;

// ---- summaries ----

/// `GET /api/llm-metrics/summary` (SPEC.md `get_metrics()`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Start of the window (empty: since the first request).
    pub since: String,
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    /// Share of requests answered (0..1); null before the first request.
    pub success_rate: Option<f64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// USD.
    pub total_cost: f64,
    pub total_cost_nanos: i64,
    /// Requests whose usage the provider did not report (estimated from text).
    pub estimated_requests: i64,
    pub failover_count: i64,
    pub providers_in_chain: Vec<ProviderId>,
    pub open_circuits: Vec<ProviderId>,
    pub cost_by_provider: Vec<GroupTotals>,
}

fn rate(t: &Totals) -> Option<f64> {
    (t.requests > 0).then(|| t.succeeded as f64 / t.requests as f64)
}

pub async fn summary(state: &LlmState, since: &str) -> Result<Summary, LlmError> {
    state.llm.ledger.flush(&state.db).await?;
    let t = store::totals_since(&state.db, since).await?;
    let by_provider = store::totals_by(&state.db, GroupBy::Provider, since).await?;
    let failovers = store::failover_count_since(&state.db, since).await?;
    let client = &state.llm.client;
    Ok(Summary {
        since: since.to_owned(),
        success_rate: rate(&t),
        total_requests: t.requests,
        successful_requests: t.succeeded,
        failed_requests: t.failed,
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        total_cost: t.cost_nanos as f64 / 1e9,
        total_cost_nanos: t.cost_nanos,
        estimated_requests: t.estimated,
        failover_count: failovers,
        providers_in_chain: client.registry().order(None),
        open_circuits: client
            .circuit_status()
            .into_iter()
            .filter(|s| s.state != crate::llm::breaker::CircuitState::Closed)
            .map(|s| s.provider)
            .collect(),
        cost_by_provider: by_provider,
    })
}

/// One provider in `GET /api/llm-metrics/providers`.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderReport {
    pub provider: ProviderId,
    pub description: &'static str,
    /// Position in the failover chain (0 = primary); null when not in the chain.
    pub chain_position: Option<usize>,
    pub configured: bool,
    pub local: bool,
    pub default_model: String,
    pub circuit_state: crate::llm::breaker::CircuitState,
    /// From the ledger (durable): requests this provider served, tokens and cost.
    pub requests_served: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost: f64,
    pub cost_nanos: i64,
    /// Since this server started: calls, successes, failures, success rate and latency.
    pub attempts: u64,
    pub successes: u64,
    pub failures: u64,
    pub success_rate: Option<f64>,
    /// Latency quantiles, estimated from the in-memory histogram (interpolated inside the
    /// bucket holding the rank: off by at most that bucket's width; 60000 means at least a
    /// minute). See [`crate::llm::metrics::ProviderCounters::quantile_ms`].
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    pub latency_avg_ms: Option<u64>,
}

pub async fn provider_reports(state: &LlmState) -> Result<Vec<ProviderReport>, LlmError> {
    state.llm.ledger.flush(&state.db).await?;
    let totals: HashMap<String, GroupTotals> = store::totals_by(&state.db, GroupBy::Provider, "")
        .await?
        .into_iter()
        .map(|g| (g.key.clone(), g))
        .collect();
    let client = &state.llm.client;
    let reg = client.registry();
    let chain = reg.order(None);
    let counters = client.metrics();
    Ok(ProviderId::ALL
        .iter()
        .map(|&p| {
            let t = totals.get(p.as_str());
            let c = counters.get(&p).cloned().unwrap_or_default();
            let provider = &reg.providers[&p];
            ProviderReport {
                provider: p,
                description: p.describe(),
                chain_position: chain.iter().position(|x| *x == p),
                configured: provider.configured(),
                local: p.is_local(),
                default_model: provider.default_model.clone(),
                circuit_state: client.breaker(p).state(),
                requests_served: t.map_or(0, |t| t.succeeded),
                input_tokens: t.map_or(0, |t| t.input_tokens),
                output_tokens: t.map_or(0, |t| t.output_tokens),
                cost: t.map_or(0.0, |t| t.cost_nanos as f64 / 1e9),
                cost_nanos: t.map_or(0, |t| t.cost_nanos),
                attempts: c.attempts,
                successes: c.successes,
                failures: c.failures,
                success_rate: (c.attempts > 0).then(|| c.successes as f64 / c.attempts as f64),
                latency_p50_ms: c.quantile_ms(0.5),
                latency_p95_ms: c.quantile_ms(0.95),
                latency_p99_ms: c.quantile_ms(0.99),
                latency_avg_ms: (c.successes > 0).then(|| c.latency_sum_ms / c.successes),
            }
        })
        .collect())
}
