//! `GET /api/overview` and `GET /api/overview/badges`.

use super::Overview;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read};
use crate::http::error::ApiError;
use crate::http::extract::Json;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/overview/badges", get(badges))
}

async fn overview(State(s): State<AppState>, _: Authed<Read>) -> Result<Json<Overview>, ApiError> {
    super::gather(&s).await.map(Json)
}

async fn badges(
    State(s): State<AppState>,
    _: Authed<Read>,
) -> Result<Json<BTreeMap<&'static str, i64>>, ApiError> {
    super::badges(&s).await.map(Json)
}
