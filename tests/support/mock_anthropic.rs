//! A local LLM provider speaking the Anthropic Messages wire format (`POST /v1/messages`,
//! non-streamed), scripted per request: the gateway's in-process callers (the planner's pass,
//! the autopilot's goal split) are tested against it; [`server`] starts a `TestServer` whose
//! gateway asks it.

use super::TestServer;
use architect::config::MilestoneLlm;
use architect::llm::LlmConfig;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// What the mock does with one request: answer with the text made from the request body, or
/// never answer.
#[derive(Clone)]
pub enum Act {
    Reply(Arc<dyn Fn(&Value) -> String + Send + Sync>),
    Hang,
}

#[derive(Clone, Default)]
pub struct Mock {
    pub acts: Arc<Mutex<VecDeque<Act>>>,
    pub seen: Arc<Mutex<Vec<Value>>>,
}

impl Mock {
    pub async fn start() -> (Mock, String) {
        let m = Mock::default();
        // `.fallback`, not `.route`: every path answers the same way.
        let app = axum::Router::new().fallback(answer).with_state(m.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (m, url)
    }
    pub fn push(&self, act: Act) {
        self.acts.lock().unwrap().push_back(act);
    }
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// A `TestServer` whose LLM gateway's one provider, `claude`, is the mock at `url`, keyed by
/// `key` (`None`: no provider is configured), without failover and with a 5 s request timeout;
/// the milestone planner's LLM pass is `pass`; `adjust` changes the rest of the gateway's
/// settings (the chain, the timeout).
pub async fn server(
    url: &str,
    key: Option<&str>,
    pass: MilestoneLlm,
    adjust: impl FnOnce(&mut LlmConfig),
) -> TestServer {
    let mut llm = LlmConfig {
        chain: "claude".into(),
        default_provider: "claude".into(),
        anthropic_api_key: key.map(str::to_string),
        anthropic_base_url: url.to_string(),
        failover_enabled: false,
        request_timeout_secs: 5,
        ..LlmConfig::default()
    };
    adjust(&mut llm);
    TestServer::start_with(|c| {
        c.llm = llm;
        c.milestone_llm = pass;
    })
    .await
}

/// An Anthropic Messages answer (`POST /v1/messages`, non-streamed).
async fn answer(State(m): State<Mock>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 24)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    m.seen.lock().unwrap().push(body.clone());
    let act = m.acts.lock().unwrap().pop_front();
    let text = match act {
        _ if path != "/v1/messages" => return status(404),
        Some(Act::Reply(f)) => f(&body),
        Some(Act::Hang) => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        None => return status(500),
    };
    let v = json!({"id": "msg_mock", "type": "message", "role": "assistant",
        "model": body["model"], "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5}});
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

pub fn status(code: u16) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"type": "error", "error": {"type": "api_error", "message": "mock"}}).to_string(),
        ))
        .unwrap()
}
