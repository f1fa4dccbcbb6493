//! Streaming answers: the client's event encoder, and the pump that relays a provider's
//! stream to the client while the ledger counts it.

use super::*;

/// Client-format writer for a translated stream.
pub(super) enum Encoder {
    Anthropic(AnthropicEncoder),
    OpenAi(OpenAiEncoder),
}

impl Encoder {
    fn encode(&mut self, p: &Part) -> String {
        match self {
            Encoder::Anthropic(e) => e.encode(p),
            Encoder::OpenAi(e) => e.encode(p),
        }
    }
}

pub(super) fn error_event(format: Format, message: &str) -> String {
    match format {
        Format::Anthropic => AnthropicEncoder::error(message),
        Format::OpenAi => OpenAiEncoder::error(message),
    }
}

/// Copies a provider stream to the client (as is, or translated), then records the ledger row.
/// Runs detached from the handler; `_in_flight` keeps shutdown waiting for the row.
pub(super) async fn pump(
    ctx: Ctx,
    inbound: Inbound,
    mut up: UpstreamStream,
    model: String,
    failed: Vec<FailedAttempt>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::convert::Infallible>>,
    _in_flight: InFlight,
) {
    let provider = up.provider;
    let passthrough = inbound.passthrough(provider);
    let mut enc = match ctx.format {
        Format::Anthropic => Encoder::Anthropic(AnthropicEncoder::new(&model)),
        Format::OpenAi => Encoder::OpenAi(OpenAiEncoder::new(
            &model,
            ctx.state.clock.now().unix_timestamp(),
            inbound.include_usage,
        )),
    };
    let mut input: Option<u64> = None;
    let mut output: Option<u64> = None;
    let mut text_chars = 0usize;
    let mut done = false;
    let mut outcome = Outcome::Ok;
    let mut error = None;
    'frames: loop {
        match up.next().await {
            Ok(Some((ev, parts))) => {
                let mut out = String::new();
                let mut usage_only = false;
                for p in &parts {
                    match p {
                        Part::Text(t) => text_chars += t.len(),
                        Part::ToolArgs { json, .. } => text_chars += json.len(),
                        Part::Usage {
                            input: i,
                            output: o,
                        } => {
                            usage_only = true;
                            if let Some(i) = i.filter(|i| *i > 0) {
                                input = Some(i);
                            }
                            if let Some(o) = o.filter(|o| *o > 0) {
                                output = Some(o);
                            }
                        }
                        Part::Done => done = true,
                        _ => {}
                    }
                    if !passthrough {
                        if *p == Part::Done && output.is_none() {
                            // No usage from this provider: give the client the estimate.
                            let est = estimate_usage(&inbound, text_chars);
                            out.push_str(&enc.encode(&Part::Usage {
                                input: Some(input.unwrap_or(est.input_tokens)),
                                output: Some(est.output_tokens),
                            }));
                        }
                        out.push_str(&enc.encode(p));
                    }
                }
                if passthrough {
                    if let Some(ev) = ev {
                        // An OpenAI client that did not ask for the usage chunk does not get it
                        // (the gateway asked upstream for it, to price the request).
                        let skip = ctx.format == Format::OpenAi
                            && !inbound.include_usage
                            && usage_only
                            && parts
                                .iter()
                                .all(|p| matches!(p, Part::Usage { .. } | Part::Start { .. }));
                        if !(skip || ev.event.is_none() && ev.data.is_empty()) {
                            if let Some(name) = &ev.event {
                                out.push_str("event: ");
                                out.push_str(name);
                                out.push('\n');
                            }
                            for line in ev.data.split('\n') {
                                out.push_str("data: ");
                                out.push_str(line);
                                out.push('\n');
                            }
                            out.push('\n');
                        }
                    }
                }
                if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                    outcome = Outcome::Cancelled;
                    error = Some("the client disconnected".to_owned());
                    break 'frames;
                }
                if done {
                    up.finished();
                    break 'frames;
                }
            }
            Ok(None) => {
                if !done {
                    let why = "the provider's stream ended before the answer was complete";
                    up.fault(why);
                    outcome = Outcome::Cut;
                    error = Some(why.to_owned());
                    let _ = tx.send(Ok(Bytes::from(error_event(ctx.format, why)))).await;
                }
                break 'frames;
            }
            Err(fault) => {
                up.fault(&fault.0);
                tracing::warn!(provider = %provider, error = %fault, "llm stream broke after its first byte; ending it with an error event");
                outcome = Outcome::Cut;
                let msg = format!("{provider}: {}", fault.0);
                let _ = tx
                    .send(Ok(Bytes::from(error_event(ctx.format, &msg))))
                    .await;
                error = Some(msg);
                break 'frames;
            }
        }
    }
    let est = estimate_usage(&inbound, text_chars);
    let complete = done && output.is_some();
    let usage = Usage {
        input_tokens: input.unwrap_or(est.input_tokens),
        output_tokens: if complete {
            output.unwrap_or(0)
        } else {
            output.unwrap_or(0).max(est.output_tokens)
        },
    };
    let status = if outcome == Outcome::Ok { 200 } else { 502 };
    ctx.record(
        Some(provider),
        &model,
        usage,
        !complete || input.is_none(),
        outcome,
        status,
        &failed,
        error,
    );
}
