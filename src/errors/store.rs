//! SQL for error groups (`errors`), their per-node counts (`error_nodes`), hourly histogram
//! (`error_hours`) and sample of raw occurrences (`error_occurrences`). Nothing else touches
//! these tables.

use super::*;
use crate::db::like_pattern;
use sqlx::{Any, AnyConnection, Executor};

fn parse_or<T: std::str::FromStr>(s: &str, fallback: T) -> T {
    s.parse().unwrap_or(fallback)
}

// ---- the writer's statements (one batch = one transaction) ----

/// What one batch adds to one group.
pub struct GroupDelta<'a> {
    /// The batch's latest event of the group: its message, level, node and title win.
    pub latest: &'a ErrorEvent,
    /// The batch's earliest receive time of the group (first_seen of a new group).
    pub first_seen: &'a str,
    pub count: i64,
    /// The batch's latest non-empty stack trace of the group.
    pub stack_trace: Option<&'a str>,
}

/// Adds a batch's occurrences to a group, creating it on its first occurrence. A resolved
/// group is reopened and flagged `regressed` (the right-hand sides read the old row). Returns
/// the group's id.
pub async fn record_batch_group(
    conn: &mut AnyConnection,
    d: &GroupDelta<'_>,
) -> Result<i64, sqlx::Error> {
    let e = d.latest;
    sqlx::query_scalar(
        "INSERT INTO errors (fingerprint, error_type, source, title, message, level, status, regressed,
                             occurrences, first_seen, last_seen, last_node, stack_trace, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'open', 0, $7, $8, $9, $10, $11, $9)
         ON CONFLICT (fingerprint) DO UPDATE SET
             occurrences = errors.occurrences + excluded.occurrences,
             last_seen = CASE WHEN excluded.last_seen > errors.last_seen THEN excluded.last_seen ELSE errors.last_seen END,
             title = excluded.title,
             message = excluded.message,
             level = excluded.level,
             last_node = excluded.last_node,
             stack_trace = COALESCE(excluded.stack_trace, errors.stack_trace),
             regressed = CASE WHEN errors.status = 'resolved' THEN 1 ELSE errors.regressed END,
             status = 'open',
             updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(&e.fingerprint)
    .bind(&e.error_type)
    .bind(&e.source)
    .bind(&e.title)
    .bind(&e.message)
    .bind(e.level.as_str())
    .bind(d.count)
    .bind(d.first_seen)
    .bind(&e.received_at)
    .bind(&e.node_id)
    .bind(d.stack_trace)
    .fetch_one(conn)
    .await
}

pub async fn add_node_count(
    conn: &mut AnyConnection,
    error_id: i64,
    node_id: &str,
    count: i64,
    first_seen: &str,
    last_seen: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO error_nodes (error_id, node_id, occurrences, first_seen, last_seen)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (error_id, node_id) DO UPDATE SET
             occurrences = error_nodes.occurrences + excluded.occurrences,
             last_seen = CASE WHEN excluded.last_seen > error_nodes.last_seen THEN excluded.last_seen ELSE error_nodes.last_seen END",
    )
    .bind(error_id)
    .bind(node_id)
    .bind(count)
    .bind(first_seen)
    .bind(last_seen)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn add_hour_count(
    conn: &mut AnyConnection,
    error_id: i64,
    hour: &str,
    count: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO error_hours (error_id, hour, occurrences) VALUES ($1, $2, $3)
         ON CONFLICT (error_id, hour) DO UPDATE SET occurrences = error_hours.occurrences + excluded.occurrences",
    )
    .bind(error_id)
    .bind(hour)
    .bind(count)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_occurrence(
    conn: &mut AnyConnection,
    error_id: i64,
    e: &ErrorEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO error_occurrences (error_id, node_id, message, level, stack_trace, context, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(error_id)
    .bind(&e.node_id)
    .bind(&e.message)
    .bind(e.level.as_str())
    .bind(e.stack_trace.as_deref())
    .bind(e.context.as_deref())
    .bind(&e.received_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps the newest `keep` occurrences of one group.
pub async fn prune_samples(
    conn: &mut AnyConnection,
    error_id: i64,
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM error_occurrences WHERE error_id = $1 AND id <= (
             SELECT id FROM error_occurrences WHERE error_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
    )
    .bind(error_id)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Keeps the newest `keep` occurrences of every group that has more.
pub async fn prune_all_samples(conn: &mut AnyConnection, keep: i64) -> Result<u64, sqlx::Error> {
    let over: Vec<i64> = sqlx::query_scalar(
        "SELECT error_id FROM error_occurrences GROUP BY error_id HAVING COUNT(*) > $1",
    )
    .bind(keep)
    .fetch_all(&mut *conn)
    .await?;
    let mut removed = 0;
    for id in over {
        removed += prune_samples(conn, id, keep).await?;
    }
    Ok(removed)
}

/// Deletes histogram buckets older than `hour` (`YYYY-MM-DDTHH`).
pub async fn delete_hours_before(conn: &mut AnyConnection, hour: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM error_hours WHERE hour < $1")
        .bind(hour)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
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
            nodes: Vec::new(),
        }
    }
}

const GROUP_COLS: &str = "e.id, e.fingerprint, e.error_type, e.source, e.title, e.message, e.level, e.status,
    e.regressed, e.occurrences, e.first_seen, e.last_seen, e.last_node, e.resolved_at, e.resolved_by, e.bug_id";

/// Fills each group's `nodes` (most occurrences first).
async fn attach_nodes(
    conn: &mut AnyConnection,
    groups: &mut [ErrorGroup],
) -> Result<(), sqlx::Error> {
    if groups.is_empty() {
        return Ok(());
    }
    let marks: Vec<String> = (1..=groups.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT error_id, node_id, occurrences, first_seen, last_seen FROM error_nodes
         WHERE error_id IN ({}) ORDER BY occurrences DESC, node_id",
        marks.join(", ")
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
    let q =
        f.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(like_pattern);
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
    let marks: Vec<String> = (2..=ids.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT error_id, hour, occurrences FROM error_hours
         WHERE hour >= $1 AND error_id IN ({}) ORDER BY hour",
        marks.join(", ")
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
                updated_at = $1 WHERE id = $3",
    )
    .bind(now)
    .bind(actor)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
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
