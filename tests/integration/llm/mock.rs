//! Local mock LLM providers speaking each real wire format (Anthropic Messages, OpenAI Chat
//! Completions, Gemini generateContent, Ollama /api/chat, AnythingLLM workspace chat), with
//! fault injection: a queue of scripted acts per server, then a default act.
//!
//! Every answer reports usage of 10 input and 5 output tokens (AnythingLLM reports none), so
//! the tests can compute exact costs.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Anthropic,
    OpenAi,
    Gemini,
    Ollama,
    AnythingLlm,
}

/// What the mock does with one request.
#[derive(Clone, Debug)]
pub enum Act {
    /// A normal answer (text), streamed when the request asks for a stream.
    Ok,
    /// A tool call answer (`get_weather {"city": "Paris"}`).
    ToolCall,
    /// This status with an error body in the provider's format, and maybe a Retry-After.
    Status(u16, Option<&'static str>),
    /// Never answers (the gateway's timeout fires).
    Hang,
    /// Stream: first content, then the body ends without the format's end marker.
    Truncate,
    /// Stream: first content, then malformed JSON.
    MalformedMid,
    /// Malformed JSON before any content (non-stream: a malformed body).
    MalformedFirst,
    /// Stream with this many ms between events.
    Slow(u64),
    /// Stream: a byte order mark first, every LF replaced by this line end, sent in 3-byte
    /// chunks (line ends and the BOM split across chunks).
    LineEnds(&'static str),
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    kind: Kind,
    script: Arc<Mutex<VecDeque<Act>>>,
    default: Arc<Mutex<Act>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct Mock {
    pub url: String,
    shared: Shared,
}

impl Mock {
    pub async fn start(kind: Kind) -> Mock {
        let shared = Shared {
            kind,
            script: Arc::default(),
            default: Arc::new(Mutex::new(Act::Ok)),
            seen: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { url, shared }
    }

    /// Queues acts for the next requests (then the default applies again).
    pub fn push(&self, acts: &[Act]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .extend(acts.iter().cloned());
    }

    pub fn set_default(&self, act: Act) {
        *self.shared.default.lock().unwrap() = act;
    }

    pub fn hits(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.shared
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the mock saw a request")
    }
}

/// A URL where nothing listens (connection refused).
pub async fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn json_response(status: u16, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn stream_response(kind: Kind, frames: Vec<Vec<u8>>, delay_ms: u64) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        for f in frames {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if tx.send(Ok(bytes::Bytes::from(f))).await.is_err() {
                return;
            }
        }
    });
    let ct = if kind == Kind::Ollama {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    Response::builder()
        .header("content-type", ct)
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap()
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Anthropic => "claude",
        Kind::OpenAi => "openai",
        Kind::Gemini => "gemini",
        Kind::Ollama => "ollama",
        Kind::AnythingLlm => "anythingllm",
    }
}

fn error_body(kind: Kind, status: u16) -> Value {
    let msg = format!("mock {} says {status}", name(kind));
    match kind {
        Kind::Anthropic => json!({"type": "error", "error": {"type": "api_error", "message": msg}}),
        Kind::OpenAi | Kind::Gemini => json!({"error": {"message": msg, "code": status}}),
        Kind::Ollama | Kind::AnythingLlm => json!({"error": msg}),
    }
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// The frames of a normal (or tool call) stream in `kind`'s format; the first content frame is
/// at index `first_content`.
fn frames(kind: Kind, model: &str, tool: bool, include_usage: bool) -> (Vec<String>, usize) {
    let text = format!("Hello from {}", name(kind));
    match kind {
        Kind::Anthropic => {
            let mut f = vec![sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
            )];
            if tool {
                f.push(sse(Some("content_block_start"), &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {}}})));
                f.push(sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}})));
                f.push(sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}})));
            } else {
                f.push(sse(Some("content_block_start"), &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
                f.push(sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello "}})));
                f.push(sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text.trim_start_matches("Hello ")}})));
            }
            f.push(sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            f.push(sse(Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null}, "usage": {"output_tokens": 5}})));
            f.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
            (f, 2)
        }
        Kind::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                sse(
                    None,
                    &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                )
            };
            let mut f = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            if tool {
                f.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null));
                f.push(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Paris\"}"}}]}), Value::Null));
                f.push(chunk(json!({}), json!("tool_calls")));
            } else {
                f.push(chunk(json!({"content": "Hello "}), Value::Null));
                f.push(chunk(
                    json!({"content": text.trim_start_matches("Hello ")}),
                    Value::Null,
                ));
                f.push(chunk(json!({}), json!("stop")));
            }
            if include_usage {
                f.push(sse(None, &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})));
            }
            f.push("data: [DONE]\n\n".into());
            (f, 1)
        }
        Kind::Gemini => {
            let part = |p: Value, finish: Option<&str>, usage: bool| {
                let mut v = json!({"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}], "modelVersion": model});
                if let Some(r) = finish {
                    v["candidates"][0]["finishReason"] = json!(r);
                }
                if usage {
                    v["usageMetadata"] = json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15});
                }
                format!("data: {v}\r\n\r\n")
            };
            let f = if tool {
                vec![part(
                    json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}),
                    Some("STOP"),
                    true,
                )]
            } else {
                vec![
                    part(json!({"text": "Hello "}), None, false),
                    part(
                        json!({"text": text.trim_start_matches("Hello ")}),
                        Some("STOP"),
                        true,
                    ),
                ]
            };
            (f, 0)
        }
        Kind::Ollama => {
            let f = vec![
                format!(
                    "{}\n",
                    json!({"model": model, "message": {"role": "assistant", "content": "Hello "}, "done": false})
                ),
                format!(
                    "{}\n",
                    json!({"model": model, "message": {"role": "assistant", "content": text.trim_start_matches("Hello ")}, "done": false})
                ),
                format!(
                    "{}\n",
                    json!({"model": model, "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 5})
                ),
            ];
            (f, 0)
        }
        Kind::AnythingLlm => {
            let c = |t: &str, close: bool| {
                sse(
                    None,
                    &json!({"uuid": "u1", "type": "textResponseChunk", "textResponse": t, "sources": [], "close": close, "error": false}),
                )
            };
            (
                vec![
                    c("Hello ", false),
                    c(text.trim_start_matches("Hello "), false),
                    c("", true),
                ],
                0,
            )
        }
    }
}

fn answer(kind: Kind, model: &str, tool: bool) -> Value {
    let text = format!("Hello from {}", name(kind));
    match kind {
        Kind::Anthropic => {
            let content = if tool {
                json!([{"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {"city": "Paris"}}])
            } else {
                json!([{"type": "text", "text": text}])
            };
            json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 5}})
        }
        Kind::OpenAi => {
            let message = if tool {
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]})
            } else {
                json!({"role": "assistant", "content": text})
            };
            json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": if tool { "tool_calls" } else { "stop" }}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
        }
        Kind::Gemini => {
            let part = if tool {
                json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
            } else {
                json!({"text": text})
            };
            json!({"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}, "modelVersion": model})
        }
        Kind::Ollama => {
            let mut message =
                json!({"role": "assistant", "content": if tool { "" } else { text.as_str() }});
            if tool {
                message["tool_calls"] =
                    json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]);
            }
            json!({"model": model, "created_at": "2026-01-01T00:00:00Z", "message": message, "done": true, "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 5})
        }
        Kind::AnythingLlm => {
            json!({"id": "a1", "type": "textResponse", "textResponse": text, "sources": [], "close": true, "error": null})
        }
    }
}

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 10 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    s.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
        body: body.clone(),
    });
    let act = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.default.lock().unwrap().clone());
    let stream = match s.kind {
        Kind::Gemini => path.contains(":streamGenerateContent"),
        Kind::AnythingLlm => path.ends_with("/stream-chat"),
        _ => body["stream"].as_bool().unwrap_or(false),
    };
    let model = body["model"].as_str().unwrap_or("mock-model").to_owned();
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match act {
        Act::Status(code, retry) => {
            let mut r = json_response(code, error_body(s.kind, code));
            if let Some(ra) = retry {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Act::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            json_response(500, json!({}))
        }
        Act::MalformedFirst if !stream => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from("{\"id\": \"x\", \"content\": [tru"))
            .unwrap(),
        Act::Ok
        | Act::ToolCall
        | Act::Truncate
        | Act::MalformedMid
        | Act::Slow(_)
        | Act::LineEnds(_)
        | Act::MalformedFirst
            if !stream =>
        {
            json_response(200, answer(s.kind, &model, matches!(act, Act::ToolCall)))
        }
        act => {
            let (mut f, first) =
                frames(s.kind, &model, matches!(act, Act::ToolCall), include_usage);
            let delay = if let Act::Slow(ms) = act { ms } else { 0 };
            let garbage = if s.kind == Kind::Ollama {
                "{\"message\": {\"content\": tru\n".to_string()
            } else {
                "data: {\"type\": \"content_block_delta\", tru\n\n".to_string()
            };
            match act {
                Act::Truncate => f.truncate(first + 1),
                Act::MalformedMid => {
                    f.truncate(first + 1);
                    f.push(garbage);
                }
                Act::MalformedFirst => f = vec![garbage],
                _ => {}
            }
            let chunks: Vec<Vec<u8>> = match act {
                Act::LineEnds(end) => format!("\u{feff}{}", f.concat().replace('\n', end))
                    .as_bytes()
                    .chunks(3)
                    .map(<[u8]>::to_vec)
                    .collect(),
                _ => f.into_iter().map(String::into_bytes).collect(),
            };
            stream_response(s.kind, chunks, delay)
        }
    }
}
