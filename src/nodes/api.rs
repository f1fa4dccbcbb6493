//! JSON routes of the nodes domain.
//!
//! Who may do what: reading nodes, metrics and commands needs `Read`; an agent's calls
//! (register, heartbeat, the command long-poll, results) take a [`NodeAgent`]: `AgentOps` from
//! a bearer token (an `agent`-scoped token not bound to a session) and, once the node is bound
//! to a token, that very token; removing nodes and queueing commands needs `Admin`.

use super::actions::{self, AgentCaller, NodeError};
use super::history::{self, MetricRange, MetricSeries};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, AgentOps, Authed, Read};
use crate::auth::{AuthVia, Capability, Identity};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path, Query};
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

/// A node's agent calling: `AgentOps` with a bearer token. A browser session is never an
/// agent (it must not claim commands through a cross-site request), and a session's own token
/// lacks `AgentOps`.
pub struct NodeAgent(pub Identity, pub AgentCaller);

impl FromRequestParts<AppState> for NodeAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(identity, _) = Authed::<AgentOps>::from_request_parts(parts, state).await?;
        let caller = AgentCaller::from_identity(&identity)?;
        Ok(NodeAgent(identity, caller))
    }
}

/// Who may register a node: its agent (a bearer token with `AgentOps`), or an admin adding
/// an unbound node by hand from the dashboard.
pub struct NodeRegistrar(pub Identity);

impl FromRequestParts<AppState> for NodeRegistrar {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(identity, _) = Authed::<AgentOps>::from_request_parts(parts, state).await?;
        if matches!(identity.via, AuthVia::Session { .. }) && !identity.can(Capability::Admin) {
            return Err(ApiError::forbidden(
                "adding nodes by hand is for admins; agents register with their own token",
            ));
        }
        Ok(NodeRegistrar(identity))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/nodes", get(list).post(register))
        .route(
            "/api/nodes/{id}",
            get(show).put(change_reach).delete(remove),
        )
        .route("/api/nodes/{id}/heartbeat", post(heartbeat))
        .route("/api/nodes/{id}/metrics", get(metrics))
        .route("/api/nodes/{id}/commands", get(poll).post(enqueue))
        .route("/api/nodes/{id}/commands/{cid}", get(command))
        .route("/api/nodes/{id}/commands/{cid}/result", post(result))
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::NotFound(what) => ApiError::not_found(what),
            NodeError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            NodeError::Forbidden(m) => ApiError::forbidden(m),
            NodeError::Conflict(m) => ApiError::conflict(m),
            NodeError::TimedOut(m) => ApiError::new(StatusCode::CONFLICT, "command_timed_out", m),
            NodeError::CommandFailed(m) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "command_failed", m)
            }
            NodeError::Unavailable(m) => ApiError::unavailable(m),
            NodeError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Seconds to wait (≤ 50).
    #[serde(default)]
    wait: Option<f64>,
}

impl WaitQuery {
    fn seconds(&self) -> Result<f64, ApiError> {
        match self.wait {
            None => Ok(0.0),
            Some(w) if w.is_finite() && (0.0..=MAX_WAIT_S).contains(&w) => Ok(w),
            Some(_) => Err(ApiError::invalid(
                "wait",
                format!("wait must be 0 to {MAX_WAIT_S} seconds"),
            )),
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MetricsQuery {
    #[serde(default)]
    range: Option<MetricRange>,
}

async fn list(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
) -> ApiResult<Vec<Node>> {
    Ok(Json(
        actions::list_nodes(&s.nodes_state(), page.limit, page.offset).await?,
    ))
}

/// 201 when the node was created, 200 when it existed (registration is idempotent).
async fn register(
    State(s): State<AppState>,
    NodeRegistrar(who): NodeRegistrar,
    Json(input): Json<RegisterNode>,
) -> Result<(StatusCode, Json<Node>), ApiError> {
    let (node, created) = actions::register(&s.nodes_state(), &who, input).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(node)))
}

async fn show(State(s): State<AppState>, _: Authed<Read>, Path(id): Path<i64>) -> ApiResult<Node> {
    Ok(Json(actions::node(&s.nodes_state(), id).await?))
}

#[derive(serde::Serialize)]
struct Removed {
    id: i64,
    deleted: bool,
}

async fn remove(
    State(s): State<NodesState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
) -> ApiResult<Removed> {
    actions::delete_node(&s, who.identity(), id).await?;
    Ok(Json(Removed { id, deleted: true }))
}

/// The path names the node by id or, as the original's scripts do, by name.
async fn heartbeat(
    State(s): State<AppState>,
    NodeAgent(_, caller): NodeAgent,
    Path(key): Path<String>,
    Json(m): Json<NodeMetrics>,
) -> ApiResult<Node> {
    let id = actions::node_id_by_key(&s.nodes_state(), &key).await?;
    Ok(Json(
        actions::heartbeat(&s.nodes_state(), &caller, id, m).await?,
    ))
}

/// How the node is reached (address, SSH user and port, role, services, tags, the vault
/// reference of its SSH secret): admins only.
async fn change_reach(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
    Json(change): Json<super::reach::ReachChange>,
) -> ApiResult<Node> {
    Ok(Json(
        actions::change_reach(&s.nodes_state(), who.identity(), id, change).await?,
    ))
}

async fn metrics(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<MetricsQuery>,
) -> ApiResult<MetricSeries> {
    actions::node(&s.nodes_state(), id).await?;
    let range = q.range.unwrap_or(MetricRange::Day);
    Ok(Json(history::series(&s.nodes_state(), id, range).await?))
}

/// The agent's long-poll (`?wait=25`): the commands now delivered to it, possibly none.
async fn poll(
    State(s): State<AppState>,
    NodeAgent(_, caller): NodeAgent,
    Path(id): Path<i64>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<CommandBatch> {
    let wait = q.seconds()?;
    Ok(Json(
        actions::poll_commands(&s.nodes_state(), &caller, id, wait).await?,
    ))
}

async fn enqueue(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
    Json(input): Json<NewCommand>,
) -> Result<(StatusCode, Json<NodeCommand>), ApiError> {
    let c = actions::enqueue_command(&s.nodes_state(), &who.identity().actor(), id, input).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// A command; with `?wait=N` the answer waits up to N seconds for its result.
async fn command(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path((id, cid)): Path<(i64, i64)>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<NodeCommand> {
    let wait = q.seconds()?;
    Ok(Json(
        actions::command(&s.nodes_state(), id, cid, wait).await?,
    ))
}

async fn result(
    State(s): State<AppState>,
    NodeAgent(_, caller): NodeAgent,
    Path((id, cid)): Path<(i64, i64)>,
    Json(answer): Json<CommandResult>,
) -> ApiResult<NodeCommand> {
    Ok(Json(
        actions::post_result(&s.nodes_state(), &caller, id, cid, answer).await?,
    ))
}
