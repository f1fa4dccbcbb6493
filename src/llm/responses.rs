//! The OpenAI Responses API (`POST /v1/responses`, what Codex speaks) in front of the gateway:
//! a Responses request is translated into an Anthropic Messages request, served by the gateway
//! like any `/v1/messages` call (failover, breakers, budgets, the cost ledger), and the answer
//! is translated back: a `response` object, or the Responses SSE sequence (`response.created`,
//! `response.output_item.added`, `response.content_part.added`, `response.output_text.delta`,
//! `…text.done`, `…content_part.done`, `response.function_call_arguments.delta` / `.done`,
//! `response.output_item.done`, `response.completed`; `response.failed` when the provider's
//! stream breaks).
//!
//! Translated: message items (system / developer become the system prompt), `function_call`
//! and `function_call_output` items (tool use and tool results), function tools,
//! `instructions`, `max_output_tokens`, `temperature`, `top_p`, and a `text.format` JSON
//! schema (as an instruction). Dropped: reasoning items, non-function tools (web search, ...),
//! images, `store` / `previous_response_id` (the gateway keeps no conversation state).

use super::stream::Part;
use super::StopReason;
use serde_json::{json, Map, Value};

/// `max_tokens` when the client gives no `max_output_tokens` (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 32_000;

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p["text"].as_str(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Appends blocks to the last message when it has the same role (Anthropic wants turns to
/// alternate, and tool results right after their tool use).
fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut() {
        if last["role"] == role {
            if let Some(c) = last["content"].as_array_mut() {
                c.extend(blocks);
                return;
            }
        }
    }
    messages.push(json!({"role": role, "content": blocks}));
}

/// The Anthropic Messages request for a Responses request.
pub fn to_anthropic(req: &Value) -> Result<Value, String> {
    if !req.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() && m.len() <= 200 => m.clone(),
        _ => return Err("model: required, a non-empty string".into()),
    };
    let mut system: Vec<String> = Vec::new();
    if let Some(i) = req["instructions"].as_str().filter(|s| !s.is_empty()) {
        system.push(i.to_owned());
    }
    let mut messages: Vec<Value> = Vec::new();
    let items = match &req["input"] {
        Value::String(s) => vec![json!({"type": "message", "role": "user", "content": s})],
        Value::Array(a) => a.clone(),
        Value::Null => return Err("input: required, a string or a list of items".into()),
        _ => return Err("input: must be a string or a list of items".into()),
    };
    for (i, it) in items.iter().enumerate() {
        let kind = it["type"].as_str().unwrap_or("message");
        match kind {
            "message" => {
                let role = it["role"]
                    .as_str()
                    .ok_or_else(|| format!("input.{i}.role: required, a string"))?;
                let text = text_of(&it["content"]);
                match role {
                    "system" | "developer" => system.push(text),
                    "user" | "assistant" => {
                        if !text.is_empty() {
                            push(
                                &mut messages,
                                role,
                                vec![json!({"type": "text", "text": text})],
                            );
                        }
                    }
                    other => return Err(format!("input.{i}.role: '{other}' is not one of system, developer, user, assistant")),
                }
            }
            "function_call" => {
                let args = it["arguments"].as_str().unwrap_or("{}");
                let input: Value =
                    serde_json::from_str(args).unwrap_or_else(|_| json!({"arguments": args}));
                let input = if input.is_object() {
                    input
                } else {
                    json!({ "value": input })
                };
                push(
                    &mut messages,
                    "assistant",
                    vec![json!({"type": "tool_use",
                        "id": it["call_id"].as_str().unwrap_or(""),
                        "name": it["name"].as_str().unwrap_or(""), "input": input})],
                );
            }
            "function_call_output" => {
                let out = match &it["output"] {
                    Value::String(s) => s.clone(),
                    v => text_of(v),
                };
                push(
                    &mut messages,
                    "user",
                    vec![json!({"type": "tool_result",
                        "tool_use_id": it["call_id"].as_str().unwrap_or(""), "content": out})],
                );
            }
            // Reasoning summaries, web search calls, images...: nothing a provider needs.
            _ => {}
        }
    }
    if messages.is_empty() {
        return Err("input: must hold at least one user message".into());
    }
    if messages[0]["role"] != "user" {
        messages.insert(
            0,
            json!({"role": "user", "content": [{"type": "text", "text": "(continue)"}]}),
        );
    }
    let fmt = &req["text"]["format"];
    if fmt["type"] == "json_schema" {
        system.push(format!(
            "Answer with a single JSON value, and nothing else, that matches this JSON schema: {}",
            fmt["schema"]
        ));
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert(
        "max_tokens".into(),
        json!(req["max_output_tokens"]
            .as_u64()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    let tools: Vec<Value> = req["tools"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| t["type"] == "function" && t["name"].is_string())
                .map(|t| {
                    let schema = if t["parameters"].is_object() {
                        t["parameters"].clone()
                    } else {
                        json!({"type": "object", "properties": {}})
                    };
                    json!({"name": t["name"], "description": t["description"].as_str().unwrap_or(""),
                           "input_schema": schema})
                })
                .collect()
        })
        .unwrap_or_default();
    if !tools.is_empty() && req["tool_choice"] != "none" {
        out.insert("tools".into(), Value::Array(tools));
        if req["tool_choice"] == "required" {
            out.insert("tool_choice".into(), json!({"type": "any"}));
        }
    }
    for k in ["temperature", "top_p"] {
        if req[k].is_number() {
            out.insert(k.into(), req[k].clone());
        }
    }
    out.insert(
        "stream".into(),
        json!(req["stream"].as_bool().unwrap_or(false)),
    );
    Ok(Value::Object(out))
}

fn usage_json(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": input + output})
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The Responses `response` object for an Anthropic message (a non-streaming answer).
pub fn from_anthropic_message(msg: &Value, model: &str, created: i64) -> Value {
    let mut output = Vec::new();
    let mut text = String::new();
    for b in msg["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => output.push(json!({"type": "function_call", "id": new_id("fc"),
                "call_id": b["id"], "name": b["name"],
                "arguments": b["input"].to_string(), "status": "completed"})),
            _ => {}
        }
    }
    if !text.is_empty() {
        output.insert(
            0,
            json!({"type": "message", "id": new_id("msg"), "role": "assistant",
                   "status": "completed",
                   "content": [{"type": "output_text", "text": text, "annotations": []}]}),
        );
    }
    let u = &msg["usage"];
    let status = if msg["stop_reason"] == "max_tokens" {
        "incomplete"
    } else {
        "completed"
    };
    json!({"id": new_id("resp"), "object": "response", "created_at": created,
           "model": msg["model"].as_str().unwrap_or(model), "status": status, "output": output,
           "usage": usage_json(u["input_tokens"].as_u64().unwrap_or(0),
                               u["output_tokens"].as_u64().unwrap_or(0))})
}

/// The item being streamed.
enum Open {
    None,
    Message {
        index: usize,
        id: String,
        text: String,
    },
    Call {
        index: usize,
        item: Value,
        args: String,
    },
}

/// Writes `Part`s as the Responses SSE sequence.
pub struct ResponsesEncoder {
    base: Value,
    seq: u64,
    started: bool,
    open: Open,
    items: Vec<Value>,
    stop: Option<StopReason>,
    input: u64,
    output: u64,
}

impl ResponsesEncoder {
    pub fn new(model: &str, created: i64) -> Self {
        ResponsesEncoder {
            base: json!({"id": new_id("resp"), "object": "response", "created_at": created,
                         "model": model, "status": "in_progress", "output": []}),
            seq: 0,
            started: false,
            open: Open::None,
            items: Vec::new(),
            stop: None,
            input: 0,
            output: 0,
        }
    }

    fn event(&mut self, out: &mut String, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push_str(&format!("event: {kind}\ndata: {body}\n\n"));
    }

    fn ensure_started(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            let r = self.base.clone();
            self.event(out, "response.created", json!({ "response": r }));
            let r = self.base.clone();
            self.event(out, "response.in_progress", json!({ "response": r }));
        }
    }

    fn close(&mut self, out: &mut String) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message { index, id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.event(
                    out,
                    "response.output_text.done",
                    json!({"output_index": index,
                    "item_id": id, "content_index": 0, "text": text}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"output_index": index,
                    "item_id": id, "content_index": 0, "part": part}),
                );
                let item = json!({"type": "message", "id": id, "role": "assistant",
                    "status": "completed", "content": [part]});
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.items.push(item);
            }
            Open::Call {
                index,
                mut item,
                args,
            } => {
                self.event(
                    out,
                    "response.function_call_arguments.done",
                    json!({
                    "output_index": index, "item_id": item["id"], "arguments": args}),
                );
                item["arguments"] = json!(args);
                item["status"] = json!("completed");
                self.event(
                    out,
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                );
                self.items.push(item);
            }
        }
    }

    /// The SSE text for one part (possibly empty).
    pub fn encode(&mut self, part: &Part) -> String {
        let mut out = String::new();
        match part {
            Part::Start { .. } => self.ensure_started(&mut out),
            Part::Opaque => {}
            Part::Usage { input, output } => {
                if let Some(i) = input.filter(|i| *i > 0) {
                    self.input = i;
                }
                if let Some(o) = output.filter(|o| *o > 0) {
                    self.output = o;
                }
            }
            Part::Text(t) => {
                self.ensure_started(&mut out);
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(&mut out);
                    let index = self.items.len();
                    let id = new_id("msg");
                    self.event(
                        &mut out,
                        "response.output_item.added",
                        json!({"output_index": index,
                        "item": {"type": "message", "id": id, "role": "assistant",
                                 "status": "in_progress", "content": []}}),
                    );
                    self.event(
                        &mut out,
                        "response.content_part.added",
                        json!({"output_index": index,
                        "item_id": id, "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []}}),
                    );
                    self.open = Open::Message {
                        index,
                        id,
                        text: String::new(),
                    };
                }
                if let Open::Message { index, id, text } = &mut self.open {
                    text.push_str(t);
                    let body = json!({"output_index": *index, "item_id": id.clone(),
                        "content_index": 0, "delta": t});
                    self.event(&mut out, "response.output_text.delta", body);
                }
            }
            Part::ToolStart { id, name, .. } => {
                self.ensure_started(&mut out);
                self.close(&mut out);
                let index = self.items.len();
                let call_id = if id.is_empty() {
                    new_id("call")
                } else {
                    id.clone()
                };
                let item = json!({"type": "function_call", "id": new_id("fc"), "call_id": call_id,
                    "name": name, "arguments": "", "status": "in_progress"});
                self.event(
                    &mut out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                self.open = Open::Call {
                    index,
                    item,
                    args: String::new(),
                };
            }
            Part::ToolArgs { json, .. } => {
                if let Open::Call { index, item, args } = &mut self.open {
                    args.push_str(json);
                    let body = serde_json::json!({"output_index": *index, "item_id": item["id"].clone(),
                        "delta": json});
                    self.event(&mut out, "response.function_call_arguments.delta", body);
                }
            }
            Part::Stop(r) => self.stop = Some(*r),
            Part::Done => {
                self.ensure_started(&mut out);
                self.close(&mut out);
                let mut r = self.base.clone();
                r["status"] = json!(if self.stop == Some(StopReason::MaxTokens) {
                    "incomplete"
                } else {
                    "completed"
                });
                r["output"] = Value::Array(self.items.clone());
                r["usage"] = usage_json(self.input, self.output);
                self.event(&mut out, "response.completed", json!({ "response": r }));
            }
        }
        out
    }

    /// A `response.failed` event (the stream ends after it).
    pub fn failed(&mut self, message: &str) -> String {
        let mut out = String::new();
        self.ensure_started(&mut out);
        let mut r = self.base.clone();
        r["status"] = json!("failed");
        r["output"] = Value::Array(self.items.clone());
        r["error"] = json!({"code": "server_error", "message": message});
        self.event(&mut out, "response.failed", json!({ "response": r }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codex_turn_becomes_an_anthropic_request() {
        let req = json!({"model": "gpt-5-codex", "stream": true, "instructions": "Be Codex.",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "RUNBASH"}]},
                {"type": "reasoning", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
                {"type": "message", "role": "user", "content": "thanks"}],
            "tools": [{"type": "function", "name": "exec_command", "description": "run",
                       "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
                      {"type": "web_search"}]});
        let a = to_anthropic(&req).unwrap();
        assert_eq!(a["system"], "Be Codex.\n\nsandbox");
        assert_eq!(a["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(a["stream"], true);
        let m = a["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "{a}");
        assert_eq!(m[1]["content"][0]["type"], "tool_use");
        assert_eq!(m[1]["content"][0]["input"]["cmd"], "ls");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "c1");
        assert_eq!(m[2]["content"][1]["text"], "thanks");
        assert_eq!(a["tools"].as_array().unwrap().len(), 1);
        assert!(to_anthropic(&json!({"model": "m"})).is_err());
        assert!(to_anthropic(&json!({"model": "m", "input": "hi"})).is_ok());
    }

    #[test]
    fn parts_become_the_responses_event_sequence() {
        let mut e = ResponsesEncoder::new("m", 0);
        let mut out = String::new();
        for p in [
            Part::Start {
                id: None,
                model: None,
            },
            Part::Text("Hel".into()),
            Part::Text("lo".into()),
            Part::ToolStart {
                slot: 0,
                id: "t1".into(),
                name: "exec_command".into(),
            },
            Part::ToolArgs {
                slot: 0,
                json: "{}".into(),
            },
            Part::Usage {
                input: Some(7),
                output: Some(3),
            },
            Part::Done,
        ] {
            out.push_str(&e.encode(&p));
        }
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let last = out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["response"]["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(v["response"]["output"][1]["call_id"], "t1");
        assert_eq!(v["response"]["usage"]["total_tokens"], 10);
    }
}
