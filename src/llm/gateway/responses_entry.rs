//! `POST /v1/responses`: the OpenAI Responses API served through the Messages path
//! (`llm::responses` translates the request and the answer, JSON or event stream).

use super::*;

pub(super) async fn serve_responses(
    state: AppState,
    req: Request,
) -> Result<Response, GatewayError> {
    let (mut parts, body) = req.into_parts();
    // Authenticate before reading a body (serve() checks again, from the same headers).
    authenticate(&mut parts, &state.llm_state()).await?;
    let mut held = HeldBytes::default();
    let raw = read_json(&state, &parts.headers, body, &mut held).await?;
    let messages = crate::llm::responses::to_anthropic(&raw).map_err(GatewayError::bad)?;
    let model = raw["model"].as_str().unwrap_or("").to_owned();
    let created = state.clock.now().unix_timestamp();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&messages).unwrap_or_default();
    let req = Request::from_parts(parts, Body::from(body));
    let in_flight = state.llm.ledger.begin();
    let (mut head, body) = serve(state, Format::Anthropic, req, in_flight)
        .await?
        .into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    let json_head = |mut head: axum::http::response::Parts, v: Value| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Response::from_parts(head, Body::from(v.to_string()))
    };
    if !head.status.is_success() {
        // An Anthropic-format error (the provider's or ours): the same words, OpenAI's shape.
        let b = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        let message = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("the provider rejected the request");
        let kind = v
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("api_error");
        let code = v["code"].as_str().unwrap_or("provider_rejected");
        let err = json!({"error": {"message": message, "type": kind, "code": code, "param": null}});
        return Ok(json_head(head, err));
    }
    let streaming = head
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !streaming {
        let b = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        return Ok(json_head(
            head,
            crate::llm::responses::from_anthropic_message(&v, &model, created),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        use crate::llm::stream::{Decoder, Dialect, Framer};
        use tokio_stream::StreamExt;
        let mut framer = Framer::sse();
        let mut decoder = Decoder::new(Dialect::Anthropic);
        let mut enc = crate::llm::responses::ResponsesEncoder::new(&model, created);
        let mut data = body.into_data_stream();
        let mut done = false;
        while let Some(chunk) = data.next().await {
            let Ok(chunk) = chunk else { break };
            let mut out = String::new();
            for ev in framer.push(&chunk) {
                match decoder.decode(&ev) {
                    Ok(ps) => {
                        for p in &ps {
                            done |= *p == crate::llm::stream::Part::Done;
                            out.push_str(&enc.encode(p));
                        }
                    }
                    Err(fault) => {
                        out.push_str(&enc.failed(&fault.0));
                        done = true;
                    }
                }
            }
            if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
            if done {
                return;
            }
        }
        if !done {
            let out = enc.failed("the provider's stream ended before the answer was complete");
            let _ = tx.send(Ok(Bytes::from(out))).await;
        }
    });
    Ok(Response::from_parts(
        head,
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    ))
}
