//! `/termius`: what the Termius export would hold (hosts by group, with their secret
//! references, never values) and the download links.

use super::*;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, Read};
use crate::http::error::ApiError;
use crate::web::{render, Layout, PageError, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/termius", get(preview_page))
}

#[derive(Template)]
#[template(path = "termius/preview.html")]
struct PreviewPage {
    layout: Layout,
    preview: Preview,
    /// The query string of the export links (group_by, role, tag), URL-encoded.
    query: String,
}

async fn preview_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, PageError> {
    q.wants_secrets()
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let hosts = load(&s, &q).await.map_err(ApiError::from)?;
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    if let Some(g) = q.group_by {
        pairs.append_pair("group_by", g.as_str());
    }
    if let Some(r) = &q.role {
        pairs.append_pair("role", r);
    }
    if let Some(t) = &q.tag {
        pairs.append_pair("tag", t);
    }
    Ok(render(&PreviewPage {
        layout: Layout::new(&s, &who, "nodes", "Termius export"),
        preview: preview_of(hosts, &q),
        query: pairs.finish(),
    }))
}
