//! Encoders: [`Part`]s written as the client's event stream, Anthropic Messages SSE
//! (`message_start` … `message_stop`) or OpenAI Chat Completions chunks (`data: {...}` …
//! `data: [DONE]`), each with the error event that ends a broken stream.

use super::Part;
use crate::llm::{StopReason, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

#[derive(Debug, PartialEq)]
enum Open {
    None,
    Text(usize),
    Tool { index: usize, slot: usize },
}

/// Writes `Part`s as Anthropic Messages SSE (`message_start` … `message_stop`).
#[derive(Debug)]
pub struct AnthropicEncoder {
    id: String,
    model: String,
    started: bool,
    open: Open,
    next_index: usize,
    stop: Option<StopReason>,
    pub usage: Usage,
}

impl AnthropicEncoder {
    pub fn new(model: &str) -> Self {
        AnthropicEncoder {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            model: model.to_owned(),
            started: false,
            open: Open::None,
            next_index: 0,
            stop: None,
            usage: Usage::default(),
        }
    }

    fn ensure_started(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            out.push_str(&sse(Some("message_start"), &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": 0}}})));
        }
    }

    fn close(&mut self, out: &mut String) {
        let idx = match self.open {
            Open::None => return,
            Open::Text(i) | Open::Tool { index: i, .. } => i,
        };
        out.push_str(&sse(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": idx}),
        ));
        self.open = Open::None;
    }

    /// The SSE text for one part (possibly empty).
    pub fn encode(&mut self, part: &Part) -> String {
        let mut out = String::new();
        match part {
            Part::Start { .. } | Part::Opaque => {}
            Part::Usage { input, output } => {
                self.usage.absorb(*input, *output);
                return out;
            }
            Part::Text(t) => {
                self.ensure_started(&mut out);
                if !matches!(self.open, Open::Text(_)) {
                    self.close(&mut out);
                    let i = self.next_index;
                    self.next_index += 1;
                    self.open = Open::Text(i);
                    out.push_str(&sse(Some("content_block_start"), &json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})));
                }
                if let Open::Text(i) = self.open {
                    out.push_str(&sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}})));
                }
            }
            Part::ToolStart { slot, id, name } => {
                self.ensure_started(&mut out);
                self.close(&mut out);
                let i = self.next_index;
                self.next_index += 1;
                self.open = Open::Tool {
                    index: i,
                    slot: *slot,
                };
                let id = if id.is_empty() {
                    format!("toolu_{}", uuid::Uuid::new_v4().simple())
                } else {
                    id.clone()
                };
                out.push_str(&sse(Some("content_block_start"), &json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
            }
            Part::ToolArgs { slot, json } => {
                if let Open::Tool { index, slot: s } = self.open {
                    if s == *slot {
                        out.push_str(&sse(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json}})));
                    }
                }
            }
            Part::Stop(r) => self.stop = Some(*r),
            Part::Done => {
                self.ensure_started(&mut out);
                self.close(&mut out);
                out.push_str(&sse(Some("message_delta"), &json!({"type": "message_delta",
                    "delta": {"stop_reason": self.stop.unwrap_or(StopReason::EndTurn).anthropic(), "stop_sequence": null},
                    "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}})));
                out.push_str(&sse(Some("message_stop"), &json!({"type": "message_stop"})));
            }
        }
        out
    }

    /// An Anthropic `error` event (the stream ends after it).
    pub fn error(message: &str) -> String {
        sse(
            Some("error"),
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        )
    }
}

/// Writes `Part`s as OpenAI Chat Completions chunks (`data: {...}` … `data: [DONE]`).
#[derive(Debug)]
pub struct OpenAiEncoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    slots: HashMap<usize, usize>,
    stop: Option<StopReason>,
    pub usage: Usage,
}

impl OpenAiEncoder {
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        OpenAiEncoder {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            model: model.to_owned(),
            created,
            include_usage,
            started: false,
            slots: HashMap::new(),
            stop: None,
            usage: Usage::default(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        sse(
            None,
            &json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]}),
        )
    }

    fn ensure_started(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    pub fn encode(&mut self, part: &Part) -> String {
        let mut out = String::new();
        match part {
            Part::Start { .. } | Part::Opaque => {}
            Part::Usage { input, output } => self.usage.absorb(*input, *output),
            Part::Text(t) => {
                self.ensure_started(&mut out);
                out.push_str(&self.chunk(json!({"content": t}), None));
            }
            Part::ToolStart { slot, id, name } => {
                self.ensure_started(&mut out);
                let n = self.slots.len();
                let i = *self.slots.entry(*slot).or_insert(n);
                let id = if id.is_empty() {
                    format!("call_{}", uuid::Uuid::new_v4().simple())
                } else {
                    id.clone()
                };
                out.push_str(&self.chunk(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}), None));
            }
            Part::ToolArgs { slot, json } => {
                if let Some(&i) = self.slots.get(slot) {
                    out.push_str(&self.chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": json}}]}),
                        None,
                    ));
                }
            }
            Part::Stop(r) => self.stop = Some(*r),
            Part::Done => {
                self.ensure_started(&mut out);
                out.push_str(&self.chunk(
                    json!({}),
                    Some(self.stop.unwrap_or(StopReason::EndTurn).openai()),
                ));
                if self.include_usage {
                    let u = self.usage;
                    out.push_str(&sse(None, &json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model, "choices": [],
                        "usage": {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.input_tokens + u.output_tokens}})));
                }
                out.push_str("data: [DONE]\n\n");
            }
        }
        out
    }

    /// An error chunk (the OpenAI SDKs raise on a chunk holding `error`); the stream ends after it.
    pub fn error(message: &str) -> String {
        sse(
            None,
            &json!({"error": {"message": message, "type": "server_error", "code": "upstream_stream_failed"}}),
        )
    }
}
