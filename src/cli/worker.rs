//! `architect worker`: SPEC.md's task_worker. Runs tasks from the queue in the foreground, or
//! with `--daemon` in the background (pid file + log file); `--status` and `--stop` act on
//! that daemon. The work itself is `tasks::runner`.

use super::daemon::{shutdown_signal, DaemonArgs, DaemonRole};
use crate::tasks::handlers::HandlerSettings;
use crate::tasks::process::ExecGuard;
use crate::tasks::runner::{Worker, WorkerOptions};
use clap::Args;
use std::time::Duration;

/// `architect worker`'s place in [`DaemonArgs`].
#[derive(Debug, Clone)]
pub struct WorkerRole;

impl DaemonRole for WorkerRole {
    const WHAT: &'static str = "worker";
    const DASHBOARD_HELP: &'static str = "Base URL of the architect server; several replicas: repeat the flag or separate the URLs with commas, each tried in turn when one cannot be reached";
    const TOKEN_HELP: &'static str =
        "API token with the `worker` scope (create one under Users & tokens). Prefer the env var";
    const NO_TOKEN: &'static str = "no API token: set ARCHITECT_TOKEN or pass --token (a token with the 'worker' scope, from Users & tokens)";
    const STATUS_HELP: &'static str =
        "Say whether the background worker (--pid-file) runs; exit code 3 when it does not";
    const STOP_HELP: &'static str = "Stop the background worker (--pid-file) gracefully";
    const PID_FILE_HELP: &'static str = "Pid file of the background worker";
    const PID_FILE_ENV: &'static str = "ARCHITECT_WORKER_PID_FILE";
    const PID_FILE: &'static str = "./data/worker.pid";
    const LOG_FILE_HELP: &'static str = "Log file of the background worker";
    const LOG_FILE_ENV: &'static str = "ARCHITECT_WORKER_LOG_FILE";
    const LOG_FILE: &'static str = "./data/worker.log";
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub common: DaemonArgs<WorkerRole>,

    /// Task types to claim, comma-separated. Default: every built-in type when --allow-exec
    /// is given (without it the worker runs none and refuses to start).
    #[arg(long, value_delimiter = ',')]
    pub types: Option<Vec<String>>,

    /// Tags this worker offers, comma-separated (a task with tags needs all of them).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,

    /// Tasks run at the same time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// The `exec` capability: run programs for tasks. Every built-in type does (shell, python,
    /// git, the project's test/build/deploy commands, tmux sessions and keys), so without this
    /// the worker claims none of them and refuses any it is handed. Reported to the server and
    /// shown on the Workers page. `--allow-shell` is the old name.
    #[arg(long, visible_alias = "allow-shell")]
    pub allow_exec: bool,

    /// Worker name shown on the dashboard. Default: <host>-<pid>.
    #[arg(long)]
    pub name: Option<String>,

    /// Node name (tasks can be pinned to a node). Default: the host name.
    #[arg(long)]
    pub node: Option<String>,

    /// Lease length asked for on each claim, seconds; a task of a worker that dies is handed
    /// out again after this.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(i64).range(2..=3600))]
    pub lease_s: i64,

    /// Long-poll length of each claim, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub wait_s: f64,

    /// Seconds running tasks may take to finish after SIGTERM before they are stopped and
    /// released.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace: u64,

    /// Interpreter for python tasks.
    #[arg(long, default_value = "python3")]
    pub python: String,

    /// Output bytes kept per task (the tail).
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(1024..=262_144))]
    pub max_output_bytes: u64,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    let common = &args.common;
    let patience = Duration::from_secs(args.shutdown_grace + 10);
    if let Some(code) = common.status_or_stop(patience).await {
        return code;
    }
    let token = common.token()?;
    let worker = build(&args, &token);
    // Contradictory options fail now, in the foreground, not later in a log file.
    worker.claim_types().map_err(anyhow::Error::msg)?;
    if common.daemon {
        return common.start_background();
    }
    let summary = worker.run_until(shutdown_signal()).await;
    common.finished();
    summary?;
    Ok(0)
}

fn build(args: &WorkerArgs, token: &str) -> Worker {
    let mut o = WorkerOptions::new(&args.common.servers(), token);
    if let Some(n) = &args.name {
        o.name = n.clone();
    }
    if let Some(n) = &args.node {
        o.node = n.clone();
    }
    o.types = args.types.clone();
    o.tags = args.tags.clone();
    o.concurrency = usize::from(args.concurrency);
    o.lease_s = args.lease_s;
    o.wait_s = args.wait_s.clamp(0.0, crate::tasks::MAX_WAIT_S);
    o.shutdown_grace = Duration::from_secs(args.shutdown_grace);
    o.settings = HandlerSettings {
        allow_exec: args.allow_exec,
        python: args.python.clone(),
        max_output: usize::try_from(args.max_output_bytes).unwrap_or(64 * 1024),
        // Task processes die with this worker, even on kill -9. Without our own binary's path
        // they would still run, only without that guarantee: say so.
        exec_guard: ExecGuard::this_binary()
            .map_err(|e| tracing::warn!(error = %e, "cannot find this binary: task processes will not die with the worker"))
            .ok(),
    };
    Worker::new(o)
}
