//! Read-path benchmark: `cargo bench --bench readpath` (release build; results in
//! bench/README.md and docs/decisions/0007-storage-backends.md).
//!
//! Starts a real server in-process on a temporary SQLite database (WAL), creates 100 projects
//! (about 25 KB of JSON as a list), then:
//!
//! 1. **pieces** — each part of `GET /api/projects` alone, sequentially, µs per call: the list
//!    query through the server's `Any` pool (`tracking::store::list_projects`), the same SQL
//!    through a typed `SqlitePool` on the same file, `SELECT 1` through each (the per-statement
//!    floor: a round trip to the connection's worker thread), JSON serialisation of the 100
//!    projects, and the token's keyed hash; then the two list queries from 16 tasks at once;
//! 2. **HTTP** — `wrk` (c16, 2 threads) against `GET /health` and `GET /api/projects` (bearer
//!    token, and a session cookie), alternating, `READPATH_ROUNDS` rounds (default 3) of
//!    `READPATH_SECONDS` (default 10) each: req/s and p99, and the ratio to `/health` of the
//!    same round. Each round measures the list with the list cache off (every request reads
//!    the database, as before the cache) and on (`http::cache`); with the cache on, the cookie
//!    request is measured with the session cache (`auth::token_cache::SessionCache`) off (the
//!    session row read per request, as before it) and on.
//!
//! Needs `wrk` (Debian: `apt-get install -y wrk`); without it the bench fails saying so.

use architect::tracking::{store, NewProject, ProjectFilter};
use clap::Parser;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::ConnectOptions;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

const PASSWORD: &str = "bench-password-123";
const PROJECTS: usize = 100;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The list query's row, decoded by the typed SQLite driver (the same columns as the store's).
#[derive(sqlx::FromRow)]
#[allow(dead_code)] // read only to be decoded
struct TypedProjectRow {
    id: i64,
    name: String,
    description: String,
    source_path: Option<String>,
    status: String,
    tags: String,
    archived_at: Option<String>,
    created_at: String,
    updated_at: String,
}

/// The SQL of `tracking::store::list_projects` with no filter, written out.
const LIST_SQL: &str = "SELECT id, name, description, source_path, status, tags, archived_at, created_at, updated_at FROM projects
     WHERE ($1 = 1 OR archived_at IS NULL)
       AND ($2 IS NULL OR status = $2)
       AND ($3 IS NULL OR LOWER(name) LIKE $3 ESCAPE '\\' OR LOWER(description) LIKE $3 ESCAPE '\\')
     ORDER BY archived_at IS NOT NULL, name_key LIMIT $4 OFFSET $5";

/// Runs `f` `n` times in sequence; µs per call.
async fn per_call<F, Fut>(n: u64, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..n.min(50) {
        f().await?; // warm-up: statement caches, page cache
    }
    let t = Instant::now();
    for _ in 0..n {
        f().await?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// `total` calls of `f` from 16 tasks at once; calls per second.
async fn concurrent<F, Fut>(total: u64, f: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let f = Arc::new(f);
    let t = Instant::now();
    let mut jobs = Vec::new();
    for _ in 0..16 {
        let f = f.clone();
        jobs.push(tokio::spawn(async move {
            for _ in 0..total / 16 {
                f().await?;
            }
            anyhow::Ok(())
        }));
    }
    for j in jobs {
        j.await??;
    }
    Ok((total / 16 * 16) as f64 / t.elapsed().as_secs_f64())
}

struct WrkResult {
    rps: f64,
    p99_ms: f64,
}

fn wrk(url: &str, header: &str, seconds: u64) -> anyhow::Result<WrkResult> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk ({e}); install it: apt-get install -y wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk's output:\n{text}"))?;
    let p99 = field("99%").ok_or_else(|| anyhow::anyhow!("no 99% in wrk's output:\n{text}"))?;
    let p99_ms = if let Some(v) = p99.strip_suffix("ms") {
        v.parse::<f64>()?
    } else if let Some(v) = p99.strip_suffix("us") {
        v.parse::<f64>()? / 1000.0
    } else if let Some(v) = p99.strip_suffix('s') {
        v.parse::<f64>()? * 1000.0
    } else {
        anyhow::bail!("cannot read wrk's p99 '{p99}'")
    };
    if text.contains("Non-2xx") {
        anyhow::bail!("wrk saw non-2xx answers from {url}:\n{text}");
    }
    Ok(WrkResult { rps, p99_ms })
}

/// A session cookie from a password login (`architect_session=…`).
async fn session_cookie(url: &str) -> anyhow::Result<String> {
    let resp = reqwest::Client::new()
        .post(format!("{url}/login"))
        .json(&serde_json::json!({"username": "architect", "password": PASSWORD}))
        .send()
        .await?;
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|kv| kv.starts_with("architect_session="))
        })
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("login gave no session cookie"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_num("READPATH_N", 5000);
    let rounds = env_num("READPATH_ROUNDS", 3);
    let seconds = env_num("READPATH_SECONDS", 10);
    if Command::new("wrk").arg("--version").output().is_err() {
        anyhow::bail!("wrk is missing; install it: apt-get install -y wrk");
    }
    let dir = tempfile::tempdir()?;
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
        PASSWORD,
    ])?
    .config;
    let server = architect::serve::start(config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);
    let login = architect::client::Login::new(&url, "architect", PASSWORD).await?;
    let token = login.create_token("bench read", "read", None).await?.token;
    let admin = login
        .create_token("bench admin", "admin", None)
        .await?
        .token;
    login.logout().await;
    let client = architect::client::Client::new(&url, Some(&admin));
    for i in 0..PROJECTS {
        client
            .create_project(&NewProject {
                name: format!("project-{i:03}"),
                description: Some(format!(
                    "Project {i}: a service of the shop with its own repository, milestones, features and bugs; long enough to look like a real description."
                )),
                source_path: Some(format!("/home/dev/gitrepos/project-{i:03}")),
                tags: Some(vec!["web".into(), "rust".into()]),
                ..NewProject::default()
            })
            .await?;
    }
    let body = reqwest::Client::new()
        .get(format!("{url}/api/projects"))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "read-path benchmark: SQLite (WAL), {} CPUs, {PROJECTS} projects = {} bytes of JSON",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1),
        body.len()
    );

    // 1. The pieces.
    let db = server.state.db.clone();
    let typed = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(
            SqliteConnectOptions::from_str(&format!(
                "sqlite://{}/architect.db",
                dir.path().display()
            ))?
            .busy_timeout(Duration::from_secs(5))
            .disable_statement_logging(),
        )
        .await?;
    let filter = ProjectFilter::default();
    let any_list = {
        let (db, filter) = (db.clone(), filter.clone());
        move || {
            let (db, filter) = (db.clone(), filter.clone());
            async move {
                let rows = store::list_projects(&db, &filter, 100, 0).await?;
                anyhow::ensure!(rows.len() == PROJECTS);
                Ok(())
            }
        }
    };
    let typed_list = {
        let typed = typed.clone();
        move || {
            let typed = typed.clone();
            async move {
                let rows: Vec<TypedProjectRow> = sqlx::query_as(LIST_SQL)
                    .bind(0i64)
                    .bind(None::<String>)
                    .bind(None::<String>)
                    .bind(100i64)
                    .bind(0i64)
                    .fetch_all(&typed)
                    .await?;
                anyhow::ensure!(rows.len() == PROJECTS);
                Ok(())
            }
        }
    };
    let any_list_us = per_call(n, &any_list).await?;
    let typed_list_us = per_call(n, &typed_list).await?;
    let any_one_us = per_call(n, || async {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&db)
            .await?;
        Ok(())
    })
    .await?;
    let typed_one_us = per_call(n, || async {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&typed)
            .await?;
        Ok(())
    })
    .await?;
    let projects = store::list_projects(&db, &filter, 100, 0).await?;
    let json_us = per_call(n, || async {
        std::hint::black_box(serde_json::to_vec(&projects)?);
        Ok(())
    })
    .await?;
    let key = server.state.secret_key.clone();
    let hash_us = per_call(n, || async {
        std::hint::black_box(architect::auth::secret_hash(&key, &token));
        Ok(())
    })
    .await?;
    println!("  sequential, µs per call ({n} calls each):");
    println!("    list 100 projects, Any pool (the server's): {any_list_us:.1}");
    println!("    list 100 projects, typed SqlitePool:        {typed_list_us:.1}");
    println!("    SELECT 1, Any pool:                         {any_one_us:.1}");
    println!("    SELECT 1, typed SqlitePool:                 {typed_one_us:.1}");
    println!("    serde_json 100 projects:                    {json_us:.1}");
    println!("    token keyed hash (HMAC-SHA256):             {hash_us:.2}");
    let any_c = concurrent(n, any_list.clone()).await?;
    let typed_c = concurrent(n, typed_list.clone()).await?;
    println!("  16 tasks at once, list 100 projects, calls/s: Any {any_c:.0}, typed {typed_c:.0}");

    // 2. HTTP, under wrk.
    let cookie = session_cookie(&url).await?;
    let bearer = format!("Authorization: Bearer {token}");
    let cookie_h = format!("Cookie: {cookie}");
    println!("  wrk -t2 -c16 -d{seconds}s --latency, {rounds} rounds:");
    let cache = server.state.list_cache.clone();
    let sessions = server.state.session_cache.clone();
    for round in 1..=rounds {
        let health = wrk(&format!("{url}/health"), &bearer, seconds)?;
        for on in [false, true] {
            cache.set_enabled(on);
            let list = wrk(&format!("{url}/api/projects"), &bearer, seconds)?;
            if on {
                sessions.set_enabled(false);
                let uncached = wrk(&format!("{url}/api/projects"), &cookie_h, seconds)?;
                sessions.set_enabled(true);
                println!(
                    "    round {round}: list cache on, session cache off: /api/projects cookie {:.0} req/s (p99 {:.2} ms) = {:.1} %",
                    uncached.rps,
                    uncached.p99_ms,
                    100.0 * uncached.rps / health.rps,
                );
            }
            let list_cookie = wrk(&format!("{url}/api/projects"), &cookie_h, seconds)?;
            println!(
                "    round {round}: /health {:.0} req/s (p99 {:.2} ms) | list cache {} | /api/projects token {:.0} req/s (p99 {:.2} ms) = {:.1} % | cookie {:.0} req/s (p99 {:.2} ms) = {:.1} %",
                health.rps,
                health.p99_ms,
                if on { "on " } else { "off" },
                list.rps,
                list.p99_ms,
                100.0 * list.rps / health.rps,
                list_cookie.rps,
                list_cookie.p99_ms,
                100.0 * list_cookie.rps / health.rps,
            );
        }
    }
    let s = cache.stats();
    println!(
        "  list cache: {} hits, {} misses, {} entries",
        s.hits, s.misses, s.entries
    );
    typed.close().await;
    server.shutdown().await?;
    Ok(())
}
