//! `/api/claude/interactions*` and `/api/claude/patterns*` (SPEC.md "Claude Interactions"):
//! pending approvals, handling them by hand, turning one into a pattern, the pattern table,
//! a dry run, and the audit of every decision.
//!
//! Reading needs `Read`; deciding and editing patterns need `Write`.

use super::permission_actions::{
    self as actions, DryRun, DryRunAnswer, HandleAction, PatternInput,
};
use super::permission_store::{self as pstore, AuditEntry, Interaction};
use super::permissions::{Decision, PermissionPattern};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/claude/interactions", get(list))
        .route("/api/claude/interactions/{id}", get(detail))
        .route("/api/claude/interactions/{id}/handle", post(handle))
        .route(
            "/api/claude/interactions/{id}/create-pattern",
            post(create_from),
        )
        .route("/api/claude/patterns", get(patterns).post(create_pattern))
        .route(
            "/api/claude/patterns/{id}",
            put(update_pattern).delete(delete_pattern),
        )
        .route("/api/claude/patterns/dry-run", post(dry_run))
        .route("/api/claude/audit", get(audit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

fn limit(l: Option<i64>) -> Result<i64, ApiError> {
    match l {
        None => Ok(100),
        Some(l) if (1..=1000).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::invalid("limit", "limit must be 1-1000")),
    }
}

async fn list(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Interaction>>, ApiError> {
    if let Some(st) = &q.status {
        if !["pending", "approved", "denied", "gone"].contains(&st.as_str()) {
            return Err(ApiError::invalid(
                "status",
                "status must be pending, approved, denied or gone",
            ));
        }
    }
    Ok(Json(
        pstore::interactions(&s.db, q.status.as_deref(), limit(q.limit)?).await?,
    ))
}

async fn get_interaction(s: &AgentsState, id: i64) -> Result<Interaction, ApiError> {
    pstore::interaction(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("interaction"))
}

async fn detail(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<Interaction>, ApiError> {
    get_interaction(&s, id).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandleRequest {
    action: HandleAction,
}

async fn handle(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(r): Json<HandleRequest>,
) -> Result<Json<Interaction>, ApiError> {
    Ok(Json(
        actions::handle(&s, id, r.action, &who.identity().username).await?,
    ))
}

async fn patterns(
    State(s): State<AgentsState>,
    _: Authed<Read>,
) -> Result<Json<Vec<PermissionPattern>>, ApiError> {
    Ok(Json(pstore::patterns(&s.db).await?))
}

async fn create_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(p): Json<PatternInput>,
) -> Result<(StatusCode, Json<PermissionPattern>), ApiError> {
    let f = actions::check_pattern(p)?;
    let p = pstore::insert_pattern(&s.db, &f, &who.identity().username, &s.clock.now_str()).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn update_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(p): Json<PatternInput>,
) -> Result<Json<PermissionPattern>, ApiError> {
    let f = actions::check_pattern(p)?;
    let actor = who.identity().actor();
    pstore::update_pattern(&s.db, &actor, id, &f, &s.clock.now_str())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("pattern"))
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Deleted {
    pub deleted: bool,
}

async fn delete_pattern(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> Result<Json<Deleted>, ApiError> {
    let actor = who.identity().actor();
    if !pstore::delete_pattern(&s.db, &actor, id, &s.clock.now_str()).await? {
        return Err(ApiError::not_found("pattern"));
    }
    Ok(Json(Deleted { deleted: true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFrom {
    decision: Option<Decision>,
    name: Option<String>,
    /// Default: exactly this interaction's command or path.
    subject_regex: Option<String>,
    /// Limit the pattern to this interaction's session.
    #[serde(default)]
    this_session_only: bool,
}

async fn create_from(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(r): Json<CreateFrom>,
) -> Result<(StatusCode, Json<PermissionPattern>), ApiError> {
    let i = get_interaction(&s, id).await?;
    let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
    let input = PatternInput {
        name: r.name.unwrap_or_else(|| {
            format!(
                "from interaction {id}: {} {}",
                i.tool,
                subject.chars().take(60).collect::<String>()
            )
        }),
        tool_regex: regex::escape(&i.tool),
        subject_regex: r.subject_regex.unwrap_or_else(|| actions::exact(&subject)),
        session_scope: r.this_session_only.then(|| i.session.clone()),
        role_scope: None,
        decision: r.decision.unwrap_or(Decision::Approve),
        enabled: Some(true),
        override_guard: false,
    };
    let f = actions::check_pattern(input)?;
    let p = pstore::insert_pattern(&s.db, &f, &who.identity().username, &s.clock.now_str()).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn dry_run(
    State(s): State<AgentsState>,
    _: Authed<Write>,
    Json(r): Json<DryRun>,
) -> Result<Json<DryRunAnswer>, ApiError> {
    Ok(Json(actions::dry_run(&s, r).await?))
}

async fn audit(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(pstore::audit_log(&s.db, limit(q.limit)?).await?))
}
