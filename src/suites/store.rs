//! SQL for stored suites, their runs and per-case results (migration 0027).

use super::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SuiteRow {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub source: String,
    pub path: Option<String>,
    pub content: String,
    pub cases: i64,
    pub runs_code: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl SuiteRow {
    pub fn view(&self, last_run: Option<TestRun>) -> TestSuite {
        TestSuite {
            id: self.id,
            project_id: self.project_id,
            name: self.name.clone(),
            source: self.source.parse().unwrap_or(SuiteSource::Upload),
            path: self.path.clone(),
            cases: self.cases,
            runs_code: self.runs_code != 0,
            created_by: self.created_by.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            last_run,
        }
    }
}

const SUITE_COLS: &str = "id, project_id, name, source, path, content, cases, runs_code, \
                          created_by, created_at, updated_at";

/// What a suite row holds besides its ids and times.
pub struct SuiteFields<'a> {
    pub project_id: i64,
    pub name: &'a str,
    pub source: SuiteSource,
    pub path: Option<&'a str>,
    pub content: &'a str,
    pub cases: i64,
    pub runs_code: bool,
}

pub async fn list_suites<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: Option<i64>,
) -> Result<Vec<SuiteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUITE_COLS} FROM test_suites
         WHERE ($1 IS NULL OR project_id = $1) ORDER BY project_id, name LIMIT 1000"
    ))
    .bind(project_id)
    .fetch_all(ex)
    .await
}

pub async fn get_suite<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<SuiteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUITE_COLS} FROM test_suites WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

pub async fn suite_by_name<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
    name: &str,
) -> Result<Option<SuiteRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUITE_COLS} FROM test_suites WHERE project_id = $1 AND name = $2"
    ))
    .bind(project_id)
    .bind(name)
    .fetch_optional(ex)
    .await
}

/// Inserts the suite, or replaces the text of the project's suite of that name. The flag
/// says whether it was new.
pub async fn upsert_suite(
    conn: &mut AnyConnection,
    f: &SuiteFields<'_>,
    actor: &str,
    now: &str,
) -> Result<(SuiteRow, bool), sqlx::Error> {
    let updated: Option<SuiteRow> = sqlx::query_as(&format!(
        "UPDATE test_suites SET source = $1, path = $2, content = $3, cases = $4, runs_code = $5,
             updated_at = $6
         WHERE project_id = $7 AND name = $8 RETURNING {SUITE_COLS}"
    ))
    .bind(f.source.as_str())
    .bind(f.path)
    .bind(f.content)
    .bind(f.cases)
    .bind(i64::from(f.runs_code))
    .bind(now)
    .bind(f.project_id)
    .bind(f.name)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(r) = updated {
        return Ok((r, false));
    }
    let row = sqlx::query_as(&format!(
        "INSERT INTO test_suites (project_id, name, source, path, content, cases, runs_code,
             created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {SUITE_COLS}"
    ))
    .bind(f.project_id)
    .bind(f.name)
    .bind(f.source.as_str())
    .bind(f.path)
    .bind(f.content)
    .bind(f.cases)
    .bind(i64::from(f.runs_code))
    .bind(actor)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok((row, true))
}

/// Deletes the suite (its runs and cases go with it: ON DELETE CASCADE).
pub async fn delete_suite(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    // The case rows first: SQLite's cascade needs foreign keys on, PostgreSQL's is declared;
    // explicit deletes hold on both.
    sqlx::query("DELETE FROM test_case_results WHERE suite_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM test_runs WHERE suite_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM test_suites WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

const RUN_COLS: &str = "id, suite_id, project_id, task_id, status, passed, failed, flaky, \
                        duration_ms, error, node, created_by, created_at, finished_at";

pub async fn insert_queued_run(
    conn: &mut AnyConnection,
    suite: &SuiteRow,
    task_id: i64,
    node: Option<&str>,
    actor: &str,
    now: &str,
) -> Result<TestRun, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO test_runs (suite_id, project_id, task_id, status, node, created_by, created_at)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6) RETURNING {RUN_COLS}"
    ))
    .bind(suite.id)
    .bind(suite.project_id)
    .bind(task_id)
    .bind(node)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Writes the outcome into the task's queued run, or (a `suite:NAME` test task, or a run row
/// that was never written) a new finished run. `None` when the task's run is finished already.
pub async fn finish_run(
    conn: &mut AnyConnection,
    suite: &SuiteRow,
    r: &RunReport,
    actor: &str,
    now: &str,
) -> Result<Option<TestRun>, sqlx::Error> {
    let status = r.status();
    let updated: Option<TestRun> = sqlx::query_as(&format!(
        "UPDATE test_runs SET status = $1, passed = $2, failed = $3, flaky = $4,
             duration_ms = $5, error = $6, finished_at = $7
         WHERE task_id = $8 AND suite_id = $9 AND status = 'queued' RETURNING {RUN_COLS}"
    ))
    .bind(status.as_str())
    .bind(r.passed)
    .bind(r.failed)
    .bind(r.flaky)
    .bind(r.duration_ms)
    .bind(r.error.as_deref())
    .bind(now)
    .bind(r.task_id)
    .bind(suite.id)
    .fetch_optional(&mut *conn)
    .await?;
    if updated.is_some() {
        return Ok(updated);
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM test_runs WHERE task_id = $1")
        .bind(r.task_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let row = sqlx::query_as(&format!(
        "INSERT INTO test_runs (suite_id, project_id, task_id, status, passed, failed, flaky,
             duration_ms, error, created_by, created_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING {RUN_COLS}"
    ))
    .bind(suite.id)
    .bind(suite.project_id)
    .bind(r.task_id)
    .bind(status.as_str())
    .bind(r.passed)
    .bind(r.failed)
    .bind(r.flaky)
    .bind(r.duration_ms)
    .bind(r.error.as_deref())
    .bind(actor)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(row))
}

pub async fn insert_case(
    conn: &mut AnyConnection,
    run_id: i64,
    suite_id: i64,
    c: &CaseRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO test_case_results (run_id, suite_id, name, outcome, attempts, duration_ms,
             failure, excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(run_id)
    .bind(suite_id)
    .bind(&c.name)
    .bind(c.outcome.as_str())
    .bind(c.attempts)
    .bind(c.duration_ms)
    .bind(c.failure.as_deref())
    .bind(c.excerpt.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first.
pub async fn runs_of<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    suite_id: i64,
    limit: i64,
) -> Result<Vec<TestRun>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM test_runs WHERE suite_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(suite_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// The newest run of each suite of the project (or of all projects).
pub async fn last_runs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: Option<i64>,
) -> Result<Vec<TestRun>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLS} FROM test_runs WHERE id IN
             (SELECT MAX(id) FROM test_runs WHERE ($1 IS NULL OR project_id = $1) GROUP BY suite_id)"
    ))
    .bind(project_id)
    .fetch_all(ex)
    .await
}

pub async fn get_run<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<TestRun>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {RUN_COLS} FROM test_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct CaseResultRow {
    pub run_id: i64,
    pub name: String,
    pub outcome: String,
    pub attempts: i64,
    pub duration_ms: i64,
    pub failure: Option<String>,
    pub excerpt: Option<String>,
}

impl CaseResultRow {
    pub fn view(self) -> CaseRow {
        CaseRow {
            name: self.name,
            outcome: self.outcome.parse().unwrap_or(CaseOutcome::Failed),
            attempts: self.attempts,
            duration_ms: self.duration_ms,
            failure: self.failure,
            excerpt: self.excerpt,
        }
    }
}

const CASE_COLS: &str = "run_id, name, outcome, attempts, duration_ms, failure, excerpt";

pub async fn cases_of_run<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    run_id: i64,
) -> Result<Vec<CaseResultRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CASE_COLS} FROM test_case_results WHERE run_id = $1 ORDER BY id"
    ))
    .bind(run_id)
    .fetch_all(ex)
    .await
}

/// The case results of the suite's runs from `min_run_id` on, newest run first.
pub async fn recent_cases<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    suite_id: i64,
    min_run_id: i64,
) -> Result<Vec<CaseResultRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CASE_COLS} FROM test_case_results WHERE suite_id = $1 AND run_id >= $2
         ORDER BY run_id DESC, id LIMIT 100000"
    ))
    .bind(suite_id)
    .bind(min_run_id)
    .fetch_all(ex)
    .await
}
