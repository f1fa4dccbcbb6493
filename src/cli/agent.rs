//! `architect agent`: SPEC.md's node_agent. Registers this machine as a node, sends its real
//! metrics every interval, and runs the control plane's commands (held long-poll, no inbound
//! port), tmux operations and `session start --node` included (`--tmux-socket` picks the tmux
//! server). `--daemon` runs it in the background (pid file + log file); `--status` and `--stop`
//! act on that daemon. The work itself is `nodes::agent`, the same code `serve` runs in-process
//! for its own host.

use super::daemon::{shutdown_signal, DaemonArgs, DaemonRole};
use crate::client::Client;
use crate::nodes::agent::{Agent, AgentOptions};
use crate::nodes::sampler;
use crate::nodes::transport::Http;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// `architect agent`'s place in [`DaemonArgs`].
#[derive(Debug, Clone)]
pub struct AgentRole;

impl DaemonRole for AgentRole {
    const WHAT: &'static str = "agent";
    const DASHBOARD_HELP: &'static str = "Base URL of the architect server (the dashboard); several replicas: repeat the flag or separate the URLs with commas, each tried in turn when one cannot be reached";
    const TOKEN_HELP: &'static str = "API token with the `agent` scope (Nodes → Add node creates one). Prefer the env var: a flag shows in the process list. The node is bound to the token that registers it";
    const NO_TOKEN: &'static str = "no API token: set ARCHITECT_TOKEN or pass --token (a token with the 'agent' scope: Nodes → Add node, or Users & tokens)";
    const STATUS_HELP: &'static str =
        "Say whether the background agent (--pid-file) runs; exit code 3 when it does not";
    const STOP_HELP: &'static str = "Stop the background agent (--pid-file)";
    const PID_FILE_HELP: &'static str = "Pid file of the background agent";
    const PID_FILE_ENV: &'static str = "ARCHITECT_AGENT_PID_FILE";
    const PID_FILE: &'static str = "./data/agent.pid";
    const LOG_FILE_HELP: &'static str = "Log file of the background agent";
    const LOG_FILE_ENV: &'static str = "ARCHITECT_AGENT_LOG_FILE";
    const LOG_FILE: &'static str = "./data/agent.log";
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub common: DaemonArgs<AgentRole>,

    /// This node's id on the dashboard: letters, digits, '.', '_', '-'. Default: the host name.
    #[arg(long, env = "ARCHITECT_NODE_ID")]
    pub node_id: Option<String>,

    /// Heartbeat interval: `5s`, `1m`, or seconds (1 s to 1 h). The dashboard shows the node
    /// stale after about one missed heartbeat and offline after three.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,

    /// Longest wait between retries while the dashboard cannot be reached (exponential backoff
    /// with jitter from 1 s up to this).
    #[arg(long, default_value = "60s", value_parser = parse_interval)]
    pub max_backoff: Duration,

    /// tmux server this node's tmux commands and started sessions use: a `tmux -L` socket
    /// name (letters, digits, '_', '-'). Empty: the user's default server. The same variable
    /// as `architect serve --tmux-socket`.
    #[arg(long, env = "ARCHITECT_TMUX_SOCKET")]
    pub tmux_socket: Option<String>,

    /// Directory for what `session start --node <this node>` creates here: git worktrees
    /// (<data-dir>/worktrees/<session>) and Claude Code settings (<data-dir>/agents/<session>).
    #[arg(long, env = "ARCHITECT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// `5s`, `2m`, `1h`, `1500ms` or plain seconds; 1 s to 1 h.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 5s, 1m or 30"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit '{other}': use ms, s, m or h")),
    };
    if !(1.0..=3600.0).contains(&secs) {
        return Err("must be between 1s and 1h".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub async fn run(args: AgentArgs) -> anyhow::Result<u8> {
    let common = &args.common;
    if let Some(code) = common.status_or_stop(Duration::from_secs(10)).await {
        return code;
    }
    let token = common.token()?;
    let name = match &args.node_id {
        Some(n) => n.trim().to_string(),
        None => sampler::node_name_from(&sampler::hostname()),
    };
    // Contradictory options fail now, in the foreground, not later in a log file.
    crate::nodes::validate_node_name(&name)
        .map_err(|e| anyhow::anyhow!("--node-id: {}", e.message))?;
    if let Some(s) = args.tmux_socket.as_deref().filter(|s| !s.is_empty()) {
        crate::tmux::SessionName::parse(s).map_err(|_| {
            anyhow::anyhow!("--tmux-socket: 1 to 64 characters of letters, digits, '_' and '-'")
        })?;
    }
    if common.daemon {
        return common.start_background();
    }
    let mut opts = AgentOptions::new(&name, args.interval);
    opts.max_backoff = args.max_backoff;
    opts.tmux_socket = args.tmux_socket.clone().filter(|s| !s.is_empty());
    opts.data_dir = std::path::absolute(&args.data_dir).unwrap_or(args.data_dir.clone());
    opts.dashboard_url = Some(common.first_server());
    let servers = common.servers();
    tracing::info!(node = %name, dashboard = %servers, interval_s = args.interval.as_secs_f64(), "architect agent starting");
    let client = Client::new(&servers, Some(&token));
    opts.control_plane = Some(client.clone());
    let agent = Agent::new(Http(client), opts);
    agent.run_until(shutdown_signal()).await;
    common.finished();
    tracing::info!("architect agent stopped");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_interval("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("2d").is_err());
        assert!(parse_interval("fast").is_err());
    }
}
