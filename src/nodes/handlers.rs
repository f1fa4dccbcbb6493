//! The agent's command registry: command name → async handler `fn(args) -> Result<Value,
//! String>` (an `Err` is reported as the command's `error`). The built-ins are `ping`,
//! `collect-metrics` and `tmux-list`. Another domain adds its commands by registering them in
//! [`CommandHandlers::builtin`] (the one list, used by `architect agent` and by `serve`'s own
//! node alike); a program embedding an agent can add more with `Agent::handlers_mut`.

use super::sampler::Sampler;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
pub type Handler = Arc<dyn Fn(Value) -> HandlerFuture + Send + Sync>;

/// Cheap to clone (handlers are shared).
#[derive(Clone, Default)]
pub struct CommandHandlers {
    map: BTreeMap<String, Handler>,
}

impl CommandHandlers {
    /// No commands at all.
    pub fn empty() -> CommandHandlers {
        CommandHandlers::default()
    }

    /// The built-in commands of a node named `node`, sampling through `sampler`.
    pub fn builtin(node: &str, sampler: Arc<Mutex<Sampler>>) -> CommandHandlers {
        let mut h = CommandHandlers::empty();
        let name = node.to_string();
        h.register("ping", move |_args| {
            let name = name.clone();
            async move {
                Ok(json!({
                    "pong": true,
                    "node": name,
                    "version": env!("CARGO_PKG_VERSION"),
                    "pid": std::process::id(),
                }))
            }
        });
        h.register("collect-metrics", move |_args| {
            let sampler = sampler.clone();
            async move {
                let m = tokio::task::spawn_blocking(move || {
                    sampler.lock().unwrap_or_else(|p| p.into_inner()).sample()
                })
                .await
                .map_err(|e| format!("sampling failed: {e}"))?;
                serde_json::to_value(m).map_err(|e| e.to_string())
            }
        });
        h.register("tmux-list", tmux_list);
        // Other domains' commands go here, e.g. h.register("tmux-send-keys", ...).
        h
    }

    /// Adds (or replaces) the handler of `name`.
    pub fn register<F, Fut>(&mut self, name: &str, f: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        self.map
            .insert(name.to_string(), Arc::new(move |args| Box::pin(f(args))));
    }

    pub fn names(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    /// Runs `name` with `args`, giving up after `timeout`.
    pub async fn run(&self, name: &str, args: Value, timeout: Duration) -> Result<Value, String> {
        let Some(h) = self.map.get(name).cloned() else {
            return Err(format!(
                "unknown command '{name}'; this agent knows: {}",
                self.names().join(", ")
            ));
        };
        match tokio::time::timeout(timeout, h(args)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "command '{name}' did not finish within {} s",
                timeout.as_secs()
            )),
        }
    }
}

/// The tmux format `tmux-list` asks for: one tab-separated line per session.
const TMUX_FORMAT: &str =
    "#{session_name}\t#{session_windows}\t#{session_created}\t#{session_attached}";

/// `tmux-list {socket?}`: the sessions of the tmux server (`tmux -L <socket>` when given). No
/// tmux server running is an empty list, not an error. Runs tmux directly, never a shell.
pub async fn tmux_list(args: Value) -> Result<Value, String> {
    let socket = match args.get("socket") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if s.is_empty()
                || s.len() > 64
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(
                    "socket must be 1 to 64 characters of letters, digits, '-', '_', '.'".into(),
                );
            }
            Some(s.clone())
        }
        Some(_) => return Err("socket must be a string".into()),
    };
    let mut cmd = tokio::process::Command::new("tmux");
    if let Some(s) = &socket {
        cmd.arg("-L").arg(s);
    }
    cmd.args(["list-sessions", "-F", TMUX_FORMAT])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match cmd.output().await {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("tmux is not installed on this node".into())
        }
        Err(e) => return Err(format!("cannot run tmux: {e}")),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if no_server(&err) {
            return Ok(json!({"sessions": []}));
        }
        return Err(format!(
            "tmux list-sessions failed: {}",
            err.trim().chars().take(500).collect::<String>()
        ));
    }
    Ok(json!({"sessions": parse_sessions(&String::from_utf8_lossy(&out.stdout))}))
}

/// tmux's ways of saying that no server runs on the socket (or that it is just exiting, e.g.
/// right after `kill-server`: its socket still exists but it has no sessions left).
fn no_server(stderr: &str) -> bool {
    stderr.contains("no server running")
        || stderr.contains("server exited unexpectedly")
        || stderr.contains("error connecting to")
        || stderr.contains("No such file or directory")
}

fn parse_sessions(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?.to_string();
            let windows: i64 = f.next()?.trim().parse().ok()?;
            let created: i64 = f.next()?.trim().parse().ok()?;
            let attached: i64 = f.next()?.trim().parse().unwrap_or(0);
            let created_at = time::OffsetDateTime::from_unix_timestamp(created)
                .ok()
                .map(crate::clock::format);
            Some(json!({
                "name": name,
                "windows": windows,
                "created_at": created_at,
                "attached": attached > 0,
                "attached_clients": attached,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tmux_session_lines() {
        let s = parse_sessions("main\t3\t1767225600\t1\nwork: 2\t1\t1767225601\t0\nbroken line\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["name"], "main");
        assert_eq!(s[0]["windows"], 3);
        assert_eq!(s[0]["attached"], true);
        assert_eq!(s[0]["created_at"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(s[1]["name"], "work: 2");
        assert_eq!(s[1]["attached"], false);
    }

    #[tokio::test]
    async fn unknown_commands_and_bad_sockets_fail_with_a_reason() {
        let h = CommandHandlers::builtin("n1", Arc::new(Mutex::new(Sampler::new())));
        let e = h
            .run("nope", json!({}), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.contains("ping") && e.contains("tmux-list"), "{e}");
        let e = h
            .run(
                "tmux-list",
                json!({"socket": "../x"}),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(e.contains("socket"), "{e}");
        let pong = h
            .run("ping", json!({}), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(pong["node"], "n1");
    }

    #[tokio::test]
    async fn tmux_list_without_a_server_is_empty() {
        let sock = format!("architect-none-{}", std::process::id());
        let r = tmux_list(json!({"socket": sock})).await;
        if let Err(e) = &r {
            assert!(e.contains("not installed"), "{e}");
            return;
        }
        assert_eq!(r.unwrap(), json!({"sessions": []}));
    }
}
