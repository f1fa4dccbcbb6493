//! How an agent reaches the control plane: over HTTP with its token (`architect agent`), or
//! in-process for `serve`'s own node (the same operations, called directly: no HTTP hop, no
//! token). The agent loop (`agent.rs`) is written once against [`Transport`].

use super::actions::{self, AgentCaller, NodeError};
use super::*;
use crate::client::{Client, ClientError};
use std::future::Future;

/// Why a call to the control plane failed, as the agent needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportError {
    /// Could not reach it, or it is overloaded or failing (5xx, 429): retry with backoff.
    Unreachable(String),
    /// The node no longer exists (removed on the dashboard): register again.
    NodeGone,
    /// The control plane refused (bad or revoked token, node bound to another token, bad
    /// input): retry with backoff too, since an admin may fix it, but it is worth a log line.
    Refused(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Unreachable(m) => write!(f, "control plane unreachable: {m}"),
            TransportError::NodeGone => f.write_str("this node was removed on the dashboard"),
            TransportError::Refused(m) => write!(f, "refused by the control plane: {m}"),
        }
    }
}

type Res<T> = Result<T, TransportError>;

pub trait Transport: Send + Sync + 'static {
    fn register(&self, r: &RegisterNode) -> impl Future<Output = Res<Node>> + Send;
    fn heartbeat(&self, node: i64, m: &NodeMetrics) -> impl Future<Output = Res<()>> + Send;
    /// Long-polls up to `wait_s` for commands; each returned command is now delivered.
    fn poll(&self, node: i64, wait_s: f64) -> impl Future<Output = Res<Vec<NodeCommand>>> + Send;
    fn answer(
        &self,
        node: i64,
        command: i64,
        r: &CommandResult,
    ) -> impl Future<Output = Res<()>> + Send;
}

// ---- over HTTP ----

pub struct Http(pub Client);

fn from_client(e: ClientError, node_call: bool) -> TransportError {
    match e {
        ClientError::Api { status: 404, .. } if node_call => TransportError::NodeGone,
        ClientError::Api {
            status, message, ..
        } if status == 429 || status >= 500 => {
            TransportError::Unreachable(format!("HTTP {status}: {message}"))
        }
        ClientError::Api {
            status, message, ..
        } => TransportError::Refused(format!("HTTP {status}: {message}")),
        ClientError::Transport { source, .. } => TransportError::Unreachable(source.to_string()),
        ClientError::Decode { message, .. } => TransportError::Unreachable(message),
    }
}

impl Transport for Http {
    async fn register(&self, r: &RegisterNode) -> Res<Node> {
        self.0
            .register_node(r)
            .await
            .map_err(|e| from_client(e, false))
    }
    async fn heartbeat(&self, node: i64, m: &NodeMetrics) -> Res<()> {
        self.0
            .node_heartbeat(node, m)
            .await
            .map(|_| ())
            .map_err(|e| from_client(e, true))
    }
    async fn poll(&self, node: i64, wait_s: f64) -> Res<Vec<NodeCommand>> {
        self.0
            .poll_node_commands(node, wait_s)
            .await
            .map(|b| b.commands)
            .map_err(|e| from_client(e, true))
    }
    async fn answer(&self, node: i64, command: i64, r: &CommandResult) -> Res<()> {
        self.0
            .answer_node_command(node, command, r)
            .await
            .map(|_| ())
            .map_err(|e| from_client(e, false))
    }
}

// ---- in-process ----

pub struct InProcess(pub AppState);

fn from_action(e: NodeError) -> TransportError {
    match e {
        NodeError::NotFound("node") => TransportError::NodeGone,
        NodeError::Db(e) => TransportError::Unreachable(e.to_string()),
        other => TransportError::Refused(other.to_string()),
    }
}

impl Transport for InProcess {
    async fn register(&self, r: &RegisterNode) -> Res<Node> {
        actions::register_local(&self.0.nodes_state(), r)
            .await
            .map_err(from_action)
    }
    async fn heartbeat(&self, node: i64, m: &NodeMetrics) -> Res<()> {
        actions::heartbeat(&self.0.nodes_state(), &AgentCaller::Local, node, m.clone())
            .await
            .map(|_| ())
            .map_err(from_action)
    }
    async fn poll(&self, node: i64, wait_s: f64) -> Res<Vec<NodeCommand>> {
        match actions::poll_commands(&self.0.nodes_state(), &AgentCaller::Local, node, wait_s).await
        {
            Ok(b) => Ok(b.commands),
            // serve is stopping and stops this agent with it: nothing to retry or report.
            Err(NodeError::Unavailable(_)) if self.0.nodes.is_closing() => {
                std::future::pending().await
            }
            Err(e) => Err(from_action(e)),
        }
    }
    async fn answer(&self, node: i64, command: i64, r: &CommandResult) -> Res<()> {
        actions::post_result(
            &self.0.nodes_state(),
            &AgentCaller::Local,
            node,
            command,
            r.clone(),
        )
        .await
        .map(|_| ())
        .map_err(|e| match e {
            NodeError::Db(e) => TransportError::Unreachable(e.to_string()),
            other => TransportError::Refused(other.to_string()),
        })
    }
}
