//! The operations of the nodes domain, each in one transaction. The command channel (and its
//! entry point for other domains, [`run_command`]) is `commands.rs`.
//!
//! Who acts for a node ([`AgentCaller`]): a node is bound to the API token that registered it
//! (or that "Add node" created for it); only that token may heartbeat, poll and answer for it.
//! This server's own node is bound to no token and served by the in-process agent alone.

mod commands;
mod reach;
pub use commands::*;
pub use reach::change_reach;

use super::store::{self, InsertNode, NodeRow};
use super::*;
use crate::activity;
use crate::auth::{AuthVia, Capability, Identity};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// A result for a command whose deadline passed: refused, nothing changed.
    #[error("{0}")]
    TimedOut(String),
    /// The agent ran the command and reported a failure (from [`run_command`]).
    #[error("{0}")]
    CommandFailed(String),
    /// The node cannot take commands now (offline, never connected).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A write lost a race: the node was removed (foreign key) or its name was taken (unique)
/// between our check and our write. Those are the caller's 404 / 409, not a server fault.
fn raced(e: sqlx::Error) -> NodeError {
    if crate::db::is_foreign_key_violation(&e) {
        NodeError::NotFound("node")
    } else if crate::db::is_unique_violation(&e) {
        NodeError::Conflict("a node with this name was just created; try again".into())
    } else {
        NodeError::Db(e)
    }
}

impl From<Invalid> for NodeError {
    fn from(v: Invalid) -> Self {
        NodeError::Invalid(v)
    }
}

pub type Result<T> = std::result::Result<T, NodeError>;

/// Who is acting as a node's agent.
#[derive(Debug, Clone)]
pub enum AgentCaller {
    /// `serve`'s in-process agent, for this host's node only.
    Local,
    /// An API token (`architect agent`), for the node bound to it.
    Token { token_id: i64, actor: String },
}

impl AgentCaller {
    /// Agent endpoints take a bearer token: a browser session is never an agent (and must not
    /// claim commands through a cross-site GET).
    pub fn from_identity(who: &Identity) -> Result<AgentCaller> {
        match &who.via {
            AuthVia::Token { token_id, .. } => Ok(AgentCaller::Token {
                token_id: *token_id,
                actor: who.actor(),
            }),
            AuthVia::Session { .. } => Err(NodeError::Forbidden(
                "node agent endpoints take an API token (scope 'agent'), not a browser session"
                    .into(),
            )),
        }
    }
}

fn now_pair(state: &NodesState) -> (OffsetDateTime, String) {
    let now = state.clock.now();
    (now, crate::clock::format(now))
}

fn view(state: &NodesState, row: NodeRow) -> Node {
    row.view(state.nodes.started(), state.clock.now())
}

// ---- reading ----

pub async fn list_nodes(state: &NodesState, limit: i64, offset: i64) -> Result<Vec<Node>> {
    let rows = store::list_nodes(&state.db, limit, offset).await?;
    Ok(rows.into_iter().map(|r| view(state, r)).collect())
}

pub async fn node(state: &NodesState, id: i64) -> Result<Node> {
    let row = store::get_node(&state.db, id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    Ok(view(state, row))
}

// ---- registering, adding, removing ----

/// `POST /api/nodes`, idempotent by name. A token registering binds the node to itself (when
/// not bound yet); an admin without a token adds an unbound entry. Returns the node and
/// whether it was created.
pub async fn register(
    state: &NodesState,
    who: &Identity,
    mut input: RegisterNode,
) -> Result<(Node, bool)> {
    let token_id = match &who.via {
        AuthVia::Token { token_id, .. } => Some(*token_id),
        AuthVia::Session { .. } => {
            if !who.can(Capability::Admin) {
                return Err(NodeError::Forbidden(
                    "adding nodes by hand is for admins; agents register with their own token"
                        .into(),
                ));
            }
            None
        }
    };
    input.validate()?;
    let (_, now) = now_pair(state);
    let actor = who.actor();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let (row, created) = match store::node_by_name(&mut *tx, &input.name).await? {
        Some(n) if n.is_local != 0 => {
            return Err(NodeError::Conflict(format!(
            "'{}' is this server's own node (served in-process); give this agent another --node-id",
            n.name
        )))
        }
        Some(n) => match (n.token_id, token_id) {
            (Some(bound), Some(t)) if bound != t => {
                return Err(NodeError::Forbidden(format!(
                "node '{}' is bound to another API token; remove the node first, or use its token",
                n.name
            )))
            }
            (_, Some(t)) => (
                store::record_registration(&mut tx, n.id, &input, Some(t), &now).await?,
                false,
            ),
            (_, None) => (n, false),
        },
        None => {
            let hostname = input.hostname.clone().unwrap_or_else(|| input.name.clone());
            let row = store::insert_node(
                &mut tx,
                InsertNode {
                    name: &input.name,
                    hostname: &hostname,
                    os: input.os.as_deref(),
                    version: input.version.as_deref(),
                    interval_s: input.interval_s.unwrap_or(state.node_interval),
                    is_local: false,
                    token_id,
                    created_by: &actor,
                    registered: token_id.is_some(),
                    now: &now,
                },
            )
            .await
            .map_err(raced)?;
            activity::store::record(
                &mut tx,
                &actor,
                "create",
                "node",
                Some(row.id),
                &json!({"name": row.name}),
                &now,
            )
            .await?;
            (row, true)
        }
    };
    let row = reach::apply_reach(&mut tx, row, &input.reach_change()).await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Nodes, "registered", row.id);
    Ok((view(state, row), created))
}

/// The in-process agent registers this host's node (created on first start, kept after).
pub async fn register_local(state: &NodesState, input: &RegisterNode) -> Result<Node> {
    input.clone().validate()?;
    let (_, now) = now_pair(state);
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = match store::node_by_name(&mut *tx, &input.name).await? {
        Some(n) if n.is_local != 0 => {
            store::record_registration(&mut tx, n.id, input, None, &now).await?
        }
        Some(n) => {
            return Err(NodeError::Conflict(format!(
            "a remote agent already registered the name '{}'; start serve with --local-node-name",
            n.name
        )))
        }
        None => {
            store::insert_node(
                &mut tx,
                InsertNode {
                    name: &input.name,
                    hostname: input.hostname.as_deref().unwrap_or(&input.name),
                    os: input.os.as_deref(),
                    version: input.version.as_deref(),
                    interval_s: input.interval_s.unwrap_or(state.node_interval),
                    is_local: true,
                    token_id: None,
                    created_by: "architect serve",
                    registered: true,
                    now: &now,
                },
            )
            .await?
        }
    };
    let mut input = input.clone();
    input.validate()?;
    let row = reach::apply_reach(&mut tx, row, &input.reach_change()).await?;
    tx.commit().await?;
    state.nodes.set_local_node(row.id);
    Ok(view(state, row))
}

/// The "Add node" flow: a fresh `agent` token, and the node entry bound to it, in one go.
pub async fn add_node_with_token(
    state: &NodesState,
    who: &Identity,
    name: &str,
) -> Result<(Node, crate::auth::CreatedToken)> {
    let mut input = RegisterNode {
        name: name.to_string(),
        ..Default::default()
    };
    input.validate()?;
    if store::node_by_name(&state.db, &input.name).await?.is_some() {
        return Err(NodeError::Conflict(format!(
            "a node named '{}' exists already",
            input.name
        )));
    }
    let token = crate::auth::actions::create_token(
        &state.auth,
        who,
        crate::auth::actions::NewApiToken {
            name: format!("node {}", input.name),
            scope: crate::auth::Scope::Agent,
            expires_in_days: None,
            user_id: None,
        },
    )
    .await
    .map_err(|e| match e {
        crate::auth::actions::AuthError::Db(e) => NodeError::Db(e),
        crate::auth::actions::AuthError::Forbidden(m) => NodeError::Forbidden(m),
        other => NodeError::Conflict(other.to_string()),
    })?;
    let (_, now) = now_pair(state);
    let actor = who.actor();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::insert_node(
        &mut tx,
        InsertNode {
            name: &input.name,
            hostname: &input.name,
            os: None,
            version: None,
            interval_s: state.node_interval,
            is_local: false,
            token_id: Some(token.info.id),
            created_by: &actor,
            registered: false,
            now: &now,
        },
    )
    .await;
    let row = match row {
        Ok(r) => r,
        Err(e) => {
            // Lost a race for the name: take the unused token back.
            drop(tx);
            let _ = crate::auth::actions::revoke_token(&state.auth, who, token.info.id).await;
            return Err(raced(e));
        }
    };
    activity::store::record(
        &mut tx,
        &actor,
        "create",
        "node",
        Some(row.id),
        &json!({"name": row.name, "token_id": token.info.id}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Nodes, "registered", row.id);
    Ok((view(state, row), token))
}

/// Removes a node with its history and commands, and revokes the `agent` token bound to it
/// (so its agent cannot silently register it again).
pub async fn delete_node(state: &NodesState, who: &Identity, id: i64) -> Result<()> {
    let (_, now) = now_pair(state);
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::get_node(&mut *tx, id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    // Only the node this server serves right now: an old one (the host was renamed) can go.
    if state.nodes.local_node() == Some(id) {
        return Err(NodeError::Conflict(
            "this is the server's own node; it would come back at once (start serve with --local-node false to drop it)"
                .into(),
        ));
    }
    store::delete_node(&mut tx, id).await?;
    activity::store::record(
        &mut tx,
        &who.actor(),
        "delete",
        "node",
        Some(id),
        &json!({"name": row.name}),
        &now,
    )
    .await?;
    tx.commit().await?;
    if let Some(token_id) = row.token_id {
        let agent_token = crate::auth::store::get_token(&state.db, token_id, &now)
            .await?
            .is_some_and(|t| t.scope == crate::auth::Scope::Agent && t.revoked_at.is_none());
        if agent_token {
            if let Err(e) = crate::auth::actions::revoke_token(&state.auth, who, token_id).await {
                tracing::warn!(node = %row.name, error = %e, "could not revoke the removed node's token");
            }
        }
    }
    // Anyone waiting on its commands learns they are gone.
    state.nodes.wake_result_waiters();
    state
        .events
        .emit(crate::events::Topic::Nodes, "deleted", id);
    Ok(())
}

// ---- the agent side ----

/// Refuses unless `caller` is the agent of node `id` (holds the token the node is bound to).
pub async fn ensure_agent_of(state: &NodesState, caller: &AgentCaller, id: i64) -> Result<()> {
    agent_node(state, caller, id).await.map(|_| ())
}

/// The node `caller` may act for, or why not.
async fn agent_node(state: &NodesState, caller: &AgentCaller, id: i64) -> Result<NodeRow> {
    let row = store::get_node(&state.db, id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    let ok = match caller {
        AgentCaller::Local => row.is_local != 0,
        AgentCaller::Token { token_id, .. } => {
            if row.is_local != 0 {
                return Err(NodeError::Forbidden(format!(
                    "node '{}' is this server's own node; it is served in-process",
                    row.name
                )));
            }
            if row.token_id.is_none() {
                return Err(NodeError::Forbidden(format!(
                    "node '{}' is not bound to a token yet: register it first (POST /api/nodes)",
                    row.name
                )));
            }
            row.token_id == Some(*token_id)
        }
    };
    if !ok {
        return Err(NodeError::Forbidden(format!(
            "this token acts for another node, not '{}'",
            row.name
        )));
    }
    Ok(row)
}

pub async fn heartbeat(
    state: &NodesState,
    caller: &AgentCaller,
    id: i64,
    mut metrics: NodeMetrics,
) -> Result<Node> {
    metrics.take_percentages()?;
    metrics.validate()?;
    agent_node(state, caller, id).await?;
    let (_, now) = now_pair(state);
    let mut tx = crate::db::begin_write(&state.db).await?;
    if !store::record_heartbeat(&mut tx, id, &metrics, &now).await? {
        return Err(NodeError::NotFound("node"));
    }
    let row = store::get_node(&mut *tx, id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Metrics, "heartbeat", id);
    Ok(view(state, row))
}

/// Node counts by state, for `/metrics` (`architect_nodes{status="online"}` ...).
pub async fn status_counts(state: &NodesState) -> Result<Vec<(NodeStatus, u64)>> {
    let now = state.clock.now();
    let started = state.nodes.started();
    let mut counts: Vec<(NodeStatus, u64)> = NodeStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for (last, interval) in store::heartbeat_times(&state.db).await? {
        let (s, _) = NodeStatus::at(
            last.as_deref().and_then(crate::clock::parse),
            started,
            now,
            interval,
        );
        if let Some(c) = counts.iter_mut().find(|(k, _)| *k == s) {
            c.1 += 1;
        }
    }
    Ok(counts)
}

pub async fn export_gauges(state: &NodesState) -> Result<()> {
    for (s, n) in status_counts(state).await? {
        metrics::gauge!("architect_nodes", "status" => s.as_str()).set(n as f64);
    }
    Ok(())
}

/// A node named in a path: its id (all digits), else its name (the original's scripts
/// heartbeat to `/api/nodes/<their node id>/heartbeat`, which is architect's node name).
pub async fn node_id_by_key(state: &NodesState, key: &str) -> Result<i64> {
    if let Ok(id) = key.parse::<i64>() {
        return Ok(id);
    }
    node_id_by_name(state, key)
        .await?
        .ok_or(NodeError::NotFound("node"))
}

/// The id of the node called `name`, if there is one (other domains address nodes by name).
pub async fn node_id_by_name(state: &NodesState, name: &str) -> Result<Option<i64>> {
    Ok(store::node_by_name(&state.db, name).await?.map(|r| r.id))
}
