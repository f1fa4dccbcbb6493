//! Settings of the LLM gateway, flattened into `architect serve` (`ServeConfig`). Names follow
//! SPEC.md ("LLM Provider Failover System"); the per-provider base URLs exist so tests (and
//! proxies) can point a provider somewhere else. Keys may be given as `vault:NAME`, resolved
//! through the vault at first use (and re-read every few minutes).
//!
//! `Default` is written by hand and matches the clap defaults (tests build configs with
//! `Default::default()`).

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct LlmConfig {
    /// Try the next provider of the chain when one fails (connection error, timeout, 5xx, 429).
    /// When false only the first provider of the chain is used.
    #[arg(long = "llm-failover-enabled", env = "LLM_FAILOVER_ENABLED", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub failover_enabled: bool,

    /// Primary provider: claude, ollama, anythingllm, gemini or openai. It is moved to the front
    /// of the chain.
    #[arg(
        long = "llm-default-provider",
        env = "LLM_DEFAULT_PROVIDER",
        default_value = "claude"
    )]
    pub default_provider: String,

    /// Failover order, comma-separated provider names (unknown names are refused at start).
    #[arg(
        long = "llm-chain",
        env = "LLM_FAILOVER_CHAIN",
        default_value = "claude,ollama,anythingllm,gemini,openai"
    )]
    pub chain: String,

    /// Anthropic API key (or `vault:NAME`). Claude is skipped while unset.
    #[arg(
        long = "anthropic-api-key",
        env = "ANTHROPIC_API_KEY",
        hide_env_values = true
    )]
    pub anthropic_api_key: Option<String>,

    /// OpenAI API key (or `vault:NAME`). OpenAI is skipped while unset.
    #[arg(
        long = "openai-api-key",
        env = "OPENAI_API_KEY",
        hide_env_values = true
    )]
    pub openai_api_key: Option<String>,

    /// Google API key for Gemini (or `vault:NAME`). Gemini is skipped while unset.
    #[arg(
        long = "google-api-key",
        env = "GOOGLE_API_KEY",
        hide_env_values = true
    )]
    pub google_api_key: Option<String>,

    /// AnythingLLM API key (or `vault:NAME`). AnythingLLM is skipped while unset.
    #[arg(
        long = "anythingllm-api-key",
        env = "ANYTHINGLLM_API_KEY",
        hide_env_values = true
    )]
    pub anythingllm_api_key: Option<String>,

    /// Base URL of the Anthropic Messages API (not ANTHROPIC_BASE_URL: that one points agents
    /// at this gateway).
    #[arg(
        long = "llm-anthropic-base-url",
        env = "LLM_ANTHROPIC_BASE_URL",
        default_value = "https://api.anthropic.com"
    )]
    pub anthropic_base_url: String,

    /// Base URL of the OpenAI API (`/v1/chat/completions` is appended).
    #[arg(
        long = "llm-openai-base-url",
        env = "LLM_OPENAI_BASE_URL",
        default_value = "https://api.openai.com"
    )]
    pub openai_base_url: String,

    /// Base URL of the Gemini API (`/v1beta/models/...:generateContent` is appended).
    #[arg(
        long = "llm-gemini-base-url",
        env = "LLM_GEMINI_BASE_URL",
        default_value = "https://generativelanguage.googleapis.com"
    )]
    pub gemini_base_url: String,

    /// Ollama API endpoint (`/api/chat` is appended).
    #[arg(
        long = "ollama-endpoint",
        env = "OLLAMA_ENDPOINT",
        default_value = "http://localhost:11434"
    )]
    pub ollama_endpoint: String,

    /// AnythingLLM endpoint (`/api/v1/workspace/<slug>/chat` is appended).
    #[arg(
        long = "anythingllm-endpoint",
        env = "ANYTHINGLLM_ENDPOINT",
        default_value = "http://localhost:3001"
    )]
    pub anythingllm_endpoint: String,

    /// AnythingLLM workspace slug the gateway chats with.
    #[arg(
        long = "anythingllm-workspace",
        env = "ANYTHINGLLM_WORKSPACE",
        default_value = "default"
    )]
    pub anythingllm_workspace: String,

    /// Model used on Claude when the request names another provider's model.
    #[arg(
        long = "llm-claude-model",
        env = "LLM_CLAUDE_MODEL",
        default_value = "claude-sonnet-4-5"
    )]
    pub claude_model: String,

    /// Model used on OpenAI when the request names another provider's model.
    #[arg(
        long = "llm-openai-model",
        env = "LLM_OPENAI_MODEL",
        default_value = "gpt-4o"
    )]
    pub openai_model: String,

    /// Model used on Gemini when the request names another provider's model.
    #[arg(
        long = "llm-gemini-model",
        env = "LLM_GEMINI_MODEL",
        default_value = "gemini-2.0-flash"
    )]
    pub gemini_model: String,

    /// Model used on Ollama when the request names a hosted provider's model.
    #[arg(
        long = "llm-ollama-model",
        env = "LLM_OLLAMA_MODEL",
        default_value = "llama3.2"
    )]
    pub ollama_model: String,

    /// Consecutive failures that open a provider's circuit breaker.
    #[arg(long = "llm-breaker-threshold", env = "LLM_BREAKER_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker_threshold: u32,

    /// Seconds an open breaker waits before letting one probe request through.
    #[arg(
        long = "llm-breaker-cooldown",
        env = "LLM_BREAKER_COOLDOWN_SECS",
        default_value_t = 60
    )]
    pub breaker_cooldown_secs: u64,

    /// Seconds to wait for a provider's response headers (connect included) before failing over.
    #[arg(
        long = "llm-request-timeout",
        env = "LLM_REQUEST_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub request_timeout_secs: u64,

    /// Largest request body the gateway accepts, in bytes (agents send whole conversations,
    /// images included; the API's ARCHITECT_MAX_BODY_BYTES does not apply to `/v1/*`).
    #[arg(id = "llm_max_body_bytes", long = "llm-max-body-bytes", env = "LLM_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Request bytes all `/v1/*` requests together may hold in memory at once; a request
    /// whose body would pass it answers 503 (`gateway_busy`, Retry-After) in the client's
    /// format instead of waiting. Keep it at least LLM_MAX_BODY_BYTES.
    #[arg(long = "llm-max-in-flight-bytes", env = "LLM_MAX_IN_FLIGHT_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_in_flight_bytes: usize,

    /// Seconds a stream may stay silent before it counts as failed.
    #[arg(
        long = "llm-stream-idle-timeout",
        env = "LLM_STREAM_IDLE_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub stream_idle_timeout_secs: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            failover_enabled: true,
            default_provider: "claude".into(),
            chain: "claude,ollama,anythingllm,gemini,openai".into(),
            anthropic_api_key: None,
            openai_api_key: None,
            google_api_key: None,
            anythingllm_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".into(),
            openai_base_url: "https://api.openai.com".into(),
            gemini_base_url: "https://generativelanguage.googleapis.com".into(),
            ollama_endpoint: "http://localhost:11434".into(),
            anythingllm_endpoint: "http://localhost:3001".into(),
            anythingllm_workspace: "default".into(),
            claude_model: "claude-sonnet-4-5".into(),
            openai_model: "gpt-4o".into(),
            gemini_model: "gemini-2.0-flash".into(),
            ollama_model: "llama3.2".into(),
            breaker_threshold: 5,
            breaker_cooldown_secs: 60,
            request_timeout_secs: 120,
            max_body_bytes: 32 * 1024 * 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
            stream_idle_timeout_secs: 120,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        llm: LlmConfig,
    }

    #[test]
    fn default_matches_clap_defaults() {
        let parsed = Probe::parse_from(["probe"]).llm;
        let d = LlmConfig::default();
        // Env vars of the test process could change parsed values; compare the ones tests rely on.
        assert_eq!(parsed.breaker_threshold, d.breaker_threshold);
        assert_eq!(parsed.breaker_cooldown_secs, d.breaker_cooldown_secs);
        assert_eq!(parsed.request_timeout_secs, d.request_timeout_secs);
        assert_eq!(parsed.anythingllm_workspace, d.anythingllm_workspace);
        assert_eq!(parsed.max_body_bytes, d.max_body_bytes);
        assert_eq!(parsed.max_in_flight_bytes, d.max_in_flight_bytes);
    }
}
