//! SQL for devops tasks. Nothing else touches these tables.

use crate::tracking::store::{parse_or, touch, Table};
use crate::tracking::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct DevopsRow {
    id: i64,
    project_id: Option<i64>,
    title: String,
    description: String,
    category: String,
    status: String,
    priority: i64,
    schedule: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<DevopsRow> for DevopsTask {
    fn from(r: DevopsRow) -> Self {
        DevopsTask {
            id: r.id,
            project_id: r.project_id,
            title: r.title,
            description: r.description,
            category: parse_or(&r.category, DevopsCategory::Other),
            status: parse_or(&r.status, DevopsStatus::Pending),
            priority: r.priority,
            schedule: r.schedule,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const DEVOPS_COLS: &str =
    "id, project_id, title, description, category, status, priority, schedule, created_at, updated_at";

pub async fn insert_devops_task(
    conn: &mut AnyConnection,
    t: &NewDevopsTask,
    now: &str,
) -> Result<DevopsTask, sqlx::Error> {
    let row: DevopsRow = sqlx::query_as(&format!(
        "INSERT INTO devops_tasks (project_id, title, description, category, status, priority, schedule, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7) RETURNING {DEVOPS_COLS}"
    ))
    .bind(t.project_id)
    .bind(&t.title)
    .bind(t.description.as_deref().unwrap_or(""))
    .bind(t.category.unwrap_or(DevopsCategory::Maintenance).as_str())
    .bind(t.priority.unwrap_or(0))
    .bind(t.schedule.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn get_devops_task<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<DevopsTask>, sqlx::Error> {
    let row: Option<DevopsRow> = sqlx::query_as(&format!(
        "SELECT {DEVOPS_COLS} FROM devops_tasks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_devops_task(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<DevopsTask>, sqlx::Error> {
    touch(&mut *conn, Table::DevopsTasks, id, now).await?;
    get_devops_task(conn, id).await
}

pub async fn list_devops_tasks<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &DevopsFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<DevopsTask>, sqlx::Error> {
    let rows: Vec<DevopsRow> = sqlx::query_as(&format!(
        "SELECT {DEVOPS_COLS} FROM devops_tasks
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR category = $3)
         ORDER BY priority DESC, id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(f.project_id)
    .bind(f.status.map(DevopsStatus::as_str))
    .bind(f.category.map(DevopsCategory::as_str))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn save_devops_task(
    conn: &mut AnyConnection,
    t: &DevopsTask,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE devops_tasks SET project_id = $1, title = $2, description = $3, category = $4, status = $5,
                priority = $6, schedule = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(t.project_id)
    .bind(&t.title)
    .bind(&t.description)
    .bind(t.category.as_str())
    .bind(t.status.as_str())
    .bind(t.priority)
    .bind(t.schedule.as_deref())
    .bind(now)
    .bind(t.id)
    .execute(conn)
    .await?;
    Ok(())
}
