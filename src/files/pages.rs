//! The file viewer and editor of a project (`/projects/{id}/files?path=…`): a folder shows
//! its entries, a file its text (the read is audited like `POST /api/files/read`) and, for
//! members, an editor whose save is `POST /api/files/write` with the hash it was read at.

use super::{
    actions, feature, DirEntry, FeatureFiles, FileContent, FilesState, ReadRequest, WriteRequest,
};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{id}/files", get(files_page).post(save))
        .route("/features/{id}/files", get(feature_page))
}

#[derive(Debug, Default, Deserialize)]
struct FileQuery {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "files/browse.html")]
struct FilesPage {
    layout: Layout,
    project_id: i64,
    project_name: String,
    /// (name, path) of each folder above `path`.
    crumbs: Vec<(String, String)>,
    entries: Option<Vec<DirEntry>>,
    file: Option<FileContent>,
}

fn crumbs(path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        out.push((part.to_string(), acc.clone()));
    }
    out
}

impl FilesPage {
    fn href(&self, path: &str) -> String {
        format!(
            "/projects/{}/files?{}",
            self.project_id,
            serde_urlencoded::to_string([("path", path)]).unwrap_or_default()
        )
    }
}

async fn files_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
) -> Result<Response, PageError> {
    let project = crate::tracking::store::get_project(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let path = q.path.clone().unwrap_or_default();
    let fs = s.files_state();
    let (entries, file) = if actions::is_dir(&fs, id, &path)
        .await
        .map_err(ApiError::from)?
    {
        (
            Some(
                actions::list_dir(&fs, id, &path)
                    .await
                    .map_err(ApiError::from)?,
            ),
            None,
        )
    } else {
        let r = ReadRequest {
            project_id: id,
            path: path.clone(),
        };
        let f = actions::read_file(&fs, &who.actor(), r)
            .await
            .map_err(ApiError::from)?;
        (None, Some(f))
    };
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let title = format!("Files · {}", project.name);
    Ok(render(&FilesPage {
        layout: Layout::new(&s, &who, "projects", &title).with_flash(&flash),
        project_id: id,
        project_name: project.name,
        crumbs: crumbs(&path),
        entries,
        file,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveForm {
    path: String,
    content: String,
    #[serde(default)]
    expected_sha256: Option<String>,
}

/// Browsers send a textarea's lines with CRLF; files keep LF.
async fn save(
    State(s): State<FilesState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, SaveForm>,
) -> Response {
    let back = format!(
        "/projects/{id}/files?{}",
        serde_urlencoded::to_string([("path", f.path.as_str())]).unwrap_or_default()
    );
    let w = WriteRequest {
        project_id: id,
        path: f.path,
        content: f.content.replace("\r\n", "\n"),
        expected_sha256: f.expected_sha256.filter(|h| !h.is_empty()),
    };
    match actions::write_file(&s, &who.actor(), w).await {
        Ok(_) => see_other(&back, "Saved."),
        Err(e) => back_with_error(&back, &ApiError::from(e)),
    }
}

#[derive(Template)]
#[template(path = "files/feature.html")]
struct FeaturePage {
    layout: Layout,
    name: String,
    files: FeatureFiles,
}

impl FeaturePage {
    fn href(&self, path: &str) -> String {
        format!(
            "/projects/{}/files?{}",
            self.files.project_id,
            serde_urlencoded::to_string([("path", path)]).unwrap_or_default()
        )
    }
}

/// What `GET /api/files/feature/{id}` answers, with links into the project's files.
async fn feature_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let files = feature::feature_files(&s.files_state(), id)
        .await
        .map_err(ApiError::from)?;
    let name = crate::tracking::store::get_feature(&s.db, id)
        .await?
        .map(|f| f.name)
        .unwrap_or_default();
    Ok(render(&FeaturePage {
        layout: Layout::new(&s, &who, "features", &format!("Files · {name}")),
        name,
        files,
    }))
}
