//! Login throttling. Three counters per attempt, each counting failures in a window of the
//! lockout's length:
//! * `pair:<user>@<address>`: the lockout (an IPv6 address counts as its /64). One address guessing one user's password is locked
//!   for the lockout period after `max_failures` failures.
//! * `addr:<address>`: an address guessing many usernames is locked after `max_failures × 4`.
//! * `user:<user>`: failures from every address. It never locks (else anyone anywhere could
//!   lock the admin out with five wrong passwords); past `max_failures` each further attempt
//!   for the user waits a little before its password is checked, growing with the count up to
//!   [`MAX_USER_DELAY`], so guessing one password from many addresses is slowed, and the right
//!   password from a fresh address still gets in.
//!
//! Unknown usernames are counted exactly like known ones, so the answers never reveal whether
//! a user exists.
//!
//! An attempt is counted *before* its password is checked ([`begin`]), in one write
//! transaction of single-statement `UPSERT … RETURNING` counts, so parallel guesses each see a
//! distinct count and those past the limit are refused without a check: at most
//! `max_failures` passwords are ever checked per window, however many arrive at once. A right
//! password gives its count back ([`succeeded`]); a wrong one that brings a counter to its
//! limit sets the lockout with one conditional `UPDATE` ([`failed`]).
//!
//! State lives in the database, not in memory: it survives restarts and, with a future
//! PostgreSQL backend, is shared by every replica (the same statements are atomic there).

use super::store;
use crate::db::Db;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};

/// An address may fail this many times more than a single (user, address) pair: it can host
/// many users.
const ADDRESS_FACTOR: u32 = 4;

/// Each user-wide failure past the limit adds this much wait before the next check.
const USER_DELAY_STEP: StdDuration = StdDuration::from_millis(100);

/// The most a right password waits because of other addresses' failures.
pub const MAX_USER_DELAY: StdDuration = StdDuration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: u32,
    pub lockout: Duration,
}

impl Limits {
    /// The configured limits (a lockout is at most a year: times stay in range).
    pub fn of(config: &crate::config::ServeConfig) -> Limits {
        Limits {
            max_failures: config.login_max_failures.max(1),
            lockout: Duration::seconds(
                i64::try_from(config.login_lockout_secs.min(365 * 86_400)).unwrap_or(900),
            ),
        }
    }
}

/// One counter of an attempt: its key and the failures at which it locks (none: never).
#[derive(Debug, Clone)]
struct Counter {
    key: String,
    locks_at: Option<i64>,
}

/// The counters one attempt is counted against.
#[derive(Debug, Clone)]
pub struct Keys {
    user: String,
    pair: Counter,
    addr: Option<Counter>,
}

pub fn keys(username: &str, addr: Option<&str>, limits: Limits) -> Keys {
    let user = username.to_lowercase();
    let addr = addr.map(crate::http::extract::ClientAddr::limit_key);
    let addr = addr.as_deref();
    let max = i64::from(limits.max_failures.max(1));
    Keys {
        pair: Counter {
            key: format!("pair:{user}@{}", addr.unwrap_or("-")),
            locks_at: Some(max),
        },
        addr: addr.map(|a| Counter {
            key: format!("addr:{a}"),
            locks_at: Some(max * i64::from(ADDRESS_FACTOR)),
        }),
        user: format!("user:{user}"),
    }
}

impl Keys {
    fn locking(&self) -> impl Iterator<Item = &Counter> {
        std::iter::once(&self.pair).chain(self.addr.as_ref())
    }
}

/// A counted attempt: check the password (after `delay`), then report [`succeeded`] or
/// [`failed`].
#[derive(Debug)]
pub struct Attempt {
    keys: Keys,
    /// How long to wait before checking the password (the user-wide slow-down).
    pub delay: StdDuration,
}

/// Why an attempt may not check a password: seconds until it may try again.
#[derive(Debug, Clone, Copy)]
pub struct Locked(pub u64);

/// The wait before checking a password for a user with `failures` failures (this attempt
/// included) from all addresses in the window.
fn user_delay(failures: i64, max_failures: u32) -> StdDuration {
    let over = failures - i64::from(max_failures);
    if over <= 0 {
        return StdDuration::ZERO;
    }
    USER_DELAY_STEP
        .saturating_mul(u32::try_from(over).unwrap_or(u32::MAX))
        .min(MAX_USER_DELAY)
}

fn secs_until(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    (until - now).whole_seconds().max(1) as u64
}

/// Counts an attempt against its counters, or refuses it: when one is locked, or when the
/// attempts already counted (failed or still being checked) reach its limit.
pub async fn begin(
    db: &Db,
    keys: Keys,
    limits: Limits,
    now: OffsetDateTime,
) -> Result<Result<Attempt, Locked>, sqlx::Error> {
    let now_s = crate::clock::format(now);
    let window_floor = crate::clock::format(now - limits.lockout);
    let mut tx = crate::db::begin_write(db).await?;
    let mut longest: Option<u64> = None;
    for c in keys.locking() {
        if let Some(until) = store::throttle_locked_until(&mut *tx, &c.key, &now_s)
            .await?
            .as_deref()
            .and_then(crate::clock::parse)
        {
            let secs = secs_until(until, now);
            longest = Some(longest.map_or(secs, |l| l.max(secs)));
        }
    }
    if let Some(secs) = longest {
        return Ok(Err(Locked(secs)));
    }
    for c in keys.locking() {
        let counted = store::throttle_count(&mut *tx, &c.key, &now_s, &window_floor).await?;
        if c.locks_at.is_some_and(|max| counted > max) {
            // Others are being checked right now and fill the allowance: nothing is counted.
            tx.rollback().await?;
            return Ok(Err(Locked(limits.lockout.whole_seconds().max(1) as u64)));
        }
    }
    let user_failures = store::throttle_count(&mut *tx, &keys.user, &now_s, &window_floor).await?;
    tx.commit().await?;
    Ok(Ok(Attempt {
        delay: user_delay(user_failures, limits.max_failures),
        keys,
    }))
}

/// A wrong password: its count stays; a counter at its limit is locked for the lockout period
/// (from now). Returns the lockout when this failure set one.
pub async fn failed(
    db: &Db,
    attempt: Attempt,
    limits: Limits,
    now: OffsetDateTime,
) -> Result<Option<u64>, sqlx::Error> {
    let now_s = crate::clock::format(now);
    let until = crate::clock::format(now + limits.lockout);
    let mut tx = crate::db::begin_write(db).await?;
    let mut locked = None;
    for c in attempt.keys.locking() {
        let Some(max) = c.locks_at else { continue };
        if store::throttle_lock_at(&mut *tx, &c.key, max, &now_s, &until).await? {
            locked = Some(limits.lockout.whole_seconds().max(1) as u64);
        }
    }
    tx.commit().await?;
    Ok(locked)
}

/// The right password: the user's counters start over, and the address gives back this
/// attempt's count (a working login from an address must not reset the count of guesses made
/// from it).
pub async fn succeeded(db: &Db, attempt: Attempt) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    store::throttle_clear(&mut *tx, &attempt.keys.user).await?;
    store::throttle_clear(&mut *tx, &attempt.keys.pair.key).await?;
    if let Some(a) = &attempt.keys.addr {
        store::throttle_uncount(&mut *tx, &a.key).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_wide_delay_grows_past_the_limit_and_is_bounded() {
        assert_eq!(user_delay(5, 5), StdDuration::ZERO);
        assert_eq!(user_delay(6, 5), USER_DELAY_STEP);
        assert_eq!(user_delay(8, 5), USER_DELAY_STEP * 3);
        assert_eq!(user_delay(10_000, 5), MAX_USER_DELAY);
    }

    #[test]
    fn keys_are_per_user_and_address() {
        let l = Limits {
            max_failures: 5,
            lockout: Duration::seconds(900),
        };
        let k = keys("Admin", Some("192.0.2.1"), l);
        assert_eq!(k.pair.key, "pair:admin@192.0.2.1");
        assert_eq!(k.pair.locks_at, Some(5));
        assert_eq!(k.addr.as_ref().map(|a| a.locks_at), Some(Some(20)));
        assert_eq!(k.user, "user:admin");
    }
}
