//! A short-lived, in-process cache of bearer-token lookups.
//!
//! Why: every API request authenticated by a token ran `store::find_token` (a SELECT joining
//! `api_tokens` and `users`). Workers send two requests per task (claim, complete), so on the
//! task queue's hot path that lookup was a quarter of all SQL statements (bench/README.md).
//!
//! What keeps it correct:
//!
//! * an entry lives at most [`TTL`] (real time), and the token's own `expires_at` is still
//!   checked against the server's clock on every hit;
//! * every change in this process that can make a cached answer wrong — a token revoked, a
//!   user disabled, deleted or given another role, the env admin refreshed — calls
//!   [`TokenCache::invalidate`] *after* its transaction commits, which empties the cache;
//! * a lookup that raced with such a change is not stored: [`TokenCache::put`] only stores when no
//!   invalidation happened since the caller took its [`TokenCache::generation`] before reading the
//!   database, so a row read before a revocation committed can never be cached after it.
//!
//! Caveat (replicas): a change made by *another* process on the same database (a second
//! server replica) is not seen here until the entry's TTL runs out, so a revoked token may
//! keep working on this replica for up to [`TTL`]. The CLI goes through the HTTP API, so it
//! does invalidate.
//!
//! One cache per server, held in `AppState` (no process-wide state), keyed by the token's keyed
//! hash (`secret_hash`).

use super::store::TokenAuthRow;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a looked-up token is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(5);
/// Bound on memory; when full, expired entries are dropped, and if that is not enough, all.
const MAX_ENTRIES: usize = 4096;

struct Entry {
    row: TokenAuthRow,
    fetched: Instant,
}

#[derive(Default)]
struct Cache {
    /// Bumped by every [`TokenCache::invalidate`].
    generation: u64,
    entries: HashMap<String, Entry>,
}

/// The cache itself; cheap to share behind the `Arc` in `AppState`.
#[derive(Default)]
pub struct TokenCache {
    inner: Mutex<Cache>,
}

impl TokenCache {
    fn cache(&self) -> MutexGuard<'_, Cache> {
        // The map holds plain data; a panic elsewhere while holding the lock cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take this *before* reading the token from the database and pass it to [`TokenCache::put`].
    pub fn generation(&self) -> u64 {
        self.cache().generation
    }

    /// The cached row for `hash`, if fresh and the token has not expired by `now` (RFC 3339
    /// text, compared as the SQL does).
    pub fn get(&self, hash: &str, now: &str) -> Option<TokenAuthRow> {
        let c = self.cache();
        let e = c.entries.get(hash)?;
        let fresh =
            e.fetched.elapsed() < TTL && e.row.expires_at.as_deref().is_none_or(|x| x > now);
        fresh.then(|| e.row.clone())
    }

    /// Stores a row read from the database, unless an invalidation happened since `generation`.
    pub fn put(&self, hash: &str, row: TokenAuthRow, generation: u64) {
        let mut c = self.cache();
        if c.generation != generation {
            return;
        }
        if c.entries.len() >= MAX_ENTRIES {
            c.entries.retain(|_, e| e.fetched.elapsed() < TTL);
            if c.entries.len() >= MAX_ENTRIES {
                c.entries.clear();
            }
        }
        c.entries.insert(
            hash.to_string(),
            Entry {
                row,
                fetched: Instant::now(),
            },
        );
    }

    /// Records that the token's `last_used_at` was just written, so hits do not write it again.
    pub fn touched(&self, hash: &str, at: &str) {
        if let Some(e) = self.cache().entries.get_mut(hash) {
            e.row.last_used_at = Some(at.to_string());
        }
    }

    /// Forgets every cached token. Call after committing any change to tokens or users.
    pub fn invalidate(&self) {
        let mut c = self.cache();
        c.generation = c.generation.wrapping_add(1);
        c.entries.clear();
    }
}
