//! The list cache: encoded answers of GET list routes, served again until a change of what
//! they show is announced.
//!
//! Why: a list of 100 rows costs the SQLite driver ~100 thread hand-offs (one per row) plus
//! copies and JSON, 1–2 ms; `/health` costs microseconds (decision 0007, bench/README.md). Lists
//! are read far more often than they change, so the encoded answer is kept and a hit costs a
//! hash lookup and a reference-counted copy of the bytes.
//!
//! What keeps it correct:
//!
//! * **The key is everything that changes the answer**: the path, the query normalised (pairs
//!   sorted by name, empty values dropped — the house `Query` reads `?status=` as absent), and
//!   the caller's rights as the handler states them ([`ListRequest`] + a `rights` number): two
//!   principals whose rights differ never share an entry.
//! * **An entry is only served while its source has not changed**: the handler names a version
//!   source (a domain's `events::Events::version(topic)`, bumped by every emit of the topic,
//!   and every committed change emits after its commit). The version is read *before* the
//!   database is read and stored with the entry; a hit needs the current version to equal it.
//!   So an answer read before a commit is never served after that commit's emit, and the emit
//!   happens before the writer's own answer leaves: the next GET sees the change.
//! * **The route's extractors run first**: authentication, capability, pagination and filter
//!   checks reject a request before the cache is asked, so an unauthenticated or malformed
//!   request never reaches an entry.
//! * **Replicas**: on PostgreSQL several `serve` processes may share the database; a change
//!   committed by another one reaches this one's versions through `LISTEN/NOTIFY`
//!   (`events::replicas`), the moment its notification is heard, and while this process may be
//!   missing notifications (before its first `LISTEN`, after a lost connection) its versions
//!   move on every read, so nothing is served or kept. No TTL: why, docs/decisions/0007
//!   (addendum).
//!
//! Bounded: at most [`MAX_BYTES`] of answers and keys and [`MAX_ENTRIES`] entries; an answer
//! over [`MAX_ENTRY_BYTES`] is not kept. When full, entries are dropped (any, stale or not)
//! until the new one fits.
//!
//! Every answer through [`ListCache::answer`], hit or miss, carries a strong `ETag` (a hash of
//! its bytes) and `Cache-Control: private, no-cache`; a request whose `If-None-Match` names it
//! gets `304 Not Modified` without the body.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Bound on the bytes kept (answers plus keys): 32 MiB holds ~800 lists of 100 projects.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Bound on the number of entries (small answers under many different queries).
pub const MAX_ENTRIES: usize = 4096;
/// An answer larger than this is served but not kept: it would crowd out the rest.
pub const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;

/// What identifies one answer.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    path: String,
    query: String,
    rights: u64,
}

impl Key {
    fn bytes(&self) -> usize {
        self.path.len() + self.query.len() + std::mem::size_of::<Self>()
    }
}

struct Entry {
    /// The source's version read before the answer was read from the database.
    version: u64,
    body: Bytes,
    etag: HeaderValue,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    /// Sum of `body.len() + key.bytes()` over `map`.
    bytes: usize,
}

/// Counters for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

/// The cache; one per server (`AppState.list_cache`).
pub struct ListCache {
    enabled: AtomicBool,
    entries: RwLock<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The parts of a GET list request the cache needs: its path, its normalised query and its
/// `If-None-Match`. An extractor (infallible); the route's own `Query`/`Pagination` still
/// validate the query.
pub struct ListRequest {
    path: String,
    query: String,
    if_none_match: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ListRequest {
            path: parts.uri.path().to_string(),
            query: normalise_query(parts.uri.query().unwrap_or("")),
            if_none_match: parts.headers.get(header::IF_NONE_MATCH).cloned(),
        })
    }
}

/// `b=2&a=1&c=` → `a=1&b=2`: pairs sorted by name (a stable sort: repeated names keep their
/// order), empty values dropped, re-encoded one canonical way.
fn normalise_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A strong validator for `bytes`: its length and a 64-bit SipHash (fixed keys, so equal
/// bytes give equal tags across requests of one build).
fn etag_of(bytes: &[u8]) -> HeaderValue {
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    HeaderValue::from_str(&format!("\"{:016x}-{:x}\"", h.finish(), bytes.len()))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 asks for
/// `If-None-Match`; `*` matches any).
fn matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let want = etag.as_bytes();
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).as_bytes() == want)
}

const CACHE_CONTROL: HeaderValue = HeaderValue::from_static("private, no-cache");

fn respond(req: &ListRequest, body: Bytes, etag: HeaderValue) -> Response {
    if req
        .if_none_match
        .as_ref()
        .is_some_and(|v| matches(v, &etag))
    {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, CACHE_CONTROL)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        body,
    )
        .into_response()
}

impl ListCache {
    /// A cache that keeps answers when `enabled`; when not, every call reads (and still
    /// answers with an `ETag`).
    pub fn new(enabled: bool) -> Self {
        ListCache {
            enabled: AtomicBool::new(enabled),
            entries: RwLock::new(Entries::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Turns keeping answers on or off (the read-path bench compares both in one run); turning
    /// it off also drops what was kept.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        if !on {
            let mut e = self.write();
            e.map.clear();
            e.bytes = 0;
        }
    }

    // The map holds plain data; a panic elsewhere while holding the lock cannot leave it
    // inconsistent (`bytes` is updated with the map in one place), so a poisoned lock is
    // still usable.
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> CacheStats {
        let e = self.read();
        CacheStats {
            entries: e.map.len(),
            bytes: e.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The answer to `req` for a caller with `rights` (any number that differs whenever what
    /// the caller may see differs; the handler's choice), from the cache while `version` (the
    /// source's change counter) still reads what it read when the entry was made; otherwise
    /// from `read`, encoded as JSON and kept.
    pub async fn answer<T, E, Fut>(
        &self,
        req: &ListRequest,
        rights: u64,
        version: impl Fn() -> u64,
        read: impl FnOnce() -> Fut,
    ) -> Result<Response, ApiError>
    where
        T: Serialize,
        E: Into<ApiError>,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let key = Key {
            path: req.path.clone(),
            query: req.query.clone(),
            rights,
        };
        // Taken before the database is read: a change committed after this point moves it.
        let before = version();
        let enabled = self.enabled();
        if enabled {
            let hit = self
                .read()
                .map
                .get(&key)
                .filter(|e| e.version == before)
                .map(|e| (e.body.clone(), e.etag.clone()));
            if let Some((body, etag)) = hit {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(respond(req, body, etag));
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        let value = read().await.map_err(Into::into)?;
        let body = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
        let etag = etag_of(&body);
        if enabled && body.len() <= MAX_ENTRY_BYTES {
            self.keep(key, before, &version, body.clone(), etag.clone());
        }
        Ok(respond(req, body, etag))
    }

    /// Stores an answer read at version `at`, unless a change was announced since (the
    /// answer may predate it; the next request reads again).
    fn keep(&self, key: Key, at: u64, version: &impl Fn() -> u64, body: Bytes, etag: HeaderValue) {
        let size = body.len() + key.bytes();
        let mut e = self.write();
        if version() != at {
            return;
        }
        if let Some(old) = e.map.remove(&key) {
            e.bytes -= old.body.len() + key.bytes();
        }
        while !e.map.is_empty() && (e.bytes + size > MAX_BYTES || e.map.len() >= MAX_ENTRIES) {
            let Some(victim) = e.map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = e.map.remove(&victim) {
                e.bytes -= old.body.len() + victim.bytes();
            }
        }
        e.bytes += size;
        e.map.insert(
            key,
            Entry {
                version: at,
                body,
                etag,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn request(path: &str, query: &str, inm: Option<&str>) -> ListRequest {
        ListRequest {
            path: path.into(),
            query: normalise_query(query),
            if_none_match: inm.map(|v| HeaderValue::from_str(v).unwrap()),
        }
    }

    async fn body(r: Response) -> (StatusCode, Option<String>, Vec<u8>) {
        let status = r.status();
        let etag = r
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap().to_string());
        let b = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, etag, b.to_vec())
    }

    #[test]
    fn queries_normalise_to_one_form() {
        assert_eq!(normalise_query("b=2&a=1&c="), "a=1&b=2");
        assert_eq!(normalise_query("a=1&b=2"), "a=1&b=2");
        assert_eq!(normalise_query("q=a+b&q=c"), "q=a+b&q=c");
        assert_ne!(normalise_query("q=c&q=a"), normalise_query("q=a&q=c"));
        assert_eq!(normalise_query(""), "");
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let tag = HeaderValue::from_static("\"abc-1\"");
        let m = |v: &'static str| matches(&HeaderValue::from_static(v), &tag);
        assert!(m("\"abc-1\""));
        assert!(m("W/\"abc-1\""));
        assert!(m("\"x\", \"abc-1\""));
        assert!(m("*"));
        assert!(!m("\"abc-2\""));
        assert!(!m("abc-1"));
    }

    /// A read that raced with a change is not kept, and an entry stops being served the
    /// moment its source's version moves.
    #[tokio::test]
    async fn entries_live_only_while_their_version_holds() {
        let cache = ListCache::new(true);
        let version = AtomicU64::new(0);
        let v = || version.load(Ordering::SeqCst);
        let req = request("/api/x", "", None);
        let reads = AtomicU64::new(0);
        let read = |n: u64| {
            reads.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ApiError>(vec![n]) }
        };
        let (_, _, b) = body(cache.answer(&req, 0, v, || read(1)).await.unwrap()).await;
        assert_eq!(b, b"[1]");
        // A hit: not read again, the kept bytes.
        let (_, _, b) = body(cache.answer(&req, 0, v, || read(2)).await.unwrap()).await;
        assert_eq!(
            (b.as_slice(), reads.load(Ordering::SeqCst)),
            (&b"[1]"[..], 1)
        );
        // A change: read again.
        version.fetch_add(1, Ordering::SeqCst);
        let (_, _, b) = body(cache.answer(&req, 0, v, || read(3)).await.unwrap()).await;
        assert_eq!(b, b"[3]");
        // A change announced while the read ran: answered, not kept.
        version.fetch_add(1, Ordering::SeqCst);
        let racing = || {
            reads.fetch_add(1, Ordering::SeqCst);
            version.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, ApiError>(vec![4]) }
        };
        let (_, _, b) = body(cache.answer(&req, 0, v, racing).await.unwrap()).await;
        assert_eq!(b, b"[4]");
        let (_, _, b) = body(cache.answer(&req, 0, v, || read(5)).await.unwrap()).await;
        assert_eq!(b, b"[5]");
        // Other rights, other entry.
        let (_, _, b) = body(cache.answer(&req, 1, v, || read(6)).await.unwrap()).await;
        assert_eq!(b, b"[6]");
        let s = cache.stats();
        assert_eq!((s.entries, s.hits), (2, 1));
    }

    #[tokio::test]
    async fn a_matching_etag_gets_304_and_a_disabled_cache_reads_every_time() {
        let cache = ListCache::new(false);
        let v = || 0;
        let (status, etag, _) = body(
            cache
                .answer(&request("/a", "", None), 0, v, || async {
                    Ok::<_, ApiError>("x")
                })
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let etag = etag.unwrap();
        let again = request("/a", "", Some(&etag));
        let (status, same, b) = body(
            cache
                .answer(&again, 0, v, || async { Ok::<_, ApiError>("x") })
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, same.as_deref(), b.len()),
            (StatusCode::NOT_MODIFIED, Some(etag.as_str()), 0)
        );
        let (status, _, b) = body(
            cache
                .answer(&again, 0, v, || async { Ok::<_, ApiError>("y") })
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, b.as_slice()), (StatusCode::OK, &b"\"y\""[..]));
        assert_eq!(cache.stats().entries, 0);
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bounds() {
        let cache = ListCache::new(true);
        let big = "x".repeat(MAX_ENTRY_BYTES - 2); // encoded with its quotes: exactly the limit
        for i in 0..12 {
            let req = request("/a", &format!("q={i}"), None);
            let big = big.clone();
            cache
                .answer(&req, 0, || 0, || async { Ok::<_, ApiError>(big) })
                .await
                .unwrap();
            assert!(cache.stats().bytes <= MAX_BYTES);
        }
        assert!(cache.stats().entries < 12);
        // Too large to keep: served, not kept.
        let huge = "x".repeat(MAX_ENTRY_BYTES);
        let before = cache.stats().entries;
        let r = cache
            .answer(
                &request("/b", "", None),
                0,
                || 0,
                || async { Ok::<_, ApiError>(huge) },
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(cache.stats().entries, before);
        for i in 0..(MAX_ENTRIES + 10) {
            let req = request("/c", &format!("q={i}"), None);
            cache
                .answer(&req, 0, || 0, || async { Ok::<_, ApiError>(1) })
                .await
                .unwrap();
        }
        assert!(cache.stats().entries <= MAX_ENTRIES);
    }
}
