//! Background mode shared by `architect worker` and `architect agent`: `--daemon` re-runs this
//! program detached (own process group, stdin closed, output to a log file) and records its pid;
//! `--status` and `--stop` act on that pid file; the background process removes the file when it
//! exits. Secrets given as flags (`--token`) are passed to the background process in its
//! environment instead, so they do not show in its command line.

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

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
}
