//! SQL for worker registrations and project commands.

use super::*;
use sqlx::{Any, AnyConnection, Executor};

// ---- workers ----

#[derive(sqlx::FromRow)]
pub struct WorkerRow {
    pub id: i64,
    pub name: String,
    pub node: String,
    pub types: String,
    pub tags: String,
    pub capabilities: String,
    pub concurrency: i64,
    pub pid: Option<i64>,
    pub version: Option<String>,
    pub registered_at: String,
    pub last_heartbeat_at: String,
    pub stopped_at: Option<String>,
}

impl WorkerRow {
    /// The API view; the state follows from heartbeats and `now`.
    pub fn view(self, now: time::OffsetDateTime) -> Worker {
        let age = crate::clock::parse(&self.last_heartbeat_at)
            .map(|t| now - t)
            .unwrap_or(time::Duration::ZERO);
        let state = if self.stopped_at.is_some() {
            WorkerState::Stopped
        } else if age > WORKER_OFFLINE_AFTER {
            WorkerState::Offline
        } else {
            WorkerState::Online
        };
        Worker {
            id: self.id,
            name: self.name,
            node: self.node,
            types: serde_json::from_str(&self.types).unwrap_or_default(),
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            // A name this build does not know is left out, never shown as a capability.
            capabilities: serde_json::from_str::<Vec<String>>(&self.capabilities)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            concurrency: self.concurrency,
            pid: self.pid,
            version: self.version,
            state,
            registered_at: self.registered_at,
            last_heartbeat_at: self.last_heartbeat_at,
            heartbeat_age_s: age.whole_seconds().max(0),
            stopped_at: self.stopped_at,
        }
    }
}

const WORKER_COLS: &str = "id, name, node, types, tags, capabilities, concurrency, pid, version, \
     registered_at, last_heartbeat_at, stopped_at";

pub async fn upsert_worker(
    conn: &mut AnyConnection,
    w: &RegisterWorker,
    actor: &str,
    now: &str,
) -> Result<WorkerRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO workers (name, node, types, tags, concurrency, pid, version, registered_by,
             registered_at, last_heartbeat_at, capabilities)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
         ON CONFLICT (name, node) DO UPDATE SET types = $3, tags = $4, concurrency = $5, pid = $6,
             version = $7, registered_by = $8, registered_at = $9, last_heartbeat_at = $9,
             stopped_at = NULL, capabilities = $10
         RETURNING {WORKER_COLS}"
    ))
    .bind(&w.name)
    .bind(&w.node)
    .bind(json_list(&w.types))
    .bind(json_list(&w.tags))
    .bind(w.concurrency)
    .bind(w.pid)
    .bind(w.version.as_deref())
    .bind(actor)
    .bind(now)
    .bind(json_list(
        &w.capabilities
            .iter()
            .map(|c| c.as_str().to_string())
            .collect::<Vec<_>>(),
    ))
    .fetch_one(conn)
    .await
}

pub async fn get_worker<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<WorkerRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {WORKER_COLS} FROM workers WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// Most recently heard-from first.
pub async fn list_workers<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    limit: i64,
    offset: i64,
) -> Result<Vec<WorkerRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {WORKER_COLS} FROM workers ORDER BY last_heartbeat_at DESC, id LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await
}

/// Every worker's id and name, for showing workers by name (a task names its worker by id).
pub async fn worker_names<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM workers ORDER BY id")
        .fetch_all(ex)
        .await
}

/// Records a sign of life (or a goodbye); false when no such worker.
pub async fn record_heartbeat<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
    stopping: bool,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE workers SET last_heartbeat_at = $1,
             stopped_at = CASE WHEN $2 = 1 THEN $1 ELSE NULL END
         WHERE id = $3",
    )
    .bind(now)
    .bind(i64::from(stopping))
    .bind(id)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Per worker: attempts completed, attempts failed (including expired), and completions since
/// `since`. Computed from the history on every read, never stored.
pub async fn worker_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    since: &str,
) -> Result<Vec<(i64, i64, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT worker_id,
                SUM(CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END),
                SUM(CASE WHEN outcome IN ('failed', 'expired') THEN 1 ELSE 0 END),
                SUM(CASE WHEN outcome = 'completed' AND finished_at >= $1 THEN 1 ELSE 0 END)
         FROM task_attempts WHERE worker_id IS NOT NULL GROUP BY worker_id",
    )
    .bind(since)
    .fetch_all(ex)
    .await
}

/// worker_id, id, type, started_at, lease_expires_at.
type RunningRow = (Option<i64>, i64, String, Option<String>, Option<String>);

/// Every running task with its worker.
pub async fn running_tasks<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(i64, CurrentTask)>, sqlx::Error> {
    let rows: Vec<RunningRow> = sqlx::query_as(
        "SELECT worker_id, id, task_type, started_at, lease_expires_at FROM task_queue
         WHERE status = 'running' ORDER BY id",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(w, id, t, s, l)| {
            (
                w.unwrap_or(0),
                CurrentTask {
                    id,
                    task_type: t,
                    started_at: s,
                    lease_expires_at: l,
                },
            )
        })
        .collect())
}

/// Running tasks per worker (worker id → count), for the waiting reason of pending tasks.
pub async fn running_per_worker<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT worker_id, COUNT(*) FROM task_queue
         WHERE status = 'running' AND worker_id IS NOT NULL GROUP BY worker_id",
    )
    .fetch_all(ex)
    .await
}

// ---- project commands ----

#[derive(sqlx::FromRow)]
struct CommandsRow {
    project_id: i64,
    test_command: Option<String>,
    build_command: Option<String>,
    deploy_command: Option<String>,
    rollback_command: Option<String>,
    updated_at: String,
}

impl From<CommandsRow> for ProjectCommands {
    fn from(r: CommandsRow) -> Self {
        ProjectCommands {
            project_id: r.project_id,
            test_command: r.test_command,
            build_command: r.build_command,
            deploy_command: r.deploy_command,
            rollback_command: r.rollback_command,
            source_path: None,
            updated_at: Some(r.updated_at),
        }
    }
}

pub async fn get_commands<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<ProjectCommands>, sqlx::Error> {
    let row: Option<CommandsRow> = sqlx::query_as(
        "SELECT project_id, test_command, build_command, deploy_command, rollback_command,
                updated_at
         FROM task_project_commands WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn list_commands<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<ProjectCommands>, sqlx::Error> {
    let rows: Vec<CommandsRow> = sqlx::query_as(
        "SELECT project_id, test_command, build_command, deploy_command, rollback_command,
                updated_at
         FROM task_project_commands ORDER BY project_id",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn set_commands(
    conn: &mut AnyConnection,
    project_id: i64,
    c: &SetProjectCommands,
    now: &str,
) -> Result<ProjectCommands, sqlx::Error> {
    let row: CommandsRow = sqlx::query_as(
        "INSERT INTO task_project_commands (project_id, test_command, build_command, deploy_command,
                                            rollback_command, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (project_id) DO UPDATE SET test_command = $2, build_command = $3,
             deploy_command = $4, rollback_command = $5, updated_at = $6
         RETURNING project_id, test_command, build_command, deploy_command, rollback_command,
                   updated_at",
    )
    .bind(project_id)
    .bind(c.test_command.as_deref())
    .bind(c.build_command.as_deref())
    .bind(c.deploy_command.as_deref())
    .bind(c.rollback_command.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

// ---- local workers kept running by serve ----

/// Who keeps a supervised worker after [`claim_supervised`].
#[derive(Debug, Clone, PartialEq)]
pub enum SupervisedClaim {
    /// No row: this replica's now.
    Inserted,
    /// A row that named no replica (from before migration 0029): this replica's now.
    Adopted,
    /// This replica's already (a restart restoring it, or a start after a failed one).
    Ours,
    /// Another replica's: it runs there, and only that replica may stop it.
    Theirs(String),
}

/// Records that replica `replica` keeps a local worker of `task_type` running (started by
/// `user_id`), unless another replica does. Run inside a write transaction: the caller writes
/// the activity row of an insert or adoption with it.
pub async fn claim_supervised(
    conn: &mut AnyConnection,
    task_type: &str,
    user_id: i64,
    replica: &str,
    now: &str,
) -> Result<SupervisedClaim, sqlx::Error> {
    loop {
        let inserted = sqlx::query(
            "INSERT INTO supervised_workers (task_type, started_by, started_at, replica)
             VALUES ($1, $2, $3, $4) ON CONFLICT (task_type) DO NOTHING",
        )
        .bind(task_type)
        .bind(user_id)
        .bind(now)
        .bind(replica)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(SupervisedClaim::Inserted);
        }
        // Conditional, so of two replicas adopting one old row only one does.
        let adopted = sqlx::query(
            "UPDATE supervised_workers SET replica = $2 WHERE task_type = $1 AND replica IS NULL",
        )
        .bind(task_type)
        .bind(replica)
        .execute(&mut *conn)
        .await?;
        if adopted.rows_affected() == 1 {
            return Ok(SupervisedClaim::Adopted);
        }
        match supervised_owner(&mut *conn, task_type).await? {
            Some(Some(owner)) if owner != replica => return Ok(SupervisedClaim::Theirs(owner)),
            Some(Some(_)) => return Ok(SupervisedClaim::Ours),
            // Forgotten by its owner between these statements (PostgreSQL): claim it again.
            _ => continue,
        }
    }
}

/// The replica keeping the worker of `task_type`: `None` without a row, `Some(None)` for a
/// row from before replicas were recorded.
pub async fn supervised_owner<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    task_type: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT replica FROM supervised_workers WHERE task_type = $1")
        .bind(task_type)
        .fetch_optional(ex)
        .await
}

/// Forgets the worker of `task_type` if replica `replica` keeps it (or no replica is recorded);
/// whether a row went. The caller writes the activity row in the same transaction.
pub async fn forget_supervised(
    conn: &mut AnyConnection,
    task_type: &str,
    replica: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM supervised_workers
         WHERE task_type = $1 AND (replica = $2 OR replica IS NULL)",
    )
    .bind(task_type)
    .bind(replica)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// (task type, id of the user who started it) of the workers replica `replica` should keep
/// running: its own and the ones no replica is recorded for, oldest first.
pub async fn list_supervised<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    replica: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT task_type, started_by FROM supervised_workers
         WHERE replica = $1 OR replica IS NULL ORDER BY started_at, task_type",
    )
    .bind(replica)
    .fetch_all(ex)
    .await
}

/// (task type, replica) of the workers other replicas keep, by type.
pub async fn supervised_elsewhere<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    replica: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT task_type, replica FROM supervised_workers
         WHERE replica IS NOT NULL AND replica <> $1 ORDER BY task_type",
    )
    .bind(replica)
    .fetch_all(ex)
    .await
}
