//! Dashboard pages of this domain: the tmux panel (sessions with state badges, send box,
//! create / kill, a live pane view over server-sent events) and the Assigner panel (queue by
//! status, send form, retry / cancel / reassign, the delegation tree, a page per prompt with
//! its response, parent and children). Permission prompts and patterns have their own panel
//! (`interactions_pages.rs`); the Assigner links to it.

use super::assigner::api::{enqueue, reassign_prompt};
use super::assigner::store::{self as prompts, PromptFilter};
use super::assigner::{NewPrompt, Prompt, PromptStatus};
use super::permission_store as pstore;
use super::route::{self, NodeRef, TmuxOp};
use super::sessions::{self, LiveSession, NodeFailure};
use super::tmux::{CaptureMode, NewSession, SessionName};
use super::AgentsError;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::time::Duration;

/// How often the live pane view re-reads the pane (it sends only changes).
pub const PANE_STREAM_EVERY: Duration = Duration::from_millis(500);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tmux", get(tmux_page))
        .route("/tmux/view/{name}", get(pane_page))
        .route("/tmux/view/{name}/stream", get(pane_stream))
        .route("/tmux/send", post(send))
        .route("/tmux/create", post(create))
        .route("/tmux/kill", post(kill))
        .route("/assigner", get(assigner_page))
        .route("/assigner/send", post(assigner_send))
        .route("/assigner/prompts/{id}/cancel", post(cancel))
        .route("/assigner/prompts/{id}/retry", post(retry))
        .route("/assigner/prompts/{id}/reassign", post(reassign))
        .route("/assigner/prompts/{id}", get(prompt_page))
        .merge(super::interactions_pages::routes())
}

#[derive(Template)]
#[template(path = "agents/tmux.html")]
struct TmuxPage {
    layout: Layout,
    sessions: Vec<LiveSession>,
    errors: Vec<NodeFailure>,
}

async fn tmux_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let (sessions, errors) = sessions::observe_all(&s, &[NodeRef::Local], false).await;
    Ok(render(&TmuxPage {
        layout: Layout::new(&s, &who, "tmux", "tmux").with_flash(&flash),
        sessions,
        errors,
    }))
}

#[derive(Template)]
#[template(path = "agents/pane.html")]
struct PanePage {
    layout: Layout,
    name: String,
    screen: String,
}

fn page_name(raw: &str) -> Result<SessionName, PageError> {
    SessionName::parse(raw).map_err(|e| PageError::from(ApiError::invalid("session", e.message)))
}

async fn pane_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let n = page_name(&name)?;
    let screen = s
        .agents
        .tmux()
        .capture(&n, 200, CaptureMode::Plain)
        .await
        .map_err(|e| PageError::from(ApiError::from(AgentsError::from(e))))?;
    Ok(render(&PanePage {
        layout: Layout::new(&s, &who, "tmux", &format!("tmux · {n}")),
        name: n.to_string(),
        screen,
    }))
}

/// Server-sent events: `pane` with the captured text whenever it changes; `gone` when the
/// session ends (then the stream closes).
async fn pane_stream(
    State(s): State<AppState>,
    PageAuthed(..): PageAuthed<Read>,
    Path(name): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, PageError>
{
    let n = page_name(&name)?;
    let tmux = s.agents.tmux().clone();
    let stream = futures_util::stream::unfold(
        (tmux, n, String::new(), false),
        |(tmux, n, last, done)| async move {
            if done {
                return None;
            }
            loop {
                match tmux.capture(&n, 200, CaptureMode::Plain).await {
                    Ok(screen) if screen != last => {
                        let ev = Event::default().event("pane").data(screen.clone());
                        return Some((Ok(ev), (tmux, n, screen, false)));
                    }
                    Ok(_) => tokio::time::sleep(PANE_STREAM_EVERY).await,
                    Err(_) => {
                        let ev = Event::default().event("gone").data("session ended");
                        return Some((Ok(ev), (tmux, n, last, true)));
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
struct SendForm {
    session: String,
    text: String,
}

async fn send(
    State(s): State<AppState>,
    PageForm(_, f, ..): PageForm<Write, SendForm>,
) -> Response {
    let r = async {
        let n = SessionName::parse(&f.session)?;
        if f.text.is_empty() {
            return Err(AgentsError::Invalid(crate::validate::invalid(
                "text",
                "text must not be empty",
            )));
        }
        route::run(
            &s,
            &NodeRef::Local,
            TmuxOp::SendText {
                session: n,
                text: f.text.clone(),
                enter: true,
                enter_delay: Duration::ZERO,
            },
        )
        .await
    }
    .await;
    match r {
        Ok(_) => see_other("/tmux", &format!("Sent to {}.", f.session)),
        Err(e) => back_with_error("/tmux", &ApiError::from(e)),
    }
}

#[derive(Deserialize)]
struct CreateForm {
    name: String,
    /// Program and arguments separated by spaces (no shell); empty: the default shell.
    #[serde(default)]
    command: String,
}

async fn create(
    State(s): State<AppState>,
    PageForm(_, f, ..): PageForm<Write, CreateForm>,
) -> Response {
    let r = async {
        let n = SessionName::parse(&f.name)?;
        route::run(
            &s,
            &NodeRef::Local,
            TmuxOp::Create(NewSession {
                name: Some(n),
                command: f.command.split_whitespace().map(str::to_string).collect(),
                width: 200,
                height: 50,
                ..Default::default()
            }),
        )
        .await
    }
    .await;
    match r {
        Ok(_) => see_other("/tmux", &format!("Created {}.", f.name)),
        Err(e) => back_with_error("/tmux", &ApiError::from(e)),
    }
}

#[derive(Deserialize)]
struct KillForm {
    session: String,
}

async fn kill(
    State(s): State<AppState>,
    PageForm(_, f, ..): PageForm<Write, KillForm>,
) -> Response {
    let r = async {
        let n = SessionName::parse(&f.session)?;
        route::run(&s, &NodeRef::Local, TmuxOp::Kill(n)).await
    }
    .await;
    match r {
        Ok(_) => see_other("/tmux", &format!("Killed {}.", f.session)),
        Err(e) => back_with_error("/tmux", &ApiError::from(e)),
    }
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
    age: String,
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

/// "3m", "2h 5m", "4d": how long ago `t` was.
pub fn age(now: time::OffsetDateTime, t: &str) -> String {
    let Some(then) = crate::clock::parse(t) else {
        return String::new();
    };
    let s = (now - then).whole_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d", s / 86_400),
    }
}

/// The delegation trees of the newest root prompts that have children, flattened depth
/// first, bounded in depth and size.
async fn delegation_tree(s: &AppState, roots: Vec<Prompt>) -> Result<Vec<TreeNode>, sqlx::Error> {
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
            age: age(now, &p.created_at),
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
        tree: delegation_tree(&s, prompts::delegation_roots(&s.db, 20).await?).await?,
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
    match enqueue(&s, &who.username, p, None).await {
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
    PageForm(_, f, ..): PageForm<Write, ReassignForm>,
) -> Response {
    let back = assigner_back(&f.next);
    let to = Some(f.to.trim()).filter(|t| !t.is_empty());
    match reassign_prompt(&s, id, to).await {
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
    age: String,
    parent: Option<Prompt>,
    children: Vec<TreeNode>,
    /// (what happened, when, by what)
    timeline: Vec<(&'static str, String, String)>,
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
    let children = delegation_tree(&s, prompts::children(&s.db, id, 200).await?).await?;
    let w = |t: &Option<String>| t.as_deref().map(crate::web::when).unwrap_or_default();
    let mut timeline = vec![(
        "queued",
        crate::web::when(&p.created_at),
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
        age: age(s.clock.now(), &p.created_at),
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
    PageForm(_, f, ..): PageForm<Write, NextForm>,
) -> Response {
    let back = assigner_back(&f.next);
    match prompts::cancel(&s.db, id, &s.clock.now_str()).await {
        Ok(true) => see_other(back, &format!("Cancelled prompt #{id}.")),
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
    PageForm(_, f, ..): PageForm<Write, NextForm>,
) -> Response {
    let back = assigner_back(&f.next);
    match prompts::retry(&s.db, id, &s.clock.now_str()).await {
        Ok(true) => {
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
