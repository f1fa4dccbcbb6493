//! The queue's operations. Each runs in one transaction under the write gate.
//!
//! People's actions (create, cancel, re-queue, register a worker, set project commands) also
//! write their activity_log row in that transaction. The machine-driven lease moves (claim,
//! heartbeat, complete, fail, release, expiry) are recorded in `task_attempts` instead: that
//! table is their audit trail, and one activity row per claim would drown the log (and halve
//! queue throughput).

mod lease;
mod workers;
pub use lease::*;
pub use workers::*;

use super::store::{self, Move, Report, Taken};
use super::*;
use crate::activity;
use crate::events::Topic;
use crate::tasks::TaskState;
use serde_json::json;
use sqlx::AnyConnection;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// The lease token is not (or no longer) the task's live lease: the answer is refused and
    /// nothing changed.
    #[error("{0}")]
    LeaseLost(String),
    #[error("cannot move task from '{from}' to '{to}'")]
    Transition {
        from: TaskStatus,
        to: TaskStatus,
        allowed: Vec<String>,
    },
    /// Not allowed by this server's configuration (e.g. shell workers without
    /// --worker-allow-shell).
    #[error("{0}")]
    Refused(String),
    /// A local resource failed (e.g. a worker process could not be started).
    #[error("{0}")]
    Unavailable(String),
    /// Held by someone else (a supervised worker another replica keeps).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for TaskError {
    fn from(v: Invalid) -> Self {
        TaskError::Invalid(v)
    }
}

pub type Result<T> = std::result::Result<T, TaskError>;

/// Where a reported task went: `pending` with a `run_after` means a retry is scheduled.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct TaskOutcome {
    pub id: i64,
    pub status: TaskStatus,
    pub run_after: Option<String>,
    /// Tasks leased by a completion's `next` claim (none when it asked for none or the queue
    /// had nothing for this worker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<ClaimedTask>,
}

async fn log(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    entity: &str,
    id: i64,
    details: serde_json::Value,
    now: &str,
) -> Result<()> {
    activity::store::record(conn, actor, action, entity, Some(id), &details, now).await?;
    Ok(())
}

/// Why a lease-guarded write matched no row: the task is gone (404) or the lease is not live.
async fn lease_lost(state: &TaskState, id: i64) -> TaskError {
    match store::get_task(&state.db, id).await {
        Ok(None) => TaskError::NotFound("task"),
        Ok(Some(t)) if t.status == TaskStatus::Running => TaskError::LeaseLost(format!(
            "task {id}: this lease expired or was replaced; the answer was refused and nothing changed"
        )),
        Ok(Some(t)) => TaskError::LeaseLost(format!(
            "task {id} is {}: this lease is no longer valid; the answer was refused and nothing changed",
            t.status
        )),
        Err(e) => e.into(),
    }
}

fn later(now: time::OffsetDateTime, d: std::time::Duration) -> String {
    crate::clock::format(now + d)
}

// ---- creating and reading ----

/// Refuses a task that would run code of `who`'s choosing on a worker unless `who` has `Exec`
/// ([`NewTask::runs_chosen_code`]). The task routes take `Write`; this is the one part of the
/// rule that depends on the body, so it is checked here, by every path that queues a task for
/// a person (the API, the Tasks form, a confirmed suggestion).
pub fn may_create(who: &crate::auth::Identity, input: &NewTask) -> Result<()> {
    match input.runs_chosen_code() {
        Some(why) if !who.can(crate::auth::Capability::Exec) => Err(TaskError::Refused(format!(
            "a '{}' task that {why} runs code of its creator's choosing on a worker: creating one needs the exec capability (admins)",
            input.task_type.trim()
        ))),
        _ => Ok(()),
    }
}

pub async fn create_task(state: &TaskState, actor: &str, mut input: NewTask) -> Result<Task> {
    input.validate()?;
    let now = state.clock.now_str();
    if let Some(pid) = input.project_id {
        match crate::tracking::store::get_project(&state.db, pid).await? {
            Some(p) if !p.archived => {}
            Some(_) => {
                return Err(invalid("project_id", format!("project {pid} is archived")).into())
            }
            None => {
                return Err(invalid("project_id", format!("project {pid} does not exist")).into())
            }
        }
    }
    // Group committed with the queue's other hot writes (see db::group_commit).
    let job = std::sync::Arc::new((input, actor.to_string(), now));
    let task = state
        .tasks
        .writer()
        .run(&state.db, move |conn| {
            let job = job.clone();
            Box::pin(async move {
                let (input, actor, now) = &*job;
                let task = store::insert_task(conn, input, actor, now).await?;
                activity::store::record(
                    conn,
                    actor,
                    "create",
                    "task",
                    Some(task.id),
                    &json!({"type": task.task_type, "priority": task.priority}),
                    now,
                )
                .await?;
                Ok(task)
            })
        })
        .await?;
    state.tasks.wake_claimers();
    state.events.emit(Topic::Tasks, "created", task.id);
    Ok(task)
}

/// The task with its attempts and, while it is pending, why nothing claims it.
pub async fn task_detail(state: &TaskState, id: i64) -> Result<TaskDetail> {
    let mut task = store::get_task(&state.db, id)
        .await?
        .ok_or(TaskError::NotFound("task"))?;
    super::waiting::annotate(state, std::slice::from_mut(&mut task)).await?;
    let mut attempts = store::attempts_of(&state.db, id).await?;
    if task.status == TaskStatus::Running {
        attempts.push(Attempt {
            worker_id: task.worker_id,
            outcome: AttemptOutcome::Running,
            started_at: task.started_at.clone().unwrap_or_default(),
            finished_at: None,
            error: None,
            output: None,
            exit_code: None,
            duration_ms: None,
        });
    }
    Ok(TaskDetail {
        task,
        attempts_history: attempts,
    })
}

// ---- people's actions ----

fn transition(from: TaskStatus, to: TaskStatus) -> Result<()> {
    if from.can_move_to(to) {
        Ok(())
    } else {
        Err(TaskError::Transition {
            from,
            to,
            allowed: from.next().iter().map(|s| s.to_string()).collect(),
        })
    }
}

/// Cancels a pending or running task. A running task's lease is revoked at once; its worker
/// learns on its next heartbeat (409) and kills the process tree.
pub async fn cancel(state: &TaskState, actor: &str, id: i64) -> Result<Task> {
    let now = state.clock.now_str();
    {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let task = store::lock_task(&mut tx, id, &now)
            .await?
            .ok_or(TaskError::NotFound("task"))?;
        transition(task.status, TaskStatus::Cancelled)?;
        if task.status == TaskStatus::Running {
            let taken = Taken {
                worker_id: task.worker_id,
                started_at: task.started_at.clone(),
                attempts: task.attempts,
                max_retries: task.max_retries,
            };
            let report = Report {
                error: Some("cancelled"),
                ..Report::default()
            };
            store::insert_attempt(
                &mut tx,
                id,
                &taken,
                AttemptOutcome::Cancelled,
                &report,
                &now,
            )
            .await?;
        }
        store::move_task(
            &mut tx,
            id,
            &Move {
                status: TaskStatus::Cancelled,
                run_after: None,
                finished_at: Some(&now),
                report: Report {
                    error: Some(&format!("cancelled by {actor}")),
                    ..Report::default()
                },
                reset_attempts: false,
                uncount_attempt: false,
            },
            &now,
        )
        .await?;
        log(
            &mut tx,
            actor,
            "cancel",
            "task",
            id,
            json!({"from": task.status}),
            &now,
        )
        .await?;
        tx.commit().await?;
        state.events.emit(Topic::Tasks, "cancelled", id);
    }
    store::get_task(&state.db, id)
        .await?
        .ok_or(TaskError::NotFound("task"))
}

/// Re-queues a failed, dead or cancelled task for a fresh round of `max_retries`.
pub async fn retry(state: &TaskState, actor: &str, id: i64) -> Result<Task> {
    let now = state.clock.now_str();
    {
        let _gate = state.tasks.write_gate().await;
        let mut tx = crate::db::begin_write(&state.db).await?;
        let task = store::lock_task(&mut tx, id, &now)
            .await?
            .ok_or(TaskError::NotFound("task"))?;
        transition(task.status, TaskStatus::Pending)?;
        store::clear_outcome(&mut tx, id).await?;
        store::move_task(
            &mut tx,
            id,
            &Move {
                status: TaskStatus::Pending,
                run_after: Some(&now),
                finished_at: None,
                report: Report::default(),
                reset_attempts: true,
                uncount_attempt: false,
            },
            &now,
        )
        .await?;
        log(
            &mut tx,
            actor,
            "retry",
            "task",
            id,
            json!({"from": task.status}),
            &now,
        )
        .await?;
        tx.commit().await?;
    }
    state.tasks.wake_claimers();
    state.events.emit(Topic::Tasks, "pending", id);
    store::get_task(&state.db, id)
        .await?
        .ok_or(TaskError::NotFound("task"))
}
