//! Gates: the decisions only a person makes. A change request (an item's branch, its diff, test
//! output, the agent's summary and cost) is approved — merged into the project's branch, pushed
//! when it has an `origin` — or rejected with a reason (the branch stays). A production deploy
//! gate is approved or rejected. Every route takes `Authed<Write>`: an agent session's own
//! token is refused by the extractor, so an agent never approves its own gate.

use super::work::{self, Gate, GateKind, GateState, Item, ItemState};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/autopilot/gates", get(list))
        .route("/api/autopilot/gates/{id}/approve", post(approve))
        .route("/api/autopilot/gates/{id}/reject", post(reject))
        .route("/api/autopilot/items/{id}/diff", get(diff))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFilter {
    /// `pending` (default), or every gate with `all`.
    pub state: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(f): Query<GateFilter>,
) -> Result<Json<Vec<Gate>>, ApiError> {
    match f.state.as_deref() {
        None | Some("pending") => Ok(Json(
            work::pending_gates(&s.db, 500)
                .await
                .map_err(AutopilotError::from)?,
        )),
        Some(other) => Err(ApiError::invalid(
            "state",
            format!(
                "'{other}': only pending gates are listed here; a run's page has all of its gates"
            ),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub reason: Option<String>,
}

fn reason_of(body: &Option<Json<Decision>>, required: bool) -> Result<String, ApiError> {
    let r = body
        .as_ref()
        .and_then(|Json(b)| b.reason.as_deref())
        .map(str::trim)
        .unwrap_or("");
    if r.chars().count() > 2000 {
        return Err(ApiError::invalid("reason", "at most 2000 characters"));
    }
    if required && r.is_empty() {
        return Err(ApiError::invalid(
            "reason",
            "say why it is rejected: the reason is kept with the branch",
        ));
    }
    Ok(r.to_string())
}

async fn approve(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<Decision>>,
) -> Result<Json<Gate>, ApiError> {
    let reason = reason_of(&body, false)?;
    Ok(Json(
        decide(&s, &who.identity().actor(), id, true, &reason).await?,
    ))
}

async fn reject(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
    body: Option<Json<Decision>>,
) -> Result<Json<Gate>, ApiError> {
    let reason = reason_of(&body, true)?;
    Ok(Json(
        decide(&s, &who.identity().actor(), id, false, &reason).await?,
    ))
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub item_id: i64,
    pub branch: Option<String>,
    pub base_commit: Option<String>,
    pub head_commit: Option<String>,
    pub stat: String,
    pub diff: String,
}

async fn diff(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<Diff>, ApiError> {
    Ok(Json(item_diff(&s, id).await?))
}

/// An item's proposed diff (base → head), read from the project's repository.
pub async fn item_diff(state: &AppState, id: i64) -> RunResult<Diff> {
    let item = work::item(&state.db, id)
        .await?
        .ok_or(AutopilotError::NotFound("work item"))?;
    let (Some(base), Some(head)) = (item.base_commit.clone(), item.head_commit.clone()) else {
        return Err(AutopilotError::Conflict(format!(
            "item {id} has no proposed change yet (it is {})",
            item.state
        )));
    };
    let dir = repo_of(state, &item).await?;
    let text = super::git::diff(&dir, &base, &head)
        .await
        .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
    Ok(Diff {
        item_id: id,
        branch: item.branch,
        base_commit: Some(base),
        head_commit: Some(head),
        stat: item.diff_stat,
        diff: text,
    })
}

/// The project's checkout an item's run works on.
async fn repo_of(state: &AppState, item: &Item) -> RunResult<String> {
    let run = super::store::get_run(&state.db, item.run_id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))?;
    crate::tracking::store::get_project(&state.db, run.project_id)
        .await?
        .and_then(|p| p.source_path)
        .ok_or_else(|| AutopilotError::Conflict("the project has no source_path".into()))
}

/// Approves or rejects gate `id`. Approving a change request merges its branch first (outside
/// the transaction: a merge already made is found again by ancestry, so a retry never merges
/// twice); then the gate, the item, the run's move and the activity row commit together.
pub async fn decide(
    state: &AppState,
    actor: &str,
    id: i64,
    approve: bool,
    reason: &str,
) -> RunResult<Gate> {
    let gate = work::gate(&state.db, id)
        .await?
        .ok_or(AutopilotError::NotFound("gate"))?;
    if gate.state != GateState::Pending {
        return Err(AutopilotError::Conflict(format!(
            "gate {id} was already {} by {}",
            gate.state,
            gate.decided_by.as_deref().unwrap_or("someone")
        )));
    }
    let run = super::store::get_run(&state.db, gate.run_id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))?;
    if run.state.is_final() {
        return Err(AutopilotError::Conflict(format!(
            "run {} is {}: its gates can no longer be decided",
            run.id, run.state
        )));
    }
    let mut item = match gate.item_id {
        Some(i) => work::item(&state.db, i).await?,
        None => None,
    };
    let mut note = String::new();
    if let (true, GateKind::ChangeRequest, Some(i)) = (approve, gate.kind, item.as_ref()) {
        let dir = repo_of(state, i).await?;
        let (Some(head), Some(branch)) = (i.head_commit.as_deref(), i.branch.as_deref()) else {
            return Err(AutopilotError::Conflict(
                "the item has no commit to merge".into(),
            ));
        };
        let merged = super::git::is_ancestor(&dir, head, "HEAD")
            .await
            .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
        if !merged {
            let message = format!(
                "Merge {branch}: autopilot run {} item {} — {}\n\nApproved by {actor}.",
                run.id, i.seq, i.title
            );
            super::git::merge(&dir, branch, &message)
                .await
                .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
        }
        note = match super::git::push_if_remote(&dir).await {
            Ok(Some(p)) => p,
            Ok(None) => "no remote: merged locally".into(),
            Err(e) => format!("merged locally; the push failed: {e}"),
        };
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let current = super::store::lock_run(&mut tx, run.id)
        .await?
        .ok_or(AutopilotError::NotFound("run"))?;
    let to = if approve {
        GateState::Approved
    } else {
        GateState::Rejected
    };
    let why = if note.is_empty() {
        reason.to_string()
    } else if reason.is_empty() {
        note.clone()
    } else {
        format!("{reason} ({note})")
    };
    if !work::decide_gate(&mut tx, id, to, &why, actor, &now).await? {
        return Err(AutopilotError::Conflict(format!(
            "gate {id} was decided meanwhile"
        )));
    }
    if let Some(i) = item.as_mut() {
        i.state = if approve {
            ItemState::Merged
        } else {
            ItemState::Rejected
        };
        i.reason = why.clone();
        work::save_item(&mut tx, i, &now).await?;
    }
    // The run goes on when it was waiting on this gate.
    if current.state == RunState::Blocked {
        let next = match gate.kind {
            GateKind::DeployProduction if approve => Some((
                RunState::Deploying,
                format!("the production deploy was approved by {actor}"),
            )),
            GateKind::DeployProduction => Some((
                RunState::Done,
                format!("the production deploy was rejected by {actor}: {reason}"),
            )),
            GateKind::ChangeRequest => {
                let items = work::items(&mut *tx, run.id).await?;
                items
                    .iter()
                    .all(|i| i.state.is_settled())
                    .then(|| super::phases::after_review(&current, &items))
            }
        };
        if let Some((to, r)) = next {
            super::store::transition(
                &mut tx,
                run.id,
                RunState::Blocked,
                to,
                None,
                &r,
                actor,
                &now,
            )
            .await?;
        }
    }
    crate::activity::store::record(
        &mut tx,
        actor,
        if approve { "approve" } else { "reject" },
        "autopilot_gate",
        Some(id),
        &json!({"run_id": run.id, "kind": gate.kind, "item_id": gate.item_id, "reason": why}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Runs, "autopilot", run.id);
    // The item's agent is done either way; a merged item's worktree goes (its branch stays).
    if let Some(i) = &item {
        retire(state, actor, i, approve).await;
    }
    work::gate(&state.db, id)
        .await?
        .ok_or(AutopilotError::NotFound("gate"))
}

/// Ends an item's session (revoking its token) and, once merged, removes its worktree.
async fn retire(state: &AppState, actor: &str, item: &Item, merged: bool) {
    if let Some(name) = item
        .session
        .as_deref()
        .and_then(|n| crate::tmux::SessionName::parse(n).ok())
    {
        if let Err(e) = crate::agents::api::kill_session(
            &state.agents_state(),
            actor,
            &crate::agents::route::NodeRef::Local,
            &name,
        )
        .await
        {
            tracing::info!(session = %name, error = %e, "the item's session was already gone");
        }
    }
    if merged {
        if let (Ok(repo), Some(wt)) = (repo_of(state, item).await, item.worktree.as_deref()) {
            if let Err(e) = super::git::remove_worktree(&repo, wt).await {
                tracing::warn!(worktree = wt, error = %e, "cannot remove a merged item's worktree");
            }
        }
    }
}
