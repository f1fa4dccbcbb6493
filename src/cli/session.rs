//! `architect session start NAME --agent claude|codex|chat|shell`: launches an agent in tmux
//! through the server (which installs Claude Code hooks and, with --worktree, a git worktree),
//! on the server's own node or, with --node, through that node's `architect agent`.

use crate::agents::launch::{LaunchAgent, StartSession, StartedSession};
use crate::agents::SessionRole;
use crate::client::{Client, ClientError};
use crate::config::ClientConfig;
use clap::Subcommand;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum SessionCmd {
    /// Start an agent in a new tmux session.
    Start {
        /// tmux session name (letters, digits, '_', '-').
        name: String,
        /// claude, codex, chat or shell.
        #[arg(long, value_parser = parse_agent)]
        agent: LaunchAgent,
        /// Working directory (absolute; default: the current directory).
        #[arg(long)]
        cwd: Option<String>,
        /// Node to start it on (default: the server's own). A remote node's `architect agent`
        /// starts it there, on its own tmux server, with hooks reporting to the dashboard URL
        /// that agent uses.
        #[arg(long)]
        node: Option<String>,
        /// high_level, manager or worker.
        #[arg(long, value_parser = parse_role)]
        role: Option<SessionRole>,
        /// Groups the assigner may route to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The manager session this one reports to.
        #[arg(long)]
        manager: Option<String>,
        /// Give the session its own git worktree and branch (feature/<slug>-MMDD).
        #[arg(long)]
        worktree: bool,
        /// The new worktree's branch instead of feature/<slug>-MMDD (implies --worktree).
        #[arg(long)]
        branch: Option<String>,
        /// Keep the agent's own provider configuration. Without it, the agent's model requests
        /// go through architect's LLM gateway, so failover, budgets and the cost ledger apply:
        /// Claude Code gets ANTHROPIC_BASE_URL = the dashboard and ANTHROPIC_AUTH_TOKEN = a
        /// token scoped to this session (in its environment, never on a command line); Codex
        /// gets `-c` overrides making the gateway's /v1/responses its model provider, reading
        /// the same token from ARCHITECT_TOKEN. chat always uses the gateway.
        #[arg(long)]
        no_gateway: bool,
        /// Seconds to watch the new session before calling it started: a session that ends
        /// within them (the agent crashed at once) fails the command with what its pane last
        /// showed. 0 skips the check.
        #[arg(long, default_value_t = 3.0, value_name = "SECS")]
        check_secs: f64,
        /// Program to run instead of the agent's default binary.
        #[arg(long)]
        program: Option<String>,
        /// Extra arguments for the agent, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn parse_agent(s: &str) -> Result<LaunchAgent, String> {
    s.parse()
}

fn parse_role(s: &str) -> Result<SessionRole, String> {
    s.parse()
}

pub async fn run(cfg: &ClientConfig, cmd: SessionCmd) -> anyhow::Result<()> {
    let client = super::client(cfg)?;
    match cmd {
        SessionCmd::Start {
            name,
            agent,
            cwd,
            node,
            role,
            groups,
            manager,
            worktree,
            branch,
            no_gateway,
            check_secs,
            program,
            args,
        } => {
            let cwd = match cwd {
                Some(c) => Some(c),
                None => std::env::current_dir()
                    .ok()
                    .map(|p| p.display().to_string()),
            };
            let req = StartSession {
                name,
                agent,
                cwd,
                node,
                role,
                groups,
                manager,
                worktree: worktree || branch.is_some(),
                branch,
                program,
                args,
                env: Default::default(),
                no_gateway,
            };
            let started: StartedSession = client.start_session(&req).await?;
            survived_first_seconds(&client, &started, check_secs).await?;
            if cfg.json {
                println!("{}", serde_json::to_string_pretty(&started)?);
            } else {
                println!(
                    "started {} ({}) on {} in {}{}{}",
                    started.session,
                    started.agent,
                    started.node,
                    started.cwd.as_deref().unwrap_or("?"),
                    started
                        .branch
                        .as_deref()
                        .map(|b| format!(" on branch {b}"))
                        .unwrap_or_default(),
                    if started.gateway {
                        ", through architect's LLM gateway"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
    }
}

/// How often the new session is looked at while it is watched.
const WATCH_EVERY: Duration = Duration::from_millis(150);
/// Pane lines kept from the last look, shown when the session ended.
const LAST_LINES: usize = 15;

/// Watches a just-started session for `secs` seconds: its pane is read every [`WATCH_EVERY`]
/// (or, without the pane-read capability, tmux's list is asked) and an error comes back as
/// soon as the session is gone, carrying the pane as last read. A session that ended before
/// its first read leaves nothing to show; the error then names the command to run by hand.
async fn survived_first_seconds(
    client: &Client,
    s: &StartedSession,
    secs: f64,
) -> anyhow::Result<()> {
    if secs.is_nan() || secs <= 0.0 {
        return Ok(());
    }
    let until = Instant::now() + Duration::from_secs_f64(secs.min(600.0));
    let mut last: Option<String> = None;
    let mut can_read_pane = true;
    loop {
        let alive = if can_read_pane {
            match client.capture_pane(&s.node, &s.session, 60).await {
                Ok(c) => {
                    last = Some(c.output);
                    true
                }
                Err(ClientError::Api { status: 404, .. }) => false,
                Err(ClientError::Api { status: 403, .. }) => {
                    can_read_pane = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            let list = client.tmux_sessions(&s.node).await?;
            list.sessions.iter().any(|x| x.tmux.name == s.session)
        };
        if !alive {
            anyhow::bail!("{}", ended_message(s, last.as_deref(), secs));
        }
        if Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

fn ended_message(s: &StartedSession, last: Option<&str>, secs: f64) -> String {
    let head = format!(
        "session '{}' on {} ended within {secs} s of its start: {} did not keep running",
        s.session,
        s.node,
        s.command.first().map(String::as_str).unwrap_or("the agent")
    );
    let shown: Vec<&str> = last
        .unwrap_or_default()
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if shown.is_empty() {
        return format!(
            "{head}; it ended before its pane could be read. Run it by hand to see why: {}",
            s.command.join(" ")
        );
    }
    let tail = &shown[shown.len().saturating_sub(LAST_LINES)..];
    format!(
        "{head}. Its pane last showed:\n{}",
        tail.iter()
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}
