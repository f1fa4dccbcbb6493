//! SQL of login throttling (the protocol is in `auth::throttle`).

type Any = sqlx::Any;
use sqlx::Executor;

// ---- login throttling (the protocol is in throttle.rs) ----

/// The end of `key`'s lockout when it is locked at `now`.
pub async fn throttle_locked_until<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key: &str,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT locked_until FROM login_throttle WHERE throttle_key = $1 AND locked_until > $2",
    )
    .bind(key)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Counts one attempt against `key` and answers the count: in the current window when it
/// started after `window_floor`, else in a new window starting `now`. One statement, so
/// concurrent attempts each get their own count.
pub async fn throttle_count<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key: &str,
    now: &str,
    window_floor: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO login_throttle (throttle_key, failures, window_started_at, locked_until)
         VALUES ($1, 1, $2, NULL)
         ON CONFLICT (throttle_key) DO UPDATE SET
             failures = CASE WHEN login_throttle.window_started_at > $3
                             THEN login_throttle.failures + 1 ELSE 1 END,
             window_started_at = CASE WHEN login_throttle.window_started_at > $3
                             THEN login_throttle.window_started_at ELSE $2 END
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_floor)
    .fetch_one(ex)
    .await
}

/// Gives one counted attempt back (it was the right password).
pub async fn throttle_uncount<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 WHERE throttle_key = $1 AND failures > 0",
    )
    .bind(key)
    .execute(ex)
    .await?;
    Ok(())
}

/// Locks `key` until `until` when its count has reached `max` and it is not locked already;
/// the next window starts when the lockout ends. True when this call set the lock.
pub async fn throttle_lock_at<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key: &str,
    max: i64,
    now: &str,
    until: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE login_throttle SET locked_until = $4, failures = 0, window_started_at = $4
         WHERE throttle_key = $1 AND failures >= $2 AND (locked_until IS NULL OR locked_until <= $3)",
    )
    .bind(key)
    .bind(max)
    .bind(now)
    .bind(until)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn throttle_clear<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(())
}
