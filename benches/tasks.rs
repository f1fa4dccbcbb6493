//! Task-queue benchmark: `cargo bench --bench tasks` (release build; results in bench/README.md).
//!
//! Starts a real server in-process on a temporary SQLite database, then over real HTTP with the
//! shared client:
//!
//! 1. throughput — W workers (8, then 1 for scale) each loop claim + complete on a queue of
//!    no-op tasks until it is empty; reports tasks/s end to end; the 8-worker run is repeated
//!    with batched claims (`max_tasks` 10, each task still completed by its own request);
//! 2. latency — one idle worker waits in a long-poll claim; a task is enqueued; reports the time
//!    from just before the enqueue request to the worker holding the claimed task (p50, p99).
//!
//! `TASKS_BENCH_N` sets the queue length for the throughput runs (default 20000).

use architect::client::Client;
use architect::tasks::{ClaimRequest, CompleteRequest, NewTask, RegisterWorker};
use clap::Parser;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

async fn tokens(url: &str, password: &str) -> anyhow::Result<(String, String)> {
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
    let mut out = Vec::new();
    for scope in ["admin", "worker"] {
        let t: Value = http
            .post(format!("{url}/api/tokens"))
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"name": format!("bench {scope}"), "scope": scope}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        out.push(t["token"].as_str().unwrap_or_default().to_string());
    }
    Ok((out[0].clone(), out[1].clone()))
}

async fn enqueue_many(admin: &Client, n: usize) -> anyhow::Result<()> {
    let per = n.div_ceil(8);
    let mut jobs = Vec::new();
    for k in 0..8 {
        let c = admin.clone();
        let count = per.min(n.saturating_sub(k * per));
        jobs.push(tokio::spawn(async move {
            for _ in 0..count {
                c.create_task(&NewTask {
                    task_type: "noop".into(),
                    ..NewTask::default()
                })
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for j in jobs {
        j.await??;
    }
    Ok(())
}

async fn register(c: &Client, name: &str) -> anyhow::Result<i64> {
    Ok(c.register_worker(&RegisterWorker {
        name: name.into(),
        node: "bench".into(),
        types: vec!["noop".into()],
        concurrency: 1,
        ..RegisterWorker::default()
    })
    .await?
    .id)
}

/// W workers drain the queue, each claiming up to `batch` tasks per claim (`max_tasks`; 1 = a
/// plain claim) and completing them one by one; with `chain`, each completion also leases the
/// worker's next task (`next`, as the worker runtime does), so a task costs one request.
/// Returns (tasks, seconds).
async fn drain(
    url: &str,
    token: &str,
    workers: usize,
    batch: i64,
    chain: bool,
) -> anyhow::Result<(u64, f64)> {
    let mut ids = Vec::new();
    for n in 0..workers {
        let c = Client::new(url, Some(token));
        ids.push((
            register(&c, &format!("bench-{workers}-{batch}-{chain}-{n}")).await?,
            c,
        ));
    }
    let start = Instant::now();
    let mut jobs = Vec::new();
    for (id, c) in ids {
        jobs.push(tokio::spawn(async move {
            // Named like the worker runtime does (src/tasks/runner.rs).
            let claim = ClaimRequest {
                worker_id: id,
                types: Some(vec!["noop".into()]),
                tags: Some(Vec::new()),
                ..ClaimRequest::default()
            };
            let mut done = 0u64;
            let mut held = std::collections::VecDeque::new();
            loop {
                if held.is_empty() {
                    let claimed = c
                        .claim_task(&ClaimRequest {
                            max_tasks: (batch > 1).then_some(batch),
                            ..claim.clone()
                        })
                        .await?
                        .into_tasks();
                    if claimed.is_empty() {
                        break;
                    }
                    held.extend(claimed);
                }
                while let Some(t) = held.pop_front() {
                    let outcome = c
                        .complete_task(
                            t.task.id,
                            &CompleteRequest {
                                lease_token: t.lease_token,
                                next: chain.then(|| claim.clone()),
                                ..CompleteRequest::default()
                            },
                        )
                        .await?;
                    held.extend(outcome.next);
                    done += 1;
                }
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for j in jobs {
        total += j.await??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}

/// Enqueue-to-claim latency of an idle long-polling worker, in microseconds, sorted.
async fn latency(
    url: &str,
    admin: &Client,
    token: &str,
    samples: usize,
) -> anyhow::Result<Vec<u128>> {
    let c = Client::new(url, Some(token));
    let id = register(&c, "bench-latency").await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(1);
    let worker = tokio::spawn(async move {
        for _ in 0..samples {
            let got = c
                .claim_task(&ClaimRequest {
                    worker_id: id,
                    wait_s: Some(30.0),
                    ..ClaimRequest::default()
                })
                .await?;
            let at = Instant::now();
            let Some(t) = got.task else {
                anyhow::bail!("long-poll returned empty")
            };
            tx.send(at).await?;
            c.complete_task(
                t.task.id,
                &CompleteRequest {
                    lease_token: t.lease_token,
                    ..CompleteRequest::default()
                },
            )
            .await?;
        }
        anyhow::Ok(())
    });
    let mut out = Vec::new();
    for _ in 0..samples {
        // Let the worker get back into its long-poll wait before the next enqueue.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        admin
            .create_task(&NewTask {
                task_type: "noop".into(),
                ..NewTask::default()
            })
            .await?;
        let claimed = rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("worker ended"))?;
        out.push((claimed - sent).as_micros());
    }
    worker.await??;
    out.sort_unstable();
    Ok(out)
}

fn pct(v: &[u128], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("TASKS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
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
    ])?
    .config;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);
    let (admin_token, worker_token) = tokens(&url, password).await?;
    let admin = Client::new(&url, Some(&admin_token));
    println!(
        "task queue benchmark: SQLite (WAL), {} CPUs, {n} no-op tasks per run",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
    );
    // (workers, tasks per claim, completion leases the next): the load with plain
    // claims, the same as the worker runtime runs it (each completion leases the next task),
    // batched claims, and one worker of each kind for scale.
    for (workers, batch, chain) in [
        (8usize, 1i64, false),
        (8, 1, true),
        (8, 10, false),
        (1, 1, false),
        (1, 1, true),
    ] {
        let t0 = Instant::now();
        enqueue_many(&admin, n).await?;
        let enq = t0.elapsed().as_secs_f64();
        let (done, secs) = drain(&url, &worker_token, workers, batch, chain).await?;
        let how = if chain {
            "claim, then complete + next"
        } else if batch > 1 {
            "max_tasks 10 + complete each"
        } else {
            "plain claim + complete"
        };
        println!(
            "  {workers} worker(s), {how}: {done} tasks in {secs:.2} s = {:.0} tasks/s  (enqueue: {:.0} tasks/s)",
            done as f64 / secs,
            n as f64 / enq
        );
    }
    let lat = latency(&url, &admin, &worker_token, 300).await?;
    println!(
        "  enqueue → claimed by an idle long-polling worker ({} samples): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99)
    );
    server.shutdown().await?;
    Ok(())
}
