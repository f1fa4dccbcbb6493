//! SQL for projects. Nothing else touches these tables.

use crate::db::search_pattern;
use crate::tracking::store::{parse_or, touch, Table};
use crate::tracking::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: i64,
    name: String,
    description: String,
    source_path: Option<String>,
    status: String,
    tags: String,
    archived_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<ProjectRow> for Project {
    fn from(r: ProjectRow) -> Self {
        Project {
            id: r.id,
            name: r.name,
            description: r.description,
            source_path: r.source_path,
            status: parse_or(&r.status, ProjectStatus::Active),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            archived: r.archived_at.is_some(),
            archived_at: r.archived_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const PROJECT_COLS: &str =
    "id, name, description, source_path, status, tags, archived_at, created_at, updated_at";

pub async fn insert_project(
    conn: &mut AnyConnection,
    p: &NewProject,
    now: &str,
) -> Result<Project, sqlx::Error> {
    let row: ProjectRow = sqlx::query_as(&format!(
        "INSERT INTO projects (name, name_key, description, source_path, status, tags, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {PROJECT_COLS}"
    ))
    .bind(&p.name)
    .bind(p.name.to_lowercase())
    .bind(p.description.as_deref().unwrap_or(""))
    .bind(p.source_path.as_deref())
    .bind(p.status.unwrap_or(ProjectStatus::Active).as_str())
    .bind(serde_json::to_string(&p.tags.clone().unwrap_or_default()).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn get_project<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Project>, sqlx::Error> {
    let row: Option<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_project(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Project>, sqlx::Error> {
    touch(&mut *conn, Table::Projects, id, now).await?;
    get_project(conn, id).await
}

pub async fn list_projects<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &ProjectFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Project>, sqlx::Error> {
    let q = search_pattern(f.q.as_deref());
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects
         WHERE ($1 = 1 OR archived_at IS NULL)
           AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR LOWER(name) LIKE $3 ESCAPE '\\' OR LOWER(description) LIKE $3 ESCAPE '\\')
         ORDER BY archived_at IS NOT NULL, name_key LIMIT $4 OFFSET $5"
    ))
    .bind(i64::from(f.include_archived.unwrap_or(false)))
    .bind(f.status.map(ProjectStatus::as_str))
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Writes every mutable column of `p`.
pub async fn save_project(
    conn: &mut AnyConnection,
    p: &Project,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projects SET name = $1, name_key = $2, description = $3, source_path = $4, status = $5,
                tags = $6, archived_at = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&p.name)
    .bind(p.name.to_lowercase())
    .bind(&p.description)
    .bind(p.source_path.as_deref())
    .bind(p.status.as_str())
    .bind(serde_json::to_string(&p.tags).unwrap_or_else(|_| "[]".into()))
    .bind(p.archived_at.as_deref())
    .bind(now)
    .bind(p.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Id and name of every active project, for pickers.
pub async fn project_names<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM projects WHERE archived_at IS NULL ORDER BY name_key")
        .fetch_all(ex)
        .await
}
