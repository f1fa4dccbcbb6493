//! `architect worker`: SPEC.md's task_worker. Runs tasks from the queue in the foreground, or
//! with `--daemon` in the background (pid file + log file); `--status` and `--stop` act on
//! that daemon. The work itself is `tasks::runner`.

use super::daemon::{shutdown_signal, Daemon, SecretFlag};
use crate::tasks::handlers::HandlerSettings;
use crate::tasks::process::ExecGuard;
use crate::tasks::runner::{Worker, WorkerOptions};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Base URL of the architect server.
    #[arg(long, env = "ARCHITECT_URL", default_value = "http://127.0.0.1:8080")]
    pub dashboard: String,

    /// API token with the `worker` scope (create one under Users & tokens). Prefer the env var.
    #[arg(long, env = "ARCHITECT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

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

    /// Run in the background, logging to --log-file; the pid goes to --pid-file.
    #[arg(long, conflicts_with_all = ["status", "stop"])]
    pub daemon: bool,

    /// Say whether the background worker (--pid-file) runs; exit code 3 when it does not.
    #[arg(long, conflicts_with = "stop")]
    pub status: bool,

    /// Stop the background worker (--pid-file) gracefully.
    #[arg(long)]
    pub stop: bool,

    /// Pid file of the background worker.
    #[arg(
        long,
        env = "ARCHITECT_WORKER_PID_FILE",
        default_value = "./data/worker.pid"
    )]
    pub pid_file: PathBuf,

    /// Log file of the background worker.
    #[arg(
        long,
        env = "ARCHITECT_WORKER_LOG_FILE",
        default_value = "./data/worker.log"
    )]
    pub log_file: PathBuf,

    /// Set on the background process itself: it removes the pid file when it exits.
    #[arg(long, hide = true)]
    pub owns_pid_file: bool,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    let daemon = Daemon {
        what: "worker",
        pid_file: &args.pid_file,
        log_file: &args.log_file,
    };
    if args.status {
        return daemon.status();
    }
    if args.stop {
        return daemon
            .stop(Duration::from_secs(args.shutdown_grace + 10))
            .await;
    }
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no API token: set ARCHITECT_TOKEN or pass --token (a token with the 'worker' scope, from Users & tokens)"
            )
        })?;
    let worker = build(&args, &token);
    // Contradictory options fail now, in the foreground, not later in a log file.
    worker.claim_types().map_err(anyhow::Error::msg)?;
    if args.daemon {
        return daemon.start(&[SecretFlag {
            flag: "--token",
            env: "ARCHITECT_TOKEN",
        }]);
    }
    let summary = worker.run_until(shutdown_signal()).await;
    if args.owns_pid_file {
        daemon.remove_own_pid_file();
    }
    summary?;
    Ok(0)
}

fn build(args: &WorkerArgs, token: &str) -> Worker {
    let mut o = WorkerOptions::new(&args.dashboard, token);
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
