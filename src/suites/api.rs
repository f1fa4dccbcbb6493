//! JSON routes of stored test suites, their runs and case history (who may do what: the
//! module's rules in `suites/mod.rs`).

use super::actions::{self, Rescan, SuiteError, SuitesState};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, WorkerOps, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/test-suites", get(list))
        .route("/api/projects/{id}/test-suites", post(upload))
        .route("/api/projects/{id}/test-suites/rescan", post(rescan))
        .route("/api/test-suites/{id}", get(show).delete(remove))
        .route("/api/test-suites/{id}/run", post(run))
        .route("/api/test-suites/{id}/runs", get(runs))
        .route("/api/test-suites/{id}/cases", get(cases))
        .route("/api/test-runs/report", post(report))
        .route("/api/test-runs/{id}", get(run_detail))
}

impl From<SuiteError> for ApiError {
    fn from(e: SuiteError) -> Self {
        match e {
            SuiteError::NotFound(what) => ApiError::not_found(what),
            SuiteError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            SuiteError::Refused(m) => ApiError::forbidden(m),
            SuiteError::LeaseLost(m) => {
                ApiError::new(StatusCode::CONFLICT, "lease_lost", m).with_field("lease_token")
            }
            SuiteError::Queue(e) => ApiError::from(e),
            SuiteError::Task(m) => ApiError::internal(m),
            SuiteError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFilter {
    #[serde(default)]
    project_id: Option<i64>,
    /// Exactly this suite name (with project_id).
    #[serde(default)]
    name: Option<String>,
}

async fn list(
    State(s): State<SuitesState>,
    _: Authed<Read>,
    Query(f): Query<SuiteFilter>,
) -> ApiResult<Vec<TestSuite>> {
    let mut all = actions::list(&s.db, f.project_id).await?;
    if let Some(n) = &f.name {
        all.retain(|x| &x.name == n);
    }
    Ok(Json(all))
}

async fn upload(
    State(s): State<SuitesState>,
    who: Authed<Write>,
    Path(project_id): Path<i64>,
    Json(input): Json<NewSuite>,
) -> Result<(StatusCode, Json<TestSuite>), ApiError> {
    let t = actions::upload(&s, who.identity(), project_id, input).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn rescan(
    State(s): State<SuitesState>,
    who: Authed<Write>,
    Path(project_id): Path<i64>,
) -> ApiResult<Rescan> {
    Ok(Json(actions::rescan(&s, who.identity(), project_id).await?))
}

async fn show(
    State(s): State<SuitesState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<SuiteDetail> {
    Ok(Json(actions::get(&s.db, id).await?))
}

#[derive(serde::Serialize)]
struct Removed {
    id: i64,
    deleted: bool,
}

async fn remove(
    State(s): State<SuitesState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Removed> {
    actions::delete(&s, who.identity(), id).await?;
    Ok(Json(Removed { id, deleted: true }))
}

async fn run(
    State(s): State<SuitesState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(req): Json<RunRequest>,
) -> Result<(StatusCode, Json<QueuedRun>), ApiError> {
    let q = actions::queue_run(&s, who.identity(), id, req).await?;
    Ok((StatusCode::CREATED, Json(q)))
}

async fn runs(
    State(s): State<SuitesState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Vec<TestRun>> {
    Ok(Json(super::history::runs(&s.db, id, HISTORY_RUNS).await?))
}

async fn cases(
    State(s): State<SuitesState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Vec<CaseHistory>> {
    Ok(Json(super::history::case_history(&s.db, id).await?))
}

async fn run_detail(
    State(s): State<SuitesState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<RunDetail> {
    Ok(Json(super::history::run_detail(&s.db, id).await?))
}

async fn report(
    State(s): State<SuitesState>,
    who: Authed<WorkerOps>,
    Json(r): Json<RunReport>,
) -> Result<(StatusCode, Json<TestRun>), ApiError> {
    let run = actions::record_report(&s, who.identity(), r).await?;
    Ok((StatusCode::CREATED, Json(run)))
}
