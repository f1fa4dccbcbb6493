//! Task-queue benchmark: `cargo bench --bench tasks` (release build; results in bench/README.md).
//!
//! Starts a real server in-process on a temporary SQLite database, then over real HTTP with the
//! shared client:
//!
//! 1. throughput — W workers (8, then 1 for scale) drain a queue of no-op tasks; reports
//!    tasks/s end to end and the process's CPU time per task (client and server together).
//!    Hand-written workers run each protocol mode (plain claim + complete; complete + `next`;
//!    `max_tasks` 10 with a request per completion; `max_tasks` 10 with one batched
//!    `POST /api/tasks/complete` + `next` per 10 tasks), then the real worker runtime
//!    (`tasks::runner::Worker`, what `architect worker` runs) with a registered no-op handler,
//!    1 and 10 slots per worker;
//! 2. latency — one idle worker waits in a long-poll claim; a task is enqueued; reports the time
//!    from just before the enqueue request to the worker holding the claimed task (p50, p99).
//!
//! `TASKS_BENCH_N` sets the queue length for the throughput runs (default 20000).
//!
//! `TASKS_BENCH_REPLICAS=1` runs the replica comparison instead (issue 15): tasks/s (8 workers,
//! claim then complete + next) and error events/s (16 concurrent reporters) on SQLite, on
//! PostgreSQL with one `serve`, and on PostgreSQL with two `serve` replicas sharing the
//! database (the workers and reporters split between them), side by side in one run. The
//! servers run in this process (the real server code, one runtime), PostgreSQL in a private
//! cluster (`scripts/pg-cluster`, durability on: `fsync`, `synchronous_commit`). After each
//! set-up's load, every replica's `GET /api/tasks/counts` is timed and checked against a direct
//! `GROUP BY` over the queue.
//!
//! `TASKS_BENCH_COUNTS_AB=R` (with `TASKS_BENCH_REPLICAS=1`) runs each set-up 2R times, half
//! of them on a database whose task-count triggers (migration 0021) were dropped, the order
//! alternating by round (R = 2: with, without, without, with): the triggers' cost on claims
//! and completions, side by side in one run.
//!
//! `TASKS_BENCH_PG_PROFILE=1` loads `pg_stat_statements` into the cluster and prints, after
//! each PostgreSQL set-up's drain, the statements that took the server's time (calls, total and
//! mean execution time, buffers touched per call, over the drain alone). `TASKS_BENCH_PG_OPTS` adds server settings
//! (e.g. `-c synchronous_commit=off`).

use architect::client::Client;
use architect::tasks::runner::{Worker, WorkerOptions};
use architect::tasks::{
    ClaimRequest, CompleteBatch, CompleteRequest, CompletedTask, NewTask, RegisterWorker,
};
use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

async fn tokens(url: &str, password: &str) -> anyhow::Result<(String, String)> {
    let login = architect::client::Login::new(url, "architect", password).await?;
    let admin = login.create_token("bench admin", "admin", None).await?;
    let worker = login.create_token("bench worker", "worker", None).await?;
    login.logout().await;
    Ok((admin.token, worker.token))
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

/// How a hand-written bench worker talks to the queue.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// claim one, complete it: two requests per task.
    Plain,
    /// claim one, then each completion leases the next (`next`): one request per task.
    Chain,
    /// claim up to 10 (`max_tasks`), complete each by its own request.
    ClaimTen,
    /// claim up to 10, complete them together in one `POST /api/tasks/complete` that leases
    /// the next 10 (`next.max_tasks`): one request per 10 tasks.
    BatchTen,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain claim + complete",
            Mode::Chain => "claim, then complete + next",
            Mode::ClaimTen => "max_tasks 10 + complete each",
            Mode::BatchTen => "max_tasks 10 + batched complete + next",
        }
    }
}

/// W workers drain the queue in `mode`, worker k talking to `urls[k % len]`. Returns (tasks,
/// seconds).
async fn drain(
    urls: &[&str],
    token: &str,
    workers: usize,
    mode: Mode,
) -> anyhow::Result<(u64, f64)> {
    let batch: i64 = if matches!(mode, Mode::ClaimTen | Mode::BatchTen) {
        10
    } else {
        1
    };
    let chain = mode == Mode::Chain;
    let mut ids = Vec::new();
    for n in 0..workers {
        let c = Client::new(urls[n % urls.len()], Some(token));
        ids.push((
            register(&c, &format!("bench-{workers}-{}-{n}", mode.label())).await?,
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
                if mode == Mode::BatchTen {
                    let results = held
                        .drain(..)
                        .map(|t: architect::tasks::ClaimedTask| CompletedTask {
                            id: t.task.id,
                            lease_token: t.lease_token,
                            ..CompletedTask::default()
                        })
                        .collect::<Vec<_>>();
                    done += results.len() as u64;
                    let outcome = c
                        .complete_tasks(&CompleteBatch {
                            results,
                            next: Some(ClaimRequest {
                                max_tasks: Some(batch),
                                ..claim.clone()
                            }),
                        })
                        .await?;
                    anyhow::ensure!(outcome.refused.is_empty(), "refused: {:?}", outcome.refused);
                    held.extend(outcome.next);
                    continue;
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

/// W real worker runtimes (the library's [`Worker`], what `architect worker` runs) with a no-op
/// handler registered for `noop`, `concurrency` slots each, until the queue is empty. Returns
/// (tasks, seconds).
async fn drain_runtime(
    url: &str,
    token: &str,
    workers: usize,
    concurrency: usize,
    n: usize,
) -> anyhow::Result<(u64, f64)> {
    let ran = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    let mut jobs = Vec::new();
    for k in 0..workers {
        let mut options = WorkerOptions::new(url, token);
        options.name = format!("bench-runtime-{workers}x{concurrency}-{k}");
        options.node = "bench".into();
        options.types = Some(vec!["noop".into()]);
        options.concurrency = concurrency;
        options.wait_s = 1.0;
        let mut worker = Worker::new(options);
        let (on_ran, on_done) = (ran.clone(), all_done.clone());
        worker.register_handler("noop", move |_task| {
            let (ran, all_done) = (on_ran.clone(), on_done.clone());
            async move {
                if ran.fetch_add(1, Ordering::SeqCst) + 1 >= n as u64 {
                    all_done.notify_waiters();
                }
                Ok(serde_json::Value::Null.into())
            }
        });
        let (ran, all_done) = (ran.clone(), all_done.clone());
        jobs.push(tokio::spawn(worker.run_until(async move {
            while ran.load(Ordering::SeqCst) < n as u64 {
                let woken = all_done.notified();
                if ran.load(Ordering::SeqCst) >= n as u64 {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), woken).await;
            }
        })));
    }
    let mut completed = 0;
    for j in jobs {
        completed += j.await??.completed;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((completed, secs))
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

/// CPU time this process (client and server together) has used so far, in seconds, from
/// `/proc/self/stat` (utime + stime, clock ticks of 10 ms). Throughput on a shared machine
/// swings with the neighbours' load; CPU per task does much less, and on 2 cores the ceiling is
/// about `2 / cpu_per_task`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(v: &[u128], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

/// `reporters` concurrent clients post `n` error events in all, reporter k to
/// `urls[k % len]`; each event is one request, of one of 20 error types. Returns events/s
/// and how many answers were 503s (sent again).
async fn ingest(
    urls: &[&str],
    token: &str,
    reporters: usize,
    n: usize,
) -> anyhow::Result<(f64, u64)> {
    let http = reqwest::Client::new();
    let per = n.div_ceil(reporters);
    let start = Instant::now();
    let mut jobs = Vec::new();
    for k in 0..reporters {
        let (http, url, token) = (
            http.clone(),
            urls[k % urls.len()].to_string(),
            token.to_string(),
        );
        jobs.push(tokio::spawn(async move {
            let mut refused = 0u64;
            for i in 0..per {
                loop {
                    let r = http
                        .post(format!("{url}/api/errors"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({
                            "node_id": format!("bench-{k}"),
                            "error_type": format!("BenchError{}", i % 20),
                            "message": format!("request {i} failed"),
                            "source": "bench",
                        }))
                        .send()
                        .await?;
                    let status = r.status();
                    if status == 201 {
                        break;
                    }
                    // A 503 (queue full, a write that failed) asks the reporter to come back,
                    // as an SDK does; counted, and the event is sent again.
                    let body = r.text().await.unwrap_or_default();
                    anyhow::ensure!(status == 503, "ingest answered {status}: {body}");
                    refused += 1;
                    if refused <= 3 {
                        eprintln!("ingest answered 503 (sent again): {body}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            anyhow::Ok(refused)
        }));
    }
    let mut refused = 0;
    for j in jobs {
        refused += j.await??;
    }
    Ok((
        (per * reporters) as f64 / start.elapsed().as_secs_f64(),
        refused,
    ))
}

/// A private PostgreSQL cluster for the replica comparison; stopped when dropped.
struct PgCluster {
    dir: tempfile::TempDir,
    url: String,
}

impl PgCluster {
    fn start() -> anyhow::Result<PgCluster> {
        let dir = tempfile::tempdir()?;
        let out =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
                .arg("start")
                .arg(dir.path())
                .env("PG_CLUSTER_OPTS", {
                    let mut opts =
                        "-c fsync=on -c synchronous_commit=on -c max_connections=200".to_string();
                    if profiling() {
                        opts.push_str(" -c shared_preload_libraries=pg_stat_statements");
                    }
                    // More server settings, last so they win (e.g. `-c synchronous_commit=off`,
                    // SQLite's durability under WAL + `synchronous = NORMAL`).
                    if let Ok(more) = std::env::var("TASKS_BENCH_PG_OPTS") {
                        opts.push(' ');
                        opts.push_str(&more);
                    }
                    opts
                })
                .output()?;
        anyhow::ensure!(
            out.status.success(),
            "scripts/pg-cluster start failed (apt-get install -y postgresql): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(PgCluster { dir, url })
    }

    async fn create(&self, name: &str) -> anyhow::Result<String> {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(self.url.replace("/postgres?", &format!("/{name}?")))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster"))
                .arg("stop")
                .arg(self.dir.path())
                .output();
    }
}

fn profiling() -> bool {
    std::env::var("TASKS_BENCH_PG_PROFILE").is_ok_and(|v| v == "1")
}

/// `TASKS_BENCH_PG_PROFILE=1`: forgets the statement statistics (before a drain).
async fn profile_reset(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut c)
        .await?;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(())
}

/// `TASKS_BENCH_PG_PROFILE=1`: the statements that took the server's time since the reset.
async fn profile_print(url: &str, wall_s: f64) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await?;
    let rows: Vec<(i64, f64, f64, f64, String)> = sqlx::query_as(
        "SELECT calls, total_exec_time, mean_exec_time,
                (shared_blks_hit + shared_blks_read)::float8 / GREATEST(calls, 1),
                left(regexp_replace(query, '\\s+', ' ', 'g'), 110)
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC LIMIT 12",
    )
    .fetch_all(&mut c)
    .await?;
    let total: f64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(total_exec_time), 0) FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut c)
    .await?;
    println!(
        "    pg_stat_statements over the drain: {:.0} ms execution in all, {:.0} ms wall",
        total,
        wall_s * 1e3
    );
    for (calls, total, mean, blocks, query) in rows {
        println!(
            "      {calls:>7} calls {total:>8.0} ms (mean {mean:.3} ms, {blocks:.0} buffers)  {query}"
        );
    }
    c.close().await?;
    Ok(())
}

/// The A/B's "without": the database as it was before migration 0021's triggers.
async fn drop_count_triggers(db: &architect::db::Db) -> anyhow::Result<()> {
    let on = match architect::db::Backend::of_pool(db) {
        architect::db::Backend::Sqlite => "",
        architect::db::Backend::Postgres => " ON task_queue",
    };
    for t in ["insert", "update", "delete"] {
        sqlx::query(&format!("DROP TRIGGER task_status_counted_{t}{on}"))
            .execute(db)
            .await?;
    }
    Ok(())
}

/// Every replica's `GET /api/tasks/counts` (timed) against the direct `GROUP BY`.
async fn check_counts(db: &architect::db::Db, urls: &[String], token: &str) -> anyhow::Result<()> {
    let direct: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM task_queue GROUP BY status")
            .fetch_all(db)
            .await?;
    let http = reqwest::Client::new();
    for url in urls {
        let t = Instant::now();
        let answer: serde_json::Value = http
            .get(format!("{url}/api/tasks/counts"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let took = t.elapsed();
        for (status, n) in &direct {
            anyhow::ensure!(
                answer[status].as_i64() == Some(*n),
                "{url}: counts {answer} differ from the queue's {direct:?}"
            );
        }
        println!(
            "    GET /api/tasks/counts on {url}: {:.2} ms, equal to the GROUP BY ({direct:?})",
            took.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// SQLite, PostgreSQL with one `serve`, PostgreSQL with two: tasks/s and error events/s each.
async fn replicas(n: usize) -> anyhow::Result<()> {
    let events = n;
    let cluster = PgCluster::start()?;
    println!(
        "replica comparison: {} CPUs, {n} no-op tasks (8 workers, claim then complete + next), {events} error events (16 reporters)",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
    );
    let password = "bench-password-123";
    // TASKS_BENCH_COUNTS_AB=R: R rounds of with / without the count triggers, the order
    // alternating by round (R = 2 is A B B A), so neither side always runs first.
    let rounds: usize = std::env::var("TASKS_BENCH_COUNTS_AB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut setups: Vec<(&str, Option<&str>, usize, bool, usize)> = Vec::new();
    for (label, database, count) in [
        ("SQLite, 1 server", None, 1),
        ("PostgreSQL, 1 replica", Some("bench_one"), 1),
        ("PostgreSQL, 2 replicas", Some("bench_two"), 2),
    ] {
        if rounds == 0 {
            setups.push((label, database, count, true, 0));
        }
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for counted in order {
                setups.push((label, database, count, counted, round));
            }
        }
    }
    for (label, database, count, counted, round) in setups {
        let database = match database {
            Some(name) => {
                let name = format!(
                    "{name}_{}_{round}",
                    if counted { "counted" } else { "uncounted" }
                );
                Some(cluster.create(&name).await?)
            }
            None => None,
        };
        let dirs: Vec<tempfile::TempDir> = (0..count)
            .map(|_| tempfile::tempdir())
            .collect::<Result<_, _>>()?;
        let mut servers = Vec::new();
        for d in &dirs {
            let data_dir = d.path().display().to_string();
            let mut config = Serve::try_parse_from([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                &data_dir,
                "--admin-password",
                password,
                "--errors-rate-per-source",
                "0",
                "--errors-rate-per-address",
                "0",
                "--local-node",
                "false",
            ])?
            .config;
            config.database_url = database.as_deref().map(|u| u.parse()).transpose()?;
            // Replicas share the key that signs tokens.
            config.secret_key = Some("bench-replica-secret-key-0123456789".into());
            servers.push(architect::serve::start(config, architect::clock::Clock::System).await?);
        }
        let urls: Vec<String> = servers
            .iter()
            .map(|s| format!("http://{}", s.addr))
            .collect();
        let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let db = servers[0].state.db.clone();
        if !counted {
            drop_count_triggers(&db).await?;
        }
        let (admin_token, worker_token) = tokens(&urls[0], password).await?;
        let admin = Client::new(&urls[0], Some(&admin_token));
        enqueue_many(&admin, n).await?;
        let profiled = database.as_deref().filter(|_| profiling());
        if let Some(url) = profiled {
            profile_reset(url).await?;
        }
        let cpu0 = cpu_seconds();
        let (done, secs) = drain(&url_refs, &worker_token, 8, Mode::Chain).await?;
        let cpu_us = (cpu_seconds() - cpu0) * 1e6 / done.max(1) as f64;
        if let Some(url) = profiled {
            profile_print(url, secs).await?;
        }
        let (per_s, refused) = ingest(&url_refs, &admin_token, 16, events).await?;
        let label = if counted {
            label.to_string()
        } else {
            format!("{label}, count triggers dropped")
        };
        println!(
            "  {label}: {:.0} tasks/s ({done} in {secs:.2} s, {cpu_us:.0} µs CPU/task), {per_s:.0} error events/s ({refused} answers 503, sent again)",
            done as f64 / secs
        );
        if counted {
            check_counts(&db, &urls, &admin_token).await?;
        }
        for s in servers {
            s.shutdown().await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("TASKS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    if std::env::var("TASKS_BENCH_REPLICAS").is_ok_and(|v| v == "1") {
        return replicas(n).await;
    }
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
    // The load (8 workers) in each protocol mode, then the worker runtime itself, then
    // one worker for scale. `None` mode: the runtime with that many slots per worker.
    let runs: [(usize, Option<Mode>, usize); 9] = [
        (8, Some(Mode::Plain), 1),
        (8, Some(Mode::Chain), 1),
        (8, Some(Mode::ClaimTen), 1),
        (8, Some(Mode::BatchTen), 1),
        (8, None, 1),
        (8, None, 10),
        (1, Some(Mode::Plain), 1),
        (1, Some(Mode::Chain), 1),
        (1, None, 1),
    ];
    for (workers, mode, concurrency) in runs {
        let t0 = Instant::now();
        enqueue_many(&admin, n).await?;
        let enq = t0.elapsed().as_secs_f64();
        let cpu0 = cpu_seconds();
        let (done, secs) = match mode {
            Some(mode) => drain(&[&url], &worker_token, workers, mode).await?,
            None => drain_runtime(&url, &worker_token, workers, concurrency, n).await?,
        };
        let cpu_us = (cpu_seconds() - cpu0) * 1e6 / done.max(1) as f64;
        let how = match mode {
            Some(m) => m.label().to_string(),
            None => format!("worker runtime, concurrency {concurrency}"),
        };
        println!(
            "  {workers} worker(s), {how}: {done} tasks in {secs:.2} s = {:.0} tasks/s, {cpu_us:.0} µs CPU/task  (enqueue: {:.0} tasks/s)",
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
