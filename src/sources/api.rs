//! `POST /api/scan-sources` and `POST /api/import-project`.

use super::actions::{self, SourcesError};
use super::{ImportRequest, Imported, ScanResult, SourcesState};
use crate::app::AppState;
use crate::auth::extract::{Authed, Exec, Write};
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::validate::Invalid;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/scan-sources", post(scan))
        .route("/api/import-project", post(import))
}

impl From<SourcesError> for ApiError {
    fn from(e: SourcesError) -> Self {
        match e {
            SourcesError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            SourcesError::Conflict { field, message } => {
                ApiError::conflict(message).with_field(field)
            }
            SourcesError::Db(e) => ApiError::from(e),
            SourcesError::Panicked(m) => ApiError::internal(m),
        }
    }
}

/// Members: a scan reads folder names and manifests under the configured roots only, and
/// changes nothing. Any body is ignored (the roots are the server's setting, never the
/// caller's).
async fn scan(
    State(s): State<SourcesState>,
    _: Authed<Write>,
) -> Result<Json<ScanResult>, ApiError> {
    Ok(Json(actions::scan(&s).await?))
}

/// `Exec` (admins), as `PUT /api/projects/{id}/commands`: the import stores the test and build
/// commands that exec-capable workers run for the project.
async fn import(
    State(s): State<SourcesState>,
    who: Authed<Exec>,
    Json(input): Json<ImportRequest>,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    let imported = actions::import(&s, &who.identity().actor(), input).await?;
    Ok((StatusCode::CREATED, Json(imported)))
}
