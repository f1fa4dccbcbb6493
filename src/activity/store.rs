//! SQL for the activity log.

use super::{ActivityEntry, ActivityFilter};
use sqlx::{Any, AnyConnection, Executor};

/// Appends an entry. Call it with the transaction that makes the change.
pub async fn record(
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    entity_type: &str,
    entity_id: Option<i64>,
    details: &serde_json::Value,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO activity_log (actor, action, entity_type, entity_id, details, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(actor)
    .bind(action)
    .bind(entity_type)
    .bind(entity_id)
    .bind(details.to_string())
    .bind(now)
    .fetch_one(conn)
    .await
}

/// An activity row to write with a change (see [`execute_logged`], [`fetch_logged`]).
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<i64>,
    pub details: serde_json::Value,
    pub now: &'a str,
}

impl<'a> Entry<'a> {
    /// The row of a deletion of `entity_type` `id`.
    pub fn deleted(actor: &'a str, entity_type: &'a str, id: i64, now: &'a str) -> Entry<'a> {
        Entry {
            actor,
            action: "delete",
            entity_type,
            entity_id: Some(id),
            details: serde_json::json!({}),
            now,
        }
    }
}

async fn record_entry(conn: &mut AnyConnection, e: &Entry<'_>) -> Result<i64, sqlx::Error> {
    record(
        conn,
        e.actor,
        e.action,
        e.entity_type,
        e.entity_id,
        &e.details,
        e.now,
    )
    .await
}

/// Runs one statement and, when it changed a row, its activity row, in one write transaction.
/// Returns the rows changed.
pub async fn execute_logged<'q>(
    db: &crate::db::Db,
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    entry: Entry<'_>,
) -> Result<u64, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    let n = q.execute(&mut *tx).await?.rows_affected();
    if n > 0 {
        record_entry(&mut tx, &entry).await?;
    }
    tx.commit().await?;
    Ok(n)
}

/// Runs one statement that returns a row (`INSERT/UPDATE ... RETURNING`) and, when it did,
/// the activity row `entry` makes of it, in one write transaction.
pub async fn fetch_logged<'q, T>(
    db: &crate::db::Db,
    q: sqlx::query::QueryAs<'q, Any, T, sqlx::any::AnyArguments<'q>>,
    entry: impl FnOnce(&T) -> Entry<'q>,
) -> Result<Option<T>, sqlx::Error>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    let mut tx = crate::db::begin_write(db).await?;
    let row = q.fetch_optional(&mut *tx).await?;
    if let Some(r) = &row {
        record_entry(&mut tx, &entry(r)).await?;
    }
    tx.commit().await?;
    Ok(row)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    actor: String,
    action: String,
    entity_type: String,
    entity_id: Option<i64>,
    details: String,
    created_at: String,
}

/// Newest first.
pub async fn list<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &ActivityFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<ActivityEntry>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, actor, action, entity_type, entity_id, details, created_at FROM activity_log
         WHERE ($1 IS NULL OR entity_type = $1)
           AND ($2 IS NULL OR entity_id = $2)
           AND ($3 IS NULL OR actor = $3)
           AND ($4 IS NULL OR created_at >= $4)
         ORDER BY id DESC LIMIT $5 OFFSET $6",
    )
    .bind(f.entity.as_deref())
    .bind(f.entity_id)
    .bind(f.actor.as_deref())
    .bind(f.since.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ActivityEntry {
            id: r.id,
            actor: r.actor,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
        })
        .collect())
}
