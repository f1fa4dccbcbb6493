//! SQL for `plan_milestones`: the proposed milestones and what became of them.

use super::parse;
use crate::planning::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: i64,
    project_id: i64,
    scan_id: Option<i64>,
    title: String,
    description: String,
    priority: i64,
    phases: String,
    items_key: String,
    grouped_by: String,
    status: String,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    milestone_id: Option<i64>,
    created_at: String,
    updated_at: String,
}

impl From<PlanRow> for PlanMilestone {
    fn from(r: PlanRow) -> Self {
        PlanMilestone {
            id: r.id,
            project_id: r.project_id,
            scan_id: r.scan_id,
            title: r.title,
            description: r.description,
            priority: r.priority,
            phases: serde_json::from_str(&r.phases).unwrap_or_default(),
            items_key: r.items_key,
            grouping: parse(&r.grouped_by, Grouping::Deterministic),
            status: parse(&r.status, PlanStatus::Superseded),
            reason: r.reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            milestone_id: r.milestone_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const PLAN_COLS: &str = "id, project_id, scan_id, title, description, priority, phases, items_key, grouped_by, status, reason, decided_by, decided_at, milestone_id, created_at, updated_at";

pub async fn insert_plan(
    conn: &mut AnyConnection,
    project_id: i64,
    scan_id: i64,
    d: &plan::Draft,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_milestones (project_id, scan_id, title, description, priority, phases,
                                      items_key, grouped_by, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_approval', $9, $9) RETURNING id",
    )
    .bind(project_id)
    .bind(scan_id)
    .bind(&d.title)
    .bind(&d.description)
    .bind(d.priority)
    .bind(serde_json::to_string(&d.phases).unwrap_or_else(|_| "[]".into()))
    .bind(&d.items_key)
    .bind(d.grouping.as_str())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Every proposed milestone of a project that still decides what a new plan may propose:
/// pending, approved and rejected ones.
pub async fn decided_or_pending(
    conn: &mut AnyConnection,
    project_id: i64,
) -> Result<Vec<PlanMilestone>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones
         WHERE project_id = $1 AND status IN ('pending_approval', 'approved', 'rejected')
         ORDER BY id"
    ))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn set_plan_status(
    conn: &mut AnyConnection,
    id: i64,
    status: PlanStatus,
    reason: Option<&str>,
    by: Option<&str>,
    milestone_id: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plan_milestones SET status = $1, reason = COALESCE($2, reason),
                decided_by = COALESCE($3, decided_by),
                decided_at = CASE WHEN $3 IS NULL THEN decided_at ELSE $4 END,
                milestone_id = COALESCE($5, milestone_id), updated_at = $4
         WHERE id = $6",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(by)
    .bind(now)
    .bind(milestone_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the row lock first (the transaction's write lock before it reads).
pub async fn lock_plan(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<PlanMilestone>, sqlx::Error> {
    sqlx::query("UPDATE plan_milestones SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_plan(conn, id).await
}

pub async fn get_plan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<PlanMilestone>, sqlx::Error> {
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFilter {
    pub project_id: Option<i64>,
    /// Default: `pending_approval`.
    pub status: Option<PlanStatus>,
}

pub async fn list_plans<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &PlanFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<PlanMilestone>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones
         WHERE ($1 IS NULL OR project_id = $1) AND status = $2
         ORDER BY priority DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(f.project_id)
    .bind(f.status.unwrap_or(PlanStatus::PendingApproval).as_str())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Supersedes a proposal only while it still waits for a person: false when someone decided
/// it in the meantime.
pub async fn supersede_pending(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE plan_milestones SET status = 'superseded', updated_at = $1
         WHERE id = $2 AND status = 'pending_approval'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
