//! Login throttling: failures are counted per submitted username and per client address in a
//! window; at the limit the key is locked for the lockout period. Unknown usernames are counted
//! exactly like known ones, so the answers never reveal whether a user exists. State lives in
//! the database, so it survives restarts and is shared by replicas.

use super::store::{self, ThrottleRow};
use crate::clock;
use sqlx::AnyConnection;
use time::{Duration, OffsetDateTime};

/// An address may fail this many times more than a single username (it can host many users).
const ADDRESS_FACTOR: u32 = 4;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub lockout: Duration,
}

pub fn keys(username: &str, addr: Option<&str>) -> Vec<(String, u32)> {
    let mut k = vec![(format!("user:{}", username.to_lowercase()), 1)];
    if let Some(a) = addr {
        k.push((format!("addr:{a}"), ADDRESS_FACTOR));
    }
    k
}

/// Seconds until the lockout on any of `keys` ends, if one is locked now.
pub async fn locked_for(
    conn: &mut AnyConnection,
    keys: &[(String, u32)],
    now: OffsetDateTime,
) -> Result<Option<u64>, sqlx::Error> {
    let mut longest: Option<u64> = None;
    for (key, _) in keys {
        if let Some(row) = store::throttle_get(&mut *conn, key).await? {
            if let Some(until) = row.locked_until.as_deref().and_then(clock::parse) {
                if until > now {
                    let secs = (until - now).whole_seconds().max(1) as u64;
                    longest = Some(longest.map_or(secs, |l| l.max(secs)));
                }
            }
        }
    }
    Ok(longest)
}

/// Counts a failed attempt against every key; returns the lockout if this failure caused one.
pub async fn record_failure(
    conn: &mut AnyConnection,
    keys: &[(String, u32)],
    limits: Limits,
    now: OffsetDateTime,
) -> Result<Option<u64>, sqlx::Error> {
    let mut locked = None;
    for (key, factor) in keys {
        let prev = store::throttle_get(&mut *conn, key).await?;
        let in_window = prev
            .as_ref()
            .and_then(|r| clock::parse(&r.window_started_at));
        let mut row = match (prev, in_window) {
            (Some(r), Some(start)) if now - start < limits.lockout => r,
            _ => ThrottleRow {
                failures: 0,
                window_started_at: clock::format(now),
                locked_until: None,
            },
        };
        row.failures += 1;
        if row.failures >= i64::from(limits.max_failures * factor) {
            row.locked_until = Some(clock::format(now + limits.lockout));
            // Start a fresh window when the lockout ends.
            row.failures = 0;
            row.window_started_at = clock::format(now + limits.lockout);
            locked = Some(limits.lockout.whole_seconds().max(1) as u64);
        }
        store::throttle_put(&mut *conn, key, &row).await?;
    }
    Ok(locked)
}

/// A successful login clears the username's count (not the address's: a working login from
/// an address must not reset the count of guesses made from it).
pub async fn record_success(conn: &mut AnyConnection, username: &str) -> Result<(), sqlx::Error> {
    store::throttle_clear(conn, &format!("user:{}", username.to_lowercase())).await
}
