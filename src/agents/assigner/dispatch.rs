//! The dispatcher: one `tick` looks at the queue and the sessions and moves prompts along.
//!
//! Invariants: it types only into a session that reads idle with an empty input line (never
//! busy, waiting for permission, unknown, or holding someone's half-typed text); a session holds
//! at most one active prompt (the claim's SQL refuses a second); the claim is written before a
//! key is typed and `typed_at` right after, so a restart of `serve` between the two finds an
//! assigned prompt without `typed_at` and checks the pane rather than typing again. Ticks never
//! overlap (one lock). With nothing queued or running a tick does not touch tmux.

use super::{store, Prompt, PromptStatus};
use crate::agents::classify::{AgentKind, InputLine, PaneState};
use crate::agents::route::{NodeRef, LOCAL_NODE};
use crate::agents::sessions::{self, LiveSession};
use crate::agents::store::{self as session_store, SessionRow};
use crate::agents::tmux::{CaptureMode, SessionName};
use crate::agents::AgentsError;
use crate::app::AppState;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Typed text must be accepted (busy, waiting, a submit hook, or gone from the input line with
/// the turn over) within this long, else the prompt is retried or failed.
pub const ACCEPT_WITHIN: time::Duration = time::Duration::seconds(15);

/// A pane reading of "idle, input empty" completes a prompt only this long after typing: a
/// turn starts within milliseconds, and this keeps the instant before the busy footer is
/// drawn from counting as a finished turn.
pub const SETTLE: time::Duration = time::Duration::seconds(1);

/// After a Stop hook, how long the pane may take to show the finished turn before the prompt
/// is completed with whatever it shows.
pub const STOP_REDRAW: time::Duration = time::Duration::seconds(3);
/// Lines of the final pane kept as a prompt's response.
pub const RESPONSE_LINES: u32 = 200;

/// What one tick did (tests and the log).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TickReport {
    pub dispatched: Vec<(i64, String)>,
    pub started: Vec<i64>,
    pub completed: Vec<i64>,
    pub failed: Vec<i64>,
    pub requeued: Vec<i64>,
    /// Interactions decided by a pattern (keys pressed).
    pub permissions_decided: Vec<i64>,
}

/// Codex treats Enter right after typed text as part of a paste (README: 0.2 s gap).
fn enter_delay(agent: AgentKind) -> Duration {
    match agent {
        AgentKind::Codex => Duration::from_millis(200),
        _ => Duration::ZERO,
    }
}

fn parse(t: &Option<String>) -> Option<OffsetDateTime> {
    t.as_deref().and_then(crate::clock::parse)
}

/// The first line of a prompt, as it shows in a pane (a bounded prefix).
fn head(content: &str) -> String {
    content
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(40)
        .collect::<String>()
        .trim()
        .to_string()
}

/// How well a session fits a prompt's metadata (cwd, branch, agent); higher is better.
fn context_score(p: &Prompt, s: &LiveSession) -> i64 {
    let m = &p.metadata;
    let mut score = 0;
    if let Some(cwd) = m.get("cwd").and_then(|v| v.as_str()) {
        let cwd = cwd.trim_end_matches('/');
        if s.tmux.cwd.trim_end_matches('/') == cwd {
            score += 4;
        } else if s.tmux.cwd.starts_with(&format!("{cwd}/")) || cwd.starts_with(&s.tmux.cwd) {
            score += 2;
        }
    }
    if let Some(branch) = m.get("branch").and_then(|v| v.as_str()) {
        if s.branch.as_deref() == Some(branch) {
            score += 3;
        }
    }
    if let Some(agent) = m.get("agent").and_then(|v| v.as_str()) {
        if s.agent.as_str() == agent {
            score += 1;
        }
    }
    score
}

/// Picks the session for `p` among `ready` (idle, empty input, no active prompt).
pub fn choose<'a>(
    p: &Prompt,
    ready: &[&'a LiveSession],
    rows: &HashMap<String, SessionRow>,
) -> Option<&'a LiveSession> {
    let mut candidates: Vec<&LiveSession> = ready
        .iter()
        .copied()
        .filter(|s| match &p.target_session {
            Some(t) => &s.tmux.name == t,
            None => {
                !matches!(s.agent, AgentKind::Shell | AgentKind::Other)
                    && p.target_role
                        .as_ref()
                        .is_none_or(|r| s.role.as_ref() == Some(r))
                    && p.target_group.as_ref().is_none_or(|g| s.groups.contains(g))
            }
        })
        .collect();
    // Best context first, then the least recently busy (never busy first), then by name.
    candidates.sort_by(|a, b| {
        let last = |s: &LiveSession| {
            rows.get(&s.tmux.name)
                .and_then(|r| r.last_busy_at.clone())
                .unwrap_or_default()
        };
        context_score(p, b)
            .cmp(&context_score(p, a))
            .then_with(|| last(a).cmp(&last(b)))
            .then_with(|| a.tmux.name.cmp(&b.tmux.name))
    });
    candidates.first().copied()
}

/// One pass: timeouts, progress of active prompts, then new dispatches.
pub async fn tick(state: &AppState) -> Result<TickReport, AgentsError> {
    let _one_at_a_time = state.agents.dispatch_lock().await;
    let mut report = TickReport::default();
    if store::idle_queue(&state.db).await? {
        return Ok(report);
    }
    let node = NodeRef::Local;
    let live = sessions::observe_node(state, &node, true).await?;
    report.permissions_decided = crate::agents::interactions::scan(state, &live).await?;
    let rows: HashMap<String, SessionRow> = session_store::sessions(&state.db)
        .await?
        .into_iter()
        .filter(|r| r.node == LOCAL_NODE)
        .map(|r| (r.name.clone(), r))
        .collect();

    for p in store::active(&state.db).await? {
        if p.node != LOCAL_NODE {
            continue;
        }
        progress(state, &p, &live, &rows, &mut report).await?;
    }

    let pending = store::pending(&state.db, 100).await?;
    if pending.is_empty() {
        return Ok(report);
    }
    let mut busy: Vec<String> = store::active(&state.db)
        .await?
        .into_iter()
        .filter_map(|p| p.assigned_session)
        .collect();
    for p in pending {
        if p.node != LOCAL_NODE {
            continue;
        }
        let ready: Vec<&LiveSession> = live
            .iter()
            .filter(|s| s.ready_for_prompt() && !busy.contains(&s.tmux.name))
            .collect();
        if ready.is_empty() {
            break;
        }
        let Some(target) = choose(&p, &ready, &rows) else {
            continue;
        };
        let name = target.tmux.name.clone();
        let token = uuid::Uuid::new_v4().to_string();
        if !store::claim(
            &state.db,
            p.id,
            LOCAL_NODE,
            &name,
            &token,
            &state.clock.now_str(),
        )
        .await?
        {
            continue;
        }
        busy.push(name.clone());
        let session = SessionName::parse(&name)?;
        let typed = state
            .agents
            .tmux()
            .send_text(&session, &p.content, true, enter_delay(target.agent))
            .await;
        match typed {
            Ok(()) => {
                store::mark_typed(&state.db, p.id, &token, &state.clock.now_str()).await?;
                report.dispatched.push((p.id, name));
            }
            Err(e) => {
                let requeue = p.retries < p.max_retries;
                store::fail_active(
                    &state.db,
                    p.id,
                    &format!("typing into {name} failed: {e}"),
                    requeue,
                    &state.clock.now_str(),
                )
                .await?;
                if requeue {
                    report.requeued.push(p.id);
                } else {
                    report.failed.push(p.id);
                }
            }
        }
    }
    Ok(report)
}

/// Moves one active prompt along: timeout, lost session, acceptance, completion.
async fn progress(
    state: &AppState,
    p: &Prompt,
    live: &[LiveSession],
    rows: &HashMap<String, SessionRow>,
    report: &mut TickReport,
) -> Result<(), AgentsError> {
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let Some(name) = p.assigned_session.clone() else {
        return Ok(());
    };
    let requeue = p.retries < p.max_retries;
    let Some(sess) = live.iter().find(|s| s.tmux.name == name) else {
        store::fail_active(
            &state.db,
            p.id,
            &format!("session {name} is gone"),
            requeue,
            &now_s,
        )
        .await?;
        push(report, p.id, requeue);
        return Ok(());
    };
    if let Some(at) = parse(&p.assigned_at) {
        if now - at > time::Duration::minutes(p.timeout_minutes) {
            let msg = format!("timed out after {} minutes in {name}", p.timeout_minutes);
            store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
            escalate(state, p, rows.get(&name), &now_s).await?;
            report.failed.push(p.id);
            return Ok(());
        }
    }
    let session = SessionName::parse(&name)?;
    let Some(typed_at) = parse(&p.typed_at) else {
        // serve stopped between the claim and typing: typed only if the pane shows it.
        let screen = state
            .agents
            .tmux()
            .capture(&session, 200, CaptureMode::Plain)
            .await?;
        let h = head(&p.content);
        if !h.is_empty() && screen.contains(&h) {
            store::mark_typed_after_restart(&state.db, p.id, &now_s).await?;
        } else {
            store::unclaim_untyped(&state.db, p.id, &now_s).await?;
        }
        return Ok(());
    };
    let hook_signals = match rows.get(&name) {
        Some(row) => {
            session_store::hook_signals_since(&state.db, row.id, &crate::clock::format(typed_at))
                .await?
        }
        None => Vec::new(),
    };
    let hook_submitted = hook_signals
        .iter()
        .any(|(s, _)| s == "hook:UserPromptSubmit");
    // The Stop hook can arrive before the agent has drawn its answer (a fast turn): the pane
    // is the cross-check, so the prompt completes once the pane looks finished too, or
    // STOP_REDRAW after the hook whatever the pane shows (an unrecognised screen).
    let hook_stopped = hook_signals
        .iter()
        .filter(|(s, _)| s == "hook:Stop")
        .filter_map(|(_, at)| crate::clock::parse(at))
        .any(|at| sess.ready_for_prompt() || now - at >= STOP_REDRAW);
    let pane_finished =
        sess.state == PaneState::Idle && sess.input == InputLine::Empty && now - typed_at >= SETTLE;
    let finished_by = if hook_stopped {
        Some("hook:Stop".to_string())
    } else if pane_finished {
        Some(sess.state_by.clone())
    } else {
        None
    };
    if p.status == PromptStatus::Assigned {
        let accepted_by = if hook_submitted {
            Some("hook:UserPromptSubmit".to_string())
        } else if matches!(
            sess.state,
            PaneState::Busy | PaneState::WaitingForPermission
        ) {
            Some(sess.state_by.clone())
        } else {
            None
        };
        if let Some(by) = accepted_by {
            if finished_by.is_none() {
                store::mark_started(&state.db, p.id, &by, &now_s).await?;
                report.started.push(p.id);
                return Ok(());
            }
        } else if finished_by.is_some() && !hook_stopped {
            // Idle again without ever being seen busy: a turn faster than a tick, or text the
            // agent dropped. Only the prompt echoed on screen tells them apart; without it the
            // prompt is failed (never retyped: it may have run) for a person to look at.
            let screen = state
                .agents
                .tmux()
                .capture(&session, RESPONSE_LINES, CaptureMode::Plain)
                .await?;
            let h = head(&p.content);
            if h.is_empty() || !screen.contains(&h) {
                if now - typed_at > ACCEPT_WITHIN {
                    let msg = format!(
                        "{name} went idle without being seen busy and the prompt is not on screen; it may not have run (retry to send it again)"
                    );
                    store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
                    report.failed.push(p.id);
                }
                return Ok(());
            }
        } else if finished_by.is_none() {
            if now - typed_at > ACCEPT_WITHIN {
                let msg = format!(
                    "not accepted by {name} within {} s (pane: {}, input {})",
                    ACCEPT_WITHIN.whole_seconds(),
                    sess.state,
                    sess.input
                );
                store::fail_active(&state.db, p.id, &msg, requeue, &now_s).await?;
                push(report, p.id, requeue);
            }
            return Ok(());
        }
    }
    if let Some(by) = finished_by {
        let response = state
            .agents
            .tmux()
            .capture(&session, RESPONSE_LINES, CaptureMode::Plain)
            .await?;
        let transcript = rows.get(&name).and_then(|r| r.transcript_path.clone());
        if store::mark_completed(
            &state.db,
            p.id,
            &by,
            &response,
            transcript.as_deref(),
            &now_s,
        )
        .await?
        {
            report.completed.push(p.id);
            super::api::on_completed(state, p.id).await;
        }
    }
    Ok(())
}

fn push(report: &mut TickReport, id: i64, requeued: bool) {
    if requeued {
        report.requeued.push(id);
    } else {
        report.failed.push(id);
    }
}

/// A stalled prompt goes to the session's manager (a new prompt, child of the stalled one),
/// or to the dashboard when the session has none.
async fn escalate(
    state: &AppState,
    p: &Prompt,
    row: Option<&SessionRow>,
    now: &str,
) -> Result<(), AgentsError> {
    let manager = row.and_then(|r| r.manager.clone());
    match manager {
        Some(m) => {
            let content = format!(
                "Escalation: prompt #{} sent to {} stalled past its {}-minute timeout. Decide what to do with it. Original prompt: {}",
                p.id,
                p.assigned_session.as_deref().unwrap_or("?"),
                p.timeout_minutes,
                p.content.chars().take(500).collect::<String>()
            );
            store::insert(
                &state.db,
                &store::Insert {
                    content: &content,
                    priority: p.priority.max(5),
                    target_session: Some(&m),
                    target_role: None,
                    target_group: None,
                    node: &p.node,
                    timeout_minutes: p.timeout_minutes,
                    max_retries: p.max_retries,
                    metadata: &serde_json::json!({"escalation_of": p.id}),
                    parent_id: Some(p.id),
                    source: None,
                    created_by: "assigner",
                },
                now,
            )
            .await?;
            store::escalate(&state.db, p.id, &m, now).await?;
        }
        None => store::escalate(&state.db, p.id, "dashboard", now).await?,
    }
    Ok(())
}
