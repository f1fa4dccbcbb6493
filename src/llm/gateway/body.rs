//! Request bodies of the gateway: the in-flight byte budget across `/v1/*` requests, reading
//! and parsing a JSON body within it, and draining a refused one.

use super::*;

/// The request bytes every `/v1/*` request together may hold at once: a semaphore with one
/// permit per byte. A request takes permits for each chunk of its body as it arrives and holds
/// them until its answer is ready (the parsed and translated request live that long), so many
/// large bodies at once cannot grow memory past the cap. A request that cannot have its next
/// chunk's bytes is refused (503, the rest of its body read and dropped), never queued: a
/// queue of half-read bodies is the memory the cap exists to bound. It counts body bytes as received; the parsed request and the
/// provider's copy of it come on top (measured: 16 concurrent 30 MB bodies peaked at 320–390 MB
/// RSS with the 64 MiB default, 805 MB without a cap, debug build).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Bytes one request holds of the [`BodyBudget`]; given back when dropped.
#[derive(Debug, Default)]
pub struct HeldBytes(Option<tokio::sync::OwnedSemaphorePermit>);

impl BodyBudget {
    pub fn new(cap: usize) -> BodyBudget {
        BodyBudget {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                cap.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Adds `n` bytes to `held`, or false when the budget cannot cover them now.
    fn take(&self, held: &mut HeldBytes, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match self.permits.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                match &mut held.0 {
                    Some(h) => h.merge(p),
                    None => held.0 = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

pub(super) fn gateway_busy() -> GatewayError {
    let mut e = GatewayError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "gateway_busy",
        "the gateway holds as many request bytes as it may (LLM_MAX_IN_FLIGHT_BYTES); retry shortly",
    );
    e.retry_after = Some(1);
    e
}

/// The request body as JSON, within the configured size limit, its bytes counted in `held`
/// against the in-flight budget.
pub(super) async fn read_json(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
    held: &mut HeldBytes,
) -> Result<Value, GatewayError> {
    use futures_util::StreamExt;
    let limit = state.config.llm.max_body_bytes;
    let too_large = || {
        GatewayError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the configured limit (LLM_MAX_BODY_BYTES)",
        )
    };
    let budget = &state.llm.body_budget;
    // A declared length is claimed whole before reading: a body that cannot fit is refused
    // without reading a byte of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut stream = body.into_data_stream();
    if let Some(n) = declared {
        if n > limit {
            return Err(too_large());
        }
        if !budget.take(held, n) {
            drain(&mut stream, limit).await;
            return Err(gateway_busy());
        }
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| GatewayError::bad(format!("cannot read the body: {e}")))?;
        let len = buf.len() + chunk.len();
        if len > limit {
            return Err(too_large());
        }
        // Bytes past what was declared (or all of them, without a length) are claimed as
        // they come.
        let claimed = declared.unwrap_or(0);
        if len > claimed && !budget.take(held, len - claimed.max(buf.len())) {
            // Nothing of this body is kept: give its bytes back before draining the rest.
            drop(buf);
            *held = HeldBytes::default();
            drain(&mut stream, limit - len).await;
            return Err(gateway_busy());
        }
        buf.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&buf).map_err(|e| {
        GatewayError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed JSON: {e}"),
        )
    })
}

/// Reads and drops the rest of a refused body (at most `limit` more bytes), keeping nothing:
/// a client that sends its whole body before reading the answer (most HTTP/1 clients) then gets
/// the 503 in its own format instead of a connection reset mid-upload.
pub(super) async fn drain<S>(stream: &mut S, limit: usize)
where
    S: futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    use futures_util::StreamExt;
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            break;
        }
    }
}
