//! `POST /api/files/read` (viewers), `POST /api/files/write` (members) and
//! `GET /api/files/feature/{id}` (viewers).

use super::{
    actions, feature, FeatureFiles, FileContent, FilesError, FilesState, ReadRequest, WriteRequest,
    Written,
};
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use crate::validate::Invalid;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/files/read", post(read))
        .route("/api/files/write", post(write))
        .route("/api/files/feature/{id}", get(of_feature))
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::NotFound(what) => ApiError::not_found(what).with_field(match what {
                "project" => "project_id",
                "feature" => "id",
                _ => "path",
            }),
            FilesError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            FilesError::Stale(m) => ApiError::conflict(m).with_field("expected_sha256"),
            FilesError::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                ApiError::invalid("path", "the server may not access this file")
            }
            FilesError::Io(e) => ApiError::internal(e),
            FilesError::Db(e) => ApiError::from(e),
        }
    }
}

async fn read(
    State(s): State<FilesState>,
    who: Authed<Read>,
    Json(r): Json<ReadRequest>,
) -> Result<Json<FileContent>, ApiError> {
    Ok(Json(
        actions::read_file(&s, &who.identity().actor(), r).await?,
    ))
}

async fn write(
    State(s): State<FilesState>,
    who: Authed<Write>,
    Json(w): Json<WriteRequest>,
) -> Result<Json<Written>, ApiError> {
    Ok(Json(
        actions::write_file(&s, &who.identity().actor(), w).await?,
    ))
}

async fn of_feature(
    State(s): State<FilesState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<FeatureFiles>, ApiError> {
    Ok(Json(feature::feature_files(&s, id).await?))
}
