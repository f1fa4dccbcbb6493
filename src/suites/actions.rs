//! Suite operations: each change in one transaction with its activity row. They take
//! [`SuitesState`]: the database and the clock, the files rules (a rescan reads the project's
//! folder) and the task queue (a run is queued as a task).

use super::store::{self, SuiteFields, SuiteRow};
use super::*;
use crate::activity;
use crate::auth::{Capability, Identity};
use serde_json::json;

/// What the suites domain's operations reach. Built from `AppState` by `FromRef` (app.rs);
/// callers outside a handler use `state.suites_state()`. Cheap to clone.
#[derive(Clone)]
pub struct SuitesState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    /// A rescan reads the project's `test_suites/` folder under the files rules.
    pub files: crate::files::FilesState,
    /// A run is queued as a `test_suite` task.
    pub tasks: crate::tasks::TaskState,
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Refused(String),
    /// The report's task lease is not live (late, or another worker's).
    #[error("{0}")]
    LeaseLost(String),
    /// Queueing the run's task failed (the queue's own error, answered as the queue does).
    #[error(transparent)]
    Queue(crate::tasks::actions::TaskError),
    /// A blocking read of the project's folder panicked.
    #[error("{0}")]
    Task(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for SuiteError {
    fn from(v: Invalid) -> Self {
        SuiteError::Invalid(v)
    }
}

pub type Result<T> = std::result::Result<T, SuiteError>;

async fn live_project(db: &crate::db::Db, id: i64) -> Result<()> {
    match crate::tracking::store::get_project(db, id).await? {
        Some(p) if !p.archived => Ok(()),
        Some(_) => Err(invalid("project_id", format!("project {id} is archived")).into()),
        None => Err(SuiteError::NotFound("project")),
    }
}

/// The project's suites (or every project's), each with its newest run.
pub async fn list(db: &crate::db::Db, project_id: Option<i64>) -> Result<Vec<TestSuite>> {
    let rows = store::list_suites(db, project_id).await?;
    let last_runs = store::last_runs(db, project_id).await?;
    let mut last: std::collections::HashMap<i64, TestRun> =
        super::history::settle_all(db, last_runs)
            .await?
            .into_iter()
            .map(|r| (r.suite_id, r))
            .collect();
    Ok(rows.iter().map(|r| r.view(last.remove(&r.id))).collect())
}

pub async fn get(db: &crate::db::Db, id: i64) -> Result<SuiteDetail> {
    let row = store::get_suite(db, id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    let last = store::runs_of(db, id, 1).await?.pop();
    Ok(SuiteDetail {
        suite: row.view(last),
        content: row.content,
    })
}

/// The project's suite named `name` (a `suite:NAME` test command).
pub async fn by_name(db: &crate::db::Db, project_id: i64, name: &str) -> Result<SuiteDetail> {
    let row = store::suite_by_name(db, project_id, name)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    get(db, row.id).await
}

/// Stores an uploaded suite (or replaces the project's suite of the same name). A suite with
/// `shell` or `tmux` steps needs `Exec` (see the module's rules).
pub async fn upload(
    st: &SuitesState,
    who: &Identity,
    project_id: i64,
    input: NewSuite,
) -> Result<TestSuite> {
    let suite = parse_content("upload", &input.content, input.format.as_deref())?;
    live_project(&st.db, project_id).await?;
    if suite.runs_code() && !who.can(Capability::Exec) {
        return Err(SuiteError::Refused(
            "this suite has shell or tmux steps, which run programs on the worker that runs it: storing it needs the exec capability (admins)".into(),
        ));
    }
    let f = SuiteFields {
        project_id,
        name: suite.name.trim(),
        source: SuiteSource::Upload,
        path: None,
        content: &input.content,
        cases: suite.cases.len() as i64,
        runs_code: suite.runs_code(),
    };
    let actor = who.actor();
    let now = st.clock.now_str();
    let mut tx = crate::db::begin_write(&st.db).await?;
    let (row, new) = store::upsert_suite(&mut tx, &f, &actor, &now).await?;
    log_suite(
        &mut tx,
        &actor,
        if new { "create" } else { "update" },
        &row,
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(row.view(None))
}

async fn log_suite(
    conn: &mut sqlx::AnyConnection,
    actor: &str,
    action: &str,
    row: &SuiteRow,
    now: &str,
) -> Result<()> {
    activity::store::record(
        conn,
        actor,
        action,
        "test_suite",
        Some(row.id),
        &json!({"project_id": row.project_id, "name": row.name, "source": row.source,
                "path": row.path, "cases": row.cases}),
        now,
    )
    .await?;
    Ok(())
}

/// A file of the project's folder that could not be stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FolderError {
    pub path: String,
    pub error: String,
}

/// `POST /api/projects/{id}/test-suites/rescan`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rescan {
    pub stored: Vec<TestSuite>,
    /// Folder suites whose file is gone, deleted with their history.
    pub removed: Vec<String>,
    pub errors: Vec<FolderError>,
}

/// Reads every `.yaml`/`.yml`/`.json` file of the project's `test_suites/` folder (under its
/// source_path, within the source roots: `files::actions::project_root`), stores the valid
/// ones as folder suites, reports the others with their line and field, and deletes folder
/// suites whose file is gone. One transaction, one activity row per change.
pub async fn rescan(state: &SuitesState, who: &Identity, project_id: i64) -> Result<Rescan> {
    live_project(&state.db, project_id).await?;
    let root = crate::files::actions::project_root(&state.files, project_id)
        .await
        .map_err(|e| match e {
            crate::files::FilesError::NotFound(w) => SuiteError::NotFound(w),
            crate::files::FilesError::Invalid(i) => SuiteError::Invalid(i),
            other => SuiteError::Invalid(invalid("project_id", other.to_string())),
        })?;
    let files = tokio::task::spawn_blocking(move || read_folder(&root))
        .await
        .map_err(|e| SuiteError::Task(e.to_string()))?;
    let mut errors = Vec::new();
    let mut good = Vec::new();
    for (path, text) in files {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                errors.push(FolderError { path, error: e });
                continue;
            }
        };
        let format = path.ends_with(".json").then_some("json");
        match parse_content(&path, &text, format) {
            Ok(s) => good.push((path, text, s)),
            Err(e) => errors.push(FolderError {
                path,
                error: e.message,
            }),
        }
    }
    let actor = who.actor();
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut stored = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (path, text, suite) in &good {
        let name = suite.name.trim();
        if !names.insert(name.to_string()) {
            errors.push(FolderError {
                path: path.clone(),
                error: format!("another file of the folder names its suite '{name}'"),
            });
            continue;
        }
        if let Some(existing) = store::suite_by_name(&mut *tx, project_id, name).await? {
            if existing.source == SuiteSource::Upload.as_str() {
                errors.push(FolderError {
                    path: path.clone(),
                    error: format!(
                        "an uploaded suite is named '{name}' already; delete it or rename one"
                    ),
                });
                continue;
            }
            if existing.content == *text && existing.path.as_deref() == Some(path.as_str()) {
                stored.push(existing.view(None));
                continue;
            }
        }
        let f = SuiteFields {
            project_id,
            name,
            source: SuiteSource::Folder,
            path: Some(path),
            content: text,
            cases: suite.cases.len() as i64,
            runs_code: suite.runs_code(),
        };
        let (row, new) = store::upsert_suite(&mut tx, &f, &actor, &now).await?;
        log_suite(
            &mut tx,
            &actor,
            if new { "create" } else { "update" },
            &row,
            &now,
        )
        .await?;
        stored.push(row.view(None));
    }
    let mut removed = Vec::new();
    for row in store::list_suites(&mut *tx, Some(project_id)).await? {
        if row.source == SuiteSource::Folder.as_str() && !names.contains(&row.name) {
            store::delete_suite(&mut tx, row.id).await?;
            log_suite(&mut tx, &actor, "delete", &row, &now).await?;
            removed.push(row.name);
        }
    }
    tx.commit().await?;
    Ok(Rescan {
        stored,
        removed,
        errors,
    })
}

/// The suite files directly under `<root>/test_suites/`, each confined to the root (a link
/// out of it is an error for that file), sorted by path.
fn read_folder(root: &std::path::Path) -> Vec<(String, std::result::Result<String, String>)> {
    let Ok(entries) = std::fs::read_dir(root.join(SUITES_FOLDER)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .take(200)
        .map(|n| {
            let rel = format!("{SUITES_FOLDER}/{n}");
            let text = crate::files::confine::existing(root, &rel)
                .map_err(|e| e.to_string())
                .and_then(|full| {
                    let meta = std::fs::metadata(&full).map_err(|e| e.to_string())?;
                    if meta.len() > MAX_SUITE_BYTES as u64 {
                        return Err(format!("a suite is at most {MAX_SUITE_BYTES} bytes"));
                    }
                    std::fs::read_to_string(&full).map_err(|e| e.to_string())
                });
            (rel, text)
        })
        .collect()
}

pub async fn delete(st: &SuitesState, who: &Identity, id: i64) -> Result<()> {
    let actor = who.actor();
    let now = st.clock.now_str();
    let mut tx = crate::db::begin_write(&st.db).await?;
    let row = store::get_suite(&mut *tx, id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    store::delete_suite(&mut tx, id).await?;
    log_suite(&mut tx, &actor, "delete", &row, &now).await?;
    tx.commit().await?;
    Ok(())
}

/// Queues the suite as a `test_suite` task, then writes its queued run with the activity row
/// (one transaction). Should that second write fail, the worker's report still writes the
/// run (`store::finish_run` inserts one for a task that has none).
pub async fn queue_run(
    state: &SuitesState,
    who: &Identity,
    id: i64,
    req: RunRequest,
) -> Result<QueuedRun> {
    req.validate()?;
    let suite = store::get_suite(&state.db, id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    // Variables reach the suite's shell and tmux steps: choosing them is choosing code.
    if suite.runs_code != 0 && !req.vars.is_empty() && !who.can(Capability::Exec) {
        return Err(SuiteError::Refused(
            "this suite has shell or tmux steps: running it with variables of your own changes what they run, which needs the exec capability (admins); run it without vars".into(),
        ));
    }
    let actor = who.actor();
    let payload = crate::tasks::payload::TestSuitePayload {
        suite_id: suite.id,
        vars: req.vars.clone(),
        tags: req.tags.clone(),
    };
    let task = crate::tasks::actions::create_task(
        &state.tasks,
        &actor,
        crate::tasks::NewTask {
            task_type: crate::tasks::payload::BuiltinType::TestSuite
                .as_str()
                .to_string(),
            payload: Some(serde_json::to_value(&payload).unwrap_or_default()),
            priority: None,
            max_retries: Some(0),
            timeout_s: None,
            run_after: None,
            tags: None,
            node: req.node.clone(),
            project_id: Some(suite.project_id),
        },
    )
    .await
    .map_err(SuiteError::Queue)?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let run = store::insert_queued_run(&mut tx, &suite, task.id, req.node.as_deref(), &actor, &now)
        .await?;
    activity::store::record(
        &mut tx,
        &actor,
        "run",
        "test_suite",
        Some(suite.id),
        &json!({"run_id": run.id, "task_id": task.id, "node": req.node, "tags": req.tags,
                "vars": req.vars.keys().collect::<Vec<_>>()}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(QueuedRun {
        run,
        task_id: task.id,
    })
}

/// A worker's report: the run, its cases and the activity row in one transaction, only while
/// the reporting worker holds the task's live lease (so a late or stray report writes nothing).
pub async fn record_report(st: &SuitesState, who: &Identity, r: RunReport) -> Result<TestRun> {
    r.validate()?;
    let now = st.clock.now_str();
    let actor = who.actor();
    let mut tx = crate::db::begin_write(&st.db).await?;
    let suite = store::get_suite(&mut *tx, r.suite_id)
        .await?
        .ok_or(SuiteError::NotFound("test suite"))?;
    let task = crate::tasks::store::leased_task(&mut *tx, r.task_id, &r.lease_token, &now)
        .await?
        .ok_or_else(|| {
            SuiteError::LeaseLost(format!(
                "task {} is not running under this lease; the report was not kept",
                r.task_id
            ))
        })?;
    if task.project_id != Some(suite.project_id) {
        return Err(invalid("suite_id", "the suite is not of the task's project").into());
    }
    let run = store::finish_run(&mut tx, &suite, &r, &actor, &now)
        .await?
        .ok_or_else(|| {
            SuiteError::LeaseLost(format!("task {}'s run is recorded already", r.task_id))
        })?;
    for c in &r.cases {
        store::insert_case(&mut tx, run.id, suite.id, c).await?;
    }
    activity::store::record(
        &mut tx,
        &actor,
        "record",
        "test_run",
        Some(run.id),
        &json!({"suite_id": suite.id, "task_id": r.task_id, "status": run.status,
                "passed": r.passed, "failed": r.failed, "flaky": r.flaky}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(run)
}
