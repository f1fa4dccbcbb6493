//! The typed tmux driver (a leaf: the agents domain and the node agent both build on it, and
//! on `spawn`, the node half of a session start): every tmux operation architect performs, as
//! a function over the tmux CLI run with an argument vector (never a shell), on the default
//! server or a named socket (`tmux -L <socket>`, which is how tests get a private server).
//!
//! Invariants: session names are validated ([`SessionName`]) before they reach tmux and every
//! target is written `=NAME` (exact match, never tmux's prefix matching); text sent to a pane
//! goes either through `send-keys -l` (literal) or, when it is multi-line or long, through
//! `load-buffer -` on stdin and `paste-buffer -p` (bracketed paste), so it is never typed line
//! by line and never interpreted as key names; every call has a deadline
//! ([`COMMAND_DEADLINE`]) and a child that outlives it is killed.

pub mod spawn;
pub mod task;

use serde::{Deserialize, Serialize};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// A tmux call that takes longer than this is treated as hung (tmux answers in milliseconds;
/// only a wedged server is slower).
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(10);

/// Text longer than this (bytes), or holding a newline, is pasted instead of typed: `send-keys`
/// arguments are bounded by tmux's message size and typed text would submit at each newline.
pub const PASTE_OVER_BYTES: usize = 512;

/// Most lines a capture returns; more is never useful for a pane and bounds memory.
pub const MAX_CAPTURE_LINES: u32 = 5000;

/// Keys accepted by [`Tmux::send_keys`]: tmux key names such as `Enter`, `Escape`, `C-c`, `1`.
const MAX_KEYS: usize = 32;

/// Field separator in `-F` formats: a control character no validated session name contains.
const SEP: char = '\u{1f}';

/// A validated tmux session name: 1–64 of `A-Z a-z 0-9 _ -`. tmux itself rewrites `.` and `:`
/// (they are target syntax), and anything wider invites quoting trouble in other tools.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionName(String);

impl SessionName {
    pub fn parse(raw: &str) -> Result<SessionName, crate::validate::Invalid> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(SessionName(raw.to_string()))
        } else {
            Err(crate::validate::invalid(
                "session",
                "session name must be 1-64 characters of letters, digits, '_' and '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The exact-match session target (`=NAME`).
    fn target(&self) -> String {
        format!("={}", self.0)
    }

    /// The active pane of the session (`=NAME:`).
    fn pane_target(&self) -> String {
        format!("={}:", self.0)
    }
}

impl<'de> Deserialize<'de> for SessionName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SessionName::parse(&s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl std::fmt::Display for SessionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tmux session as `list-sessions` reports it (pane fields are the active pane's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    pub windows: i64,
    /// Clients attached right now.
    pub attached: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last output or input.
    pub last_activity: i64,
    pub current_command: String,
    pub cwd: String,
    pub pane_title: String,
    /// The pane shows the alternate screen (full-screen TUIs such as Claude Code and Codex).
    pub alternate_screen: bool,
}

/// What to start in a new session.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub name: Option<SessionName>,
    pub cwd: Option<String>,
    /// The program and its arguments, executed directly (no shell). Empty: tmux's default shell.
    pub command: Vec<String>,
    /// Extra environment. It reaches the program through a 0600 file that `sh` loads and
    /// deletes before it becomes the program (see [`LOAD_ENV`]), never through `-e
    /// NAME=VALUE`: a tmux command line is kept in the server's `/proc/PID/cmdline`, which
    /// every local user can read, and values are often secrets (a session's token).
    pub env: Vec<(String, String)>,
    /// Where that file goes (a private directory, e.g. the session's own); default: the
    /// system's temporary directory (the file is created 0600 and exclusively).
    pub env_dir: Option<std::path::PathBuf>,
    pub width: u16,
    pub height: u16,
}

/// Whether captured text keeps its colour and attribute escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    #[default]
    Plain,
    Escapes,
}

#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error("tmux session '{0}' not found")]
    NoSuchSession(String),
    #[error("tmux session '{0}' already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot run tmux: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("tmux did not answer within {0:?}")]
    Hung(Duration),
    #[error("tmux {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// A handle on one tmux server: the default one, or `-L socket`.
#[derive(Debug, Clone)]
pub struct Tmux {
    program: String,
    socket: Option<String>,
}

impl Tmux {
    /// The server on `socket` (`tmux -L socket`), or the user's default server for `None`.
    pub fn new(socket: Option<&str>) -> Tmux {
        Tmux {
            program: "tmux".into(),
            socket: socket.filter(|s| !s.is_empty()).map(str::to_string),
        }
    }

    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// The argv prefix that reaches this server (for launchers and people: `tmux -L x`).
    pub fn base_args(&self) -> Vec<String> {
        let mut v = vec![self.program.clone()];
        if let Some(s) = &self.socket {
            v.push("-L".into());
            v.push(s.clone());
        }
        v
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        // UTF-8 output whatever the locale: without it, a server started with no LANG (systemd,
        // `env -i`) gets `_` for the field separator of every `-F` format (so no session is
        // ever listed) and for every non-ASCII character of a captured screen.
        c.arg("-u");
        if let Some(s) = &self.socket {
            c.arg("-L").arg(s);
        }
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs one tmux command, optionally feeding `stdin`; returns stdout.
    async fn run(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        session: Option<&SessionName>,
    ) -> Result<String, TmuxError> {
        let mut cmd = self.command(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let work = async {
            let mut child = cmd.spawn().map_err(TmuxError::Spawn)?;
            if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(data).await.map_err(TmuxError::Spawn)?;
                drop(pipe);
            }
            child.wait_with_output().await.map_err(TmuxError::Spawn)
        };
        let out = tokio::time::timeout(COMMAND_DEADLINE, work)
            .await
            .map_err(|_| TmuxError::Hung(COMMAND_DEADLINE))??;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(classify_failure(args, &stderr, session))
    }

    /// Every session on the server; an absent server has none.
    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>, TmuxError> {
        let format = [
            "#{session_name}",
            "#{session_windows}",
            "#{session_attached}",
            "#{session_created}",
            "#{session_activity}",
            "#{pane_current_command}",
            "#{pane_current_path}",
            "#{pane_title}",
            "#{alternate_on}",
        ]
        .join(&SEP.to_string());
        let out = match self
            .run(&["list-sessions", "-F", &format], None, None)
            .await
        {
            Ok(out) => out,
            Err(TmuxError::Failed { stderr, .. }) if no_server(&stderr) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(out.lines().filter_map(parse_session_line).collect())
    }

    /// The session's info, or `NoSuchSession`.
    pub async fn session(&self, name: &SessionName) -> Result<SessionInfo, TmuxError> {
        self.list_sessions()
            .await?
            .into_iter()
            .find(|s| s.name == name.as_str())
            .ok_or_else(|| TmuxError::NoSuchSession(name.to_string()))
    }

    pub async fn has_session(&self, name: &SessionName) -> Result<bool, TmuxError> {
        match self
            .run(&["has-session", "-t", &name.target()], None, Some(name))
            .await
        {
            Ok(_) => Ok(true),
            Err(TmuxError::NoSuchSession(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a detached session; returns its name (tmux picks one when none is given).
    pub async fn create(&self, spec: &NewSession) -> Result<String, TmuxError> {
        let width = if spec.width == 0 { 200 } else { spec.width }.to_string();
        let height = if spec.height == 0 { 50 } else { spec.height }.to_string();
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-P".into(),
            "-F".into(),
            "#{session_name}".into(),
            "-x".into(),
            width,
            "-y".into(),
            height,
        ];
        if let Some(name) = &spec.name {
            args.extend(["-s".into(), name.to_string()]);
        }
        if let Some(cwd) = &spec.cwd {
            // tmux expands formats in `-c` (`#(cmd)` runs cmd): the path must stay literal.
            args.extend(["-c".into(), literal_format(cwd)]);
        }
        let command = if spec.env.is_empty() {
            spec.command.clone()
        } else {
            let dir = spec.env_dir.clone().unwrap_or_else(std::env::temp_dir);
            let file = write_env_file(&dir, &spec.env)?;
            with_env_file(&file, &spec.command)
        };
        if !command.is_empty() {
            // tmux runs a lone argument through `sh -c`; with two or more it execs them
            // directly. `env --` makes the argv at least two long, so no shell ever sees it.
            args.extend(["--".into(), "env".into(), "--".into()]);
            args.extend(command);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&refs, None, spec.name.as_ref()).await?;
        Ok(out.trim().to_string())
    }

    /// Types `text` into the session's active pane, then presses Enter after `enter_delay`
    /// (Codex treats a fast Enter after typed text as part of a paste).
    pub async fn send_text(
        &self,
        name: &SessionName,
        text: &str,
        enter: bool,
        enter_delay: Duration,
    ) -> Result<(), TmuxError> {
        let target = name.pane_target();
        if text.contains('\n') || text.contains('\r') || text.len() > PASTE_OVER_BYTES {
            let buffer = format!("architect-{}", name);
            self.run(
                &["load-buffer", "-b", &buffer, "-"],
                Some(text.as_bytes()),
                Some(name),
            )
            .await?;
            self.run(
                &["paste-buffer", "-p", "-d", "-b", &buffer, "-t", &target],
                None,
                Some(name),
            )
            .await?;
        } else if !text.is_empty() {
            self.run(
                &["send-keys", "-t", &target, "-l", "--", text],
                None,
                Some(name),
            )
            .await?;
        }
        if enter {
            if !enter_delay.is_zero() {
                tokio::time::sleep(enter_delay).await;
            }
            self.send_keys(name, &["Enter"]).await?;
        }
        Ok(())
    }

    /// Presses tmux keys (`Enter`, `Escape`, `C-c`, `1`, ...) in order.
    pub async fn send_keys(&self, name: &SessionName, keys: &[&str]) -> Result<(), TmuxError> {
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(TmuxError::Invalid(format!(
                "send 1 to {MAX_KEYS} keys at a time"
            )));
        }
        if let Some(bad) = keys.iter().find(|k| !valid_key(k)) {
            return Err(TmuxError::Invalid(format!(
                "'{bad}' is not a tmux key name (examples: Enter, Escape, C-c, Up, 1, y)"
            )));
        }
        let target = name.pane_target();
        let mut args = vec!["send-keys", "-t", &target, "--"];
        args.extend(keys.iter().copied());
        self.run(&args, None, Some(name)).await.map(|_| ())
    }

    /// The last `lines` lines of the pane (visible screen plus history), trailing blank lines
    /// dropped.
    pub async fn capture(
        &self,
        name: &SessionName,
        lines: u32,
        mode: CaptureMode,
    ) -> Result<String, TmuxError> {
        let lines = lines.clamp(1, MAX_CAPTURE_LINES);
        let start = format!("-{lines}");
        let target = name.pane_target();
        let mut args = vec!["capture-pane", "-p", "-J", "-t", &target, "-S", &start];
        if mode == CaptureMode::Escapes {
            args.push("-e");
        }
        let out = self.run(&args, None, Some(name)).await?;
        Ok(last_lines(&out, lines as usize))
    }

    /// Ends a session and the programs in it. tmux only hangs up on each pane's process, and
    /// some agents outlive that (the Gemini CLI's node processes ignore SIGHUP), so each pane's
    /// process group (tmux starts every pane as its own group leader) also gets SIGTERM.
    pub async fn kill(&self, name: &SessionName) -> Result<(), TmuxError> {
        let pids = self
            .run(
                &[
                    "list-panes",
                    "-s",
                    "-t",
                    &name.target(),
                    "-F",
                    "#{pane_pid}",
                ],
                None,
                Some(name),
            )
            .await?;
        self.run(&["kill-session", "-t", &name.target()], None, Some(name))
            .await?;
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if pid > 1 {
                // A group already gone is not an error.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        Ok(())
    }

    /// Sets a server option (`set -g NAME VALUE`), e.g. `focus-events on` for Claude Code.
    pub async fn set_global_option(&self, option: &str, value: &str) -> Result<(), TmuxError> {
        self.run(&["set-option", "-g", option, value], None, None)
            .await
            .map(|_| ())
    }

    /// Ends the whole server (tests' private sockets) and removes a named socket's file, which
    /// tmux leaves behind. Blocking, so it can run in `Drop`.
    pub fn kill_server_blocking(&self) {
        let mut c = std::process::Command::new(&self.program);
        if let Some(s) = &self.socket {
            c.arg("-L").arg(s);
        }
        let _ = c
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(path) = self.socket_path() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Where tmux puts a `-L` socket: `$TMUX_TMPDIR` (default /tmp) `/tmux-<uid>/<name>`.
    pub fn socket_path(&self) -> Option<std::path::PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let name = self.socket.as_ref()?;
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let dir = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        Some(
            std::path::PathBuf::from(dir)
                .join(format!("tmux-{uid}"))
                .join(name),
        )
    }
}

/// The script that loads an environment file, deletes it and becomes the program: `$0` is
/// the file, `"$@"` the program's command line (none: the user's shell). Fixed text: no
/// value ever enters it.
pub const LOAD_ENV: &str = "set -a; . \"$0\"; set +a; rm -f -- \"$0\"; \
    [ $# -gt 0 ] || set -- \"${SHELL:-/bin/sh}\"; exec \"$@\"";

/// Writes `env` to a new file `env-<random>.sh` in `dir` (created 0600 and exclusively, so
/// nothing planted there is followed), as `sh` assignments in single quotes.
fn write_env_file(
    dir: &std::path::Path,
    env: &[(String, String)],
) -> Result<std::path::PathBuf, TmuxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut body = String::new();
    for (k, v) in env {
        let name_ok = !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !k.as_bytes()[0].is_ascii_digit();
        if !name_ok || v.contains('\0') {
            return Err(TmuxError::Invalid(format!(
                "environment variable name '{k}' is not valid"
            )));
        }
        body.push_str(&format!("{k}='{}'\n", v.replace('\'', r"'\''")));
    }
    let path = dir.join(format!("env-{:016x}.sh", rand::random::<u64>()));
    let cannot = |e: std::io::Error| {
        TmuxError::Invalid(format!("cannot write the environment file {path:?}: {e}"))
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(cannot)?;
    f.write_all(body.as_bytes()).map_err(cannot)?;
    Ok(path)
}

/// `command` (none: the user's shell), run by `sh` after it loaded and deleted `env_file`.
fn with_env_file(env_file: &std::path::Path, command: &[String]) -> Vec<String> {
    let mut argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        LOAD_ENV.to_string(),
        env_file.display().to_string(),
    ];
    argv.extend(command.iter().cloned());
    argv
}

/// `text` as a tmux format that expands to exactly `text` (`#` is its only special
/// character: `##` is a literal `#`).
pub fn literal_format(text: &str) -> String {
    text.replace('#', "##")
}

fn no_server(stderr: &str) -> bool {
    stderr.contains("no server running")
        || stderr.contains("error connecting to")
        || stderr.contains("server exited unexpectedly")
}

fn classify_failure(args: &[&str], stderr: &str, session: Option<&SessionName>) -> TmuxError {
    let name = session.map(|s| s.to_string()).unwrap_or_default();
    if stderr.contains("duplicate session") {
        return TmuxError::Exists(name);
    }
    if session.is_some()
        && (stderr.contains("can't find")
            || stderr.contains("no such")
            || stderr.contains("no current target")
            || no_server(stderr))
    {
        return TmuxError::NoSuchSession(name);
    }
    TmuxError::Failed {
        command: args.first().copied().unwrap_or("").to_string(),
        stderr: stderr.chars().take(500).collect(),
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 16
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_session_line(line: &str) -> Option<SessionInfo> {
    let f: Vec<&str> = line.split(SEP).collect();
    if f.len() != 9 {
        return None;
    }
    let num = |s: &str| s.trim().parse::<i64>().unwrap_or(0);
    Some(SessionInfo {
        name: f[0].to_string(),
        windows: num(f[1]),
        attached: num(f[2]),
        created: num(f[3]),
        last_activity: num(f[4]),
        current_command: f[5].to_string(),
        cwd: f[6].to_string(),
        pane_title: f[7].to_string(),
        alternate_screen: f[8] == "1",
    })
}

/// The last `n` lines of `text` after dropping trailing blank lines, joined with `\n`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let start = end.saturating_sub(n);
    lines[start..end].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private tmux server that is killed when the test ends, pass or fail.
    struct Server(Tmux);
    impl Server {
        fn new() -> Server {
            let id: u64 = rand::random();
            Server(Tmux::new(Some(&format!("arch-test-{id:x}"))))
        }
    }
    impl Drop for Server {
        fn drop(&mut self) {
            self.0.kill_server_blocking();
        }
    }

    fn name(s: &str) -> SessionName {
        SessionName::parse(s).unwrap()
    }

    async fn wait_for(t: &Tmux, n: &SessionName, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let screen = t.capture(n, 200, CaptureMode::Plain).await.unwrap();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "'{needle}' never appeared; screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn session_names_are_validated() {
        for ok in ["a", "dev_worker1", "claude-2", &"x".repeat(64)] {
            assert!(SessionName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a:b", "a.b", "=a", "a;rm", "ü", &"x".repeat(65)] {
            assert!(SessionName::parse(bad).is_err(), "{bad}");
        }
        let e: Result<SessionName, _> = serde_json::from_str("\"a b\"");
        assert!(e.is_err());
    }

    #[test]
    fn the_environment_goes_through_a_private_file_that_sh_loads_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("ARCHITECT_TOKEN".to_string(), "arch_secret".to_string()),
            ("ODD".to_string(), "it's $HOME `x` \"q\"\nline".to_string()),
        ];
        let path = write_env_file(dir.path(), &env).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let argv = with_env_file(
            &path,
            &[
                "sh".into(),
                "-c".into(),
                "printf '%s|%s' \"$ARCHITECT_TOKEN\" \"$ODD\"".into(),
            ],
        );
        assert!(!argv.iter().any(|a| a.contains("arch_secret")), "{argv:?}");
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "arch_secret|it's $HOME `x` \"q\"\nline"
        );
        assert!(!path.exists(), "the file is deleted once read");
        for bad in ["A B", "1A", "A=B", ""] {
            assert!(write_env_file(dir.path(), &[(bad.into(), "x".into())]).is_err());
        }
    }

    #[test]
    fn formats_are_made_literal() {
        assert_eq!(literal_format("/tmp/#(touch x)"), "/tmp/##(touch x)");
        assert_eq!(literal_format("/plain"), "/plain");
    }

    #[tokio::test]
    async fn a_working_directory_is_never_expanded_as_a_format() {
        let server = Server::new();
        let t = &server.0;
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("ran");
        let dir = tmp.path().join(format!("#(touch {})", marker.display()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = name("literal-cwd");
        t.create(&NewSession {
            name: Some(n.clone()),
            cwd: Some(dir.display().to_string()),
            command: vec!["sleep".into(), "30".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        // The pane's path is known once its process runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let cwd = loop {
            let cwd = t.session(&n).await.unwrap().cwd;
            if !cwd.is_empty() || std::time::Instant::now() > deadline {
                break cwd;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(cwd, dir.display().to_string());
        assert!(!marker.exists(), "tmux ran the '#(...)' in the path");
        t.kill(&n).await.unwrap();
    }

    #[test]
    fn last_lines_drops_trailing_blanks() {
        assert_eq!(last_lines("a\nb\nc\n\n  \n", 2), "b\nc");
        assert_eq!(last_lines("\n\n", 5), "");
        assert_eq!(last_lines("a", 5), "a");
    }

    #[tokio::test]
    async fn an_absent_server_has_no_sessions() {
        let s = Server::new();
        assert_eq!(s.0.list_sessions().await.unwrap(), Vec::new());
        assert!(!s.0.has_session(&name("nope")).await.unwrap());
        assert!(matches!(
            s.0.capture(&name("nope"), 10, CaptureMode::Plain).await,
            Err(TmuxError::NoSuchSession(_))
        ));
    }

    #[tokio::test]
    async fn create_list_send_capture_kill() {
        let s = Server::new();
        let t = &s.0;
        let n = name("drv-1");
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().canonicalize().unwrap().display().to_string();
        let created = t
            .create(&NewSession {
                name: Some(n.clone()),
                cwd: Some(cwd.clone()),
                command: vec!["bash".into(), "--norc".into(), "--noprofile".into()],
                env: vec![("ARCH_PROBE".into(), "it's $HOME; `x`".into())],
                env_dir: None,
                width: 120,
                height: 30,
            })
            .await
            .unwrap();
        assert_eq!(created, "drv-1");
        assert!(matches!(
            t.create(&NewSession {
                name: Some(n.clone()),
                ..Default::default()
            })
            .await,
            Err(TmuxError::Exists(_))
        ));

        // The pane's path is reported once its process runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let list = loop {
            let list = t.list_sessions().await.unwrap();
            if list.len() == 1 && !list[0].cwd.is_empty() {
                break list;
            }
            assert!(std::time::Instant::now() < deadline, "{list:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(list[0].name, "drv-1");
        assert_eq!(list[0].windows, 1);
        assert_eq!(list[0].attached, 0);
        assert!(list[0].created > 1_600_000_000);
        assert_eq!(list[0].cwd, cwd);

        // The environment value arrives verbatim: no shell expanded it on the way.
        t.send_text(&n, "echo \"[$ARCH_PROBE]\"", true, Duration::ZERO)
            .await
            .unwrap();
        wait_for(t, &n, "[it's $HOME; `x`]").await;
        let info = t.session(&n).await.unwrap();
        assert_eq!(info.current_command, "bash");

        // Literal text: key names and shell metacharacters are typed, not interpreted.
        t.send_text(&n, "echo 'Enter C-c $(id)' -x", true, Duration::ZERO)
            .await
            .unwrap();
        wait_for(t, &n, "Enter C-c $(id) -x").await;

        // Multi-line text arrives as one paste, not as separate submitted lines.
        t.send_text(
            &n,
            "tr a-z A-Z <<'EOF'\nline one\nline two\nEOF",
            true,
            Duration::ZERO,
        )
        .await
        .unwrap();
        let screen = wait_for(t, &n, "LINE TWO").await;
        assert!(screen.contains("LINE ONE\nLINE TWO"), "{screen}");

        // Long text takes the paste path too.
        let long = format!("echo {}", "y".repeat(PASTE_OVER_BYTES + 10));
        t.send_text(&n, &long, true, Duration::ZERO).await.unwrap();
        wait_for(t, &n, &format!("\n{}", "y".repeat(100))).await;

        // Keys: C-c interrupts a running command. Each key waits for what the pane runs, so
        // nothing is sent while bash is still reading the previous line.
        async fn runs(t: &Tmux, n: &SessionName, cmd: &str) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while t.session(n).await.unwrap().current_command != cmd {
                assert!(std::time::Instant::now() < deadline, "{cmd} never ran");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        t.send_text(&n, "sleep 600", true, Duration::ZERO)
            .await
            .unwrap();
        runs(t, &n, "sleep").await;
        t.send_keys(&n, &["C-c"]).await.unwrap();
        runs(t, &n, "bash").await;
        t.send_text(&n, "echo after-interrupt", true, Duration::ZERO)
            .await
            .unwrap();
        wait_for(t, &n, "\nafter-interrupt").await;
        assert!(matches!(
            t.send_keys(&n, &["Enter; kill-server"]).await,
            Err(TmuxError::Invalid(_))
        ));

        // Capture: the last N lines, and escapes only when asked.
        t.send_text(&n, "printf '\\033[31mred\\033[0m\\n'", true, Duration::ZERO)
            .await
            .unwrap();
        wait_for(t, &n, "\nred").await;
        let plain = t.capture(&n, 3, CaptureMode::Plain).await.unwrap();
        assert!(plain.lines().count() <= 3, "{plain}");
        assert!(!plain.contains('\u{1b}'));
        let coloured = t.capture(&n, 50, CaptureMode::Escapes).await.unwrap();
        assert!(coloured.contains("\u{1b}["), "{coloured}");

        t.kill(&n).await.unwrap();
        assert!(!t.has_session(&n).await.unwrap());
        assert!(matches!(t.kill(&n).await, Err(TmuxError::NoSuchSession(_))));
    }

    #[tokio::test]
    async fn a_single_argument_command_is_not_run_by_a_shell() {
        let s = Server::new();
        let t = &s.0;
        let n = name("drv-2");
        // Through `sh -c` this would create the file; exec'd directly it is just a missing
        // program and the session ends at once.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let cmd = format!("true; touch {}", marker.display());
        let _ = t
            .create(&NewSession {
                name: Some(n.clone()),
                command: vec![cmd],
                ..Default::default()
            })
            .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while t.has_session(&n).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "session never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!marker.exists());
    }
}
