//! Hook events from agents (Claude Code settings hooks run `architect hook <event>`, which
//! posts here). They are the strongest signals: a submitted prompt makes the session busy, a
//! stopped turn makes it idle (a positive "turn finished"), a permission notification makes it
//! wait; each change is stored as `hook:<Event>`. A pre-tool-use event is answered with a
//! permission decision (see `permissions`), so the agent never shows the prompt at all.

use super::classify::PaneState;
use super::route::NodeRef;
use super::{store, AgentsError};
use crate::agents::AgentsState;
use crate::tmux::SessionName;
use crate::validate::invalid;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// The events `architect hook` reports.
    pub enum HookEvent ("hook event") {
        UserPromptSubmit = "user-prompt-submit",
        Stop = "stop",
        Notification = "notification",
        PreToolUse = "pre-tool-use",
    }
}

impl HookEvent {
    /// The signal name stored with a state change (Claude Code's event name).
    pub fn signal(self) -> &'static str {
        match self {
            HookEvent::UserPromptSubmit => "hook:UserPromptSubmit",
            HookEvent::Stop => "hook:Stop",
            HookEvent::Notification => "hook:Notification",
            HookEvent::PreToolUse => "hook:PreToolUse",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookReport {
    pub session: String,
    pub node: Option<String>,
    /// The JSON the agent gave the hook on stdin, as is.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// `decision` is Claude Code's `permissionDecision` for pre-tool-use: `allow`, `deny` or `ask`
/// (show the prompt to a person, or to the pane-side auto-approver).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookAnswer {
    pub recorded: bool,
    pub state: Option<PaneState>,
    pub decision: Option<String>,
    pub reason: Option<String>,
}

fn text<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

pub async fn report(
    state: &AgentsState,
    event: HookEvent,
    r: HookReport,
) -> Result<HookAnswer, AgentsError> {
    let node = NodeRef::parse(r.node.as_deref())?;
    let name = SessionName::parse(&r.session).map_err(|e| invalid("session", e.message))?;
    let now = state.clock.now_str();
    let row = match store::session(&state.db, node.name(), name.as_str()).await? {
        Some(row) => row,
        None => {
            let cwd = text(&r.payload, "cwd").unwrap_or("");
            store::saw_session(&state.db, node.name(), name.as_str(), None, cwd, &now).await?
        }
    };
    if let Some(path) = text(&r.payload, "transcript_path") {
        store::set_transcript(&state.db, row.id, path).await?;
    }
    let new_state = match event {
        HookEvent::UserPromptSubmit => Some((PaneState::Busy, "unknown")),
        HookEvent::Stop => Some((PaneState::Idle, "empty")),
        HookEvent::Notification => {
            let msg = text(&r.payload, "message").unwrap_or("").to_lowercase();
            msg.contains("permission")
                .then_some((PaneState::WaitingForPermission, "unknown"))
        }
        HookEvent::PreToolUse => None,
    };
    if let Some((s, input)) = new_state {
        if store::set_state(&state.db, row.id, s.as_str(), input, event.signal(), &now).await? {
            state
                .events
                .emit(crate::events::Topic::Sessions, s.as_str(), &row.name);
        }
    }
    state.agents.wake_dispatcher();
    let (decision, reason) = if event == HookEvent::PreToolUse {
        let d = super::permissions::decide_for_hook(state, &row, &r.payload).await?;
        (Some(d.hook_decision().to_string()), Some(d.reason))
    } else {
        (None, None)
    };
    Ok(HookAnswer {
        recorded: true,
        state: new_state.map(|(s, _)| s),
        decision,
        reason,
    })
}
