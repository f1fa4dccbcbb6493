//! The dispatcher: one `tick` looks at the queue and the sessions and moves prompts along.
//!
//! Invariants: it types only into a session that reads idle with an empty input line (never
//! busy, waiting for permission, unknown, or holding someone's half-typed text); a session holds
//! at most one active prompt (the claim's SQL refuses a second); the claim is written before a
//! key is typed and `typed_at` right after, so a restart of `serve` between the two finds an
//! assigned prompt without `typed_at` and checks the pane rather than typing again. Ticks never
//! overlap (one lock). With nothing queued or running a tick does not touch tmux.
//!
//! Exactly-once delivery. Real agents drop keys: Claude Code ignores an Enter that arrives in
//! the same write as the text, and sometimes one that comes right after its previous turn
//! ended; the text then sits in the input line, where any later Enter would run it. So a
//! prompt counts as delivered only when the agent took it, and the protocol is:
//! 1. Pick a session that reads idle with an empty input line and has been idle for at least
//!    [`QUIET`] (its stored `state_changed_at`: the previous turn ended a while ago), then read
//!    the pane a second time: the same idle screen, or no typing this tick.
//! 2. Claim (`assigned`, `dispatch_token`, `assigned_at`) — stored before any key.
//! 3. Type the text (one write), wait [`ENTER_AFTER`], press Enter (a second write), then
//!    store `typed_at`, `enter_presses = 1`, `entered_at`.
//! 4. Taken (`in_progress`, `accepted_by`) on its `UserPromptSubmit` hook, or on a reading of
//!    busy / waiting for permission (the input line emptied and the turn started); a turn
//!    finished before any reading saw it is recognised by its echo on screen.
//! 5. Not taken and the pane still idle with text in the input line: press Enter again, at
//!    most [`MAX_ENTERS`] presses in all, [`ENTER_SPACING`] apart, each after a fresh reading
//!    (`enter_presses`, `entered_at` count them). Then the line is cleared with the line-edit
//!    keys ([`CLEAR_KEYS`], once per line of the prompt) and, once a reading shows it empty,
//!    the prompt is requeued (or failed when its retries are spent). A prompt is requeued only
//!    when its text is known not to sit in any pane: never typed, its session gone, or its
//!    line seen empty after clearing; a pane that cannot be read is failed for a person, never
//!    retyped elsewhere.
//!
//! A restart: an `assigned` prompt without `typed_at` whose text is on screen, or whose session
//! reads idle with text in the input line (the claim found it empty), is taken as typed
//! (`typed_at` and `entered_at` set then) and goes through step 5; otherwise it is unclaimed
//! without spending a retry. With `typed_at` stored, steps 4–5 go on from the stored counts.
use super::{store, Prompt, PromptStatus};
use crate::agents::classify::{AgentKind, Classification, InputLine, PaneState};
use crate::agents::route::{NodeRef, LOCAL_NODE};
use crate::agents::sessions::{self, LiveSession};
use crate::agents::store::{self as session_store, SessionRow};
use crate::agents::AgentsError;
use crate::agents::AgentsState;
use crate::tmux::{CaptureMode, SessionName, TmuxError};
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

mod progress;
use progress::*;

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

/// Between the text and its Enter (two tmux writes): Claude Code drops an Enter that arrives
/// with the text, Codex takes one within 0.2 s as part of a paste, Gemini CLI once dropped one
/// sent at once (README of the captures).
pub const ENTER_AFTER: Duration = Duration::from_millis(300);

/// A session is typed into only once it has read idle this long: Claude Code drops more
/// Enters within 0.3 s of its previous answer.
pub const QUIET: time::Duration = time::Duration::milliseconds(500);

/// Presses of Enter for one typing (the first included) before the line is cleared.
pub const MAX_ENTERS: i64 = 3;

/// Between two presses of Enter for the same prompt.
pub const ENTER_SPACING: time::Duration = time::Duration::seconds(1);

/// Clears one line of an agent's input (kill to the line start, then join the line above);
/// pressed once per line of the prompt. Harmless on an empty line, in a busy pane and in a
/// permission dialog, unlike Escape (interrupts, denies) or C-c (twice quits).
pub const CLEAR_KEYS: [&str; 2] = ["C-u", "BSpace"];

/// What one tick did (tests and the log).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TickReport {
    pub dispatched: Vec<(i64, String)>,
    pub started: Vec<i64>,
    pub completed: Vec<i64>,
    pub failed: Vec<i64>,
    pub requeued: Vec<i64>,
    /// Prompts whose text still sat in the input line: Enter pressed again.
    pub entered_again: Vec<i64>,
    /// Prompts whose text was cleared from the input line after the last Enter.
    pub cleared: Vec<i64>,
    /// Interactions decided by a pattern (keys pressed).
    pub permissions_decided: Vec<i64>,
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
            // An explicit target still has to read as an agent now (an agent that exited
            // leaves a shell), unless a person who may run code queued it for a shell
            // (`assigner::api::enqueue` alone sets `to_shell`).
            Some(t) => {
                &s.tmux.name == t
                    && (!matches!(s.agent, AgentKind::Shell | AgentKind::Other)
                        || p.metadata["to_shell"] == serde_json::json!(true))
            }
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

/// True when the session's stored state has not changed for [`QUIET`] (its previous turn
/// ended a while ago), or nothing is stored about it.
fn quiet(row: Option<&SessionRow>, now: OffsetDateTime) -> bool {
    row.and_then(|r| parse(&r.state_changed_at))
        .is_none_or(|at| now - at >= QUIET)
}

/// A fresh reading of a session's pane, or `None` when the session ended meanwhile.
async fn read(
    state: &AgentsState,
    s: &LiveSession,
) -> Result<Option<(Classification, String)>, AgentsError> {
    match sessions::classify_session(state, &NodeRef::Local, &s.tmux, Some(s.agent)).await {
        Ok(v) => Ok(Some(v)),
        Err(AgentsError::Tmux(TmuxError::NoSuchSession(_))) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One pass: timeouts, progress of active prompts, then new dispatches. Announces the prompts
/// it moved (and the interactions its patterns decided) to live watchers.
pub async fn tick(state: &AgentsState) -> Result<TickReport, AgentsError> {
    let report = tick_once(state).await?;
    use crate::events::Topic as T;
    for (topic, ids) in [
        (T::Prompts, &report.started),
        (T::Prompts, &report.completed),
        (T::Prompts, &report.failed),
        (T::Prompts, &report.requeued),
        (T::Interactions, &report.permissions_decided),
    ] {
        for id in ids {
            state.events.emit(topic, "updated", id);
        }
    }
    for (id, _) in &report.dispatched {
        state.events.emit(T::Prompts, "dispatched", id);
    }
    Ok(report)
}

async fn tick_once(state: &AgentsState) -> Result<TickReport, AgentsError> {
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
        let now = state.clock.now();
        let ready: Vec<&LiveSession> = live
            .iter()
            .filter(|s| {
                s.ready_for_prompt()
                    && !busy.contains(&s.tmux.name)
                    && quiet(rows.get(&s.tmux.name), now)
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        let Some(target) = choose(&p, &ready, &rows) else {
            continue;
        };
        let name = target.tmux.name.clone();
        // Whatever happens next, this session takes no other prompt this tick.
        busy.push(name.clone());
        // The second reading: the same idle screen, else not this tick.
        match read(state, target).await? {
            Some((c, screen))
                if c.state == PaneState::Idle
                    && c.input == InputLine::Empty
                    && screen == target.screen => {}
            _ => continue,
        }
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
        let session = SessionName::parse(&name)?;
        let tmux = state.agents.tmux();
        let typed = async {
            tmux.send_text(&session, &p.content, false, Duration::ZERO)
                .await?;
            tokio::time::sleep(ENTER_AFTER).await;
            tmux.send_keys(&session, &["Enter"]).await
        }
        .await;
        match typed {
            Ok(()) => {
                store::mark_typed(&state.db, p.id, &token, &state.clock.now_str()).await?;
                report.dispatched.push((p.id, name));
            }
            Err(e) => {
                let msg = format!("typing into {name} failed: {e}");
                release(state, &p, target, &msg, &mut report).await?;
            }
        }
    }
    Ok(report)
}

/// Gives up on delivering `p` into `sess`: its input line is cleared and, once a reading shows
/// it empty, the prompt is requeued (failed when its retries are spent); when the line cannot
/// be seen empty it is failed, never requeued, so its text cannot run in two panes.
async fn release(
    state: &AgentsState,
    p: &Prompt,
    sess: &LiveSession,
    why: &str,
    report: &mut TickReport,
) -> Result<(), AgentsError> {
    let now_s = state.clock.now_str();
    let empty = match read(state, sess).await? {
        // The session is gone: so is the text.
        None => true,
        Some((c, _)) if c.state == PaneState::Idle && c.input == InputLine::Empty => true,
        Some((c, _)) if c.state == PaneState::Idle => {
            clear_line(state, sess, &p.content).await?;
            report.cleared.push(p.id);
            tokio::time::sleep(ENTER_AFTER).await;
            matches!(
                read(state, sess).await?,
                None | Some((
                    Classification {
                        state: PaneState::Idle,
                        input: InputLine::Empty,
                        ..
                    },
                    _
                ))
            )
        }
        Some(_) => false,
    };
    if empty {
        let requeue = p.retries < p.max_retries;
        store::fail_active(&state.db, p.id, why, requeue, &now_s).await?;
        push(report, p.id, requeue);
    } else {
        let msg = format!(
            "{why}; the input line of {} could not be seen empty, so the prompt is not sent elsewhere (look at the pane, then retry)",
            sess.tmux.name
        );
        store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
        report.failed.push(p.id);
    }
    Ok(())
}

/// Presses [`CLEAR_KEYS`] once per line of `content` (a pasted prompt may show as one
/// placeholder; extra presses on an empty line do nothing).
async fn clear_line(
    state: &AgentsState,
    sess: &LiveSession,
    content: &str,
) -> Result<(), AgentsError> {
    let name = SessionName::parse(&sess.tmux.name)?;
    let lines = content.lines().count().clamp(1, 200);
    let keys: Vec<&str> = (0..lines).flat_map(|_| CLEAR_KEYS).collect();
    for chunk in keys.chunks(16) {
        state.agents.tmux().send_keys(&name, chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(name: &str, agent: &str) -> LiveSession {
        serde_json::from_value(json!({
            "node": "local", "name": name, "windows": 1, "attached": 0, "created": 0,
            "last_activity": 0, "current_command": "x", "cwd": "/", "pane_title": "",
            "alternate_screen": false, "agent": agent, "state": "idle", "input": "empty",
            "state_by": "pane:x", "role": null, "groups": [], "launched": false, "branch": null
        }))
        .unwrap()
    }

    fn prompt(target: Option<&str>, metadata: serde_json::Value) -> Prompt {
        serde_json::from_value(json!({
            "id": 1, "content": "x", "priority": 5, "status": "pending",
            "target_session": target, "node": "local", "timeout_minutes": 30,
            "max_retries": 3, "retries": 0, "metadata": metadata, "created_by": "t",
            "created_at": "t", "updated_at": "t"
        }))
        .unwrap()
    }

    #[test]
    fn a_shell_is_chosen_only_for_a_prompt_an_admin_queued_for_it() {
        let (bash, agent) = (live("b", "shell"), live("a", "claude"));
        let ready = [&bash, &agent];
        let rows = HashMap::new();
        let to = |t, m| choose(&prompt(t, m), &ready, &rows).map(|s| s.tmux.name.clone());
        assert_eq!(
            to(Some("b"), json!({})),
            None,
            "an explicit target must read as an agent"
        );
        assert_eq!(to(Some("b"), json!({"to_shell": true})), Some("b".into()));
        assert_eq!(to(Some("a"), json!({})), Some("a".into()));
        assert_eq!(to(None, json!({"to_shell": true})), Some("a".into()));
    }
}
