//! The provider registry (the chain, each provider's endpoint, key and default model) and the
//! shape of one HTTP request to each provider in its own wire format:
//!
//! | provider     | request                                                      | auth           |
//! |--------------|--------------------------------------------------------------|----------------|
//! | claude       | `POST {base}/v1/messages`                                    | `x-api-key`    |
//! | openai       | `POST {base}/v1/chat/completions`                            | bearer         |
//! | gemini       | `POST {base}/v1beta/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`) | `x-goog-api-key` |
//! | ollama       | `POST {endpoint}/api/chat` (NDJSON when streaming)           | none           |
//! | anythingllm  | `POST {endpoint}/api/v1/workspace/{slug}/chat` (or `/stream-chat`) | bearer   |

use super::stream::Dialect;
use super::{Format, LlmConfig, ProviderId};
use crate::vault::SecretValue;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::HashMap;

/// Where a provider key comes from.
#[derive(Debug, Clone)]
pub enum KeyRef {
    Plain(std::sync::Arc<SecretValue>),
    /// `vault:NAME`: read through the vault (audited) and cached by the runtime.
    Vault(String),
}

/// One provider of the chain.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: ProviderId,
    pub base_url: String,
    pub key: Option<KeyRef>,
    pub default_model: String,
}

impl Provider {
    /// A provider is tried only when it can be called: hosted ones (and AnythingLLM) need a key.
    pub fn configured(&self) -> bool {
        self.id == ProviderId::Ollama || self.key.is_some()
    }

    pub fn dialect(&self) -> Dialect {
        match self.id {
            ProviderId::Claude => Dialect::Anthropic,
            ProviderId::OpenAi => Dialect::OpenAi,
            ProviderId::Gemini => Dialect::Gemini,
            ProviderId::Ollama => Dialect::Ollama,
            ProviderId::AnythingLlm => Dialect::AnythingLlm,
        }
    }

    /// The model to ask this provider for: the requested one when it is this provider's,
    /// otherwise the provider's default (a Claude model name means nothing to Ollama).
    pub fn model_for(&self, requested: &str) -> String {
        let r = requested.to_ascii_lowercase();
        let hosted = r.starts_with("claude")
            || r.starts_with("gpt-")
            || r.starts_with("chatgpt")
            || r.starts_with("gemini")
            || (r.starts_with('o') && r[1..].starts_with(|c: char| c.is_ascii_digit()));
        let own = match self.id {
            ProviderId::Claude => r.starts_with("claude"),
            ProviderId::OpenAi => hosted && !r.starts_with("claude") && !r.starts_with("gemini"),
            ProviderId::Gemini => r.starts_with("gemini"),
            ProviderId::Ollama => !hosted && !r.is_empty(),
            ProviderId::AnythingLlm => false,
        };
        if own {
            requested.to_owned()
        } else {
            self.default_model.clone()
        }
    }
}

/// Every provider, the chain order and the call limits.
#[derive(Debug, Clone)]
pub struct Registry {
    pub chain: Vec<ProviderId>,
    pub providers: HashMap<ProviderId, Provider>,
    pub failover_enabled: bool,
    pub breaker_threshold: u32,
    pub breaker_cooldown_secs: u64,
    pub request_timeout: std::time::Duration,
    pub stream_idle_timeout: std::time::Duration,
}

fn key(v: &Option<String>) -> Option<KeyRef> {
    let v = v.as_deref()?.trim();
    if v.is_empty() {
        return None;
    }
    Some(match v.strip_prefix(crate::vault::REFERENCE_PREFIX) {
        Some(name) => KeyRef::Vault(name.to_owned()),
        None => KeyRef::Plain(std::sync::Arc::new(SecretValue::new(v.to_owned()))),
    })
}

fn trim(u: &str) -> String {
    u.trim_end_matches('/').to_owned()
}

impl Registry {
    /// The chain's providers, in order.
    fn in_chain(&self) -> impl Iterator<Item = &Provider> {
        self.chain.iter().filter_map(|p| self.providers.get(p))
    }

    /// Whether a provider of the chain could answer (Ollama needs no key).
    pub fn has_configured_provider(&self) -> bool {
        self.in_chain().any(|p| p.configured())
    }

    /// Whether a provider of the chain has an API key: someone set one up (a keyless Ollama
    /// sits in the default chain, so it does not count).
    pub fn has_keyed_provider(&self) -> bool {
        self.in_chain().any(|p| p.key.is_some())
    }

    pub fn from_config(c: &LlmConfig) -> anyhow::Result<Registry> {
        let mut chain = Vec::new();
        for name in c.chain.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let id: ProviderId = name
                .parse()
                .map_err(|e| anyhow::anyhow!("LLM_FAILOVER_CHAIN: {e}"))?;
            if !chain.contains(&id) {
                chain.push(id);
            }
        }
        let default: ProviderId = c
            .default_provider
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("LLM_DEFAULT_PROVIDER: {e}"))?;
        chain.retain(|p| *p != default);
        chain.insert(0, default);
        let p = |id, base_url: &str, key, model: &str| Provider {
            id,
            base_url: trim(base_url),
            key,
            default_model: model.to_owned(),
        };
        let providers = [
            p(
                ProviderId::Claude,
                &c.anthropic_base_url,
                key(&c.anthropic_api_key),
                &c.claude_model,
            ),
            p(
                ProviderId::OpenAi,
                &c.openai_base_url,
                key(&c.openai_api_key),
                &c.openai_model,
            ),
            p(
                ProviderId::Gemini,
                &c.gemini_base_url,
                key(&c.google_api_key),
                &c.gemini_model,
            ),
            p(
                ProviderId::Ollama,
                &c.ollama_endpoint,
                None,
                &c.ollama_model,
            ),
            p(
                ProviderId::AnythingLlm,
                &c.anythingllm_endpoint,
                key(&c.anythingllm_api_key),
                &c.anythingllm_workspace,
            ),
        ]
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
        Ok(Registry {
            chain,
            providers,
            failover_enabled: c.failover_enabled,
            breaker_threshold: c.breaker_threshold,
            breaker_cooldown_secs: c.breaker_cooldown_secs,
            request_timeout: std::time::Duration::from_secs(c.request_timeout_secs.max(1)),
            stream_idle_timeout: std::time::Duration::from_secs(c.stream_idle_timeout_secs.max(1)),
        })
    }

    /// The providers to try for one request, in order: `prefer` first when given; only the
    /// first one when failover is off.
    pub fn order(&self, prefer: Option<ProviderId>) -> Vec<ProviderId> {
        let mut order = self.chain.clone();
        if let Some(p) = prefer {
            order.retain(|x| *x != p);
            order.insert(0, p);
        }
        if !self.failover_enabled {
            order.truncate(1);
        }
        order
    }
}

/// One request as the client sent it, plus its canonical (Anthropic) form.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub format: Format,
    /// The client's body, untouched (forwarded as is when the provider speaks the same format).
    pub raw: Value,
    /// The same request as an Anthropic Messages body.
    pub canonical: Value,
    pub model: String,
    pub stream: bool,
    /// OpenAI clients that asked for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// `anthropic-version` / `anthropic-beta` of an Anthropic client, forwarded to Claude.
    pub anthropic_headers: Vec<(HeaderName, HeaderValue)>,
}

impl Inbound {
    pub fn anthropic(raw: Value, anthropic_headers: Vec<(HeaderName, HeaderValue)>) -> Inbound {
        Inbound {
            format: Format::Anthropic,
            model: raw["model"].as_str().unwrap_or("").to_owned(),
            stream: raw["stream"].as_bool().unwrap_or(false),
            include_usage: false,
            canonical: raw.clone(),
            raw,
            anthropic_headers,
        }
    }

    pub fn openai(raw: Value) -> Inbound {
        Inbound {
            format: Format::OpenAi,
            model: raw["model"].as_str().unwrap_or("").to_owned(),
            stream: raw["stream"].as_bool().unwrap_or(false),
            include_usage: raw
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            canonical: super::translate::openai_to_anthropic(&raw),
            raw,
            anthropic_headers: Vec::new(),
        }
    }

    /// True when the provider speaks the client's format: the body goes through untranslated.
    pub fn passthrough(&self, p: ProviderId) -> bool {
        p.client_format() == Some(self.format)
    }
}

/// Builds the HTTP request for `p` (model already chosen, key already resolved).
pub fn build_request(
    http: &reqwest::Client,
    p: &Provider,
    key: Option<&str>,
    inbound: &Inbound,
    model: &str,
) -> reqwest::RequestBuilder {
    use super::translate as t;
    let stream = inbound.stream;
    let mut headers = HeaderMap::new();
    let (url, body) = match p.id {
        ProviderId::Claude => {
            let mut body = inbound.canonical.clone();
            body["model"] = Value::from(model);
            if inbound.format == Format::Anthropic {
                for (k, v) in &inbound.anthropic_headers {
                    headers.insert(k.clone(), v.clone());
                }
            }
            if !headers.contains_key("anthropic-version") {
                headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
            }
            if let Some(k) = key.and_then(|k| HeaderValue::from_str(k).ok()) {
                headers.insert("x-api-key", k);
            }
            (format!("{}/v1/messages", p.base_url), body)
        }
        ProviderId::OpenAi => {
            let body = if inbound.format == Format::OpenAi {
                let mut b = inbound.raw.clone();
                b["model"] = Value::from(model);
                if stream {
                    b["stream_options"] = serde_json::json!({"include_usage": true});
                }
                b
            } else {
                t::anthropic_to_openai(&inbound.canonical, model, stream)
            };
            if let Some(k) = key.and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
                headers.insert(reqwest::header::AUTHORIZATION, k);
            }
            (format!("{}/v1/chat/completions", p.base_url), body)
        }
        ProviderId::Gemini => {
            if let Some(k) = key.and_then(|k| HeaderValue::from_str(k).ok()) {
                headers.insert("x-goog-api-key", k);
            }
            let url = if stream {
                format!(
                    "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                    p.base_url
                )
            } else {
                format!("{}/v1beta/models/{model}:generateContent", p.base_url)
            };
            (url, t::anthropic_to_gemini(&inbound.canonical))
        }
        ProviderId::Ollama => (
            format!("{}/api/chat", p.base_url),
            t::anthropic_to_ollama(&inbound.canonical, model, stream),
        ),
        ProviderId::AnythingLlm => {
            if let Some(k) = key.and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
                headers.insert(reqwest::header::AUTHORIZATION, k);
            }
            let verb = if stream { "stream-chat" } else { "chat" };
            (
                format!("{}/api/v1/workspace/{model}/{verb}", p.base_url),
                t::anthropic_to_anythingllm(&inbound.canonical, "architect-gateway"),
            )
        }
    };
    http.post(url).headers(headers).json(&body)
}

/// The human message inside any provider's error body (for relaying a caller's 4xx).
pub fn error_message(body: &[u8]) -> String {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
    };
    v.pointer("/error/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("the provider refused the request")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_puts_the_default_first_and_rejects_unknown_names() {
        let c = LlmConfig {
            default_provider: "openai".into(),
            ..LlmConfig::default()
        };
        let r = Registry::from_config(&c).unwrap();
        assert_eq!(r.chain[0], ProviderId::OpenAi);
        assert_eq!(r.chain.len(), 5);
        assert_eq!(r.order(Some(ProviderId::Ollama))[0], ProviderId::Ollama);
        let bad = LlmConfig {
            chain: "claude,nope".into(),
            ..LlmConfig::default()
        };
        assert!(Registry::from_config(&bad).is_err());
        let off = LlmConfig {
            failover_enabled: false,
            ..LlmConfig::default()
        };
        assert_eq!(
            Registry::from_config(&off).unwrap().order(None),
            vec![ProviderId::Claude]
        );
    }

    #[test]
    fn models_map_to_the_serving_provider() {
        let r = Registry::from_config(&LlmConfig::default()).unwrap();
        let m = |p, req| r.providers[&p].model_for(req);
        assert_eq!(m(ProviderId::Claude, "claude-opus-4"), "claude-opus-4");
        assert_eq!(m(ProviderId::Ollama, "claude-opus-4"), "llama3.2");
        assert_eq!(m(ProviderId::Ollama, "mistral"), "mistral");
        assert_eq!(m(ProviderId::OpenAi, "o3-mini"), "o3-mini");
        assert_eq!(m(ProviderId::OpenAi, "claude-x"), "gpt-4o");
        assert_eq!(m(ProviderId::Gemini, "gpt-4o"), "gemini-2.0-flash");
    }
}
