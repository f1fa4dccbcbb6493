//! SQL for `plan_items`: what scans found, by (project, fingerprint).

use super::parse;
use crate::planning::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    project_id: i64,
    kind: String,
    path: Option<String>,
    line: Option<i64>,
    text: String,
    heading: Option<String>,
    fingerprint: String,
    source_id: Option<i64>,
    weight: i64,
    status: String,
    author: Option<String>,
    authored_at: Option<String>,
    feature_id: Option<i64>,
    first_seen_at: String,
    last_seen_at: String,
    done_at: Option<String>,
}

impl From<ItemRow> for PlanItem {
    fn from(r: ItemRow) -> Self {
        PlanItem {
            id: r.id,
            project_id: r.project_id,
            kind: parse(&r.kind, Source::Todo),
            path: r.path,
            line: r.line,
            text: r.text,
            heading: r.heading,
            fingerprint: r.fingerprint,
            source_id: r.source_id,
            weight: r.weight,
            status: parse(&r.status, ItemStatus::Open),
            author: r.author,
            authored_at: r.authored_at,
            feature_id: r.feature_id,
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
            done_at: r.done_at,
        }
    }
}

const ITEM_COLS: &str = "id, project_id, kind, path, line, text, heading, fingerprint, source_id, weight, status, author, authored_at, feature_id, first_seen_at, last_seen_at, done_at";

/// An item as found now, to store.
pub struct Found<'a> {
    pub kind: Source,
    pub path: Option<&'a str>,
    pub line: Option<i64>,
    pub text: &'a str,
    pub heading: Option<&'a str>,
    pub fingerprint: &'a str,
    pub source_id: Option<i64>,
    pub weight: i64,
}

/// Stores a new item, or reopens the done one with the same fingerprint (a note that came
/// back). Returns its id.
pub async fn upsert_item(
    conn: &mut AnyConnection,
    project_id: i64,
    f: &Found<'_>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_items (project_id, kind, path, line, text, heading, fingerprint, source_id,
                                 weight, status, first_seen_at, last_seen_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10, $10)
         ON CONFLICT (project_id, fingerprint) DO UPDATE SET
             kind = excluded.kind, path = excluded.path, line = excluded.line, text = excluded.text,
             heading = excluded.heading, source_id = excluded.source_id, weight = excluded.weight,
             status = 'open', done_at = NULL, last_seen_at = excluded.last_seen_at,
             updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(project_id)
    .bind(f.kind.as_str())
    .bind(f.path)
    .bind(f.line)
    .bind(f.text)
    .bind(f.heading)
    .bind(f.fingerprint)
    .bind(f.source_id)
    .bind(f.weight)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// An item found again (maybe moved or edited): its new place, text and fingerprint. A done
/// item that already holds the new fingerprint (the same note, closed earlier) gives way.
pub async fn update_item(
    conn: &mut AnyConnection,
    id: i64,
    project_id: i64,
    f: &Found<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM plan_items WHERE project_id = $1 AND fingerprint = $2 AND id <> $3
           AND status = 'done'",
    )
    .bind(project_id)
    .bind(f.fingerprint)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE plan_items SET path = $1, line = $2, text = $3, heading = $4, fingerprint = $5,
                weight = $6, status = 'open', done_at = NULL, last_seen_at = $7, updated_at = $7
         WHERE id = $8",
    )
    .bind(f.path)
    .bind(f.line)
    .bind(f.text)
    .bind(f.heading)
    .bind(f.fingerprint)
    .bind(f.weight)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Found again unchanged: only `last_seen_at` (and a moved line) change.
pub async fn seen_again(
    conn: &mut AnyConnection,
    id: i64,
    line: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_items SET line = $1, last_seen_at = $2 WHERE id = $3")
        .bind(line)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_author(
    conn: &mut AnyConnection,
    id: i64,
    author: &str,
    at: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_items SET author = $1, authored_at = $2 WHERE id = $3")
        .bind(author)
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_done(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: &str,
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE plan_items SET status = 'done', done_at = $1, updated_at = $1
             WHERE status = 'open' AND id IN ({})",
            crate::db::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The project's open items of one origin: found in files (`file = true`) or bugs/errors.
pub async fn open_items(
    conn: &mut AnyConnection,
    project_id: i64,
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM plan_items WHERE project_id = $1 AND status = 'open' ORDER BY id"
    ))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFilter {
    pub project_id: Option<i64>,
    pub status: Option<ItemStatus>,
    pub kind: Option<Source>,
    pub path: Option<String>,
}

pub async fn list_items<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &ItemFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM plan_items
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR path = $4)
         ORDER BY weight DESC, id LIMIT $5 OFFSET $6"
    ))
    .bind(f.project_id)
    .bind(f.status.map(ItemStatus::as_str))
    .bind(f.kind.map(Source::as_str))
    .bind(f.path.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn items_by_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {ITEM_COLS} FROM plan_items WHERE id IN ({}) ORDER BY id",
            crate::db::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, ItemRow>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        out.extend(
            q.fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(PlanItem::from),
        );
    }
    Ok(out)
}

pub async fn get_item<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<PlanItem>, sqlx::Error> {
    let row: Option<ItemRow> =
        sqlx::query_as(&format!("SELECT {ITEM_COLS} FROM plan_items WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(Into::into))
}

pub async fn link_feature(
    conn: &mut AnyConnection,
    ids: &[i64],
    feature_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE plan_items SET feature_id = $1, updated_at = $2 WHERE id IN ({})",
            crate::db::placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(feature_id).bind(now);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
