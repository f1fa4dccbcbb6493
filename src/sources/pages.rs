//! The import page (`/sources`): the configured roots, "Scan sources" (`?scan=1`, the same
//! scan as `POST /api/scan-sources`), and per repository found an import form (admins, as
//! `POST /api/import-project`).

use super::actions;
use super::{ImportRequest, ScanResult, SourcesState};
use crate::app::AppState;
use crate::auth::extract::{Exec, PageAuthed, PageForm, Write};
use crate::http::error::ApiError;
use crate::web::Query;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sources", get(sources_page))
        .route("/sources/import", post(import))
}

#[derive(Debug, Default, Deserialize)]
struct SourcesQuery {
    #[serde(default)]
    scan: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sources/import.html")]
struct SourcesPage {
    layout: Layout,
    roots: Vec<String>,
    scan: Option<ScanResult>,
}

async fn sources_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Write>,
    Query(q): Query<SourcesQuery>,
) -> Result<Response, PageError> {
    let scan = match q.scan.as_deref() {
        Some(v) if !v.is_empty() && v != "0" => Some(
            actions::scan(&s.sources_state())
                .await
                .map_err(ApiError::from)?,
        ),
        _ => None,
    };
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    Ok(render(&SourcesPage {
        layout: Layout::new(&s, &who, "projects", "Code sources").with_flash(&flash),
        roots: s
            .config
            .sources
            .root_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        scan,
    }))
}

/// A form's empty name means "the folder's name".
async fn import(
    State(s): State<SourcesState>,
    PageForm(who, mut f, ..): PageForm<Exec, ImportRequest>,
) -> Response {
    f.name = f.name.filter(|n| !n.trim().is_empty());
    f.description = f.description.filter(|d| !d.trim().is_empty());
    match actions::import(&s, &who.actor(), f).await {
        Ok(i) => see_other(&format!("/projects/{}", i.project.id), "Project imported."),
        Err(e) => back_with_error("/sources?scan=1", &ApiError::from(e)),
    }
}
