//! Streams: providers' event streams (Anthropic SSE, OpenAI SSE, Gemini SSE, Ollama NDJSON,
//! AnythingLLM SSE) decoded into [`Part`]s, and `Part`s encoded as Anthropic or OpenAI SSE for
//! the client.
//!
//! A decoder reports [`Part::Done`] only when the provider ended the stream properly
//! (`message_stop`, `[DONE]`, `done: true`, a finish reason, `close: true`); a body that ends
//! without it was truncated, which the gateway turns into an error event.

use super::{StopReason, Usage};
use serde_json::{json, Value};
use std::collections::HashMap;

/// One step of an answer, whatever the provider's format.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Start {
        id: Option<String>,
        model: Option<String>,
    },
    Text(String),
    /// A tool call begins; `slot` is the provider's own index for it.
    ToolStart {
        slot: usize,
        id: String,
        name: String,
    },
    /// A fragment of the tool call's JSON arguments.
    ToolArgs {
        slot: usize,
        json: String,
    },
    Stop(StopReason),
    /// Content the gateway does not translate (Anthropic thinking blocks, server tools): it
    /// counts as the stream's first content, and passes through to Anthropic clients only.
    Opaque,
    /// Usage so far; later reports replace earlier non-zero fields.
    Usage {
        input: Option<u64>,
        output: Option<u64>,
    },
    Done,
}

/// A stream the provider broke: an error event, malformed JSON, an upstream error object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StreamFault(pub String);

// ---- framing ----

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Splits a byte stream into SSE events (blank-line separated; `data:` lines joined) or, in
/// NDJSON mode, into lines. Bytes are buffered until a frame is complete.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    ndjson: bool,
}

impl Framer {
    pub fn sse() -> Self {
        Framer::default()
    }

    pub fn ndjson() -> Self {
        Framer {
            buf: Vec::new(),
            ndjson: true,
        }
    }

    /// Feeds bytes; returns every complete frame.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        if self.ndjson {
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line).trim().to_owned();
                if !s.is_empty() {
                    out.push(SseEvent {
                        event: None,
                        data: s,
                    });
                }
            }
            return out;
        }
        loop {
            let text = &self.buf;
            let end = find_blank_line(text);
            let Some((at, sep)) = end else { break };
            let frame: Vec<u8> = self.buf.drain(..at + sep).collect();
            let frame = String::from_utf8_lossy(&frame[..at]).into_owned();
            let mut event = None;
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            if event.is_some() || !data.is_empty() {
                out.push(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        out
    }

    /// What is left at the end of the body (an NDJSON last line without a newline).
    pub fn finish(&mut self) -> Vec<SseEvent> {
        if self.ndjson {
            self.buf.push(b'\n');
            return self.push(&[]);
        }
        self.buf.extend_from_slice(b"\n\n");
        self.push(&[])
    }
}

fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

fn parse(data: &str) -> Result<Value, StreamFault> {
    serde_json::from_str(data)
        .map_err(|e| StreamFault(format!("malformed JSON in the provider's stream: {e}")))
}

// ---- decoders ----

/// Which provider format a decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Anthropic,
    OpenAi,
    Gemini,
    Ollama,
    AnythingLlm,
}

/// Turns one provider's frames into `Part`s.
#[derive(Debug)]
pub struct Decoder {
    dialect: Dialect,
    started: bool,
    /// Anthropic block index → kind (text or tool slot) of open blocks.
    tool_blocks: HashMap<usize, usize>,
    next_tool: usize,
    saw_tool: bool,
    stop_seen: bool,
}

impl Decoder {
    pub fn new(dialect: Dialect) -> Self {
        Decoder {
            dialect,
            started: false,
            tool_blocks: HashMap::new(),
            next_tool: 0,
            saw_tool: false,
            stop_seen: false,
        }
    }

    pub fn framer(&self) -> Framer {
        if self.dialect == Dialect::Ollama {
            Framer::ndjson()
        } else {
            Framer::sse()
        }
    }

    /// Decodes one frame.
    pub fn decode(&mut self, ev: &SseEvent) -> Result<Vec<Part>, StreamFault> {
        let mut out = Vec::new();
        if !self.started && self.dialect != Dialect::Anthropic {
            // Anthropic's own message_start carries the id and model.
            self.started = true;
            out.push(Part::Start {
                id: None,
                model: None,
            });
        }
        match self.dialect {
            Dialect::Anthropic => self.anthropic(ev, &mut out)?,
            Dialect::OpenAi => self.openai(ev, &mut out)?,
            Dialect::Gemini => self.gemini(ev, &mut out)?,
            Dialect::Ollama => self.ollama(ev, &mut out)?,
            Dialect::AnythingLlm => self.anythingllm(ev, &mut out)?,
        }
        Ok(out)
    }

    /// The body ended: Gemini has no end marker other than a finish reason seen before.
    pub fn end(&mut self) -> Vec<Part> {
        if self.dialect == Dialect::Gemini && self.stop_seen {
            vec![Part::Done]
        } else {
            Vec::new()
        }
    }

    fn anthropic(&mut self, ev: &SseEvent, out: &mut Vec<Part>) -> Result<(), StreamFault> {
        if ev.data.is_empty() {
            return Ok(());
        }
        let v = parse(&ev.data)?;
        match v["type"].as_str().unwrap_or("") {
            "message_start" => {
                self.started = true;
                let m = &v["message"];
                out.push(Part::Start {
                    id: m["id"].as_str().map(str::to_owned),
                    model: m["model"].as_str().map(str::to_owned),
                });
                if let Some(u) = Usage::from_anthropic(&m["usage"]) {
                    out.push(Part::Usage {
                        input: Some(u.input_tokens),
                        output: Some(u.output_tokens),
                    });
                }
            }
            "content_block_start" => {
                let idx = v["index"].as_u64().unwrap_or(0) as usize;
                let b = &v["content_block"];
                match b["type"].as_str() {
                    Some("tool_use") => {
                        let slot = self.next_tool;
                        self.next_tool += 1;
                        self.tool_blocks.insert(idx, slot);
                        out.push(Part::ToolStart {
                            slot,
                            id: b["id"].as_str().unwrap_or("").to_owned(),
                            name: b["name"].as_str().unwrap_or("").to_owned(),
                        });
                    }
                    Some("text") => {
                        if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push(Part::Text(t.to_owned()));
                        }
                    }
                    _ => out.push(Part::Opaque),
                }
            }
            "content_block_delta" => {
                let idx = v["index"].as_u64().unwrap_or(0) as usize;
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        out.push(Part::Text(d["text"].as_str().unwrap_or("").to_owned()))
                    }
                    Some("input_json_delta") => {
                        if let Some(&slot) = self.tool_blocks.get(&idx) {
                            out.push(Part::ToolArgs {
                                slot,
                                json: d["partial_json"].as_str().unwrap_or("").to_owned(),
                            });
                        }
                    }
                    _ => out.push(Part::Opaque),
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(Part::Stop(StopReason::from_anthropic(r)));
                }
                let u = &v["usage"];
                if u.is_object() {
                    out.push(Part::Usage {
                        input: u["input_tokens"].as_u64(),
                        output: u["output_tokens"].as_u64(),
                    });
                }
            }
            "message_stop" => out.push(Part::Done),
            "error" => {
                return Err(StreamFault(format!(
                    "provider stream error: {}",
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                )))
            }
            _ => {}
        }
        Ok(())
    }

    fn openai(&mut self, ev: &SseEvent, out: &mut Vec<Part>) -> Result<(), StreamFault> {
        if ev.data.trim() == "[DONE]" {
            out.push(Part::Done);
            return Ok(());
        }
        if ev.data.is_empty() {
            return Ok(());
        }
        let v = parse(&ev.data)?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(StreamFault(format!(
                "provider stream error: {}",
                e["message"].as_str().unwrap_or("unknown")
            )));
        }
        if let Some(Part::Start { id, model }) = out.first_mut() {
            *id = v["id"].as_str().map(str::to_owned);
            *model = v["model"].as_str().map(str::to_owned);
        }
        if let Some(choice) = v.pointer("/choices/0") {
            let d = &choice["delta"];
            if let Some(t) = d["content"].as_str().filter(|t| !t.is_empty()) {
                out.push(Part::Text(t.to_owned()));
            }
            for c in d["tool_calls"].as_array().into_iter().flatten() {
                let slot = c["index"].as_u64().unwrap_or(0) as usize;
                if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                    out.push(Part::ToolStart {
                        slot,
                        id: c["id"].as_str().unwrap_or("").to_owned(),
                        name: name.to_owned(),
                    });
                }
                if let Some(a) = c
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    out.push(Part::ToolArgs {
                        slot,
                        json: a.to_owned(),
                    });
                }
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                out.push(Part::Stop(StopReason::from_openai(r)));
            }
        }
        if let Some(u) = Usage::from_openai(&v["usage"]) {
            out.push(Part::Usage {
                input: Some(u.input_tokens),
                output: Some(u.output_tokens),
            });
        }
        Ok(())
    }

    fn gemini(&mut self, ev: &SseEvent, out: &mut Vec<Part>) -> Result<(), StreamFault> {
        if ev.data.is_empty() {
            return Ok(());
        }
        let v = parse(&ev.data)?;
        if let Some(e) = v.get("error") {
            return Err(StreamFault(format!(
                "provider stream error: {}",
                e["message"].as_str().unwrap_or("unknown")
            )));
        }
        for p in v
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = p["text"].as_str() {
                out.push(Part::Text(t.to_owned()));
            } else if let Some(f) = p.get("functionCall") {
                let slot = self.next_tool;
                self.next_tool += 1;
                self.saw_tool = true;
                out.push(Part::ToolStart {
                    slot,
                    id: format!("toolu_{}", uuid::Uuid::new_v4().simple()),
                    name: f["name"].as_str().unwrap_or("").to_owned(),
                });
                out.push(Part::ToolArgs {
                    slot,
                    json: f["args"].to_string(),
                });
            }
        }
        if let Some(r) = v
            .pointer("/candidates/0/finishReason")
            .and_then(Value::as_str)
        {
            self.stop_seen = true;
            out.push(Part::Stop(if self.saw_tool {
                StopReason::ToolUse
            } else {
                StopReason::from_gemini(r)
            }));
        }
        if let Some(u) = Usage::from_gemini(&v["usageMetadata"]) {
            out.push(Part::Usage {
                input: Some(u.input_tokens),
                output: Some(u.output_tokens),
            });
        }
        Ok(())
    }

    fn ollama(&mut self, ev: &SseEvent, out: &mut Vec<Part>) -> Result<(), StreamFault> {
        let v = parse(&ev.data)?;
        if let Some(e) = v["error"].as_str() {
            return Err(StreamFault(format!("provider stream error: {e}")));
        }
        if let Some(t) = v
            .pointer("/message/content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            out.push(Part::Text(t.to_owned()));
        }
        for c in v
            .pointer("/message/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let slot = self.next_tool;
            self.next_tool += 1;
            self.saw_tool = true;
            out.push(Part::ToolStart {
                slot,
                id: format!("toolu_{}", uuid::Uuid::new_v4().simple()),
                name: c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
            out.push(Part::ToolArgs {
                slot,
                json: c["function"]["arguments"].to_string(),
            });
        }
        if v["done"].as_bool() == Some(true) {
            let r = v["done_reason"].as_str().unwrap_or("stop");
            out.push(Part::Stop(if self.saw_tool {
                StopReason::ToolUse
            } else {
                StopReason::from_ollama(r)
            }));
            if let Some(u) = Usage::from_ollama(&v) {
                out.push(Part::Usage {
                    input: Some(u.input_tokens),
                    output: Some(u.output_tokens),
                });
            }
            out.push(Part::Done);
        }
        Ok(())
    }

    fn anythingllm(&mut self, ev: &SseEvent, out: &mut Vec<Part>) -> Result<(), StreamFault> {
        if ev.data.is_empty() {
            return Ok(());
        }
        let v = parse(&ev.data)?;
        if let Some(e) = v["error"]
            .as_str()
            .filter(|e| !e.is_empty() && *e != "false")
        {
            return Err(StreamFault(format!("provider stream error: {e}")));
        }
        if let Some(t) = v["textResponse"].as_str().filter(|t| !t.is_empty()) {
            out.push(Part::Text(t.to_owned()));
        }
        if v["close"].as_bool() == Some(true) {
            out.push(Part::Stop(StopReason::EndTurn));
            out.push(Part::Done);
        }
        Ok(())
    }
}

// ---- encoders ----

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
                if let Some(i) = input.filter(|i| *i > 0) {
                    self.usage.input_tokens = i;
                }
                if let Some(o) = output.filter(|o| *o > 0) {
                    self.usage.output_tokens = o;
                }
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
            Part::Usage { input, output } => {
                if let Some(i) = input.filter(|i| *i > 0) {
                    self.usage.input_tokens = i;
                }
                if let Some(o) = output.filter(|o| *o > 0) {
                    self.usage.output_tokens = o;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: Dialect, body: &str) -> Result<Vec<Part>, StreamFault> {
        let mut dec = Decoder::new(d);
        let mut f = dec.framer();
        let mut out = Vec::new();
        // Feed in small pieces to exercise buffering across chunk boundaries.
        for chunk in body.as_bytes().chunks(7) {
            for ev in f.push(chunk) {
                out.extend(dec.decode(&ev)?);
            }
        }
        for ev in f.finish() {
            out.extend(dec.decode(&ev)?);
        }
        out.extend(dec.end());
        Ok(out)
    }

    #[test]
    fn openai_stream_with_tool_call_encodes_as_anthropic() {
        let body = concat!(
            "data: {\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\n\n",
            "data: [DONE]\n\n"
        );
        let parts = decode_all(Dialect::OpenAi, body).unwrap();
        assert_eq!(parts.last(), Some(&Part::Done));
        let mut enc = AnthropicEncoder::new("gpt");
        let sse: String = parts.iter().map(|p| enc.encode(p)).collect();
        assert!(sse.starts_with("event: message_start"));
        assert!(sse.contains("\"type\":\"tool_use\""));
        assert!(sse.contains("input_json_delta"));
        assert!(sse.contains("\"stop_reason\":\"tool_use\""));
        assert!(sse.contains("\"output_tokens\":4"));
        assert!(sse
            .trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"));
        assert_eq!(
            enc.usage,
            Usage {
                input_tokens: 9,
                output_tokens: 4
            }
        );
    }

    #[test]
    fn anthropic_stream_encodes_as_openai_chunks() {
        let body = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        let parts = decode_all(Dialect::Anthropic, body).unwrap();
        let mut enc = OpenAiEncoder::new("claude", 0, true);
        let out: String = parts.iter().map(|p| enc.encode(p)).collect();
        assert!(out.contains("\"content\":\"Hello\""));
        assert!(out.contains("\"finish_reason\":\"stop\""));
        assert!(out.contains("\"total_tokens\":7"));
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn thinking_blocks_count_as_content_but_are_not_translated() {
        let body = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n"
        );
        let parts = decode_all(Dialect::Anthropic, body).unwrap();
        assert_eq!(parts.iter().filter(|p| **p == Part::Opaque).count(), 2);
        let mut enc = OpenAiEncoder::new("c", 0, false);
        let out: String = parts.iter().map(|p| enc.encode(p)).collect();
        assert!(
            !out.contains("hm"),
            "thinking is not sent to OpenAI clients"
        );
    }

    #[test]
    fn truncation_and_malformed_json_are_detected() {
        let cut =
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        assert!(!decode_all(Dialect::OpenAi, cut)
            .unwrap()
            .contains(&Part::Done));
        let bad = "data: {\"id\":\"c\",\"choices\":[{\"ind\n\n";
        assert!(decode_all(Dialect::OpenAi, bad).is_err());
        let ollama = "{\"message\":{\"content\":\"a\"},\"done\":false}\n{\"message\":{\"content\":\"b\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":2}";
        let parts = decode_all(Dialect::Ollama, ollama).unwrap();
        assert!(parts.contains(&Part::Usage {
            input: Some(3),
            output: Some(2)
        }));
        assert_eq!(parts.last(), Some(&Part::Done));
        let gem = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":1}}\r\n\r\n";
        assert_eq!(
            decode_all(Dialect::Gemini, gem).unwrap().last(),
            Some(&Part::Done)
        );
        let allm = "data: {\"textResponse\":\"r\",\"close\":false}\n\ndata: {\"textResponse\":\"\",\"close\":true}\n\n";
        assert_eq!(
            decode_all(Dialect::AnythingLlm, allm).unwrap().last(),
            Some(&Part::Done)
        );
    }
}
