//! Listing and reading documents.

use super::*;
use crate::files::FilesState;
use crate::tracking::ProjectFilter;

/// Every document: architect's own first, then each active project's (those whose folder
/// exists on this host), or only project `only`'s.
pub async fn list(state: &FilesState, only: Option<i64>) -> Result<DocumentList, FilesError> {
    let mut documents = Vec::new();
    if only.is_none() {
        for (path, text) in own_documents() {
            documents.push(Document {
                source: "architect".into(),
                project_id: None,
                project_name: None,
                url: view_url(None, &path),
                size: text.len() as u64,
                path,
            });
        }
    }
    let projects = match only {
        Some(id) => vec![crate::tracking::store::get_project(&state.db, id)
            .await?
            .ok_or(FilesError::NotFound("project"))?],
        None => {
            crate::tracking::store::list_projects(&state.db, &ProjectFilter::default(), 10_000, 0)
                .await?
        }
    };
    let roots: Vec<(i64, String, String)> = projects
        .into_iter()
        .filter_map(|p| p.source_path.map(|s| (p.id, p.name, s)))
        .collect();
    let config = state.config.clone();
    let found = tokio::task::spawn_blocking(move || {
        let allowed = confine::Allowed::from_config(&config);
        roots
            .into_iter()
            .filter_map(|(id, name, s)| {
                let root = allowed.root(&s).ok()?;
                Some((id, name, project_documents(&root)))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| FilesError::Io(std::io::Error::other(e.to_string())))?;
    for (id, name, docs) in found {
        for (path, size) in docs {
            documents.push(Document {
                source: "project".into(),
                project_id: Some(id),
                project_name: Some(name.clone()),
                url: view_url(Some(id), &path),
                size,
                path,
            });
        }
    }
    Ok(DocumentList { documents })
}

pub fn view_url(project_id: Option<i64>, path: &str) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(id) = project_id {
        q.push(("project_id", id.to_string()));
    }
    q.push(("path", path.to_string()));
    format!(
        "/documentation/view?{}",
        serde_urlencoded::to_string(q).unwrap_or_default()
    )
}

/// One document's Markdown: architect's own (`project_id` none) or a project's.
pub async fn read(
    state: &FilesState,
    project_id: Option<i64>,
    path: &str,
) -> Result<String, FilesError> {
    match project_id {
        None => own_document(path).ok_or(FilesError::NotFound("document")),
        Some(id) => {
            let root = crate::files::actions::project_root(state, id).await?;
            let path = path.to_string();
            tokio::task::spawn_blocking(move || read_project_document(&root, &path))
                .await
                .map_err(|e| FilesError::Io(std::io::Error::other(e.to_string())))?
        }
    }
}
