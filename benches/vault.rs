//! Vault benchmark: `cargo bench --bench vault` (release build; results in bench/README.md).
//!
//! Starts a real server in-process on a temporary SQLite database (WAL) with a key file, then:
//!
//! 1. **decrypt overhead** — over 1,000 secrets, N random reads each of: a plain read of the
//!    stored version row (`store::get_version`), the same read plus unwrap + decrypt, the
//!    AEAD work alone, and the full audited view (`reads::view_secret`: access count, audit
//!    record, commit) next to a plain metadata read; p50/p99 of each;
//! 2. **HTTP** — `GET /api/secrets/{id}` (a view) next to `GET /api/secrets/{id}/versions` (a
//!    plain read of metadata), with an admin token, p50/p99;
//! 3. **rotation** — 10,000 secrets; 4 tasks view random secrets in a loop while
//!    `rotation::rotate` re-wraps every data key; reports the rotation time, the reads done
//!    while it ran, failed reads and the slowest read.
//!
//! `VAULT_BENCH_N` sets the reads per measurement (default 5000); `VAULT_BENCH_SECRETS` the
//! secrets for the rotation run (default 10000).

use architect::app::AppState;
use architect::vault::crypto::{self, Binding};
use architect::vault::VaultState;
use architect::vault::{actions, reads, rotation, store, Actor, NewSecret, SecretValue};
use axum::extract::FromRef;
use clap::Parser;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

const PASSWORD: &str = "bench-password-123";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// p50 and p99 of a set of durations, in microseconds.
fn pct(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let at = |p: f64| {
        let i = ((d.len() as f64 * p).ceil() as usize).clamp(1, d.len()) - 1;
        d[i].as_secs_f64() * 1e6
    };
    (at(0.50), at(0.99))
}

fn row(what: &str, d: Vec<Duration>) -> (f64, f64) {
    let (p50, p99) = pct(d);
    println!("| {what} | {p50:.1} µs | {p99:.1} µs |");
    (p50, p99)
}

/// A cheap pseudo-random sequence (no dependency on the rand API here).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

async fn fill(state: &AppState, n: usize, prefix: &str) -> anyhow::Result<Vec<i64>> {
    let now = state.clock.now_str();
    let by = Actor {
        name: "bench",
        user_id: None,
        client_addr: None,
        now: &now,
    };
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let input = NewSecret {
            name: format!("{prefix}_{i}"),
            value: SecretValue::new(format!("sk-bench-{i:06}-{}", "x".repeat(40))),
            category: None,
            description: None,
        };
        ids.push(
            actions::create_secret(&VaultState::from_ref(state), &by, input)
                .await?
                .id,
        );
    }
    Ok(ids)
}

async fn decrypt_overhead(state: &AppState, ids: &[i64], n: usize) -> anyhow::Result<()> {
    let keys = state.vault.keyring()?;
    let mut rng = Lcg(7);
    let (mut plain, mut decrypt, mut aead) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        let env = store::get_version(&state.db, id, 1).await?;
        plain.push(t.elapsed());
        std::hint::black_box(env);

        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        let env = store::get_version(&state.db, id, 1)
            .await?
            .ok_or_else(|| anyhow::anyhow!("missing"))?;
        let at = Binding {
            secret_id: id,
            version: 1,
        };
        let value = crypto::open(&keys, at, &env)?;
        decrypt.push(t.elapsed());
        let t = Instant::now();
        let again = crypto::open(&keys, at, &env)?;
        aead.push(t.elapsed());
        std::hint::black_box((value, again));
    }
    println!("\n### Decrypt overhead ({n} random reads of 1,000 secrets)\n");
    println!("| read | p50 | p99 |\n|---|---|---|");
    let (_, plain99) = row(
        "plain read of the version row (`store::get_version`)",
        plain,
    );
    let (_, dec99) = row("same read + unwrap data key + decrypt", decrypt);
    row("unwrap + decrypt alone (XChaCha20-Poly1305 ×2)", aead);
    println!(
        "\ndifference of the two p99s above: {:.1} µs (noise dominates; the AEAD work itself is the third row)",
        dec99 - plain99
    );

    let now = state.clock.now_str();
    let by = Actor {
        name: "bench",
        user_id: Some(1),
        client_addr: Some("127.0.0.1"),
        now: &now,
    };
    let (mut meta, mut view) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        std::hint::black_box(store::get_secret(&state.db, id).await?);
        meta.push(t.elapsed());
        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        std::hint::black_box(
            reads::view_secret(&VaultState::from_ref(state), &by, id, None).await?,
        );
        view.push(t.elapsed());
    }
    println!("\n| whole operation | p50 | p99 |\n|---|---|---|");
    let (_, m99) = row("plain metadata read (`store::get_secret`)", meta);
    let (_, v99) = row(
        "audited view (`reads::view_secret`: count, audit record, commit, decrypt)",
        view,
    );
    println!(
        "\nthe audited view adds {:.1} µs at p99 over a plain read",
        v99 - m99
    );
    Ok(())
}

async fn admin_token(url: &str) -> anyhow::Result<String> {
    architect::client::login_and_create_token(url, "architect", PASSWORD, "bench", "admin").await
}

async fn http_overhead(url: &str, ids: &[i64], n: usize) -> anyhow::Result<()> {
    let token = admin_token(url).await?;
    let http = reqwest::Client::new();
    let mut rng = Lcg(11);
    let (mut meta, mut view) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        let r = http
            .get(format!("{url}/api/secrets/{id}/versions"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        meta.push(t.elapsed());
        std::hint::black_box(r);
        let id = ids[rng.next(ids.len())];
        let t = Instant::now();
        let r = http
            .get(format!("{url}/api/secrets/{id}"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        view.push(t.elapsed());
        std::hint::black_box(r);
    }
    println!("\n### Over HTTP ({n} requests each, bearer token)\n");
    println!("| request | p50 | p99 |\n|---|---|---|");
    let (_, m99) = row(
        "`GET /api/secrets/{id}/versions` (plain metadata read)",
        meta,
    );
    let (_, v99) = row("`GET /api/secrets/{id}` (audited view with value)", view);
    println!(
        "\nthe view adds {:.1} µs at p99 over the plain read",
        v99 - m99
    );
    Ok(())
}

async fn rotation_under_reads(state: &AppState, n_secrets: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let ids = Arc::new(fill(state, n_secrets, "ROT").await?);
    let keys_total = store::counts(&state.db).await?.1;
    println!(
        "\n### Rotation: {n_secrets} more secrets ({keys_total} data keys in all), 4 concurrent readers\n\n(created in {:.1} s)\n",
        t.elapsed().as_secs_f64()
    );
    let done = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (state, ids, done, total) = (state.clone(), ids.clone(), done.clone(), total.clone());
        readers.push(tokio::spawn(async move {
            let mut rng = Lcg(100 + r);
            let now = state.clock.now_str();
            let by = Actor {
                name: "reader",
                user_id: None,
                client_addr: None,
                now: &now,
            };
            // (start, duration, ok) of every view.
            let mut seen: Vec<(Instant, Duration, bool)> = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let k = rng.next(ids.len());
                let t = Instant::now();
                let ok = match reads::view_secret(&VaultState::from_ref(&state), &by, ids[k], None)
                    .await
                {
                    Ok(v) => v.value.expose().starts_with(&format!("sk-bench-{k:06}-")),
                    Err(_) => false,
                };
                seen.push((t, t.elapsed(), ok));
                total.fetch_add(1, Ordering::SeqCst);
            }
            seen
        }));
    }
    // Let the readers get going before the rotation starts.
    while total.load(Ordering::SeqCst) < 200 {
        tokio::task::yield_now().await;
    }
    let now = state.clock.now_str();
    let by = Actor {
        name: "bench",
        user_id: None,
        client_addr: None,
        now: &now,
    };
    let start = Instant::now();
    let report = rotation::rotate(&VaultState::from_ref(state), &by).await?;
    let end = Instant::now();
    // A little more reading after the rotation, under the new key only.
    let after = total.load(Ordering::SeqCst) + 200;
    while total.load(Ordering::SeqCst) < after {
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await?);
    }
    let overlapping: Vec<&(Instant, Duration, bool)> = all
        .iter()
        .filter(|(s, d, _)| *s < end && *s + *d > start)
        .collect();
    let slowest = overlapping
        .iter()
        .map(|(_, d, _)| *d)
        .max()
        .unwrap_or_default();
    let failed = all.iter().filter(|(_, _, ok)| !ok).count();
    println!("| measure | result |\n|---|---|");
    println!(
        "| rotation (`rotation::rotate`: stage, re-wrap {} data keys in one transaction, promote) | **{:.0} ms** |",
        report.rewrapped,
        (end - start).as_secs_f64() * 1e3
    );
    println!(
        "| views that overlapped the rotation | {} |",
        overlapping.len()
    );
    println!(
        "| slowest of them (they wait for the re-wrap's commit) | {:.0} ms |",
        slowest.as_secs_f64() * 1e3
    );
    println!(
        "| views in the whole run / failed | {} / **{failed}** |",
        all.len()
    );
    Ok(())
}

async fn bench() -> anyhow::Result<()> {
    let n = env_usize("VAULT_BENCH_N", 5000);
    let n_secrets = env_usize("VAULT_BENCH_SECRETS", 10_000);
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let dir_s = dir.to_str().unwrap_or("data").to_string();
    let serve = Serve::try_parse_from([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        &dir_s,
        "--admin-password",
        PASSWORD,
    ])?;
    let server = architect::serve::start(serve.config, architect::clock::Clock::System).await?;
    let url = format!("http://{}", server.addr);
    let state = server.state.clone();
    println!("## Vault (`cargo bench --bench vault`)\n");
    let ids = fill(&state, 1000, "BENCH").await?;
    decrypt_overhead(&state, &ids, n).await?;
    http_overhead(&url, &ids, n.min(2000)).await?;
    rotation_under_reads(&state, n_secrets).await?;
    server.shutdown().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}
