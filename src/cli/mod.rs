//! The command tree: one clap enum for every role. Each subcommand lives in its own file and
//! stays thin: parse, call the library or the client, print.

mod agent;
mod assigner;
mod chat;
mod daemon;
pub mod exec_guard;
mod hook;
mod milestones;
mod names;
mod output;
mod secrets;
mod session;
mod tasks;
mod terminal;
mod test;
mod token;
mod tracking;
mod worker;

use crate::config::{ClientConfig, LogFormat, ServeConfig};
use clap::{Parser, Subcommand};

/// architect: the control plane for a fleet of AI coding agents.
///
/// Run `architect serve` for the dashboard and API (http://127.0.0.1:8080, data in ./data),
/// then use the client commands with an API token (ARCHITECT_URL, ARCHITECT_TOKEN).
#[derive(Parser, Debug)]
#[command(
    name = "architect",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Log line format (also ARCHITECT_LOG_FORMAT); RUST_LOG sets the level (default info).
    #[arg(long, global = true, env = "ARCHITECT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// `Serve` carries every server setting (the LLM gateway's included); the enum is built once per
// process, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the dashboard, the JSON API and the background loops (`--daemon` in the
    /// background; `--status`, `--stop`; HTTPS with `--ssl` or `--tls-cert`/`--tls-key`).
    Serve(ServeArgs),
    /// Apply database migrations and exit (serve also does this at start).
    Migrate {
        /// Directory holding architect.db.
        #[arg(long, env = "ARCHITECT_DATA_DIR", default_value = "./data")]
        data_dir: std::path::PathBuf,
        /// The database, as for `serve` (default: <data-dir>/architect.db).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<crate::db::DatabaseUrl>,
    },
    /// Projects: list, show, add, set, archive, unarchive.
    #[command(subcommand_required = true)]
    Projects {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: tracking::ProjectCmd,
    },
    /// Features: list, show, add, set (including status changes), workflow.
    Features {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: tracking::FeatureCmd,
    },
    /// Bugs: list, show, add, set.
    Bugs {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: tracking::BugCmd,
    },
    /// DevOps tasks: list, add, set.
    Devops {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: tracking::DevopsCmd,
    },
    /// Counts by status of every tracked entity.
    Stats {
        #[command(flatten)]
        client: ClientConfig,
    },
    /// API tokens: create one by logging in with your password (to bootstrap the CLI).
    Token {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: token::TokenCmd,
    },
    /// Vault secrets: list, get, set (value from stdin or a hidden prompt), rm, versions, audit.
    Secrets {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: secrets::SecretsCmd,
    },
    /// The vault itself: status, rotate-key (admin token).
    Vault {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: secrets::VaultCmd,
    },
    /// The task queue: list, add, show (with why a pending task waits), retry, cancel.
    #[command(subcommand_required = true)]
    Tasks {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: tasks::TaskCmd,
    },
    /// Run queued tasks (shell, python, git, test, build, deploy, ...) on this machine;
    /// --daemon, --status, --stop manage a background worker.
    Worker(worker::WorkerArgs),
    /// Node agent: register this machine, send its metrics, run commands from the control
    /// plane; --daemon, --status, --stop manage a background agent.
    Agent(agent::AgentArgs),
    /// The milestone worker: scan active projects for work (TODO/FIXME comments, TODO/PLAN/
    /// ROADMAP checkboxes, open bugs, error groups) and refresh their milestone plans;
    /// --scan (once), --project NAME, --daemon, --status, --stop.
    Milestones(milestones::MilestonesArgs),
    /// Chat with a model through architect's LLM gateway (interactive, -p, or --worker).
    Chat(chat::ChatArgs),
    /// Agent sessions in tmux: `session start NAME --agent claude|codex|chat|shell`.
    Session {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: session::SessionCmd,
    },
    /// The assigner's prompt queue: --send, --prompts, --sessions, --status, --retry,
    /// --retry-all, --reassign --to, --cancel, --clear [--days], --show.
    Assigner(assigner::AssignerArgs),
    /// The session terminal: `os: <msg>`, `os:5: <msg>`, status, sessions, prompts, watch;
    /// or --send, --status, --watch.
    Terminal(terminal::TerminalArgs),
    /// Data-driven test suites (JSON/YAML): `test run FILE|DIR...` against a live system
    /// (exit 1 on a failure), `test validate FILE`, `test schema`.
    Test {
        #[command(flatten)]
        client: ClientConfig,
        #[command(subcommand)]
        cmd: test::TestCmd,
    },
    /// Report a Claude Code hook event (run by the hooks `session start` installs; the event
    /// JSON comes on stdin).
    Hook(hook::HookArgs),
    /// Run a program that dies with its parent even on SIGKILL (the worker's task processes).
    #[command(hide = true, name = "exec-guard")]
    ExecGuard(exec_guard::ExecGuardArgs),
}

pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    use std::io::IsTerminal;
    // Colours only for a person at a terminal; never escape codes in files or journald.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `architect serve`: every server setting, and the background-mode flags that `worker` and
/// `agent` share (`daemon::Background`).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ServeConfig,
    #[command(flatten)]
    pub background: daemon::Background<ServeRole>,
}

/// `serve`'s place in the shared background mode.
#[derive(Clone, Debug)]
pub struct ServeRole;

impl daemon::DaemonRole for ServeRole {
    const WHAT: &'static str = "server";
    // `serve` takes no dashboard URL or token; these belong to the client roles.
    const DASHBOARD_HELP: &'static str = "";
    const TOKEN_HELP: &'static str = "";
    const NO_TOKEN: &'static str = "";
    const STATUS_HELP: &'static str =
        "Say whether the background server (--pid-file) runs; exit code 3 when it does not";
    const STOP_HELP: &'static str =
        "Stop the background server (--pid-file) gracefully: in-flight requests finish, loops stop";
    const PID_FILE_HELP: &'static str = "Pid file of the background server";
    const PID_FILE_ENV: &'static str = "ARCHITECT_SERVE_PID_FILE";
    const PID_FILE: &'static str = "./data/serve.pid";
    const LOG_FILE_HELP: &'static str = "Log file of the background server";
    const LOG_FILE_ENV: &'static str = "ARCHITECT_SERVE_LOG_FILE";
    const LOG_FILE: &'static str = "./data/serve.log";
}

/// How long `serve --stop` waits for the graceful shutdown before SIGKILL: in-flight requests,
/// the loops' last ticks and the ledger's flush.
const SERVE_STOP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Secrets given as flags reach the background server in its environment, not its argv.
const SERVE_SECRET_FLAGS: &[daemon::SecretFlag] = &[
    daemon::SecretFlag {
        flag: "--admin-password",
        env: "ARCHITECT_PASSWORD",
    },
    daemon::SecretFlag {
        flag: "--secret-key",
        env: "SECRET_KEY",
    },
    daemon::SecretFlag {
        flag: "--database-url",
        env: "DATABASE_URL",
    },
    daemon::SecretFlag {
        flag: "--master-key",
        env: "ARCHITECT_MASTER_KEY",
    },
    daemon::SecretFlag {
        flag: "--anthropic-api-key",
        env: "ANTHROPIC_API_KEY",
    },
    daemon::SecretFlag {
        flag: "--openai-api-key",
        env: "OPENAI_API_KEY",
    },
    daemon::SecretFlag {
        flag: "--google-api-key",
        env: "GOOGLE_API_KEY",
    },
    daemon::SecretFlag {
        flag: "--anythingllm-api-key",
        env: "ANYTHINGLLM_API_KEY",
    },
];

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let bg = &args.background;
            if let Some(code) = bg.status_or_stop(SERVE_STOP_PATIENCE).await {
                match code? {
                    0 => return Ok(()),
                    // `--status` of a stopped server: a distinct exit code for scripts.
                    code => std::process::exit(i32::from(code)),
                }
            }
            if bg.daemon {
                // What the background server would refuse, refused here, in the foreground.
                crate::serve::tls::files(&args.config)?;
                bg.daemon().start(SERVE_SECRET_FLAGS)?;
                return Ok(());
            }
            let server = crate::serve::start(args.config, crate::clock::Clock::System).await?;
            let ran = server.run_until_signal().await;
            args.background.finished();
            ran
        }
        Command::Migrate {
            data_dir,
            database_url,
        } => {
            let url = database_url.unwrap_or_else(|| crate::db::DatabaseUrl::sqlite_in(&data_dir));
            let db = crate::db::open(&url).await?;
            let n = crate::db::migrate(&db).await?;
            db.close().await;
            println!("{n} migration(s) applied to {url}");
            Ok(())
        }
        Command::Projects { client, cmd } => tracking::projects(&client, cmd).await,
        Command::Features { client, cmd } => tracking::features(&client, cmd).await,
        Command::Bugs { client, cmd } => tracking::bugs(&client, cmd).await,
        Command::Devops { client, cmd } => tracking::devops(&client, cmd).await,
        Command::Stats { client } => tracking::stats(&client).await,
        Command::Tasks { client, cmd } => tasks::run(&client, cmd).await,
        Command::Token { client, cmd } => token::run(&client, cmd).await,
        Command::Secrets { client, cmd } => secrets::secrets(&client, cmd).await,
        Command::Vault { client, cmd } => secrets::vault(&client, cmd).await,
        Command::Worker(args) => match worker::run(args).await? {
            0 => Ok(()),
            // `--status` of a stopped worker: a distinct exit code for scripts.
            code => std::process::exit(i32::from(code)),
        },
        Command::Milestones(args) => match milestones::run(args).await? {
            0 => Ok(()),
            code => std::process::exit(i32::from(code)),
        },
        Command::Agent(args) => match agent::run(args).await? {
            0 => Ok(()),
            // `--status` of a stopped agent: a distinct exit code for scripts.
            code => std::process::exit(i32::from(code)),
        },
        Command::Chat(args) => chat::run(args).await,
        Command::Session { client, cmd } => session::run(&client, cmd).await,
        Command::Hook(args) => hook::run(args).await,
        Command::Test { client, cmd } => match test::run(&client, cmd).await? {
            0 => Ok(()),
            // 1: a case failed; 2: an invalid file or flag (already printed).
            code => std::process::exit(i32::from(code)),
        },
        Command::Assigner(args) => assigner::run(args).await,
        Command::Terminal(args) => terminal::run(args).await,
        // Listed in the tree for its help text; main.rs runs it before parsing the rest (see
        // exec_guard::invoked), so this arm is reached only by a caller that skipped main.
        Command::ExecGuard(_) => {
            anyhow::bail!("exec-guard must be run by main, before the async runtime starts")
        }
    }
}

/// The one line `main` prints for a failed command: the error and its causes, but nothing
/// below a client error, whose message already carries its innermost cause (the transport
/// chain would name the URL again at every level).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.is::<crate::client::ClientError>() {
            break;
        }
    }
    parts.join(": ")
}

/// A client for the configured server; fails early and clearly without a token.
pub fn client(cfg: &ClientConfig) -> anyhow::Result<crate::client::Client> {
    let token = cfg.token.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "no API token: set ARCHITECT_TOKEN or pass --token (create one under Users & tokens in the dashboard, or with `architect token create`)"
        )
    })?;
    Ok(crate::client::Client::new(&cfg.url, Some(token)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }
}
