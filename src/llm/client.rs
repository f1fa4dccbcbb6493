//! `UnifiedLlmClient`: SPEC.md's `UnifiedLLMClient` in Rust. One call walks the failover chain:
//! for each provider, the circuit breaker (and any `Retry-After`) decides whether to try it;
//! the request goes out in the provider's own format; connection errors, timeouts, 5xx, 401/403,
//! 408 and 429 move on to the next provider, while the caller's own 4xx (400, 404, 413, 422)
//! comes straight back. Metrics are recorded on the way.
//!
//! ```no_run
//! # async fn f(client: architect::llm::client::UnifiedLlmClient) -> anyhow::Result<()> {
//! let answer = client
//!     .messages_create(serde_json::json!({
//!         "model": "claude-sonnet-4-5", "max_tokens": 1024,
//!         "messages": [{"role": "user", "content": "Hello!"}]
//!     }))
//!     .await?;
//! println!("{}", answer.completion.text());
//! # Ok(()) }
//! ```
//!
//! A stream is returned once its provider produced its first content event: everything that can
//! go wrong before that (refused connection, 5xx, a body that breaks off or holds malformed JSON
//! before any content) still fails over. After that, [`UpstreamStream`] hands out events and a
//! fault ends the stream (the gateway writes the format's error event).

//!
//! The walk over the chain is here; one provider's attempt is in [`attempt`], the stream type
//! in [`upstream`].

mod attempt;
pub mod upstream;

pub use upstream::UpstreamStream;

use super::breaker::{Breaker, BreakerStatus, Skip};
use super::completion::Completion;
use super::metrics::{Metrics, ProviderCounters};
use super::providers::{Inbound, KeyRef, Provider, Registry};
use super::{ProviderId, Usage};
use crate::clock::Clock;
use crate::vault::SecretValue;
use attempt::Attempt;
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A vault-held key is read again after this long (a rotated key is picked up without restart).
const VAULT_KEY_TTL: Duration = Duration::from_secs(300);

/// One provider that was tried and failed (or skipped), with why.
#[derive(Debug, Clone, Serialize)]
pub struct FailedAttempt {
    pub provider: ProviderId,
    /// Short machine-readable kind: `connect`, `timeout`, `status_5xx`, `status_429`,
    /// `status_auth`, `bad_response`, `stream_broken`, `circuit_open`, `rate_limited`,
    /// `not_configured`.
    pub kind: &'static str,
    pub reason: String,
    /// True when the provider was actually called (false: skipped by breaker, Retry-After or
    /// missing key).
    pub called: bool,
}

/// Why a call produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The provider refused the request itself (the caller's mistake): relayed, no failover.
    #[error("{provider} refused the request ({status}): {message}")]
    Client {
        provider: ProviderId,
        status: u16,
        message: String,
        /// The provider's body, relayed as is when the client speaks the provider's format.
        raw: Bytes,
        failed: Vec<FailedAttempt>,
    },
    /// Every provider failed or was skipped.
    #[error("no LLM provider could answer: {}", summary(.failed))]
    Exhausted {
        failed: Vec<FailedAttempt>,
        /// Seconds until the earliest rate-limited provider may be tried again.
        retry_after: Option<u64>,
    },
}

fn summary(failed: &[FailedAttempt]) -> String {
    if failed.is_empty() {
        return "the failover chain is empty".into();
    }
    failed
        .iter()
        .map(|f| format!("{}: {}", f.provider, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A provider's answer.
pub struct Served {
    pub provider: ProviderId,
    /// The model the provider was asked for.
    pub model: String,
    /// Providers tried (or skipped) before this one.
    pub failed: Vec<FailedAttempt>,
    /// Time to the answer, or to a stream's first content event.
    pub latency: Duration,
    pub body: ServedBody,
}

pub enum ServedBody {
    Complete {
        completion: Completion,
        /// The provider's body, when it speaks the client's format (relayed untouched).
        raw: Option<Bytes>,
    },
    /// Boxed: a stream's decoding state is much larger than a complete answer.
    Stream(Box<UpstreamStream>),
}

/// A non-streamed answer (the `messages_create` result).
pub struct Answer {
    pub provider: ProviderId,
    pub completion: Completion,
    pub failed: Vec<FailedAttempt>,
}

struct Inner {
    registry: Registry,
    breakers: HashMap<ProviderId, Breaker>,
    metrics: Metrics,
    http: reqwest::Client,
    clock: Clock,
    /// Keys read from the vault, with when they were read.
    vault_keys: RwLock<HashMap<ProviderId, (Arc<SecretValue>, Instant)>>,
}

/// The failover client. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct UnifiedLlmClient {
    inner: Arc<Inner>,
}

impl UnifiedLlmClient {
    pub fn new(registry: Registry, clock: Clock) -> Self {
        let breakers = ProviderId::ALL
            .iter()
            .map(|&p| {
                (
                    p,
                    Breaker::new(
                        p,
                        registry.breaker_threshold,
                        registry.breaker_cooldown_secs,
                        clock.clone(),
                    ),
                )
            })
            .collect();
        let http = reqwest::Client::builder()
            .connect_timeout(registry.request_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        UnifiedLlmClient {
            inner: Arc::new(Inner {
                registry,
                breakers,
                metrics: Metrics::default(),
                http,
                clock,
                vault_keys: RwLock::default(),
            }),
        }
    }

    /// A client whose only provider is a running architect's gateway (Anthropic format, the
    /// API token as key): what `architect chat` uses, so cost and metrics are recorded there.
    pub fn via_gateway(url: &str, token: &str) -> anyhow::Result<Self> {
        let config = super::LlmConfig {
            chain: "claude".into(),
            default_provider: "claude".into(),
            anthropic_base_url: url.to_owned(),
            anthropic_api_key: Some(token.to_owned()),
            failover_enabled: false,
            request_timeout_secs: 600,
            stream_idle_timeout_secs: 600,
            ..super::LlmConfig::default()
        };
        Ok(Self::new(Registry::from_config(&config)?, Clock::System))
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn breaker(&self, p: ProviderId) -> &Breaker {
        &self.inner.breakers[&p]
    }

    pub fn circuit_status(&self) -> Vec<BreakerStatus> {
        self.inner
            .registry
            .chain
            .iter()
            .map(|p| self.inner.breakers[p].status())
            .collect()
    }

    pub fn reset_circuits(&self, by: &str) {
        for b in self.inner.breakers.values() {
            b.reset(by);
        }
    }

    pub fn metrics(&self) -> HashMap<ProviderId, ProviderCounters> {
        self.inner.metrics.snapshot()
    }

    /// Vault references whose cached value is missing or stale: `(provider, secret name)`.
    pub fn vault_keys_due(&self) -> Vec<(ProviderId, String)> {
        let cache = self
            .inner
            .vault_keys
            .read()
            .unwrap_or_else(|e| e.into_inner());
        self.inner
            .registry
            .providers
            .values()
            .filter_map(|p| match &p.key {
                Some(KeyRef::Vault(name)) => {
                    let fresh = cache
                        .get(&p.id)
                        .is_some_and(|(_, at)| at.elapsed() < VAULT_KEY_TTL);
                    (!fresh).then(|| (p.id, name.clone()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn set_vault_key(&self, p: ProviderId, value: SecretValue) {
        let mut cache = self
            .inner
            .vault_keys
            .write()
            .unwrap_or_else(|e| e.into_inner());
        cache.insert(p, (Arc::new(value), Instant::now()));
    }

    fn key(&self, p: &Provider) -> Result<Option<Arc<SecretValue>>, String> {
        match &p.key {
            None => Ok(None),
            Some(KeyRef::Plain(v)) => Ok(Some(v.clone())),
            Some(KeyRef::Vault(name)) => {
                let cache = self
                    .inner
                    .vault_keys
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                cache
                    .get(&p.id)
                    .map(|(v, _)| Some(v.clone()))
                    .ok_or_else(|| format!("its key vault:{name} could not be read from the vault"))
            }
        }
    }

    /// SPEC.md's `messages.create`: an Anthropic Messages body in, the answer out, failover
    /// included.
    pub async fn messages_create(&self, mut body: serde_json::Value) -> Result<Answer, CallError> {
        body["stream"] = serde_json::Value::Bool(false);
        let served = self
            .send(&Inbound::anthropic(body, Vec::new()), None)
            .await?;
        match served.body {
            ServedBody::Complete { completion, .. } => Ok(Answer {
                provider: served.provider,
                completion,
                failed: served.failed,
            }),
            ServedBody::Stream(_) => Err(CallError::Exhausted {
                failed: served.failed,
                retry_after: None,
            }),
        }
    }

    /// Streams an answer to an Anthropic Messages body (the stream field is set for you).
    pub async fn messages_stream(
        &self,
        mut body: serde_json::Value,
        headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    ) -> Result<Served, CallError> {
        body["stream"] = serde_json::Value::Bool(true);
        self.send(&Inbound::anthropic(body, headers), None).await
    }

    /// Walks the chain for one request.
    pub async fn send(
        &self,
        inbound: &Inbound,
        prefer: Option<ProviderId>,
    ) -> Result<Served, CallError> {
        let mut failed: Vec<FailedAttempt> = Vec::new();
        let mut earliest_retry: Option<time::OffsetDateTime> = None;
        for id in self.inner.registry.order(prefer) {
            let Some(p) = self.inner.registry.providers.get(&id) else {
                continue;
            };
            let skip = |kind, reason: String| FailedAttempt {
                provider: id,
                kind,
                reason,
                called: false,
            };
            if !p.configured() {
                failed.push(skip("not_configured", "no API key configured".into()));
                continue;
            }
            let key = match self.key(p) {
                Ok(k) => k,
                Err(why) => {
                    failed.push(skip("not_configured", why));
                    continue;
                }
            };
            let breaker = &self.inner.breakers[&id];
            let permit = match breaker.try_acquire() {
                Ok(permit) => permit,
                Err(Skip::Open) => {
                    failed.push(skip("circuit_open", "circuit breaker open".into()));
                    continue;
                }
                Err(Skip::RateLimited(until)) => {
                    earliest_retry = Some(earliest_retry.map_or(until, |e| e.min(until)));
                    failed.push(skip(
                        "rate_limited",
                        format!("rate limited until {}", crate::clock::format(until)),
                    ));
                    continue;
                }
            };
            let model = p.model_for(&inbound.model);
            match self
                .attempt(p, key.as_deref().map(SecretValue::expose), inbound, &model)
                .await
            {
                Attempt::Streaming(mut up, latency) => {
                    up.permit = Some(permit);
                    self.inner.metrics.success(id, latency);
                    return Ok(Served {
                        provider: id,
                        model,
                        failed,
                        latency,
                        body: ServedBody::Stream(up),
                    });
                }
                Attempt::Served(body, latency) => {
                    permit.success();
                    self.inner.metrics.success(id, latency);
                    return Ok(Served {
                        provider: id,
                        model,
                        failed,
                        latency,
                        body,
                    });
                }
                Attempt::Client(CallError::Client {
                    provider,
                    status,
                    message,
                    raw,
                    ..
                }) => {
                    // The provider is up; the request was bad.
                    permit.success();
                    return Err(CallError::Client {
                        provider,
                        status,
                        message,
                        raw,
                        failed,
                    });
                }
                Attempt::Client(other) => return Err(other),
                Attempt::Failed(f) => {
                    permit.failure(&f.reason);
                    self.inner.metrics.failure(id, f.kind);
                    if f.kind == "status_429" {
                        let until = breaker
                            .status()
                            .rate_limited_until
                            .as_deref()
                            .and_then(crate::clock::parse);
                        if let Some(u) = until {
                            earliest_retry = Some(earliest_retry.map_or(u, |e| e.min(u)));
                        }
                    }
                    tracing::warn!(provider = %id, kind = f.kind, reason = %f.reason, "llm provider failed; failing over");
                    Metrics::failover(id, f.kind);
                    failed.push(f);
                }
            }
        }
        let retry_after = earliest_retry.map(|u| {
            u64::try_from((u - self.inner.clock.now()).whole_seconds().max(1)).unwrap_or(1)
        });
        Err(CallError::Exhausted {
            failed,
            retry_after,
        })
    }
}

/// Usage when the provider reported none: input from the request's text, output from the
/// answer's (flagged as estimated by the caller).
pub fn estimate_usage(inbound: &Inbound, output_chars: usize) -> Usage {
    Usage {
        input_tokens: super::translate::estimate_tokens(super::translate::anthropic_text_len(
            &inbound.canonical,
        )),
        output_tokens: super::translate::estimate_tokens(output_chars),
    }
}
