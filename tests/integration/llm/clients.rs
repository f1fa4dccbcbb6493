//! Real clients against the gateway: the `anthropic` and `openai` Python SDKs (PyPI, pinned in
//! tests/requirements.txt) and the real Claude Code CLI (`claude -p`, pinned, installed into
//! `.agent-clis/` by `.ci/run`) with `tests/fixtures/mock_llm.py` (a copy of
//! ../shared/agents/mock_llm.py) as the upstream Anthropic API.
//!
//! A missing dependency skips the test with the reason printed, except under `CI`, where it
//! fails: a CI image without Python or the CLI cannot hide these tests.

use super::mock::Act;
use super::{new_token, rig, rig_with, Rig};
use crate::support::{RealCli, Session};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// True when `what` is available; otherwise fails with the install line (or skips when the
/// person opted out, see `support::prerequisite`).
fn available(ok: bool, what: &str) -> bool {
    crate::support::prerequisite(ok, what, "python3 -m pip install -r tests/requirements.txt")
}

fn python_sdks() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import anthropic, openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    available(
        ok,
        "python3 with the anthropic and openai packages (pip install -r tests/requirements.txt)",
    )
}

/// Runs a Python snippet with URL and TOKEN in its environment; returns stdout.
async fn python(script: &str, url: &str, token: &str) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-c", script])
        .env("URL", url)
        .env("TOKEN", token)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("OPENAI_BASE_URL");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("python finished")
        .expect("python ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ANTHROPIC_SDK: &str = r#"
import os, anthropic
c = anthropic.Anthropic(base_url=os.environ["URL"], api_key=os.environ["TOKEN"], max_retries=0)
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=50, system="Be brief.",
                      messages=[{"role": "user", "content": "Say hello"}])
print("create:", m.content[0].text, m.stop_reason, m.usage.input_tokens, m.usage.output_tokens)
with c.messages.stream(model="claude-sonnet-4-5", max_tokens=50,
                       messages=[{"role": "user", "content": "Say hello"}]) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
print("stream:", text, final.stop_reason, final.usage.output_tokens)
m = c.messages.create(model="claude-sonnet-4-5", max_tokens=50,
                      tools=[{"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                      messages=[{"role": "user", "content": "Weather in Paris?"}])
tool = [b for b in m.content if b.type == "tool_use"][0]
print("tool:", tool.name, tool.input["city"], m.stop_reason)
try:
    c.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[])
except anthropic.BadRequestError as e:
    print("bad request:", e.status_code)
"#;

const OPENAI_SDK: &str = r#"
import os, json, openai
c = openai.OpenAI(base_url=os.environ["URL"] + "/v1", api_key=os.environ["TOKEN"], max_retries=0)
r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}])
print("create:", r.choices[0].message.content, r.choices[0].finish_reason, r.usage.prompt_tokens)
s = c.chat.completions.create(model="gpt-4o", stream=True, stream_options={"include_usage": True},
                              messages=[{"role": "user", "content": "Say hello"}])
text, usage = "", None
for chunk in s:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage.total_tokens
print("stream:", text, usage)
r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Weather in Paris?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
call = r.choices[0].message.tool_calls[0]
print("tool:", call.function.name, json.loads(call.function.arguments)["city"], r.choices[0].finish_reason)
try:
    c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
except openai.RateLimitError as e:
    print("refused:", e.status_code, e.body.get("code") if isinstance(e.body, dict) else e.body)
"#;

#[tokio::test]
async fn the_anthropic_python_sdk_works_against_the_gateway_even_when_openai_serves() {
    if !python_sdks() {
        return;
    }
    // Claude answers the first call; then it fails and OpenAI serves (translated).
    let rig = rig("claude,openai").await;
    rig.claude
        .push(&[Act::Ok, Act::Status(500, None), Act::Status(500, None)]);
    rig.openai.push(&[Act::Ok, Act::ToolCall]);
    let (ok, out, err) = python(ANTHROPIC_SDK, &rig.server.url, &rig.token).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("create: Hello from claude end_turn 10 5"),
        "{out}"
    );
    assert!(
        out.contains("stream: Hello from openai end_turn 5"),
        "{out}"
    );
    assert!(out.contains("tool: get_weather Paris tool_use"), "{out}");
    assert!(out.contains("bad request: 400"), "{out}");
}

#[tokio::test]
async fn the_openai_python_sdk_works_against_the_gateway_when_claude_serves() {
    if !python_sdks() {
        return;
    }
    let rig = rig("claude").await;
    rig.claude.push(&[Act::Ok, Act::Ok, Act::ToolCall]);
    // The fourth call hits a spent budget.
    let r = rig.caller().post_json("/api/llm/budgets", &serde_json::json!({"scope": "token", "target": rig.token_id.to_string(), "period": "day", "limit_usd": 0.0003})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (ok, out, err) = python(OPENAI_SDK, &rig.server.url, &rig.token).await;
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("create: Hello from claude stop 10"), "{out}");
    assert!(out.contains("stream: Hello from claude 15"), "{out}");
    assert!(out.contains("tool: get_weather Paris tool_calls"), "{out}");
    assert!(out.contains("refused: 429 budget_exceeded"), "{out}");
}

#[tokio::test]
async fn claude_code_runs_through_the_gateway() {
    let Some(cli) = RealCli::start("claude").await else {
        return;
    };
    let url = cli.mock_url();
    let rig: Rig = rig_with("claude", |c| {
        c.anthropic_base_url = url;
        c.request_timeout_secs = 30;
        c.stream_idle_timeout_secs = 30;
    })
    .await;
    let (token, token_id) = new_token(&rig.server, "agent", "claude code session").await;
    // The caller's key is an architect token: Claude Code must not ask about it.
    cli.approve_api_key(&token);
    let mut cmd = tokio::process::Command::new(&cli.bin);
    cmd.args(["-p", "hello"])
        .current_dir(&cli.work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // HOME and what Claude Code needs offline, as a session gets them.
    for (k, v) in cli.session_env().as_object().unwrap() {
        cmd.env(k, v.as_str().unwrap());
    }
    cmd.env("ANTHROPIC_BASE_URL", &rig.server.url)
        .env("ANTHROPIC_API_KEY", &token)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("claude -p finished in time")
        .expect("claude ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "claude -p failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("Hello from the mock LLM"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // The upstream saw the provider key, never the caller's token.
    let reqs: Vec<Value> = cli
        .mock
        .requests()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!reqs.is_empty());
    let logged = serde_json::to_string(&reqs).unwrap();
    assert!(
        !logged.contains(&token),
        "the caller's token reached the upstream"
    );
    // Recorded centrally, attributed to the agent's token, priced from reported usage.
    let s = Session::new(&rig.server.url, Some(rig.token.clone()));
    let costs = s.get("/api/llm-metrics/costs?by=caller").await;
    let row = costs
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == format!("architect (token {token_id})").as_str())
        .cloned()
        .expect("the agent's token has a row");
    assert!(row["requests"].as_i64().unwrap() >= 1);
    assert!(row["cost_nanos"].as_i64().unwrap() > 0);
    assert_eq!(row["estimated"], 0, "{row}");
}
