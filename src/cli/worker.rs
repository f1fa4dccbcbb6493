//! `architect worker`: SPEC.md's task_worker. Runs tasks from the queue in the foreground, or
//! with `--daemon` in the background (pid file + log file); `--status` and `--stop` act on
//! that daemon. The work itself is `tasks::runner`.

use crate::tasks::handlers::HandlerSettings;
use crate::tasks::runner::{Worker, WorkerOptions};
use anyhow::Context;
use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Base URL of the architect server.
    #[arg(long, env = "ARCHITECT_URL", default_value = "http://127.0.0.1:8080")]
    pub dashboard: String,

    /// API token with the `worker` scope (create one under Users & tokens). Prefer the env var.
    #[arg(long, env = "ARCHITECT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Task types to claim, comma-separated. Default: every built-in type, except shell and
    /// python unless --allow-shell.
    #[arg(long, value_delimiter = ',')]
    pub types: Option<Vec<String>>,

    /// Tags this worker offers, comma-separated (a task with tags needs all of them).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,

    /// Tasks run at the same time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Run `shell` and `python` tasks. They execute arbitrary code from the task payload, so
    /// they are refused unless this is given.
    #[arg(long)]
    pub allow_shell: bool,

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

/// Exit code of `--status` when the worker is not running (LSB's "program is not running").
pub const NOT_RUNNING: u8 = 3;

pub async fn run(args: WorkerArgs) -> anyhow::Result<u8> {
    if args.status {
        return status(&args.pid_file);
    }
    if args.stop {
        return stop(
            &args.pid_file,
            Duration::from_secs(args.shutdown_grace + 10),
        )
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
        return daemonize(&args);
    }
    let summary = worker.run_until(shutdown_signal()).await;
    if args.owns_pid_file {
        remove_own_pid_file(&args.pid_file);
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
        allow_shell: args.allow_shell,
        python: args.python.clone(),
        max_output: usize::try_from(args.max_output_bytes).unwrap_or(64 * 1024),
    };
    Worker::new(o)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => !is_zombie(pid),
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// A zombie has exited; only its parent has not collected it yet.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn remove_own_pid_file(pid_file: &Path) {
    if read_pid(pid_file) == i32::try_from(std::process::id()).ok() {
        let _ = std::fs::remove_file(pid_file);
    }
}

fn daemonize(args: &WorkerArgs) -> anyhow::Result<u8> {
    if let Some(pid) = read_pid(&args.pid_file).filter(|p| alive(*p)) {
        anyhow::bail!(
            "a worker already runs with pid {pid} ({}); stop it with --stop",
            args.pid_file.display()
        );
    }
    for f in [&args.pid_file, &args.log_file] {
        if let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log_file)
        .with_context(|| format!("opening {}", args.log_file.display()))?;
    let exe = std::env::current_exe().context("finding the architect binary")?;
    let mut rest: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--daemon")
        .collect();
    rest.push("--owns-pid-file".into());
    let child = std::process::Command::new(exe)
        .args(&rest)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Out of the terminal's process group: closing the terminal or Ctrl-C there does not
        // reach it.
        .process_group(0)
        .spawn()
        .context("starting the background worker")?;
    std::fs::write(&args.pid_file, format!("{}\n", child.id()))
        .with_context(|| format!("writing {}", args.pid_file.display()))?;
    println!(
        "worker started in the background: pid {} (log {}, stop with --stop)",
        child.id(),
        args.log_file.display()
    );
    Ok(0)
}

fn status(pid_file: &Path) -> anyhow::Result<u8> {
    match read_pid(pid_file) {
        Some(pid) if alive(pid) => {
            println!("worker running: pid {pid} ({})", pid_file.display());
            Ok(0)
        }
        Some(pid) => {
            println!(
                "worker not running (stale pid file {} names pid {pid})",
                pid_file.display()
            );
            Ok(NOT_RUNNING)
        }
        None => {
            println!("worker not running (no pid file at {})", pid_file.display());
            Ok(NOT_RUNNING)
        }
    }
}

async fn stop(pid_file: &Path, patience: Duration) -> anyhow::Result<u8> {
    let Some(pid) = read_pid(pid_file).filter(|p| alive(*p)) else {
        let _ = std::fs::remove_file(pid_file);
        println!("worker not running");
        return Ok(0);
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM).with_context(|| format!("signalling pid {pid}"))?;
    let deadline = Instant::now() + patience;
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if alive(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        println!(
            "worker {pid} did not stop in {}s: killed",
            patience.as_secs()
        );
    } else {
        println!("worker {pid} stopped");
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(0)
}
