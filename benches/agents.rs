//! Assigner dispatch latency: `cargo bench --bench agents` (results in bench/README.md).
//!
//! Starts a real server in-process (private tmux socket, temporary SQLite), launches the fake
//! agent (`tests/fixtures/agents/fake_agent.py`, Claude-like screens) through
//! `POST /api/agents/sessions`, then N times: queue a prompt with `POST /api/assigner/send` and
//! time until the agent has received it (its log file gains the line: typed and submitted),
//! then wait for the prompt to complete before the next. Reports p50 / p90 / max.
//! `AGENTS_BENCH_N` sets N (default 30).

use clap::Parser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

struct KillTmux(String);
impl Drop for KillTmux {
    fn drop(&mut self) {
        architect::tmux::Tmux::new(Some(&self.0)).kill_server_blocking();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("AGENTS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir()?;
    let socket = format!("arch-bench-{:x}", rand::random::<u64>());
    let _guard = KillTmux(socket.clone());
    let password = "bench-password-123";
    let data_dir = dir.path().join("data").display().to_string();
    let config = Serve::try_parse_from([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        &data_dir,
        "--admin-password",
        password,
        "--tmux-socket",
        &socket,
    ])?
    .config;
    let interval = config.agents.dispatch_interval_ms;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let login: Value = http
        .post(format!("{url}/login"))
        .json(&json!({"username": "architect", "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let csrf = login["csrf_token"].as_str().unwrap_or_default().to_string();
    let post = |path: &str, body: Value| {
        http.post(format!("{url}{path}"))
            .header("X-CSRF-Token", &csrf)
            .json(&body)
    };
    let log = dir.path().join("prompts.jsonl");
    let fake = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/agents/fake_agent.py");
    post(
        "/api/agents/sessions",
        json!({"name": "bench", "agent": "claude", "program": fake.display().to_string(),
               "env": {"FAKE_AGENT_LOG": log.display().to_string()}}),
    )
    .send()
    .await?
    .error_for_status()?;
    let lines = || {
        std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let deadline = Duration::from_secs(30);
    let mut samples = Vec::new();
    println!("assigner dispatch latency: fake agent in tmux, dispatch interval {interval} ms, {n} prompts");
    for i in 0..n {
        // Wait until the session reads idle (the previous prompt completed).
        let t_wait = Instant::now();
        loop {
            let r: Value = http
                .get(format!("{url}/api/assigner/status"))
                .send()
                .await?
                .json()
                .await?;
            if r["active"].as_array().is_some_and(|a| a.is_empty()) {
                break;
            }
            anyhow::ensure!(t_wait.elapsed() < deadline, "prompt {i} never completed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = lines();
        let t0 = Instant::now();
        post(
            "/api/assigner/send",
            json!({"content": format!("bench prompt {i}")}),
        )
        .send()
        .await?
        .error_for_status()?;
        while lines() == before {
            anyhow::ensure!(t0.elapsed() < deadline, "prompt {i} never arrived");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(t0.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "  queued -> received by the agent: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.9).as_secs_f64() * 1000.0,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    server.shutdown().await?;
    Ok(())
}
