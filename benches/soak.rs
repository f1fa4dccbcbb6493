//! Delivery soak with the real Claude Code: `cargo bench --bench soak` (figures in
//! bench/README.md). The short version is the integration test
//! `delivery::real_claude_code_soak_every_prompt_submitted_once`.
//!
//! Starts a real server in-process (private tmux socket, temporary SQLite), `SOAK_SESSIONS`
//! (default 3) real Claude Code 2.1.332 sessions through `POST /api/agents/sessions` (hooks
//! installed, each in its own HOME and cwd) against `tests/fixtures/mock_llm.py`, and queues
//! `SOAK_PROMPTS` (default 600) prompts at once, so each session gets its next prompt right
//! after its previous answer. Every 20th prompt asks for a Bash command (a permission dialog),
//! which the bench approves by hand only after it has been pending for 2 s. At the end it
//! checks, and prints: every prompt reached the model exactly once (the mock's request log,
//! by the last user text), no input line holds text, one interaction per dialog; and how
//! often Enter had to be pressed again, lines cleared, prompts requeued.
//! Needs `.agent-clis` (npm install of the pinned CLIs) and python3.

use clap::Parser;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    config: architect::config::ServeConfig,
}

struct Cleanup {
    socket: String,
    mock: std::process::Child,
}
impl Drop for Cleanup {
    fn drop(&mut self) {
        architect::tmux::Tmux::new(Some(&self.socket)).kill_server_blocking();
        let _ = self.mock.kill();
        let _ = self.mock.wait();
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The last user text of each request the mock got.
fn prompts_received(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| {
            let msgs = r["body"]["messages"].as_array()?.clone();
            let last = msgs.iter().rev().find(|m| m["role"] == "user")?.clone();
            let text: Vec<String> = match &last["content"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter(|c| c["type"] == "text")
                    .filter_map(|c| c["text"].as_str())
                    .filter(|t| !t.trim_start().starts_with("<system-reminder>"))
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            let text = text.join("\n").trim().to_string();
            (!text.is_empty()).then_some(text)
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sessions = env_or("SOAK_SESSIONS", 3);
    let n = env_or("SOAK_PROMPTS", 600);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let claude = root.join(".agent-clis/node_modules/.bin/claude");
    anyhow::ensure!(
        claude.exists(),
        "{} is missing (npm install the pinned CLIs into .agent-clis)",
        claude.display()
    );
    let dir = tempfile::tempdir()?;
    let work0 = dir.path().join("work");
    std::fs::create_dir_all(&work0)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mock_log = dir.path().join("requests.jsonl");
    let mock = std::process::Command::new("python3")
        .arg(root.join("tests/fixtures/mock_llm.py"))
        .arg(port.to_string())
        .arg(&mock_log)
        .env("MOCK_WORKDIR", &work0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let socket = format!("arch-soak-{:x}", rand::random::<u64>());
    let _cleanup = Cleanup {
        socket: socket.clone(),
        mock,
    };
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
        "--worker-bin",
        env!("CARGO_BIN_EXE_architect"),
    ])?
    .config;
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
    let get = |path: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}{path}"))
                .send()
                .await?
                .json::<Value>()
                .await
        }
    };

    let names: Vec<String> = (1..=sessions).map(|i| format!("soak{i}")).collect();
    for name in &names {
        let home = dir.path().join(format!("home-{name}"));
        let wd = dir.path().join(format!("work-{name}"));
        std::fs::create_dir_all(home.join(".claude"))?;
        std::fs::create_dir_all(&wd)?;
        let wd_s = wd.display().to_string();
        std::fs::write(
            home.join(".claude.json"),
            json!({"hasCompletedOnboarding": true, "lastOnboardingVersion": "2.1.332",
                   "lastReleaseNotesSeen": "2.1.332", "hasSeenAutoDefaultNotice": true,
                   "hasSeenAutoDefaultNudge": true, "theme": "dark", "autoUpdates": false,
                   "customApiKeyResponses": {"approved": ["sk-test"], "rejected": []},
                   "projects": {wd_s.clone(): {"hasTrustDialogAccepted": true,
                       "hasCompletedProjectOnboarding": true, "allowedTools": []}}})
            .to_string(),
        )?;
        std::fs::write(
            home.join(".claude/settings.json"),
            json!({"permissions": {"defaultMode": "default"}, "env": {"DISABLE_AUTOUPDATER": "1"}})
                .to_string(),
        )?;
        let launcher = dir.path().join(format!("run-{name}.sh"));
        std::fs::write(
            &launcher,
            format!(
                "#!/bin/bash\nexport HOME='{}'\nexport ANTHROPIC_BASE_URL=http://127.0.0.1:{port}\nexport ANTHROPIC_API_KEY=sk-test\nexport DISABLE_TELEMETRY=1\nexport CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\nexport DISABLE_AUTOUPDATER=1\nexport DISABLE_ERROR_REPORTING=1\nexport CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL=1\nexport TERM=xterm-256color\nexec '{}' \"$@\"\n",
                home.display(),
                claude.display()
            ),
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))?;
        }
        post(
            "/api/agents/sessions",
            json!({"name": name, "agent": "claude", "cwd": wd_s, "no_gateway": true,
                   "role": "worker", "program": launcher.display().to_string()}),
        )
        .send()
        .await?
        .error_for_status()?;
    }
    let idle = |c: &Value| {
        c["classification"]["state"] == "idle" && c["classification"]["input"] == "empty"
    };
    let capture = |name: String| {
        let req = post("/api/tmux/capture", json!({"session": name, "lines": 80}));
        async move { req.send().await?.json::<Value>().await }
    };
    let t_start = Instant::now();
    for name in &names {
        while !idle(&capture(name.clone()).await?) {
            anyhow::ensure!(
                t_start.elapsed() < Duration::from_secs(60),
                "{name} never idle"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    println!("delivery soak: {sessions} real Claude Code 2.1.332 sessions, {n} prompts, every 20th asks for Bash (approved by hand after 2 s)");
    let mut prompts: Vec<(i64, String)> = Vec::new();
    for i in 0..n {
        let content = if i % 20 == 19 {
            format!("soak prompt {i} RUNBASH")
        } else {
            format!("soak prompt {i}")
        };
        let r: Value = post(
            "/api/assigner/send",
            json!({"content": content, "target_role": "worker"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
        prompts.push((r["prompt_id"].as_i64().unwrap_or_default(), content));
    }
    let t0 = Instant::now();
    let mut seen_pending: HashMap<i64, Instant> = HashMap::new();
    let mut approved = 0;
    let deadline = Duration::from_secs(60 + 10 * n as u64);
    loop {
        let pending = get("/api/claude/interactions?status=pending".into()).await?;
        for i in pending.as_array().cloned().unwrap_or_default() {
            let id = i["id"].as_i64().unwrap_or_default();
            let first = *seen_pending.entry(id).or_insert_with(Instant::now);
            if first.elapsed() >= Duration::from_secs(2) {
                let r = post(
                    &format!("/api/claude/interactions/{id}/handle"),
                    json!({"action": "approve"}),
                )
                .send()
                .await?;
                if r.status().is_success() {
                    approved += 1;
                }
            }
        }
        let st = get("/api/assigner/status".into()).await?;
        let c = &st["counts"];
        let finished = ["completed", "failed", "cancelled"]
            .iter()
            .map(|k| c[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        if finished as usize >= n {
            break;
        }
        anyhow::ensure!(t0.elapsed() < deadline, "soak did not finish: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = t0.elapsed();

    // What happened to each prompt.
    let mut completed = 0;
    let mut failed = Vec::new();
    let mut extra_enters = 0;
    let mut needed_again = 0;
    let mut requeued = 0;
    for (id, _) in &prompts {
        let p = get(format!("/api/assigner/prompts/{id}")).await?;
        match p["status"].as_str() {
            Some("completed") => completed += 1,
            _ => failed.push(p.clone()),
        }
        let presses = p["enter_presses"].as_i64().unwrap_or(0);
        extra_enters += (presses - 1).max(0);
        needed_again += i64::from(presses > 1);
        requeued += p["retries"].as_i64().unwrap_or(0);
    }
    let mut received: HashMap<String, usize> = HashMap::new();
    for text in prompts_received(&mock_log) {
        *received.entry(text).or_default() += 1;
    }
    let once = prompts
        .iter()
        .filter(|(_, c)| received.get(c) == Some(&1))
        .count();
    let twice: Vec<&String> = prompts
        .iter()
        .filter(|(_, c)| received.get(c).is_some_and(|k| *k > 1))
        .map(|(_, c)| c)
        .collect();
    let never = prompts
        .iter()
        .filter(|(_, c)| !received.contains_key(c))
        .count();
    let mut left_text = Vec::new();
    for name in &names {
        let c = capture(name.clone()).await?;
        if !idle(&c) {
            left_text.push(format!("{name}: {}", c["classification"]));
        }
    }
    let all = get("/api/claude/interactions?limit=1000".into()).await?;
    let all = all.as_array().cloned().unwrap_or_default();
    let by_status = |s: &str| all.iter().filter(|i| i["status"] == s).count();
    let mut duplicates = 0;
    for a in all.iter().filter(|i| i["status"] == "approved") {
        duplicates += all
            .iter()
            .filter(|b| {
                b["id"] != a["id"]
                    && b["session"] == a["session"]
                    && b["command"] == a["command"]
                    && b["created_at"].as_str() >= a["created_at"].as_str()
                    && b["created_at"].as_str() <= a["decided_at"].as_str()
            })
            .count();
    }
    let phantoms = all
        .iter()
        .filter(|i| i["command"].is_null() && i["path"].is_null())
        .count();
    let dialogs = prompts
        .iter()
        .filter(|(_, c)| c.contains("RUNBASH"))
        .count();
    println!(
        "  {completed}/{n} completed in {:.0} s ({:.2} prompts/s); failed {}",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        failed.len()
    );
    println!(
        "  model saw each prompt exactly once: {once}/{n}; twice or more: {}; never: {never}",
        twice.len()
    );
    println!(
        "  Enter pressed again: {extra_enters} times, for {needed_again} prompts ({:.1} %); requeued: {requeued}",
        100.0 * needed_again as f64 / n as f64
    );
    println!("  input lines holding text at the end: {}", left_text.len());
    println!(
        "  interactions: {} for {dialogs} dialogs ({approved} approved by hand, {} approved, {} gone, {} pending); duplicates of an open dialog: {duplicates}; without a command or path: {phantoms}",
        all.len(),
        by_status("approved"),
        by_status("gone"),
        by_status("pending")
    );
    // A second interaction for a dialog just answered: the same session and command, made
    // within 2 s after the approved one was decided.
    let after_answer = all
        .iter()
        .filter(|b| b["status"] != "approved")
        .filter(|b| {
            all.iter().any(|a| {
                a["status"] == "approved"
                    && a["session"] == b["session"]
                    && a["command"] == b["command"]
                    && b["created_at"].as_str() >= a["decided_at"].as_str()
                    && architect::clock::parse(b["created_at"].as_str().unwrap_or(""))
                        .zip(architect::clock::parse(
                            a["decided_at"].as_str().unwrap_or(""),
                        ))
                        .is_some_and(|(b, a)| b - a <= time::Duration::seconds(2))
            })
        })
        .count();
    println!("  a second interaction within 2 s after a hand approval: {after_answer}");
    for i in all.iter().filter(|i| i["status"] != "approved").take(5) {
        println!(
            "  not approved: #{} {} {} created {} decided {} by {}",
            i["id"], i["status"], i["command"], i["created_at"], i["decided_at"], i["decision_by"]
        );
    }
    for f in failed.iter().take(5) {
        println!("  failed: #{} {}", f["id"], f["error"]);
    }
    for t in twice.iter().take(5) {
        println!("  twice: {t}");
    }
    for l in &left_text {
        println!("  text left: {l}");
    }
    server.shutdown().await?;
    Ok(())
}
