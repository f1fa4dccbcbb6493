//! `POST /api/assign-to-tmux`.

use super::{actions, AssignRequest, Assigned};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Write};
use crate::http::error::ApiError;
use crate::http::extract::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/assign-to-tmux", post(assign))
}

async fn assign(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<AssignRequest>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    let a = actions::assign_item(&s, who.identity(), r).await?;
    Ok((StatusCode::CREATED, Json(a)))
}
