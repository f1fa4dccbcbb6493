//! SQL for bugs. Nothing else touches these tables.

use crate::db::search_pattern;
use crate::tracking::store::{parse_or, touch, Table};
use crate::tracking::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct BugRow {
    id: i64,
    project_id: i64,
    milestone_id: Option<i64>,
    title: String,
    description: String,
    severity: String,
    status: String,
    assignee: Option<String>,
    resolved_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<BugRow> for Bug {
    fn from(r: BugRow) -> Self {
        Bug {
            id: r.id,
            project_id: r.project_id,
            milestone_id: r.milestone_id,
            title: r.title,
            description: r.description,
            severity: parse_or(&r.severity, BugSeverity::Medium),
            status: parse_or(&r.status, BugStatus::Open),
            assignee: r.assignee,
            resolved_at: r.resolved_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const BUG_COLS: &str = "id, project_id, milestone_id, title, description, severity, status, assignee, resolved_at, created_at, updated_at";

pub async fn insert_bug(
    conn: &mut AnyConnection,
    b: &NewBug,
    now: &str,
) -> Result<Bug, sqlx::Error> {
    let row: BugRow = sqlx::query_as(&format!(
        "INSERT INTO bugs (project_id, milestone_id, title, description, severity, status, assignee, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $7) RETURNING {BUG_COLS}"
    ))
    .bind(b.project_id)
    .bind(b.milestone_id)
    .bind(&b.title)
    .bind(b.description.as_deref().unwrap_or(""))
    .bind(b.severity.unwrap_or(BugSeverity::Medium).as_str())
    .bind(b.assignee.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn get_bug<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Bug>, sqlx::Error> {
    let row: Option<BugRow> = sqlx::query_as(&format!("SELECT {BUG_COLS} FROM bugs WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_bug(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Bug>, sqlx::Error> {
    touch(&mut *conn, Table::Bugs, id, now).await?;
    get_bug(conn, id).await
}

pub async fn list_bugs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &BugFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Bug>, sqlx::Error> {
    let q = search_pattern(f.q.as_deref());
    let rows: Vec<BugRow> = sqlx::query_as(&format!(
        "SELECT {BUG_COLS} FROM bugs
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR milestone_id = $2)
           AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR severity = $4)
           AND ($5 IS NULL OR LOWER(title) LIKE $5 ESCAPE '\\' OR LOWER(description) LIKE $5 ESCAPE '\\')
         ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, id DESC
         LIMIT $6 OFFSET $7"
    ))
    .bind(f.project_id)
    .bind(f.milestone_id)
    .bind(f.status.map(BugStatus::as_str))
    .bind(f.severity.map(BugSeverity::as_str))
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn save_bug(conn: &mut AnyConnection, b: &Bug, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bugs SET milestone_id = $1, title = $2, description = $3, severity = $4, status = $5,
                assignee = $6, resolved_at = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(b.milestone_id)
    .bind(&b.title)
    .bind(&b.description)
    .bind(b.severity.as_str())
    .bind(b.status.as_str())
    .bind(b.assignee.as_deref())
    .bind(b.resolved_at.as_deref())
    .bind(now)
    .bind(b.id)
    .execute(conn)
    .await?;
    Ok(())
}
