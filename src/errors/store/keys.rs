//! SQL for per-project ingest keys (`error_ingest_keys`).

use super::super::IngestKey;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    project_id: i64,
    prefix: String,
    created_at: String,
    created_by: String,
}

impl From<KeyRow> for IngestKey {
    fn from(r: KeyRow) -> Self {
        IngestKey {
            id: r.id,
            project_id: r.project_id,
            prefix: r.prefix,
            created_at: r.created_at,
            created_by: r.created_by,
        }
    }
}

/// The project's active key, if it has one.
pub async fn active_key_of<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<IngestKey>, sqlx::Error> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT id, project_id, prefix, created_at, created_by FROM error_ingest_keys
         WHERE project_id = $1 AND revoked_at IS NULL",
    )
    .bind(project_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(IngestKey::from))
}

/// The project an active key (by its hash) belongs to.
pub async fn project_of_key<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key_hash: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT project_id FROM error_ingest_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(key_hash)
    .fetch_optional(ex)
    .await
}

/// Revokes the project's active key; true when there was one.
pub async fn revoke_key_of(
    conn: &mut AnyConnection,
    project_id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE error_ingest_keys SET revoked_at = $2 WHERE project_id = $1 AND revoked_at IS NULL",
    )
    .bind(project_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn insert_key(
    conn: &mut AnyConnection,
    project_id: i64,
    key_hash: &str,
    prefix: &str,
    created_by: &str,
    now: &str,
) -> Result<IngestKey, sqlx::Error> {
    let row: KeyRow = sqlx::query_as(
        "INSERT INTO error_ingest_keys (project_id, key_hash, prefix, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, project_id, prefix, created_at, created_by",
    )
    .bind(project_id)
    .bind(key_hash)
    .bind(prefix)
    .bind(now)
    .bind(created_by)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}
