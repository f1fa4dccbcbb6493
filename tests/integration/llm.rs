//! Integration tests of the LLM gateway: the real server in front of local mock providers that
//! speak each provider's real wire format (see `llm/mock.rs`), with faults injected.
//! Breaker and Retry-After timing use the test server's manual clock (no sleeps); the only real
//! waits are the gateway's 1-second provider timeout in the timeout tests.

#[path = "llm/chat.rs"]
mod chat;
#[path = "llm/clients.rs"]
mod clients;
#[path = "llm/mock.rs"]
pub mod mock;

use crate::support::{until, Resp, Session, TestServer};
use architect::llm::LlmConfig;
use mock::{dead_url, Act, Kind, Mock};
use serde_json::{json, Value};

/// The five mock providers and a server whose chain uses them.
pub struct Rig {
    pub server: TestServer,
    pub claude: Mock,
    pub openai: Mock,
    pub gemini: Mock,
    pub ollama: Mock,
    pub anythingllm: Mock,
    /// An admin-scope API token (a caller).
    pub token: String,
    pub token_id: i64,
}

pub const PROVIDER_KEY: &str = "sk-provider-secret-123";

pub async fn rig(chain: &str) -> Rig {
    rig_with(chain, |_| {}).await
}

pub async fn rig_with(chain: &str, adjust: impl FnOnce(&mut LlmConfig)) -> Rig {
    let claude = Mock::start(Kind::Anthropic).await;
    let openai = Mock::start(Kind::OpenAi).await;
    let gemini = Mock::start(Kind::Gemini).await;
    let ollama = Mock::start(Kind::Ollama).await;
    let anythingllm = Mock::start(Kind::AnythingLlm).await;
    let mut llm = LlmConfig {
        chain: chain.into(),
        default_provider: chain.split(',').next().unwrap().into(),
        anthropic_api_key: Some(PROVIDER_KEY.into()),
        openai_api_key: Some(PROVIDER_KEY.into()),
        google_api_key: Some(PROVIDER_KEY.into()),
        anythingllm_api_key: Some(PROVIDER_KEY.into()),
        anthropic_base_url: claude.url.clone(),
        openai_base_url: openai.url.clone(),
        gemini_base_url: gemini.url.clone(),
        ollama_endpoint: ollama.url.clone(),
        anythingllm_endpoint: anythingllm.url.clone(),
        request_timeout_secs: 1,
        stream_idle_timeout_secs: 2,
        max_body_bytes: 1024 * 1024,
        ..LlmConfig::default()
    };
    adjust(&mut llm);
    let server = TestServer::start_with(|c| c.llm = llm).await;
    let (token, token_id) = new_token(&server, "admin", "caller one").await;
    Rig {
        server,
        claude,
        openai,
        gemini,
        ollama,
        anythingllm,
        token,
        token_id,
    }
}

pub async fn new_token(server: &TestServer, scope: &str, name: &str) -> (String, i64) {
    let admin = server.admin().await;
    let r = admin
        .post_json("/api/tokens", &json!({"name": name, "scope": scope}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.json["token"].as_str().unwrap().to_owned(),
        r.json["id"].as_i64().unwrap(),
    )
}

pub fn claude_body(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}]})
}

pub fn openai_body(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]})
}

impl Rig {
    pub fn caller(&self) -> Session {
        Session::new(&self.server.url, Some(self.token.clone()))
    }

    /// `POST /v1/messages` the way Anthropic clients send it (x-api-key).
    pub async fn messages(&self, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let s = self.server.anon();
        let mut rb = s
            .http
            .post(format!("{}/v1/messages", self.server.url))
            .header("x-api-key", &self.token)
            .header("anthropic-version", "2023-06-01")
            .json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        s.send(rb).await
    }

    /// `POST /v1/chat/completions` the way OpenAI clients send it (bearer).
    pub async fn chat(&self, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let s = self.caller();
        let mut rb = s
            .request(reqwest::Method::POST, "/v1/chat/completions")
            .json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        s.send(rb).await
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self.caller().get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json
    }

    pub async fn failovers(&self) -> Vec<(String, String, String)> {
        let v = self.admin_get("/api/llm-metrics/failover-history").await;
        let mut out: Vec<(String, String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["from_provider"].as_str().unwrap().to_owned(),
                    e["to_provider"].as_str().unwrap_or("-").to_owned(),
                    e["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.reverse();
        out
    }

    pub async fn circuit(&self, provider: &str) -> Value {
        let v = self.admin_get("/api/llm-metrics/circuit-breakers").await;
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["provider"] == provider)
            .cloned()
            .expect("breaker listed")
    }
}

/// SSE `data:` payloads of a body, parsed (non-JSON payloads such as `[DONE]` kept as strings).
pub fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|frame| {
            let data: Vec<&str> = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            (!data.is_empty()).then(|| {
                let d = data.join("\n");
                serde_json::from_str(&d).unwrap_or(Value::String(d))
            })
        })
        .collect()
}

/// The text of an Anthropic SSE body.
pub fn anthropic_stream_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter(|v| v["type"] == "content_block_delta")
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

pub fn openai_stream_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

// ---- the gateway, same format ----

#[tokio::test]
async fn anthropic_requests_pass_through_to_claude_with_the_provider_key() {
    let rig = rig("claude,ollama").await;
    let r = rig
        .messages(
            &claude_body(false),
            &[("anthropic-beta", "tools-2024-04-04")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["content"][0]["text"], "Hello from claude");
    assert_eq!(r.json["usage"]["input_tokens"], 10);
    assert_eq!(r.headers["x-architect-provider"], "claude");
    assert_eq!(r.headers["x-architect-failovers"], "0");
    let seen = rig.claude.last();
    assert_eq!(seen.path, "/v1/messages");
    // The provider gets the provider key, never the caller's architect token.
    assert_eq!(seen.headers["x-api-key"], PROVIDER_KEY);
    assert!(!format!("{:?}", seen.headers).contains(&rig.token));
    assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
    assert_eq!(seen.headers["anthropic-beta"], "tools-2024-04-04");
    assert_eq!(seen.body["system"], "Be brief.");

    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(anthropic_stream_text(&r.body), "Hello from claude");
    assert!(r.body.contains("event: message_stop"));
    assert_eq!(rig.ollama.hits(), 0);
}

/// `POST /v1/responses` the way Codex sends it (bearer).
async fn responses(rig: &Rig, stream: bool) -> Resp {
    let body = json!({"model": "gpt-5-codex", "stream": stream, "instructions": "Be brief.",
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "Say hello"}]}]});
    let s = rig.caller();
    s.send(
        s.request(reqwest::Method::POST, "/v1/responses")
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn responses_api_requests_are_served_through_the_messages_path() {
    for chain in ["claude", "gemini"] {
        let rig = rig(chain).await;
        let r = responses(&rig, false).await;
        assert_eq!(r.status, 200, "{chain}: {}", r.body);
        assert_eq!(r.json["object"], "response");
        assert_eq!(r.json["status"], "completed");
        assert_eq!(
            r.json["output"][0]["content"][0]["text"],
            format!("Hello from {chain}")
        );
        assert_eq!(r.headers["x-architect-provider"], chain);

        let r = responses(&rig, true).await;
        assert_eq!(r.status, 200, "{chain}: {}", r.body);
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let events: Vec<Value> = r
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(events[0]["type"], "response.created", "{}", r.body);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.completed", "{}", r.body);
        assert_eq!(
            last["response"]["output"][0]["content"][0]["text"],
            format!("Hello from {chain}")
        );
        let seqs: Vec<i64> = events
            .iter()
            .map(|e| e["sequence_number"].as_i64().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        if chain == "claude" {
            // The provider got a Messages request with the instructions as its system prompt.
            let seen = rig.claude.last();
            assert_eq!(seen.path, "/v1/messages");
            assert_eq!(seen.body["system"], "Be brief.");
        }
    }
    let rig = rig("claude").await;
    let r = rig
        .server
        .anon()
        .post_json("/v1/responses", &json!({"model": "m", "input": "hi"}))
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json["error"]["code"], "unauthorized");
    let s = rig.caller();
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/v1/responses")
                .json(&json!({"model": "m"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("input"));
}

#[tokio::test]
async fn openai_requests_pass_through_and_usage_chunk_only_when_asked() {
    let rig = rig("openai,ollama").await;
    let r = rig.chat(&openai_body(false), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json["choices"][0]["message"]["content"],
        "Hello from openai"
    );
    assert_eq!(
        rig.openai.last().headers["authorization"],
        format!("Bearer {PROVIDER_KEY}").as_str()
    );

    let r = rig.chat(&openai_body(true), &[]).await;
    assert_eq!(openai_stream_text(&r.body), "Hello from openai");
    // The gateway asked upstream for usage (to price the stream) ...
    assert_eq!(
        rig.openai.last().body["stream_options"]["include_usage"],
        true
    );
    // ... but the client did not, so it does not get the usage chunk.
    assert!(!r.body.contains("\"usage\""), "{}", r.body);
    assert!(r.body.ends_with("data: [DONE]\n\n"));

    let mut asked = openai_body(true);
    asked["stream_options"] = json!({"include_usage": true});
    let r = rig.chat(&asked, &[]).await;
    let usage: Vec<Value> = sse_data(&r.body)
        .into_iter()
        .filter(|v| v.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "{}", r.body);
    assert_eq!(usage[0]["usage"]["total_tokens"], 15);
}

// ---- failover ----

#[tokio::test]
async fn failover_follows_the_chain_on_5xx_timeout_and_refused_connection() {
    let dead = dead_url().await;
    let rig = rig_with("claude,ollama,anythingllm,gemini,openai", |c| {
        c.anythingllm_endpoint = dead
    })
    .await;
    rig.claude.push(&[Act::Status(500, None)]);
    rig.ollama.push(&[Act::Hang]);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-architect-provider"], "gemini");
    assert_eq!(r.headers["x-architect-failovers"], "3");
    assert_eq!(r.json["content"][0]["text"], "Hello from gemini");
    assert_eq!(
        (
            rig.claude.hits(),
            rig.ollama.hits(),
            rig.gemini.hits(),
            rig.openai.hits()
        ),
        (1, 1, 1, 0)
    );
    // Gemini was asked for its own default model, not the Claude model the client named.
    assert_eq!(
        rig.gemini.last().path,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(rig.gemini.last().headers["x-goog-api-key"], PROVIDER_KEY);
    assert_eq!(
        rig.failovers().await,
        vec![
            ("claude".into(), "ollama".into(), "status_5xx".into()),
            ("ollama".into(), "anythingllm".into(), "timeout".into()),
            ("anythingllm".into(), "gemini".into(), "connect".into()),
        ]
    );
    let summary = rig.admin_get("/api/llm-metrics/summary").await;
    assert_eq!(summary["failover_count"], 3);
    assert_eq!(summary["successful_requests"], 1);
}

#[tokio::test]
async fn the_callers_own_4xx_is_relayed_without_failover() {
    let rig = rig("claude,openai").await;
    rig.claude.push(&[Act::Status(400, None)]);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["message"], "mock claude says 400");
    assert_eq!(rig.openai.hits(), 0);
    // In the other format, the error is translated into the client's shape.
    rig.claude.push(&[Act::Status(422, None)]);
    let r = rig
        .chat(&openai_body(false), &[("x-architect-provider", "claude")])
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mock claude says 422"),
        "{}",
        r.body
    );
    assert_eq!(rig.openai.hits(), 0);
    assert_eq!(rig.circuit("claude").await["consecutive_failures"], 0);
}

#[tokio::test]
async fn a_rejected_provider_key_fails_over_and_keys_can_come_from_the_vault() {
    let rig = rig_with("claude,openai", |c| {
        c.openai_api_key = Some("vault:OPENAI_KEY".into())
    })
    .await;
    rig.claude.push(&[Act::Status(401, None)]);
    // The vault has no OPENAI_KEY yet: openai is skipped with that reason.
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("claude: 401 (check the provider's API key)"),
        "{msg}"
    );
    assert!(
        msg.contains("openai: its key vault:OPENAI_KEY could not be read from the vault"),
        "{msg}"
    );
    assert_eq!(rig.openai.hits(), 0);
    let admin = rig.server.admin().await;
    let r = admin
        .post_json(
            "/api/secrets",
            &json!({"name": "OPENAI_KEY", "value": "sk-from-the-vault", "category": "api_key"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    rig.claude.push(&[Act::Status(403, None)]);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "openai", "{}", r.body);
    assert_eq!(
        rig.openai.last().headers["authorization"],
        "Bearer sk-from-the-vault"
    );
    assert!(!r.body.contains("sk-from-the-vault"));
    assert_eq!(rig.failovers().await.last().unwrap().2, "status_auth");
}

#[tokio::test]
async fn a_429_skips_the_provider_until_its_retry_after() {
    let rig = rig("claude,openai").await;
    rig.claude.push(&[Act::Status(429, Some("120"))]);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "openai");
    // Translated from OpenAI back to Anthropic for this client.
    assert_eq!(r.json["type"], "message");
    assert_eq!(r.json["content"][0]["text"], "Hello from openai");
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "openai");
    assert_eq!(
        rig.claude.hits(),
        1,
        "claude is left alone until Retry-After"
    );
    assert!(rig.circuit("claude").await["rate_limited_until"].is_string());
    rig.server.clock.advance(121);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "claude");
    assert_eq!(rig.claude.hits(), 2);
}

#[tokio::test]
async fn all_providers_rate_limited_answers_429_with_retry_after() {
    let rig = rig("claude").await;
    rig.claude.push(&[Act::Status(429, Some("30"))]);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json["type"], "error");
    assert_eq!(r.json["code"], "providers_unavailable");
    let ra: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&ra), "{ra}");
    rig.claude.push(&[Act::Status(503, None)]);
    rig.server.clock.advance(31);
    let r = rig.chat(&openai_body(false), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["error"]["code"], "providers_unavailable");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude: 503"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(PROVIDER_KEY));
}

#[tokio::test]
async fn circuit_breaker_opens_after_five_failures_and_lets_one_probe_through() {
    let rig = rig("claude,ollama").await;
    rig.claude.set_default(Act::Status(500, None));
    for i in 0..5 {
        let r = rig.messages(&claude_body(false), &[]).await;
        assert_eq!(r.headers["x-architect-provider"], "ollama", "request {i}");
    }
    assert_eq!(rig.claude.hits(), 5);
    let c = rig.circuit("claude").await;
    assert_eq!(c["state"], "open");
    assert_eq!(c["history"][0]["to"], "open");
    // Open: claude is skipped.
    rig.messages(&claude_body(false), &[]).await;
    assert_eq!(rig.claude.hits(), 5);
    // After the cooldown one probe goes through; it fails: open again.
    rig.server.clock.advance(60);
    rig.messages(&claude_body(false), &[]).await;
    assert_eq!(rig.claude.hits(), 6);
    assert_eq!(rig.circuit("claude").await["state"], "open");
    rig.messages(&claude_body(false), &[]).await;
    assert_eq!(rig.claude.hits(), 6);
    // The next probe succeeds: closed.
    rig.server.clock.advance(60);
    rig.claude.set_default(Act::Ok);
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "claude");
    let c = rig.circuit("claude").await;
    assert_eq!(c["state"], "closed");
    let path: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["open", "half_open", "open", "half_open", "closed"]);

    // Reset through the API (write capability) closes an open circuit at once.
    rig.claude.set_default(Act::Status(500, None));
    for _ in 0..5 {
        rig.messages(&claude_body(false), &[]).await;
    }
    assert_eq!(rig.circuit("claude").await["state"], "open");
    let (read_token, _) = new_token(&rig.server, "read", "reader").await;
    let r = Session::new(&rig.server.url, Some(read_token))
        .post_json("/api/llm-metrics/reset-circuits", &json!({}))
        .await;
    assert_eq!(r.status, 403);
    let r = rig
        .caller()
        .post_json("/api/llm-metrics/reset-circuits", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rig.circuit("claude").await["state"], "closed");
}

#[tokio::test]
async fn concurrent_requests_send_a_single_half_open_probe() {
    let rig = rig("claude,ollama").await;
    rig.claude.set_default(Act::Status(500, None));
    for _ in 0..5 {
        rig.messages(&claude_body(false), &[]).await;
    }
    rig.server.clock.advance(60);
    rig.claude.set_default(Act::Slow(50));
    let body = claude_body(true);
    let reqs = (0..8).map(|_| rig.messages(&body, &[]));
    let answers = futures_util::future::join_all(reqs).await;
    assert!(answers.iter().all(|r| r.status == 200));
    assert_eq!(rig.claude.hits(), 6, "exactly one probe reached claude");
    assert_eq!(
        answers
            .iter()
            .filter(|r| r.headers["x-architect-provider"] == "claude")
            .count(),
        1
    );
}

// ---- streams ----

#[tokio::test]
async fn a_stream_fails_over_before_its_first_byte() {
    let rig = rig("claude,openai").await;
    rig.claude.push(&[Act::MalformedFirst]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-architect-provider"], "openai");
    // OpenAI's stream, translated into a complete Anthropic stream.
    let events: Vec<String> = sse_data(&r.body)
        .iter()
        .map(|v| v["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("message_start"));
    assert_eq!(events.last().map(String::as_str), Some("message_stop"));
    assert_eq!(anthropic_stream_text(&r.body), "Hello from openai");
    assert_eq!(
        rig.failovers().await,
        vec![("claude".into(), "openai".into(), "stream_broken".into())]
    );

    // A provider that answers 500 to a stream request fails over the same way.
    rig.claude.push(&[Act::Status(502, None)]);
    let r = rig.chat(&openai_body(true), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "openai");
    assert_eq!(openai_stream_text(&r.body), "Hello from openai");
}

#[tokio::test]
async fn a_stream_cut_after_its_first_byte_ends_with_an_error_event_and_no_switch() {
    let rig = rig("claude,openai").await;
    rig.claude.push(&[Act::Truncate]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        anthropic_stream_text(&r.body).starts_with("Hello"),
        "{}",
        r.body
    );
    let last = sse_data(&r.body).pop().unwrap();
    assert_eq!(last["type"], "error", "{}", r.body);
    assert!(r.body.contains("event: error"));
    assert!(!r.body.contains("message_stop"));
    assert_eq!(rig.openai.hits(), 0, "no switch after the first byte");

    // Malformed JSON mid-stream, OpenAI client: an error chunk, no [DONE].
    rig.claude.push(&[Act::MalformedMid]);
    let r = rig.chat(&openai_body(true), &[]).await;
    let last = sse_data(&r.body).pop().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("[DONE]"));
    assert_eq!(rig.openai.hits(), 0);

    // Both are in the ledger as cut, with estimated usage.
    let s = rig.admin_get("/api/llm-metrics/summary").await;
    assert_eq!(s["failed_requests"], 2);
    assert_eq!(s["estimated_requests"], 2);
    assert_eq!(rig.circuit("claude").await["consecutive_failures"], 2);
}

#[tokio::test]
async fn slow_streams_arrive_whole_and_silent_ones_time_out() {
    let rig = rig("ollama,openai").await;
    rig.ollama.push(&[Act::Slow(300)]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(anthropic_stream_text(&r.body), "Hello from ollama");
    assert!(r.body.contains("message_stop"));
    // A provider that never answers a stream request is abandoned after the request timeout.
    rig.ollama.push(&[Act::Hang]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(r.headers["x-architect-provider"], "openai");
    assert_eq!(anthropic_stream_text(&r.body), "Hello from openai");
}

#[tokio::test]
async fn provider_streams_with_a_bom_and_cr_or_crlf_line_ends_arrive_whole() {
    // Lone CR line ends, passed through to an Anthropic client and translated for an OpenAI one.
    let rig = rig("claude").await;
    rig.claude.push(&[Act::LineEnds("\r"), Act::LineEnds("\r")]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        anthropic_stream_text(&r.body),
        "Hello from claude",
        "{}",
        r.body
    );
    assert!(r.body.contains("message_stop"), "{}", r.body);
    let r = rig.chat(&openai_body(true), &[]).await;
    assert_eq!(
        openai_stream_text(&r.body),
        "Hello from claude",
        "{}",
        r.body
    );
    assert!(r.body.contains("[DONE]"), "{}", r.body);
    // CRLF split across chunks, OpenAI's format translated for an Anthropic client.
    let rig = crate::llm::rig("openai").await;
    rig.openai.push(&[Act::LineEnds("\r\n")]);
    let r = rig.messages(&claude_body(true), &[]).await;
    assert_eq!(
        anthropic_stream_text(&r.body),
        "Hello from openai",
        "{}",
        r.body
    );
    assert!(r.body.contains("message_stop"), "{}", r.body);
    let s = rig.admin_get("/api/llm-metrics/summary").await;
    assert_eq!(s["failed_requests"], 0);
}

// ---- translation ----

#[tokio::test]
async fn openai_clients_with_tools_are_served_by_claude_in_both_directions() {
    let rig = rig("claude").await;
    let body = json!({
        "model": "gpt-4o", "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "rain"},
            {"role": "user", "content": "And Paris?"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto"
    });
    rig.claude.push(&[Act::ToolCall]);
    let r = rig.chat(&body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = rig.claude.last().body;
    assert_eq!(
        seen["model"], "claude-sonnet-4-5",
        "the provider's default model"
    );
    assert_eq!(seen["system"], "You are terse.");
    assert_eq!(
        seen["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(seen["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(seen["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(seen["tool_choice"]["type"], "auto");
    let msg = &r.json["choices"][0];
    assert_eq!(msg["finish_reason"], "tool_calls");
    assert_eq!(
        msg["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let args: Value = serde_json::from_str(
        msg["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args["city"], "Paris");
    assert_eq!(r.json["usage"]["prompt_tokens"], 10);

    // Streaming: Anthropic tool-use events become OpenAI tool_call deltas.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    rig.claude.push(&[Act::ToolCall]);
    let r = rig.chat(&streamed, &[]).await;
    let chunks = sse_data(&r.body);
    let args: String = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap()["city"],
        "Paris"
    );
    assert!(chunks
        .iter()
        .any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("tool_calls"))));
    assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
}

#[tokio::test]
async fn anthropic_clients_are_served_by_every_other_format() {
    for (provider, chain) in [
        ("openai", "openai"),
        ("gemini", "gemini"),
        ("ollama", "ollama"),
        ("anythingllm", "anythingllm"),
    ] {
        let rig = rig(chain).await;
        let r = rig.messages(&claude_body(false), &[]).await;
        assert_eq!(r.status, 200, "{provider}: {}", r.body);
        assert_eq!(
            r.json["content"][0]["text"],
            format!("Hello from {provider}"),
            "{provider}"
        );
        assert_eq!(r.json["stop_reason"], "end_turn");
        let r = rig.messages(&claude_body(true), &[]).await;
        assert_eq!(
            anthropic_stream_text(&r.body),
            format!("Hello from {provider}"),
            "{provider}: {}",
            r.body
        );
        assert!(r.body.contains("message_stop"), "{provider}");
        let r = rig.chat(&openai_body(true), &[]).await;
        assert_eq!(
            openai_stream_text(&r.body),
            format!("Hello from {provider}"),
            "{provider}"
        );
        if provider == "anythingllm" {
            let seen = rig.anythingllm.last();
            assert_eq!(seen.path, "/api/v1/workspace/default/stream-chat");
            assert_eq!(
                seen.headers["authorization"],
                format!("Bearer {PROVIDER_KEY}").as_str()
            );
            assert_eq!(seen.body["message"], "Say hello");
        }
        if provider != "openai" {
            // Tools cross over too (AnythingLLM has none).
            let mut tool = claude_body(false);
            tool["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
            let m = match provider {
                "gemini" => &rig.gemini,
                "ollama" => &rig.ollama,
                _ => continue,
            };
            m.push(&[Act::ToolCall]);
            let r = rig.messages(&tool, &[]).await;
            assert_eq!(r.json["stop_reason"], "tool_use", "{provider}: {}", r.body);
            assert_eq!(r.json["content"][0]["input"]["city"], "Paris");
            let seen = m.last().body;
            let declared = if provider == "gemini" {
                &seen["tools"][0]["functionDeclarations"][0]["name"]
            } else {
                &seen["tools"][0]["function"]["name"]
            };
            assert_eq!(declared, "get_weather", "{provider}");
        }
        let s = rig.admin_get("/api/llm-metrics/summary").await;
        let estimated = if provider == "anythingllm" { 3 } else { 0 };
        assert_eq!(
            s["estimated_requests"], estimated,
            "{provider}: AnythingLLM reports no usage"
        );
    }
}

// ---- cost, budgets ----

/// 10 input + 5 output tokens on claude-sonnet-4-5 at $3 / $15 per million tokens.
const CLAUDE_REQUEST_NANOS: i64 = 10 * 3_000 + 5 * 15_000;

#[tokio::test]
async fn costs_are_summed_exactly_per_provider_caller_and_project() {
    let rig = rig("claude,ollama").await;
    let (other, other_id) = new_token(&rig.server, "agent", "agent session").await;
    for _ in 0..3 {
        rig.messages(&claude_body(false), &[("x-architect-project", "alpha")])
            .await;
    }
    rig.messages(&claude_body(true), &[("x-architect-project", "alpha")])
        .await;
    let s = Session::new(&rig.server.url, Some(other));
    let r = s
        .send(
            s.request(reqwest::Method::POST, "/v1/messages")
                .header("x-architect-project", "beta")
                .json(&claude_body(false)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Ollama is local: free.
    rig.messages(&claude_body(false), &[("x-architect-provider", "ollama")])
        .await;

    let summary = rig.admin_get("/api/llm-metrics/summary").await;
    assert_eq!(summary["total_requests"], 6);
    assert_eq!(summary["total_cost_nanos"], 5 * CLAUDE_REQUEST_NANOS);
    assert_eq!(summary["input_tokens"], 60);
    assert_eq!(
        summary["estimated_requests"], 0,
        "stream usage was reported"
    );
    let by_project = rig.admin_get("/api/llm-metrics/costs?by=project").await;
    let cost = |v: &Value, key: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|g| g["key"] == key)
            .map(|g| g["cost_nanos"].as_i64().unwrap())
    };
    assert_eq!(cost(&by_project, "alpha"), Some(4 * CLAUDE_REQUEST_NANOS));
    assert_eq!(cost(&by_project, "beta"), Some(CLAUDE_REQUEST_NANOS));
    let by_caller = rig.admin_get("/api/llm-metrics/costs?by=caller").await;
    assert_eq!(
        cost(&by_caller, &format!("architect (token {other_id})")),
        Some(CLAUDE_REQUEST_NANOS)
    );
    assert_eq!(
        cost(&by_caller, &format!("architect (token {})", rig.token_id)),
        Some(4 * CLAUDE_REQUEST_NANOS)
    );
    let by_provider = rig.admin_get("/api/llm-metrics/costs?by=provider").await;
    assert_eq!(cost(&by_provider, "ollama"), Some(0));
    let providers = rig.admin_get("/api/llm-metrics/providers").await;
    let claude = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "claude")
        .unwrap();
    assert_eq!(claude["requests_served"], 5);
    assert_eq!(claude["success_rate"], 1.0);
    assert!(claude["latency_p99_ms"].is_u64());

    // Prices are data: doubling the price doubles the next request's cost.
    let r = rig.caller().put_json("/api/llm/prices", &json!({"provider": "claude", "model": "claude-sonnet-4-5", "input_usd_per_mtok": 6.0, "output_usd_per_mtok": 30.0})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    rig.messages(&claude_body(false), &[("x-architect-project", "gamma")])
        .await;
    let by_project = rig.admin_get("/api/llm-metrics/costs?by=project").await;
    assert_eq!(cost(&by_project, "gamma"), Some(2 * CLAUDE_REQUEST_NANOS));
    let r = rig.caller().put_json("/api/llm/prices", &json!({"provider": "nope", "model": "x", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 1.0})).await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("provider"))
    );
    let (agent, _) = new_token(&rig.server, "agent", "no admin").await;
    let r = Session::new(&rig.server.url, Some(agent)).put_json("/api/llm/prices", &json!({"provider": "claude", "model": "x", "input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0})).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn budgets_warn_at_the_threshold_then_refuse() {
    let rig = rig("claude").await;
    // Two requests' worth; warn at half.
    let limit = 2.0 * CLAUDE_REQUEST_NANOS as f64 / 1e9;
    let r = rig.caller().post_json("/api/llm/budgets", &json!({"scope": "project", "target": "alpha", "period": "day", "limit_usd": limit, "warn_ratio": 0.5})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = rig.caller().post_json("/api/llm/budgets", &json!({"scope": "token", "target": rig.token_id.to_string(), "period": "month", "limit_usd": 100.0})).await;
    assert_eq!(r.status, 201, "{}", r.body);

    let p = [("x-architect-project", "alpha")];
    let r = rig.messages(&claude_body(false), &p).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-architect-budget-warning").is_none());
    let r = rig.messages(&claude_body(false), &p).await;
    assert_eq!(r.status, 200);
    let w = r.headers["x-architect-budget-warning"].to_str().unwrap();
    assert!(w.contains("project 'alpha'"), "{w}");
    let r = rig.messages(&claude_body(false), &p).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json["code"], "budget_exceeded");
    assert_eq!(r.json["error"]["type"], "rate_limit_error");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("is spent"));
    let r = rig.chat(&openai_body(false), &p).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (429, Some("budget_exceeded"))
    );
    assert_eq!(
        rig.claude.hits(),
        2,
        "refused requests never reach a provider"
    );
    // Other projects are unaffected; the budget shows as exceeded.
    assert_eq!(
        rig.messages(&claude_body(false), &[("x-architect-project", "beta")])
            .await
            .status,
        200
    );
    let b = rig.admin_get("/api/llm/budgets").await;
    assert_eq!(b[0]["state"], "exceeded");
    // A new day starts a new period.
    rig.server.clock.advance(86_400);
    assert_eq!(rig.messages(&claude_body(false), &p).await.status, 200);

    let r = rig
        .caller()
        .post_json(
            "/api/llm/budgets",
            &json!({"scope": "token", "target": "abc", "limit_usd": 1.0}),
        )
        .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("target")));
    let r = rig
        .caller()
        .post_json(
            "/api/llm/budgets",
            &json!({"scope": "project", "target": "alpha", "period": "day", "limit_usd": 1.0}),
        )
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn ledger_rows_survive_a_graceful_shutdown() {
    let rig = rig("claude").await;
    for _ in 0..3 {
        assert_eq!(rig.messages(&claude_body(false), &[]).await.status, 200);
    }
    // A stream still running when shutdown starts: its row is written when it ends.
    rig.claude.push(&[Act::Slow(150)]);
    let url = format!("{}/v1/messages", rig.server.url);
    let token = rig.token.clone();
    let streaming = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(url)
            .header("x-api-key", token)
            .json(&claude_body(true))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    });
    while rig.claude.hits() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let Rig {
        server,
        token,
        claude,
        ..
    } = rig;
    let server = server.restart().await;
    let body = streaming.await.unwrap();
    assert!(
        body.contains("message_stop"),
        "the in-flight stream finished: {body}"
    );
    drop(claude);
    let r = Session::new(&server.url, Some(token))
        .get("/api/llm-metrics/summary")
        .await;
    assert_eq!(r.json["total_requests"], 4, "{}", r.body);
    assert_eq!(r.json["total_cost_nanos"], 4 * CLAUDE_REQUEST_NANOS);
}

// ---- bad input, auth ----

#[tokio::test]
async fn bad_input_and_bad_callers_get_4xx_in_the_clients_format() {
    let rig = rig("claude").await;
    let url = format!("{}/v1/messages", rig.server.url);
    let http = reqwest::Client::new();
    let bodies: Vec<(&str, String)> = vec![
        ("not json", "{\"model\": ".into()),
        ("array", "[1,2]".into()),
        ("no model", json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).to_string()),
        ("no max_tokens", json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}).to_string()),
        ("zero max_tokens", json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}).to_string()),
        ("empty messages", json!({"model": "m", "max_tokens": 5, "messages": []}).to_string()),
        ("bad role", json!({"model": "m", "max_tokens": 5, "messages": [{"role": 7, "content": "x"}]}).to_string()),
        ("bad content", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}).to_string()),
        ("bad stream", json!({"model": "m", "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}).to_string()),
        ("invalid utf8", String::from_utf8_lossy(&[0xff, 0xfe]).into_owned()),
        ("huge", format!("{{\"model\": \"{}\"}}", "x".repeat(2 << 20))),
    ];
    for (what, body) in &bodies {
        let r = http
            .post(&url)
            .header("x-api-key", &rig.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{what}: {status}");
        if *what == "huge" {
            assert_eq!(status, 413);
        }
        assert_eq!(v["type"], "error", "{what}: {v}");
    }
    let r = rig
        .chat(
            &json!({"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("wizard"));
    let r = rig
        .chat(&openai_body(false), &[("x-architect-provider", "skynet")])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(rig.claude.hits(), 0, "nothing reached a provider");

    // Auth: none, wrong, read-only, ingest, and a browser session are all refused.
    let anon = http
        .post(&url)
        .json(&claude_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let wrong = http
        .post(&url)
        .header("x-api-key", "arch_wrong")
        .json(&claude_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for scope in ["read", "ingest"] {
        let (t, _) = new_token(&rig.server, scope, scope).await;
        let r = http
            .post(&url)
            .header("x-api-key", &t)
            .json(&claude_body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{scope}");
    }
    let admin = rig.server.admin().await;
    let r = admin.post_json("/v1/messages", &claude_body(false)).await;
    assert_eq!(
        r.status, 401,
        "browser sessions cannot spend through the gateway"
    );
    let (worker, _) = new_token(&rig.server, "worker", "w").await;
    let r = http
        .post(format!("{}/v1/chat/completions", rig.server.url))
        .bearer_auth(worker)
        .json(&openai_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(rig.claude.hits(), 1);
}

#[tokio::test]
async fn metrics_routes_need_a_caller_and_reach_prometheus() {
    let rig = rig("claude").await;
    for path in [
        "/api/llm-metrics/summary",
        "/api/llm-metrics/providers",
        "/api/llm-metrics/circuit-breakers",
        "/api/llm-metrics/failover-history",
        "/api/llm/prices",
        "/api/llm/budgets",
    ] {
        assert_eq!(rig.server.anon().get(path).await.status, 401, "{path}");
    }
    assert_eq!(
        rig.server
            .anon()
            .post_json("/api/llm-metrics/reset-circuits", &json!({}))
            .await
            .status,
        401
    );
    let r = rig.caller().get("/api/llm-metrics/costs?by=nope").await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("by")));
    let r = rig.caller().get("/api/llm-metrics/summary?days=0").await;
    assert_eq!(r.status, 422);
    rig.messages(&claude_body(false), &[]).await;
    let s = rig.admin_get("/api/llm-metrics/summary?days=7").await;
    assert_eq!(s["total_requests"], 1);
    let prices = rig.admin_get("/api/llm/prices").await;
    assert!(prices
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["model"] == "claude-sonnet-4*"));
    let m = rig.caller().get("/metrics").await;
    assert!(
        m.body.contains("llm_requests_total"),
        "prometheus has the gateway's counters"
    );
    assert!(m.body.contains("llm_cost_nanodollars_total"));
    assert!(
        m.body.contains("llm_request_duration_seconds_bucket"),
        "latency is a histogram"
    );
}

#[tokio::test]
async fn the_llm_metrics_page_shows_the_gateway_and_resets_circuits() {
    let rig = rig("claude,ollama").await;
    let admin = rig.server.admin().await;
    let r = admin.get("/llm-metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("No LLM requests yet"));
    assert!(r.body.contains("ANTHROPIC_BASE_URL"));
    assert_eq!(rig.server.anon().get("/llm-metrics").await.status, 303);

    rig.claude.set_default(Act::Status(500, None));
    for _ in 0..5 {
        rig.messages(&claude_body(false), &[("x-architect-project", "alpha")])
            .await;
    }
    let r = admin.get("/llm-metrics").await;
    assert!(!r.body.contains("No LLM requests yet"));
    assert!(
        r.body.contains("llm-circuit-open"),
        "the open circuit is shown"
    );
    assert!(
        r.body.contains("<svg viewBox=\"0 0 420 120\""),
        "trend charts are inline SVG"
    );
    assert!(r.body.contains("status_5xx"), "failover history is listed");
    // Ollama answered: its latency quantiles are shown as estimates, not as bucket bounds.
    assert!(r.body.contains("≈\u{a0}"), "{}", r.body);
    assert!(!r.body.contains("≤"), "{}", r.body);
    assert!(r.body.contains("estimates from a latency histogram"));
    // The reset button is a plain form with the CSRF token.
    let r = admin.post_form("/llm-metrics/reset-circuits", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(rig.circuit("claude").await["state"], "closed");
    let r = admin
        .send(
            admin
                .http
                .post(format!("{}/llm-metrics/reset-circuits", rig.server.url))
                .form(&[("csrf_token", "wrong")]),
        )
        .await;
    assert_eq!(r.status, 403);
}

/// The metrics page in a real browser after a few answers: latency estimates in the providers
/// table (screenshot `target/screenshots/llm-metrics.png`).
#[tokio::test(flavor = "multi_thread")]
async fn browser_llm_metrics_page_shows_latency_estimates() {
    use crate::browser::{browser_available, log_in, Browser, Driver};
    if !browser_available() {
        return;
    }
    let rig = rig("claude,ollama").await;
    for _ in 0..3 {
        assert_eq!(rig.messages(&claude_body(false), &[]).await.status, 200);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &rig.server).await;
    b.resize(1400, 1600).await;
    b.goto(&format!("{}/llm-metrics", rig.server.url)).await;
    let text = b.wait_text("body", "≈").await;
    assert!(
        text.contains("estimates from a latency histogram"),
        "{text}"
    );
    // The providers table (with the p50 and p99 columns) in view.
    b.script(
        "const th = [...document.querySelectorAll('th')].find(t => t.textContent === 'p50'); \
         if (th) th.closest('table').scrollIntoView();",
    )
    .await;
    b.screenshot("llm-metrics").await;
    b.quit().await;
    drop(driver);
}

/// Request bodies held by `/v1/*` requests are capped together (`LLM_MAX_IN_FLIGHT_BYTES`):
/// while one large body is being received, another large one is refused with 503 in the
/// client's own error format (it used to be read whole: 16 × 30 MB bodies at once took the
/// server to 611 MB), a small one still passes, and once the first is done the bytes are free.
#[tokio::test(flavor = "multi_thread")]
async fn in_flight_request_bytes_are_capped_across_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rig = rig_with("claude", |c| c.max_in_flight_bytes = 1024 * 1024).await;
    let big = |n: usize| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "x".repeat(n),
            "messages": [{"role": "user", "content": "Say hello"}]})
    };
    // A: 700 KB declared, a first part sent, the rest held back.
    let a_body = big(700 * 1024).to_string();
    let addr = rig.server.url.trim_start_matches("http://").to_string();
    let mut a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        rig.token,
        a_body.len()
    );
    a.write_all(head.as_bytes()).await.unwrap();
    a.write_all(&a_body.as_bytes()[..4096]).await.unwrap();
    // B: another 700 KB is refused while A holds its bytes (A is claimed once the server
    // reads its head; until then B may pass, so ask until it is refused).
    let b = big(700 * 1024);
    let refused = until("a second large body is refused", || async {
        let r = rig.messages(&b, &[]).await;
        (r.status == 503).then_some(r)
    })
    .await;
    assert_eq!(refused.json["type"], "error", "{}", refused.body);
    assert_eq!(refused.json["error"]["type"], "overloaded_error");
    assert_eq!(refused.json["code"], "gateway_busy");
    assert!(refused.headers.get("retry-after").is_some());
    // The OpenAI format says the same in its own shape.
    let r = rig
        .chat(
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "y".repeat(700 * 1024)}]}),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (503, Some("gateway_busy")),
        "{}",
        r.body
    );
    // A small request fits beside A.
    let r = rig.messages(&claude_body(false), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A finishes and is answered; its bytes are given back.
    a.write_all(&a_body.as_bytes()[4096..]).await.unwrap();
    let mut answer = String::new();
    a.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let r = rig.messages(&b, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Price, budget and circuit changes are in the activity log, with who made them.
#[tokio::test]
async fn gateway_settings_changes_are_in_the_activity_log() {
    let rig = rig("claude").await;
    let admin = rig.caller();
    let r = admin.put_json("/api/llm/prices", &json!({"provider": "claude", "model": "claude-x*", "input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let price = r.json["id"].as_i64().unwrap();
    let r = admin
        .post_json(
            "/api/llm/budgets",
            &json!({"scope": "project", "target": "alpha", "period": "day", "limit_usd": 0.005}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let budget = r.json["id"].as_i64().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/llm/budgets/{budget}"))
            .await
            .status,
        204
    );
    assert_eq!(
        admin
            .delete(&format!("/api/llm/prices/{price}"))
            .await
            .status,
        204
    );
    let r = admin
        .post_json("/api/llm-metrics/reset-circuits", &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let log = rig.admin_get("/api/activity?limit=20").await;
    let rows: Vec<(String, String, Option<i64>)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["entity_type"]
                .as_str()
                .is_some_and(|e| e.starts_with("llm_"))
        })
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["entity_type"].as_str().unwrap().to_string(),
                a["entity_id"].as_i64(),
            )
        })
        .collect();
    let want = [
        ("reset_circuits", "llm_gateway", None),
        ("delete", "llm_price", Some(price)),
        ("delete", "llm_budget", Some(budget)),
        ("create", "llm_budget", Some(budget)),
        ("set", "llm_price", Some(price)),
    ];
    assert_eq!(
        rows,
        want.iter()
            .map(|(a, e, i)| (a.to_string(), e.to_string(), *i))
            .collect::<Vec<_>>(),
        "{log}"
    );
    let set = log
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "set")
        .unwrap();
    assert_eq!(set["details"]["model"], "claude-x*", "{set}");
}
