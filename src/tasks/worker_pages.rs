//! The Workers page: every registered worker with its state, current tasks, heartbeat age and
//! counts, plus the local worker processes `serve` supervises, with start / stop buttons.

use super::actions;
use super::payload::BuiltinType;
use super::supervisor::{self, SupervisedStatus, SupervisorState};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, PageAuthed, PageForm, Read};
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workers", get(workers_page))
        .route("/workers/start/{type}", post(start))
        .route("/workers/stop/{type}", post(stop))
}

/// One built-in type's row in the "local workers" table.
struct LocalRow {
    task_type: &'static str,
    running: Option<SupervisedStatus>,
    needs_shell: bool,
}

#[derive(Template)]
#[template(path = "tasks/workers.html")]
struct WorkersPage {
    layout: Layout,
    overview: WorkersOverview,
    local: Vec<LocalRow>,
    allow_shell: bool,
}

async fn workers_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let overview = actions::workers_overview(&s.task_state())
        .await
        .map_err(ApiError::from)?;
    let local = BuiltinType::ALL
        .iter()
        .map(|t| LocalRow {
            task_type: t.as_str(),
            running: overview
                .supervised
                .iter()
                .find(|p| p.task_type == t.as_str())
                .cloned(),
            needs_shell: t.needs_exec(),
        })
        .collect();
    Ok(render(&WorkersPage {
        layout: Layout::new(&s, &who, "workers", "Workers").with_flash(&flash),
        overview,
        local,
        allow_shell: s.config.worker_allow_shell,
    }))
}

#[derive(Deserialize)]
struct Empty {}

async fn start(
    State(s): State<SupervisorState>,
    Path(task_type): Path<String>,
    PageForm(who, Empty {}, ..): PageForm<Admin, Empty>,
) -> Response {
    match supervisor::start_local(&s, &who, &task_type).await {
        Ok(p) => see_other(
            "/workers",
            &format!(
                "Started a local {task_type} worker (pid {}).",
                p.pid.map(|p| p.to_string()).unwrap_or_default()
            ),
        ),
        Err(e) => back_with_error("/workers", &ApiError::from(e)),
    }
}

/// The Stop button; `forget` (any value) is the Forget button of a type another replica keeps.
#[derive(Deserialize)]
struct StopForm {
    #[serde(default)]
    forget: Option<String>,
}

async fn stop(
    State(s): State<SupervisorState>,
    Path(task_type): Path<String>,
    PageForm(who, f, ..): PageForm<Admin, StopForm>,
) -> Response {
    let forget = f.forget.is_some();
    match supervisor::stop_local(&s, &who, &task_type, forget).await {
        Ok(st) if forget && st.replica != s.tasks.tasks.supervisor().replica() => see_other(
            "/workers",
            &format!(
                "Forgot replica {}'s claim on the local {task_type} worker.",
                st.replica
            ),
        ),
        Ok(_) => see_other(
            "/workers",
            &format!("Stopped the local {task_type} worker."),
        ),
        Err(e) => back_with_error("/workers", &ApiError::from(e)),
    }
}
