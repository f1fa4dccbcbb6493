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

use super::breaker::{Breaker, BreakerStatus, Permit, Skip};
use super::completion::Completion;
use super::metrics::{Metrics, ProviderCounters};
use super::providers::{build_request, error_message, Inbound, KeyRef, Provider, Registry};
use super::stream::{Decoder, Framer, Part, SseEvent, StreamFault};
use super::{ProviderId, Usage};
use crate::clock::Clock;
use crate::vault::SecretValue;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A vault-held key is read again after this long (a rotated key is picked up without restart).
const VAULT_KEY_TTL: Duration = Duration::from_secs(300);

/// Longest `Retry-After` honoured (a provider asking for more is skipped for this long).
const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// `Retry-After` assumed for a 429 that gives none.
const DEFAULT_RETRY_AFTER_SECS: i64 = 30;

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

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A provider's stream after its first content event.
pub struct UpstreamStream {
    pub provider: ProviderId,
    /// The breaker's verdict waits for the stream's end: a provider that breaks every stream
    /// after its first event must still open its circuit.
    permit: Option<Permit>,
    /// The provider's response headers (a gateway upstream names who served: `x-architect-provider`).
    pub response_headers: reqwest::header::HeaderMap,
    decoder: Decoder,
    framer: Framer,
    body: ByteStream,
    idle: Duration,
    /// Frames read before the stream was handed out.
    buffered: VecDeque<(SseEvent, Vec<Part>)>,
    ended: bool,
}

impl UpstreamStream {
    async fn pull(&mut self) -> Result<Option<(Option<SseEvent>, Vec<Part>)>, StreamFault> {
        loop {
            if let Some((ev, parts)) = self.buffered.pop_front() {
                return Ok(Some((Some(ev), parts)));
            }
            if self.ended {
                return Ok(None);
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => {
                    return Err(StreamFault(format!(
                        "the provider sent nothing for {} s",
                        self.idle.as_secs()
                    )))
                }
                Ok(Some(Err(e))) => {
                    return Err(StreamFault(format!("the provider's stream broke: {e}")))
                }
                Ok(Some(Ok(bytes))) => {
                    for ev in self.framer.push(&bytes) {
                        let parts = self.decoder.decode(&ev)?;
                        self.buffered.push_back((ev, parts));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    for ev in self.framer.finish() {
                        let parts = self.decoder.decode(&ev)?;
                        self.buffered.push_back((ev, parts));
                    }
                    let tail = self.decoder.end();
                    if !tail.is_empty() {
                        return Ok(Some((None, tail)));
                    }
                }
            }
        }
    }

    /// The next frame (None for a synthesized tail) and its parts; `Ok(None)` at the end of the
    /// body. A body that ends without the format's end marker is the caller's to judge
    /// (no `Part::Done` was seen: truncated).
    pub async fn next(&mut self) -> Result<Option<(Option<SseEvent>, Vec<Part>)>, StreamFault> {
        self.pull().await
    }

    /// The stream ended properly: a success for the provider's breaker.
    pub fn finished(&mut self) {
        if let Some(p) = self.permit.take() {
            p.success();
        }
    }

    /// The stream broke after it was handed out: a failure for the provider's breaker.
    pub fn fault(&mut self, reason: &str) {
        if let Some(p) = self.permit.take() {
            p.failure(reason);
        }
        metrics::counter!("llm_stream_faults_total", "provider" => self.provider.as_str())
            .increment(1);
    }
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

/// What a single attempt came to.
enum Attempt {
    Served(ServedBody, Duration),
    /// A stream handed out after its first content event; it carries its permit.
    Streaming(Box<UpstreamStream>, Duration),
    Failed(FailedAttempt),
    Client(CallError),
}

fn retry_after(headers: &reqwest::header::HeaderMap, now: time::OffsetDateTime) -> time::Duration {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let secs = match v {
        Some(v) => v.parse::<i64>().ok().or_else(|| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                .ok()
                .map(|t| (t - now).whole_seconds())
        }),
        None => None,
    };
    time::Duration::seconds(
        secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS)
            .clamp(1, MAX_RETRY_AFTER_SECS),
    )
}

/// Statuses that are the caller's own mistake: relayed, no failover.
fn is_client_error(s: StatusCode) -> bool {
    matches!(s.as_u16(), 400 | 404 | 413 | 422)
}

fn has_content(parts: &[Part]) -> bool {
    parts.iter().any(|p| {
        matches!(
            p,
            Part::Text(_)
                | Part::ToolStart { .. }
                | Part::ToolArgs { .. }
                | Part::Opaque
                | Part::Done
        )
    })
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

    async fn attempt(
        &self,
        p: &Provider,
        key: Option<&str>,
        inbound: &Inbound,
        model: &str,
    ) -> Attempt {
        let reg = &self.inner.registry;
        let fail = |kind, reason: String| {
            Attempt::Failed(FailedAttempt {
                provider: p.id,
                kind,
                reason,
                called: true,
            })
        };
        let started = Instant::now();
        let req = build_request(&self.inner.http, p, key, inbound, model);
        let resp = match tokio::time::timeout(reg.request_timeout, req.send()).await {
            Err(_) => {
                return fail(
                    "timeout",
                    format!("no response within {} s", reg.request_timeout.as_secs()),
                )
            }
            Ok(Err(e)) if e.is_timeout() => return fail("timeout", "timed out".into()),
            Ok(Err(e)) if e.is_connect() => return fail("connect", "connection failed".into()),
            Ok(Err(e)) => return fail("connect", format!("request failed: {}", without_url(&e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            if is_client_error(status) {
                return Attempt::Client(CallError::Client {
                    provider: p.id,
                    status: status.as_u16(),
                    message: error_message(&body),
                    raw: body,
                    failed: Vec::new(),
                });
            }
            let msg = error_message(&body);
            return match status.as_u16() {
                429 => {
                    let wait = retry_after(&headers, self.inner.clock.now());
                    self.inner.breakers[&p.id].rate_limited(self.inner.clock.now() + wait);
                    fail(
                        "status_429",
                        format!(
                            "429 rate limited (retry after {} s): {msg}",
                            wait.whole_seconds()
                        ),
                    )
                }
                401 | 403 => fail(
                    "status_auth",
                    format!("{} (check the provider's API key)", status.as_u16()),
                ),
                s if s >= 500 => fail("status_5xx", format!("{s}: {msg}")),
                s => fail("status_other", format!("{s}: {msg}")),
            };
        }
        if !inbound.stream {
            let bytes = match tokio::time::timeout(reg.request_timeout, resp.bytes()).await {
                Err(_) => {
                    return fail("timeout", "the response body did not arrive in time".into())
                }
                Ok(Err(e)) => {
                    return fail(
                        "bad_response",
                        format!("the response body broke off: {}", without_url(&e)),
                    )
                }
                Ok(Ok(b)) => b,
            };
            let v: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => return fail("bad_response", format!("malformed JSON: {e}")),
            };
            use super::stream::Dialect as D;
            let parsed = match p.dialect() {
                D::Anthropic => Completion::from_anthropic(&v),
                D::OpenAi => Completion::from_openai(&v),
                D::Gemini => Completion::from_gemini(&v, model),
                D::Ollama => Completion::from_ollama(&v),
                D::AnythingLlm => Completion::from_anythingllm(&v, model),
            };
            return match parsed {
                Ok(completion) => {
                    let raw = inbound.passthrough(p.id).then_some(bytes);
                    Attempt::Served(ServedBody::Complete { completion, raw }, started.elapsed())
                }
                Err(e) => fail("bad_response", e.to_string()),
            };
        }
        let response_headers = resp.headers().clone();
        let decoder = Decoder::new(p.dialect());
        let framer = decoder.framer();
        let mut up = UpstreamStream {
            provider: p.id,
            permit: None,
            response_headers,
            decoder,
            framer,
            body: Box::pin(resp.bytes_stream()),
            idle: reg.stream_idle_timeout,
            buffered: VecDeque::new(),
            ended: false,
        };
        // Read ahead to the first content event: until then nothing went to the client and a
        // failure can still move on to the next provider.
        let mut ahead = VecDeque::new();
        loop {
            match up.pull().await {
                Err(f) => return fail("stream_broken", f.0),
                Ok(None) => {
                    return fail(
                        "stream_broken",
                        "the stream ended before any content".into(),
                    )
                }
                Ok(Some((ev, parts))) => {
                    let content = has_content(&parts);
                    if let Some(ev) = ev {
                        ahead.push_back((ev, parts));
                    } else {
                        ahead.push_back((
                            SseEvent {
                                event: None,
                                data: String::new(),
                            },
                            parts,
                        ));
                    }
                    if content {
                        break;
                    }
                }
            }
        }
        ahead.extend(up.buffered.drain(..));
        up.buffered = ahead;
        Attempt::Streaming(Box::new(up), started.elapsed())
    }
}

/// reqwest errors name the URL, which for Gemini could carry a key in older setups; keep the
/// kind only.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<provider>");
    }
    s
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
