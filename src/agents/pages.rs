//! Dashboard pages of this domain: the tmux panel (sessions with state badges, send box,
//! create / kill, a live pane view over server-sent events). The Assigner panel is
//! `assigner/pages.rs`, the Interactions panel `interactions_pages.rs`; both are routed here.

use super::route::{self, NodeRef, TmuxOp};
use super::sessions::{self, LiveSession, NodeFailure};
use super::tmux::{CaptureMode, NewSession, SessionName};
use super::AgentsError;
use crate::app::AppState;
use crate::auth::extract::{Exec, PageAuthed, PageForm, PaneRead, Read, Write};
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
        .merge(super::assigner::pages::routes())
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
    PageAuthed(who, ..): PageAuthed<PaneRead>,
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
    PageAuthed(..): PageAuthed<PaneRead>,
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
    PageForm(who, f, ..): PageForm<Write, SendForm>,
) -> Response {
    let r = async {
        let n = SessionName::parse(&f.session).map_err(AgentsError::from)?;
        if f.text.is_empty() {
            return Err(AgentsError::Invalid(crate::validate::invalid(
                "text",
                "text must not be empty",
            ))
            .into());
        }
        super::api::ensure_may_type(&s, &who, &NodeRef::Local, &n).await?;
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
        .map_err(ApiError::from)
    }
    .await;
    match r {
        Ok(_) => see_other("/tmux", &format!("Sent to {}.", f.session)),
        Err(e) => back_with_error("/tmux", &e),
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
    PageForm(_, f, ..): PageForm<Exec, CreateForm>,
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
