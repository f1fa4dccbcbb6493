//! JSON routes of error aggregation, and the Sentry-compatible ingest endpoints.
//!
//! Who may do what: reporting (`POST /api/errors`) is open unless
//! `ARCHITECT_ERRORS_REQUIRE_TOKEN` is set, then it needs a token with the `Ingest`
//! capability (an `ingest`- or `admin`-scoped token); the Sentry endpoints always need their DSN
//! key, an ingest token. Reading needs `Read`; resolve and create-bug need `Write`.
//!
//! Every report is checked in this order, cheapest first: auth, wire size (413 before reading
//! more than the cap), decompression (413 past the decompressed cap), JSON shape (400/422),
//! field rules (422), the per-address and per-source rate limits (429 + Retry-After), the disk
//! guard (507); then it is queued for the writer and answered once it is on disk.
//!
//! A project's ingest key (`aik_…`, `POST /api/projects/<id>/ingest-key`) is accepted on every
//! ingest route: as the DSN key of the Sentry endpoints (for its own project only), and on
//! `POST /api/errors` as a bearer token or Sentry auth; `ARCHITECT_ERRORS_REQUIRE_KEY` makes
//! it (or an ingest token) required there.

use super::actions::{self, ErrorsError};
use super::body::{self, BodyError};
use super::ingest::IngestError;
use super::ingest_keys;
use super::*;
use crate::app::AppState;
use crate::auth::extract::{resolve, Authed, Read, Write};
use crate::auth::{AuthVia, Capability, Identity};
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, ClientAddr, Json, Pagination, Path, Query};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Instant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/errors", get(list).post(report))
        .route("/api/errors/{id}", get(detail))
        .route("/api/errors/{id}/resolve", post(resolve_group))
        .route("/api/errors/{id}/create-bug", post(create_bug))
        .route(
            "/api/projects/{id}/ingest-key",
            get(get_ingest_key)
                .post(create_ingest_key)
                .delete(revoke_ingest_key),
        )
        // Sentry SDKs build these from the DSN; project ids are numbers, so these never
        // shadow a named /api/<domain>/ route.
        .route("/api/{project_id}/envelope/", post(sentry_envelope))
        .route("/api/{project_id}/store/", post(sentry_store))
}

impl From<ErrorsError> for ApiError {
    fn from(e: ErrorsError) -> Self {
        match e {
            ErrorsError::NotFound(what) => ApiError::not_found(what),
            ErrorsError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            ErrorsError::Conflict(msg) => ApiError::conflict(msg).with_field("bug_id"),
            ErrorsError::Db(e) => ApiError::from(e),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let mut err = ApiError::unavailable(e.to_string());
        err.retry_after = Some(match e {
            IngestError::QueueFull | IngestError::WriteFailed => 1,
            IngestError::Stopped => 5,
        });
        err
    }
}

/// Counts a refused report by reason (`/metrics`) and passes the error on.
fn rejected(reason: &'static str, e: ApiError) -> ApiError {
    metrics::counter!("errors_rejected_total", "reason" => reason).increment(1);
    e
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge(max) => rejected(
            "too_large",
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the decompressed report is larger than the limit of {max} bytes"),
            ),
        ),
        BodyError::Corrupt(why) => rejected(
            "bad_encoding",
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_encoding",
                format!("the body does not match its Content-Encoding: {why}"),
            ),
        ),
        BodyError::Unsupported(enc) => rejected(
            "bad_encoding",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Encoding '{enc}' is not supported; send gzip, deflate or none"),
            ),
        ),
    }
}

/// Reads at most `max` bytes of body, refusing (413) as soon as the body is known to be larger:
/// from `Content-Length` before reading, or while reading a chunked body.
async fn read_capped(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || rejected("too_large", ApiError::too_large(max));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The plain report bytes: capped on the wire and after decompression.
async fn report_bytes(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let cfg = &s.errors.config;
    let raw = read_capped(headers, body, cfg.errors_max_body_bytes).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    match body::decode(&raw, encoding, cfg.errors_max_decompressed_bytes).map_err(body_error)? {
        std::borrow::Cow::Borrowed(_) => Ok(raw),
        std::borrow::Cow::Owned(v) => Ok(Bytes::from(v)),
    }
}

/// Takes one report from the caller's address's bucket and from the source's: a caller that
/// makes up a new `source` for every report still meets its address's limit.
fn rate_limit(s: &AppState, addr: Option<&str>, key: &str) -> Result<(), ApiError> {
    let now = Instant::now();
    let refuse = |what: &str, wait: u64| {
        rejected(
            "rate_limited",
            ApiError::too_many(
                format!("too many error reports from this {what}; retry in {wait} s"),
                wait,
            ),
        )
    };
    if let Some(a) = addr {
        s.errors
            .address_limiter
            .check(&ClientAddr::limit_key(a), now)
            .map_err(|w| refuse("address", w))?;
    }
    s.errors
        .limiter
        .check(key, now)
        .map_err(|w| refuse("source", w))
}

/// Validates, rate-limits and queues one report; returns once it is stored.
async fn accept(
    s: &AppState,
    report: NewErrorReport,
    addr: Option<&str>,
    limit_key: Option<&str>,
) -> Result<Accepted, ApiError> {
    let event = report
        .into_event(&s.clock.now_str())
        .map_err(|Invalid { field, message }| {
            rejected("invalid", ApiError::invalid(field, message))
        })?;
    rate_limit(s, addr, limit_key.unwrap_or(&event.source))?;
    s.errors
        .disk
        .check(&s.db, &s.config.data_dir, Instant::now())
        .await
        .map_err(|why| {
            let mut e = ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                why,
            );
            e.retry_after = Some(60);
            rejected("disk_full", e)
        })?;
    let fingerprint = event.fingerprint.clone();
    let group_id = s.errors.ingest.submit(event).await?;
    Ok(Accepted {
        group_id,
        fingerprint,
    })
}

fn may_ingest(who: Option<&Identity>) -> Result<(), ApiError> {
    let who = who.ok_or_else(|| rejected("unauthorized", ApiError::unauthorized()))?;
    // Tokens only: a browser session is not how machines report, and a token needs no CSRF.
    let is_token = matches!(who.via, AuthVia::Token { .. });
    if !is_token || !who.can(Capability::Ingest) {
        return Err(rejected(
            "forbidden",
            ApiError::forbidden("reporting errors needs a token with the 'ingest' scope"),
        ));
    }
    Ok(())
}

/// A project ingest key presented with a report: `Authorization: Bearer aik_…`, or the
/// Sentry ways (`X-Sentry-Auth: Sentry sentry_key=…`, `?sentry_key=…`).
fn presented_ingest_key(parts: &axum::http::request::Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| ingest_keys::is_ingest_key(k));
    if let Some(k) = bearer {
        return Some(k.to_string());
    }
    let header = parts
        .headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok());
    sentry::auth_key(header, parts.uri.query()).filter(|k| ingest_keys::is_ingest_key(k))
}

/// Who may report on `POST /api/errors`: anyone, unless a setting asks for credentials. A
/// presented project key must be valid (and active) whatever the settings say.
async fn may_report(s: &AppState, parts: &mut axum::http::request::Parts) -> Result<(), ApiError> {
    let cfg = &s.errors.config;
    if let Some(key) = presented_ingest_key(parts) {
        return match ingest_keys::project_of(&s.errors_state(), &key).await? {
            Some(_) => Ok(()),
            None => Err(rejected(
                "unauthorized",
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this ingest key is unknown or revoked",
                ),
            )),
        };
    }
    if cfg.errors_require_token {
        let who = resolve(parts, s).await?;
        return may_ingest(who.as_ref());
    }
    if cfg.errors_require_key {
        let who = resolve(parts, s).await?;
        return match who {
            Some(_) => may_ingest(who.as_ref()),
            None => Err(rejected(
                "unauthorized",
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "reports need a project ingest key (or an ingest token): this server sets ARCHITECT_ERRORS_REQUIRE_KEY",
                ),
            )),
        };
    }
    // Open reporting looks at no credentials at all (a made-up token costs no lookup).
    Ok(())
}

async fn report(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (mut parts, body) = req.into_parts();
    may_report(&s, &mut parts).await?;
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(rejected(
            "invalid",
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected 'Content-Type: application/json'",
            ),
        ));
    }
    let bytes = report_bytes(&s, &parts.headers, body).await?;
    // Plain serde first (the hot path); on failure the slower parser names the bad field.
    let report: NewErrorReport = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(_) => parse_json(&bytes).map_err(|e| rejected("invalid", e))?,
    };
    let accepted = accept(&s, report, addr.as_deref(), None).await?;
    Ok((StatusCode::CREATED, Json(accepted)))
}

async fn list(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<GroupFilter>,
) -> Result<Json<Vec<ErrorGroup>>, ApiError> {
    Ok(Json(
        actions::list_groups(&s.db, &f, page.limit, page.offset).await?,
    ))
}

#[derive(serde::Deserialize, Default)]
struct DetailQuery {
    #[serde(default)]
    hours: Option<i64>,
}

async fn detail(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<GroupDetail>, ApiError> {
    let hours = q.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=actions::MAX_HOURS).contains(&hours) {
        return Err(ApiError::invalid(
            "hours",
            format!("hours must be between 1 and {}", actions::MAX_HOURS),
        ));
    }
    Ok(Json(
        actions::group_detail(&s.db, s.clock.now(), id, hours).await?,
    ))
}

async fn resolve_group(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> Result<Json<ErrorGroup>, ApiError> {
    let now = s.clock.now_str();
    Ok(Json({
        let g = actions::resolve_group(&s.db, &who.identity().actor(), &now, id).await?;
        s.events.emit(crate::events::Topic::Errors, "resolved", id);
        g
    }))
}

#[derive(serde::Serialize)]
struct BugCreated {
    bug: crate::tracking::Bug,
    error: ErrorGroup,
}

/// The body is optional (`curl -X POST` works): every field has a default.
async fn create_bug(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<(StatusCode, Json<BugCreated>), ApiError> {
    let req: BugFromError = if body.iter().all(u8::is_ascii_whitespace) {
        BugFromError::default()
    } else {
        parse_json(&body)?
    };
    let now = s.clock.now_str();
    let (bug, error) = actions::create_bug(&s.db, &who.identity().actor(), &now, id, req).await?;
    s.events
        .emit(crate::events::Topic::Work, "bug_created", bug.id);
    Ok((StatusCode::CREATED, Json(BugCreated { bug, error })))
}

// ---- Sentry ----

/// Checks the DSN key of a Sentry request for `project`: a project ingest key of that project,
/// or an API token with the Ingest capability, looked up like a bearer token (same cache,
/// same revocation rules).
async fn sentry_caller(
    s: &AppState,
    parts: &mut axum::http::request::Parts,
    project: i64,
) -> Result<(), ApiError> {
    let header = parts
        .headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok());
    let key = sentry::auth_key(header, parts.uri.query())
        .ok_or_else(|| rejected("unauthorized", ApiError::unauthorized()))?;
    if ingest_keys::is_ingest_key(&key) {
        return match ingest_keys::project_of(&s.errors_state(), &key).await? {
            Some(p) if p == project => Ok(()),
            Some(p) => Err(rejected(
                "forbidden",
                ApiError::forbidden(format!(
                    "this ingest key reports for project {p}, not {project}"
                )),
            )),
            None => Err(rejected(
                "unauthorized",
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this ingest key is unknown or revoked",
                ),
            )),
        };
    }
    let bearer = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| rejected("unauthorized", ApiError::unauthorized()))?;
    parts.headers.insert(header::AUTHORIZATION, bearer);
    let who = resolve(parts, s).await?;
    may_ingest(who.as_ref())
}

async fn sentry_events(
    s: &AppState,
    project: i64,
    addr: Option<&str>,
    req: Request,
    envelope: bool,
) -> Result<Json<Value>, ApiError> {
    let (mut parts, body) = req.into_parts();
    sentry_caller(s, &mut parts, project).await?;
    let key = format!("sentry:{project}");
    let bytes = report_bytes(s, &parts.headers, body).await?;
    let events = if envelope {
        sentry::envelope_events(&bytes).map_err(|e| rejected("invalid", ApiError::bad_json(e.0)))?
    } else {
        vec![serde_json::from_slice::<Value>(&bytes).map_err(|e| {
            rejected(
                "invalid",
                ApiError::bad_json(format!("malformed JSON: {e}")),
            )
        })?]
    };
    let mut id = Value::Null;
    for ev in &events {
        if !ev.is_object() {
            return Err(rejected(
                "invalid",
                ApiError::invalid("event", "an event must be a JSON object"),
            ));
        }
        accept(s, sentry::report_from_event(ev, project), addr, Some(&key)).await?;
        id = ev.get("event_id").cloned().unwrap_or(Value::Null);
    }
    Ok(Json(json!({ "id": id })))
}

async fn sentry_envelope(
    State(s): State<AppState>,
    Path(project): Path<i64>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    sentry_events(&s, project, addr.as_deref(), req, true).await
}

async fn sentry_store(
    State(s): State<AppState>,
    Path(project): Path<i64>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    sentry_events(&s, project, addr.as_deref(), req, false).await
}

// ---- per-project ingest keys ----

#[derive(serde::Serialize)]
struct IngestKeyStatus {
    project_id: i64,
    /// The active key (never the key itself), or null.
    key: Option<IngestKey>,
}

async fn get_ingest_key(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<IngestKeyStatus>, ApiError> {
    Ok(Json(IngestKeyStatus {
        project_id: id,
        key: ingest_keys::active_key(&s.errors_state(), id).await?,
    }))
}

/// The base URL clients reached this server at, for the DSN (the Host header they sent).
pub fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = if s.config.session_cookie_secure {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

/// Creates the project's ingest key, or rotates it (the old one stops working now). The key
/// and its DSN are in this answer only.
async fn create_ingest_key(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<CreatedIngestKey>), ApiError> {
    let created = ingest_keys::create_key(
        &s.errors_state(),
        &who.identity().actor(),
        id,
        &base_url(&s, &headers),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_ingest_key(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    ingest_keys::revoke_key(&s.errors_state(), &who.identity().actor(), id).await?;
    Ok(Json(json!({"project_id": id, "revoked": true})))
}
