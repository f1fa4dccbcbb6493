//! SQL for the task queue, attempts, workers and project commands. Nothing else touches these
//! tables.
//!
//! The lease protocol lives in the `WHERE` clauses: [`claim_next`] is one `UPDATE ... WHERE id =
//! (SELECT ... LIMIT 1) AND status = 'pending' RETURNING`, so two claimers can never both win a
//! task; every later write by a worker ([`complete_leased`], [`take_lease`], [`extend_lease`])
//! matches on `status = 'running' AND lease_token = $token AND lease_expires_at >= $now`, so an
//! answer under an expired or replaced lease changes no row.

mod counts;
mod workers;
pub use counts::*;
pub use workers::*;

use super::*;
use sqlx::{Any, AnyConnection, Executor};

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    task_type: String,
    payload: String,
    priority: i64,
    status: String,
    max_retries: i64,
    attempts: i64,
    timeout_s: i64,
    run_after: String,
    tags: String,
    node: Option<String>,
    project_id: Option<i64>,
    worker_id: Option<i64>,
    lease_token: Option<String>,
    lease_expires_at: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    result: Option<String>,
    output: Option<String>,
    error: Option<String>,
    exit_code: Option<i64>,
    duration_ms: Option<i64>,
    created_by: String,
    created_at: String,
    updated_at: String,
}

impl TaskRow {
    fn into_task(self) -> (Task, Option<String>) {
        let task = Task {
            id: self.id,
            task_type: self.task_type,
            payload: serde_json::from_str(&self.payload).unwrap_or_default(),
            priority: self.priority,
            status: self.status.parse().unwrap_or(TaskStatus::Pending),
            max_retries: self.max_retries,
            attempts: self.attempts,
            timeout_s: self.timeout_s,
            run_after: self.run_after,
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            node: self.node,
            project_id: self.project_id,
            worker_id: self.worker_id,
            lease_expires_at: self.lease_expires_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            result: self.result.and_then(|r| serde_json::from_str(&r).ok()),
            output: self.output,
            error: self.error,
            exit_code: self.exit_code,
            duration_ms: self.duration_ms,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            waiting_reason: None,
        };
        (task, self.lease_token)
    }
}

const TASK_COLS: &str = "id, task_type, payload, priority, status, max_retries, attempts, timeout_s, \
     run_after, tags, node, project_id, worker_id, lease_token, lease_expires_at, started_at, \
     finished_at, result, output, error, exit_code, duration_ms, created_by, created_at, updated_at";

/// Inserts a validated task (and its tag rows) as pending.
pub async fn insert_task(
    conn: &mut AnyConnection,
    t: &NewTask,
    created_by: &str,
    now: &str,
) -> Result<Task, sqlx::Error> {
    let tags = t.tags.clone().unwrap_or_default();
    let payload = t.payload.clone().unwrap_or_else(|| serde_json::json!({}));
    let row: TaskRow = sqlx::query_as(&format!(
        "INSERT INTO task_queue (task_type, payload, priority, status, max_retries, attempts, timeout_s,
             run_after, tags, node, project_id, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', $4, 0, $5, $6, $7, $8, $9, $10, $11, $11)
         RETURNING {TASK_COLS}"
    ))
    .bind(&t.task_type)
    .bind(payload.to_string())
    .bind(t.priority.unwrap_or(0))
    .bind(t.max_retries.unwrap_or(DEFAULT_MAX_RETRIES))
    .bind(t.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S))
    .bind(t.run_after.as_deref().unwrap_or(now))
    .bind(json_list(&tags))
    .bind(t.node.as_deref())
    .bind(t.project_id)
    .bind(created_by)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    for tag in &tags {
        sqlx::query("INSERT INTO task_tags (task_id, tag) VALUES ($1, $2)")
            .bind(row.id)
            .bind(tag)
            .execute(&mut *conn)
            .await?;
    }
    Ok(row.into_task().0)
}

pub async fn get_task<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> =
        sqlx::query_as(&format!("SELECT {TASK_COLS} FROM task_queue WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.into_task().0))
}

/// The task, when `token` is its live lease at `now` (a worker's report about it may be
/// kept: `suites::actions::record_report`).
pub async fn leased_task<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
    token: &str,
    now: &str,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM task_queue
         WHERE id = $1 AND status = 'running' AND lease_token = $2 AND lease_expires_at >= $3"
    ))
    .bind(id)
    .bind(token)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| r.into_task().0))
}

/// Touches the row first so the transaction holds the write lock before it reads.
pub async fn lock_task(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query("UPDATE task_queue SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_task(conn, id).await
}

/// Newest first.
pub async fn list_tasks<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &TaskFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Task>, sqlx::Error> {
    let rows: Vec<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM task_queue
         WHERE ($1 IS NULL OR status = $1)
           AND ($2 IS NULL OR task_type = $2)
           AND ($3 IS NULL OR worker_id = $3)
           AND ($4 IS NULL OR priority = $4)
           AND ($5 IS NULL OR project_id = $5)
         ORDER BY id DESC LIMIT $6 OFFSET $7"
    ))
    .bind(f.status.map(TaskStatus::as_str))
    .bind(f.task_type.as_deref())
    .bind(f.worker_id)
    .bind(f.priority)
    .bind(f.project_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_task().0).collect())
}

/// Who may claim, and the lease they get.
pub struct ClaimSpec<'a> {
    pub worker_id: i64,
    pub node: &'a str,
    /// Empty: any type.
    pub types: &'a [String],
    /// The tags the worker offers; a task is claimable when it needs none outside these.
    pub tags: &'a [String],
    /// Random secret shared by the batch; each task's lease token is `<lease_token>-<id>`,
    /// so every task gets its own token and none can be guessed without the secret.
    pub lease_token: &'a str,
    pub lease_expires_at: &'a str,
    pub now: &'a str,
    /// How many tasks to lease at most (≥ 1).
    pub limit: i64,
}

/// Atomically leases up to `limit` of the highest-priority, oldest eligible pending tasks,
/// best first. One statement: the subquery picks, the outer `status = 'pending'` re-checks, so
/// a row cannot be handed out twice (SQLite runs writers one at a time; on PostgreSQL the
/// pick takes `FOR UPDATE SKIP LOCKED`, [`crate::db::Backend::claim`], so concurrent claimers
/// lease different rows instead of racing for the same ones).
///
/// The re-check is written `status || '' = 'pending'` on purpose: as a plain `status = ...`
/// SQLite's planner answers `id IN (...) AND status = 'pending'` by scanning every pending row
/// through the `(status, ...)` indexes instead of looking the few ids up by primary key, which
/// made each claim cost O(queue length).
pub async fn claim_next(
    conn: &mut AnyConnection,
    c: &ClaimSpec<'_>,
) -> Result<Vec<(Task, String)>, sqlx::Error> {
    let sql = claim_statement(
        crate::db::Backend::of_connection(conn),
        c.types.len(),
        c.tags.len(),
    );
    let mut q = sqlx::query_as::<_, TaskRow>(&sql)
        .bind(c.worker_id)
        .bind(c.lease_token)
        .bind(c.lease_expires_at)
        .bind(c.now)
        .bind(c.node)
        .bind(c.limit);
    for t in c.types.iter().chain(c.tags.iter()) {
        q = q.bind(t);
    }
    let rows = q.fetch_all(conn).await?;
    let mut claimed: Vec<(Task, String)> = rows
        .into_iter()
        .map(|r| {
            let (task, token) = r.into_task();
            (task, token.unwrap_or_default())
        })
        .collect();
    // RETURNING does not promise the subquery's order.
    claimed.sort_by(|a, b| (b.0.priority, a.0.id).cmp(&(a.0.priority, b.0.id)));
    Ok(claimed)
}

/// [`claim_next`]'s statement for `types` task types and `tags` offered tags: `$1` worker id,
/// `$2` lease token secret, `$3` lease expiry, `$4` now, `$5` node, `$6` how many, then one
/// placeholder per type, then one per tag. Public for the test that checks its PostgreSQL
/// plan (`claim_plan`).
pub fn claim_statement(backend: crate::db::Backend, types: usize, tags: usize) -> String {
    let types_sql = if types == 0 {
        "1 = 1".to_string()
    } else {
        format!("t.task_type IN ({})", crate::db::placeholders(7, types))
    };
    let tags_sql = if tags == 0 {
        "1 = 1".to_string()
    } else {
        format!(
            "tt.tag NOT IN ({})",
            crate::db::placeholders(7 + types, tags)
        )
    };
    let pick = format!(
        "SELECT t.id FROM task_queue t
             WHERE t.status = 'pending' AND t.run_after <= $4
               AND (t.node IS NULL OR t.node = $5)
               AND {types_sql}
               AND (t.tags = '[]' OR NOT EXISTS (
                   SELECT 1 FROM task_tags tt WHERE tt.task_id = t.id AND {tags_sql}))
             ORDER BY t.priority DESC, t.id LIMIT $6"
    );
    let (with, ids) = backend.claim(&pick, "t");
    format!(
        "{with}UPDATE task_queue SET status = 'running', worker_id = $1,
             lease_token = $2 || '-' || CAST(id AS TEXT),
             lease_expires_at = $3, attempts = attempts + 1, started_at = $4, finished_at = NULL,
             updated_at = $4
         WHERE id IN ({ids})
           AND status || '' = 'pending'
         RETURNING {TASK_COLS}"
    )
}

/// The earliest `run_after` of a pending task still in the future, so a long-poll can wake
/// when a delayed task (or a backoff) becomes due.
pub async fn next_due<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(run_after) FROM task_queue WHERE status = 'pending' AND run_after > $1",
    )
    .bind(now)
    .fetch_one(ex)
    .await
}

/// Whether some pending task is claimable now (by someone).
pub async fn any_due<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM task_queue WHERE status = 'pending' AND run_after <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(ex)
    .await?;
    Ok(n.is_some())
}

/// Moves the lease's expiry; `None` when the token is not the task's live lease.
pub async fn extend_lease(
    conn: &mut AnyConnection,
    id: i64,
    token: &str,
    expires_at: &str,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE task_queue SET lease_expires_at = $1, updated_at = $2
         WHERE id = $3 AND status = 'running' AND lease_token = $4 AND lease_expires_at >= $2
         RETURNING lease_expires_at",
    )
    .bind(expires_at)
    .bind(now)
    .bind(id)
    .bind(token)
    .fetch_optional(conn)
    .await
}

/// What a worker reports about an attempt.
#[derive(Debug, Clone, Default)]
pub struct Report<'a> {
    pub result: Option<&'a serde_json::Value>,
    pub output: Option<&'a str>,
    pub error: Option<&'a str>,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
}

/// The attempt whose lease was just taken back, for the history row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Taken {
    pub worker_id: Option<i64>,
    pub started_at: Option<String>,
    pub attempts: i64,
    pub max_retries: i64,
}

/// Marks a task completed if `token` is its live lease (false: it is not, nothing changed).
/// One statement: the hot path. Its `completed` attempt row is written by the
/// `task_completed_attempt` trigger (migration 0010) within this statement, so callers do not
/// call [`insert_attempt`] for it.
pub async fn complete_leased(
    conn: &mut AnyConnection,
    id: i64,
    token: &str,
    r: &Report<'_>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE task_queue SET status = 'completed', lease_token = NULL, lease_expires_at = NULL,
             finished_at = $1, updated_at = $1, result = $2, output = $3, error = NULL,
             exit_code = $4, duration_ms = $5
         WHERE id = $6 AND status = 'running' AND lease_token = $7 AND lease_expires_at >= $1",
    )
    .bind(now)
    .bind(r.result.map(|v| v.to_string()))
    .bind(r.output)
    .bind(r.exit_code)
    .bind(r.duration_ms)
    .bind(id)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes a live lease (`token` given) or an expired one (`token` None: the reaper), so the
/// caller can decide where the task goes next. `None` when there is no such lease.
pub async fn take_lease(
    conn: &mut AnyConnection,
    id: i64,
    token: Option<&str>,
    now: &str,
) -> Result<Option<Taken>, sqlx::Error> {
    let sql = if token.is_some() {
        "UPDATE task_queue SET lease_token = NULL, lease_expires_at = NULL, updated_at = $1
         WHERE id = $2 AND status = 'running' AND lease_token = $3 AND lease_expires_at >= $1
         RETURNING worker_id, started_at, attempts, max_retries"
    } else {
        "UPDATE task_queue SET lease_token = NULL, lease_expires_at = NULL, updated_at = $1
         WHERE id = $2 AND status = 'running' AND lease_expires_at < $1
         RETURNING worker_id, started_at, attempts, max_retries"
    };
    let mut q = sqlx::query_as(sql).bind(now).bind(id);
    if let Some(t) = token {
        q = q.bind(t);
    }
    q.fetch_optional(conn).await
}

/// Where a task goes after its lease was taken (or after a human action).
pub struct Move<'a> {
    pub status: TaskStatus,
    pub run_after: Option<&'a str>,
    pub finished_at: Option<&'a str>,
    pub report: Report<'a>,
    /// Reset the retry counter (a re-queue by hand starts a fresh round).
    pub reset_attempts: bool,
    /// Undo the attempt's count (a release at shutdown is not a try).
    pub uncount_attempt: bool,
}

pub async fn move_task(
    conn: &mut AnyConnection,
    id: i64,
    m: &Move<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE task_queue SET status = $1, run_after = COALESCE($2, run_after), finished_at = $3,
             lease_token = NULL, lease_expires_at = NULL, updated_at = $4,
             output = COALESCE($5, output), error = COALESCE($6, error),
             exit_code = COALESCE($7, exit_code), duration_ms = COALESCE($8, duration_ms),
             attempts = CASE WHEN $9 = 1 THEN 0 WHEN $10 = 1 AND attempts > 0 THEN attempts - 1
                 ELSE attempts END
         WHERE id = $11",
    )
    .bind(m.status.as_str())
    .bind(m.run_after)
    .bind(m.finished_at)
    .bind(now)
    .bind(m.report.output)
    .bind(m.report.error)
    .bind(m.report.exit_code)
    .bind(m.report.duration_ms)
    .bind(i64::from(m.reset_attempts))
    .bind(i64::from(m.uncount_attempt))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Clears what the last round left (result, error, output) when a task is re-queued by hand;
/// the attempts history keeps it.
pub async fn clear_outcome(conn: &mut AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE task_queue SET result = NULL, output = NULL, error = NULL, exit_code = NULL,
             duration_ms = NULL, finished_at = NULL WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Running tasks whose lease ran out.
pub async fn expired_leases<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    now: &str,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM task_queue WHERE status = 'running' AND lease_expires_at < $1
         ORDER BY lease_expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await
}

// ---- attempts ----

pub async fn insert_attempt(
    conn: &mut AnyConnection,
    task_id: i64,
    taken: &Taken,
    outcome: AttemptOutcome,
    r: &Report<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_attempts (task_id, worker_id, outcome, started_at, finished_at, error,
             output, exit_code, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(task_id)
    .bind(taken.worker_id)
    .bind(outcome.as_str())
    .bind(taken.started_at.as_deref().unwrap_or(now))
    .bind(now)
    .bind(r.error)
    .bind(r.output)
    .bind(r.exit_code)
    .bind(r.duration_ms)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    worker_id: Option<i64>,
    outcome: String,
    started_at: String,
    finished_at: String,
    error: Option<String>,
    output: Option<String>,
    exit_code: Option<i64>,
    duration_ms: Option<i64>,
}

/// Finished attempts, oldest first.
pub async fn attempts_of<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    task_id: i64,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "SELECT worker_id, outcome, started_at, finished_at, error, output, exit_code, duration_ms
         FROM task_attempts WHERE task_id = $1 ORDER BY id",
    )
    .bind(task_id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Attempt {
            worker_id: r.worker_id,
            outcome: r.outcome.parse().unwrap_or(AttemptOutcome::Failed),
            started_at: r.started_at,
            finished_at: Some(r.finished_at),
            error: r.error,
            output: r.output,
            exit_code: r.exit_code,
            duration_ms: r.duration_ms,
        })
        .collect())
}

/// The newest task of a project created by the autopilot as `created_by` (it names each of its
/// tasks uniquely, so a step retried after a restart finds the task it already made). Served by
/// the partial index `task_queue_autopilot_creator` (migration 0026), not a scan of the queue.
pub async fn by_creator<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
    created_by: &str,
) -> Result<Option<Task>, sqlx::Error> {
    let row: Option<TaskRow> = sqlx::query_as(&format!(
        "SELECT {TASK_COLS} FROM task_queue \
         WHERE created_by = $2 AND created_by LIKE 'autopilot (%' AND project_id = $1 \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(project_id)
    .bind(created_by)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| r.into_task().0))
}
