//! Background mode shared by `architect worker` and `architect agent`: `--daemon` re-runs this
//! program detached (own process group, stdin closed, output to a log file) and records its pid;
//! `--status` and `--stop` act on that pid file; the background process removes the file when it
//! exits. Secrets given as flags (`--token`) are passed to the background process in its
//! environment instead, so they do not show in its command line.
//!
//! [`Background`] holds the background-mode flags; `serve` flattens it alone (`ServeArgs`),
//! and [`DaemonArgs`] adds the client roles' dashboard and token (`WorkerArgs`, `AgentArgs`,
//! `MilestonesArgs`); what differs by role (help wording, the pid and log files' env vars and
//! defaults) comes from the role's [`DaemonRole`]. Client-only constants (dashboard, token
//! wording) are unused by `serve`'s role.

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What differs between the roles that share [`DaemonArgs`].
pub trait DaemonRole: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The role as messages name it: "worker", "agent".
    const WHAT: &'static str;
    const DASHBOARD_HELP: &'static str;
    const TOKEN_HELP: &'static str;
    /// The error when no token was given.
    const NO_TOKEN: &'static str;
    const STATUS_HELP: &'static str;
    const STOP_HELP: &'static str;
    const PID_FILE_HELP: &'static str;
    const PID_FILE_ENV: &'static str;
    const PID_FILE: &'static str;
    const LOG_FILE_HELP: &'static str;
    const LOG_FILE_ENV: &'static str;
    const LOG_FILE: &'static str;
}

/// The background-mode flags (`--daemon`, `--status`, `--stop`, `--pid-file`, `--log-file`):
/// `serve` takes these alone; `worker`, `agent` and `milestones` take them inside
/// [`DaemonArgs`] (which derefs to them, so `args.daemon` reads the same everywhere).
#[derive(clap::Args, Debug, Clone)]
pub struct Background<R: DaemonRole> {
    /// Run in the background, logging to --log-file; the pid goes to --pid-file.
    #[arg(long, conflicts_with_all = ["status", "stop"], display_order = 100)]
    pub daemon: bool,

    #[arg(long, conflicts_with = "stop", help = R::STATUS_HELP, display_order = 101)]
    pub status: bool,

    #[arg(long, help = R::STOP_HELP, display_order = 102)]
    pub stop: bool,

    #[arg(long, env = R::PID_FILE_ENV, default_value = R::PID_FILE, help = R::PID_FILE_HELP, display_order = 103)]
    pub pid_file: PathBuf,

    #[arg(long, env = R::LOG_FILE_ENV, default_value = R::LOG_FILE, help = R::LOG_FILE_HELP, display_order = 104)]
    pub log_file: PathBuf,

    /// Set on the background process itself: it removes the pid file when it exits.
    #[arg(long, hide = true)]
    pub owns_pid_file: bool,

    #[arg(skip)]
    role: std::marker::PhantomData<R>,
}

impl<R: DaemonRole> Background<R> {
    pub fn daemon(&self) -> Daemon<'_> {
        Daemon {
            what: R::WHAT,
            pid_file: &self.pid_file,
            log_file: &self.log_file,
        }
    }

    /// `--status` or `--stop` (SIGKILL after `patience`), when one was asked for: its exit code.
    pub async fn status_or_stop(&self, patience: Duration) -> Option<anyhow::Result<u8>> {
        if self.status {
            Some(self.daemon().status())
        } else if self.stop {
            Some(self.daemon().stop(patience).await)
        } else {
            None
        }
    }

    /// Called as the foreground run ends: the background process removes its pid file.
    pub fn finished(&self) {
        if self.owns_pid_file {
            self.daemon().remove_own_pid_file();
        }
    }
}

/// The flags of a role that talks to the dashboard with a token and can run in the background.
///
/// `display_order` keeps `--help` as it was before these flags were shared: the connection
/// flags first (`--log-format`, a global flag, sorts between them by name), the background
/// flags after the role's own.
#[derive(clap::Args, Debug, Clone)]
pub struct DaemonArgs<R: DaemonRole> {
    // Several replicas of one server (`serve` on one PostgreSQL): the flag repeated or the
    // URLs separated by commas; a call that cannot connect goes to the next one
    // (`client::Client`).
    #[arg(long, env = "ARCHITECT_URL", default_value = "http://127.0.0.1:8080", value_delimiter = ',', help = R::DASHBOARD_HELP, display_order = 0)]
    pub dashboard: Vec<String>,

    #[arg(long, env = "ARCHITECT_TOKEN", hide_env_values = true, help = R::TOKEN_HELP, display_order = 1)]
    pub token: Option<String>,

    #[command(flatten)]
    pub background: Background<R>,
}

impl<R: DaemonRole> std::ops::Deref for DaemonArgs<R> {
    type Target = Background<R>;

    fn deref(&self) -> &Background<R> {
        &self.background
    }
}

impl<R: DaemonRole> DaemonArgs<R> {
    /// Every server URL given, comma-separated, as `client::Client::new` takes them.
    pub fn servers(&self) -> String {
        self.dashboard
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The first server URL given (what a started agent session is told to call back).
    pub fn first_server(&self) -> String {
        self.servers()
            .split(',')
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    }

    /// The token from `--token` or `ARCHITECT_TOKEN`; an empty one is none.
    pub fn token(&self) -> anyhow::Result<String> {
        self.token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow::anyhow!(R::NO_TOKEN))
    }

    /// `--daemon`: starts the background process, the token moved from argv to its environment.
    pub fn start_background(&self) -> anyhow::Result<u8> {
        self.daemon().start(&[SecretFlag {
            flag: "--token",
            env: "ARCHITECT_TOKEN",
        }])
    }
}

/// Exit code of `--status` when the daemon is not running (LSB's "program is not running").
pub const NOT_RUNNING: u8 = 3;

/// A background role: its name (for messages), pid file and log file.
pub struct Daemon<'a> {
    pub what: &'static str,
    pub pid_file: &'a Path,
    pub log_file: &'a Path,
}

/// A flag whose value moves from the command line into an environment variable.
pub struct SecretFlag {
    pub flag: &'static str,
    pub env: &'static str,
}

impl Daemon<'_> {
    /// Starts this program again in the background with the same arguments (minus `--daemon`,
    /// plus `--owns-pid-file`) and writes its pid.
    pub fn start(&self, secrets: &[SecretFlag]) -> anyhow::Result<u8> {
        if let Some(pid) = read_pid(self.pid_file).filter(|p| alive(*p)) {
            anyhow::bail!(
                "{} already runs with pid {pid} ({}); stop it with --stop",
                self.what,
                self.pid_file.display()
            );
        }
        for f in [self.pid_file, self.log_file] {
            if let Some(dir) = f.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        let exe = std::env::current_exe().context("finding the architect binary")?;
        let (mut rest, env) = strip_secrets(std::env::args().skip(1), secrets);
        rest.retain(|a| a != "--daemon");
        rest.push("--owns-pid-file".into());
        let child = std::process::Command::new(exe)
            .args(&rest)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Out of the terminal's process group: closing the terminal or Ctrl-C there does
            // not reach it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the background {}", self.what))?;
        std::fs::write(self.pid_file, format!("{}\n", child.id()))
            .with_context(|| format!("writing {}", self.pid_file.display()))?;
        println!(
            "{} started in the background: pid {} (log {}, stop with --stop)",
            self.what,
            child.id(),
            self.log_file.display()
        );
        Ok(0)
    }

    /// Prints whether the daemon runs; 0 when it does, [`NOT_RUNNING`] when not.
    pub fn status(&self) -> anyhow::Result<u8> {
        let (what, file) = (self.what, self.pid_file.display());
        match read_pid(self.pid_file) {
            Some(pid) if alive(pid) => {
                println!("{what} running: pid {pid} ({file})");
                Ok(0)
            }
            Some(pid) => {
                println!("{what} not running (stale pid file {file} names pid {pid})");
                Ok(NOT_RUNNING)
            }
            None => {
                println!("{what} not running (no pid file at {file})");
                Ok(NOT_RUNNING)
            }
        }
    }

    /// SIGTERM, then SIGKILL after `patience`.
    pub async fn stop(&self, patience: Duration) -> anyhow::Result<u8> {
        let Some(pid) = read_pid(self.pid_file).filter(|p| alive(*p)) else {
            let _ = std::fs::remove_file(self.pid_file);
            println!("{} not running", self.what);
            return Ok(0);
        };
        kill(Pid::from_raw(pid), Signal::SIGTERM)
            .with_context(|| format!("signalling pid {pid}"))?;
        let deadline = Instant::now() + patience;
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if alive(pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            println!(
                "{} {pid} did not stop in {}s: killed",
                self.what,
                patience.as_secs()
            );
        } else {
            println!("{} {pid} stopped", self.what);
        }
        let _ = std::fs::remove_file(self.pid_file);
        Ok(0)
    }

    /// Called by the background process as it exits.
    pub fn remove_own_pid_file(&self) {
        if read_pid(self.pid_file) == i32::try_from(std::process::id()).ok() {
            let _ = std::fs::remove_file(self.pid_file);
        }
    }
}

/// Splits `--flag value` / `--flag=value` of each secret flag out of `args` into env pairs.
fn strip_secrets(
    args: impl Iterator<Item = String>,
    secrets: &[SecretFlag],
) -> (Vec<String>, Vec<(&'static str, String)>) {
    let mut out = Vec::new();
    let mut env = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let hit = secrets.iter().find_map(|s| {
            if a == s.flag {
                Some((s, None))
            } else {
                a.strip_prefix(s.flag)
                    .and_then(|r| r.strip_prefix('='))
                    .map(|v| (s, Some(v.to_string())))
            }
        });
        match hit {
            Some((s, Some(v))) => env.push((s.env, v)),
            Some((s, None)) => {
                if let Some(v) = args.next() {
                    env.push((s.env, v));
                }
            }
            None => out.push(a),
        }
    }
    (out, env)
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

/// SIGTERM or Ctrl-C (one implementation for `serve`, `worker` and `agent`).
pub use crate::serve::shutdown_signal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags_move_to_the_environment() {
        let args = [
            "agent",
            "--token",
            "s3cret",
            "--daemon",
            "--token=other",
            "--tokens",
            "x",
        ];
        let (rest, env) = strip_secrets(
            args.iter().map(|s| s.to_string()),
            &[SecretFlag {
                flag: "--token",
                env: "ARCHITECT_TOKEN",
            }],
        );
        assert_eq!(rest, ["agent", "--daemon", "--tokens", "x"]);
        assert_eq!(
            env,
            [
                ("ARCHITECT_TOKEN", "s3cret".to_string()),
                ("ARCHITECT_TOKEN", "other".to_string())
            ]
        );
    }

    /// The flags of `agent --help` and `worker --help` in the order shown, with their env var
    /// and default: the same as before the shared flags moved into [`DaemonArgs`].
    #[test]
    fn shared_flags_keep_each_roles_help() {
        use clap::CommandFactory;
        let help = |role: &str| {
            let mut cli = crate::cli::Cli::command().term_width(1000);
            cli.build();
            let mut sub = cli.find_subcommand_mut(role).expect("role").clone();
            sub.render_help().to_string()
        };
        let flags = |help: &str| -> Vec<String> {
            help.lines()
                .filter_map(|l| l.trim_start().strip_prefix("--"))
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
                .collect()
        };
        let agent = help("agent");
        assert_eq!(
            flags(&agent),
            [
                "dashboard",
                "log-format",
                "token",
                "node-id",
                "interval",
                "max-backoff",
                "tmux-socket",
                "data-dir",
                "daemon",
                "status",
                "stop",
                "pid-file",
                "log-file",
            ]
        );
        for line in [
            "Base URL of the architect server (the dashboard); several replicas: repeat the flag or separate the URLs with commas, each tried in turn when one cannot be reached [env: ARCHITECT_URL=] [default: http://127.0.0.1:8080]",
            "The node is bound to the token that registers it [env: ARCHITECT_TOKEN]",
            "Stop the background agent (--pid-file)\n",
            "Pid file of the background agent [env: ARCHITECT_AGENT_PID_FILE=] [default: ./data/agent.pid]",
            "Log file of the background agent [env: ARCHITECT_AGENT_LOG_FILE=] [default: ./data/agent.log]",
        ] {
            assert!(agent.contains(line), "{line} in {agent}");
        }
        let worker = help("worker");
        let shown = flags(&worker);
        assert_eq!(shown[..3], ["dashboard", "log-format", "token"]);
        assert_eq!(
            shown[shown.len() - 5..],
            ["daemon", "status", "stop", "pid-file", "log-file"]
        );
        for line in [
            "Base URL of the architect server; several replicas: repeat the flag or separate the URLs with commas, each tried in turn when one cannot be reached [env: ARCHITECT_URL=] [default: http://127.0.0.1:8080]",
            "(create one under Users & tokens). Prefer the env var [env: ARCHITECT_TOKEN]",
            "Stop the background worker (--pid-file) gracefully",
            "Pid file of the background worker [env: ARCHITECT_WORKER_PID_FILE=] [default: ./data/worker.pid]",
            "Log file of the background worker [env: ARCHITECT_WORKER_LOG_FILE=] [default: ./data/worker.log]",
        ] {
            assert!(worker.contains(line), "{line} in {worker}");
        }
        assert!(!worker.contains("owns-pid-file") && !agent.contains("owns-pid-file"));
    }
}
