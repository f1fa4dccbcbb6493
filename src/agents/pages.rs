//! Dashboard pages of this domain: the tmux panel (the sessions of every node with state
//! badges, the sessions the registry knows that no node lists, nodes that did not answer, a
//! send box, kill, and the start form), and a live pane view over server-sent events, for a
//! session on any node (`/tmux/view/NAME?node=NODE`; no `node` is this machine). Everything
//! reaches a node through `route` (the node command channel for remote nodes); the start form
//! is `launch::start`, the code path of `POST /api/agents/sessions`. The Assigner panel is
//! `assigner/pages.rs`, the Interactions panel `interactions_pages.rs`; both are routed here.

use super::api::{every_session, KnownSession};
use super::launch::{self, LaunchAgent, StartSession};
use super::route::{self, NodeRef, TmuxAnswer, TmuxOp};
use super::sessions::{LiveSession, NodeFailure};
use super::{AgentsError, SessionRole};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, PaneRead, Read, Write};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::tmux::{CaptureMode, SessionName, TmuxError};
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::time::Duration;

/// How often the live pane view re-reads a pane on this machine (it sends only changes).
pub const PANE_STREAM_EVERY: Duration = Duration::from_millis(500);
/// How often it re-reads a pane on another node: each read is a node command (a row in
/// `node_commands` and a round trip to the node's agent), so half as often.
pub const REMOTE_PANE_STREAM_EVERY: Duration = Duration::from_secs(1);
/// Lines of a pane the pane view shows.
const PANE_LINES: u32 = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tmux", get(tmux_page))
        .route("/tmux/view/{name}", get(pane_page))
        .route("/tmux/view/{name}/stream", get(pane_stream))
        .route("/tmux/send", post(send))
        .route("/tmux/create", post(create))
        .route("/tmux/kill", post(kill))
        .merge(super::assigner::pages::routes())
        .merge(super::interactions_pages::routes())
}

/// What the start form holds: as typed, so a refused start shows it again.
#[derive(Deserialize, Default, Debug, Clone)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    node: String,
    #[serde(default)]
    cwd: String,
    /// The checkbox: present when ticked.
    #[serde(default)]
    worktree: Option<String>,
    #[serde(default)]
    branch: String,
}

/// The start form's refusal: the message and the field it names.
struct FormError {
    message: String,
    field: Option<String>,
}

#[derive(Template)]
#[template(path = "agents/tmux.html")]
struct TmuxPage {
    layout: Layout,
    sessions: Vec<LiveSession>,
    errors: Vec<NodeFailure>,
    known: Vec<KnownSession>,
    /// Nodes a session can be started on: `(name, status)`, `local` first.
    nodes: Vec<(String, String)>,
    agents: Vec<&'static str>,
    roles: Vec<&'static str>,
    form: CreateForm,
    form_error: Option<FormError>,
}

impl TmuxPage {
    /// The link to a session's pane page.
    fn pane_href(&self, node: &str, name: &str) -> String {
        pane_href(&node_ref(node), name)
    }
}

fn node_ref(node: &str) -> NodeRef {
    NodeRef::parse(Some(node)).unwrap_or_else(|_| NodeRef::Remote(node.to_string()))
}

fn pane_href(node: &NodeRef, name: &str) -> String {
    format!("/tmux/view/{name}{}", node.query())
}

async fn tmux_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let layout = Layout::new(&s, &who, "tmux", "tmux").with_flash(&flash);
    panel(&s, &who, layout, CreateForm::default(), None).await
}

/// The panel, with the start form holding `form` (and `form_error` when a start was refused).
async fn panel(
    s: &AppState,
    who: &Identity,
    layout: Layout,
    form: CreateForm,
    form_error: Option<FormError>,
) -> Result<Response, PageError> {
    let (list, nodes) = every_session(&s.agents_state()).await?;
    let agents = [
        LaunchAgent::Claude,
        LaunchAgent::Codex,
        LaunchAgent::Chat,
        LaunchAgent::Shell,
    ]
    .into_iter()
    // A shell runs code of the caller's choosing: offered to those who may (launch checks).
    .filter(|a| *a != LaunchAgent::Shell || who.can(crate::auth::Capability::Exec))
    .map(|a| a.as_str())
    .collect();
    let roles = [
        SessionRole::Worker,
        SessionRole::Manager,
        SessionRole::HighLevel,
    ]
    .into_iter()
    .map(|r| r.as_str())
    .collect();
    Ok(render(&TmuxPage {
        layout,
        sessions: list.sessions,
        errors: list.errors,
        known: list.known,
        nodes,
        agents,
        roles,
        form,
        form_error,
    }))
}

#[derive(Template)]
#[template(path = "agents/pane.html")]
struct PanePage {
    layout: Layout,
    name: String,
    /// The node's name (`local` for this machine).
    node: String,
    /// `?node=…` for a remote node, else empty.
    node_query: String,
    screen: String,
    /// `(tmux key, label)` buttons.
    keys: &'static [(&'static str, &'static str)],
}

fn page_name(raw: &str) -> Result<SessionName, PageError> {
    SessionName::parse(raw).map_err(|e| PageError::from(ApiError::invalid("session", e.message)))
}

/// `?node=NAME` of the pane URLs (absent: this machine), and the page's flash.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeQuery {
    node: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn page_node(raw: Option<&str>) -> Result<NodeRef, PageError> {
    NodeRef::parse(raw).map_err(|e| PageError::from(ApiError::invalid(e.field, e.message)))
}

/// The pane's last [`PANE_LINES`] lines, wherever the session runs.
async fn capture(
    s: &crate::agents::AgentsState,
    node: &NodeRef,
    name: &SessionName,
) -> Result<String, AgentsError> {
    match route::run(
        s,
        node,
        TmuxOp::Capture {
            session: name.clone(),
            lines: PANE_LINES,
            mode: CaptureMode::Plain,
        },
    )
    .await?
    {
        TmuxAnswer::Text(t) => Ok(t),
        _ => Ok(String::new()),
    }
}

async fn pane_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<PaneRead>,
    Path(name): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Response, PageError> {
    let n = page_name(&name)?;
    let node = page_node(q.node.as_deref())?;
    let screen = capture(&s.agents_state(), &node, &n)
        .await
        .map_err(|e| PageError::from(ApiError::from(e)))?;
    let title = match &node {
        NodeRef::Local => format!("tmux · {n}"),
        NodeRef::Remote(r) => format!("tmux · {n} on {r}"),
    };
    Ok(render(&PanePage {
        layout: Layout::new(&s, &who, "tmux", &title).with_flash(&Flash {
            notice: q.notice,
            error: q.error,
        }),
        name: n.to_string(),
        node: node.name().to_string(),
        node_query: node.query(),
        screen,
        keys: PAGE_KEYS,
    }))
}

/// Server-sent events: `pane` with the captured text whenever it changes; `unreachable` with
/// the reason while the session's node does not answer (reads go on); `gone` when the
/// session ends (then the stream closes). It also ends when the server shuts down and when
/// the viewer's session or token stops being valid (checked every `events::api::RECHECK`):
/// a screen is not shown to someone who signed out.
async fn pane_stream(
    State(s): State<AppState>,
    PageAuthed(..): PageAuthed<PaneRead>,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, PageError>
{
    let n = page_name(&name)?;
    let node = page_node(q.node.as_deref())?;
    // Read once before streaming: an unknown node or session is an error page, not a stream.
    let first = capture(&s.agents_state(), &node, &n)
        .await
        .map_err(|e| PageError::from(ApiError::from(e)))?;
    let every = match node {
        NodeRef::Local => PANE_STREAM_EVERY,
        NodeRef::Remote(_) => REMOTE_PANE_STREAM_EVERY,
    };
    struct Watch {
        s: AppState,
        /// Built once for the stream's reads.
        agents: crate::agents::AgentsState,
        node: NodeRef,
        name: SessionName,
        last: String,
        /// The last read failed for a reason other than the session ending.
        failing: bool,
        done: bool,
        /// The first read, not sent yet.
        first: Option<String>,
        headers: axum::http::HeaderMap,
        checked: tokio::time::Instant,
    }
    let start = Watch {
        headers,
        checked: tokio::time::Instant::now(),
        agents: s.agents_state(),
        s,
        node,
        name: n,
        last: String::new(),
        failing: false,
        done: false,
        first: Some(first),
    };
    let stream = futures_util::stream::unfold(start, move |mut w| async move {
        if w.done {
            return None;
        }
        if let Some(screen) = w.first.take() {
            let ev = Event::default().event("pane").data(screen.clone());
            w.last = screen;
            return Some((Ok(ev), w));
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = w.s.events.closed() => return None,
            }
            if w.checked.elapsed() >= crate::events::api::RECHECK {
                if !crate::auth::extract::still_signed_in(&w.s, &w.headers).await {
                    return None;
                }
                w.checked = tokio::time::Instant::now();
            }
            match capture(&w.agents, &w.node, &w.name).await {
                Ok(screen) if screen != w.last || w.failing => {
                    w.failing = false;
                    let ev = Event::default().event("pane").data(screen.clone());
                    w.last = screen;
                    return Some((Ok(ev), w));
                }
                Ok(_) => {}
                Err(AgentsError::Tmux(TmuxError::NoSuchSession(_))) => {
                    w.done = true;
                    let ev = Event::default().event("gone").data("session ended");
                    return Some((Ok(ev), w));
                }
                Err(e) if !w.failing => {
                    w.failing = true;
                    let ev = Event::default().event("unreachable").data(e.to_string());
                    return Some((Ok(ev), w));
                }
                Err(_) => {}
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Where a form on the panel or a pane page sends the browser back to.
fn back_to(node: &NodeRef, session: &str, from: Option<&str>) -> String {
    match from {
        Some("pane") if SessionName::parse(session).is_ok() => pane_href(node, session),
        _ => "/tmux".to_string(),
    }
}

/// The keys a pane page offers as buttons (tmux key names): what agents' prompts and menus
/// ask for.
const PAGE_KEYS: &[(&str, &str)] = &[
    ("Enter", "Enter"),
    ("Escape", "Esc"),
    ("C-c", "Ctrl-C"),
    ("Up", "↑"),
    ("Down", "↓"),
    ("Tab", "Tab"),
];

#[derive(Deserialize)]
struct SendForm {
    session: String,
    #[serde(default)]
    text: String,
    /// One of [`PAGE_KEYS`], pressed instead of typing text.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    node: Option<String>,
    /// `pane` when posted from a pane page (the answer goes back there).
    #[serde(default)]
    from: Option<String>,
}

async fn send(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, SendForm>,
) -> Response {
    let node = NodeRef::parse(f.node.as_deref());
    let back = back_to(
        node.as_ref().unwrap_or(&NodeRef::Local),
        &f.session,
        f.from.as_deref(),
    );
    let r = async {
        let node = node.map_err(AgentsError::from)?;
        let n = SessionName::parse(&f.session).map_err(AgentsError::from)?;
        let op = match f.key.as_deref() {
            Some(k) => {
                let Some((key, _)) = PAGE_KEYS.iter().find(|(name, _)| *name == k) else {
                    return Err(ApiError::invalid("key", "not a key this page offers"));
                };
                TmuxOp::SendKeys {
                    session: n.clone(),
                    keys: vec![key.to_string()],
                }
            }
            None if f.text.is_empty() => {
                return Err(ApiError::invalid("text", "text must not be empty"));
            }
            None => TmuxOp::SendText {
                session: n.clone(),
                text: f.text.clone(),
                enter: true,
                enter_delay: Duration::ZERO,
            },
        };
        super::api::ensure_may_type(&s.agents_state(), &who, &node, &n).await?;
        route::run(&s.agents_state(), &node, op)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match r {
        Ok(_) => match &f.key {
            Some(k) => see_other(&back, &format!("Pressed {k} in {}.", f.session)),
            None => see_other(&back, &format!("Sent to {}.", f.session)),
        },
        Err(e) => back_with_error(&back, &e),
    }
}

impl CreateForm {
    /// The form as a start request, or the field it gets wrong.
    fn request(&self) -> Result<StartSession, AgentsError> {
        let text = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        let agent = self.agent.trim().parse::<LaunchAgent>().map_err(|_| {
            crate::validate::invalid("agent", "choose an agent: claude, codex, chat or shell")
        })?;
        let role = match text(&self.role) {
            None => None,
            Some(r) => Some(r.parse::<SessionRole>().map_err(|_| {
                crate::validate::invalid("role", "role must be worker, manager or high_level")
            })?),
        };
        let branch = text(&self.branch);
        Ok(StartSession {
            name: self.name.trim().to_string(),
            agent,
            cwd: text(&self.cwd),
            node: text(&self.node),
            role,
            groups: Vec::new(),
            manager: None,
            // A branch typed in asks for a worktree, ticked or not.
            worktree: self.worktree.is_some() || branch.is_some(),
            branch,
            program: None,
            args: Vec::new(),
            env: Default::default(),
            no_gateway: false,
        })
    }
}

/// Starts an agent session on the chosen node through `launch::start` (what `POST
/// /api/agents/sessions` and `architect session start` do): a shell needs Exec there. A
/// refused start shows the panel again with the form as typed and the reason.
async fn create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, CreateForm>,
) -> Response {
    let started = match f.request() {
        Ok(req) => launch::start(&s.agents_state(), &who, req).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(st) => see_other(
            "/tmux",
            &format!("Started {} ({}) on {}.", st.session, st.agent, st.node),
        ),
        Err(e) => {
            let e = ApiError::from(e);
            let layout = Layout::new(&s, &who, "tmux", "tmux");
            let form_error = FormError {
                message: e.message.clone(),
                field: e.field.clone(),
            };
            match panel(&s, &who, layout, f, Some(form_error)).await {
                Ok(page) => (e.status, page).into_response(),
                Err(p) => p.into_response(),
            }
        }
    }
}

#[derive(Deserialize)]
struct KillForm {
    session: String,
    #[serde(default)]
    node: Option<String>,
}

async fn kill(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, KillForm>,
) -> Response {
    let r = async {
        let node = NodeRef::parse(f.node.as_deref())?;
        let n = SessionName::parse(&f.session)?;
        super::api::kill_session(&s.agents_state(), &who.actor(), &node, &n).await?;
        Ok::<_, AgentsError>(node)
    }
    .await;
    match r {
        Ok(node) => see_other(
            "/tmux",
            &format!("Killed {} on {}.", f.session, node.name()),
        ),
        Err(e) => back_with_error("/tmux", &ApiError::from(e)),
    }
}
