//! `GET /api/documentation`: every document, or one project's (`?project_id=`).

use super::{actions, DocumentList};
use crate::app::AppState;
use crate::auth::extract::{Authed, Read};
use crate::files::FilesState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/documentation", get(list))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocFilter {
    #[serde(default)]
    pub project_id: Option<i64>,
}

async fn list(
    State(s): State<FilesState>,
    _: Authed<Read>,
    Query(f): Query<DocFilter>,
) -> Result<Json<DocumentList>, ApiError> {
    Ok(Json(actions::list(&s, f.project_id).await?))
}
