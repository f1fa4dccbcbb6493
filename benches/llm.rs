//! LLM gateway overhead: `cargo bench --bench llm` (release build; results in bench/README.md).
//!
//! Starts, in this process, a mock OpenAI-format upstream (a fixed small chat completion with
//! usage) and a real architect server whose gateway chain is that one provider (cost ledger on,
//! as always). Then it drives a fixed request rate (open loop: each request is scheduled at its
//! own time and its latency counts from that time, so a stalled server cannot hide queueing)
//! of non-streaming `POST /v1/chat/completions` against:
//!
//! * `direct` — the mock upstream itself;
//! * `gateway` — architect's `/v1/chat/completions` (token auth, budget check, provider call,
//!   usage, pricing, ledger row);
//! * `litellm` — when `LITELLM_URL` is set: a LiteLLM proxy configured with the same mock as its
//!   upstream (`LITELLM_KEY` is its master key).
//!
//! Settings: `LLM_BENCH_RATE` (req/s, default 1000), `LLM_BENCH_SECS` (default 10),
//! `LLM_BENCH_MOCK_PORT` (default: any free port; fix it to point LiteLLM at the mock),
//! `LITELLM_RATE` (default: the same rate).

use clap::Parser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn mock_upstream(port: u16) -> anyhow::Result<String> {
    let body = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the bench upstream."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    })
    .to_string();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

async fn token(url: &str, password: &str) -> anyhow::Result<String> {
    architect::client::login_and_create_token(url, "architect", password, "bench caller", "agent")
        .await
}

struct Run {
    ok: usize,
    errors: usize,
    /// Microseconds, sorted.
    lat: Vec<u64>,
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

/// Open-loop load at `rate` req/s for `secs` seconds (after a 1 s warm-up that is not counted).
async fn drive(url: &str, bearer: Option<&str>, rate: u64, secs: u64) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]});
    let warm = rate;
    let total = rate * secs + warm;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<u64>>();
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        let http = http.clone();
        let body = body.clone();
        let url = url.to_owned();
        let bearer = bearer.map(str::to_owned);
        let tx = tx.clone();
        let counted = i >= warm;
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let mut rb = http.post(&url).json(&body);
            if let Some(b) = bearer {
                rb = rb.bearer_auth(b);
            }
            let ok = match rb.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            let took = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
            if counted {
                let _ = tx.send(ok.then_some(took));
            }
        });
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    drop(tx);
    let mut run = Run {
        ok: 0,
        errors: 0,
        lat: Vec::new(),
    };
    while let Some(r) = rx.recv().await {
        match r {
            Some(us) => {
                run.ok += 1;
                run.lat.push(us);
            }
            None => run.errors += 1,
        }
    }
    run.lat.sort_unstable();
    run
}

fn report(name: &str, rate: u64, r: &Run) {
    println!(
        "{name:<8} {rate:>5} req/s  ok {:>6}  errors {:>5}  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms",
        r.ok,
        r.errors,
        pct(&r.lat, 0.50),
        pct(&r.lat, 0.90),
        pct(&r.lat, 0.99),
        r.lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate: u64 = env("LLM_BENCH_RATE", 1000);
    let secs: u64 = env("LLM_BENCH_SECS", 10);
    let mock = mock_upstream(env("LLM_BENCH_MOCK_PORT", 0)).await?;
    let dir = tempfile::tempdir()?;
    let password = "bench-password-123";
    let data_dir = dir.path().display().to_string();
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
        "--llm-chain",
        "openai",
        "--llm-default-provider",
        "openai",
        "--openai-api-key",
        "sk-bench",
        "--llm-openai-base-url",
        &mock,
    ])?
    .config;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);
    let caller = token(&url, password).await?;
    println!(
        "LLM gateway overhead: {} CPUs, upstream mock {mock}, {secs} s per run after 1 s warm-up, non-streaming",
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1)
    );
    let direct_url = format!("{mock}/v1/chat/completions");
    let gateway_url = format!("{url}/v1/chat/completions");
    let mut gateway_requests = 0;
    for round in 1..=2 {
        println!("round {round}");
        let d = drive(&direct_url, None, rate, secs).await;
        report("direct", rate, &d);
        let g = drive(&gateway_url, Some(&caller), rate, secs).await;
        report("gateway", rate, &g);
        gateway_requests += (rate * (secs + 1)) as usize;
        println!(
            "         gateway overhead: p50 {:+.3} ms, p90 {:+.3} ms, p99 {:+.3} ms",
            pct(&g.lat, 0.5) - pct(&d.lat, 0.5),
            pct(&g.lat, 0.9) - pct(&d.lat, 0.9),
            pct(&g.lat, 0.99) - pct(&d.lat, 0.99)
        );
    }
    if let Ok(lite) = std::env::var("LITELLM_URL") {
        let key = std::env::var("LITELLM_KEY").ok();
        let lrate: u64 = env("LITELLM_RATE", rate);
        let l = drive(
            &format!("{}/v1/chat/completions", lite.trim_end_matches('/')),
            key.as_deref(),
            lrate,
            secs,
        )
        .await;
        report("litellm", lrate, &l);
        if lrate != rate {
            let d = drive(&direct_url, None, lrate, secs).await;
            report("direct", lrate, &d);
            let g = drive(&gateway_url, Some(&caller), lrate, secs).await;
            report("gateway", lrate, &g);
            gateway_requests += (lrate * (secs + 1)) as usize;
        }
    }
    // The ledger was on: every gateway request has its row (flushed by the summary call).
    let http = reqwest::Client::new();
    let s: Value = http
        .get(format!("{url}/api/llm-metrics/summary"))
        .bearer_auth(&caller)
        .send()
        .await?
        .json()
        .await?;
    println!(
        "ledger rows: {} (gateway requests sent: {gateway_requests}), recorded cost ${:.6}",
        s["total_requests"],
        s["total_cost"].as_f64().unwrap_or(0.0)
    );
    let t = Instant::now();
    server.shutdown().await?;
    println!(
        "shutdown (ledger drained) in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
