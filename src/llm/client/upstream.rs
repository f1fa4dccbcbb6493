//! [`UpstreamStream`]: a provider's event stream as the gateway reads it. Chunks are pulled under
//! the idle timeout, framed and decoded into [`Part`]s; [`UpstreamStream::open`] reads ahead to
//! the first content event, so that a stream that breaks before it can still fail over. The
//! circuit breaker's verdict waits for the stream's end ([`UpstreamStream::finished`] or
//! [`UpstreamStream::fault`]).

use super::FailedAttempt;
use crate::llm::breaker::Permit;
use crate::llm::stream::{Decoder, Framer, Part, SseEvent, StreamFault};
use crate::llm::ProviderId;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct UpstreamStream {
    pub provider: ProviderId,
    /// The breaker's verdict waits for the stream's end: a provider that breaks every stream
    /// after its first event must still open its circuit.
    pub(super) permit: Option<Permit>,
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
    /// Reads the provider's response up to its first content event: until then nothing went
    /// to the client, and a failure (`stream_broken`) can still move on to the next provider.
    pub(super) async fn open(
        provider: ProviderId,
        resp: reqwest::Response,
        decoder: Decoder,
        idle: Duration,
    ) -> Result<Self, FailedAttempt> {
        let broken = |reason: String| FailedAttempt {
            provider,
            kind: "stream_broken",
            reason,
            called: true,
        };
        let response_headers = resp.headers().clone();
        let framer = decoder.framer();
        let mut up = UpstreamStream {
            provider,
            permit: None,
            response_headers,
            decoder,
            framer,
            body: Box::pin(resp.bytes_stream()),
            idle,
            buffered: VecDeque::new(),
            ended: false,
        };
        let mut ahead = VecDeque::new();
        loop {
            match up.pull().await {
                Err(f) => return Err(broken(f.0)),
                Ok(None) => return Err(broken("the stream ended before any content".into())),
                Ok(Some((ev, parts))) => {
                    let content = has_content(&parts);
                    let ev = ev.unwrap_or(SseEvent {
                        event: None,
                        data: String::new(),
                    });
                    ahead.push_back((ev, parts));
                    if content {
                        break;
                    }
                }
            }
        }
        ahead.extend(up.buffered.drain(..));
        up.buffered = ahead;
        Ok(up)
    }

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
