//! SQL for `plan_scans`: one row per scan, one running per project.

use super::parse;
use crate::planning::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct ScanRow {
    id: i64,
    project_id: i64,
    status: String,
    started_by: String,
    started_at: String,
    finished_at: Option<String>,
    files: i64,
    files_read: i64,
    items: i64,
    added: i64,
    edited: i64,
    done: i64,
    skipped: String,
    skipped_count: i64,
    error: Option<String>,
    grouped_by: String,
    grouping_note: Option<String>,
}

impl From<ScanRow> for ScanRun {
    fn from(r: ScanRow) -> Self {
        ScanRun {
            id: r.id,
            project_id: r.project_id,
            status: parse(&r.status, ScanStatus::Failed),
            started_by: r.started_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
            files: r.files,
            files_read: r.files_read,
            items: r.items,
            added: r.added,
            edited: r.edited,
            done: r.done,
            skipped: serde_json::from_str(&r.skipped).unwrap_or_default(),
            skipped_count: r.skipped_count,
            error: r.error,
            grouping: parse(&r.grouped_by, Grouping::Deterministic),
            grouping_note: r.grouping_note,
        }
    }
}

const SCAN_COLS: &str = "id, project_id, status, started_by, started_at, finished_at, files, files_read, items, added, edited, done, skipped, skipped_count, error, grouped_by, grouping_note";

/// Starts a scan row (`running`). A second running scan of the project violates the unique
/// index `plan_scans_one_running` (the caller answers 409).
pub async fn insert_scan(
    conn: &mut AnyConnection,
    project_id: i64,
    actor: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_scans (project_id, status, started_by, started_at)
         VALUES ($1, 'running', $2, $3) RETURNING id",
    )
    .bind(project_id)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Scans still `running` that started before `before` died with their process: failed.
pub async fn fail_stale_scans(
    conn: &mut AnyConnection,
    project_id: i64,
    before: &str,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE plan_scans SET status = 'failed', finished_at = $1,
                error = 'interrupted (the server stopped during the scan)'
         WHERE project_id = $2 AND status = 'running' AND started_at < $3",
    )
    .bind(now)
    .bind(project_id)
    .bind(before)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

pub async fn running_scan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM plan_scans WHERE project_id = $1 AND status = 'running'")
        .bind(project_id)
        .fetch_optional(ex)
        .await
}

pub async fn finish_scan(conn: &mut AnyConnection, s: &ScanRun) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plan_scans SET status = $1, finished_at = $2, files = $3, files_read = $4,
                items = $5, added = $6, edited = $7, done = $8, skipped = $9, skipped_count = $10,
                error = $11, grouped_by = $12, grouping_note = $13
         WHERE id = $14",
    )
    .bind(s.status.as_str())
    .bind(s.finished_at.as_deref())
    .bind(s.files)
    .bind(s.files_read)
    .bind(s.items)
    .bind(s.added)
    .bind(s.edited)
    .bind(s.done)
    .bind(serde_json::to_string(&s.skipped).unwrap_or_else(|_| "[]".into()))
    .bind(s.skipped_count)
    .bind(s.error.as_deref())
    .bind(s.grouping.as_str())
    .bind(s.grouping_note.as_deref())
    .bind(s.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_scan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<ScanRun>, sqlx::Error> {
    let row: Option<ScanRow> =
        sqlx::query_as(&format!("SELECT {SCAN_COLS} FROM plan_scans WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(Into::into))
}

/// The latest scan of each project (or of one).
pub async fn latest_scans<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: Option<i64>,
) -> Result<Vec<ScanRun>, sqlx::Error> {
    let rows: Vec<ScanRow> = sqlx::query_as(&format!(
        "SELECT {SCAN_COLS} FROM plan_scans s
         WHERE id = (SELECT MAX(id) FROM plan_scans t WHERE t.project_id = s.project_id)
           AND ($1 IS NULL OR project_id = $1)
         ORDER BY project_id"
    ))
    .bind(project_id)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Records what the scan's LLM pass did (or why the deterministic plan was kept).
pub async fn set_scan_grouping(
    conn: &mut AnyConnection,
    id: i64,
    grouping: Grouping,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_scans SET grouped_by = $1, grouping_note = $2 WHERE id = $3")
        .bind(grouping.as_str())
        .bind(note)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
