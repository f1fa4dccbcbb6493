//! Request translation between wire formats. The gateway's canonical request is an Anthropic
//! Messages body (SPEC.md: "compatible with `anthropic.messages.create()`"); an OpenAI Chat
//! Completions body is turned into one on the way in, and the canonical body is turned into
//! whatever the serving provider speaks: OpenAI Chat Completions, Gemini `generateContent`,
//! Ollama `/api/chat` or AnythingLLM's workspace chat.
//!
//! What maps: system prompt, text, images (base64 and URL where the target has them), tool
//! definitions, tool choice, tool calls and tool results, max tokens, temperature, top_p, stop
//! sequences. What does not: Anthropic thinking blocks and server tools are dropped when the
//! target is not Anthropic; AnythingLLM gets the last user turn as text (it keeps its own
//! history per session and has no tools).

use serde_json::{json, Map, Value};

/// Default `max_tokens` when an OpenAI request names none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The system prompt of an Anthropic request as one string (it may be a string or text blocks).
pub fn anthropic_system(req: &Value) -> Option<String> {
    let s = req.get("system")?;
    let t = text_of(s);
    (!t.is_empty()).then_some(t)
}

fn blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

/// Merges consecutive messages of the same role (Anthropic wants alternating turns; several
/// OpenAI `tool` messages in a row become one user turn of tool results).
fn push_merged(out: &mut Vec<Value>, role: &str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut() {
        if last["role"] == role {
            if let Some(arr) = last["content"].as_array_mut() {
                arr.extend(content);
                return;
            }
        }
    }
    out.push(json!({"role": role, "content": content}));
}

fn openai_image_to_anthropic(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            let media = meta.trim_end_matches(";base64");
            return json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
        }
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

fn openai_user_blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Some(
                    json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()}),
                ),
                Some("image_url") => p
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .map(openai_image_to_anthropic),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// OpenAI Chat Completions request → Anthropic Messages request.
pub fn openai_to_anthropic(req: &Value) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in req["messages"].as_array().into_iter().flatten() {
        match m["role"].as_str().unwrap_or("") {
            "system" | "developer" => system.push(text_of(&m["content"])),
            "assistant" => {
                let mut content = Vec::new();
                let t = text_of(&m["content"]);
                if !t.is_empty() {
                    content.push(json!({"type": "text", "text": t}));
                }
                for call in m["tool_calls"].as_array().into_iter().flatten() {
                    let args = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}");
                    let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                    content.push(json!({
                        "type": "tool_use",
                        "id": call["id"].as_str().unwrap_or(""),
                        "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or(""),
                        "input": if input.is_object() { input } else { json!({}) },
                    }));
                }
                push_merged(&mut messages, "assistant", content);
            }
            "tool" => push_merged(
                &mut messages,
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m["tool_call_id"].as_str().unwrap_or(""),
                    "content": text_of(&m["content"]),
                })],
            ),
            _ => push_merged(&mut messages, "user", openai_user_blocks(&m["content"])),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), req["model"].clone());
    out.insert("messages".into(), Value::Array(messages));
    let max = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max));
    let system: Vec<String> = system.into_iter().filter(|s| !s.is_empty()).collect();
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    for k in ["temperature", "top_p", "stream"] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = req["tools"].as_array() {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                Some(json!({
                    "name": f.get("name")?.clone(),
                    "description": f.get("description").cloned().unwrap_or(json!("")),
                    "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}})),
                }))
            })
            .collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    match req.get("tool_choice") {
        Some(Value::String(s)) => {
            let c = match s.as_str() {
                "none" => json!({"type": "none"}),
                "required" => json!({"type": "any"}),
                _ => json!({"type": "auto"}),
            };
            out.insert("tool_choice".into(), c);
        }
        Some(Value::Object(o)) => {
            if let Some(name) = o.get("function").and_then(|f| f.get("name")) {
                out.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
            }
        }
        _ => {}
    }
    Value::Object(out)
}

fn anthropic_image_url(block: &Value) -> Option<String> {
    let src = block.get("source")?;
    match src["type"].as_str()? {
        "base64" => Some(format!(
            "data:{};base64,{}",
            src["media_type"].as_str().unwrap_or("image/png"),
            src["data"].as_str().unwrap_or("")
        )),
        "url" => src["url"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// Anthropic tools that have an input schema (server tools such as web search have none and
/// cannot be offered to another provider).
fn function_tools(req: &Value) -> Vec<(String, String, Value)> {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let schema = t.get("input_schema")?.clone();
            Some((
                t["name"].as_str()?.to_owned(),
                t["description"].as_str().unwrap_or("").to_owned(),
                schema,
            ))
        })
        .collect()
}

/// Anthropic Messages request → OpenAI Chat Completions request (`model` is the serving model).
pub fn anthropic_to_openai(req: &Value, model: &str, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = anthropic_system(req) {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in req["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("user");
        if let Value::String(s) = &m["content"] {
            messages.push(json!({"role": role, "content": s}));
            continue;
        }
        let bl = blocks(&m["content"]);
        if role == "assistant" {
            let text: Vec<&str> = bl
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            let calls: Vec<Value> = bl
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| {
                    json!({"id": b["id"], "type": "function", "function": {
                        "name": b["name"], "arguments": b["input"].to_string()}})
                })
                .collect();
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text.join("")) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            messages.push(msg);
        } else {
            let mut parts = Vec::new();
            for b in &bl {
                match b["type"].as_str() {
                    Some("tool_result") => messages.push(json!({
                        "role": "tool",
                        "tool_call_id": b["tool_use_id"],
                        "content": text_of(&b["content"]),
                    })),
                    Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
                    Some("image") => {
                        if let Some(url) = anthropic_image_url(b) {
                            parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                        }
                    }
                    _ => {}
                }
            }
            if !parts.is_empty() {
                let all_text = parts.iter().all(|p| p["type"] == "text");
                let content = if all_text {
                    json!(parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"))
                } else {
                    Value::Array(parts)
                };
                messages.push(json!({"role": "user", "content": content}));
            }
        }
    }
    let mut out = json!({"model": model, "messages": messages, "stream": stream});
    if let Some(max) = req["max_tokens"].as_u64() {
        out["max_tokens"] = json!(max);
    }
    for k in ["temperature", "top_p"] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    if let Some(stop) = req["stop_sequences"].as_array() {
        out["stop"] = Value::Array(stop.clone());
    }
    if stream {
        out["stream_options"] = json!({"include_usage": true});
    }
    let tools = function_tools(req);
    if !tools.is_empty() {
        out["tools"] = tools
            .into_iter()
            .map(|(name, description, schema)| {
                json!({"type": "function", "function": {"name": name, "description": description, "parameters": schema}})
            })
            .collect();
        match req.pointer("/tool_choice/type").and_then(Value::as_str) {
            Some("any") => out["tool_choice"] = json!("required"),
            Some("none") => out["tool_choice"] = json!("none"),
            Some("tool") => {
                out["tool_choice"] =
                    json!({"type": "function", "function": {"name": req["tool_choice"]["name"]}})
            }
            _ => {}
        }
    }
    out
}

/// Keeps only the JSON-schema keys Gemini's function declarations accept.
fn gemini_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "$schema"
                            | "additionalProperties"
                            | "$defs"
                            | "definitions"
                            | "default"
                            | "examples"
                    )
                })
                .map(|(k, v)| (k.clone(), gemini_schema(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(gemini_schema).collect()),
        other => other.clone(),
    }
}

/// Anthropic Messages request → Gemini `generateContent` body (the model goes in the URL).
pub fn anthropic_to_gemini(req: &Value) -> Value {
    let mut names = std::collections::HashMap::new();
    let mut contents = Vec::new();
    for m in req["messages"].as_array().into_iter().flatten() {
        let role = if m["role"] == "assistant" {
            "model"
        } else {
            "user"
        };
        let mut parts = Vec::new();
        for b in blocks(&m["content"]) {
            match b["type"].as_str() {
                Some("text") => parts.push(json!({"text": b["text"]})),
                Some("tool_use") => {
                    if let (Some(id), Some(name)) = (b["id"].as_str(), b["name"].as_str()) {
                        names.insert(id.to_owned(), name.to_owned());
                    }
                    parts.push(json!({"functionCall": {"name": b["name"], "args": b["input"]}}));
                }
                Some("tool_result") => {
                    let id = b["tool_use_id"].as_str().unwrap_or("");
                    let name = names.get(id).cloned().unwrap_or_else(|| id.to_owned());
                    parts.push(json!({"functionResponse": {"name": name, "response": {"content": text_of(&b["content"])}}}));
                }
                Some("image") if b.pointer("/source/type") == Some(&json!("base64")) => parts.push(json!({
                    "inlineData": {"mimeType": b["source"]["media_type"], "data": b["source"]["data"]}
                })),
                _ => {}
            }
        }
        if !parts.is_empty() {
            contents.push(json!({"role": role, "parts": parts}));
        }
    }
    let mut out = json!({"contents": contents});
    if let Some(s) = anthropic_system(req) {
        out["systemInstruction"] = json!({"parts": [{"text": s}]});
    }
    let mut gen = Map::new();
    if let Some(max) = req["max_tokens"].as_u64() {
        gen.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(t) = req.get("temperature").filter(|v| v.is_number()) {
        gen.insert("temperature".into(), t.clone());
    }
    if let Some(t) = req.get("top_p").filter(|v| v.is_number()) {
        gen.insert("topP".into(), t.clone());
    }
    if let Some(stop) = req["stop_sequences"].as_array() {
        gen.insert("stopSequences".into(), Value::Array(stop.clone()));
    }
    out["generationConfig"] = Value::Object(gen);
    let tools = function_tools(req);
    if !tools.is_empty() {
        let decls: Vec<Value> = tools
            .into_iter()
            .map(|(name, description, schema)| json!({"name": name, "description": description, "parameters": gemini_schema(&schema)}))
            .collect();
        out["tools"] = json!([{"functionDeclarations": decls}]);
    }
    out
}

/// Anthropic Messages request → Ollama `/api/chat` body.
pub fn anthropic_to_ollama(req: &Value, model: &str, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = anthropic_system(req) {
        messages.push(json!({"role": "system", "content": s}));
    }
    for m in req["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("user");
        let mut text = Vec::new();
        let mut images = Vec::new();
        let mut calls = Vec::new();
        for b in blocks(&m["content"]) {
            match b["type"].as_str() {
                Some("text") => text.push(b["text"].as_str().unwrap_or("").to_owned()),
                Some("image") => {
                    if let Some(d) = b.pointer("/source/data").and_then(Value::as_str) {
                        images.push(json!(d));
                    }
                }
                Some("tool_use") => {
                    calls.push(json!({"function": {"name": b["name"], "arguments": b["input"]}}))
                }
                Some("tool_result") => {
                    messages.push(json!({"role": "tool", "content": text_of(&b["content"])}))
                }
                _ => {}
            }
        }
        if text.is_empty() && images.is_empty() && calls.is_empty() {
            continue;
        }
        let mut msg = json!({"role": role, "content": text.join("\n")});
        if !images.is_empty() {
            msg["images"] = Value::Array(images);
        }
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        messages.push(msg);
    }
    let mut options = Map::new();
    if let Some(max) = req["max_tokens"].as_u64() {
        options.insert("num_predict".into(), json!(max));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            options.insert(to.into(), v.clone());
        }
    }
    let mut out =
        json!({"model": model, "messages": messages, "stream": stream, "options": options});
    let tools = function_tools(req);
    if !tools.is_empty() {
        out["tools"] = tools
            .into_iter()
            .map(|(name, description, schema)| json!({"type": "function", "function": {"name": name, "description": description, "parameters": schema}}))
            .collect();
    }
    out
}

/// Anthropic Messages request → AnythingLLM workspace chat body: the last user turn's text
/// (AnythingLLM keeps the conversation itself, keyed by `sessionId`).
pub fn anthropic_to_anythingllm(req: &Value, session: &str) -> Value {
    let last_user = req["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| {
            blocks(&m["content"])
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    json!({"message": last_user, "mode": "chat", "sessionId": session})
}

/// Rough token count of a request's text when a provider reports none (about 4 characters a
/// token for English; such costs are flagged `estimated`).
pub fn estimate_tokens(text_len: usize) -> u64 {
    u64::try_from(text_len.div_ceil(4)).unwrap_or(u64::MAX)
}

/// Characters of text in an Anthropic request (system, text blocks, tool results).
pub fn anthropic_text_len(req: &Value) -> usize {
    let mut n = anthropic_system(req).map_or(0, |s| s.len());
    for m in req["messages"].as_array().into_iter().flatten() {
        for b in blocks(&m["content"]) {
            n += b["text"].as_str().map_or(0, str::len);
            n += text_of(&b["content"]).len();
            if b["type"] == "tool_use" {
                n += b["input"].to_string().len();
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_tools_and_results_become_anthropic_blocks() {
        let req = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "stop": "END",
        });
        let a = openai_to_anthropic(&req);
        assert_eq!(a["system"], "be brief");
        assert_eq!(a["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(a["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(a["messages"][1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(a["messages"][2]["content"][0]["tool_use_id"], "call_1");
        assert_eq!(a["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(a["tool_choice"]["type"], "any");
        assert_eq!(a["stop_sequences"][0], "END");
    }

    #[test]
    fn anthropic_round_trips_through_openai() {
        let req = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 100, "system": [{"type": "text", "text": "sys"}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}, {"type": "text", "text": "thanks"}]},
            ],
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search"}],
        });
        let o = anthropic_to_openai(&req, "gpt-4o", false);
        assert_eq!(o["messages"][0]["role"], "system");
        assert_eq!(
            o["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(o["messages"][3]["role"], "tool");
        assert_eq!(o["messages"][4]["content"], "thanks");
        assert_eq!(
            o["tools"].as_array().unwrap().len(),
            1,
            "server tools are dropped"
        );
        let back = openai_to_anthropic(&o);
        assert_eq!(back["system"], "sys");
        assert_eq!(back["messages"][1]["content"][1]["input"]["a"], 1);
        assert_eq!(back["messages"][2]["content"][0]["type"], "tool_result");
    }

    #[test]
    fn gemini_and_ollama_bodies() {
        let req = json!({"model": "m", "max_tokens": 7, "system": "s", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object", "additionalProperties": false}}]});
        let g = anthropic_to_gemini(&req);
        assert_eq!(g["systemInstruction"]["parts"][0]["text"], "s");
        assert_eq!(g["generationConfig"]["maxOutputTokens"], 7);
        assert!(g["tools"][0]["functionDeclarations"][0]["parameters"]
            .get("additionalProperties")
            .is_none());
        let o = anthropic_to_ollama(&req, "llama3.2", true);
        assert_eq!(o["messages"][0]["role"], "system");
        assert_eq!(o["options"]["num_predict"], 7);
        assert_eq!(anthropic_to_anythingllm(&req, "x")["message"], "hi");
    }
}
