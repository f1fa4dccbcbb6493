//! JSON routes for planning: scans and items (`/api/planning/*`), proposed milestones and the
//! review queue (`/api/autopilot/milestones*`, `/api/autopilot/queue`) and task suggestions
//! (`/api/tasks/suggest*`). Reads take `Authed<Read>`; every change takes `Authed<Write>`
//! (confirming into a prompt or a task also passes that domain's own checks).

use super::suggest::{
    ConfirmRequest, Generated, NoteRequest, SuggestRequest, SuggestionStatusView,
};
use super::PlanResult as Result;
use super::*;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path, Query};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/planning/scan", post(scan))
        .route("/api/planning/status", get(status))
        .route("/api/planning/items", get(items))
        .route("/api/planning/scans/{id}", get(scan_detail))
        .route("/api/autopilot/milestones", get(milestones))
        .route("/api/autopilot/milestones/{id}", get(milestone))
        .route("/api/autopilot/milestones/{id}/approve", post(approve))
        .route("/api/autopilot/milestones/{id}/reject", post(reject))
        .route("/api/autopilot/queue", get(queue))
        .route("/api/tasks/suggest", get(suggestions).post(suggest))
        .route("/api/tasks/suggest/{id}/status", get(suggestion_status))
        .route("/api/tasks/suggest/{id}/confirm", post(confirm))
        .route("/api/tasks/suggest/{id}/skip", post(skip))
        .route("/api/tasks/suggest/{id}/complete", post(complete))
}

type ApiResult<T> = std::result::Result<Json<T>, ApiError>;

/// `POST /api/planning/scan`: a project by id or by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    pub project_id: Option<i64>,
    pub project: Option<String>,
}

/// The active project named `name` (case-insensitive).
pub async fn project_named(state: &AppState, name: &str) -> Result<crate::tracking::Project> {
    let found = crate::tracking::store::list_projects(
        &state.db,
        &crate::tracking::ProjectFilter {
            q: Some(name.to_string()),
            ..Default::default()
        },
        1000,
        0,
    )
    .await?;
    found
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            crate::validate::invalid("project", format!("no active project named '{name}'")).into()
        })
}

async fn scan(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(req): Json<ScanRequest>,
) -> ApiResult<actions::ScanReport> {
    let id = match (req.project_id, req.project.as_deref()) {
        (Some(id), None) => id,
        (None, Some(name)) => project_named(&s, name).await?.id,
        _ => {
            return Err(ApiError::invalid(
                "project_id",
                "give either project_id or project (a name)",
            ))
        }
    };
    Ok(Json(
        actions::scan_project(&s, &who.identity().actor(), id).await?,
    ))
}

/// One project's planning state, for `GET /api/planning/status` and `architect milestones
/// --status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProjectPlanning {
    pub project_id: i64,
    pub name: String,
    pub source_path: Option<String>,
    pub last_scan: Option<ScanRun>,
    pub pending_milestones: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanningStatus {
    /// Minutes between the milestone worker's scans inside serve (0: off).
    pub scan_every_minutes: u64,
    pub pending_milestones: i64,
    pub pending_suggestions: i64,
    pub projects: Vec<ProjectPlanning>,
}

async fn status(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<PlanningStatus> {
    let projects = crate::tracking::store::list_projects(
        &s.db,
        &crate::tracking::ProjectFilter {
            status: Some(crate::tracking::ProjectStatus::Active),
            ..Default::default()
        },
        10_000,
        0,
    )
    .await
    .map_err(PlanningError::from)?;
    let scans = store::latest_scans(&s.db, None)
        .await
        .map_err(PlanningError::from)?;
    let pending = store::list_plans(&s.db, &store::PlanFilter::default(), 10_000, 0)
        .await
        .map_err(PlanningError::from)?;
    let (pm, ps) = store::pending_counts(&s.db, None)
        .await
        .map_err(PlanningError::from)?;
    Ok(Json(PlanningStatus {
        scan_every_minutes: s.config.milestone_scan_minutes,
        pending_milestones: pm,
        pending_suggestions: ps,
        projects: projects
            .into_iter()
            .map(|p| ProjectPlanning {
                project_id: p.id,
                last_scan: scans.iter().find(|x| x.project_id == p.id).cloned(),
                pending_milestones: pending.iter().filter(|m| m.project_id == p.id).count(),
                name: p.name,
                source_path: p.source_path,
            })
            .collect(),
    }))
}

async fn items(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<store::ItemFilter>,
) -> ApiResult<Vec<PlanItem>> {
    Ok(Json(
        store::list_items(&s.db, &f, page.limit, page.offset)
            .await
            .map_err(PlanningError::from)?,
    ))
}

async fn scan_detail(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<ScanRun> {
    Ok(Json(
        store::get_scan(&s.db, id)
            .await
            .map_err(PlanningError::from)?
            .ok_or(PlanningError::NotFound("scan"))?,
    ))
}

async fn milestones(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<store::PlanFilter>,
) -> ApiResult<Vec<PlanMilestone>> {
    Ok(Json(
        store::list_plans(&s.db, &f, page.limit, page.offset)
            .await
            .map_err(PlanningError::from)?,
    ))
}

async fn milestone(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<PlanMilestoneDetail> {
    Ok(Json(actions::plan_detail(&s, id).await?))
}

#[derive(Debug, Serialize)]
pub struct Approved {
    #[serde(flatten)]
    pub plan: PlanMilestone,
    pub milestone: crate::tracking::Milestone,
}

async fn approve(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Approved> {
    let (plan, milestone) = actions::approve(&s, &who.identity().actor(), id).await?;
    Ok(Json(Approved { plan, milestone }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    pub reason: String,
}

async fn reject(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(req): Json<RejectRequest>,
) -> ApiResult<PlanMilestone> {
    Ok(Json(
        actions::reject(&s, &who.identity().actor(), id, &req.reason).await?,
    ))
}

async fn queue(
    State(s): State<AppState>,
    _: Authed<Read>,
) -> ApiResult<crate::overview::queue::ReviewQueue> {
    Ok(Json(
        crate::overview::queue::gather(&s)
            .await
            .map_err(PlanningError::from)?,
    ))
}

async fn suggest(
    State(s): State<AppState>,
    who: Authed<Write>,
    body: Option<Json<SuggestRequest>>,
) -> ApiResult<Generated> {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    Ok(Json(
        suggest::generate(&s, &who.identity().actor(), req).await?,
    ))
}

async fn suggestions(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<store::SuggestionFilter>,
) -> ApiResult<Vec<Suggestion>> {
    Ok(Json(
        store::list_suggestions(&s.db, &f, page.limit, page.offset)
            .await
            .map_err(PlanningError::from)?,
    ))
}

async fn suggestion_status(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<SuggestionStatusView> {
    Ok(Json(suggest::status(&s, id).await?))
}

async fn confirm(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<ConfirmRequest>>,
) -> ApiResult<SuggestionStatusView> {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    Ok(Json(suggest::confirm(&s, who.identity(), id, req).await?))
}

async fn skip(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<NoteRequest>>,
) -> ApiResult<SuggestionStatusView> {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    Ok(Json(
        suggest::skip(&s, &who.identity().actor(), id, req).await?,
    ))
}

async fn complete(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<NoteRequest>>,
) -> ApiResult<SuggestionStatusView> {
    let req = body.map(|Json(r)| r).unwrap_or_default();
    Ok(Json(
        suggest::complete(&s, &who.identity().actor(), id, req).await?,
    ))
}
