//! SQL for features. Nothing else touches these tables.

use crate::db::search_pattern;
use crate::tracking::store::{parse_or, touch, Table};
use crate::tracking::*;
use sqlx::{Any, AnyConnection, Executor};

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
    touch(&mut *conn, Table::Features, id, now).await?;
    get_feature(conn, id).await
}

pub async fn list_features<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &FeatureFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Feature>, sqlx::Error> {
    let q = search_pattern(f.q.as_deref());
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
