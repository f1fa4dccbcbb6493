//! The processes themselves: how a supervised `architect worker` is started (under the exec
//! guard, which leads its own process group, its token in the environment, output appended
//! to its log file) and stopped (SIGTERM to the group, then SIGKILL after [`STOP_GRACE`]).
//!
//! The guard (`cli::exec_guard`, the one the worker starts task processes with) ties the
//! worker to `serve`: a `serve` killed outright (SIGKILL, the OOM killer) stops no worker,
//! and its restart starts the type again, so without the guard the old worker would run on
//! beside the new one with a token nobody holds. When `serve` dies the guard kills the group.

use crate::tasks::process::{signal_group, ExecGuard};
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;

/// Time a stopping worker gets to finish or release its tasks before SIGKILL. The worker is
/// started with a shorter shutdown grace so it releases its tasks within this.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
const WORKER_SHUTDOWN_GRACE_S: &str = "10";

/// How one worker is started.
pub(super) struct Launch {
    pub program: PathBuf,
    pub url: String,
    pub token: String,
    /// Start it with `--allow-exec`.
    pub allow_exec: bool,
    pub log_file: PathBuf,
}

pub(super) fn spawn(task_type: &str, l: &Launch) -> std::io::Result<Child> {
    if let Some(dir) = l.log_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&l.log_file)?;
    let mut args: Vec<String> = [
        "--dashboard",
        &l.url,
        "--types",
        task_type,
        "--name",
        &format!("serve-{task_type}"),
        "--shutdown-grace",
        WORKER_SHUTDOWN_GRACE_S,
    ]
    .map(String::from)
    .to_vec();
    if l.allow_exec {
        args.push("--allow-exec".into());
    }
    let program = l.program.to_string_lossy();
    let mut cmd = ExecGuard::new(l.program.clone()).command(&program, &[]);
    cmd.arg("worker")
        .args(&args)
        .env("ARCHITECT_TOKEN", &l.token)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own group, led by the guard: a Ctrl-C meant for `serve` must not hit the workers
        // before `serve` stops them in order, and the guard kills the group if `serve` dies.
        .process_group(0);
    cmd.spawn()
}

pub(super) fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// SIGTERM to the group (the guard ignores it while `serve` lives and exits as the worker
/// does), then SIGKILL to the group after `STOP_GRACE`.
pub(super) async fn stop_child(mut child: Child) -> String {
    let group = child.id().and_then(|p| i32::try_from(p).ok());
    if let Some(pgid) = group {
        signal_group(pgid, Signal::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(Ok(s)) => describe(s),
        _ => {
            if let Some(pgid) = group {
                signal_group(pgid, Signal::SIGKILL);
            }
            let _ = child.start_kill();
            child
                .wait()
                .await
                .map(describe)
                .unwrap_or_else(|e| e.to_string())
        }
    }
}

/// Awaits all futures concurrently (the stops overlap, so shutdown waits one grace, not N).
pub(super) async fn futures_join<F: std::future::Future + Send + 'static>(
    fs: Vec<F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
