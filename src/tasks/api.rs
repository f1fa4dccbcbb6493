//! JSON routes of the task queue, the workers and project commands.
//!
//! Who may do what: reading needs `Read`; creating, cancelling and re-queueing tasks need
//! `Write`; claiming, heartbeats and reports need `WorkerOps` (a `worker`-scoped token has
//! exactly Read + WorkerOps); setting a project's test/build/deploy commands needs `Exec` (a
//! command is code that exec-capable workers run); starting and stopping local worker
//! processes on the server's host needs `Admin`.

use super::actions::{self, TaskError, TaskOutcome};
use super::supervisor::{self, SupervisedStatus, SupervisorState};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, Authed, Exec, Read, WorkerOps, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(list_tasks).post(create_task))
        .route("/api/tasks/counts", get(counts))
        .route("/api/tasks/claim", post(claim))
        .route("/api/tasks/{id}", get(get_task))
        .route("/api/tasks/{id}/heartbeat", post(heartbeat))
        .route("/api/tasks/{id}/complete", post(complete))
        .route("/api/tasks/complete", post(complete_batch))
        .route("/api/tasks/{id}/fail", post(fail))
        .route("/api/tasks/{id}/release", post(release))
        .route("/api/tasks/{id}/cancel", post(cancel))
        .route("/api/tasks/{id}/retry", post(retry))
        .route("/api/workers", get(list_workers))
        .route("/api/workers/register", post(register))
        .route("/api/workers/status", get(status))
        .route("/api/workers/{id}/heartbeat", post(worker_heartbeat))
        .route("/api/workers/start/{type}", post(start_local))
        .route("/api/workers/stop/{type}", post(stop_local))
        .route(
            "/api/projects/{id}/commands",
            get(get_commands).put(set_commands),
        )
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(what) => ApiError::not_found(what),
            TaskError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            TaskError::LeaseLost(msg) => {
                ApiError::new(StatusCode::CONFLICT, "lease_lost", msg).with_field("lease_token")
            }
            TaskError::Transition { from, to, allowed } => ApiError::invalid_transition(
                format!(
                    "cannot move task from '{from}' to '{to}'; allowed next: {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
                allowed,
            ),
            TaskError::Refused(msg) => ApiError::forbidden(msg),
            TaskError::Unavailable(msg) => ApiError::unavailable(msg),
            TaskError::Conflict(msg) => ApiError::conflict(msg),
            TaskError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

// ---- tasks ----

async fn list_tasks(
    State(s): State<TaskState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<TaskFilter>,
) -> ApiResult<Vec<Task>> {
    let mut tasks = store::list_tasks(&s.db, &f, page.limit, page.offset).await?;
    super::waiting::annotate(&s, &mut tasks).await?;
    Ok(Json(tasks))
}

async fn counts(State(s): State<TaskState>, _: Authed<Read>) -> ApiResult<StatusCounts> {
    Ok(Json(store::status_counts(&s.db).await?))
}

async fn create_task(
    State(s): State<TaskState>,
    who: Authed<Write>,
    Json(input): Json<NewTask>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    actions::may_create(who.identity(), &input)?;
    let t = actions::create_task(&s, &who.identity().actor(), input).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

async fn get_task(
    State(s): State<TaskState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<TaskDetail> {
    Ok(Json(actions::task_detail(&s, id).await?))
}

async fn claim(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Json(req): Json<ClaimRequest>,
) -> ApiResult<ClaimResponse> {
    Ok(Json(actions::claim(&s, req).await?))
}

async fn heartbeat(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Path(id): Path<i64>,
    Json(req): Json<LeaseRequest>,
) -> ApiResult<Lease> {
    Ok(Json(actions::heartbeat(&s, id, req).await?))
}

async fn complete(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Path(id): Path<i64>,
    Json(req): Json<CompleteRequest>,
) -> ApiResult<TaskOutcome> {
    Ok(Json(actions::complete(&s, id, req).await?))
}

async fn complete_batch(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Json(req): Json<CompleteBatch>,
) -> ApiResult<BatchOutcome> {
    Ok(Json(actions::complete_batch(&s, req).await?))
}

async fn fail(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Path(id): Path<i64>,
    Json(req): Json<FailRequest>,
) -> ApiResult<TaskOutcome> {
    Ok(Json(actions::fail(&s, id, req).await?))
}

async fn release(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Path(id): Path<i64>,
    Json(req): Json<LeaseRequest>,
) -> ApiResult<TaskOutcome> {
    Ok(Json(actions::release(&s, id, req).await?))
}

async fn cancel(
    State(s): State<TaskState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Task> {
    Ok(Json(
        actions::cancel(&s, &who.identity().actor(), id).await?,
    ))
}

async fn retry(
    State(s): State<TaskState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> ApiResult<Task> {
    Ok(Json(actions::retry(&s, &who.identity().actor(), id).await?))
}

// ---- workers ----

async fn list_workers(
    State(s): State<TaskState>,
    _: Authed<Read>,
    page: Pagination,
) -> ApiResult<Vec<Worker>> {
    let now = s.clock.now();
    let rows = store::list_workers(&s.db, page.limit, page.offset).await?;
    Ok(Json(rows.into_iter().map(|r| r.view(now)).collect()))
}

async fn register(
    State(s): State<TaskState>,
    who: Authed<WorkerOps>,
    Json(input): Json<RegisterWorker>,
) -> Result<(StatusCode, Json<Worker>), ApiError> {
    let w = actions::register_worker(&s, &who.identity().actor(), input).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

async fn worker_heartbeat(
    State(s): State<TaskState>,
    _: Authed<WorkerOps>,
    Path(id): Path<i64>,
    Json(hb): Json<WorkerHeartbeat>,
) -> ApiResult<Worker> {
    Ok(Json(actions::worker_heartbeat(&s, id, hb).await?))
}

async fn status(State(s): State<TaskState>, _: Authed<Read>) -> ApiResult<WorkersOverview> {
    Ok(Json(actions::workers_overview(&s).await?))
}

async fn start_local(
    State(s): State<SupervisorState>,
    who: Authed<Admin>,
    Path(task_type): Path<String>,
) -> ApiResult<SupervisedStatus> {
    Ok(Json(
        supervisor::start_local(&s, who.identity(), &task_type).await?,
    ))
}

/// `?forget=true`: on a type another replica keeps, forget that replica's claim (it is gone).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StopQuery {
    #[serde(default)]
    forget: bool,
}

async fn stop_local(
    State(s): State<SupervisorState>,
    who: Authed<Admin>,
    Path(task_type): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<SupervisedStatus> {
    Ok(Json(
        supervisor::stop_local(&s, who.identity(), &task_type, q.forget).await?,
    ))
}

// ---- project commands ----

async fn get_commands(
    State(s): State<TaskState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<ProjectCommands> {
    Ok(Json(actions::project_commands(&s, id).await?))
}

/// `Exec` (admins): the command is code every exec-capable worker runs for `test`, `build`
/// and `deploy` tasks of the project (a member may still enqueue those tasks).
async fn set_commands(
    State(s): State<TaskState>,
    who: Authed<Exec>,
    Path(id): Path<i64>,
    Json(input): Json<SetProjectCommands>,
) -> ApiResult<ProjectCommands> {
    Ok(Json(
        actions::set_project_commands(&s, &who.identity().actor(), id, input).await?,
    ))
}
