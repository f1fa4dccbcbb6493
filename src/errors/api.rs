//! JSON routes of error aggregation, and the Sentry-compatible ingest endpoints.
//!
//! Who may do what: reporting (`POST /api/errors`) is open unless
//! `ARCHITECT_ERRORS_REQUIRE_TOKEN` is set, then it needs a token with the `Ingest`
//! capability (an `ingest`- or `admin`-scoped token); the Sentry endpoints always need their DSN
//! key, an ingest token. Reading needs `Read`; resolve and create-bug need `Write`.
//!
//! Every report is checked in this order, cheapest first: auth, wire size (413 before reading
//! more than the cap), decompression (413 past the decompressed cap), JSON shape (400/422),
//! field rules (422), the per-source rate limit (429 + Retry-After); then it is queued for the
//! writer and answered once it is on disk.

use super::actions::{self, ErrorsError};
use super::body::{self, BodyError};
use super::ingest::IngestError;
use super::*;
use crate::app::AppState;
use crate::auth::extract::{resolve, Authed, Read, Write};
use crate::auth::{AuthVia, Capability, Identity};
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, Json, Pagination, Path, Query};
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

fn rate_limit(s: &AppState, key: &str) -> Result<(), ApiError> {
    s.errors.limiter.check(key, Instant::now()).map_err(|wait| {
        rejected(
            "rate_limited",
            ApiError::too_many(
                format!("too many error reports from this source; retry in {wait} s"),
                wait,
            ),
        )
    })
}

/// Validates, rate-limits and queues one report; returns once it is stored.
async fn accept(
    s: &AppState,
    report: NewErrorReport,
    limit_key: Option<&str>,
) -> Result<Accepted, ApiError> {
    let event = report
        .into_event(&s.clock.now_str())
        .map_err(|Invalid { field, message }| {
            rejected("invalid", ApiError::invalid(field, message))
        })?;
    rate_limit(s, limit_key.unwrap_or(&event.source))?;
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

async fn report(
    State(s): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (mut parts, body) = req.into_parts();
    // Open reporting looks at no credentials at all (a made-up token costs no lookup).
    if s.errors.config.errors_require_token {
        let who = resolve(&mut parts, &s).await?;
        may_ingest(who.as_ref())?;
    }
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
    let accepted = accept(&s, report, None).await?;
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
    Ok(Json(
        actions::resolve_group(&s.db, &who.identity().actor(), &now, id).await?,
    ))
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
    Ok((StatusCode::CREATED, Json(BugCreated { bug, error })))
}

// ---- Sentry ----

/// The caller of a Sentry endpoint, from its DSN key (an API token with the Ingest
/// capability), looked up like a bearer token (same cache, same revocation rules).
async fn sentry_caller(
    s: &AppState,
    parts: &mut axum::http::request::Parts,
) -> Result<Identity, ApiError> {
    let header = parts
        .headers
        .get("x-sentry-auth")
        .and_then(|v| v.to_str().ok());
    let key = sentry::auth_key(header, parts.uri.query())
        .ok_or_else(|| rejected("unauthorized", ApiError::unauthorized()))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| rejected("unauthorized", ApiError::unauthorized()))?;
    parts.headers.insert(header::AUTHORIZATION, bearer);
    let who = resolve(parts, s).await?;
    may_ingest(who.as_ref())?;
    who.ok_or_else(ApiError::unauthorized)
}

async fn sentry_events(
    s: &AppState,
    project: i64,
    req: Request,
    envelope: bool,
) -> Result<Json<Value>, ApiError> {
    let (mut parts, body) = req.into_parts();
    sentry_caller(s, &mut parts).await?;
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
        accept(s, sentry::report_from_event(ev, project), Some(&key)).await?;
        id = ev.get("event_id").cloned().unwrap_or(Value::Null);
    }
    Ok(Json(json!({ "id": id })))
}

async fn sentry_envelope(
    State(s): State<AppState>,
    Path(project): Path<i64>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    sentry_events(&s, project, req, true).await
}

async fn sentry_store(
    State(s): State<AppState>,
    Path(project): Path<i64>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    sentry_events(&s, project, req, false).await
}
