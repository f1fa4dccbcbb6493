//! The ingest writer's statements: one batch = one transaction of a few multi-row statements,
//! plus the sample pruning and retention deletes.

use crate::errors::ErrorEvent;
use sqlx::AnyConnection;

// ---- the writer's statements (one batch = one transaction, a few statements) ----
//
// Each takes all the rows of a batch in multi-row statements of at most a fixed number of rows,
// so a batch costs a handful of statements whether it holds 1 event or 4,000, and the few
// distinct statement texts (one per row count up to the chunk size) stay prepared on the
// writer's connection. Chunks are small on purpose: SQLite resolves `$N` parameter names by
// scanning a list, so the cost of one statement grows with the square of its parameters.

/// Rows per statement, by table (about 90 parameters each).
const GROUP_ROWS: usize = 8;
const NODE_ROWS: usize = 16;
const HOUR_ROWS: usize = 24;
const OCCURRENCE_ROWS: usize = 12;
const PRUNE_IDS: usize = 16;

/// `rows` VALUES rows of `per_row` parameters each, `($1, …), ($per_row+1, …), …`.
fn value_rows(rows: usize, per_row: usize) -> String {
    values(rows, per_row, |p| format!("({})", p(1, per_row)))
}

/// `rows` VALUES rows from a row template; `p(col, n)` is that row's parameters `col..col+n`
/// (1-based), numbered on from the rows before it.
fn values(
    rows: usize,
    per_row: usize,
    row: impl Fn(&dyn Fn(usize, usize) -> String) -> String,
) -> String {
    (0..rows)
        .map(|r| row(&|col, n| crate::db::placeholders(r * per_row + col, n)))
        .collect::<Vec<_>>()
        .join(", ")
}

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

/// Adds a batch's occurrences to its groups, creating each on its first occurrence. A resolved
/// group is reopened and flagged `regressed` (the right-hand sides read the old row). Returns
/// (fingerprint, id) of every group. Fingerprints must be distinct within the batch.
pub async fn record_batch_groups(
    conn: &mut AnyConnection,
    deltas: &[GroupDelta<'_>],
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut out = Vec::with_capacity(deltas.len());
    for chunk in deltas.chunks(GROUP_ROWS) {
        // updated_at repeats last_seen ($9 of the row).
        let rows = values(chunk.len(), 11, |p| {
            format!("({}, 'open', 0, {}, {})", p(1, 6), p(7, 5), p(9, 1))
        });
        let sql = format!(
            "INSERT INTO errors (fingerprint, error_type, source, title, message, level, status, regressed,
                                 occurrences, first_seen, last_seen, last_node, stack_trace, updated_at)
             VALUES {rows}
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
             RETURNING fingerprint, id"
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for d in chunk {
            let e = d.latest;
            q = q
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
                .bind(d.stack_trace);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// One group's occurrences on one node within a batch.
pub struct NodeDelta<'a> {
    pub error_id: i64,
    pub node_id: &'a str,
    pub count: i64,
    pub first_seen: &'a str,
    pub last_seen: &'a str,
}

pub async fn add_node_counts(
    conn: &mut AnyConnection,
    rows: &[NodeDelta<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(NODE_ROWS) {
        let v = value_rows(chunk.len(), 5);
        let sql = format!(
            "INSERT INTO error_nodes (error_id, node_id, occurrences, first_seen, last_seen) VALUES {v}
             ON CONFLICT (error_id, node_id) DO UPDATE SET
                 occurrences = error_nodes.occurrences + excluded.occurrences,
                 last_seen = CASE WHEN excluded.last_seen > error_nodes.last_seen THEN excluded.last_seen ELSE error_nodes.last_seen END"
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.error_id)
                .bind(r.node_id)
                .bind(r.count)
                .bind(r.first_seen)
                .bind(r.last_seen);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds `(error_id, hour, count)` rows to the hourly histogram.
pub async fn add_hour_counts(
    conn: &mut AnyConnection,
    rows: &[(i64, &str, i64)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(HOUR_ROWS) {
        let v = value_rows(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO error_hours (error_id, hour, occurrences) VALUES {v}
             ON CONFLICT (error_id, hour) DO UPDATE SET occurrences = error_hours.occurrences + excluded.occurrences"
        );
        let mut q = sqlx::query(&sql);
        for (id, hour, n) in chunk {
            q = q.bind(*id).bind(*hour).bind(*n);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores raw occurrences `(error_id, event)` in the sample.
pub async fn insert_occurrences(
    conn: &mut AnyConnection,
    rows: &[(i64, &ErrorEvent)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(OCCURRENCE_ROWS) {
        let v = value_rows(chunk.len(), 7);
        let sql = format!(
            "INSERT INTO error_occurrences (error_id, node_id, message, level, stack_trace, context, received_at)
             VALUES {v}"
        );
        let mut q = sqlx::query(&sql);
        for (id, e) in chunk {
            q = q
                .bind(*id)
                .bind(&e.node_id)
                .bind(&e.message)
                .bind(e.level.as_str())
                .bind(e.stack_trace.as_deref())
                .bind(e.context.as_deref())
                .bind(&e.received_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Keeps the newest `keep` occurrences of each of the given groups, in one statement.
pub async fn prune_samples_of(
    conn: &mut AnyConnection,
    ids: &[i64],
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    for chunk in ids.chunks(PRUNE_IDS) {
        let sql = format!(
            "DELETE FROM error_occurrences WHERE error_id IN ({}) AND id <= (
                 SELECT o.id FROM error_occurrences o WHERE o.error_id = error_occurrences.error_id
                 ORDER BY o.id DESC LIMIT 1 OFFSET $1)",
            crate::db::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(keep);
        for id in chunk {
            q = q.bind(*id);
        }
        removed += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(removed)
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

// ---- retention bounds ----

/// Deletes groups last seen before `before` (their node counts, hours and samples cascade).
pub async fn delete_groups_seen_before(
    conn: &mut AnyConnection,
    before: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM errors WHERE last_seen < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

/// Keeps the `keep` most recently seen groups and deletes the rest.
pub async fn delete_groups_past(conn: &mut AnyConnection, keep: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM errors WHERE id NOT IN
             (SELECT id FROM errors ORDER BY last_seen DESC, id DESC LIMIT $1)",
    )
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes raw occurrences received before `before`.
pub async fn delete_occurrences_before(
    conn: &mut AnyConnection,
    before: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM error_occurrences WHERE received_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

/// Keeps the newest `keep` raw occurrences over all groups (ids only grow: newest = largest).
pub async fn delete_occurrences_past(
    conn: &mut AnyConnection,
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM error_occurrences WHERE id <
             (SELECT id FROM error_occurrences ORDER BY id DESC LIMIT 1 OFFSET $1)",
    )
    .bind(keep - 1)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_rows_number_their_parameters_on() {
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        let group = values(2, 11, |p| {
            format!("({}, 'open', 0, {}, {})", p(1, 6), p(7, 5), p(9, 1))
        });
        assert_eq!(
            group,
            "($1, $2, $3, $4, $5, $6, 'open', 0, $7, $8, $9, $10, $11, $9), \
             ($12, $13, $14, $15, $16, $17, 'open', 0, $18, $19, $20, $21, $22, $20)"
        );
    }
}
