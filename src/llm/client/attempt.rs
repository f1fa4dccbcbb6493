//! One attempt: the request to one provider and what came of it (an answer, a stream past its
//! first content event, a failure to fail over on, or the caller's own 4xx). The failover walk
//! over these is [`UnifiedLlmClient::send`].

use super::upstream::UpstreamStream;
use super::{CallError, FailedAttempt, ServedBody, UnifiedLlmClient};
use crate::llm::completion::Completion;
use crate::llm::providers::{build_request, error_message, Inbound, Provider};
use crate::llm::stream::Decoder;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Longest `Retry-After` honoured (a provider asking for more is skipped for this long).
const MAX_RETRY_AFTER_SECS: i64 = 3600;

/// `Retry-After` assumed for a 429 that gives none.
const DEFAULT_RETRY_AFTER_SECS: i64 = 30;

/// What a single attempt came to.
pub(super) enum Attempt {
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
impl UnifiedLlmClient {
    pub(super) async fn attempt(
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
            use crate::llm::stream::Dialect as D;
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
        match UpstreamStream::open(
            p.id,
            resp,
            Decoder::new(p.dialect()),
            reg.stream_idle_timeout,
        )
        .await
        {
            Ok(up) => Attempt::Streaming(Box::new(up), started.elapsed()),
            Err(f) => Attempt::Failed(f),
        }
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
