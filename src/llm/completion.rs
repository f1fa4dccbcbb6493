//! Non-streaming answers: every provider's response body parsed into one [`Completion`], and a
//! `Completion` written back as an Anthropic message or an OpenAI chat completion.

use super::{StopReason, Usage};
use serde_json::{json, Value};

/// One content block of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// A provider's answer in the gateway's own terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub id: String,
    pub model: String,
    pub content: Vec<Block>,
    pub stop_reason: Option<StopReason>,
    /// None when the provider reported no usage (the cost is then estimated).
    pub usage: Option<Usage>,
}

/// Why a provider's body could not be understood.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unexpected response body from the provider: {0}")]
pub struct BadBody(pub String);

/// The JSON of a model's answer asked to be one JSON object: the text itself, or the one
/// fenced block it is wrapped in.
pub fn answer_json(text: &str) -> &str {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let rest = rest.strip_prefix("json").unwrap_or(rest);
        if let Some(body) = rest.trim_end().strip_suffix("```") {
            return body.trim();
        }
    }
    t
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn tool_input(args: &Value) -> Value {
    match args {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| json!({})),
        Value::Object(_) => args.clone(),
        _ => json!({}),
    }
}

impl Completion {
    /// The provider's id when it already has the client format's prefix, else a new one.
    fn id_or_new(&self, prefix: &str) -> String {
        if self.id.starts_with(prefix) {
            self.id.clone()
        } else {
            new_id(prefix)
        }
    }

    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.as_str()),
                Block::ToolUse { .. } => None,
            })
            .collect()
    }

    pub fn from_anthropic(v: &Value) -> Result<Completion, BadBody> {
        let content = v["content"]
            .as_array()
            .ok_or_else(|| BadBody("no 'content' array".into()))?
            .iter()
            .filter_map(|b| match b["type"].as_str()? {
                "text" => Some(Block::Text(b["text"].as_str()?.to_owned())),
                "tool_use" => Some(Block::ToolUse {
                    id: b["id"].as_str()?.to_owned(),
                    name: b["name"].as_str()?.to_owned(),
                    input: b["input"].clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(Completion {
            id: v["id"]
                .as_str()
                .map_or_else(|| new_id("msg_"), str::to_owned),
            model: v["model"].as_str().unwrap_or("").to_owned(),
            content,
            stop_reason: v["stop_reason"].as_str().map(StopReason::from_anthropic),
            usage: Usage::from_anthropic(&v["usage"]),
        })
    }

    pub fn from_openai(v: &Value) -> Result<Completion, BadBody> {
        let choice = v
            .pointer("/choices/0")
            .ok_or_else(|| BadBody("no 'choices'".into()))?;
        let msg = &choice["message"];
        let mut content = Vec::new();
        if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
            content.push(Block::Text(t.to_owned()));
        }
        for c in msg["tool_calls"].as_array().into_iter().flatten() {
            content.push(Block::ToolUse {
                id: c["id"]
                    .as_str()
                    .map_or_else(|| new_id("call_"), str::to_owned),
                name: c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                input: tool_input(&c["function"]["arguments"]),
            });
        }
        Ok(Completion {
            id: v["id"]
                .as_str()
                .map_or_else(|| new_id("chatcmpl-"), str::to_owned),
            model: v["model"].as_str().unwrap_or("").to_owned(),
            content,
            stop_reason: choice["finish_reason"]
                .as_str()
                .map(StopReason::from_openai),
            usage: Usage::from_openai(&v["usage"]),
        })
    }

    pub fn from_gemini(v: &Value, model: &str) -> Result<Completion, BadBody> {
        let cand = v
            .pointer("/candidates/0")
            .ok_or_else(|| BadBody("no 'candidates'".into()))?;
        let mut content = Vec::new();
        for p in cand
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = p["text"].as_str() {
                content.push(Block::Text(t.to_owned()));
            } else if let Some(f) = p.get("functionCall") {
                content.push(Block::ToolUse {
                    id: new_id("toolu_"),
                    name: f["name"].as_str().unwrap_or("").to_owned(),
                    input: tool_input(&f["args"]),
                });
            }
        }
        let has_tool = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        Ok(Completion {
            id: v["responseId"]
                .as_str()
                .map_or_else(|| new_id("msg_"), str::to_owned),
            model: v["modelVersion"].as_str().unwrap_or(model).to_owned(),
            content,
            stop_reason: cand["finishReason"].as_str().map(|r| {
                if has_tool {
                    StopReason::ToolUse
                } else {
                    StopReason::from_gemini(r)
                }
            }),
            usage: Usage::from_gemini(&v["usageMetadata"]),
        })
    }

    pub fn from_ollama(v: &Value) -> Result<Completion, BadBody> {
        let msg = v
            .get("message")
            .ok_or_else(|| BadBody("no 'message'".into()))?;
        let mut content = Vec::new();
        if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
            content.push(Block::Text(t.to_owned()));
        }
        for c in msg["tool_calls"].as_array().into_iter().flatten() {
            content.push(Block::ToolUse {
                id: new_id("toolu_"),
                name: c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                input: tool_input(&c["function"]["arguments"]),
            });
        }
        let has_tool = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        Ok(Completion {
            id: new_id("msg_"),
            model: v["model"].as_str().unwrap_or("").to_owned(),
            content,
            stop_reason: Some(if has_tool {
                StopReason::ToolUse
            } else {
                StopReason::from_ollama(v["done_reason"].as_str().unwrap_or("stop"))
            }),
            usage: Usage::from_ollama(v),
        })
    }

    pub fn from_anythingllm(v: &Value, model: &str) -> Result<Completion, BadBody> {
        if let Some(e) = v["error"].as_str().filter(|e| !e.is_empty()) {
            return Err(BadBody(format!("AnythingLLM error: {e}")));
        }
        let text = v["textResponse"]
            .as_str()
            .ok_or_else(|| BadBody("no 'textResponse'".into()))?;
        Ok(Completion {
            id: v["id"]
                .as_str()
                .map_or_else(|| new_id("msg_"), str::to_owned),
            model: model.to_owned(),
            content: vec![Block::Text(text.to_owned())],
            stop_reason: Some(StopReason::EndTurn),
            usage: None,
        })
    }

    /// As an Anthropic Messages response. `usage` is what the ledger recorded (estimated when
    /// the provider reported none).
    pub fn to_anthropic(&self, usage: Usage) -> Value {
        let content: Vec<Value> = self
            .content
            .iter()
            .map(|b| match b {
                Block::Text(t) => json!({"type": "text", "text": t}),
                Block::ToolUse { id, name, input } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        let id = self.id_or_new("msg_");
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason.unwrap_or(StopReason::EndTurn).anthropic(),
            "stop_sequence": null,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        })
    }

    /// As an OpenAI chat completion; `created` is Unix seconds.
    pub fn to_openai(&self, usage: Usage, created: i64) -> Value {
        let text = self.text();
        let calls: Vec<Value> = self
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse { id, name, input } => Some(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                })),
                Block::Text(_) => None,
            })
            .collect();
        let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }, "refusal": null});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        let id = self.id_or_new("chatcmpl-");
        json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.stop_reason.unwrap_or(StopReason::EndTurn).openai(), "logprobs": null}],
            "usage": {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens, "total_tokens": usage.input_tokens + usage.output_tokens},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_tool_call_becomes_anthropic_tool_use() {
        let v = json!({"id": "chatcmpl-1", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{\"x\":2}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}});
        let c = Completion::from_openai(&v).unwrap();
        assert_eq!(c.stop_reason, Some(StopReason::ToolUse));
        let a = c.to_anthropic(c.usage.unwrap());
        assert_eq!(a["content"][0]["type"], "tool_use");
        assert_eq!(a["content"][0]["input"]["x"], 2);
        assert_eq!(a["stop_reason"], "tool_use");
        assert_eq!(a["usage"]["input_tokens"], 11);
    }

    #[test]
    fn anthropic_answer_becomes_openai_completion() {
        let v = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [
            {"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Hi"}], "stop_reason": "max_tokens",
            "usage": {"input_tokens": 3, "output_tokens": 4}});
        let c = Completion::from_anthropic(&v).unwrap();
        let o = c.to_openai(c.usage.unwrap(), 0);
        assert_eq!(o["choices"][0]["message"]["content"], "Hi");
        assert_eq!(o["choices"][0]["finish_reason"], "length");
        assert_eq!(o["usage"]["total_tokens"], 7);
    }

    #[test]
    fn gemini_ollama_and_anythingllm_bodies_parse() {
        let g = json!({"candidates": [{"content": {"parts": [{"text": "hey"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3}});
        let c = Completion::from_gemini(&g, "gemini").unwrap();
        assert_eq!(
            (c.text().as_str(), c.stop_reason),
            ("hey", Some(StopReason::MaxTokens))
        );
        assert_eq!(
            c.usage,
            Some(Usage {
                input_tokens: 2,
                output_tokens: 3
            })
        );
        let o = json!({"model": "llama", "message": {"role": "assistant", "content": "yo"}, "done": true, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 6});
        assert_eq!(
            Completion::from_ollama(&o).unwrap().usage,
            Some(Usage {
                input_tokens: 5,
                output_tokens: 6
            })
        );
        let a = json!({"id": "x", "type": "textResponse", "textResponse": "rag", "close": true, "error": null});
        assert_eq!(Completion::from_anythingllm(&a, "ws").unwrap().usage, None);
        assert!(Completion::from_anthropic(&json!({"nope": 1})).is_err());
    }
}
