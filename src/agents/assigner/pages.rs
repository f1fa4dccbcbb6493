//! The Assigner panel (`/assigner`): the queue by status, a send form, retry / cancel /
//! reassign, the delegation tree (manager prompt → worker prompts, bounded), and a page per
//! prompt (`/assigner/prompts/{id}`) with its content, response, history, parent and
//! children. Permission prompts have their own panel (`/interactions`); this one links to it.

use super::api::{enqueue, reassign_prompt};
use super::store::{self as prompts, PromptFilter};
use super::{NewPrompt, Prompt, PromptStatus};
use crate::agents::permission_store as pstore;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assigner", get(assigner_page))
        .route("/assigner/send", post(assigner_send))
        .route("/assigner/prompts/{id}", get(prompt_page))
        .route("/assigner/prompts/{id}/cancel", post(cancel))
        .route("/assigner/prompts/{id}/retry", post(retry))
        .route("/assigner/prompts/{id}/reassign", post(reassign))
}

#[derive(Template)]
#[template(path = "agents/assigner.html")]
struct AssignerPage {
    layout: Layout,
    counts: Vec<(String, i64)>,
    prompts: Vec<Prompt>,
    status: String,
    statuses: Vec<&'static str>,
    /// Permission prompts waiting on the Interactions panel.
    pending_approvals: i64,
    tree: Vec<TreeNode>,
}

/// Deepest delegation level the tree shows (high-level → manager → worker is 3).
const TREE_DEPTH: usize = 5;
/// Most prompts the tree shows.
const TREE_NODES: usize = 300;

/// One prompt of the delegation tree, in display order (depth first).
struct TreeNode {
    p: Prompt,
    depth: usize,
    age: crate::web::At,
    /// The first line of the response, if any.
    answer: String,
    /// Children not shown because the tree is deeper than [`TREE_DEPTH`].
    hidden_children: bool,
}

fn first_line(s: Option<&str>) -> String {
    s.unwrap_or("")
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(140)
        .collect()
}

/// The delegation trees of the newest root prompts that have children, flattened depth
/// first, bounded in depth and size.
async fn delegation_tree(
    s: &crate::agents::AgentsState,
    roots: Vec<Prompt>,
) -> Result<Vec<TreeNode>, sqlx::Error> {
    let now = s.clock.now();
    let mut out = Vec::new();
    // A stack of (prompt, depth), children pushed in reverse so the oldest shows first.
    let mut stack: Vec<(Prompt, usize)> = roots.into_iter().rev().map(|p| (p, 0)).collect();
    while let Some((p, depth)) = stack.pop() {
        if out.len() >= TREE_NODES {
            break;
        }
        let kids = if depth + 1 < TREE_DEPTH {
            prompts::children(&s.db, p.id, 100).await?
        } else {
            Vec::new()
        };
        let hidden_children =
            depth + 1 >= TREE_DEPTH && !prompts::children(&s.db, p.id, 1).await?.is_empty();
        for k in kids.into_iter().rev() {
            stack.push((k, depth + 1));
        }
        out.push(TreeNode {
            age: crate::web::at(now, &p.created_at),
            answer: first_line(p.response.as_deref()),
            depth,
            hidden_children,
            p,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct AssignerQuery {
    status: Option<PromptStatus>,
    notice: Option<String>,
    error: Option<String>,
}

async fn assigner_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<AssignerQuery>,
) -> Result<Response, PageError> {
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let prompts = prompts::list(
        &s.db,
        &PromptFilter {
            status: q.status,
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .map_err(ApiError::from)?;
    Ok(render(&AssignerPage {
        layout: Layout::new(&s, &who, "assigner", "Assigner").with_flash(&flash),
        counts: prompts::counts(&s.db).await.map_err(ApiError::from)?,
        prompts,
        status: q.status.map(|x| x.to_string()).unwrap_or_default(),
        statuses: PromptStatus::names(),
        pending_approvals: pstore::pending_count(&s.db).await?,
        tree: delegation_tree(
            &s.agents_state(),
            prompts::delegation_roots(&s.db, 20).await?,
        )
        .await?,
    }))
}

#[derive(Deserialize)]
struct PromptForm {
    content: String,
    #[serde(default)]
    target_session: String,
    priority: Option<i64>,
}

async fn assigner_send(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, PromptForm>,
) -> Response {
    let p = NewPrompt {
        content: f.content,
        priority: f.priority,
        target_session: Some(f.target_session).filter(|t| !t.trim().is_empty()),
        ..Default::default()
    };
    match enqueue(&s.agents_state(), &who, p, None).await {
        Ok(id) => see_other("/assigner", &format!("Queued prompt #{id}.")),
        Err(e) => back_with_error("/assigner", &ApiError::from(e)),
    }
}

/// Where an Assigner form goes back to: its `next` when that is an Assigner page.
fn assigner_back(next: &str) -> &str {
    crate::web::local_path(next)
        .filter(|p| p.starts_with("/assigner"))
        .unwrap_or("/assigner")
}

#[derive(Deserialize)]
struct ReassignForm {
    /// The session to send it to; empty: any session its role or group allows.
    #[serde(default)]
    to: String,
    #[serde(default)]
    next: String,
}

async fn reassign(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, ReassignForm>,
) -> Response {
    let back = assigner_back(&f.next);
    let to = Some(f.to.trim()).filter(|t| !t.is_empty());
    match reassign_prompt(&s.agents_state(), &who, id, to).await {
        Ok(_) => see_other(
            back,
            &format!(
                "Prompt #{id} is queued again for {}.",
                to.unwrap_or("any matching session")
            ),
        ),
        Err(e) => back_with_error(back, &e),
    }
}

#[derive(Template)]
#[template(path = "agents/prompt.html")]
struct PromptPage {
    layout: Layout,
    p: Prompt,
    metadata: String,
    age: crate::web::At,
    parent: Option<Prompt>,
    children: Vec<TreeNode>,
    /// (what happened, when, by what)
    timeline: Vec<(&'static str, crate::web::At, String)>,
    here: String,
}

async fn prompt_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let p = prompts::get(&s.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("prompt"))?;
    let parent = match p.parent_id {
        Some(pid) => prompts::get(&s.db, pid).await?,
        None => None,
    };
    let children =
        delegation_tree(&s.agents_state(), prompts::children(&s.db, id, 200).await?).await?;
    let now = s.clock.now();
    let w = |t: &Option<String>| crate::web::at(now, t.as_deref().unwrap_or(""));
    let mut timeline = vec![(
        "queued",
        crate::web::at(now, &p.created_at),
        format!("by {}", p.created_by),
    )];
    for (what, at, by) in [
        ("assigned", &p.assigned_at, p.assigned_session.clone()),
        ("typed", &p.typed_at, None),
        ("accepted", &p.started_at, p.accepted_by.clone()),
        ("finished", &p.completed_at, p.completed_by.clone()),
        ("escalated", &p.escalated_at, p.escalated_to.clone()),
    ] {
        if at.is_some() {
            timeline.push((what, w(at), by.unwrap_or_default()));
        }
    }
    Ok(render(&PromptPage {
        layout: Layout::new(&s, &who, "assigner", &format!("Prompt #{id}")).with_flash(&flash),
        metadata: match p.metadata.as_object() {
            Some(m) if m.is_empty() => String::new(),
            _ if p.metadata.is_null() => String::new(),
            _ => serde_json::to_string_pretty(&p.metadata).unwrap_or_default(),
        },
        age: crate::web::at(now, &p.created_at),
        parent,
        children,
        timeline,
        here: format!("/assigner/prompts/{id}"),
        p,
    }))
}

#[derive(Deserialize)]
struct NextForm {
    #[serde(default)]
    next: String,
}

async fn cancel(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, NextForm>,
) -> Response {
    let back = assigner_back(&f.next);
    match prompts::cancel(&s.db, &who.actor(), id, &s.clock.now_str()).await {
        Ok(true) => {
            s.events
                .emit(crate::events::Topic::Prompts, "cancelled", id);
            see_other(back, &format!("Cancelled prompt #{id}."))
        }
        Ok(false) => back_with_error(
            back,
            &ApiError::conflict(format!("prompt #{id} cannot be cancelled now")),
        ),
        Err(e) => back_with_error(back, &ApiError::from(e)),
    }
}

async fn retry(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, NextForm>,
) -> Response {
    let back = assigner_back(&f.next);
    match prompts::retry(&s.db, &who.actor(), id, &s.clock.now_str()).await {
        Ok(true) => {
            s.events.emit(crate::events::Topic::Prompts, "updated", id);
            s.agents.wake_dispatcher();
            see_other(back, &format!("Prompt #{id} is queued again."))
        }
        Ok(false) => back_with_error(
            back,
            &ApiError::conflict(format!(
                "prompt #{id} cannot be retried (not failed or cancelled, or out of retries)"
            )),
        ),
        Err(e) => back_with_error(back, &ApiError::from(e)),
    }
}
