//! SQL for autopilot settings, runs, their transitions and steps. Nothing else touches these
//! tables.

use super::*;
use sqlx::{Any, AnyConnection, Executor};

fn parse<T: std::str::FromStr>(s: &str, or: T) -> T {
    s.parse().unwrap_or(or)
}

#[derive(sqlx::FromRow)]
struct SettingRow {
    project_id: i64,
    mode: String,
    goal: String,
    constraints: String,
    agent: String,
    paused: i64,
    updated_by: String,
    updated_at: String,
}

impl From<SettingRow> for ProjectAutopilot {
    fn from(r: SettingRow) -> Self {
        ProjectAutopilot {
            project_id: r.project_id,
            mode: parse(&r.mode, Mode::Off),
            goal: r.goal,
            constraints: serde_json::from_str(&r.constraints).unwrap_or_default(),
            agent: serde_json::from_str(&r.agent).unwrap_or_default(),
            paused: r.paused != 0,
            updated_by: r.updated_by,
            updated_at: r.updated_at,
        }
    }
}

pub async fn setting<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<ProjectAutopilot>, sqlx::Error> {
    let row: Option<SettingRow> = sqlx::query_as(
        "SELECT project_id, mode, goal, constraints, agent, paused, updated_by, updated_at
         FROM autopilot_projects WHERE project_id = $1",
    )
    .bind(project_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn settings<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<ProjectAutopilot>, sqlx::Error> {
    let rows: Vec<SettingRow> = sqlx::query_as(
        "SELECT project_id, mode, goal, constraints, agent, paused, updated_by, updated_at
         FROM autopilot_projects ORDER BY project_id",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn save_setting(
    conn: &mut AnyConnection,
    s: &ProjectAutopilot,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO autopilot_projects (project_id, mode, goal, constraints, paused, updated_by, updated_at, agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id) DO UPDATE SET mode = excluded.mode, goal = excluded.goal,
             constraints = excluded.constraints, paused = excluded.paused, agent = excluded.agent,
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(s.project_id)
    .bind(s.mode.as_str())
    .bind(&s.goal)
    .bind(serde_json::to_string(&s.constraints).unwrap_or_else(|_| "{}".into()))
    .bind(i64::from(s.paused))
    .bind(&s.updated_by)
    .bind(&s.updated_at)
    .bind(serde_json::to_string(&s.agent).unwrap_or_else(|_| "{}".into()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The global kill switch.
pub async fn globally_paused<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<bool, sqlx::Error> {
    let v: Option<i64> = sqlx::query_scalar("SELECT paused FROM autopilot_switch WHERE id = 1")
        .fetch_optional(ex)
        .await?;
    Ok(v.unwrap_or(0) != 0)
}

pub async fn set_global_pause(
    conn: &mut AnyConnection,
    paused: bool,
    by: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE autopilot_switch SET paused = $1, updated_by = $2, updated_at = $3 WHERE id = 1",
    )
    .bind(i64::from(paused))
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    project_id: i64,
    mode: String,
    goal: String,
    constraints: String,
    agent: String,
    state: String,
    reason: String,
    resume_to: Option<String>,
    started_by: String,
    user_id: Option<i64>,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Run {
            id: r.id,
            project_id: r.project_id,
            mode: parse(&r.mode, Mode::Observe),
            goal: r.goal,
            constraints: serde_json::from_str(&r.constraints).unwrap_or_default(),
            agent: serde_json::from_str(&r.agent).unwrap_or_default(),
            state: parse(&r.state, RunState::Failed),
            reason: r.reason,
            resume_to: r.resume_to.and_then(|s| s.parse().ok()),
            started_by: r.started_by,
            user_id: r.user_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

const RUN_COLS: &str = "id, project_id, mode, goal, constraints, agent, state, reason, resume_to, started_by, user_id, created_at, updated_at, finished_at";

/// A new run in `planning`, with its first transition.
pub async fn insert_run(
    conn: &mut AnyConnection,
    s: &ProjectAutopilot,
    actor: &str,
    user_id: Option<i64>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    let reason = "started";
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO autopilot_runs (project_id, mode, goal, constraints, state, reason, started_by, created_at, updated_at, agent, user_id)
         VALUES ($1, $2, $3, $4, 'planning', $5, $6, $7, $7, $8, $9) RETURNING id",
    )
    .bind(s.project_id)
    .bind(s.mode.as_str())
    .bind(&s.goal)
    .bind(serde_json::to_string(&s.constraints).unwrap_or_else(|_| "{}".into()))
    .bind(reason)
    .bind(actor)
    .bind(now)
    .bind(serde_json::to_string(&s.agent).unwrap_or_else(|_| "{}".into()))
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    record_transition(conn, id, None, RunState::Planning, reason, actor, now).await?;
    Ok(id)
}

async fn record_transition(
    conn: &mut AnyConnection,
    run_id: i64,
    from: Option<RunState>,
    to: RunState,
    reason: &str,
    actor: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO autopilot_transitions (run_id, from_state, to_state, reason, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(run_id)
    .bind(from.map(RunState::as_str))
    .bind(to.as_str())
    .bind(reason)
    .bind(actor)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a run from `from` to `to` with its reason (and the state a paused or blocked run
/// resumes to). False when the run was no longer in `from` (someone else moved it first).
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    conn: &mut AnyConnection,
    run_id: i64,
    from: RunState,
    to: RunState,
    resume_to: Option<RunState>,
    reason: &str,
    actor: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE autopilot_runs SET state = $1, reason = $2, resume_to = $3, updated_at = $4,
                finished_at = CASE WHEN $5 = 1 THEN $4 ELSE NULL END
         WHERE id = $6 AND state = $7",
    )
    .bind(to.as_str())
    .bind(reason)
    .bind(resume_to.map(RunState::as_str))
    .bind(now)
    .bind(i64::from(to.is_final()))
    .bind(run_id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    record_transition(conn, run_id, Some(from), to, reason, actor, now).await?;
    Ok(true)
}

pub async fn get_run<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Run>, sqlx::Error> {
    let row: Option<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM autopilot_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// Takes the row lock first (the transaction's write lock before it reads).
pub async fn lock_run(conn: &mut AnyConnection, id: i64) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query("UPDATE autopilot_runs SET id = id WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_run(conn, id).await
}

/// The project's run that is not finished, if any.
pub async fn active_run<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<Run>, sqlx::Error> {
    let row: Option<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM autopilot_runs
         WHERE project_id = $1 AND state NOT IN ('done', 'failed', 'cancelled')
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(project_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    pub project_id: Option<i64>,
    pub state: Option<RunState>,
}

pub async fn list_runs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &RunFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Run>, sqlx::Error> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM autopilot_runs
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR state = $2)
         ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(f.project_id)
    .bind(f.state.map(RunState::as_str))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Runs the runner works on.
pub async fn working_runs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<Run>, sqlx::Error> {
    let rows: Vec<RunRow> = sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM autopilot_runs
         WHERE state IN ('planning', 'implementing', 'testing', 'deploying', 'monitoring', 'investigating')
         ORDER BY id"
    ))
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn transitions<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
) -> Result<Vec<Transition>, sqlx::Error> {
    let rows: Vec<(Option<String>, String, String, String, String)> = sqlx::query_as(
        "SELECT from_state, to_state, reason, actor, at FROM autopilot_transitions
         WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(from, to, reason, actor, at)| Transition {
            from: from.and_then(|f| f.parse().ok()),
            to: parse(&to, RunState::Failed),
            reason,
            actor,
            at,
        })
        .collect())
}

/// The result of a step already done, if it was.
pub async fn step_done<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
    key: &str,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let v: Option<String> = sqlx::query_scalar(
        "SELECT result FROM autopilot_steps WHERE run_id = $1 AND step_key = $2",
    )
    .bind(run_id)
    .bind(key)
    .fetch_optional(ex)
    .await?;
    Ok(v.map(|s| serde_json::from_str(&s).unwrap_or_default()))
}

/// When a step was done, if it was.
pub async fn step_at<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT done_at FROM autopilot_steps WHERE run_id = $1 AND step_key = $2")
        .bind(run_id)
        .bind(key)
        .fetch_optional(ex)
        .await
}

pub async fn record_step(
    conn: &mut AnyConnection,
    run_id: i64,
    key: &str,
    result: &serde_json::Value,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO autopilot_steps (run_id, step_key, result, done_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(run_id)
    .bind(key)
    .bind(result.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn steps<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
) -> Result<Vec<Step>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT step_key, result, done_at FROM autopilot_steps WHERE run_id = $1 ORDER BY done_at, step_key",
    )
    .bind(run_id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(key, result, done_at)| Step {
            key,
            result: serde_json::from_str(&result).unwrap_or_default(),
            done_at,
        })
        .collect())
}

/// Runs by state (for health).
pub async fn state_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, COUNT(*) FROM autopilot_runs GROUP BY state ORDER BY state")
        .fetch_all(ex)
        .await
}

/// Working runs not updated since `before` (stuck).
pub async fn stuck_runs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    before: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM autopilot_runs
         WHERE state IN ('planning', 'implementing', 'testing', 'deploying', 'monitoring', 'investigating')
           AND updated_at < $1 ORDER BY id",
    )
    .bind(before)
    .fetch_all(ex)
    .await
}
