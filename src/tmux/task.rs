//! The `tmux` task type of the task queue: one tmux operation run by whichever
//! `architect worker` claims it, on that worker's machine, through the driver.
//!
//! Payload: `{"op": "list" | "create" | "send" | "keys" | "capture" | "kill", "session",
//! "text", "enter" (default true), "keys": [...], "cwd", "command": [argv], "lines",
//! "escapes", "env": [[NAME, VALUE]], "width", "height", "socket" (a `tmux -L` name; default
//! server when absent)}`.

use super::{CaptureMode, NewSession, SessionName, Tmux, TmuxError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    op: String,
    session: Option<SessionName>,
    text: Option<String>,
    enter: Option<bool>,
    #[serde(default)]
    keys: Vec<String>,
    cwd: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    lines: Option<u32>,
    #[serde(default)]
    escapes: bool,
    socket: Option<SessionName>,
    #[serde(default)]
    env: Vec<(String, String)>,
    width: Option<u16>,
    height: Option<u16>,
}

/// Why a tmux task failed; `retryable` is false for input no retry can fix.
#[derive(Debug)]
pub struct TmuxTaskError {
    pub message: String,
    pub retryable: bool,
}

fn permanent(message: impl Into<String>) -> TmuxTaskError {
    TmuxTaskError {
        message: message.into(),
        retryable: false,
    }
}

impl From<TmuxError> for TmuxTaskError {
    fn from(e: TmuxError) -> Self {
        let retryable = matches!(e, TmuxError::Spawn(_) | TmuxError::Hung(_));
        TmuxTaskError {
            message: e.to_string(),
            retryable,
        }
    }
}

/// Runs the operation a task payload names; returns the task's JSON result.
pub async fn run(payload: &Value) -> Result<Value, TmuxTaskError> {
    run_on(payload, None).await
}

/// [`run`] on the `tmux -L default_socket` server when the payload names no socket (a node
/// agent started with `--tmux-socket`).
pub async fn run_on(payload: &Value, default_socket: Option<&str>) -> Result<Value, TmuxTaskError> {
    let p: Payload = serde_json::from_value(payload.clone())
        .map_err(|e| permanent(format!("bad tmux payload: {e}")))?;
    let tmux = Tmux::new(
        p.socket
            .as_ref()
            .map(SessionName::as_str)
            .or(default_socket),
    );
    let session = || {
        p.session
            .clone()
            .ok_or_else(|| permanent(format!("op '{}' needs 'session'", p.op)))
    };
    match p.op.as_str() {
        "list" => Ok(json!({ "sessions": tmux.list_sessions().await? })),
        "create" => {
            let name = tmux
                .create(&NewSession {
                    name: p.session.clone(),
                    cwd: p.cwd.clone(),
                    command: p.command.clone(),
                    env: p.env.clone(),
                    env_dir: None,
                    width: p.width.unwrap_or(0),
                    height: p.height.unwrap_or(0),
                })
                .await?;
            Ok(json!({ "session": name }))
        }
        "send" => {
            let text = p
                .text
                .as_deref()
                .ok_or_else(|| permanent("op 'send' needs 'text'"))?;
            tmux.send_text(&session()?, text, p.enter.unwrap_or(true), Duration::ZERO)
                .await?;
            Ok(json!({ "sent": true }))
        }
        "keys" => {
            let keys: Vec<&str> = p.keys.iter().map(String::as_str).collect();
            tmux.send_keys(&session()?, &keys).await?;
            Ok(json!({ "sent": true }))
        }
        "capture" => {
            let mode = if p.escapes {
                CaptureMode::Escapes
            } else {
                CaptureMode::Plain
            };
            let text = tmux
                .capture(&session()?, p.lines.unwrap_or(100), mode)
                .await?;
            Ok(json!({ "output": text }))
        }
        "kill" => {
            tmux.kill(&session()?).await?;
            Ok(json!({ "killed": true }))
        }
        other => Err(permanent(format!(
            "unknown tmux op '{other}'; expected one of: list, create, send, keys, capture, kill"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_payloads_fail_permanently() {
        for p in [
            json!({}),
            json!({"op": "explode"}),
            json!({"op": "send", "session": "a b", "text": "x"}),
            json!({"op": "send", "session": "ok"}),
            json!({"op": "kill"}),
            json!({"op": "list", "surprise": 1}),
        ] {
            let e = run(&p).await.unwrap_err();
            assert!(!e.retryable, "{p}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn operations_run_on_the_named_server() {
        let socket = format!("arch-test-{:x}", rand::random::<u64>());
        struct Kill(Tmux);
        impl Drop for Kill {
            fn drop(&mut self) {
                self.0.kill_server_blocking();
            }
        }
        let _guard = Kill(Tmux::new(Some(&socket)));
        let r = run(&json!({"op": "create", "session": "tt", "socket": socket,
                            "command": ["bash", "--norc"]}))
        .await
        .unwrap();
        assert_eq!(r["session"], "tt");
        let r = run(&json!({"op": "list", "socket": socket})).await.unwrap();
        assert_eq!(r["sessions"][0]["name"], "tt");
        run(&json!({"op": "kill", "session": "tt", "socket": socket}))
            .await
            .unwrap();
        let e = run(&json!({"op": "kill", "session": "tt", "socket": socket}))
            .await
            .unwrap_err();
        assert!(e.message.contains("not found"), "{}", e.message);
    }
}
