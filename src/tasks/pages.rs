//! The Tasks panel: counts by status, the queue with filters, a create form with fields per
//! type, a detail page with attempts and output, cancel and re-queue; and the project commands
//! that `test` / `build` / `deploy` tasks run. The Workers page is `worker_pages.rs`.

use super::actions::{self, TaskError};
use super::payload::{BuiltinType, GitOp};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Exec, PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::Pagination;
use crate::web::{back_with_error, render, see_other, Draft, Flash, ForPage, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(tasks_page).post(tasks_create))
        .route("/tasks/commands", get(commands_page))
        .route("/tasks/commands/{project_id}", post(commands_save))
        .route("/tasks/{id}", get(task_page))
        .route("/tasks/{id}/cancel", post(task_cancel))
        .route("/tasks/{id}/retry", post(task_retry))
        .merge(super::worker_pages::routes())
}

fn done<T>(r: Result<T, TaskError>, ok_to: &str, notice: &str, back: &str) -> Response {
    match r {
        Ok(_) => see_other(ok_to, notice),
        Err(e) => back_with_error(back, &ApiError::from(e)),
    }
}

/// Filters arrive as text (an empty select means "any") together with the flash message.
#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "type")]
    task_type: Option<String>,
    #[serde(default)]
    worker_id: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn num(field: &'static str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a number"))),
    }
}

#[derive(Template)]
#[template(path = "tasks/list.html")]
struct TasksPage {
    layout: Layout,
    tasks: Vec<Task>,
    counts: StatusCounts,
    statuses: &'static [TaskStatus],
    /// The built-in types this person may queue (without `Exec`, none that carries its
    /// program: the form would only answer 403).
    builtins: Vec<BuiltinType>,
    git_ops: &'static [GitOp],
    projects: Vec<(i64, String)>,
    status: String,
    task_type: String,
    worker_id: String,
    priority: String,
    project_id: Option<i64>,
    workers: WorkerNames,
    /// What was typed into the create form, shown again after an error.
    draft: Draft,
}

/// Workers by name: a task stores its worker's id.
struct WorkerNames(Vec<(i64, String)>);

impl WorkerNames {
    async fn load(s: &AppState) -> Result<WorkerNames, sqlx::Error> {
        Ok(WorkerNames(store::worker_names(&s.db).await?))
    }
    fn of(&self, id: &i64) -> String {
        self.0
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("worker {id}"))
    }
}

async fn tasks_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    tasks_view(&s, &who, page, q, Draft::default()).await
}

/// The Tasks panel; `draft` refills the create form after an error.
async fn tasks_view(
    s: &AppState,
    who: &crate::auth::Identity,
    page: Pagination,
    q: ListQuery,
    draft: Draft,
) -> Result<Response, PageError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<TaskStatus>)
        .transpose()
        .map_err(|m| ApiError::invalid("status", m))?;
    let filter = TaskFilter {
        status,
        task_type: q.task_type.clone(),
        worker_id: num("worker_id", &q.worker_id)?,
        priority: num("priority", &q.priority)?,
        project_id: num("project_id", &q.project_id)?,
    };
    let mut tasks = store::list_tasks(&s.db, &filter, page.limit, page.offset).await?;
    super::waiting::annotate(&s.task_state(), &mut tasks).await?;
    let flash = Flash {
        notice: q.notice.clone(),
        error: q.error.clone(),
    };
    Ok(render(&TasksPage {
        layout: Layout::new(s, who, "tasks", "Tasks").with_flash(&flash),
        tasks,
        counts: store::status_counts(&s.db).await?,
        statuses: TaskStatus::ALL,
        builtins: BuiltinType::ALL
            .iter()
            .copied()
            .filter(|b| who.can(crate::auth::Capability::Exec) || !b.carries_program())
            .collect(),
        git_ops: GitOp::ALL,
        projects: crate::tracking::store::project_names(&s.db).await?,
        status: q.status.unwrap_or_default(),
        task_type: q.task_type.unwrap_or_default(),
        worker_id: q.worker_id.unwrap_or_default(),
        priority: q.priority.unwrap_or_default(),
        project_id: filter.project_id,
        workers: WorkerNames::load(s).await?,
        draft,
    }))
}

/// The create form: every type's fields at once; only the chosen type's are used.
#[derive(Deserialize, Serialize, Default, Clone)]
struct CreateForm {
    #[serde(rename = "type")]
    task_type: String,
    #[serde(default)]
    custom_type: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    max_retries: String,
    #[serde(default)]
    timeout_s: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    node: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    cwd: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    script: String,
    #[serde(default)]
    git_op: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    dest: String,
    #[serde(default)]
    git_ref: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    payload: String,
}

fn put(m: &mut Map<String, Value>, k: &str, v: &str) {
    let v = v.trim();
    if !v.is_empty() {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
}

impl CreateForm {
    /// The API's input, built from the fields of the chosen type.
    fn into_new_task(self) -> Result<NewTask, ApiError> {
        let task_type = if self.task_type == "custom" {
            self.custom_type.trim().to_string()
        } else {
            self.task_type.clone()
        };
        let mut m = Map::new();
        match task_type.parse::<BuiltinType>() {
            Ok(BuiltinType::Shell) => {
                put(&mut m, "command", &self.command);
                put(&mut m, "cwd", &self.cwd);
            }
            Ok(BuiltinType::Python) => {
                put(&mut m, "code", &self.code);
                put(&mut m, "script", &self.script);
                put(&mut m, "cwd", &self.cwd);
            }
            Ok(BuiltinType::Git) => {
                put(&mut m, "op", &self.git_op);
                for (k, v) in [
                    ("repo", &self.repo),
                    ("url", &self.url),
                    ("dest", &self.dest),
                    ("ref", &self.git_ref),
                    ("message", &self.message),
                ] {
                    put(&mut m, k, v);
                }
            }
            Ok(BuiltinType::Test | BuiltinType::Build | BuiltinType::Deploy) => {}
            Ok(BuiltinType::Tmux | BuiltinType::TestSuite) | Err(_) => {
                let raw = self.payload.trim();
                if !raw.is_empty() {
                    match serde_json::from_str::<Value>(raw) {
                        Ok(Value::Object(o)) => m = o,
                        _ => {
                            return Err(ApiError::invalid(
                                "payload",
                                "payload must be a JSON object, e.g. {\"key\": \"value\"}",
                            ))
                        }
                    }
                }
            }
        }
        let tags: Vec<String> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        Ok(NewTask {
            task_type,
            payload: Some(Value::Object(m)),
            priority: num("priority", &Some(self.priority))?,
            max_retries: num("max_retries", &Some(self.max_retries))?,
            timeout_s: num("timeout_s", &Some(self.timeout_s))?,
            run_after: None,
            tags: (!tags.is_empty()).then_some(tags),
            node: Some(self.node.trim().to_string()).filter(|n| !n.is_empty()),
            project_id: num("project_id", &Some(self.project_id))?,
        })
    }
}

async fn tasks_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, CreateForm>,
) -> Response {
    let draft = Draft::of(&f);
    let e = match f.into_new_task() {
        Err(e) => e,
        Ok(input) => match async {
            actions::may_create(&who, &input)?;
            actions::create_task(&s.task_state(), &who.actor(), input).await
        }
        .await
        {
            Ok(t) => {
                return see_other(
                    &format!("/tasks/{}", t.id),
                    &format!("Task {} ({}) queued.", t.id, t.task_type),
                )
            }
            Err(e) => ApiError::from(e),
        },
    };
    // Show the form again with what was typed and the error, instead of a redirect that
    // would empty it.
    let q = ListQuery {
        error: Some(e.message.clone()),
        ..ListQuery::default()
    };
    crate::web::form_again(
        e.status,
        tasks_view(&s, &who, Pagination::default(), q, draft).await,
    )
}

#[derive(Template)]
#[template(path = "tasks/detail.html")]
struct TaskPage {
    layout: Layout,
    t: Task,
    attempts: Vec<Attempt>,
    payload: String,
    result: String,
    workers: WorkerNames,
}

async fn task_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let d = actions::task_detail(&s.task_state(), id)
        .await
        .map_err(ApiError::from)?;
    let title = format!("Task {}: {}", d.task.id, d.task.task_type);
    Ok(render(&TaskPage {
        layout: Layout::new(&s, &who, "tasks", &title).with_flash(&flash),
        payload: serde_json::to_string_pretty(&d.task.payload).unwrap_or_default(),
        result: d
            .task
            .result
            .as_ref()
            .and_then(|r| serde_json::to_string_pretty(r).ok())
            .unwrap_or_default(),
        t: d.task,
        attempts: d.attempts_history,
        workers: WorkerNames::load(&s).await?,
    }))
}

#[derive(Deserialize)]
struct Empty {}

async fn task_cancel(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    let back = format!("/tasks/{id}");
    let r = actions::cancel(&s.task_state(), &who.actor(), id).await;
    done(r, &back, "Task cancelled.", &back)
}

async fn task_retry(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    let back = format!("/tasks/{id}");
    let r = actions::retry(&s.task_state(), &who.actor(), id).await;
    done(r, &back, "Task re-queued.", &back)
}

// ---- project commands ----

struct CommandsRow {
    id: i64,
    name: String,
    c: ProjectCommands,
}

#[derive(Template)]
#[template(path = "tasks/commands.html")]
struct CommandsPage {
    layout: Layout,
    rows: Vec<CommandsRow>,
}

async fn commands_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let stored = store::list_commands(&s.db).await?;
    let rows = crate::tracking::store::project_names(&s.db)
        .await?
        .into_iter()
        .map(|(id, name)| CommandsRow {
            id,
            name,
            c: stored
                .iter()
                .find(|c| c.project_id == id)
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    Ok(render(&CommandsPage {
        layout: Layout::new(&s, &who, "tasks", "Project commands").with_flash(&flash),
        rows,
    }))
}

/// Admin only, as `PUT /api/projects/{id}/commands`: a project's command is code that every
/// worker with the exec capability runs for a `test`, `build` or `deploy` task.
async fn commands_save(
    State(s): State<AppState>,
    Path(project_id): Path<i64>,
    PageForm(who, f, ..): PageForm<Exec, SetProjectCommands>,
) -> Response {
    let r = actions::set_project_commands(&s.task_state(), &who.actor(), project_id, f).await;
    done(r, "/tasks/commands", "Commands saved.", "/tasks/commands")
}
