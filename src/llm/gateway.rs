//! The gateway endpoints: `POST /v1/messages` (Anthropic Messages),
//! `POST /v1/chat/completions` (OpenAI Chat Completions) and `POST /v1/responses` (OpenAI
//! Responses, served through the Messages path: `llm::responses`), streaming and not.
//!
//! Callers authenticate with an architect API token, as `x-api-key` (how Anthropic clients,
//! Claude Code included, send `ANTHROPIC_API_KEY`) or `Authorization: Bearer` (OpenAI clients).
//! Browser sessions are not accepted here. Admin-, agent- and worker-scope tokens may call;
//! read-only and ingest tokens may not. Optional request headers:
//! * `x-architect-project: NAME` — attributes cost to a project (and its budget);
//! * `x-architect-provider: NAME` — tries that provider first (`architect chat --provider`).
//!
//! Answers carry `x-architect-provider` (who served) and `x-architect-failovers`, plus
//! `x-architect-budget-warning` once a budget passes its warning threshold. Errors come in the
//! client's own format (Anthropic `{"type":"error","error":{...}}`, OpenAI `{"error":{...}}`)
//! with architect's stable `code`.

use super::actions::{refresh_vault_keys, Verdict};
use super::client::{estimate_usage, CallError, FailedAttempt, Served, ServedBody, UpstreamStream};
use super::ledger::{FailoverEvent, InFlight, LedgerRow, Outcome};
use super::metrics::Metrics;
use super::providers::Inbound;
use super::stream::{AnthropicEncoder, OpenAiEncoder, Part};
use super::{Format, ProviderId, Usage};
use crate::app::AppState;
use crate::auth::{AuthVia, Capability, Identity};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Instant;

mod body;
mod pump;
use body::*;
pub use body::{BodyBudget, HeldBytes};
use pump::*;

mod complete;
mod dispatch;
mod request;
mod responses_entry;
pub use complete::{complete, LlmError};
use dispatch::*;
use request::*;
use responses_entry::*;

pub const PROJECT_HEADER: &str = "x-architect-project";
pub const PROVIDER_HEADER: &str = "x-architect-provider";
pub const FAILOVERS_HEADER: &str = "x-architect-failovers";
pub const BUDGET_WARNING_HEADER: &str = "x-architect-budget-warning";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses))
}

async fn messages(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Format::Anthropic, req).await
}

async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    handle(state, Format::OpenAi, req).await
}

/// `POST /v1/responses` (OpenAI Responses, what Codex speaks): translated into a Messages
/// request and served by [`serve`] like `/v1/messages`, the answer translated back
/// (`llm::responses`). Errors come in the OpenAI format.
async fn responses(State(state): State<AppState>, req: Request) -> Response {
    match serve_responses(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(Format::OpenAi),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn with_headers(
    mut resp: Response,
    provider: ProviderId,
    failed: &[FailedAttempt],
    warnings: &[String],
) -> Response {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static(PROVIDER_HEADER),
        HeaderValue::from_static(provider.as_str()),
    );
    if let Ok(v) = HeaderValue::from_str(&failed.iter().filter(|f| f.called).count().to_string()) {
        h.insert(HeaderName::from_static(FAILOVERS_HEADER), v);
    }
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(w) {
            h.append(HeaderName::from_static(BUDGET_WARNING_HEADER), v);
        }
    }
    resp
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn handle(state: AppState, format: Format, req: Request) -> Response {
    let in_flight = state.llm.ledger.begin();
    match serve(state, format, req, in_flight).await {
        Ok(r) => r,
        Err(e) => e.into_response(format),
    }
}

async fn serve(
    state: AppState,
    format: Format,
    req: Request,
    in_flight: InFlight,
) -> Result<Response, GatewayError> {
    let (mut parts, body) = req.into_parts();
    let llm = state.llm_state();
    let who = authenticate(&mut parts, &llm).await?;
    // Held until the answer (or its stream) is ready: the request lives that long.
    let mut held = HeldBytes::default();
    let raw = read_json(&state, &parts.headers, body, &mut held).await?;
    validate(format, &raw)?;
    let project = match header_str(&parts.headers, PROJECT_HEADER) {
        Some(p) if p.len() > 100 => {
            return Err(GatewayError::bad(format!(
                "{PROJECT_HEADER}: at most 100 characters"
            )))
        }
        p => p.map(str::to_owned),
    };
    let prefer = match header_str(&parts.headers, PROVIDER_HEADER) {
        Some(p) => Some(
            p.parse::<ProviderId>()
                .map_err(|e| GatewayError::bad(format!("{PROVIDER_HEADER}: {e}")))?,
        ),
        None => None,
    };
    let token_id = match who.via {
        AuthVia::Token { token_id, .. } => Some(token_id),
        AuthVia::Session { .. } => None,
    };
    let ctx = Ctx {
        format,
        token_id,
        caller: who.username.clone(),
        project,
        requested_model: raw["model"].as_str().unwrap_or("").to_owned(),
        stream: raw["stream"].as_bool().unwrap_or(false),
        started: Instant::now(),
        state: llm,
    };
    let inbound = match format {
        Format::Anthropic => {
            let fwd = ["anthropic-version", "anthropic-beta"]
                .iter()
                .filter_map(|n| {
                    parts
                        .headers
                        .get(*n)
                        .map(|v| (HeaderName::from_static(n), v.clone()))
                })
                .collect();
            Inbound::anthropic(raw, fwd)
        }
        Format::OpenAi => Inbound::openai(raw),
    };
    let (served, warnings) = match dispatch(&ctx, &inbound, prefer).await {
        Ok(v) => v,
        Err(Stop::Client {
            provider,
            status,
            message,
            raw,
            failed,
            warnings,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let resp = if inbound.passthrough(provider) && !raw.is_empty() {
                json_bytes(code, raw)
            } else {
                GatewayError::new(
                    code,
                    "provider_rejected",
                    format!("{provider} rejected the request: {message}"),
                )
                .into_response(format)
            };
            return Ok(with_headers(resp, provider, &failed, &warnings));
        }
        Err(stop) => return Err(stop.into_error()),
    };
    let provider = served.provider;
    match served.body {
        ServedBody::Complete { completion, raw } => {
            let usage = ctx.record_complete(
                (served.provider, &served.model, &served.failed),
                &completion,
                &inbound,
            );
            let resp = match raw {
                Some(bytes) => json_bytes(StatusCode::OK, bytes),
                None => {
                    let body = match format {
                        Format::Anthropic => completion.to_anthropic(usage),
                        Format::OpenAi => {
                            completion.to_openai(usage, state.clock.now().unix_timestamp())
                        }
                    };
                    (StatusCode::OK, crate::http::extract::Json(body)).into_response()
                }
            };
            Ok(with_headers(resp, provider, &served.failed, &warnings))
        }
        ServedBody::Stream(up) => {
            let (tx, rx) =
                tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
            let failed = served.failed.clone();
            let model = served.model.clone();
            tokio::spawn(pump(ctx, inbound, *up, model, failed, tx, in_flight));
            let mut resp = Response::new(Body::from_stream(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            ));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(with_headers(resp, provider, &served.failed, &warnings))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        let e = validate(Format::Anthropic, &json!({"model": "m", "messages": []})).unwrap_err();
        assert!(e.message.starts_with("max_tokens"), "{}", e.message);
        let e = validate(
            Format::Anthropic,
            &json!({"model": "m", "max_tokens": 5, "messages": []}),
        )
        .unwrap_err();
        assert!(e.message.contains("at least one"));
        let e = validate(
            Format::OpenAi,
            &json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
        )
        .unwrap_err();
        assert!(e.message.contains("wizard"));
        assert!(validate(
            Format::OpenAi,
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        )
        .is_ok());
        assert!(validate(Format::OpenAi, &json!([1])).is_err());
        assert!(validate(
            Format::OpenAi,
            &json!({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]})
        )
        .is_err());
    }
}
