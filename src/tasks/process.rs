//! Running a task's command as a process tree the worker fully controls.
//!
//! Each command starts in a new process group (`process_group(0)`), so a timeout or a cancel
//! signals the whole group — the shell, and everything it started — not just the direct child.
//! SIGTERM first, SIGKILL after [`KILL_GRACE`]. When the main process exits by itself the
//! group is killed too: a task's processes end with the task (a daemon a deploy script starts
//! must detach with `setsid`). Output (stdout and stderr interleaved) is kept as a bounded tail.
//!
//! A worker that dies without cleaning up (`kill -9`, OOM killer) must not leave its tasks'
//! processes running while the task runs again elsewhere: with an [`ExecGuard`] the program
//! runs under `architect exec-guard`, which the kernel signals when the worker dies
//! (`PR_SET_PDEATHSIG`) and which then kills the task's whole process group. Task processes
//! never inherit the worker's `ARCHITECT_TOKEN`.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// Between SIGTERM and SIGKILL: time for a polite process to clean up.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the main process exits, how long to wait for the output pipes to drain.
const DRAIN: Duration = Duration::from_secs(1);

/// Fires (turns true) when the task must stop: cancelled, lease lost or worker shutting down.
pub type CancelSignal = watch::Receiver<bool>;

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    /// Bytes of output kept (the tail).
    pub max_output: usize,
    /// Run the program under `architect exec-guard`, so it dies with this process.
    pub guard: Option<ExecGuard>,
}

/// Starts programs under `architect exec-guard --die-with-parent` (see `cli::exec_guard`): the
/// program and its process group are killed when this process dies, even by SIGKILL.
///
/// The kernel's parent-death signal follows the *thread* that forked the guard, not the
/// process. [`run`] spawns from the tokio task that awaits the process, i.e. on a runtime
/// worker thread, which lives as long as the runtime (the whole worker process). A thread that
/// ends earlier (a `spawn_blocking` thread, a short-lived `std::thread`) would fire the signal
/// while the worker lives; the guard then sees its parent pid unchanged and ignores it (see
/// `cli::exec_guard`), so that costs nothing, but keep spawning from long-lived threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecGuard {
    /// The `architect` binary that has the `exec-guard` subcommand.
    architect: PathBuf,
}

impl ExecGuard {
    /// A guard run by the given `architect` binary.
    pub fn new(architect: PathBuf) -> ExecGuard {
        ExecGuard { architect }
    }

    /// A guard run by the binary of this process; only right inside `architect` itself (a
    /// program embedding the worker runtime has no `exec-guard` subcommand).
    pub fn this_binary() -> std::io::Result<ExecGuard> {
        std::env::current_exe().map(ExecGuard::new)
    }

    /// The command that runs `program args` under the guard, tied to this process.
    pub fn command(&self, program: &str, args: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.architect);
        cmd.args([
            crate::cli::exec_guard::SUBCOMMAND,
            "--die-with-parent",
            "--expect-parent",
            &std::process::id().to_string(),
            "--",
            program,
        ])
        .args(args);
        cmd
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited by itself (successfully or not).
    Exited,
    /// Killed after the timeout.
    TimedOut,
    /// Killed because the task was cancelled or the worker is stopping.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct ProcessOutcome {
    pub ended: Ended,
    /// None when killed by a signal.
    pub exit_code: Option<i64>,
    pub output: String,
    pub duration_ms: i64,
}

/// The last `max` bytes written, and how many were dropped before them.
struct Tail {
    buf: VecDeque<u8>,
    max: usize,
    dropped: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend(data);
        while self.buf.len() > self.max {
            let extra = self.buf.len() - self.max;
            self.buf.drain(..extra);
            self.dropped += extra;
        }
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.buf.iter().copied().collect();
        let body = String::from_utf8_lossy(&bytes);
        if self.dropped > 0 {
            format!("[… {} earlier bytes not kept …]\n{body}", self.dropped)
        } else {
            body.into_owned()
        }
    }
}

fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    tail: Arc<Mutex<Tail>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut t) = tail.lock() {
                        t.push(&chunk[..n]);
                    }
                }
            }
        }
    })
}

/// Sends `sig` to the process group `pgid`; a group already gone is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// Runs the process to its end, or kills its tree on timeout or cancel.
pub async fn run(spec: &ProcessSpec, mut cancel: CancelSignal) -> std::io::Result<ProcessOutcome> {
    let mut cmd = match &spec.guard {
        Some(g) => g.command(&spec.program, &spec.args),
        None => {
            let mut c = tokio::process::Command::new(&spec.program);
            c.args(&spec.args);
            c
        }
    };
    // The worker's credential is not the task's.
    cmd.env_remove("ARCHITECT_TOKEN")
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // The group id is the child's pid (process_group(0)).
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let tail = Arc::new(Mutex::new(Tail {
        buf: VecDeque::new(),
        max: spec.max_output.max(1),
        dropped: 0,
    }));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(pump(out, tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(pump(err, tail.clone()));
    }
    let cancelled = async {
        // A dropped sender means the worker is gone: stop too.
        while !*cancel.borrow_and_update() {
            if cancel.changed().await.is_err() {
                break;
            }
        }
    };
    let (ended, status) = tokio::select! {
        s = child.wait() => (Ended::Exited, Some(s?)),
        _ = tokio::time::sleep(spec.timeout) => (Ended::TimedOut, None),
        _ = cancelled => (Ended::Cancelled, None),
    };
    let status = match status {
        Some(s) => s,
        None => {
            if let Some(g) = pgid {
                signal_group(g, Signal::SIGTERM);
            }
            match tokio::time::timeout(KILL_GRACE, child.wait()).await {
                Ok(s) => s?,
                Err(_) => {
                    if let Some(g) = pgid {
                        signal_group(g, Signal::SIGKILL);
                    }
                    child.wait().await?
                }
            }
        }
    };
    // Whatever the main process left behind in its group ends with it.
    if let Some(g) = pgid {
        signal_group(g, Signal::SIGKILL);
    }
    for p in pumps {
        let abort = p.abort_handle();
        if tokio::time::timeout(DRAIN, p).await.is_err() {
            abort.abort();
        }
    }
    let output = tail.lock().map(|t| t.text()).unwrap_or_default();
    Ok(ProcessOutcome {
        ended,
        exit_code: status.code().map(i64::from),
        output,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_and_says_what_was_dropped() {
        let mut t = Tail {
            buf: VecDeque::new(),
            max: 4,
            dropped: 0,
        };
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.text(), "[… 3 earlier bytes not kept …]\ndefg");
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let (_tx, rx) = watch::channel(false);
        let spec = ProcessSpec {
            program: "sh".into(),
            args: vec!["-c".into(), "echo out; echo err >&2; exit 3".into()],
            cwd: None,
            env: BTreeMap::new(),
            timeout: Duration::from_secs(20),
            max_output: 1024,
            guard: None,
        };
        let o = run(&spec, rx).await.unwrap();
        assert_eq!((o.ended, o.exit_code), (Ended::Exited, Some(3)));
        assert!(
            o.output.contains("out") && o.output.contains("err"),
            "{}",
            o.output
        );
    }
}
