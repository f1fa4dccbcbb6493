//! Permission prompts seen in panes: recorded as interactions (session, agent, tool, command
//! or file, the full prompt text, time), decided by the patterns when one applies (pressing
//! that agent's keys), otherwise left pending for a person (`/api/claude/interactions`).
//!
//! Keys per agent (README of the captures): Claude Code approves with `1` and denies with
//! `Escape` (`y` does nothing there); Codex approves with `y` and denies with `Escape`.
//! Claude's unnumbered fallback dialog (focus on "No") is never approved by a key.

use super::classify::{permission_request, AgentKind, PaneState};
use super::permission_store::{self as pstore, Interaction, NewInteraction};
use super::permissions::{self, Outcome, Request, Verdict};
use super::route::LOCAL_NODE;
use super::sessions::LiveSession;
use super::tmux::{CaptureMode, SessionName};
use super::{store, AgentsError};
use crate::app::AppState;

/// The keys that approve / deny a permission prompt of `agent`.
pub fn keys(agent: AgentKind, approve: bool) -> Option<&'static str> {
    match (agent, approve) {
        (AgentKind::Claude, true) => Some("1"),
        (AgentKind::Codex, true) => Some("y"),
        (AgentKind::Claude | AgentKind::Codex, false) => Some("Escape"),
        _ => None,
    }
}

/// Records a new interaction for every session waiting for permission without a pending one,
/// applies the patterns, and closes pending interactions whose session no longer waits.
pub async fn scan(state: &AppState, live: &[LiveSession]) -> Result<Vec<i64>, AgentsError> {
    let now = state.clock.now_str();
    let mut decided = Vec::new();
    for s in live {
        let pending = pstore::pending_interaction(&state.db, LOCAL_NODE, &s.tmux.name).await?;
        if s.state != PaneState::WaitingForPermission {
            if let Some(i) = pending.filter(|i| i.source == "pane") {
                pstore::decide_interaction(&state.db, i.id, "gone", "pane:closed", &now).await?;
            }
            continue;
        }
        if pending.is_some() {
            continue;
        }
        let name = SessionName::parse(&s.tmux.name)?;
        let screen = state
            .agents
            .tmux()
            .capture(&name, 80, CaptureMode::Plain)
            .await?;
        let Some(req) = permission_request(s.agent, &screen) else {
            continue;
        };
        let i = pstore::insert_interaction(
            &state.db,
            &NewInteraction {
                node: LOCAL_NODE,
                session: &s.tmux.name,
                agent: s.agent.as_str(),
                tool: &req.tool,
                command: req.command.as_deref(),
                path: req.path.as_deref(),
                prompt_text: &req.prompt_text,
                source: "pane",
            },
            &now,
        )
        .await?;
        let row = store::session(&state.db, LOCAL_NODE, &s.tmux.name).await?;
        let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
        let r = Request {
            session: &s.tmux.name,
            role: s.role.as_deref(),
            tool: &i.tool,
            subject: &subject,
            workspace: row.as_ref().and_then(|r| r.cwd.as_deref()),
        };
        let patterns = pstore::patterns(&state.db).await?;
        let mut v = permissions::decide(&patterns, &r);
        if v.outcome == Outcome::Approve && !req.numbered {
            v = Verdict {
                outcome: Outcome::Ask,
                decided_by: v.decided_by,
                reason: "this dialog has unnumbered options (focus on No): a person decides".into(),
            };
        }
        pstore::audit(&state.db, Some(i.id), &r, &v, false, &now).await?;
        if v.outcome != Outcome::Ask {
            apply(
                state,
                &i,
                s.agent,
                v.outcome == Outcome::Approve,
                &v.decided_by,
            )
            .await?;
            decided.push(i.id);
        }
    }
    Ok(decided)
}

/// Presses the agent's approve or deny key and closes the interaction.
pub async fn apply(
    state: &AppState,
    i: &Interaction,
    agent: AgentKind,
    approve: bool,
    by: &str,
) -> Result<(), AgentsError> {
    let key = keys(agent, approve).ok_or_else(|| {
        AgentsError::Conflict(format!(
            "architect does not know the keys of agent '{agent}'"
        ))
    })?;
    let name = SessionName::parse(&i.session)?;
    state.agents.tmux().send_keys(&name, &[key]).await?;
    let status = if approve { "approved" } else { "denied" };
    pstore::decide_interaction(&state.db, i.id, status, by, &state.clock.now_str()).await?;
    Ok(())
}

/// With the queue empty the dispatcher does not read panes; while any permission pattern is
/// enabled this does, so patterns apply to every session, not only to prompts in flight.
pub async fn watch_tick(state: &AppState) -> Result<Vec<i64>, AgentsError> {
    if pstore::enabled_pattern_count(&state.db).await? == 0
        || !super::assigner::store::idle_queue(&state.db).await?
    {
        return Ok(Vec::new());
    }
    let _one_at_a_time = state.agents.dispatch_lock().await;
    let live = super::sessions::observe_node(state, &super::route::NodeRef::Local, true).await?;
    scan(state, &live).await
}
