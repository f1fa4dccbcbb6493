//! SQL for milestones. Nothing else touches these tables.

use crate::tracking::store::{parse_or, touch, Table};
use crate::tracking::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct MilestoneRow {
    id: i64,
    project_id: i64,
    name: String,
    description: String,
    target_date: Option<String>,
    status: String,
    created_at: String,
    updated_at: String,
    features_total: i64,
    features_completed: i64,
    bugs_total: i64,
    bugs_resolved: i64,
}

impl From<MilestoneRow> for Milestone {
    fn from(r: MilestoneRow) -> Self {
        let total = r.features_total + r.bugs_total;
        let done = r.features_completed + r.bugs_resolved;
        let progress = if total == 0 {
            0.0
        } else {
            (done as f64 * 1000.0 / total as f64).round() / 10.0
        };
        Milestone {
            id: r.id,
            project_id: r.project_id,
            name: r.name,
            description: r.description,
            target_date: r.target_date,
            status: parse_or(&r.status, MilestoneStatus::Planned),
            progress,
            features_total: r.features_total,
            features_completed: r.features_completed,
            bugs_total: r.bugs_total,
            bugs_resolved: r.bugs_resolved,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Milestone columns plus progress counts, computed from features and bugs on every read.
const MILESTONE_SELECT: &str = "SELECT m.id, m.project_id, m.name, m.description, m.target_date, m.status, m.created_at, m.updated_at,
    (SELECT COUNT(*) FROM features f WHERE f.milestone_id = m.id AND f.status <> 'cancelled') AS features_total,
    (SELECT COUNT(*) FROM features f WHERE f.milestone_id = m.id AND f.status = 'completed') AS features_completed,
    (SELECT COUNT(*) FROM bugs b WHERE b.milestone_id = m.id AND b.status <> 'wont_fix') AS bugs_total,
    (SELECT COUNT(*) FROM bugs b WHERE b.milestone_id = m.id AND b.status IN ('resolved', 'closed')) AS bugs_resolved
    FROM milestones m";

pub async fn insert_milestone(
    conn: &mut AnyConnection,
    m: &NewMilestone,
    now: &str,
) -> Result<Milestone, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO milestones (project_id, name, description, target_date, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(m.project_id)
    .bind(&m.name)
    .bind(m.description.as_deref().unwrap_or(""))
    .bind(m.target_date.as_deref())
    .bind(m.status.unwrap_or(MilestoneStatus::Planned).as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    get_milestone(conn, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn get_milestone<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Milestone>, sqlx::Error> {
    let row: Option<MilestoneRow> = sqlx::query_as(&format!("{MILESTONE_SELECT} WHERE m.id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_milestone(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Milestone>, sqlx::Error> {
    touch(&mut *conn, Table::Milestones, id, now).await?;
    get_milestone(conn, id).await
}

pub async fn list_milestones<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &MilestoneFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Milestone>, sqlx::Error> {
    let rows: Vec<MilestoneRow> = sqlx::query_as(&format!(
        "{MILESTONE_SELECT} WHERE ($1 IS NULL OR m.project_id = $1) AND ($2 IS NULL OR m.status = $2)
         ORDER BY m.target_date IS NULL, m.target_date, m.id LIMIT $3 OFFSET $4"
    ))
    .bind(f.project_id)
    .bind(f.status.map(MilestoneStatus::as_str))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn save_milestone(
    conn: &mut AnyConnection,
    m: &Milestone,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE milestones SET name = $1, description = $2, target_date = $3, status = $4, updated_at = $5 WHERE id = $6",
    )
    .bind(&m.name)
    .bind(&m.description)
    .bind(m.target_date.as_deref())
    .bind(m.status.as_str())
    .bind(now)
    .bind(m.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The project a milestone belongs to, for checking that linked items share it.
pub async fn milestone_project<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    milestone_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT project_id FROM milestones WHERE id = $1")
        .bind(milestone_id)
        .fetch_optional(ex)
        .await
}
