//! The agent's command registry: command name → async handler `fn(args) -> Result<Value,
//! String>` (an `Err` is reported as the command's `error`). The built-ins are `ping`,
//! `collect-metrics`, `tmux-list`, `tmux` (any tmux operation, see `tmux::task`) and
//! `session-start` (an agent session, see `tmux::spawn`). Another domain adds its commands
//! by registering them in
//! [`CommandHandlers::builtin`] (the one list, used by `architect agent` and by `serve`'s own
//! node alike); a program embedding an agent can add more with `Agent::handlers_mut`.

use super::agent::AgentOptions;
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

    /// The built-in commands of the node `opts` describes, sampling through `sampler`.
    pub fn builtin(opts: &AgentOptions, sampler: Arc<Mutex<Sampler>>) -> CommandHandlers {
        let mut h = CommandHandlers::empty();
        let name = opts.name.clone();
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
        let socket = opts.tmux_socket.clone();
        h.register("tmux-list", move |args| tmux_list(args, socket.clone()));
        let socket = opts.tmux_socket.clone();
        h.register("tmux", move |args| tmux(args, socket.clone()));
        let side = crate::tmux::spawn::NodeSide {
            tmux: crate::tmux::Tmux::new(opts.tmux_socket.as_deref()),
            data_dir: opts.data_dir.clone(),
            architect: None,
            dashboard_url: opts.dashboard_url.clone(),
            control_plane: opts.control_plane.clone(),
        };
        h.register(crate::tmux::spawn::COMMAND, move |args| {
            let side = side.clone();
            async move {
                let launched = crate::tmux::spawn::run_command(&side, args).await?;
                serde_json::to_value(launched).map_err(|e| e.to_string())
            }
        });
        // Other domains' commands go here.
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

/// `tmux-list {socket?}`: the sessions of the node's tmux server (`tmux -L <socket>` when
/// given, else the agent's `--tmux-socket`), through the tmux driver of `agents`. No tmux
/// server running is an empty list.
pub async fn tmux_list(args: Value, default_socket: Option<String>) -> Result<Value, String> {
    let socket = match args.get("socket") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => {
            crate::tmux::SessionName::parse(s).map_err(|_| {
                "socket must be 1 to 64 characters of letters, digits, '_' and '-'".to_string()
            })?;
            Value::String(s.clone())
        }
        Some(_) => return Err("socket must be a string".into()),
    };
    tmux(json!({"op": "list", "socket": socket}), default_socket).await
}

/// `tmux {op, session?, text?, keys?, ...}`: one tmux operation on this node, the payload of
/// the `tmux` task type (`tmux::task`); the control plane routes remote tmux calls here.
/// A payload without `socket` uses the agent's `--tmux-socket`.
pub async fn tmux(args: Value, default_socket: Option<String>) -> Result<Value, String> {
    crate::tmux::task::run_on(&args, default_socket.as_deref())
        .await
        .map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_commands_and_bad_sockets_fail_with_a_reason() {
        let opts = AgentOptions::new("n1", Duration::from_secs(5));
        let h = CommandHandlers::builtin(&opts, Arc::new(Mutex::new(Sampler::new())));
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
        let r = tmux_list(json!({"socket": sock}), None).await;
        if let Err(e) = &r {
            assert!(e.contains("not installed"), "{e}");
            return;
        }
        assert_eq!(r.unwrap(), json!({"sessions": []}));
    }
}
