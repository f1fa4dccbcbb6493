//! The one place that decides where a tmux operation runs: the local node goes to the driver,
//! a remote node through the node command channel.
//!
//! A remote operation travels as the `tmux` task payload ([`TmuxOp::task_payload`]) over the
//! node command channel (`nodes::actions::run_command`, command `tmux`); the node's agent runs it
//! with this same driver (`tmux::task`). A node name that is this server's own node runs
//! locally. A remote "no such session" / "already exists" comes back as the same
//! [`TmuxError`] a local one is, so callers answer 404 / 409 wherever the session lives.
//!
//! [`fleet`] names every node an operation over "all sessions" should ask, and [`on_each`]
//! asks them at once, each within a deadline, so one silent node never holds up the others.

use super::AgentsError;
use crate::agents::AgentsState;
use crate::nodes::actions::NodeError;
use crate::nodes::NodeStatus;
use crate::tmux::{CaptureMode, NewSession, SessionInfo, SessionName, Tmux, TmuxError};
use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;

/// The name of this machine in every `node` field.
pub const LOCAL_NODE: &str = "local";

/// Which machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    Local,
    Remote(String),
}

impl NodeRef {
    /// `None`, `""` and `"local"` are this machine; anything else is a node name (1–64 of
    /// letters, digits, `.`, `_`, `-`).
    pub fn parse(node: Option<&str>) -> Result<NodeRef, crate::validate::Invalid> {
        match node.map(str::trim) {
            None | Some("") | Some(LOCAL_NODE) => Ok(NodeRef::Local),
            Some(n)
                if n.len() <= 64
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
            {
                Ok(NodeRef::Remote(n.to_string()))
            }
            Some(_) => Err(crate::validate::invalid(
                "node",
                "node must be 'local' or a node name (letters, digits, '.', '_', '-')",
            )),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            NodeRef::Local => LOCAL_NODE,
            NodeRef::Remote(n) => n,
        }
    }

    /// The `?node=` suffix of a dashboard URL about a session on this node (empty for
    /// this machine, so local links stay what they always were).
    pub fn query(&self) -> String {
        match self {
            NodeRef::Local => String::new(),
            NodeRef::Remote(n) => format!("?node={n}"),
        }
    }
}

/// One tmux operation, wherever it runs.
#[derive(Debug, Clone)]
pub enum TmuxOp {
    List,
    Create(NewSession),
    SendText {
        session: SessionName,
        text: String,
        enter: bool,
        enter_delay: Duration,
    },
    SendKeys {
        session: SessionName,
        keys: Vec<String>,
    },
    Capture {
        session: SessionName,
        lines: u32,
        mode: CaptureMode,
    },
    Kill(SessionName),
}

impl TmuxOp {
    /// The session the operation is about, if one.
    fn session(&self) -> Option<&str> {
        match self {
            TmuxOp::List => None,
            TmuxOp::Create(s) => s.name.as_ref().map(SessionName::as_str),
            TmuxOp::SendText { session, .. }
            | TmuxOp::SendKeys { session, .. }
            | TmuxOp::Capture { session, .. }
            | TmuxOp::Kill(session) => Some(session.as_str()),
        }
    }
}

/// What an operation returned.
#[derive(Debug, Clone)]
pub enum TmuxAnswer {
    Sessions(Vec<SessionInfo>),
    Created(String),
    Text(String),
    Done,
}

impl TmuxOp {
    /// The operation as a `tmux` task payload (see `tmux::task`).
    pub fn task_payload(&self) -> Value {
        match self {
            TmuxOp::List => json!({"op": "list"}),
            TmuxOp::Create(s) => json!({"op": "create", "session": s.name,
                "cwd": s.cwd, "command": s.command, "env": s.env,
                "width": s.width, "height": s.height}),
            TmuxOp::SendText {
                session,
                text,
                enter,
                ..
            } => json!({"op": "send", "session": session, "text": text, "enter": enter}),
            TmuxOp::SendKeys { session, keys } => {
                json!({"op": "keys", "session": session, "keys": keys})
            }
            TmuxOp::Capture {
                session,
                lines,
                mode,
            } => json!({"op": "capture", "session": session, "lines": lines,
                "escapes": *mode == CaptureMode::Escapes}),
            TmuxOp::Kill(session) => json!({"op": "kill", "session": session}),
        }
    }
}

/// Runs `op` on `node`.
pub async fn run(
    state: &AgentsState,
    node: &NodeRef,
    op: TmuxOp,
) -> Result<TmuxAnswer, AgentsError> {
    match node {
        NodeRef::Local => run_local(state.agents.tmux(), op).await,
        NodeRef::Remote(name) => run_remote(state, name, op).await,
    }
}

/// How long a remote tmux operation may take, delivery included.
pub const REMOTE_TIMEOUT_S: i64 = 20;

async fn run_remote(
    state: &AgentsState,
    name: &str,
    op: TmuxOp,
) -> Result<TmuxAnswer, AgentsError> {
    let Some(id) = crate::nodes::actions::node_id_by_name(&state.nodes, name).await? else {
        return Err(crate::validate::invalid(
            "node",
            format!("there is no node '{name}' (GET /api/nodes lists them)"),
        )
        .into());
    };
    if state.nodes.nodes.local_node() == Some(id) {
        return run_local(state.agents.tmux(), op).await;
    }
    let v = crate::nodes::actions::run_command(
        &state.nodes,
        "tmux",
        id,
        "tmux",
        op.task_payload(),
        REMOTE_TIMEOUT_S,
    )
    .await
    .map_err(|e| same_as_local(&op, e))?;
    let bad = |what: &str| {
        AgentsError::Tmux(crate::tmux::TmuxError::Invalid(format!(
            "node '{name}' answered without {what}"
        )))
    };
    Ok(match op {
        TmuxOp::List => TmuxAnswer::Sessions(
            serde_json::from_value(v["sessions"].clone()).map_err(|_| bad("a session list"))?,
        ),
        TmuxOp::Create(_) => TmuxAnswer::Created(
            v["session"]
                .as_str()
                .ok_or_else(|| bad("the session name"))?
                .to_string(),
        ),
        TmuxOp::Capture { .. } => TmuxAnswer::Text(
            v["output"]
                .as_str()
                .ok_or_else(|| bad("the pane text"))?
                .to_string(),
        ),
        TmuxOp::SendText { .. } | TmuxOp::SendKeys { .. } | TmuxOp::Kill(_) => TmuxAnswer::Done,
    })
}

/// The node's agent ran the same driver, so its "not found" / "already exists" message is
/// exactly what [`TmuxError`] prints for this op's session: turn it back into that error.
fn same_as_local(op: &TmuxOp, e: NodeError) -> AgentsError {
    if let (NodeError::CommandFailed(msg), Some(session)) = (&e, op.session()) {
        let missing = TmuxError::NoSuchSession(session.to_string());
        if *msg == missing.to_string() {
            return missing.into();
        }
        let exists = TmuxError::Exists(session.to_string());
        if matches!(op, TmuxOp::Create(_)) && *msg == exists.to_string() {
            return exists.into();
        }
    }
    e.into()
}

/// How long a listing of every node waits for any one node. A node's agent answers a tmux
/// command within milliseconds when it is connected; one that has not answered after this
/// is shown as not answering rather than holding up the page (its command then expires).
pub const NODE_DEADLINE: Duration = Duration::from_secs(4);

/// Which nodes "every node" means right now.
#[derive(Debug, Default)]
pub struct Fleet {
    /// This machine, then every other node whose agent is connected (online or stale).
    pub reachable: Vec<NodeRef>,
    /// Every other node, with why it is not asked (`(name, reason)`).
    pub unreachable: Vec<(String, String)>,
    /// Every node's name a session could be started on (`local` first), with its status.
    pub choices: Vec<(String, String)>,
}

/// The nodes of [`Fleet`]: read from the nodes domain, statuses as of now.
pub async fn fleet(state: &AgentsState) -> Result<Fleet, AgentsError> {
    let mut f = Fleet {
        reachable: vec![NodeRef::Local],
        unreachable: Vec::new(),
        choices: vec![(LOCAL_NODE.to_string(), "this server".to_string())],
    };
    for n in crate::nodes::actions::list_nodes(&state.nodes, 1000, 0).await? {
        if n.local {
            continue;
        }
        f.choices.push((n.name.clone(), n.status.to_string()));
        match n.status {
            NodeStatus::Online | NodeStatus::Stale => f.reachable.push(NodeRef::Remote(n.name)),
            NodeStatus::Offline => f.unreachable.push((
                n.name,
                format!(
                    "offline: its agent is not connected (last heartbeat {} s ago)",
                    n.heartbeat_age_s.unwrap_or_default()
                ),
            )),
            NodeStatus::Waiting => f.unreachable.push((
                n.name,
                "waiting: its agent has not connected yet".to_string(),
            )),
        }
    }
    Ok(f)
}

/// Runs `f` for every node of `nodes` at once, each within `deadline`; answers in the order
/// of `nodes`. A node that does not finish in time gets [`NodeError::TimedOut`] naming it.
pub async fn on_each<T, F, Fut>(
    nodes: &[NodeRef],
    deadline: Duration,
    f: F,
) -> Vec<(NodeRef, Result<T, AgentsError>)>
where
    F: Fn(NodeRef) -> Fut,
    Fut: Future<Output = Result<T, AgentsError>>,
{
    let asks = nodes.iter().map(|n| {
        let ask = f(n.clone());
        async move {
            let r = match tokio::time::timeout(deadline, ask).await {
                Ok(r) => r,
                Err(_) => Err(NodeError::TimedOut(format!(
                    "node '{}' did not answer within {} s",
                    n.name(),
                    deadline.as_secs()
                ))
                .into()),
            };
            (n.clone(), r)
        }
    });
    futures_util::future::join_all(asks).await
}

async fn run_local(tmux: &Tmux, op: TmuxOp) -> Result<TmuxAnswer, AgentsError> {
    Ok(match op {
        TmuxOp::List => TmuxAnswer::Sessions(tmux.list_sessions().await?),
        TmuxOp::Create(spec) => TmuxAnswer::Created(tmux.create(&spec).await?),
        TmuxOp::SendText {
            session,
            text,
            enter,
            enter_delay,
        } => {
            tmux.send_text(&session, &text, enter, enter_delay).await?;
            TmuxAnswer::Done
        }
        TmuxOp::SendKeys { session, keys } => {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            tmux.send_keys(&session, &keys).await?;
            TmuxAnswer::Done
        }
        TmuxOp::Capture {
            session,
            lines,
            mode,
        } => TmuxAnswer::Text(tmux.capture(&session, lines, mode).await?),
        TmuxOp::Kill(session) => {
            tmux.kill(&session).await?;
            TmuxAnswer::Done
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_parse() {
        assert_eq!(NodeRef::parse(None).unwrap(), NodeRef::Local);
        assert_eq!(NodeRef::parse(Some("local")).unwrap(), NodeRef::Local);
        assert_eq!(
            NodeRef::parse(Some("gpu-1.lan")).unwrap(),
            NodeRef::Remote("gpu-1.lan".into())
        );
        assert!(NodeRef::parse(Some("a b")).is_err());
        assert!(NodeRef::parse(Some("x;y")).is_err());
    }

    #[test]
    fn ops_become_tmux_task_payloads() {
        let s = SessionName::parse("w1").unwrap();
        let p = TmuxOp::SendKeys {
            session: s,
            keys: vec!["Enter".into()],
        }
        .task_payload();
        assert_eq!(p, json!({"op": "keys", "session": "w1", "keys": ["Enter"]}));
    }
}
