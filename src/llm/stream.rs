//! Streams: providers' event streams (Anthropic SSE, OpenAI SSE, Gemini SSE, Ollama NDJSON,
//! AnythingLLM SSE) decoded into [`Part`]s, and `Part`s encoded as Anthropic or OpenAI SSE for
//! the client.
//!
//! Three steps, one file each: [`frame`] cuts the body into events (incrementally: each byte is
//! scanned once), [`decode`] reads one provider's events as `Part`s, [`encode`] writes `Part`s
//! in the client's format.
//!
//! A decoder reports [`Part::Done`] only when the provider ended the stream properly
//! (`message_stop`, `[DONE]`, `done: true`, a finish reason, `close: true`); a body that ends
//! without it was truncated, which the gateway turns into an error event.

pub mod decode;
pub mod encode;
pub mod frame;

pub use decode::{Decoder, Dialect};
pub use encode::{AnthropicEncoder, OpenAiEncoder};
pub use frame::{Framer, SseEvent};

use super::StopReason;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

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
