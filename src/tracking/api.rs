//! JSON routes for projects, milestones, features, bugs, devops tasks and `/api/stats`.
//!
//! The five lists answer through the list cache (`http::cache`): every tracking change emits
//! on the `work` topic after it commits (`actions::Ctx::changed`; the errors domain's bug
//! from an error group emits there too), and the lists read nothing but tracking tables, so
//! the `work` topic's version is their source.

use super::actions::{self, Ctx, TrackingError};
use super::store;
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::auth::{Capability, Identity};
use crate::events::Topic;
use crate::http::cache::ListRequest;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects", get(list_projects).post(create_project))
        .route(
            "/api/projects/{id}",
            get(get_project).put(update_project).delete(archive_project),
        )
        .route(
            "/api/milestones",
            get(list_milestones).post(create_milestone),
        )
        .route(
            "/api/milestones/{id}",
            get(get_milestone).put(update_milestone),
        )
        .route("/api/features", get(list_features).post(create_feature))
        .route("/api/features/workflow", get(workflow))
        .route("/api/features/{id}", get(get_feature).put(update_feature))
        .route("/api/bugs", get(list_bugs).post(create_bug))
        .route("/api/bugs/{id}", get(get_bug).put(update_bug))
        .route("/api/devops-tasks", get(list_devops).post(create_devops))
        .route("/api/devops-tasks/{id}", get(get_devops).put(update_devops))
        .route("/api/stats", get(stats))
}

impl From<TrackingError> for ApiError {
    fn from(e: TrackingError) -> Self {
        match e {
            TrackingError::NotFound(what) => ApiError::not_found(what),
            TrackingError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            TrackingError::Conflict(msg) => ApiError::conflict(msg).with_field("name"),
            TrackingError::Transition { from, to, allowed } => ApiError::invalid_transition(
                format!(
                    "cannot move from '{from}' to '{to}'; allowed next: {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
                allowed,
            ),
            TrackingError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;
/// A list answered through the list cache (JSON, with an `ETag`).
type ListResult = Result<Response, ApiError>;

/// The caller's rights as the list cache keys them: the capabilities it holds. Every tracking
/// list shows the same rows to every reader today, so this only splits entries by kind of
/// principal; it is there so that a list which one day shows less to some principals cannot
/// hand one principal's answer to another.
fn rights(who: &Identity) -> u64 {
    use Capability::*;
    [
        Read, Write, Admin, AgentOps, WorkerOps, Ingest, PaneRead, Exec, Llm,
    ]
    .iter()
    .enumerate()
    .filter(|(_, c)| who.can(**c))
    .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// The version of what the tracking lists show (see the module's doc).
fn work_version(s: &AppState) -> impl Fn() -> u64 + '_ {
    || s.events.version(Topic::Work)
}
type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

fn ctx<'a>(s: &'a AppState, actor: &'a str, now: &'a str) -> Ctx<'a> {
    Ctx {
        actor,
        now,
        events: &s.events,
    }
}

// ---- projects ----

async fn list_projects(
    State(s): State<AppState>,
    who: Authed<Read>,
    list: ListRequest,
    page: Pagination,
    Query(f): Query<ProjectFilter>,
) -> ListResult {
    s.list_cache
        .answer(&list, rights(who.identity()), work_version(&s), || {
            store::list_projects(&s.db, &f, page.limit, page.offset)
        })
        .await
}

async fn create_project(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewProject>,
) -> Created<Project> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    let p = actions::create_project(&s.db, &ctx(&s, &actor, &now), input).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn get_project(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Project> {
    store::get_project(&s.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("project"))
}

async fn update_project(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(patch): Json<ProjectPatch>,
) -> ApiResult<Project> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::update_project(&s.db, &ctx(&s, &actor, &now), id, patch).await?,
    ))
}

async fn archive_project(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Project> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::archive_project(&s.db, &ctx(&s, &actor, &now), id).await?,
    ))
}

// ---- milestones ----

async fn list_milestones(
    State(s): State<AppState>,
    who: Authed<Read>,
    list: ListRequest,
    page: Pagination,
    Query(f): Query<MilestoneFilter>,
) -> ListResult {
    s.list_cache
        .answer(&list, rights(who.identity()), work_version(&s), || {
            store::list_milestones(&s.db, &f, page.limit, page.offset)
        })
        .await
}

async fn create_milestone(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewMilestone>,
) -> Created<Milestone> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    let m = actions::create_milestone(&s.db, &ctx(&s, &actor, &now), input).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

async fn get_milestone(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Milestone> {
    store::get_milestone(&s.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("milestone"))
}

async fn update_milestone(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(patch): Json<MilestonePatch>,
) -> ApiResult<Milestone> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::update_milestone(&s.db, &ctx(&s, &actor, &now), id, patch).await?,
    ))
}

// ---- features ----

async fn list_features(
    State(s): State<AppState>,
    who: Authed<Read>,
    list: ListRequest,
    page: Pagination,
    Query(f): Query<FeatureFilter>,
) -> ListResult {
    s.list_cache
        .answer(&list, rights(who.identity()), work_version(&s), || {
            store::list_features(&s.db, &f, page.limit, page.offset)
        })
        .await
}

async fn workflow(_: Authed<Read>) -> Json<Workflow> {
    Json(Workflow::describe())
}

async fn create_feature(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewFeature>,
) -> Created<Feature> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    let f = actions::create_feature(&s.db, &ctx(&s, &actor, &now), input).await?;
    Ok((StatusCode::CREATED, Json(f)))
}

async fn get_feature(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<FeatureDetail> {
    Ok(Json(actions::feature_detail(&s.db, id).await?))
}

async fn update_feature(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(patch): Json<FeaturePatch>,
) -> ApiResult<Feature> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::update_feature(&s.db, &ctx(&s, &actor, &now), id, patch).await?,
    ))
}

// ---- bugs ----

async fn list_bugs(
    State(s): State<AppState>,
    who: Authed<Read>,
    list: ListRequest,
    page: Pagination,
    Query(f): Query<BugFilter>,
) -> ListResult {
    s.list_cache
        .answer(&list, rights(who.identity()), work_version(&s), || {
            store::list_bugs(&s.db, &f, page.limit, page.offset)
        })
        .await
}

async fn create_bug(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewBug>,
) -> Created<Bug> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    let b = actions::create_bug(&s.db, &ctx(&s, &actor, &now), input).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

async fn get_bug(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Bug> {
    store::get_bug(&s.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("bug"))
}

async fn update_bug(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(patch): Json<BugPatch>,
) -> ApiResult<Bug> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::update_bug(&s.db, &ctx(&s, &actor, &now), id, patch).await?,
    ))
}

// ---- devops tasks ----

async fn list_devops(
    State(s): State<AppState>,
    who: Authed<Read>,
    list: ListRequest,
    page: Pagination,
    Query(f): Query<DevopsFilter>,
) -> ListResult {
    s.list_cache
        .answer(&list, rights(who.identity()), work_version(&s), || {
            store::list_devops_tasks(&s.db, &f, page.limit, page.offset)
        })
        .await
}

async fn create_devops(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewDevopsTask>,
) -> Created<DevopsTask> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    let t = actions::create_devops_task(&s.db, &ctx(&s, &actor, &now), input).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn get_devops(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<DevopsTask> {
    store::get_devops_task(&s.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("devops task"))
}

async fn update_devops(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(patch): Json<DevopsPatch>,
) -> ApiResult<DevopsTask> {
    let (actor, now) = (who.identity().actor(), s.clock.now_str());
    Ok(Json(
        actions::update_devops_task(&s.db, &ctx(&s, &actor, &now), id, patch).await?,
    ))
}

async fn stats(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<Stats> {
    Ok(Json(actions::stats(&s.db).await?))
}
