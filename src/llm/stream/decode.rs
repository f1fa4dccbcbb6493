//! Decoders: one provider's frames (see [`super::frame`]) turned into [`Part`]s, one per
//! [`Dialect`]. A decoder reports [`Part::Done`] only when the provider ended the stream properly
//! (`message_stop`, `[DONE]`, `done: true`, a finish reason, `close: true`).

use super::frame::{Framer, SseEvent};
use super::{Part, StreamFault};
use crate::llm::{StopReason, Usage};
use serde_json::Value;
use std::collections::HashMap;

/// A usage report the provider made in full.
fn reported(u: Usage) -> Part {
    Part::Usage {
        input: Some(u.input_tokens),
        output: Some(u.output_tokens),
    }
}

fn parse(data: &str) -> Result<Value, StreamFault> {
    serde_json::from_str(data)
        .map_err(|e| StreamFault(format!("malformed JSON in the provider's stream: {e}")))
}

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

    /// A tool call that arrives whole (Gemini, Ollama): numbered by us, with an id of ours.
    fn whole_tool_call(&mut self, name: Option<&str>, args: String, out: &mut Vec<Part>) {
        let slot = self.next_tool;
        self.next_tool += 1;
        self.saw_tool = true;
        out.push(Part::ToolStart {
            slot,
            id: format!("toolu_{}", uuid::Uuid::new_v4().simple()),
            name: name.unwrap_or("").to_owned(),
        });
        out.push(Part::ToolArgs { slot, json: args });
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
                    out.push(reported(u));
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
            out.push(reported(u));
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
                self.whole_tool_call(f["name"].as_str(), f["args"].to_string(), out);
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
            out.push(reported(u));
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
            let name = c.pointer("/function/name").and_then(Value::as_str);
            self.whole_tool_call(name, c["function"]["arguments"].to_string(), out);
        }
        if v["done"].as_bool() == Some(true) {
            let r = v["done_reason"].as_str().unwrap_or("stop");
            out.push(Part::Stop(if self.saw_tool {
                StopReason::ToolUse
            } else {
                StopReason::from_ollama(r)
            }));
            if let Some(u) = Usage::from_ollama(&v) {
                out.push(reported(u));
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
