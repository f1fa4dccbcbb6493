//! Extractors that put authentication on every route where a reviewer can see it:
//!
//! * `Authed<C>` for JSON routes: 401/403 as JSON; checks CSRF on cookie-authenticated changes.
//! * `PageAuthed<C>` for dashboard GETs: redirects to /login when signed out.
//! * `PageForm<C, T>` for dashboard form posts: as `PageAuthed`, plus the form's `csrf_token`.
//!
//! `C` names the [`Capability`] the route needs (`Read`, `Write`, `Admin`, ...).

use super::{store, AuthVia, BoundSession, Capability, Identity, Role, Scope};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::parse_urlencoded;
use crate::web::PageError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use time::Duration;

pub const SESSION_COOKIE: &str = "architect_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf_token";
/// A token's last-used time is written at most this often (seconds): tokens drive hot paths.
const TOKEN_TOUCH_EVERY: i64 = 60;
/// A session's activity (`last_seen_at`, and the expiry it slides) is written at most this
/// often (seconds), and at most every tenth of the session timeout: a browser's reads then
/// cost no write. The price: a session ends between `timeout - interval` and `timeout`
/// after its last request, instead of exactly `timeout` (at most 60 s early with the default
/// hour). "Stay logged in" (`POST /api/session/extend`) always writes.
const SESSION_TOUCH_EVERY: i64 = 60;

/// Marker types naming a capability at the type level.
pub trait Requirement: Send + Sync + 'static {
    const CAP: Capability;
}
macro_rules! requirement {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Requirement for $name { const CAP: Capability = Capability::$name; }
    )*};
}
requirement!(Read, Write, Admin, AgentOps, WorkerOps, Ingest, PaneRead, Exec, Llm);

#[derive(Clone)]
struct Resolved(Option<Identity>);

fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// True for requests that only read: they never need a CSRF token.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Header a page's own script sends on requests it makes by itself (live refreshes): they
/// read, and must not count as the person being active.
pub const PASSIVE_HEADER: &str = "x-architect-passive";

/// True for reads that must not extend the session's inactivity timeout: the session's own
/// status (`GET /api/session`), the live event stream, the login page (which bounces a still
/// signed-in browser onwards) and a page's automatic refreshes ([`PASSIVE_HEADER`]). Without
/// this an open tab would never time out.
fn is_passive(parts: &Parts) -> bool {
    parts.method == Method::GET
        && (matches!(parts.uri.path(), "/api/session" | "/api/events" | "/login")
            || parts.headers.contains_key(PASSIVE_HEADER))
}

/// Whether the credentials of a request (its bearer token or session cookie) are still good
/// now, checked in the database without touching anything: long-lived streams call this now
/// and then and end when the session expired, the token was revoked or the user disabled.
pub async fn still_signed_in(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let now = state.clock.now_str();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let found = if let Some(token) = bearer {
        let hash = super::secret_hash(&state.secret_key, token);
        store::find_token(&state.db, &hash, &now)
            .await
            .map(|r| r.is_some())
    } else {
        match cookie_value(headers, SESSION_COOKIE) {
            Some(cookie) => {
                let hash = super::secret_hash(&state.secret_key, cookie);
                store::find_session(&state.db, &hash, &now)
                    .await
                    .map(|r| r.is_some())
            }
            None => Ok(false),
        }
    };
    // A database hiccup is not a sign-out: the next check decides.
    found.unwrap_or(true)
}

/// Whether a session last written at `last_seen` needs writing at `now` (see
/// [`SESSION_TOUCH_EVERY`]): an unreadable time counts as stale.
fn session_touch_due(
    last_seen: &str,
    now: time::OffsetDateTime,
    timeout: Duration,
    explicit: bool,
) -> bool {
    let every = Duration::seconds(SESSION_TOUCH_EVERY).min(timeout / 10);
    explicit || crate::clock::parse(last_seen).is_none_or(|t| now - t >= every)
}

/// Finds who is calling (bearer token first, then session cookie), once per request.
/// Slides the session's inactivity timeout, writing it at most once a minute
/// ([`SESSION_TOUCH_EVERY`]), except for passive reads ([`is_passive`]). Reaches only the
/// auth domain's state: the extractors pass the router's `AppState`, the LLM gateway its
/// `LlmState.auth`.
pub async fn resolve<S>(parts: &mut Parts, state: &S) -> Result<Option<Identity>, ApiError>
where
    super::AuthState: axum::extract::FromRef<S>,
{
    if let Some(Resolved(id)) = parts.extensions.get::<Resolved>() {
        return Ok(id.clone());
    }
    let state = &<super::AuthState as axum::extract::FromRef<S>>::from_ref(state);
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let identity = if let Some(token) = bearer(parts) {
        let hash = super::secret_hash(&state.secret_key, token);
        // Hot path (workers send two requests per task): a fresh cached lookup skips the
        // SELECT. See token_cache for how revocations and user changes stay effective.
        let found = match state.token_cache.get(&hash, &now_s) {
            Some(row) => Some(row),
            None => {
                let generation = state.token_cache.generation();
                let row = store::find_token(&state.db, &hash, &now_s).await?;
                if let Some(row) = &row {
                    state.token_cache.put(&hash, row.clone(), generation);
                }
                row
            }
        };
        match found {
            Some(row) => {
                let stale = row
                    .last_used_at
                    .as_deref()
                    .and_then(crate::clock::parse)
                    .is_none_or(|t| now - t > Duration::seconds(TOKEN_TOUCH_EVERY));
                if stale {
                    store::touch_token(&state.db, row.token_id, &now_s).await?;
                    state.token_cache.touched(&hash, &now_s);
                }
                Some(Identity {
                    user_id: row.user_id,
                    username: row.username,
                    role: row.role.parse().unwrap_or(Role::Viewer),
                    via: AuthVia::Token {
                        token_id: row.token_id,
                        scope: row.scope.parse().unwrap_or(Scope::Read),
                        session: match (row.session_node, row.session_name) {
                            (Some(node), Some(name)) => Some(BoundSession { node, name }),
                            _ => None,
                        },
                    },
                })
            }
            None => None,
        }
    } else if let Some(cookie) = cookie_value(&parts.headers, SESSION_COOKIE) {
        let hash = super::secret_hash(&state.secret_key, cookie);
        // The read path of every dashboard request: a cached session skips the SELECT. See
        // token_cache for how logouts, password and user changes stay effective everywhere.
        let found = match state.session_cache.get(&hash, &now_s) {
            Some(row) => Some(row),
            None => {
                let generation = state.session_cache.generation();
                let row = store::find_session(&state.db, &hash, &now_s).await?;
                if let Some(row) = &row {
                    state.session_cache.put(&hash, row.clone(), generation);
                }
                row
            }
        };
        match found {
            Some(row) => {
                let explicit = parts.uri.path() == "/api/session/extend";
                let timeout = state.session_timeout();
                let expires_at = if is_passive(parts)
                    || !session_touch_due(&row.last_seen_at, now, timeout, explicit)
                {
                    row.expires_at.clone()
                } else {
                    let e = crate::clock::format(now + timeout);
                    store::touch_session(&state.db, row.session_id, &now_s, &e).await?;
                    // Hits now count from this write, as the next read of the row would.
                    state.session_cache.update(&hash, |r| {
                        r.last_seen_at = now_s.clone();
                        r.expires_at = e.clone();
                    });
                    e
                };
                Some(Identity {
                    user_id: row.user_id,
                    username: row.username,
                    role: row.role.parse().unwrap_or(Role::Viewer),
                    via: AuthVia::Session {
                        session_id: row.session_id,
                        csrf_token: row.csrf_token,
                        expires_at,
                        authenticated_at: row.authenticated_at,
                    },
                })
            }
            None => None,
        }
    } else {
        None
    };
    parts.extensions.insert(Resolved(identity.clone()));
    Ok(identity)
}

fn csrf_ok(identity: &Identity, presented: Option<&str>) -> bool {
    match identity.csrf_token() {
        None => true, // bearer tokens are not sent by browsers on their own: no CSRF risk
        Some(expected) => presented.is_some_and(|p| super::same_secret(p, expected)),
    }
}

fn header_csrf(parts: &Parts) -> Option<&str> {
    parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

fn missing_capability(identity: &Identity, cap: Capability) -> ApiError {
    let why = match &identity.via {
        AuthVia::Token {
            session: Some(b), ..
        } => format!(
            "this is the token of agent session '{}' on '{}': it acts for that session only",
            b.name, b.node
        ),
        AuthVia::Token { scope, .. } if !scope.grants(cap) => {
            let scopes: Vec<&str> = super::Scope::ALL
                .iter()
                .filter(|s| s.grants(cap))
                .map(|s| s.as_str())
                .collect();
            format!(
                "this token's scope '{scope}' does not allow this request (it needs {cap:?}, \
                 which scope {} grants)",
                scopes.join(" or ")
            )
        }
        _ => {
            let roles: Vec<&str> = super::Role::ALL
                .iter()
                .filter(|r| r.grants(cap))
                .map(|r| r.as_str())
                .collect();
            format!(
                "your role '{}' does not allow this request (it needs {cap:?}, which role {} \
                 has)",
                identity.role,
                roles.join(" or ")
            )
        }
    };
    ApiError::forbidden(why)
}

/// An authenticated caller with capability `C`, for JSON routes.
pub struct Authed<C: Requirement>(pub Identity, pub PhantomData<C>);

impl<C: Requirement> Authed<C> {
    pub fn identity(&self) -> &Identity {
        &self.0
    }
}

impl<C: Requirement> FromRequestParts<AppState> for Authed<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = resolve(parts, state)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if !identity.can(C::CAP) {
            return Err(missing_capability(&identity, C::CAP));
        }
        if !is_safe(&parts.method) && !csrf_ok(&identity, header_csrf(parts)) {
            return Err(ApiError::csrf_failed());
        }
        Ok(Authed(identity, PhantomData))
    }
}

/// A caller acting for one agent session, or a principal with capability `C` acting for any.
///
/// Routes that concern a session (hook reports, its pane, prompts it queued) take this: a
/// session's own token ([`BoundSession`]) is let through *only* as `Session`, and the handler
/// confines it to that session; anything else needs `C` as with [`Authed`].
pub enum SessionOr<C: Requirement> {
    Session(Identity, BoundSession),
    Principal(Identity, PhantomData<C>),
}

impl<C: Requirement> SessionOr<C> {
    pub fn identity(&self) -> &Identity {
        match self {
            SessionOr::Session(i, _) | SessionOr::Principal(i, _) => i,
        }
    }

    /// The session a session token acts for; `None` for other principals.
    pub fn session(&self) -> Option<&BoundSession> {
        match self {
            SessionOr::Session(_, b) => Some(b),
            SessionOr::Principal(..) => None,
        }
    }

    /// Refuses a session token asking about another session than its own.
    pub fn confine(&self, node: &str, name: &str) -> Result<(), ApiError> {
        match self.session() {
            Some(b) if b.node != node || b.name != name => Err(ApiError::forbidden(format!(
                "this is the token of agent session '{}' on '{}': it acts for that session only",
                b.name, b.node
            ))),
            _ => Ok(()),
        }
    }
}

impl<C: Requirement> FromRequestParts<AppState> for SessionOr<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let identity = resolve(parts, state)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if let Some(b) = identity.bound_session().cloned() {
            return Ok(SessionOr::Session(identity, b));
        }
        let Authed(identity, _) = Authed::<C>::from_request_parts(parts, state).await?;
        Ok(SessionOr::Principal(identity, PhantomData))
    }
}

/// An authenticated person with capability `C`, for dashboard pages (GET).
pub struct PageAuthed<C: Requirement>(pub Identity, pub PhantomData<C>);

async fn page_identity<C: Requirement>(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Identity, PageError> {
    let identity = resolve(parts, state).await?.ok_or_else(|| {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
        PageError::Redirect(format!("/login?{q}"))
    })?;
    if !identity.can(C::CAP) {
        return Err(missing_capability(&identity, C::CAP).into());
    }
    Ok(identity)
}

impl<C: Requirement> FromRequestParts<AppState> for PageAuthed<C> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let identity = page_identity::<C>(parts, state).await?;
        // A page handler on a state-changing route must use PageForm (which checks the form
        // field); here only the header is accepted.
        if !is_safe(&parts.method) && !csrf_ok(&identity, header_csrf(parts)) {
            return Err(ApiError::csrf_failed().into());
        }
        Ok(PageAuthed(identity, PhantomData))
    }
}

/// A dashboard form post by a person with capability `C`; the form must carry the session's
/// `csrf_token` (or the `X-CSRF-Token` header).
pub struct PageForm<C: Requirement, T>(pub Identity, pub T, pub PhantomData<C>);

impl<C: Requirement, T: DeserializeOwned + Send> FromRequest<AppState> for PageForm<C, T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let identity = page_identity::<C>(&mut parts, state).await?;
        let header_token = header_csrf(&parts).map(str::to_owned);
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            PageError::from(ApiError::new(
                rej.status(),
                "invalid_request",
                format!("cannot read form: {rej}"),
            ))
        })?;
        let raw = std::str::from_utf8(&bytes)
            .map_err(|_| PageError::from(ApiError::bad_request("form is not UTF-8")))?;
        let mut presented = header_token;
        let mut rest: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if k == CSRF_FIELD {
                presented = Some(v.into_owned());
            } else {
                rest.push((k.into_owned(), v.into_owned()));
            }
        }
        if !csrf_ok(&identity, presented.as_deref()) {
            return Err(ApiError::csrf_failed().into());
        }
        let encoded = serde_urlencoded::to_string(&rest).unwrap_or_default();
        let value = parse_urlencoded::<T>(&encoded)?;
        Ok(PageForm(identity, value, PhantomData))
    }
}

/// Like `resolve`, for handlers that serve both signed-in and signed-out callers.
pub struct MaybeAuthed(pub Option<Identity>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(MaybeAuthed(resolve(parts, state).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_written_once_a_minute_or_a_tenth_of_its_timeout() {
        let at = |s: &str| crate::clock::parse(s).expect("time");
        let last = "2026-12-06T12:00:00.000000Z";
        let hour = Duration::seconds(3600);
        let due =
            |now: &str, timeout, explicit| session_touch_due(last, at(now), timeout, explicit);
        assert!(!due("2026-12-06T12:00:59.000000Z", hour, false));
        assert!(due("2026-12-06T12:01:00.000000Z", hour, false));
        assert!(due("2026-12-06T12:00:01.000000Z", hour, true));
        // A 5-minute timeout: every 30 s.
        let five = Duration::seconds(300);
        assert!(!due("2026-12-06T12:00:29.000000Z", five, false));
        assert!(due("2026-12-06T12:00:30.000000Z", five, false));
        assert!(session_touch_due("garbled", at(last), hour, false));
    }
}
