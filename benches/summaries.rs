//! Aggregates at history scale (issue 15 item 5): `cargo bench --bench summaries` (release
//! build; results in bench/README.md).
//!
//! For SQLite and then PostgreSQL (a private cluster, `scripts/pg-cluster`), in one run:
//!
//! 1. a database migrated up to, not including, 0017 (the roll-ups), and `SUMMARIES_ROWS`
//!    (default 5,000,000) ledger rows over 60 days generated inside the database by one
//!    `INSERT … SELECT` (20 agent tokens on 5 projects, mostly Claude with failovers to
//!    OpenAI, Ollama and Gemini, 1.5 % failed, a failover event per failed-over request);
//! 2. **before**: the statements the summaries ran over `llm_ledger` until 0017 (copied here),
//!    timed without HTTP — a floor for what the endpoints cost then;
//! 3. migration 0017 applied, timed (its backfill rolls up every row);
//! 4. **after**: a real server on that database, each endpoint timed over HTTP with a read
//!    token (the median of `SUMMARIES_REPS`, default 5, after one warm-up), all time and
//!    `days=7` (a window that starts inside an hour: its first hour comes from the ledger);
//! 5. the task counts over `SUMMARIES_TASKS` (default 5,000,000) finished tasks: without HTTP,
//!    the direct `GROUP BY` next to the counters of migration 0021 (alone, and with 50,000
//!    deltas not yet folded), then `GET /api/tasks/counts`; and an error group's detail (`GET /api/errors/{id}?hours=720`) with a
//!    histogram table of 2,000 groups × 30 days of hours (the default retention).
//!
//! `SUMMARIES_BACKENDS=sqlite` (or `postgres`) runs one backend; `SUMMARIES_BEFORE=0` skips
//! the old statements (minutes at 5 M rows).
//!
//! Without PostgreSQL's server binaries the PostgreSQL half fails with the line that installs
//! them.

use clap::Parser;
use std::path::Path;
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

const PASSWORD: &str = "bench-password-123";
const DAYS: i64 = 60;

/// The summaries' statements before the roll-ups (src/llm/store.rs until migration 0017).
const OLD_TOTALS: &str = "COUNT(*) AS requests,
    COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), 0) AS succeeded,
    COALESCE(SUM(CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END), 0) AS failed,
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS estimated,
    CAST(COALESCE(SUM(failovers), 0) AS BIGINT) AS failovers";

fn old_by(by: &str) -> String {
    let (key, order) = match by {
        "provider" => ("COALESCE(provider, '(none)')", "cost_nanos DESC, requests DESC, key"),
        "model" => ("CASE WHEN model = '' THEN '(none)' ELSE model END", "cost_nanos DESC, requests DESC, key"),
        "caller" => ("caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END", "cost_nanos DESC, requests DESC, key"),
        "project" => ("COALESCE(project, '(none)')", "cost_nanos DESC, requests DESC, key"),
        _ => ("substr(at, 1, 10)", "key"),
    };
    format!("SELECT {key} AS key, {OLD_TOTALS} FROM llm_ledger WHERE at >= $1 GROUP BY 1 ORDER BY {order} LIMIT 200")
}

/// Ledger rows `0..$1`, `at` = `$2` µs since the epoch + i × `$3` µs. `r` is a hash of `i`
/// (0..999) that picks provider, model and outcome.
const LEDGER_COLUMNS: &str = "INSERT INTO llm_ledger (at, provider, model, requested_model, format,
    caller_token_id, caller, project, input_tokens, output_tokens, cost_nanos, estimated, outcome,
    status, latency_ms, stream, failovers)";
const LEDGER_VALUES: &str = "
    CASE WHEN r < 900 THEN 'claude' WHEN r < 950 THEN 'openai' WHEN r < 980 THEN 'ollama'
         WHEN r < 985 THEN 'gemini' ELSE NULL END,
    CASE WHEN r < 900 THEN 'claude-sonnet-4-' || (i % 20 % 3) WHEN r < 950 THEN 'gpt-4o'
         WHEN r < 980 THEN 'llama3' WHEN r < 985 THEN 'gemini-2.5-flash' ELSE '' END,
    'claude-sonnet-4', 'anthropic', 1 + i % 20, 'agent-' || (i % 20),
    CASE WHEN i % 20 IN (0, 7) THEN NULL ELSE 'project-' || (i % 20 % 5) END,
    100 + i % 5000, 10 + i % 800, (i % 997) * 12345,
    CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END,
    CASE WHEN r >= 985 THEN 'failed' WHEN r % 97 = 0 THEN 'cut' WHEN r % 89 = 0 THEN 'client_error' ELSE 'ok' END,
    CASE WHEN r >= 985 THEN 502 ELSE 200 END, 200 + i % 3000, i % 2,
    CASE WHEN r >= 900 THEN 1 ELSE 0 END";

fn generate_ledger(backend: &str) -> (String, String) {
    match backend {
        "sqlite" => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1),
                 s AS (SELECT i, (i * 2654435761) % 1000 AS r, $2 + i * $3 AS us FROM n)
                 {LEDGER_COLUMNS}
                 SELECT strftime('%Y-%m-%dT%H:%M:%S', us / 1000000, 'unixepoch') || printf('.%06dZ', us % 1000000),
                 {LEDGER_VALUES} FROM s"
            ),
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1),
             s AS (SELECT (i * 2654435761) % 1000 AS r, $2 + i * $3 AS us FROM n)
             INSERT INTO llm_failover_events (at, from_provider, to_provider, kind, reason, caller_token_id, project)
             SELECT strftime('%Y-%m-%dT%H:%M:%S', us / 1000000, 'unixepoch') || printf('.%06dZ', us % 1000000),
                 'claude', 'openai', 'timeout', 'upstream timed out', NULL, NULL FROM s WHERE r >= 900"
                .to_string(),
        ),
        _ => (
            format!(
                "{LEDGER_COLUMNS}
                 SELECT to_char(to_timestamp(us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')
                     || '.' || lpad((us % 1000000)::text, 6, '0') || 'Z',
                 {LEDGER_VALUES}
                 FROM (SELECT i, (i * 2654435761) % 1000 AS r, $2 + i * $3 AS us
                       FROM generate_series(0::bigint, $1 - 1) AS g(i)) s"
            ),
            "INSERT INTO llm_failover_events (at, from_provider, to_provider, kind, reason, caller_token_id, project)
             SELECT to_char(to_timestamp(us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')
                     || '.' || lpad((us % 1000000)::text, 6, '0') || 'Z',
                 'claude', 'openai', 'timeout', 'upstream timed out', NULL, NULL
             FROM (SELECT (i * 2654435761) % 1000 AS r, $2 + i * $3 AS us
                   FROM generate_series(0::bigint, $1 - 1) AS g(i)) s WHERE r >= 900"
                .to_string(),
        ),
    }
}

/// `$1` finished tasks (97 % completed, 2 % failed, 1 % cancelled) and a few pending ones.
fn generate_tasks(backend: &str) -> String {
    let series = match backend {
        "sqlite" => "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
            INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after, created_by, created_at, updated_at)
            SELECT 'shell', CASE WHEN i % 100 < 97 THEN 'completed' WHEN i % 100 < 99 THEN 'failed' ELSE 'cancelled' END,
                0, 60, '2026-01-01T00:00:00.000000Z', 'bench', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
            FROM n",
        _ => "INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after, created_by, created_at, updated_at)
            SELECT 'shell', CASE WHEN i % 100 < 97 THEN 'completed' WHEN i % 100 < 99 THEN 'failed' ELSE 'cancelled' END,
                0, 60, '2026-01-01T00:00:00.000000Z', 'bench', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
            FROM generate_series(0::bigint, $1 - 1) AS g(i)",
    };
    series.to_string()
}

/// 2,000 error groups seen at `$1`, and their hourly counts over the 30 days (the default
/// retention) back from `$1` (seconds since the epoch).
fn generate_errors(backend: &str) -> (String, String) {
    let groups = match backend {
        "sqlite" => "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)
            INSERT INTO errors (fingerprint, error_type, source, title, message, level, status, occurrences,
                first_seen, last_seen, last_node, updated_at)
            SELECT 'fp-' || i, 'ValueError', 'bench', 'bad value ' || i, 'bad value', 'error', 'open', 720,
                $1, $1, 'node-1', $1 FROM n",
        _ => "INSERT INTO errors (fingerprint, error_type, source, title, message, level, status, occurrences,
                first_seen, last_seen, last_node, updated_at)
            SELECT 'fp-' || i, 'ValueError', 'bench', 'bad value ' || i, 'bad value', 'error', 'open', 720,
                $1, $1, 'node-1', $1
            FROM generate_series(0, 1999) AS g(i)",
    };
    let hours = match backend {
        "sqlite" => "WITH RECURSIVE h(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM h WHERE k < 719)
            INSERT INTO error_hours (error_id, hour, occurrences)
            SELECT e.id, strftime('%Y-%m-%dT%H', $1 - k * 3600, 'unixepoch'), 1 + (e.id + k) % 5 FROM errors e, h",
        _ => "INSERT INTO error_hours (error_id, hour, occurrences)
            SELECT e.id, to_char(to_timestamp($1 - k * 3600) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24'), 1 + (e.id + k) % 5
            FROM errors e, generate_series(0::bigint, 719) AS h(k)",
    };
    (groups.to_string(), hours.to_string())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn time_sql(db: &architect::db::Db, sql: &str, since: &str, reps: usize) -> Duration {
    let mut runs = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let rows = sqlx::query(sql)
            .bind(since)
            .fetch_all(db)
            .await
            .expect("old query");
        runs.push(t.elapsed());
        assert!(!rows.is_empty());
    }
    median(runs)
}

/// The task counts without HTTP, on the migrated database before any server runs (so no fold
/// loop): the direct `GROUP BY` over the queue (what `GET /api/tasks/counts` ran before
/// migration 0021), then `tasks::store::status_counts` over the counters alone and with 50,000
/// delta rows not yet folded (25,000 +1/-1 pairs that cancel: the counts do not move). About
/// 10,000 tasks' transitions: what a PostgreSQL reader sums at worst between two folds at a
/// load of 10,000 tasks/s. Checks that the three agree, then deletes those deltas.
async fn task_counts_without_http(
    db: &architect::db::Db,
    reps: usize,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let direct_sql = "SELECT status, COUNT(*) FROM task_queue GROUP BY status";
    let mut runs = Vec::new();
    let mut direct = architect::tasks::StatusCounts::default();
    for _ in 0..reps {
        let t = Instant::now();
        let rows: Vec<(String, i64)> = sqlx::query_as(direct_sql).fetch_all(db).await?;
        runs.push(t.elapsed());
        direct = architect::tasks::StatusCounts::default();
        for (s, n) in rows {
            direct.add(s.parse().map_err(|_| anyhow::anyhow!("status {s}"))?, n);
        }
    }
    let direct_time = median(runs);
    let time_counts = || async {
        let mut runs = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let c = architect::tasks::store::status_counts(db).await?;
            runs.push(t.elapsed());
            anyhow::ensure!(
                c == direct,
                "counters {c:?} differ from the GROUP BY {direct:?}"
            );
        }
        anyhow::Ok(median(runs))
    };
    let folded = time_counts().await?;
    for _ in 0..25 {
        let values = vec!["('completed', 1), ('completed', -1)"; 500].join(", ");
        sqlx::query(&format!(
            "INSERT INTO task_status_deltas (status, n) VALUES {values}"
        ))
        .execute(db)
        .await?;
    }
    let unfolded = time_counts().await?;
    // They cancel out, and no server ran yet to add any of its own: gone, the counts are as
    // before (SQLite never folds: its triggers write no deltas).
    sqlx::query("DELETE FROM task_status_deltas")
        .execute(db)
        .await?;
    Ok((direct_time, folded, unfolded))
}

async fn time_get(http: &reqwest::Client, url: &str, token: &str, reps: usize) -> Duration {
    let get = || async {
        let r = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.expect("body");
    };
    get().await;
    let mut runs = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        get().await;
        runs.push(t.elapsed());
    }
    median(runs)
}

/// A fresh database of `backend`, migrated up to 0016: the SQLite file in `data_dir`, or a
/// database in the private cluster at `pg`.
async fn fresh(
    backend: &str,
    data_dir: &Path,
    pg: Option<&str>,
) -> anyhow::Result<architect::db::Db> {
    let db = match pg {
        None => architect::db::open_sqlite(data_dir).await?,
        Some(url) => architect::db::open(&url.parse()?).await?,
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut before = sqlx::migrate::Migrator::new(dir).await?;
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 17)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&db).await?;
    Ok(db)
}

async fn run(backend: &str, pg: Option<&str>) -> anyhow::Result<()> {
    let rows: i64 = env("SUMMARIES_ROWS", 5_000_000);
    let tasks: i64 = env("SUMMARIES_TASKS", 5_000_000);
    let reps: usize = env("SUMMARIES_REPS", 5);
    let tmp = tempfile::tempdir()?;
    let db = fresh(backend, tmp.path(), pg).await?;
    let now = architect::clock::Clock::System.now();
    let start_us = (now.unix_timestamp() - DAYS * 86_400) * 1_000_000;
    let step_us = DAYS * 86_400 * 1_000_000 / rows.max(1);
    let (ledger_sql, failover_sql) = generate_ledger(backend);
    let t = Instant::now();
    for sql in [&ledger_sql, &failover_sql] {
        sqlx::query(sql)
            .bind(rows)
            .bind(start_us)
            .bind(step_us)
            .execute(&db)
            .await?;
    }
    sqlx::query(&generate_tasks(backend))
        .bind(tasks)
        .execute(&db)
        .await?;
    let (groups_sql, hours_sql) = generate_errors(backend);
    sqlx::query(&groups_sql)
        .bind(architect::clock::format(now))
        .execute(&db)
        .await?;
    sqlx::query(&hours_sql)
        .bind(now.unix_timestamp())
        .execute(&db)
        .await?;
    if backend == "postgres" {
        sqlx::query("VACUUM ANALYZE").execute(&db).await?;
    }
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM llm_failover_events")
        .fetch_one(&db)
        .await?;
    println!(
        "\n== {backend}: {rows} ledger rows over {DAYS} days, {events} failover events, {tasks} tasks, 2000 error groups x 720 hours; generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let week = architect::clock::format(now - time::Duration::days(7));
    let old_reps = reps.min(3);
    let mut before = Vec::new();
    let windows: &[(&str, &str)] = if env("SUMMARIES_BEFORE", 1) == 1 {
        &[("all time", ""), ("days=7", week.as_str())]
    } else {
        &[]
    };
    for &(label, since) in windows {
        let totals = format!("SELECT {OLD_TOTALS} FROM llm_ledger WHERE at >= $1");
        let failovers = "SELECT COUNT(*) FROM llm_failover_events WHERE at >= $1";
        let summary = time_sql(&db, &totals, since, old_reps).await
            + time_sql(&db, &old_by("provider"), since, old_reps).await
            + time_sql(&db, failovers, since, old_reps).await;
        before.push((format!("summary, {label}"), summary));
        for by in ["provider", "model", "caller", "project", "day"] {
            before.push((
                format!("costs?by={by}, {label}"),
                time_sql(&db, &old_by(by), since, old_reps).await,
            ));
        }
    }
    if !windows.is_empty() {
        before.push((
            "providers".into(),
            time_sql(&db, &old_by("provider"), "", old_reps).await,
        ));
    }
    let t = Instant::now();
    architect::db::migrate(&db).await?;
    let migrate = t.elapsed();
    let rolled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM llm_ledger_hours")
        .fetch_one(&db)
        .await?;
    let days: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM llm_ledger_days")
        .fetch_one(&db)
        .await?;
    println!(
        "migration 0017 (backfill): {:.1} s; llm_ledger_hours rows: {rolled}, llm_ledger_days rows: {days}",
        migrate.as_secs_f64()
    );
    if backend == "postgres" {
        sqlx::query("ANALYZE").execute(&db).await?;
    }
    let group: i64 = sqlx::query_scalar("SELECT MIN(id) FROM errors")
        .fetch_one(&db)
        .await?;
    let counting = task_counts_without_http(&db, reps).await?;
    db.close().await;

    let data_dir = tmp.path().display().to_string();
    let mut args = vec![
        "serve".to_string(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--data-dir".into(),
        data_dir,
        "--admin-password".into(),
        PASSWORD.into(),
    ];
    if let Some(url) = pg {
        args.push("--database-url".into());
        args.push(url.to_string());
    }
    let config = Serve::try_parse_from(args)?.config;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let base = format!("http://{}", server.addr);
    let token = architect::client::login_and_create_token(
        &base,
        "architect",
        PASSWORD,
        "bench reader",
        "read",
    )
    .await?;
    let http = reqwest::Client::new();
    let mut after = Vec::new();
    for (label, days) in [("all time", ""), ("days=7", "days=7")] {
        let q = |p: &str| {
            if days.is_empty() {
                p.to_string()
            } else if p.contains('?') {
                format!("{p}&{days}")
            } else {
                format!("{p}?{days}")
            }
        };
        after.push((
            format!("summary, {label}"),
            time_get(
                &http,
                &format!("{base}{}", q("/api/llm-metrics/summary")),
                &token,
                reps,
            )
            .await,
        ));
        for by in ["provider", "model", "caller", "project", "day"] {
            after.push((
                format!("costs?by={by}, {label}"),
                time_get(
                    &http,
                    &format!("{base}{}", q(&format!("/api/llm-metrics/costs?by={by}"))),
                    &token,
                    reps,
                )
                .await,
            ));
        }
    }
    after.push((
        "providers".into(),
        time_get(
            &http,
            &format!("{base}/api/llm-metrics/providers"),
            &token,
            reps,
        )
        .await,
    ));
    println!(
        "| {backend} | before: the statements over llm_ledger | after: the endpoint over HTTP |"
    );
    println!("|---|---|---|");
    for (i, (what, a)) in after.iter().enumerate() {
        let b = before
            .get(i)
            .map_or("(not run)".to_string(), |(_, b)| ms(*b));
        println!("| {what} | {b} | {} |", ms(*a));
    }
    let counts = time_get(&http, &format!("{base}/api/tasks/counts"), &token, reps).await;
    let detail = time_get(
        &http,
        &format!("{base}/api/errors/{group}?hours=720"),
        &token,
        reps,
    )
    .await;
    let detail_day = time_get(&http, &format!("{base}/api/errors/{group}"), &token, reps).await;
    let list = time_get(&http, &format!("{base}/api/errors?limit=50"), &token, reps).await;
    let health = time_get(&http, &format!("{base}/health"), &token, reps).await;
    println!(
        "{backend}: task counts: the direct GROUP BY over the queue {}; tasks::store::status_counts {} (counters only), {} (counters + 50,000 unfolded deltas)",
        ms(counting.0), ms(counting.1), ms(counting.2)
    );
    println!(
        "{backend}: GET /api/tasks/counts {}; GET /api/errors/{{id}}?hours=720 {}; GET /api/errors/{{id}} {}; GET /api/errors?limit=50 {}; GET /health {}",
        ms(counts), ms(detail), ms(detail_day), ms(list), ms(health)
    );
    server.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .init();
    println!(
        "Summaries at history scale: {} CPUs, median of {} (before: of {})",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1),
        env("SUMMARIES_REPS", 5usize),
        env("SUMMARIES_REPS", 5usize).min(3)
    );
    // SUMMARIES_BACKENDS: `sqlite,postgres` (default), or one of them.
    let backends: String = env("SUMMARIES_BACKENDS", "sqlite,postgres".to_string());
    if backends.contains("sqlite") {
        run("sqlite", None).await?;
    }
    if !backends.contains("postgres") {
        return Ok(());
    }
    let dir = tempfile::Builder::new()
        .prefix("architect-pg-bench-")
        .tempdir()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster");
    let out = std::process::Command::new(script)
        .arg("start")
        .arg(dir.path())
        .env(
            "PG_CLUSTER_OPTS",
            "-c shared_buffers=512MB -c max_wal_size=4GB",
        )
        .output()?;
    if !out.status.success() {
        anyhow::bail!(
            "scripts/pg-cluster start failed (PostgreSQL missing? apt-get install -y postgresql): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let admin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let result = async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query("CREATE DATABASE bench")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        run("postgres", Some(&admin.replace("/postgres?", "/bench?"))).await
    }
    .await;
    let _ = std::process::Command::new(script)
        .arg("stop")
        .arg(dir.path())
        .status();
    result
}
