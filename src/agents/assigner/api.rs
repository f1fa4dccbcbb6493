//! JSON routes of the assigner (SPEC.md "Assigner Worker"): send, status, sessions, prompts,
//! cancel, retry, retry-all, reassign, clear.
//!
//! Reading needs `Read`. Queuing needs `Write`, or a session's own token (a manager session
//! delegating to its workers with `architect assigner --send`): [`SessionOr<Write>`]. A
//! session token may cancel, retry or reassign only the prompts it queued itself, and never
//! retry-all or clear. An explicit target must exist (404) and be live (409), whoever asks
//! (docs/decisions/0006), and be an agent session (not a shell, not an unknown pane) unless
//! the caller may run code (`Exec`, admins): typing into a shell runs it.

use super::store::{self, PromptFilter};
use super::{NewPrompt, Prompt, PromptStatus};
use crate::agents::classify::AgentKind;
use crate::agents::route::NodeRef;
use crate::agents::store as session_store;
use crate::agents::AgentsError;
use crate::agents::AgentsState;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, SessionOr, Write};
use crate::auth::{Capability, Identity};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/assigner/send", post(send))
        .route("/api/assigner/status", get(status))
        .route("/api/assigner/sessions", get(sessions))
        .route("/api/assigner/prompts", get(list))
        .route("/api/assigner/prompts/{id}", get(detail).delete(cancel))
        .route("/api/assigner/prompts/{id}/retry", post(retry))
        .route("/api/assigner/prompts/{id}/reassign", post(reassign))
        .route("/api/assigner/retry-all", post(retry_all))
        .route("/api/assigner/clear", post(clear))
        .route(
            "/api/assigner/routing-rules",
            get(list_rules).post(create_rule),
        )
        .route(
            "/api/assigner/routing-rules/{id}",
            axum::routing::delete(delete_rule),
        )
}

async fn list_rules(
    State(s): State<AgentsState>,
    _: Authed<Read>,
) -> Result<Json<Vec<super::routing::RoutingRule>>, ApiError> {
    Ok(Json(super::routing::rules(&s.db).await?))
}

async fn create_rule(
    State(s): State<AgentsState>,
    who: Authed<crate::auth::extract::Write>,
    Json(r): Json<super::routing::NewRule>,
) -> Result<(StatusCode, Json<super::routing::RoutingRule>), ApiError> {
    r.check().map_err(AgentsError::from)?;
    let rule =
        super::routing::insert(&s.db, &r, &who.identity().username, &s.clock.now_str()).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn delete_rule(
    State(s): State<AgentsState>,
    who: Authed<crate::auth::extract::Write>,
    Path(id): Path<i64>,
) -> Result<Json<Count>, ApiError> {
    let actor = who.identity().actor();
    if !super::routing::delete(&s.db, &actor, id, &s.clock.now_str()).await? {
        return Err(ApiError::not_found("routing rule"));
    }
    Ok(Json(Count { count: 1 }))
}

/// The prompt named by the path, which the caller may change: any prompt for a person or
/// token with `Write`; for an agent session's own token, only the prompts it queued (their
/// `created_by` is the token's actor name, which names the token and its session). The check
/// is this extractor's, so a route that takes it cannot forget it: 401/403 before the handler,
/// 404 for an unknown prompt.
struct ChangeablePrompt {
    who: SessionOr<Write>,
    prompt: Prompt,
}

impl axum::extract::FromRequestParts<AppState> for ChangeablePrompt {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, ApiError> {
        let who = SessionOr::<Write>::from_request_parts(parts, s).await?;
        let Path(id) = Path::<i64>::from_request_parts(parts, s).await?;
        let prompt = get_prompt(&s.db, id).await?;
        if let SessionOr::Session(i, b) = &who {
            if prompt.created_by != i.actor() {
                return Err(ApiError::forbidden(format!(
                    "prompt {} was not queued by agent session '{}': its token may change only \
                     the prompts it queued",
                    prompt.id, b.name
                )));
            }
        }
        Ok(ChangeablePrompt { who, prompt })
    }
}

/// Called when a prompt completes: runs the follow-ups registered with
/// [`crate::agents::AgentsRuntime::on_prompt_done`] (`assign` moves the prompt's item to
/// review), each after the other; a failure is logged and does not stop the rest.
pub async fn on_completed(state: &AgentsState, prompt_id: i64) {
    for follow_up in state.agents.prompt_done_hooks() {
        if let Err(e) = follow_up(state.clone(), prompt_id).await {
            tracing::warn!(prompt_id, error = %e, "follow-up of a completed prompt failed");
        }
    }
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Queued {
    pub prompt_id: i64,
    pub success: bool,
}

/// Whether `node/name` is a live session an agent was recognised in (not a shell, not an
/// unknown pane): the only kind of target a prompt may name unless the caller may run code.
async fn is_live_agent(state: &AgentsState, node: &str, name: &str) -> Result<bool, sqlx::Error> {
    Ok(session_store::session(&state.db, node, name)
        .await?
        .filter(|r| r.gone_at.is_none())
        .and_then(|r| r.agent)
        .and_then(|a| a.parse::<AgentKind>().ok())
        .is_some_and(|k| !matches!(k, AgentKind::Shell | AgentKind::Other)))
}

/// Refuses an explicit target that cannot take the prompt, so it never waits forever for a
/// session that is not there (docs/decisions/0006): no such session on the node is a 404, a
/// session that ended is a 409. On this server's own node tmux is asked (one list, so a
/// session that died since the last observation counts as ended); on another node the
/// registry decides (asking would wait on that node's agent, up to 20 s when it is offline).
async fn ensure_target_exists(
    state: &AgentsState,
    node: &NodeRef,
    name: &str,
) -> Result<(), AgentsError> {
    let row = session_store::session(&state.db, node.name(), name).await?;
    let listed = match node {
        NodeRef::Local => match state.agents.tmux().list_sessions().await {
            Ok(list) => Some(list.iter().any(|s| s.name == name)),
            Err(e) => {
                tracing::warn!(error = %e, "tmux list failed; the registry decides the target");
                None
            }
        },
        NodeRef::Remote(_) => None,
    };
    let live = listed.unwrap_or_else(|| row.as_ref().is_some_and(|r| r.gone_at.is_none()));
    if live {
        return Ok(());
    }
    match row {
        Some(r) => Err(AgentsError::Conflict(format!(
            "session '{name}' on node '{}' is no longer live (it ended{}): start it again \
             (`architect session start {name} ...`) or send without a target",
            node.name(),
            match (r.gone_at, r.last_seen_at) {
                (Some(t), _) => format!("; found gone at {t}"),
                (None, Some(t)) => format!("; last seen {t}"),
                (None, None) => String::new(),
            }
        ))),
        None => Err(AgentsError::NotFound(format!(
            "session '{name}' on node '{}'",
            node.name()
        ))),
    }
}

/// Queues a prompt (shared by the API, assign-to-tmux and `/api/agents/send`); `who` is
/// recorded as its creator (`created_by`, the activity actor name).
///
/// An explicit `target_session` must be a live agent session unless `who` may run code: the
/// dispatcher types into the target, and text typed into a shell runs. Such a prompt is
/// marked `metadata.to_shell` so the dispatcher knows a person who may run code asked for it.
pub async fn enqueue(
    state: &AgentsState,
    who: &Identity,
    p: NewPrompt,
    source: Option<(&str, i64)>,
) -> Result<i64, AgentsError> {
    let cfg = &state.config.agents;
    let (priority, timeout, retries) =
        p.check(cfg.prompt_timeout_minutes, cfg.prompt_max_retries)?;
    let node = NodeRef::parse(p.node.as_deref())?;
    let mut to_shell = false;
    if let Some(target) = &p.target_session {
        ensure_target_exists(state, &node, target).await?;
        if !is_live_agent(state, node.name(), target).await? {
            if !who.can(Capability::Exec) {
                return Err(AgentsError::Invalid(crate::validate::invalid(
                    "target_session",
                    format!(
                        "'{target}' is not a live agent session on node '{}'; only an admin \
                         may queue a prompt for a shell or an unknown pane",
                        node.name()
                    ),
                )));
            }
            to_shell = true;
        }
    }
    let mut parent = p.parent_id;
    if let Some(id) = parent {
        if store::get(&state.db, id).await?.is_none() {
            return Err(AgentsError::Invalid(crate::validate::invalid(
                "parent_id",
                format!("no prompt {id}"),
            )));
        }
    } else if let Some(from) = &p.from_session {
        parent = store::active_on(&state.db, node.name(), from)
            .await?
            .map(|a| a.id);
    }
    let mut metadata = p.metadata.clone().unwrap_or_else(|| serde_json::json!({}));
    if !metadata.is_object() {
        return Err(AgentsError::Invalid(crate::validate::invalid(
            "metadata",
            "metadata must be a JSON object",
        )));
    }
    // Only this function says a prompt may go to a shell.
    match to_shell {
        true => metadata["to_shell"] = serde_json::json!(true),
        false => {
            if let Some(o) = metadata.as_object_mut() {
                o.remove("to_shell");
            }
        }
    }
    let (mut role, mut group) = (p.target_role.clone(), p.target_group.clone());
    if p.target_session.is_none() && role.is_none() && group.is_none() {
        let rules = super::routing::rules(&state.db).await?;
        if let Some(rule) = super::routing::route(&rules, &p.content, &metadata) {
            role = rule.target_role.clone();
            group = rule.target_group.clone();
            metadata["routed_by"] = serde_json::json!(rule.name);
        }
    }
    let id = store::insert(
        &state.db,
        &store::Insert {
            content: &p.content,
            priority,
            target_session: p.target_session.as_deref(),
            target_role: role.as_deref(),
            target_group: group.as_deref(),
            node: node.name(),
            timeout_minutes: timeout,
            max_retries: retries,
            metadata: &metadata,
            parent_id: parent,
            source,
            created_by: &who.actor(),
        },
        &state.clock.now_str(),
    )
    .await?;
    state
        .events
        .emit(crate::events::Topic::Prompts, "created", id);
    state.agents.wake_dispatcher();
    Ok(id)
}

async fn send(
    State(s): State<AgentsState>,
    who: SessionOr<Write>,
    Json(p): Json<NewPrompt>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let id = enqueue(&s, who.identity(), p, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(Queued {
            prompt_id: id,
            success: true,
        }),
    ))
}

#[derive(Serialize, Deserialize, Debug)]
pub struct AssignerStatus {
    /// Prompts per status.
    pub counts: std::collections::BTreeMap<String, i64>,
    /// Assigned and in-progress prompts.
    pub active: Vec<Prompt>,
    /// Whether serve runs the dispatcher (ARCHITECT_ASSIGNER).
    pub dispatcher: bool,
    pub dispatch_interval_ms: u64,
}

async fn status(
    State(s): State<AgentsState>,
    _: Authed<Read>,
) -> Result<Json<AssignerStatus>, ApiError> {
    Ok(Json(AssignerStatus {
        counts: store::counts(&s.db).await?.into_iter().collect(),
        active: store::active(&s.db).await?,
        dispatcher: s.config.agents.assigner,
        dispatch_interval_ms: s.config.agents.dispatch_interval_ms,
    }))
}

/// A tracked session with its active prompt.
#[derive(Serialize, Deserialize, Debug)]
pub struct AssignerSession {
    #[serde(flatten)]
    pub session: session_store::SessionRow,
    pub active_prompt: Option<i64>,
}

async fn sessions(
    State(s): State<AgentsState>,
    _: Authed<Read>,
) -> Result<Json<Vec<AssignerSession>>, ApiError> {
    let active = store::active(&s.db).await?;
    let out = session_store::sessions(&s.db)
        .await?
        .into_iter()
        .filter(|r| r.gone_at.is_none())
        .map(|r| AssignerSession {
            active_prompt: active
                .iter()
                .find(|p| p.node == r.node && p.assigned_session.as_deref() == Some(&r.name))
                .map(|p| p.id),
            session: r,
        })
        .collect();
    Ok(Json(out))
}

async fn list(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Query(f): Query<PromptFilter>,
) -> Result<Json<Vec<Prompt>>, ApiError> {
    if f.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::invalid("limit", "limit must be 1-1000"));
    }
    Ok(Json(store::list(&s.db, &f).await?))
}

/// A prompt with the prompts delegated from it (the delegation tree, one level per call).
#[derive(Serialize, Deserialize, Debug)]
pub struct PromptDetail {
    #[serde(flatten)]
    pub prompt: Prompt,
    pub children: Vec<Prompt>,
}

async fn get_prompt(db: &crate::db::Db, id: i64) -> Result<Prompt, ApiError> {
    store::get(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("prompt"))
}

async fn detail(
    State(s): State<AgentsState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<PromptDetail>, ApiError> {
    let prompt = get_prompt(&s.db, id).await?;
    let children = store::list(
        &s.db,
        &PromptFilter {
            parent_id: Some(id),
            limit: Some(1000),
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(PromptDetail { prompt, children }))
}

fn transition(p: &Prompt, to: PromptStatus) -> ApiError {
    AgentsError::Transition {
        what: "prompt",
        from: p.status.to_string(),
        to: to.to_string(),
        allowed: p.status.next().iter().map(|s| s.to_string()).collect(),
    }
    .into()
}

async fn cancel(
    State(s): State<AgentsState>,
    ChangeablePrompt { who, prompt: p }: ChangeablePrompt,
) -> Result<Json<Prompt>, ApiError> {
    let id = p.id;
    let actor = who.identity().actor();
    if !store::cancel(&s.db, &actor, id, &s.clock.now_str()).await? {
        return Err(transition(&p, PromptStatus::Cancelled));
    }
    s.events
        .emit(crate::events::Topic::Prompts, "cancelled", id);
    get_prompt(&s.db, id).await.map(Json)
}

async fn retry(
    State(s): State<AgentsState>,
    ChangeablePrompt { who, prompt: p }: ChangeablePrompt,
) -> Result<Json<Prompt>, ApiError> {
    let id = p.id;
    let actor = who.identity().actor();
    if !store::retry(&s.db, &actor, id, &s.clock.now_str()).await? {
        if p.retries >= p.max_retries
            && matches!(p.status, PromptStatus::Failed | PromptStatus::Cancelled)
        {
            return Err(ApiError::conflict(format!(
                "prompt {id} has used all {} retries; reassign it or send it again",
                p.max_retries
            ))
            .with_field("retries"));
        }
        return Err(transition(&p, PromptStatus::Pending));
    }
    s.events.emit(crate::events::Topic::Prompts, "updated", id);
    s.agents.wake_dispatcher();
    get_prompt(&s.db, id).await.map(Json)
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Count {
    pub count: u64,
}

async fn retry_all(
    State(s): State<AgentsState>,
    who: Authed<Write>,
) -> Result<Json<Count>, ApiError> {
    let actor = who.identity().actor();
    let count = store::retry_all(&s.db, &actor, &s.clock.now_str()).await?;
    s.events.emit_many(crate::events::Topic::Prompts, "updated");
    s.agents.wake_dispatcher();
    Ok(Json(Count { count }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReassignRequest {
    /// The session to send it to; absent: any session its role/group allows.
    to: Option<String>,
}

async fn reassign(
    State(s): State<AgentsState>,
    ChangeablePrompt { who, prompt }: ChangeablePrompt,
    Json(r): Json<ReassignRequest>,
) -> Result<Json<Prompt>, ApiError> {
    reassign_prompt(&s, who.identity(), prompt.id, r.to.as_deref())
        .await
        .map(Json)
}

/// Back to pending, targeted at session `to` (or untargeted): the API and the panel. A new
/// target obeys [`enqueue`]'s rule: a live agent session unless `who` may run code.
pub async fn reassign_prompt(
    s: &AgentsState,
    who: &Identity,
    id: i64,
    to: Option<&str>,
) -> Result<Prompt, ApiError> {
    if let Some(to) = to {
        crate::tmux::SessionName::parse(to).map_err(|e| ApiError::invalid("to", e.message))?;
    }
    let p = get_prompt(&s.db, id).await?;
    if let Some(to) = to {
        let node = NodeRef::parse(Some(&p.node)).map_err(|e| ApiError::invalid("to", e.message))?;
        ensure_target_exists(s, &node, to).await?;
        if !is_live_agent(s, &p.node, to).await? && !who.can(Capability::Exec) {
            return Err(ApiError::invalid(
                "to",
                format!(
                    "'{to}' is not a live agent session on node '{}'; only an admin may send \
                     a prompt to a shell or an unknown pane",
                    p.node
                ),
            ));
        }
    }
    if !store::reassign(&s.db, &who.actor(), id, to, &s.clock.now_str()).await? {
        return Err(transition(&p, PromptStatus::Pending));
    }
    s.events.emit(crate::events::Topic::Prompts, "updated", id);
    s.agents.wake_dispatcher();
    get_prompt(&s.db, id).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClearRequest {
    /// Only prompts last changed more than this many days ago.
    days: Option<i64>,
}

async fn clear(
    State(s): State<AgentsState>,
    who: Authed<Write>,
    Json(r): Json<ClearRequest>,
) -> Result<Json<Count>, ApiError> {
    let before = match r.days {
        Some(d) if !(0..=36500).contains(&d) => {
            return Err(ApiError::invalid("days", "days must be 0-36500"))
        }
        Some(d) => Some(crate::clock::format(
            s.clock.now() - time::Duration::days(d),
        )),
        None => None,
    };
    let actor = who.identity().actor();
    let count = store::clear(&s.db, &actor, before.as_deref(), &s.clock.now_str()).await?;
    s.events.emit_many(crate::events::Topic::Prompts, "deleted");
    Ok(Json(Count { count }))
}
