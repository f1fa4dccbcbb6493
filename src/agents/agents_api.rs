//! `/api/agents*` (SPEC.md "Agents"): agent sessions with their state, and messages to one or
//! all of them. Messages go through the assigner's queue, so they are typed only into an idle
//! session with an empty input line — never over an agent at work or a person's typing.

use super::assigner::api::enqueue;
use super::assigner::NewPrompt;
use super::classify::AgentKind;
use super::route::NodeRef;
use super::sessions::{self, LiveSession, NodeFailure};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(list))
        .route("/api/agents/send", post(send))
        .route("/api/agents/broadcast", post(broadcast))
}

fn is_agent(s: &LiveSession) -> bool {
    !matches!(s.agent, AgentKind::Shell | AgentKind::Other)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFilter {
    node: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct AgentList {
    pub agents: Vec<LiveSession>,
    pub errors: Vec<NodeFailure>,
}

async fn list(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Query(f): Query<NodeFilter>,
) -> Result<Json<AgentList>, ApiError> {
    let node =
        NodeRef::parse(f.node.as_deref()).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let (all, errors) = sessions::observe_all(&s, &[node], false).await;
    Ok(Json(AgentList {
        agents: all.into_iter().filter(is_agent).collect(),
        errors,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    session: String,
    message: String,
    priority: Option<i64>,
    node: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Queued {
    pub prompt_ids: Vec<i64>,
    pub success: bool,
}

async fn send(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<SendRequest>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let id = enqueue(
        &s,
        who.identity(),
        NewPrompt {
            content: r.message,
            priority: r.priority,
            target_session: Some(r.session),
            node: r.node,
            ..Default::default()
        },
        None,
    )
    .await
    .map_err(|e| match ApiError::from(e) {
        mut a if a.field.as_deref() == Some("content") => {
            a.field = Some("message".into());
            a.message = a.message.replace("content", "message");
            a
        }
        mut a if a.field.as_deref() == Some("target_session") => {
            a.field = Some("session".into());
            a
        }
        a => a,
    })?;
    Ok((
        StatusCode::CREATED,
        Json(Queued {
            prompt_ids: vec![id],
            success: true,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastRequest {
    message: String,
    /// Only sessions with this role / in this group.
    role: Option<String>,
    group: Option<String>,
    priority: Option<i64>,
}

async fn broadcast(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<BroadcastRequest>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    if r.message.trim().is_empty() {
        return Err(ApiError::invalid("message", "message must not be empty"));
    }
    if let Some(role) = &r.role {
        role.parse::<super::SessionRole>()
            .map_err(|e| ApiError::invalid("role", e))?;
    }
    let (all, _) = sessions::observe_all(&s, &[NodeRef::Local], false).await;
    let targets: Vec<LiveSession> = all
        .into_iter()
        .filter(is_agent)
        .filter(|a| r.role.as_ref().is_none_or(|x| a.role.as_ref() == Some(x)))
        .filter(|a| r.group.as_ref().is_none_or(|g| a.groups.contains(g)))
        .collect();
    let mut ids = Vec::new();
    for a in targets {
        ids.push(
            enqueue(
                &s,
                who.identity(),
                NewPrompt {
                    content: r.message.clone(),
                    priority: r.priority,
                    target_session: Some(a.tmux.name.clone()),
                    ..Default::default()
                },
                None,
            )
            .await?,
        );
    }
    Ok((
        StatusCode::CREATED,
        Json(Queued {
            success: !ids.is_empty(),
            prompt_ids: ids,
        }),
    ))
}
