//! Permission prompts seen in panes: recorded as interactions (session, agent, tool, command
//! or file, the full prompt text, time), decided by the patterns when one applies (pressing
//! that agent's keys), otherwise left pending for a person (`/api/claude/interactions`).
//!
//! Keys per agent (README of the captures): Claude Code approves with `1` and denies with
//! `Escape` (`y` does nothing there); Codex approves with `y` and denies with `Escape`.
//! Claude's unnumbered fallback dialog (focus on "No") is never approved by a key.
//!
//! **One prompt on screen is one interaction and one key press.** Each interaction carries the
//! fingerprint of the prompt it was read from (`PermissionRequest::fingerprint`); a session
//! holds at most one pending interaction (a unique index); an answered prompt still drawn —
//! the very screen its key was pressed on, unchanged, within [`ECHO_WINDOW_MS`] and not seen
//! gone in between — is not recorded again (the same request asked again shows a changed
//! transcript above it, so it is);
//! and [`apply`] re-reads the pane before every key press and presses nothing unless the very
//! same prompt is on screen and the interaction was still pending (claimed by one
//! conditional UPDATE, so of two callers only one presses).
//!
//! A pre-tool-use hook that answered "ask" recorded the request already, with the agent's
//! exact command (`permissions::decide_for_hook`): the pane scan only attaches the prompt it
//! sees to it and never decides it automatically: no pane-side pattern overrides a hook's ask.

use super::classify::{
    permission_request, screen_hash, AgentKind, PaneState, PaneView, PermissionRequest,
};
use super::permission_store::{self as pstore, Interaction, NewInteraction};
use super::permissions::{self, Outcome, Request, Verdict};
use super::route::LOCAL_NODE;
use super::sessions::LiveSession;
use super::{store, AgentsError};
use crate::agents::AgentsState;
use crate::tmux::{CaptureMode, SessionName, TmuxError};

/// How long after a key the unchanged screen is taken for the answered prompt still drawn
/// (Claude Code redraws ~0.1 s after a key; a loaded machine is slower). After it, a prompt
/// still on screen is recorded again: the key was lost, and a person (or a pattern) must
/// answer it.
pub const ECHO_WINDOW_MS: i64 = 5000;

/// Lines captured to read a prompt.
const PROMPT_LINES: u32 = 80;

/// The keys that approve / deny a permission prompt of `agent`.
pub fn keys(agent: AgentKind, approve: bool) -> Option<&'static str> {
    match (agent, approve) {
        (AgentKind::Claude, true) => Some("1"),
        (AgentKind::Codex, true) => Some("y"),
        (AgentKind::Claude | AgentKind::Codex, false) => Some("Escape"),
        _ => None,
    }
}

/// Milliseconds from RFC 3339 `a` to `b` (`None` when either does not parse).
fn millis_between(a: &str, b: &str) -> Option<i64> {
    let d = crate::clock::parse(b)? - crate::clock::parse(a)?;
    i64::try_from(d.whole_milliseconds()).ok()
}

/// Whether the prompt `fingerprint` on the screen `screen` is `last`'s, answered and still
/// drawn.
fn still_drawn(last: &Interaction, fingerprint: &str, screen: &str, now: &str) -> bool {
    last.status != "pending"
        && last.fingerprint.as_deref() == Some(fingerprint)
        && last.screen_hash.as_deref() == Some(screen)
        && last.screen_left_at.is_none()
        && last
            .decided_at
            .as_deref()
            .and_then(|d| millis_between(d, now))
            .is_some_and(|ms| ms < ECHO_WINDOW_MS)
}

/// Records a new interaction for every session showing a permission prompt not recorded yet,
/// applies the patterns, and closes pending interactions whose prompt left the screen.
pub async fn scan(state: &AgentsState, live: &[LiveSession]) -> Result<Vec<i64>, AgentsError> {
    let mut decided = Vec::new();
    for s in live {
        let now = state.clock.now_str();
        let last = pstore::latest_interaction(&state.db, LOCAL_NODE, &s.tmux.name).await?;
        if s.state != PaneState::WaitingForPermission {
            if let Some(l) = last {
                // A hook's request may not be drawn yet while the agent is busy; an idle
                // agent has answered it (in the terminal) or dropped it.
                let closes = l.source == "pane" || s.state == PaneState::Idle;
                if l.status == "pending" && closes {
                    pstore::decide_interaction(&state.db, l.id, "gone", "pane:closed", &now)
                        .await?;
                    state
                        .events
                        .emit(crate::events::Topic::Interactions, "gone", l.id);
                } else if l.status != "pending" && l.screen_left_at.is_none() {
                    pstore::mark_screen_left(&state.db, l.id, &now).await?;
                }
            }
            continue;
        }
        let name = SessionName::parse(&s.tmux.name)?;
        let screen = match state
            .agents
            .tmux()
            .capture(&name, PROMPT_LINES, CaptureMode::Plain)
            .await
        {
            Ok(screen) => screen,
            Err(TmuxError::NoSuchSession(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        // The screen read now, not the one the state came from, must show the prompt.
        let classifier = state.agents.classifier(&state.db).await?;
        let now_state = classifier.classify(&PaneView {
            screen: &screen,
            agent_hint: Some(s.agent),
            ..Default::default()
        });
        let Some(req) = permission_request(s.agent, &screen)
            .filter(|_| now_state.state == PaneState::WaitingForPermission)
        else {
            continue;
        };
        let fingerprint = req.fingerprint();
        match &last {
            Some(l) if l.status == "pending" => match l.fingerprint.as_deref() {
                None => {
                    pstore::attach_screen(&state.db, l.id, &fingerprint, &req.prompt_text).await?;
                    continue;
                }
                Some(f) if f == fingerprint => continue,
                // Another prompt: the pending one was answered in the terminal.
                Some(_) => {
                    pstore::decide_interaction(&state.db, l.id, "gone", "pane:superseded", &now)
                        .await?;
                    state
                        .events
                        .emit(crate::events::Topic::Interactions, "gone", l.id);
                }
            },
            Some(l) if still_drawn(l, &fingerprint, &screen_hash(&screen), &now) => continue,
            _ => {}
        }
        if let Some(id) = record(state, s, &req, &fingerprint, &now).await? {
            decided.push(id);
        }
    }
    Ok(decided)
}

/// How long a newly seen permission dialog is left on screen before a pattern's key is
/// pressed into it (see `record`).
pub const PROMPT_SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

/// Records the prompt `req` on `s`'s screen and decides it by the patterns; the id when a
/// pattern decided it.
async fn record(
    state: &AgentsState,
    s: &LiveSession,
    req: &PermissionRequest,
    fingerprint: &str,
    now: &str,
) -> Result<Option<i64>, AgentsError> {
    let Some(i) = pstore::insert_interaction(
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
            fingerprint: Some(fingerprint),
        },
        now,
    )
    .await?
    else {
        // Another scan recorded it first.
        return Ok(None);
    };
    state
        .events
        .emit(crate::events::Topic::Interactions, "created", i.id);
    let row = store::session(&state.db, LOCAL_NODE, &s.tmux.name).await?;
    let subject = i.command.clone().or(i.path.clone()).unwrap_or_default();
    let r = Request {
        session: &s.tmux.name,
        role: s.role.as_deref(),
        tool: &i.tool,
        subject: &subject,
        workspace: row.as_ref().and_then(|r| r.cwd.as_deref()),
        exact: false,
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
    pstore::audit(&state.db, Some(i.id), &r, &v, false, now).await?;
    if v.outcome == Outcome::Ask {
        return Ok(None);
    }
    // Claude Code ignores a key pressed within a few hundred milliseconds of drawing its
    // dialog (seen with the real 2.1.332): the prompt stays and would be recorded and pressed
    // again. Let a dialog first seen by this scan settle; `apply` re-reads the pane after, so
    // a dialog that went away meanwhile gets no key.
    tokio::time::sleep(PROMPT_SETTLE).await;
    match apply(
        state,
        &i,
        s.agent,
        v.outcome == Outcome::Approve,
        &v.decided_by,
    )
    .await
    {
        Ok(()) => Ok(Some(i.id)),
        // The prompt left the screen between reading and pressing: nothing pressed.
        Err(AgentsError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Presses the agent's approve or deny key for pending interaction `i` — only when its very
/// prompt is on screen now (the pane is re-read first; another prompt, or none, closes the
/// interaction as gone and presses nothing) and this caller moved it out of pending (so a
/// prompt gets at most one key).
pub async fn apply(
    state: &AgentsState,
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
    let gone = |by: &'static str, why: String| async move {
        pstore::decide_interaction(&state.db, i.id, "gone", by, &state.clock.now_str()).await?;
        state
            .events
            .emit(crate::events::Topic::Interactions, "gone", i.id);
        Err::<(), AgentsError>(AgentsError::Conflict(why))
    };
    // Claude Code redraws its whole screen at times: a capture can catch a frame half drawn,
    // so a screen without the prompt is read once more before the interaction is given up.
    let mut read = None;
    for _ in 0..2 {
        let screen = match state
            .agents
            .tmux()
            .capture(&name, PROMPT_LINES, CaptureMode::Plain)
            .await
        {
            Ok(screen) => screen,
            Err(TmuxError::NoSuchSession(_)) => {
                return gone(
                    "session:gone",
                    format!(
                        "session '{}' no longer exists; interaction {} is closed as gone",
                        i.session, i.id
                    ),
                )
                .await;
            }
            Err(e) => return Err(e.into()),
        };
        let classifier = state.agents.classifier(&state.db).await?;
        let c = classifier.classify(&PaneView {
            screen: &screen,
            agent_hint: Some(agent),
            ..Default::default()
        });
        if let Some(req) = permission_request(agent, &screen)
            .filter(|_| c.state == PaneState::WaitingForPermission)
        {
            read = Some((screen, req));
            break;
        }
    }
    let Some((screen, req)) = read else {
        return gone(
            "pane:closed",
            "the session no longer shows this permission prompt".into(),
        )
        .await;
    };
    let fingerprint = req.fingerprint();
    match i.fingerprint.as_deref() {
        Some(f) if f != fingerprint => {
            return gone(
                "pane:superseded",
                "the session shows another permission prompt now; nothing was pressed".into(),
            )
            .await;
        }
        Some(_) => {}
        // A hook's request no scan has seen yet: the prompt on screen is taken for it.
        None => {
            pstore::attach_screen(&state.db, i.id, &fingerprint, &req.prompt_text).await?;
        }
    }
    if approve && !req.numbered {
        return Err(AgentsError::Conflict(
            "this dialog has unnumbered options with the focus on No; approve it in the terminal"
                .into(),
        ));
    }
    let status = if approve { "approved" } else { "denied" };
    let now = state.clock.now_str();
    if !pstore::claim_for_key(&state.db, i.id, status, by, &screen_hash(&screen), &now).await? {
        return Err(AgentsError::Conflict(format!(
            "interaction {} was decided meanwhile; nothing was pressed",
            i.id
        )));
    }
    state
        .events
        .emit(crate::events::Topic::Interactions, status, i.id);
    state.agents.tmux().send_keys(&name, &[key]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(fingerprint: &str, at: &str, left: Option<&str>) -> Interaction {
        let screen = Some("screen".to_string());
        Interaction {
            id: 1,
            node: "local".into(),
            session: "s".into(),
            agent: "claude".into(),
            tool: "Bash".into(),
            command: Some("ls".into()),
            path: None,
            prompt_text: String::new(),
            source: "pane".into(),
            status: "approved".into(),
            decision_by: Some("pattern:1".into()),
            created_at: at.into(),
            decided_at: Some(at.into()),
            fingerprint: Some(fingerprint.into()),
            screen_hash: screen,
            screen_left_at: left.map(str::to_string),
        }
    }

    #[test]
    fn an_answered_prompt_still_drawn_is_not_a_new_one() {
        let at = "2026-01-01T00:00:00.000000Z";
        let soon = "2026-01-01T00:00:00.010000Z";
        let later = "2026-01-01T00:00:05.000000Z";
        let s = "screen";
        assert!(still_drawn(&decided("f", at, None), "f", s, soon));
        assert!(!still_drawn(&decided("f", at, None), "g", s, soon));
        // The same request asked again: the transcript above the prompt changed.
        assert!(!still_drawn(
            &decided("f", at, None),
            "f",
            "other screen",
            soon
        ));
        assert!(!still_drawn(&decided("f", at, None), "f", s, later));
        assert!(!still_drawn(&decided("f", at, Some(at)), "f", s, soon));
        let mut pending = decided("f", at, None);
        pending.status = "pending".into();
        assert!(!still_drawn(&pending, "f", s, soon));
    }
}
