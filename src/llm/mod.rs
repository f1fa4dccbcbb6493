//! LLM gateway (issue 7; SPEC.md "LLM Provider Failover System"): architect speaks the
//! Anthropic Messages API (`POST /v1/messages`) and the OpenAI Chat Completions API
//! (`POST /v1/chat/completions`), streaming and not, to any client holding an architect API
//! token, and serves each request from the first healthy provider of a failover chain
//! (Claude → Ollama → AnythingLLM → Gemini → OpenAI by default), translating formats when the
//! serving provider speaks another one.
//!
//! Map of the domain:
//! * `mod.rs` — the shared vocabulary (providers, formats, stop reasons, usage, money), the
//!   runtime held in `AppState`, and the ledger loop.
//! * `config.rs` — env vars and flags. `breaker.rs` — per-provider circuit breakers.
//! * `translate.rs` (requests), `completion.rs` (answers), `stream.rs` (SSE/NDJSON in, SSE
//!   out) — the wire formats and the translations between them.
//! * `providers.rs` — the provider registry and one HTTP call per provider, in its own format.
//! * `client.rs` — [`client::UnifiedLlmClient`]: the failover chain, breakers, metrics; used by
//!   the gateway and (pointed at the gateway) by `architect chat`.
//! * `metrics.rs` — in-memory counters and latency histograms, mirrored to `/metrics`.
//! * `ledger.rs` — the cost ledger's write-behind buffer (no database write on the request path).
//! * `store.rs` — SQL: ledger, failover events, prices, budgets, aggregates.
//! * `actions.rs` — prices and budgets (rules, cached spend), summaries.
//! * `gateway.rs` — the `/v1/*` handlers; `gateway/dispatch.rs` — the request path they share
//!   with [`complete`], the in-process call (no HTTP hop) for architect's own features; `api.rs` — `/api/llm-metrics/*`, `/api/llm/*`;
//!   `pages.rs` — the `/llm-metrics` dashboard page.
//!
//! Invariants: a request fails over on connection errors, timeouts, 5xx, 401/403 (our key), 408
//! and 429 (then the provider is skipped until its `Retry-After`), never on the caller's own 4xx;
//! a stream switches provider only before its first byte reached the client, and a later failure
//! ends it with the format's error event. Provider keys and caller tokens never reach logs, the
//! ledger or any response.

pub mod actions;
pub mod api;
pub mod breaker;
pub mod client;
pub mod completion;
pub mod config;
pub mod gateway;
pub mod ledger;
pub mod metrics;
pub mod pages;
pub mod providers;
pub mod responses;
pub mod store;
pub mod stream;
pub mod translate;

pub use config::LlmConfig;
pub use gateway::{complete, LlmError};

use crate::app::AppState;
use crate::clock::Clock;
use crate::config::ServeConfig;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

crate::text_enum! {
    /// A provider of the failover chain (SPEC.md's names).
    pub enum ProviderId ("provider") {
        Claude = "claude",
        Ollama = "ollama",
        AnythingLlm = "anythingllm",
        Gemini = "gemini",
        OpenAi = "openai",
    }
}

impl ProviderId {
    /// The wire format this provider speaks, when it is one a client can speak too.
    pub fn client_format(self) -> Option<Format> {
        match self {
            ProviderId::Claude => Some(Format::Anthropic),
            ProviderId::OpenAi => Some(Format::OpenAi),
            _ => None,
        }
    }

    /// Local providers cost nothing (SPEC.md: "$0.00 for local LLM requests").
    pub fn is_local(self) -> bool {
        matches!(self, ProviderId::Ollama | ProviderId::AnythingLlm)
    }

    pub fn describe(self) -> &'static str {
        match self {
            ProviderId::Claude => "Anthropic Claude API",
            ProviderId::Ollama => "Local models (Llama, Mistral)",
            ProviderId::AnythingLlm => "Local RAG system",
            ProviderId::Gemini => "Google Gemini",
            ProviderId::OpenAi => "OpenAI GPT",
        }
    }
}

crate::text_enum! {
    /// The two client-facing wire formats of the gateway.
    pub enum Format ("format") {
        Anthropic = "anthropic",
        OpenAi = "openai",
    }
}

/// Why a model stopped, in Anthropic's terms (the canonical ones here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    Refusal,
}

impl StopReason {
    pub fn anthropic(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::Refusal => "refusal",
        }
    }

    pub fn openai(self) -> &'static str {
        match self {
            StopReason::EndTurn | StopReason::StopSequence => "stop",
            StopReason::MaxTokens => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::Refusal => "content_filter",
        }
    }

    pub fn from_anthropic(s: &str) -> StopReason {
        match s {
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "tool_use" => StopReason::ToolUse,
            "refusal" => StopReason::Refusal,
            _ => StopReason::EndTurn,
        }
    }

    pub fn from_openai(s: &str) -> StopReason {
        match s {
            "length" => StopReason::MaxTokens,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "content_filter" => StopReason::Refusal,
            _ => StopReason::EndTurn,
        }
    }

    pub fn from_gemini(s: &str) -> StopReason {
        match s {
            "MAX_TOKENS" => StopReason::MaxTokens,
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
                StopReason::Refusal
            }
            _ => StopReason::EndTurn,
        }
    }

    pub fn from_ollama(s: &str) -> StopReason {
        match s {
            "length" => StopReason::MaxTokens,
            _ => StopReason::EndTurn,
        }
    }
}

/// Tokens of one request as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// Takes a stream's usage report ([`stream::Part::Usage`]): later reports replace earlier
    /// non-zero fields, and a zero or missing field keeps what was reported before.
    pub fn absorb(&mut self, input: Option<u64>, output: Option<u64>) {
        if let Some(i) = input.filter(|i| *i > 0) {
            self.input_tokens = i;
        }
        if let Some(o) = output.filter(|o| *o > 0) {
            self.output_tokens = o;
        }
    }

    /// Anthropic counts cached input separately; all of it is input here.
    pub fn from_anthropic(v: &serde_json::Value) -> Option<Usage> {
        let input = v["input_tokens"].as_u64()?;
        let cached = v["cache_read_input_tokens"].as_u64().unwrap_or(0)
            + v["cache_creation_input_tokens"].as_u64().unwrap_or(0);
        Some(Usage {
            input_tokens: input + cached,
            output_tokens: v["output_tokens"].as_u64().unwrap_or(0),
        })
    }

    pub fn from_openai(v: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input_tokens: v["prompt_tokens"].as_u64()?,
            output_tokens: v["completion_tokens"].as_u64().unwrap_or(0),
        })
    }

    pub fn from_gemini(v: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input_tokens: v["promptTokenCount"].as_u64()?,
            output_tokens: v["candidatesTokenCount"].as_u64().unwrap_or(0),
        })
    }

    pub fn from_ollama(v: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input_tokens: v["prompt_eval_count"].as_u64()?,
            output_tokens: v["eval_count"].as_u64().unwrap_or(0),
        })
    }
}

/// Money in nano-dollars (1e-9 USD): integer sums are exact, and one token at the cheapest
/// listed price is still a whole number.
pub type Nanos = i64;

/// Formats nano-dollars as dollars with 6 decimals, for the page and the CLI.
pub fn dollars(n: Nanos) -> String {
    format!("${:.6}", n as f64 / 1e9)
}

/// What this domain's operations reach, and nothing else: the pool, the clock, the gateway's
/// runtime, the vault (provider keys held there, read through `vault::resolve_reference`) and
/// the auth domain's state (the gateway resolves its callers' tokens).
/// Built from `AppState` by `FromRef` (app.rs); callers outside a handler use
/// `state.llm_state()`. Cheap to clone.
#[derive(Clone)]
pub struct LlmState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    pub llm: LlmRuntime,
    pub vault: crate::vault::VaultState,
    /// Who calls the gateway: its caller resolution reads tokens through the auth domain
    /// (`gateway::request::authenticate`).
    pub auth: crate::auth::AuthState,
}

/// Runtime state of the gateway held in `AppState`: the unified client (providers, breakers,
/// metrics), the ledger buffer, cached prices and budgets.
#[derive(Clone)]
pub struct LlmRuntime {
    /// Failover chain, breakers and in-memory metrics; shared by every request.
    pub client: client::UnifiedLlmClient,
    /// Ledger rows and failover events waiting for the ledger loop (write-behind).
    pub ledger: Arc<ledger::Ledger>,
    /// Price table and budgets, cached from the database (reloaded after every edit).
    pub book: Arc<actions::Book>,
    /// Request bytes held by `/v1/*` requests right now, up to `LLM_MAX_IN_FLIGHT_BYTES`.
    pub body_budget: gateway::BodyBudget,
}

impl LlmRuntime {
    /// Builds the provider registry from the config. A bad chain name is a start-up error.
    pub fn new(config: &ServeConfig, clock: Clock) -> anyhow::Result<Self> {
        let registry = providers::Registry::from_config(&config.llm)?;
        Ok(LlmRuntime {
            client: client::UnifiedLlmClient::new(registry, clock),
            ledger: Arc::default(),
            book: Arc::default(),
            body_budget: gateway::BodyBudget::new(config.llm.max_in_flight_bytes),
        })
    }
}

/// Ledger rows are written this often: small enough that the metrics endpoints are current
/// within a blink, large enough that a busy gateway writes one transaction per batch instead
/// of one per request.
pub const LEDGER_FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Longest wait at shutdown for in-flight gateway requests (streams) to record their rows.
pub const LEDGER_DRAIN_WAIT: Duration = Duration::from_secs(30);

/// Writes buffered ledger rows and failover events; returns how many rows were written.
pub async fn ledger_tick(state: &LlmState) -> usize {
    match state.llm.ledger.flush(&state.db).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "llm ledger flush failed; will retry");
            0
        }
    }
}

/// This domain's background loops, started by `background::spawn_all`.
pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let loops = state.loops.clone();
    let ticking = state.llm_state();
    let last = state.llm_state();
    let stop = shutdown.clone();
    vec![tokio::spawn(async move {
        crate::background::run_every(loops, "llm_ledger", LEDGER_FLUSH_EVERY, stop, move || {
            let state = ticking.clone();
            async move {
                ledger_tick(&state).await;
            }
        })
        .await;
        // Shutting down: requests still streaming record their rows when they end; wait for
        // them (bounded), then write everything that is left.
        last.llm.ledger.wait_idle(LEDGER_DRAIN_WAIT).await;
        for _ in 0..3 {
            if ledger_tick(&last).await == 0 && last.llm.ledger.is_empty() {
                break;
            }
        }
    })]
}
