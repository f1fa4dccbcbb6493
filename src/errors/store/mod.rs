//! SQL for error groups (`errors`), their per-node counts (`error_nodes`), hourly histogram
//! (`error_hours`) and sample of raw occurrences (`error_occurrences`). Nothing else touches
//! these tables. The ingest writer's statements are in `batch.rs`.

use super::*;
use crate::db::search_pattern;
use sqlx::{Any, AnyConnection, Executor};

mod batch;
mod keys;
pub use batch::*;
pub use keys::*;

fn parse_or<T: std::str::FromStr>(s: &str, fallback: T) -> T {
    s.parse().unwrap_or(fallback)
}

// ---- reads ----

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: i64,
    fingerprint: String,
    error_type: String,
    source: String,
    title: String,
    message: String,
    level: String,
    status: String,
    regressed: i64,
    occurrences: i64,
    first_seen: String,
    last_seen: String,
    last_node: String,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    bug_id: Option<i64>,
    review_at: Option<String>,
    review_prompt_id: Option<i64>,
}

impl From<GroupRow> for ErrorGroup {
    fn from(r: GroupRow) -> Self {
        ErrorGroup {
            id: r.id,
            fingerprint: r.fingerprint,
            error_type: r.error_type,
            source: r.source,
            title: r.title,
            message: r.message,
            level: parse_or(&r.level, ErrorLevel::Error),
            status: parse_or(&r.status, GroupStatus::Open),
            regressed: r.regressed != 0,
            count: r.occurrences,
            first_seen: r.first_seen,
            last_seen: r.last_seen,
            last_node: r.last_node,
            resolved_at: r.resolved_at,
            resolved_by: r.resolved_by,
            bug_id: r.bug_id,
            review_at: r.review_at,
            review_prompt_id: r.review_prompt_id,
            nodes: Vec::new(),
        }
    }
}

const GROUP_COLS: &str = "e.id, e.fingerprint, e.error_type, e.source, e.title, e.message, e.level, e.status,
    e.regressed, e.occurrences, e.first_seen, e.last_seen, e.last_node, e.resolved_at, e.resolved_by, e.bug_id,
    e.review_at, e.review_prompt_id";

/// Fills each group's `nodes` (most occurrences first).
async fn attach_nodes(
    conn: &mut AnyConnection,
    groups: &mut [ErrorGroup],
) -> Result<(), sqlx::Error> {
    if groups.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT error_id, node_id, occurrences, first_seen, last_seen FROM error_nodes
         WHERE error_id IN ({}) ORDER BY occurrences DESC, node_id",
        crate::db::placeholders(1, groups.len())
    );
    let mut q = sqlx::query_as::<_, (i64, String, i64, String, String)>(&sql);
    for g in groups.iter() {
        q = q.bind(g.id);
    }
    for (id, node_id, count, first_seen, last_seen) in q.fetch_all(conn).await? {
        if let Some(g) = groups.iter_mut().find(|g| g.id == id) {
            g.nodes.push(NodeCount {
                node_id,
                count,
                first_seen,
                last_seen,
            });
        }
    }
    Ok(())
}

pub async fn list_groups(
    conn: &mut AnyConnection,
    f: &GroupFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<ErrorGroup>, sqlx::Error> {
    let q = search_pattern(f.q.as_deref());
    // Only fixed fragments are spliced in; every value is a parameter.
    let order = match f.sort.unwrap_or(GroupSort::LastSeen) {
        GroupSort::LastSeen => "e.last_seen DESC, e.id DESC",
        GroupSort::Count => "e.occurrences DESC, e.id DESC",
        GroupSort::FirstSeen => "e.first_seen DESC, e.id DESC",
    };
    let sql = format!(
        "SELECT {GROUP_COLS} FROM errors e
         WHERE ($1 IS NULL OR e.status = $1)
           AND ($2 IS NULL OR EXISTS (SELECT 1 FROM error_nodes n WHERE n.error_id = e.id AND n.node_id = $2))
           AND ($3 IS NULL OR e.source = $3)
           AND ($4 IS NULL OR e.level = $4)
           AND ($5 IS NULL OR LOWER(e.title) LIKE $5 ESCAPE '\\' OR LOWER(e.message) LIKE $5 ESCAPE '\\'
                OR LOWER(e.error_type) LIKE $5 ESCAPE '\\')
           AND ($8 IS NULL OR e.bug_id = $8)
         ORDER BY {order} LIMIT $6 OFFSET $7"
    );
    let rows: Vec<GroupRow> = sqlx::query_as(&sql)
        .bind(f.status.map(GroupStatus::as_str))
        .bind(f.node.as_deref())
        .bind(f.source.as_deref())
        .bind(f.level.map(ErrorLevel::as_str))
        .bind(q)
        .bind(limit)
        .bind(offset)
        .bind(f.bug_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut groups: Vec<ErrorGroup> = rows.into_iter().map(Into::into).collect();
    attach_nodes(conn, &mut groups).await?;
    Ok(groups)
}

pub async fn get_group(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<ErrorGroup>, sqlx::Error> {
    let row: Option<GroupRow> = sqlx::query_as(&format!(
        "SELECT {GROUP_COLS} FROM errors e WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut groups: Vec<ErrorGroup> = row.into_iter().map(Into::into).collect();
    attach_nodes(conn, &mut groups).await?;
    Ok(groups.pop())
}

/// Touches the row first, so the transaction holds the write lock before it reads.
pub async fn lock_group(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<ErrorGroup>, sqlx::Error> {
    sqlx::query("UPDATE errors SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_group(conn, id).await
}

pub async fn stack_trace<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<String>, sqlx::Error> {
    let s: Option<Option<String>> =
        sqlx::query_scalar("SELECT stack_trace FROM errors WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(s.flatten())
}

/// Hourly counts of the given groups from `since_hour` on (only hours with occurrences).
pub async fn hours_since(
    conn: &mut AnyConnection,
    ids: &[i64],
    since_hour: &str,
) -> Result<Vec<(i64, HourCount)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT error_id, hour, occurrences FROM error_hours
         WHERE hour >= $1 AND error_id IN ({}) ORDER BY hour",
        crate::db::placeholders(2, ids.len())
    );
    let mut q = sqlx::query_as::<_, (i64, String, i64)>(&sql).bind(since_hour);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(conn)
        .await?
        .into_iter()
        .map(|(id, hour, count)| (id, HourCount { hour, count }))
        .collect())
}

#[derive(sqlx::FromRow)]
struct OccurrenceRow {
    id: i64,
    node_id: String,
    message: String,
    level: String,
    stack_trace: Option<String>,
    context: Option<String>,
    received_at: String,
}

/// The group's sampled occurrences, newest first.
pub async fn occurrences<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
    limit: i64,
) -> Result<Vec<Occurrence>, sqlx::Error> {
    let rows: Vec<OccurrenceRow> = sqlx::query_as(
        "SELECT id, node_id, message, level, stack_trace, context, received_at
         FROM error_occurrences WHERE error_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Occurrence {
            id: r.id,
            node_id: r.node_id,
            message: r.message,
            level: parse_or(&r.level, ErrorLevel::Error),
            stack_trace: r.stack_trace,
            context: r.context.and_then(|c| serde_json::from_str(&c).ok()),
            received_at: r.received_at,
        })
        .collect())
}

/// Open and resolved group counts, for the panel's header.
pub async fn status_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM errors GROUP BY status")
        .fetch_all(ex)
        .await
}

// ---- changes ----

pub async fn mark_resolved(
    conn: &mut AnyConnection,
    id: i64,
    actor: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE errors SET status = 'resolved', regressed = 0, resolved_at = $1, resolved_by = $2,
                review_at = NULL, review_prompt_id = NULL, updated_at = $1 WHERE id = $3",
    )
    .bind(now)
    .bind(actor)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks an open group "in review": the agent prompt `prompt_id` sent for it completed.
/// Returns false when the group is not open (resolved meanwhile: nothing to review).
pub async fn mark_in_review(
    conn: &mut AnyConnection,
    id: i64,
    prompt_id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE errors SET review_at = $1, review_prompt_id = $2, updated_at = $1
         WHERE id = $3 AND status = 'open'",
    )
    .bind(now)
    .bind(prompt_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn link_bug(
    conn: &mut AnyConnection,
    id: i64,
    bug_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE errors SET bug_id = $1, updated_at = $2 WHERE id = $3")
        .bind(bug_id)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ids of the groups linked to a bug.
pub async fn groups_of_bug<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    bug_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM errors WHERE bug_id = $1 ORDER BY id")
        .bind(bug_id)
        .fetch_all(ex)
        .await
}

/// Ids of the open groups linked to a bug.
pub async fn open_groups_of_bug(
    conn: &mut AnyConnection,
    bug_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM errors WHERE bug_id = $1 AND status = 'open' ORDER BY id")
        .bind(bug_id)
        .fetch_all(conn)
        .await
}
