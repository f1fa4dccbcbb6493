//! The autopilot's JSON routes (SPEC "Autopilot"): configure a project, list and read runs,
//! start / resume / change the status of a run, the kill switch and the loop's health. Reads
//! take `Authed<Read>`; every change takes `Authed<Write>`.

use super::actions::{self, Configure, Configured, Health, Move};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path, Query};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/autopilot", post(configure))
        .route("/api/autopilot/runs", get(runs))
        .route("/api/autopilot/runs/{id}", get(run))
        .route("/api/autopilot/runs/{id}/start", post(start))
        .route("/api/autopilot/runs/{id}/resume", post(resume))
        .route("/api/autopilot/runs/{id}/status", post(status))
        .route("/api/autopilot/runs/{id}/cancel", post(cancel))
        .route("/api/autopilot/pause", post(pause))
        .route("/api/autopilot/health", get(health))
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn configure(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(req): Json<Configure>,
) -> ApiResult<Configured> {
    Ok(Json(actions::configure(&s, who.identity(), id, req).await?))
}

async fn runs(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<store::RunFilter>,
) -> ApiResult<Vec<Run>> {
    Ok(Json(
        store::list_runs(&s.db, &f, page.limit, page.offset)
            .await
            .map_err(AutopilotError::from)?,
    ))
}

async fn run(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<RunDetail> {
    Ok(Json(actions::detail(&s, id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

fn reason(body: &Option<Json<ReasonBody>>) -> Result<Option<String>, ApiError> {
    match body
        .as_ref()
        .and_then(|Json(b)| b.reason.as_deref())
        .map(str::trim)
    {
        Some(r) if r.chars().count() > 2000 => {
            Err(ApiError::invalid("reason", "at most 2000 characters"))
        }
        Some("") | None => Ok(None),
        Some(r) => Ok(Some(r.to_string())),
    }
}

async fn start(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<ReasonBody>>,
) -> ApiResult<Run> {
    let r = reason(&body)?;
    Ok(Json(
        actions::move_run(&s, &who.identity().actor(), id, Move::Start, r.as_deref()).await?,
    ))
}

async fn resume(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<ReasonBody>>,
) -> ApiResult<Run> {
    let r = reason(&body)?;
    Ok(Json(
        actions::move_run(&s, &who.identity().actor(), id, Move::Resume, r.as_deref()).await?,
    ))
}

async fn cancel(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<ReasonBody>>,
) -> ApiResult<Run> {
    let r = reason(&body)?;
    Ok(Json(
        actions::move_run(&s, &who.identity().actor(), id, Move::Cancel, r.as_deref()).await?,
    ))
}

/// `POST /api/autopilot/runs/{id}/status {status, reason?}`: what a person may set by hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    pub status: RunState,
    pub reason: Option<String>,
}

async fn status(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    Json(b): Json<StatusBody>,
) -> ApiResult<Run> {
    let how = match b.status {
        RunState::Paused => Move::Pause,
        RunState::Cancelled => Move::Cancel,
        RunState::Planning => Move::Resume,
        other => {
            return Err(ApiError::invalid(
                "status",
                format!("'{other}' is the runner's to set; a person may set paused, cancelled or planning (resume)"),
            ))
        }
    };
    let r = reason(&Some(Json(ReasonBody { reason: b.reason })))?;
    Ok(Json(
        actions::move_run(&s, &who.identity().actor(), id, how, r.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    pub paused: bool,
    /// Also cancel the runs' running test and deploy tasks (default: they finish).
    #[serde(default)]
    pub cancel_tasks: bool,
}

#[derive(Debug, Serialize)]
pub struct Paused {
    pub paused: bool,
    /// Runs paused or resumed by this call.
    pub runs: usize,
    /// Prompts no agent had been typed yet, cancelled (a resumed run types fresh ones), and
    /// tasks cancelled.
    #[serde(flatten)]
    pub held: super::hold::Held,
}

async fn pause(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(b): Json<PauseBody>,
) -> ApiResult<Paused> {
    let (runs, held) =
        actions::set_global_pause(&s, &who.identity().actor(), b.paused, b.cancel_tasks).await?;
    Ok(Json(Paused {
        paused: b.paused,
        runs,
        held,
    }))
}

async fn health(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<Health> {
    Ok(Json(actions::health(&s).await?))
}
