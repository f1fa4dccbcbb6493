//! `architect chat` (SPEC.md "Codex Chat Worker"): a terminal chat through the LLM gateway of a
//! running `architect serve`, so every prompt is recorded centrally (cost, metrics, failover).
//! It uses [`UnifiedLlmClient`] with the gateway as its one provider; the gateway does the
//! failover. `--provider NAME` (or `/provider NAME`) asks the gateway to try that provider first.
//!
//! Modes:
//! * interactive (default): history kept for the session, answers streamed; commands
//!   `/provider [NAME|auto]`, `/status`, `/providers`, `/clear`, `/help`, `/quit`;
//! * `-p "prompt"`: one answer on stdout, then exit (non-zero on failure);
//! * `--status`, `--list-providers`: circuit states and totals, the provider table;
//! * `--worker --session NAME`: lives in a tmux pane and answers prompts typed into it (by the
//!   assigner's `send-keys`), printing screen markers;
//! * `architect chat start-worker NAME [--provider P]`: starts such a worker in a detached tmux
//!   session NAME (arguments passed as an argv, never through a shell).
//!
//! # Worker screen markers (for the assigner's classifier)
//!
//! Each marker is a whole line starting at column 0, in plain ASCII; the **last** marker line
//! on the screen gives the state:
//!
//! | state | line |
//! |-------|------|
//! | idle  | `ARCHITECT-CHAT READY session=<NAME> provider=<P or auto>` followed by the input prompt `chat> ` (`chat>` in `capture-pane`, which trims trailing spaces) |
//! | busy  | `ARCHITECT-CHAT BUSY session=<NAME>` (printed as soon as a prompt line is read; the answer streams below it) |
//! | done  | `ARCHITECT-CHAT DONE session=<NAME> provider=<served-by> failovers=<n>` then a new READY line |
//! | error | `ARCHITECT-CHAT ERROR session=<NAME>: <message>` then a new READY line |
//!
//! The pane title is also set (OSC 2) to `architect-chat <NAME>: idle` or `... : busy`.
//! Answer text is indented by two spaces, so it can never start a line with `ARCHITECT-CHAT`.

use crate::config::ClientConfig;
use crate::llm::client::{CallError, ServedBody, UnifiedLlmClient};
use crate::llm::stream::Part;
use crate::llm::ProviderId;
use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{json, Value};
use std::io::Write;
use tokio::io::AsyncBufReadExt;

/// The idle marker's first words (see the module documentation).
pub const MARKER_READY: &str = "ARCHITECT-CHAT READY";
/// The busy marker's first words.
pub const MARKER_BUSY: &str = "ARCHITECT-CHAT BUSY";
/// Printed after an answer, before the next READY line.
pub const MARKER_DONE: &str = "ARCHITECT-CHAT DONE";
/// Printed when a prompt failed, before the next READY line.
pub const MARKER_ERROR: &str = "ARCHITECT-CHAT ERROR";

/// Turns of history kept (older turns are dropped, oldest first).
const MAX_HISTORY_MESSAGES: usize = 40;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ChatArgs {
    #[command(flatten)]
    pub client: ClientConfig,

    #[command(subcommand)]
    pub cmd: Option<ChatCmd>,

    /// Answer this one prompt and exit.
    #[arg(short = 'p', long = "prompt")]
    pub prompt: Option<String>,

    /// Provider to try first (claude, ollama, anythingllm, gemini, openai); the gateway fails
    /// over from it as usual.
    #[arg(long)]
    pub provider: Option<ProviderId>,

    /// Model to ask for (a provider that does not serve it uses its own default model).
    #[arg(
        long,
        env = "ARCHITECT_CHAT_MODEL",
        default_value = "claude-sonnet-4-5"
    )]
    pub model: String,

    /// Largest answer, in tokens.
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: u32,

    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,

    /// Project the cost is attributed to (sent as X-Architect-Project).
    #[arg(long, env = "ARCHITECT_PROJECT")]
    pub project: Option<String>,

    /// Show circuit breaker states and gateway totals, then exit.
    #[arg(long, conflicts_with_all = ["prompt", "worker", "list_providers"])]
    pub status: bool,

    /// List the providers of the failover chain, then exit.
    #[arg(long, conflicts_with_all = ["prompt", "worker"])]
    pub list_providers: bool,

    /// Worker mode: run inside a tmux pane and answer prompts typed into it (needs --session).
    #[arg(long, requires = "session", conflicts_with = "prompt")]
    pub worker: bool,

    /// Name of this worker (its tmux session); shown in the screen markers.
    #[arg(long)]
    pub session: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ChatCmd {
    /// Start a chat worker in a new detached tmux session NAME.
    StartWorker {
        /// Session name: letters, digits, '-' and '_' (at most 64).
        name: String,
        /// Provider the worker tries first.
        #[arg(long)]
        provider: Option<ProviderId>,
        /// tmux socket name (`tmux -L`), to use a private tmux server.
        #[arg(long, env = "ARCHITECT_TMUX_SOCKET")]
        socket: Option<String>,
    },
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    if let Some(ChatCmd::StartWorker {
        name,
        provider,
        socket,
    }) = &args.cmd
    {
        return start_worker(&args.client, name, *provider, socket.as_deref());
    }
    let api = crate::cli::client(&args.client)?;
    if args.status {
        return status(&api, args.client.json).await;
    }
    if args.list_providers {
        return list_providers(&api, args.client.json).await;
    }
    let token = args.client.token.clone().unwrap_or_default();
    let llm = UnifiedLlmClient::via_gateway(&args.client.url, &token)?;
    let mut chat = Chat {
        llm,
        provider: args.provider,
        model: args.model.clone(),
        max_tokens: args.max_tokens,
        system: args.system.clone(),
        project: args.project.clone(),
        history: Vec::new(),
    };
    if let Some(prompt) = &args.prompt {
        let turn = chat.ask(prompt, &mut std::io::stdout(), "").await?;
        println!();
        eprintln!("[{}]", turn.describe());
        return Ok(());
    }
    if args.worker {
        let name = args.session.clone().unwrap_or_default();
        check_session_name(&name)?;
        return worker(&mut chat, &api, &name).await;
    }
    interactive(&mut chat, &api).await
}

/// What one answer came to.
struct Turn {
    provider: String,
    failovers: String,
    input_tokens: u64,
    output_tokens: u64,
}

impl Turn {
    fn describe(&self) -> String {
        format!(
            "provider={} failovers={} tokens={}/{}",
            self.provider, self.failovers, self.input_tokens, self.output_tokens
        )
    }
}

struct Chat {
    llm: UnifiedLlmClient,
    provider: Option<ProviderId>,
    model: String,
    max_tokens: u32,
    system: Option<String>,
    project: Option<String>,
    history: Vec<Value>,
}

impl Chat {
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = Vec::new();
        if let Some(p) = self.provider {
            h.push((
                HeaderName::from_static(crate::llm::gateway::PROVIDER_HEADER),
                HeaderValue::from_static(p.as_str()),
            ));
        }
        if let Some(v) = self
            .project
            .as_deref()
            .and_then(|p| HeaderValue::from_str(p).ok())
        {
            h.push((
                HeaderName::from_static(crate::llm::gateway::PROJECT_HEADER),
                v,
            ));
        }
        h
    }

    /// Sends `prompt` with the history, streams the answer to `out` (each line prefixed with
    /// `indent`), and keeps both turns in the history when it succeeded.
    async fn ask(
        &mut self,
        prompt: &str,
        out: &mut impl Write,
        indent: &str,
    ) -> anyhow::Result<Turn> {
        let mut messages = self.history.clone();
        messages.push(json!({"role": "user", "content": prompt}));
        let mut body =
            json!({"model": self.model, "max_tokens": self.max_tokens, "messages": messages});
        if let Some(s) = &self.system {
            body["system"] = json!(s);
        }
        let served = self
            .llm
            .messages_stream(body, self.headers())
            .await
            .map_err(|e| match e {
                CallError::Client {
                    message, status, ..
                } => anyhow::anyhow!("the gateway refused the prompt ({status}): {message}"),
                CallError::Exhausted { failed, .. } => {
                    let why = failed
                        .first()
                        .map_or_else(String::new, |f| f.reason.clone());
                    anyhow::anyhow!("cannot reach the gateway's answer: {why}")
                }
            })?;
        let ServedBody::Stream(mut up) = served.body else {
            anyhow::bail!("the gateway did not stream");
        };
        let header = |n: &str| {
            up.response_headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned()
        };
        let mut turn = Turn {
            provider: header(crate::llm::gateway::PROVIDER_HEADER),
            failovers: header(crate::llm::gateway::FAILOVERS_HEADER),
            input_tokens: 0,
            output_tokens: 0,
        };
        let mut answer = String::new();
        let mut at_line_start = true;
        let mut done = false;
        while let Some((_, parts)) = up
            .next()
            .await
            .map_err(|f| anyhow::anyhow!("the answer broke off: {f}"))?
        {
            for p in parts {
                match p {
                    Part::Text(t) => {
                        for ch in t.chars() {
                            if at_line_start {
                                out.write_all(indent.as_bytes())?;
                            }
                            let mut buf = [0u8; 4];
                            out.write_all(ch.encode_utf8(&mut buf).as_bytes())?;
                            at_line_start = ch == '\n';
                        }
                        out.flush()?;
                        answer.push_str(&t);
                    }
                    Part::Usage { input, output } => {
                        turn.input_tokens = input.filter(|i| *i > 0).unwrap_or(turn.input_tokens);
                        turn.output_tokens =
                            output.filter(|o| *o > 0).unwrap_or(turn.output_tokens);
                    }
                    Part::Done => done = true,
                    _ => {}
                }
            }
            if done {
                break;
            }
        }
        if !done {
            anyhow::bail!("the answer broke off before it was complete");
        }
        self.history
            .push(json!({"role": "user", "content": prompt}));
        self.history
            .push(json!({"role": "assistant", "content": answer}));
        while self.history.len() > MAX_HISTORY_MESSAGES {
            self.history.drain(..2);
        }
        Ok(turn)
    }

    fn provider_name(&self) -> &'static str {
        self.provider.map_or("auto", ProviderId::as_str)
    }

    /// Handles a `/command`; returns false for `/quit`.
    async fn command(&mut self, line: &str, api: &crate::client::Client) -> anyhow::Result<bool> {
        let mut words = line.split_whitespace();
        match words.next().unwrap_or("") {
            "/quit" | "/exit" => return Ok(false),
            "/provider" => match words.next() {
                None => println!("provider: {}", self.provider_name()),
                Some("auto") => {
                    self.provider = None;
                    println!("provider: auto (the gateway's chain)");
                }
                Some(p) => match p.parse::<ProviderId>() {
                    Ok(p) => {
                        self.provider = Some(p);
                        println!("provider: {p} first, then the gateway's failover chain");
                    }
                    Err(e) => println!("{e}"),
                },
            },
            "/status" => status(api, false).await?,
            "/providers" => list_providers(api, false).await?,
            "/clear" => {
                self.history.clear();
                println!("history cleared");
            }
            _ => println!("commands: /provider [NAME|auto], /status, /providers, /clear, /quit"),
        }
        Ok(true)
    }
}

async fn interactive(chat: &mut Chat, api: &crate::client::Client) -> anyhow::Result<()> {
    println!(
        "architect chat via {} (provider: {}). /help for commands, Ctrl-D to quit.",
        api.base_url(),
        chat.provider_name()
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        print!("you> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('/') {
            if !chat.command(line, api).await? {
                break;
            }
            continue;
        }
        match chat.ask(line, &mut std::io::stdout(), "").await {
            Ok(turn) => println!("\n[{}]", turn.describe()),
            Err(e) => println!("\nerror: {e:#}"),
        }
    }
    Ok(())
}

fn title(name: &str, state: &str) {
    print!("\x1b]2;architect-chat {name}: {state}\x07");
}

async fn worker(chat: &mut Chat, api: &crate::client::Client, name: &str) -> anyhow::Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        title(name, "idle");
        println!(
            "{MARKER_READY} session={name} provider={}",
            chat.provider_name()
        );
        print!("chat> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next_line().await? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('/') {
            if !chat.command(line, api).await? {
                break;
            }
            continue;
        }
        title(name, "busy");
        println!("{MARKER_BUSY} session={name}");
        std::io::stdout().flush()?;
        match chat.ask(line, &mut std::io::stdout(), "  ").await {
            Ok(turn) => println!(
                "\n{MARKER_DONE} session={name} provider={} failovers={}",
                turn.provider, turn.failovers
            ),
            Err(e) => println!(
                "\n{MARKER_ERROR} session={name}: {}",
                format!("{e:#}").replace('\n', " ")
            ),
        }
    }
    Ok(())
}

fn check_session_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!("session name '{name}': use 1 to 64 letters, digits, '-' or '_'");
    }
    Ok(())
}

/// `tmux [-L socket] new-session -d -s NAME -e ARCHITECT_URL=… -e ARCHITECT_TOKEN=… <exe> chat
/// --worker --session NAME [--provider P]`, as an argv (no shell). The token travels in the
/// session's environment, not on the worker's command line.
fn start_worker(
    cfg: &ClientConfig,
    name: &str,
    provider: Option<ProviderId>,
    socket: Option<&str>,
) -> anyhow::Result<()> {
    check_session_name(name)?;
    let token = cfg.token.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
        anyhow::anyhow!("no API token: set ARCHITECT_TOKEN or pass --token (the worker calls the gateway with it)")
    })?;
    let exe = std::env::current_exe().context("finding this program's path")?;
    let mut cmd = std::process::Command::new("tmux");
    if let Some(s) = socket {
        cmd.args(["-L", s]);
    }
    cmd.args(["new-session", "-d", "-s", name, "-x", "160", "-y", "50"])
        .arg("-e")
        .arg(format!("ARCHITECT_URL={}", cfg.url))
        .arg("-e")
        .arg(format!("ARCHITECT_TOKEN={token}"))
        .arg(exe)
        .args(["chat", "--worker", "--session", name]);
    if let Some(p) = provider {
        cmd.args(["--provider", p.as_str()]);
    }
    let out = cmd.output().context("running tmux (is it installed?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "tmux could not start session '{name}': {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let attach = match socket {
        Some(s) => format!("tmux -L {s} attach -t {name}"),
        None => format!("tmux attach -t {name}"),
    };
    println!(
        "chat worker '{name}' started in tmux (provider: {}); watch it with: {attach}",
        provider.map_or("auto", ProviderId::as_str)
    );
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn status(api: &crate::client::Client, as_json: bool) -> anyhow::Result<()> {
    let circuits: Value = api
        .get(
            "/api/llm-metrics/circuit-breakers",
            &[] as &[(&str, String)],
        )
        .await?;
    let summary: Value = api
        .get("/api/llm-metrics/summary", &[] as &[(&str, String)])
        .await?;
    if as_json {
        return crate::cli::output::json(
            &json!({"summary": summary, "circuit_breakers": circuits}),
        );
    }
    println!(
        "gateway {}: {} requests, success rate {}, cost ${:.6}, failovers {}",
        api.base_url(),
        s(&summary["total_requests"]),
        summary["success_rate"]
            .as_f64()
            .map_or("—".into(), |r| format!("{:.1}%", r * 100.0)),
        summary["total_cost"].as_f64().unwrap_or(0.0),
        s(&summary["failover_count"]),
    );
    let rows = circuits
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            vec![
                s(&c["provider"]),
                s(&c["state"]),
                format!("{}/{}", s(&c["consecutive_failures"]), s(&c["threshold"])),
                s(&c["retry_at"]),
                s(&c["rate_limited_until"]),
            ]
        })
        .collect();
    crate::cli::output::table(
        &[
            "provider",
            "circuit",
            "failures",
            "probe after",
            "rate limited until",
        ],
        rows,
    );
    Ok(())
}

async fn list_providers(api: &crate::client::Client, as_json: bool) -> anyhow::Result<()> {
    let providers: Value = api
        .get("/api/llm-metrics/providers", &[] as &[(&str, String)])
        .await?;
    if as_json {
        return crate::cli::output::json(&providers);
    }
    let rows = providers
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                s(&p["provider"]),
                p["chain_position"]
                    .as_u64()
                    .map_or("not in chain".into(), |i| {
                        if i == 0 {
                            "primary".into()
                        } else {
                            format!("fallback {i}")
                        }
                    }),
                if p["configured"] == true {
                    "yes".into()
                } else {
                    "no key".into()
                },
                s(&p["circuit_state"]),
                if p["local"] == true {
                    "free (local)".into()
                } else {
                    format!("${:.6}", p["cost"].as_f64().unwrap_or(0.0))
                },
                s(&p["description"]),
            ]
        })
        .collect();
    crate::cli::output::table(
        &[
            "provider",
            "chain",
            "configured",
            "circuit",
            "cost",
            "description",
        ],
        rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_checked() {
        assert!(check_session_name("codex_ollama-2").is_ok());
        for bad in ["", "a b", "x;rm -rf /", "a.b", "a:b", &"x".repeat(65)] {
            assert!(check_session_name(bad).is_err(), "{bad}");
        }
    }
}
