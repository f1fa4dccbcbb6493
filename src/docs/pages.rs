//! The Documentation panel: every document (`/documentation`) and one rendered with its table
//! of contents (`/documentation/view?project_id=…&path=…`; no `project_id`: architect's own).

use super::{actions, Document, Heading};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, Read};
use crate::http::error::ApiError;
use crate::web::Query;
use crate::web::{render, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/documentation", get(list_page))
        .route("/documentation/view", get(view_page))
}

#[derive(Template)]
#[template(path = "docs/list.html")]
struct ListPage {
    layout: Layout,
    /// (heading, documents) per source.
    groups: Vec<(String, Vec<Document>)>,
}

async fn list_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(f): Query<super::api::DocFilter>,
) -> Result<Response, PageError> {
    let docs = actions::list(&s.files_state(), f.project_id)
        .await
        .map_err(ApiError::from)?;
    let mut groups: Vec<(String, Vec<Document>)> = Vec::new();
    for d in docs.documents {
        let heading = d
            .project_name
            .clone()
            .unwrap_or_else(|| "architect".to_string());
        match groups.last_mut() {
            Some((h, list)) if *h == heading => list.push(d),
            _ => groups.push((heading, vec![d])),
        }
    }
    Ok(render(&ListPage {
        layout: Layout::new(&s, &who, "documentation", "Documentation"),
        groups,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewQuery {
    #[serde(default)]
    project_id: Option<i64>,
    path: String,
}

#[derive(Template)]
#[template(path = "docs/view.html")]
struct ViewPage {
    layout: Layout,
    source: String,
    path: String,
    toc: Vec<Heading>,
    /// Sanitised by `docs::render` (ammonia); shown unescaped.
    html: String,
}

async fn view_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, PageError> {
    let text = actions::read(&s.files_state(), q.project_id, &q.path)
        .await
        .map_err(ApiError::from)?;
    let source = match q.project_id {
        Some(id) => crate::tracking::store::get_project(&s.db, id)
            .await?
            .map(|p| p.name)
            .unwrap_or_default(),
        None => "architect".to_string(),
    };
    let (project_id, path) = (q.project_id, q.path.clone());
    let r = tokio::task::spawn_blocking(move || {
        let view = |p: &str| actions::view_url(project_id, p);
        super::render(&text, &|dest| super::link_target(&path, dest, &view))
    })
    .await
    .map_err(ApiError::internal)?;
    let title = r.title.clone().unwrap_or_else(|| q.path.clone());
    Ok(render(&ViewPage {
        layout: Layout::new(&s, &who, "documentation", &title),
        source,
        path: q.path,
        toc: r.toc,
        html: r.html,
    }))
}
