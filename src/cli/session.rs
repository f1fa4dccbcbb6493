//! `architect session start NAME --agent claude|codex|chat|shell`: launches an agent in tmux
//! through the server (which installs Claude Code hooks and, with --worktree, a git worktree),
//! on the server's own node or, with --node, through that node's `architect agent`.

use crate::agents::launch::{LaunchAgent, StartSession, StartedSession};
use crate::agents::SessionRole;
use crate::config::ClientConfig;
use clap::Subcommand;

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
        /// Keep the agent's own provider configuration. Without it, the agent's model requests
        /// go through architect's LLM gateway, so failover, budgets and the cost ledger apply:
        /// Claude Code gets ANTHROPIC_BASE_URL = the dashboard and ANTHROPIC_AUTH_TOKEN = a
        /// token scoped to this session (in its environment, never on a command line); Codex
        /// gets `-c` overrides making the gateway's /v1/responses its model provider, reading
        /// the same token from ARCHITECT_TOKEN. chat always uses the gateway.
        #[arg(long)]
        no_gateway: bool,
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
            no_gateway,
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
                worktree,
                program,
                args,
                env: Default::default(),
                no_gateway,
            };
            let started: StartedSession = client.post("/api/agents/sessions", &req).await?;
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
