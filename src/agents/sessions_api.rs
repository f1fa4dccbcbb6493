//! JSON routes for launching sessions and for hook reports.
//!
//! `POST /api/agents/sessions` (Write; a `shell` session, another program, extra arguments or
//! environment need Exec) launches an agent (`architect session start`);
//! `POST /api/agents/hooks/<event>` records a hook: the session's own token, for that session
//! only (the report's `session`/`node` must name it), or a person with Write.

use super::hooks::{self, HookAnswer, HookEvent, HookReport};
use super::launch::{self, StartSession, StartedSession};
use super::route::NodeRef;
use super::store::{self, SessionRow, StateChange};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, SessionOr, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::nodes::api::NodeAgent;
use crate::tmux::spawn::RedeemedToken;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agents/sessions", post(start_session))
        .route("/api/agents/hooks/{event}", post(hook))
        .route("/api/agents/sessions/{name}", get(tracked_session))
        .route("/api/agents/session-claims/redeem", post(redeem_claim))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    claim: String,
}

/// A node's agent trades the one-time claim of a remote `session-start` for the session's
/// token (see `launch::launch_remote`): only the agent of the node the claim was made for,
/// only once, only before it expires.
async fn redeem_claim(
    State(s): State<AgentsState>,
    NodeAgent(_, caller): NodeAgent,
    Json(r): Json<RedeemRequest>,
) -> Result<Json<RedeemedToken>, ApiError> {
    let token = launch::redeem_claim(&s, &caller, &r.claim).await?;
    Ok(Json(RedeemedToken { token }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeQuery {
    node: Option<String>,
}

/// A tracked session with its latest state changes (each with the signal that decided it).
#[derive(Serialize, Deserialize, Debug)]
pub struct TrackedSession {
    pub session: SessionRow,
    pub changes: Vec<StateChange>,
}

async fn tracked_session(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Path(name): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<TrackedSession>, ApiError> {
    let node =
        NodeRef::parse(q.node.as_deref()).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let session = store::session(&s.db, node.name(), &name)
        .await?
        .ok_or_else(|| ApiError::not_found("tracked session"))?;
    let changes = store::state_changes(&s.db, session.id, 50).await?;
    Ok(Json(TrackedSession { session, changes }))
}

async fn start_session(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(req): Json<StartSession>,
) -> Result<(StatusCode, Json<StartedSession>), ApiError> {
    let started = launch::start(&s, who.identity(), req).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

async fn hook(
    State(s): State<AgentsState>,
    who: SessionOr<Write>,
    Path(event): Path<String>,
    Json(report): Json<HookReport>,
) -> Result<Json<HookAnswer>, ApiError> {
    let event: HookEvent = event
        .parse()
        .map_err(|e: String| ApiError::bad_request(e))?;
    let node = NodeRef::parse(report.node.as_deref())
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let name = crate::tmux::SessionName::parse(&report.session)
        .map_err(|e| ApiError::invalid("session", e.message))?;
    who.confine(node.name(), name.as_str())?;
    Ok(Json(hooks::report(&s, event, report).await?))
}
