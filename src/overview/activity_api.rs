//! `GET /api/activity` and `POST /api/activity`: the activity log over HTTP. The log itself
//! (`crate::activity`) is a leaf every domain writes in its own transaction; its HTTP face
//! lives here, beside the dashboard's other cross-domain views, so the log uses no domain.

use crate::activity::{store, ActivityEntry, ActivityFilter, NewActivity};
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/activity", get(list).post(create))
}

/// Normalises `since` to the stored format so text comparison is time comparison.
pub fn normalise_filter(mut f: ActivityFilter) -> Result<ActivityFilter, ApiError> {
    if let Some(s) = f.since.take().filter(|s| !s.is_empty()) {
        let t = crate::clock::parse(&s).ok_or_else(|| {
            ApiError::invalid(
                "since",
                "since must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z",
            )
        })?;
        f.since = Some(crate::clock::format(t));
    }
    f.entity = f.entity.filter(|s| !s.is_empty());
    f.actor = f.actor.filter(|s| !s.is_empty());
    Ok(f)
}

async fn list(
    State(state): State<AppState>,
    _who: Authed<Read>,
    page: Pagination,
    Query(filter): Query<ActivityFilter>,
) -> Result<Json<Vec<ActivityEntry>>, ApiError> {
    let filter = normalise_filter(filter)?;
    Ok(Json(
        store::list(&state.db, &filter, page.limit, page.offset).await?,
    ))
}

async fn create(
    State(state): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewActivity>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    input
        .validate()
        .map_err(|(field, msg)| ApiError::invalid(field, msg))?;
    let mut conn = state.db.acquire().await?;
    let id = store::record(
        &mut conn,
        &who.identity().actor(),
        &input.action,
        &input.entity_type,
        input.entity_id,
        &input.details.unwrap_or_else(|| serde_json::json!({})),
        &state.clock.now_str(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "success": true})),
    ))
}
