//! JSON routes of the pane classifier's pattern table: `/api/agents/pane-patterns` (list,
//! create, update, delete; `Write` to change) and `POST /api/agents/classify` (try a screen).

use super::api::ApiResult;
use super::classify::{self, AgentKind, PanePattern, PaneView, Signal, Source};
use super::{store, AgentsError};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::validate::{invalid, Invalid};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/agents/pane-patterns",
            get(list_pane_patterns).post(create_pane_pattern),
        )
        .route(
            "/api/agents/pane-patterns/{id}",
            put(update_pane_pattern).delete(delete_pane_pattern),
        )
        .route("/api/agents/classify", post(classify_text))
}

#[derive(Serialize, Deserialize, Debug)]
pub struct PatternTable {
    /// User rows, evaluated first, in this order.
    pub user: Vec<PanePattern>,
    /// Built-in rows, evaluated after the user rows.
    pub builtin: Vec<PanePattern>,
}

async fn list_pane_patterns(
    State(s): State<AgentsState>,
    _: Authed<Read>,
) -> ApiResult<PatternTable> {
    Ok(Json(PatternTable {
        user: store::list_pane_patterns(&s.db).await?,
        builtin: classify::builtin_patterns_enabling(&s.config.agents.classifier_enable),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternInput {
    name: String,
    agent: AgentKind,
    signal: Signal,
    source: Source,
    tail_lines: Option<i64>,
    regex: String,
    enabled: Option<bool>,
    note: Option<String>,
    /// Order among user rows (lower first; default 0, then by id).
    position: Option<i64>,
}

fn check_pattern(p: PatternInput) -> Result<(PanePattern, i64), Invalid> {
    let name = p.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(invalid("name", "name must be 1-100 characters"));
    }
    if p.regex.is_empty() || p.regex.len() > 2000 {
        return Err(invalid("regex", "regex must be 1-2000 characters"));
    }
    classify::compile(&p.regex).map_err(|e| invalid("regex", format!("invalid regex: {e}")))?;
    let tail_lines = p.tail_lines.unwrap_or(5);
    if !(1..=200).contains(&tail_lines) {
        return Err(invalid("tail_lines", "tail_lines must be 1-200"));
    }
    Ok((
        PanePattern {
            id: None,
            name: name.to_string(),
            agent: p.agent,
            signal: p.signal,
            source: p.source,
            tail_lines,
            regex: p.regex,
            enabled: p.enabled.unwrap_or(true),
            note: p.note.unwrap_or_default(),
        },
        p.position.unwrap_or(0),
    ))
}

fn unique(e: sqlx::Error) -> ApiError {
    if crate::db::is_unique_violation(&e) {
        ApiError::conflict("a pane pattern with this name exists").with_field("name")
    } else {
        e.into()
    }
}

async fn create_pane_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(p): Json<PatternInput>,
) -> Result<(StatusCode, Json<PanePattern>), ApiError> {
    let (mut p, position) = check_pattern(p).map_err(AgentsError::from)?;
    let id = store::insert_pane_pattern(
        &s.db,
        &p,
        position,
        &who.identity().username,
        &s.clock.now_str(),
    )
    .await
    .map_err(unique)?;
    s.agents.patterns_changed();
    p.id = Some(id);
    Ok((StatusCode::CREATED, Json(p)))
}

async fn update_pane_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(p): Json<PatternInput>,
) -> ApiResult<PanePattern> {
    let (mut p, position) = check_pattern(p).map_err(AgentsError::from)?;
    let actor = who.identity().actor();
    if !store::update_pane_pattern(&s.db, &actor, id, &p, position, &s.clock.now_str())
        .await
        .map_err(unique)?
    {
        return Err(ApiError::not_found("pane pattern"));
    }
    s.agents.patterns_changed();
    p.id = Some(id);
    Ok(Json(p))
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Deleted {
    pub deleted: bool,
}

async fn delete_pane_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Deleted> {
    if store::pane_pattern(&s.db, id).await?.is_none() {
        return Err(ApiError::not_found("pane pattern"));
    }
    let actor = who.identity().actor();
    store::delete_pane_pattern(&s.db, &actor, id, &s.clock.now_str()).await?;
    s.agents.patterns_changed();
    Ok(Json(Deleted { deleted: true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyRequest {
    screen: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    command: String,
    agent: Option<AgentKind>,
}

/// Classifies a given screen with the current table (to try a pattern before relying on it).
async fn classify_text(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Json(r): Json<ClassifyRequest>,
) -> ApiResult<classify::Classification> {
    let c = s.agents.classifier(&s.db).await?;
    Ok(Json(c.classify(&PaneView {
        screen: &r.screen,
        title: &r.title,
        command: &r.command,
        agent_hint: r.agent,
    })))
}
