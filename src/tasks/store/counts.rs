//! Task counts by status, kept by the database (migration 0021) so reading them never counts
//! the queue: `task_status_counts` holds a count per status, and on PostgreSQL
//! `task_status_deltas` holds the signed deltas (+1 entered, -1 left) that the triggers
//! inserted since the last [`fold_status_deltas`]. On SQLite the triggers update the counters
//! themselves (one writer at a time) and the delta table stays empty.
//!
//! Exactness: the triggers fire inside every statement that inserts, deletes or changes the
//! status of a task, so a count moves in the transaction that moves the task. The reader sums
//! counters and unfolded deltas in one statement (one snapshot on PostgreSQL); a fold deletes
//! the committed deltas and adds them to the counters in one statement too. Either the reader's
//! snapshot has the fold or it has not; in both cases each delta is counted once.

use super::*;
use crate::db::{Backend, Db};
use sqlx::{Any, Executor};

/// The counts, as the direct `SELECT status, COUNT(*) FROM task_queue GROUP BY status` would
/// give them, from at most six counter rows and the deltas not yet folded (at most a second's
/// transitions: [`FOLD_EVERY`]).
pub async fn status_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<StatusCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, CAST(SUM(n) AS BIGINT) FROM (
             SELECT status, n FROM task_status_counts
             UNION ALL SELECT status, n FROM task_status_deltas) c
         GROUP BY status",
    )
    .fetch_all(ex)
    .await?;
    let mut c = StatusCounts::default();
    for (s, n) in rows {
        if let Ok(s) = s.parse() {
            c.add(s, n);
        }
    }
    Ok(c)
}

/// How often the leader folds the deltas into the counters (PostgreSQL). What a reader sums
/// besides the six counter rows is what the queue did since the last fold: about five delta
/// rows per task (enqueue 1, claim 2, finish 2), so at 10,000 tasks/s at most ~50,000 rows.
pub const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Moves the committed deltas into the counters, in one statement: the `DELETE … RETURNING`
/// takes only the rows committed when it runs (a transaction still inserting deltas keeps its
/// rows for the next fold) and the counters change in the same commit. Two folds at once (a
/// second replica that believes it leads) are safe: the second waits on the rows the first
/// deletes and skips them once they are gone. Returns how many statuses moved. On SQLite
/// there is nothing to fold.
pub async fn fold_status_deltas(db: &Db) -> Result<u64, sqlx::Error> {
    if Backend::of_pool(db) == Backend::Sqlite {
        return Ok(0);
    }
    let done = sqlx::query(
        "WITH folded AS (DELETE FROM task_status_deltas RETURNING status, n),
              sums AS (SELECT status, SUM(n) AS n FROM folded GROUP BY status)
         INSERT INTO task_status_counts (status, n)
         SELECT status, n FROM sums ORDER BY status
         ON CONFLICT (status) DO UPDATE SET n = task_status_counts.n + EXCLUDED.n",
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
