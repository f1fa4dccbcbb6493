//! SQL for projects, milestones, features, bugs and devops tasks. Nothing else touches these
//! tables. Writers that read-modify-write first call a `lock_*` function, which touches the row
//! so the transaction holds the write lock before it reads (SQLite: no lost update between the
//! read and the write; PostgreSQL: a row lock).

use super::*;
use crate::db::like_pattern;
use sqlx::{Any, AnyConnection, Executor};

fn parse_or<T: std::str::FromStr>(s: &str, default: T) -> T {
    s.parse().unwrap_or(default)
}

// ---- projects ----

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
    sqlx::query("UPDATE projects SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_project(conn, id).await
}

pub async fn list_projects<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &ProjectFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Project>, sqlx::Error> {
    let q =
        f.q.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| like_pattern(s.trim()));
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

// ---- milestones ----

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
    sqlx::query("UPDATE milestones SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
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

// ---- features ----

#[derive(sqlx::FromRow)]
struct FeatureRow {
    id: i64,
    project_id: i64,
    milestone_id: Option<i64>,
    name: String,
    description: String,
    status: String,
    priority: i64,
    assignee: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<FeatureRow> for Feature {
    fn from(r: FeatureRow) -> Self {
        Feature {
            id: r.id,
            project_id: r.project_id,
            milestone_id: r.milestone_id,
            name: r.name,
            description: r.description,
            status: parse_or(&r.status, FeatureStatus::Draft),
            priority: r.priority,
            assignee: r.assignee,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const FEATURE_COLS: &str =
    "id, project_id, milestone_id, name, description, status, priority, assignee, created_at, updated_at";

pub async fn insert_feature(
    conn: &mut AnyConnection,
    f: &NewFeature,
    now: &str,
) -> Result<Feature, sqlx::Error> {
    let row: FeatureRow = sqlx::query_as(&format!(
        "INSERT INTO features (project_id, milestone_id, name, description, status, priority, assignee, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {FEATURE_COLS}"
    ))
    .bind(f.project_id)
    .bind(f.milestone_id)
    .bind(&f.name)
    .bind(f.description.as_deref().unwrap_or(""))
    .bind(FeatureStatus::INITIAL.as_str())
    .bind(f.priority.unwrap_or(0))
    .bind(f.assignee.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn get_feature<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Feature>, sqlx::Error> {
    let row: Option<FeatureRow> = sqlx::query_as(&format!(
        "SELECT {FEATURE_COLS} FROM features WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_feature(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Feature>, sqlx::Error> {
    sqlx::query("UPDATE features SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_feature(conn, id).await
}

pub async fn list_features<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &FeatureFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Feature>, sqlx::Error> {
    let q =
        f.q.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| like_pattern(s.trim()));
    let rows: Vec<FeatureRow> = sqlx::query_as(&format!(
        "SELECT {FEATURE_COLS} FROM features
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR milestone_id = $2)
           AND ($3 IS NULL OR status = $3)
           AND ($4 IS NULL OR LOWER(name) LIKE $4 ESCAPE '\\' OR LOWER(description) LIKE $4 ESCAPE '\\')
         ORDER BY priority DESC, id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(f.project_id)
    .bind(f.milestone_id)
    .bind(f.status.map(FeatureStatus::as_str))
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn save_feature(
    conn: &mut AnyConnection,
    f: &Feature,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE features SET milestone_id = $1, name = $2, description = $3, status = $4, priority = $5,
                assignee = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(f.milestone_id)
    .bind(&f.name)
    .bind(&f.description)
    .bind(f.status.as_str())
    .bind(f.priority)
    .bind(f.assignee.as_deref())
    .bind(now)
    .bind(f.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_feature_status(
    conn: &mut AnyConnection,
    feature_id: i64,
    from: Option<FeatureStatus>,
    to: FeatureStatus,
    comment: Option<&str>,
    actor: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feature_status_history (feature_id, from_status, to_status, comment, actor, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(feature_id)
    .bind(from.map(FeatureStatus::as_str))
    .bind(to.as_str())
    .bind(comment)
    .bind(actor)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn feature_history<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    feature_id: i64,
) -> Result<Vec<StatusChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT from_status, to_status, comment, actor, changed_at FROM feature_status_history
         WHERE feature_id = $1 ORDER BY id",
    )
    .bind(feature_id)
    .fetch_all(ex)
    .await
}

// ---- bugs ----

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
    sqlx::query("UPDATE bugs SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_bug(conn, id).await
}

pub async fn list_bugs<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &BugFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Bug>, sqlx::Error> {
    let q =
        f.q.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| like_pattern(s.trim()));
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

// ---- devops tasks ----

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
    sqlx::query("UPDATE devops_tasks SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
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

// ---- stats ----

/// Counts by status of one table; `projects` counts archived projects as `archived`.
pub async fn status_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    table: StatsTable,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = match table {
        StatsTable::Projects => "SELECT CASE WHEN archived_at IS NULL THEN status ELSE 'archived' END AS s, COUNT(*) FROM projects GROUP BY s",
        StatsTable::Milestones => "SELECT status, COUNT(*) FROM milestones GROUP BY status",
        StatsTable::Features => "SELECT status, COUNT(*) FROM features GROUP BY status",
        StatsTable::Bugs => "SELECT status, COUNT(*) FROM bugs GROUP BY status",
        StatsTable::DevopsTasks => "SELECT status, COUNT(*) FROM devops_tasks GROUP BY status",
    };
    sqlx::query_as(sql).fetch_all(ex).await
}

/// The tables `/api/stats` counts (a closed set, so no table name ever comes from input).
#[derive(Debug, Clone, Copy)]
pub enum StatsTable {
    Projects,
    Milestones,
    Features,
    Bugs,
    DevopsTasks,
}
