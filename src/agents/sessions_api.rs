//! JSON routes for launching sessions and for hook reports.
//!
//! `POST /api/agents/sessions` (Write) launches an agent (`architect session start`);
//! `POST /api/agents/hooks/<event>` (AgentOps: the session's own `agent` token) records a hook.

use super::hooks::{self, HookAnswer, HookEvent, HookReport};
use super::launch::{self, StartSession, StartedSession};
use super::route::NodeRef;
use super::store::{self, SessionRow, StateChange};
use crate::app::AppState;
use crate::auth::extract::{AgentOps, Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
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
    State(s): State<AppState>,
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
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(req): Json<StartSession>,
) -> Result<(StatusCode, Json<StartedSession>), ApiError> {
    let started = launch::start(&s, who.identity(), req).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

async fn hook(
    State(s): State<AppState>,
    _: Authed<AgentOps>,
    Path(event): Path<String>,
    Json(report): Json<HookReport>,
) -> Result<Json<HookAnswer>, ApiError> {
    let event: HookEvent = event
        .parse()
        .map_err(|e: String| ApiError::bad_request(e))?;
    Ok(Json(hooks::report(&s, event, report).await?))
}
