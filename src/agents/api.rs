//! JSON routes of this domain: `/api/tmux/*` (sessions on any node, through `route`) and the
//! classifier's pattern table (`pattern_api.rs`).
//!
//! Who may do what (docs/decisions/0005-principals.md): listing needs `Read`; reading a pane
//! needs `PaneRead` (a screen can show secrets), or a session's own token for its own pane;
//! typing into an agent's pane, killing a session and editing patterns need `Write`; typing
//! into a shell (or a pane no agent was recognised in) and creating a tmux session need
//! `Exec` (admins): both run code of the caller's choosing on the node.

use super::classify::{self, AgentKind};
use super::route::{self, NodeRef, TmuxAnswer, TmuxOp};
use super::sessions::{self, LiveSession, NodeFailure};
use super::{store, AgentsError};
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Exec, PaneRead, Read, SessionOr, Write};
use crate::auth::{Capability, Identity};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::tmux::{CaptureMode, NewSession, SessionName, TmuxError};
use crate::validate::Invalid;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tmux/sessions", get(list_sessions))
        .route("/api/tmux/sessions/refresh", post(refresh_sessions))
        .route("/api/tmux/send", post(send))
        .route("/api/tmux/capture", post(capture))
        .route("/api/tmux/create", post(create))
        .route("/api/tmux/kill", post(kill))
        .merge(super::pattern_api::routes())
        .merge(super::sessions_api::routes())
        .merge(super::assigner::api::routes())
        .merge(super::interactions_api::routes())
        .merge(super::agents_api::routes())
}

impl From<AgentsError> for ApiError {
    fn from(e: AgentsError) -> Self {
        match e {
            AgentsError::NotFound(what) => ApiError::not_found(&what),
            AgentsError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            AgentsError::Conflict(msg) => ApiError::conflict(msg),
            AgentsError::Forbidden(msg) => ApiError::forbidden(msg),
            AgentsError::Transition {
                what,
                from,
                to,
                allowed,
            } => ApiError::invalid_transition(
                format!(
                    "cannot move {what} from '{from}' to '{to}'; allowed next: {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
                allowed,
            ),
            AgentsError::Node(e) => ApiError::from(e).with_field("node"),
            AgentsError::Tmux(t) => t.into(),
            AgentsError::Db(e) => ApiError::from(e),
        }
    }
}

impl From<TmuxError> for ApiError {
    fn from(e: TmuxError) -> Self {
        match e {
            TmuxError::NoSuchSession(name) => {
                ApiError::not_found(&format!("tmux session '{name}'")).with_field("session")
            }
            TmuxError::Exists(name) => {
                ApiError::conflict(format!("tmux session '{name}' already exists"))
                    .with_field("name")
            }
            TmuxError::Invalid(msg) => ApiError::invalid("body", msg),
            e @ (TmuxError::Spawn(_) | TmuxError::Hung(_) | TmuxError::Failed { .. }) => {
                tracing::warn!(error = %e, "tmux failed");
                ApiError::new(StatusCode::BAD_GATEWAY, "tmux_failed", e.to_string())
            }
        }
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

fn node(raw: Option<&str>) -> Result<NodeRef, ApiError> {
    NodeRef::parse(raw).map_err(|e| ApiError::invalid(e.field, e.message))
}

fn session_name(raw: &str, field: &str) -> Result<SessionName, ApiError> {
    SessionName::parse(raw).map_err(|e| ApiError::invalid(field, e.message))
}

// ---- tmux sessions ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFilter {
    node: Option<String>,
}

/// Sessions of every connected node (or of the node asked for), each tagged with its node;
/// nodes that could not be listed appear in `errors`; sessions the registry knows that no
/// node listed just now appear in `known`.
#[derive(Serialize, Deserialize, Debug)]
pub struct SessionList {
    pub sessions: Vec<LiveSession>,
    pub errors: Vec<NodeFailure>,
    #[serde(default)]
    pub known: Vec<KnownSession>,
}

/// A session of the registry (`agent_sessions`, not marked gone) that no node listed just
/// now: its last recorded state, and why it is not live.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KnownSession {
    pub node: String,
    pub name: String,
    pub agent: Option<String>,
    pub role: Option<String>,
    /// The state last recorded (by a refresh or a hook), not read now.
    pub state: String,
    pub last_seen_at: Option<String>,
    /// Why it is not among the live sessions.
    pub why: String,
}

async fn list_sessions(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Query(f): Query<NodeFilter>,
) -> ApiResult<SessionList> {
    match f.node.as_deref() {
        Some(n) => {
            let nodes = vec![node(Some(n))?];
            let (sessions, errors) = sessions::observe_all(&s, &nodes, false).await;
            Ok(Json(SessionList {
                sessions,
                errors,
                known: Vec::new(),
            }))
        }
        None => Ok(Json(every_session(&s).await?.0)),
    }
}

/// The sessions of every node: this one and every connected node asked at once (each within
/// `route::NODE_DEADLINE`), the other nodes named in `errors` with why they were not asked,
/// and the registry's sessions none of them listed. Also returns the nodes a session can be
/// started on (`route::Fleet::choices`).
pub(crate) async fn every_session(
    s: &AgentsState,
) -> Result<(SessionList, Vec<(String, String)>), ApiError> {
    let fleet = route::fleet(s).await?;
    let (sessions, mut errors) = sessions::observe_all(s, &fleet.reachable, false).await;
    errors.extend(fleet.unreachable.iter().map(|(node, error)| NodeFailure {
        node: node.clone(),
        error: error.clone(),
    }));
    let mut known = Vec::new();
    for row in store::sessions(&s.db).await? {
        if row.gone_at.is_some()
            || sessions
                .iter()
                .any(|l| l.node == row.node && l.tmux.name == row.name)
        {
            continue;
        }
        let why = match errors.iter().find(|e| e.node == row.node) {
            Some(e) => e.error.clone(),
            None if fleet.reachable.iter().any(|n| n.name() == row.node) => {
                "not running: its node does not list it".to_string()
            }
            None => format!("there is no node '{}' now", row.node),
        };
        known.push(KnownSession {
            node: row.node,
            name: row.name,
            agent: row.agent,
            role: row.role,
            state: row.state,
            last_seen_at: row.last_seen_at,
            why,
        });
    }
    Ok((
        SessionList {
            sessions,
            errors,
            known,
        },
        fleet.choices,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    node: Option<String>,
}

async fn refresh_sessions(
    State(s): State<AgentsState>,
    _: Authed<Write>,
    body: axum::body::Bytes,
) -> ApiResult<SessionList> {
    // The body is optional: `{}` or nothing refreshes this node.
    let req: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        crate::http::extract::parse_json(&body)?
    };
    let nodes = vec![node(req.node.as_deref())?];
    let (sessions, errors) = sessions::observe_all(&s, &nodes, true).await;
    if nodes == [NodeRef::Local] {
        super::interactions::scan(&s, &sessions).await?;
    }
    Ok(Json(SessionList {
        sessions,
        errors,
        known: Vec::new(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendRequest {
    node: Option<String>,
    session: String,
    /// Text typed literally (pasted when multi-line or long).
    text: Option<String>,
    /// Press Enter after the text (default true).
    enter: Option<bool>,
    /// tmux key names pressed after the text, e.g. ["Escape"] or ["C-c"].
    keys: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Sent {
    pub success: bool,
    pub node: String,
    pub session: String,
}

/// Longest text `/api/tmux/send` accepts (bytes).
const MAX_SEND_BYTES: usize = 64 * 1024;

/// Refuses to let `who` type into `session` unless an agent runs there, or `who` may run
/// code: text typed into a shell is run by it. The pane is classified now (a launched
/// session's agent is known), so a pane whose agent exited back to a shell counts as a shell.
pub(crate) async fn ensure_may_type(
    s: &AgentsState,
    who: &Identity,
    n: &NodeRef,
    session: &SessionName,
) -> Result<(), ApiError> {
    if who.can(Capability::Exec) {
        return Ok(());
    }
    let info = match route::run(s, n, TmuxOp::List).await? {
        TmuxAnswer::Sessions(list) => list.into_iter().find(|i| i.name == session.as_str()),
        _ => None,
    }
    .ok_or_else(|| ApiError::not_found(&format!("tmux session '{session}'")))?;
    let hint = store::session(&s.db, n.name(), session.as_str())
        .await?
        .filter(|k| k.launched != 0)
        .and_then(|k| k.agent)
        .and_then(|a| a.parse().ok());
    let (c, _) = sessions::classify_session(s, n, &info, hint).await?;
    if matches!(c.agent, AgentKind::Shell | AgentKind::Other) {
        return Err(ApiError::forbidden(format!(
            "no agent runs in '{session}' (it reads as {}): typing into it runs code, which \
             only an admin may do",
            c.agent
        )));
    }
    Ok(())
}

async fn send(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<SendRequest>,
) -> ApiResult<Sent> {
    let n = node(r.node.as_deref())?;
    let session = session_name(&r.session, "session")?;
    if r.text.is_none() && r.keys.is_none() {
        return Err(ApiError::invalid("text", "give 'text', 'keys' or both"));
    }
    ensure_may_type(&s, who.identity(), &n, &session).await?;
    if let Some(text) = &r.text {
        if text.len() > MAX_SEND_BYTES {
            return Err(ApiError::invalid(
                "text",
                format!("text is longer than {MAX_SEND_BYTES} bytes"),
            ));
        }
        if text.contains('\0') {
            return Err(ApiError::invalid("text", "text contains a NUL character"));
        }
        route::run(
            &s,
            &n,
            TmuxOp::SendText {
                session: session.clone(),
                text: text.clone(),
                enter: r.enter.unwrap_or(true),
                enter_delay: Duration::ZERO,
            },
        )
        .await?;
    }
    if let Some(keys) = r.keys {
        route::run(
            &s,
            &n,
            TmuxOp::SendKeys {
                session: session.clone(),
                keys,
            },
        )
        .await?;
    }
    Ok(Json(Sent {
        success: true,
        node: n.name().to_string(),
        session: session.to_string(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureRequest {
    node: Option<String>,
    session: String,
    /// Last N lines (default 100, at most 5000).
    lines: Option<u32>,
    /// Keep colour escapes (default false).
    escapes: Option<bool>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Captured {
    pub node: String,
    pub session: String,
    pub output: String,
    pub classification: classify::Classification,
}

async fn capture(
    State(s): State<AgentsState>,
    who: SessionOr<PaneRead>,
    Json(r): Json<CaptureRequest>,
) -> ApiResult<Captured> {
    let n = node(r.node.as_deref())?;
    let session = session_name(&r.session, "session")?;
    who.confine(n.name(), session.as_str())?;
    let lines = r.lines.unwrap_or(100);
    if lines == 0 || lines > crate::tmux::MAX_CAPTURE_LINES {
        return Err(ApiError::invalid("lines", "lines must be 1-5000"));
    }
    let mode = if r.escapes.unwrap_or(false) {
        CaptureMode::Escapes
    } else {
        CaptureMode::Plain
    };
    let info = match route::run(&s, &n, TmuxOp::List).await? {
        TmuxAnswer::Sessions(list) => list.into_iter().find(|i| i.name == session.as_str()),
        _ => None,
    }
    .ok_or_else(|| ApiError::not_found(&format!("tmux session '{session}'")))?;
    let known = store::session(&s.db, n.name(), session.as_str()).await?;
    let hint = known
        .filter(|k| k.launched != 0)
        .and_then(|k| k.agent)
        .and_then(|a| a.parse().ok());
    let (classification, _) = sessions::classify_session(&s, &n, &info, hint).await?;
    // Captured after the classification, so the text is never older than the state it comes
    // with (a caller that waited for a state finds its screen in `output`).
    let output = match route::run(
        &s,
        &n,
        TmuxOp::Capture {
            session: session.clone(),
            lines,
            mode,
        },
    )
    .await?
    {
        TmuxAnswer::Text(t) => t,
        _ => String::new(),
    };
    Ok(Json(Captured {
        node: n.name().to_string(),
        session: session.to_string(),
        output,
        classification,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    node: Option<String>,
    name: String,
    cwd: Option<String>,
    /// Program and arguments, run directly (no shell). Default: the user's shell.
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    width: Option<u16>,
    height: Option<u16>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Created {
    pub success: bool,
    pub node: String,
    pub session: String,
}

fn check_env_name(k: &str) -> Result<(), ApiError> {
    let ok = !k.is_empty()
        && k.len() <= 128
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !k.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "env",
            format!("'{k}' is not a valid environment variable name"),
        ))
    }
}

async fn create(
    State(s): State<AgentsState>,
    who: Authed<Exec>,
    Json(r): Json<CreateRequest>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let n = node(r.node.as_deref())?;
    let name = session_name(&r.name, "name")?;
    for k in r.env.keys() {
        check_env_name(k)?;
    }
    if r.command.iter().any(|a| a.contains('\0')) || r.env.values().any(|v| v.contains('\0')) {
        return Err(ApiError::invalid(
            "command",
            "arguments may not contain NUL",
        ));
    }
    if let Some(cwd) = &r.cwd {
        if !cwd.starts_with('/') || cwd.contains('\0') {
            return Err(ApiError::invalid("cwd", "cwd must be an absolute path"));
        }
    }
    let spec = NewSession {
        name: Some(name),
        cwd: r.cwd,
        command: r.command,
        env: r.env.into_iter().collect(),
        env_dir: None,
        width: r.width.unwrap_or(200).clamp(20, 1000),
        height: r.height.unwrap_or(50).clamp(5, 500),
    };
    let created = match route::run(&s, &n, TmuxOp::Create(spec)).await? {
        TmuxAnswer::Created(name) => name,
        _ => String::new(),
    };
    // The session exists in tmux now; the log says who made it (not the command: it may
    // carry secrets).
    let mut conn = s.db.acquire().await?;
    crate::activity::store::record(
        &mut conn,
        &who.identity().actor(),
        "create",
        "tmux_session",
        None,
        &serde_json::json!({"node": n.name(), "session": created}),
        &s.clock.now_str(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            success: true,
            node: n.name().to_string(),
            session: created,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KillRequest {
    node: Option<String>,
    session: String,
}

async fn kill(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<KillRequest>,
) -> ApiResult<Sent> {
    let n = node(r.node.as_deref())?;
    let session = session_name(&r.session, "session")?;
    kill_session(&s, &who.identity().actor(), &n, &session).await?;
    Ok(Json(Sent {
        success: true,
        node: n.name().to_string(),
        session: session.to_string(),
    }))
}

/// Kills `session` on `node` and revokes the session's own token (the API's and the panel's
/// kill alike).
pub(crate) async fn kill_session(
    s: &AgentsState,
    actor: &str,
    node: &NodeRef,
    session: &SessionName,
) -> Result<(), AgentsError> {
    route::run(s, node, TmuxOp::Kill(session.clone())).await?;
    let now = s.clock.now_str();
    store::revoke_hook_token(&s.db, node.name(), session.as_str(), &now).await?;
    // The kill itself happened in tmux; the log says who did it.
    let mut conn = s.db.acquire().await?;
    crate::activity::store::record(
        &mut conn,
        actor,
        "kill",
        "agent_session",
        None,
        &serde_json::json!({"node": node.name(), "session": session.as_str()}),
        &now,
    )
    .await?;
    s.auth.token_cache.invalidate();
    s.events
        .emit(crate::events::Topic::Sessions, "killed", session.as_str());
    Ok(())
}
