//! In-process caches of credential lookups: bearer tokens ([`TokenCache`]) and session
//! cookies ([`SessionCache`]), one of each per server in `AppState`.
//!
//! Why: every API request authenticated by a token ran `store::find_token` (a SELECT joining
//! `api_tokens` and `users`); workers send two requests per task (claim, complete), so on the
//! task queue's hot path that lookup was a quarter of all SQL statements (bench/README.md).
//! Every request with a session cookie ran `store::find_session` the same way: the read
//! path's cost for the dashboard (decision 0007).
//!
//! What keeps them correct, on one server and across replicas:
//!
//! * every entry records the credential version ([`Changes::version`]) read *before* its row
//!   was read from the database, and is served only while that version is unchanged;
//!   [`CredentialCache::put`] does not even store a row whose read raced with a change;
//! * every change that can make a cached answer wrong — a token revoked, a session ended
//!   (logout, password change, step-up), a user disabled, deleted or given another role, the
//!   env admin refreshed — calls [`CredentialCache::invalidate`] *after* its transaction
//!   commits. That announces the change ([`Changes::announce`]): the version moves here at
//!   once, and on PostgreSQL in every other replica as soon as it hears the notification
//!   (`events::replicas`; while a replica may be missing notifications its versions move on
//!   every read, so its caches answer nothing). No time window is part of the rule;
//! * a hit still checks the credential's own expiry (`expires_at`) against the server's clock;
//!   an expired session entry is a miss, not a refusal: another replica may have slid it.
//!   Entries also age out after [`TTL`]: a bound for rows changed by hand in SQL, not part of
//!   the rule above.
//!
//! Keyed by the secret's keyed hash (`secret_hash`); no process-wide state.

use super::store::{SessionRow, TokenAuthRow};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest an entry is trusted without asking the database again (see the module doc: a
/// bound for hand-made SQL changes, which announce nothing; server changes need no wait).
pub const TTL: Duration = Duration::from_secs(60);
/// Bound on memory; when full, aged entries are dropped, and if that is not enough, all.
const MAX_ENTRIES: usize = 4096;

/// Where the caches learn that credentials changed, and how they announce a change. The
/// server's comes from its events (`Events::credential_changes`: the `access` topic, which
/// crosses replicas); [`Changes::default`] is a counter of its own, for one process.
#[derive(Clone)]
pub struct Changes {
    version: Arc<dyn Fn() -> u64 + Send + Sync>,
    announce: Arc<dyn Fn() + Send + Sync>,
}

impl Changes {
    /// `version` must move on every `announce`, here and (for replicas) everywhere else.
    pub fn new(
        version: Arc<dyn Fn() -> u64 + Send + Sync>,
        announce: Arc<dyn Fn() + Send + Sync>,
    ) -> Changes {
        Changes { version, announce }
    }

    pub fn version(&self) -> u64 {
        (self.version)()
    }

    pub fn announce(&self) {
        (self.announce)()
    }
}

impl Default for Changes {
    fn default() -> Changes {
        let counter = Arc::new(AtomicU64::new(0));
        let read = counter.clone();
        Changes::new(
            Arc::new(move || read.load(Ordering::SeqCst)),
            Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }
}

/// A cached credential row: what a hit must still check by itself.
pub trait Credential: Clone {
    /// When it stops working (RFC 3339 text), if ever.
    fn expires_at(&self) -> Option<&str>;
}

impl Credential for TokenAuthRow {
    fn expires_at(&self) -> Option<&str> {
        self.expires_at.as_deref()
    }
}

impl Credential for SessionRow {
    fn expires_at(&self) -> Option<&str> {
        Some(&self.expires_at)
    }
}

struct Entry<R> {
    row: R,
    /// The credential version read before `row` was read.
    version: u64,
    fetched: Instant,
}

/// Bearer tokens by their hash.
pub type TokenCache = CredentialCache<TokenAuthRow>;
/// Session cookies by their hash.
pub type SessionCache = CredentialCache<SessionRow>;

/// The cache itself; cheap to share behind the `Arc` in `AppState`.
pub struct CredentialCache<R> {
    changes: Changes,
    entries: Mutex<HashMap<String, Entry<R>>>,
    /// Off: every lookup reads the database (the read-path bench compares both in one run).
    enabled: AtomicBool,
}

impl<R: Credential> Default for CredentialCache<R> {
    fn default() -> Self {
        CredentialCache::new(Changes::default())
    }
}

impl<R: Credential> CredentialCache<R> {
    pub fn new(changes: Changes) -> Self {
        CredentialCache {
            changes,
            entries: Mutex::default(),
            enabled: AtomicBool::new(true),
        }
    }

    /// Turns the cache on or off (on by default); off also forgets what it held.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
        if !on {
            self.entries().clear();
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry<R>>> {
        // The map holds plain data; a panic elsewhere while holding the lock cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take this *before* reading the credential from the database and pass it to
    /// [`put`](Self::put).
    pub fn generation(&self) -> u64 {
        self.changes.version()
    }

    /// The cached row for `hash`, if no credential changed since it was read, it is younger
    /// than [`TTL`], and it has not expired by `now` (RFC 3339 text, compared as the SQL does).
    pub fn get(&self, hash: &str, now: &str) -> Option<R> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let version = self.changes.version();
        let c = self.entries();
        let e = c.get(hash)?;
        let fresh = e.version == version
            && e.fetched.elapsed() < TTL
            && e.row.expires_at().is_none_or(|x| x > now);
        fresh.then(|| e.row.clone())
    }

    /// Stores a row read from the database, unless a credential changed since `generation`.
    pub fn put(&self, hash: &str, row: R, generation: u64) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut c = self.entries();
        // Read under the lock: an announcement after this line is after the insert too, and
        // the entry's version then no longer matches.
        if self.changes.version() != generation {
            return;
        }
        if c.len() >= MAX_ENTRIES {
            c.retain(|_, e| e.version == generation && e.fetched.elapsed() < TTL);
            if c.len() >= MAX_ENTRIES {
                c.clear();
            }
        }
        c.insert(
            hash.to_string(),
            Entry {
                row,
                version: generation,
                fetched: Instant::now(),
            },
        );
    }

    /// Applies a write this server just made to the row (a token's `last_used_at`, a
    /// session's `last_seen_at` and expiry), so hits do not write it again.
    pub fn update(&self, hash: &str, change: impl FnOnce(&mut R)) {
        if let Some(e) = self.entries().get_mut(hash) {
            change(&mut e.row);
        }
    }

    /// Forgets every cached credential, here and in every other replica. Call after
    /// committing any change to tokens, sessions or users.
    pub fn invalidate(&self) {
        self.changes.announce();
        self.entries().clear();
    }
}

impl TokenCache {
    /// Records that the token's `last_used_at` was just written.
    pub fn touched(&self, hash: &str, at: &str) {
        self.update(hash, |row| row.last_used_at = Some(at.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: &str) -> SessionRow {
        SessionRow {
            session_id: 1,
            csrf_token: "c".into(),
            authenticated_at: "2026-12-06T12:00:00.000000Z".into(),
            last_seen_at: "2026-12-06T12:00:00.000000Z".into(),
            expires_at: expires_at.into(),
            user_id: 1,
            username: "a".into(),
            role: "admin".into(),
        }
    }

    const NOW: &str = "2026-12-06T12:30:00.000000Z";
    const LATER: &str = "2026-12-06T13:00:00.000000Z";

    #[test]
    fn an_announced_change_drops_every_entry_of_every_cache_sharing_it() {
        let changes = Changes::default();
        let (a, b) = (
            SessionCache::new(changes.clone()),
            SessionCache::new(changes.clone()),
        );
        a.put("h", session(LATER), a.generation());
        b.put("h", session(LATER), b.generation());
        assert!(a.get("h", NOW).is_some() && b.get("h", NOW).is_some());
        a.invalidate();
        assert!(a.get("h", NOW).is_none());
        assert!(b.get("h", NOW).is_none(), "the other cache heard it too");
        // The version moved by itself (another replica's change): the same.
        b.put("h", session(LATER), b.generation());
        changes.announce();
        assert!(b.get("h", NOW).is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = TokenCache::default();
        let generation = cache.generation();
        cache.invalidate(); // committed while the row was being read
        let row = TokenAuthRow {
            token_id: 1,
            scope: "read".into(),
            last_used_at: None,
            user_id: 1,
            username: "a".into(),
            role: "admin".into(),
            expires_at: None,
            session_node: None,
            session_name: None,
        };
        cache.put("h", row.clone(), generation);
        assert!(cache.get("h", NOW).is_none());
        cache.put("h", row, cache.generation());
        cache.touched("h", NOW);
        assert_eq!(
            cache.get("h", NOW).unwrap().last_used_at.as_deref(),
            Some(NOW)
        );
    }

    #[test]
    fn an_expired_session_is_a_miss() {
        let cache = SessionCache::default();
        cache.put("h", session(NOW), cache.generation());
        assert!(cache.get("h", "2026-12-06T12:29:59.000000Z").is_some());
        assert!(cache.get("h", NOW).is_none());
        // Slid by this server: a hit again.
        cache.update("h", |r| r.expires_at = LATER.into());
        assert!(cache.get("h", NOW).is_some());
    }
}
