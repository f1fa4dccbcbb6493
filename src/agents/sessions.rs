//! Tracking sessions: what tmux lists on a node, read through the classifier, merged with what
//! architect knows (role, groups, the agent it launched), and — on refresh — every state change
//! stored with the signal that decided it (`pane:<row>`, `pane:unrecognised`, `hook:<event>`).
//!
//! One observation is one `list-sessions` plus one capture per pane read; the permission
//! watch ([`observe_agents`]) reads agent panes only: a pane whose foreground program is a
//! shell by tmux's listing alone is not captured.

use super::classify::{AgentKind, Classification, InputLine, PaneState, PaneView};
use super::route::{self, NodeRef, TmuxAnswer, TmuxOp};
use super::{store, AgentsError};
use crate::agents::AgentsState;
use crate::tmux::{CaptureMode, SessionInfo, SessionName};
use serde::{Deserialize, Serialize};

/// Lines captured to classify a pane: the agents' footers and panels fit well within this.
pub const CLASSIFY_LINES: u32 = 80;

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveSession {
    pub node: String,
    #[serde(flatten)]
    pub tmux: SessionInfo,
    pub agent: AgentKind,
    pub state: PaneState,
    pub input: InputLine,
    /// The signal that decided the state: `pane:<row>` or `pane:unrecognised`.
    pub state_by: String,
    pub role: Option<String>,
    pub groups: Vec<String>,
    pub launched: bool,
    pub branch: Option<String>,
    /// The screen the state was read from (the last `CLASSIFY_LINES` lines), so a caller
    /// needs no second capture of the same moment.
    #[serde(skip)]
    pub screen: String,
}

impl LiveSession {
    pub fn ready_for_prompt(&self) -> bool {
        self.state == PaneState::Idle && self.input == InputLine::Empty
    }
}

/// A node whose sessions could not be listed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFailure {
    pub node: String,
    pub error: String,
}

/// The signal name of a pane reading.
pub fn pane_signal(c: &Classification) -> String {
    match &c.state_by {
        Some(row) => format!("pane:{row}"),
        None => "pane:unrecognised".into(),
    }
}

/// Captures and classifies one session's pane.
pub async fn classify_session(
    state: &AgentsState,
    node: &NodeRef,
    info: &SessionInfo,
    hint: Option<AgentKind>,
) -> Result<(Classification, String), AgentsError> {
    let name = SessionName::parse(&info.name)?;
    let screen = match route::run(
        state,
        node,
        TmuxOp::Capture {
            session: name,
            lines: CLASSIFY_LINES,
            mode: CaptureMode::Plain,
        },
    )
    .await?
    {
        TmuxAnswer::Text(t) => t,
        _ => String::new(),
    };
    let classifier = state.agents.classifier(&state.db).await?;
    let c = classifier.classify(&PaneView {
        screen: &screen,
        title: &info.pane_title,
        command: &info.current_command,
        agent_hint: hint,
    });
    Ok((c, screen))
}

/// Lists and classifies the sessions of one node. With `persist`, records them (first sight,
/// cwd, state changes with their signal, sessions gone).
pub async fn observe_node(
    state: &AgentsState,
    node: &NodeRef,
    persist: bool,
) -> Result<Vec<LiveSession>, AgentsError> {
    observe(state, node, persist, false).await
}

/// The agent sessions of one node, read without recording anything (the permission watch,
/// every tick): shells are left out before any capture, so the cost is one list plus one
/// capture per agent pane.
pub async fn observe_agents(
    state: &AgentsState,
    node: &NodeRef,
) -> Result<Vec<LiveSession>, AgentsError> {
    observe(state, node, false, true).await
}

async fn observe(
    state: &AgentsState,
    node: &NodeRef,
    persist: bool,
    agents_only: bool,
) -> Result<Vec<LiveSession>, AgentsError> {
    let infos = match route::run(state, node, TmuxOp::List).await? {
        TmuxAnswer::Sessions(s) => s,
        _ => Vec::new(),
    };
    let now = state.clock.now_str();
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        // Names tmux allows but we do not (spaces, dots) are listed, never driven.
        if SessionName::parse(&info.name).is_err() {
            continue;
        }
        let known = store::session(&state.db, node.name(), &info.name).await?;
        let hint = known
            .as_ref()
            .filter(|k| k.launched != 0)
            .and_then(|k| k.agent.as_deref())
            .and_then(|a| a.parse().ok());
        if agents_only && is_shell(state, &info, hint).await? {
            continue;
        }
        let (c, screen) = match classify_session(state, node, &info, hint).await {
            Ok(v) => v,
            // The session ended between list and capture.
            Err(AgentsError::Tmux(crate::tmux::TmuxError::NoSuchSession(_))) => continue,
            Err(e) => return Err(e),
        };
        let signal = pane_signal(&c);
        let row = if persist {
            let detected = (c.agent != AgentKind::Other).then(|| c.agent.as_str());
            let row = store::saw_session(
                &state.db,
                node.name(),
                &info.name,
                detected,
                &info.cwd,
                &now,
            )
            .await?;
            if store::set_state(
                &state.db,
                row.id,
                c.state.as_str(),
                c.input.as_str(),
                &signal,
                &now,
            )
            .await?
            {
                state
                    .events
                    .emit(crate::events::Topic::Sessions, c.state.as_str(), &info.name);
            }
            Some(row)
        } else {
            known
        };
        out.push(LiveSession {
            node: node.name().to_string(),
            agent: c.agent,
            state: c.state,
            input: c.input,
            state_by: signal,
            role: row.as_ref().and_then(|r| r.role.clone()),
            groups: row.as_ref().map(|r| r.groups()).unwrap_or_default(),
            launched: row.as_ref().is_some_and(|r| r.launched != 0),
            branch: row.as_ref().and_then(|r| r.branch.clone()),
            tmux: info,
            screen,
        });
    }
    if persist {
        let present: Vec<String> = out.iter().map(|s| s.tmux.name.clone()).collect();
        if store::mark_gone_except(&state.db, node.name(), &present, &now).await? > 0 {
            state.auth.token_cache.invalidate();
            state
                .events
                .emit_many(crate::events::Topic::Sessions, "gone");
        }
    }
    Ok(out)
}

/// True when the classifier calls the pane a shell from tmux's listing alone (its foreground
/// command), before any capture.
async fn is_shell(
    state: &AgentsState,
    info: &SessionInfo,
    hint: Option<AgentKind>,
) -> Result<bool, AgentsError> {
    let classifier = state.agents.classifier(&state.db).await?;
    let c = classifier.classify(&PaneView {
        screen: "",
        title: &info.pane_title,
        command: &info.current_command,
        agent_hint: hint,
    });
    Ok(c.agent == AgentKind::Shell)
}

/// The sessions of `nodes`, asked all at once, each node within [`route::NODE_DEADLINE`];
/// a node that failed or did not answer in time is in the failures, with why.
pub async fn observe_all(
    state: &AgentsState,
    nodes: &[NodeRef],
    persist: bool,
) -> (Vec<LiveSession>, Vec<NodeFailure>) {
    let mut sessions = Vec::new();
    let mut failures = Vec::new();
    let answers = route::on_each(nodes, route::NODE_DEADLINE, |node| async move {
        observe_node(state, &node, persist).await
    })
    .await;
    for (node, answer) in answers {
        match answer {
            Ok(s) => sessions.extend(s),
            Err(e) => {
                if matches!(e, AgentsError::Db(_)) {
                    tracing::warn!(error = %e, node = node.name(), "observing tmux sessions");
                }
                failures.push(NodeFailure {
                    node: node.name().to_string(),
                    error: match e {
                        AgentsError::Db(_) => "database error; see the server log".into(),
                        other => other.to_string(),
                    },
                })
            }
        }
    }
    (sessions, failures)
}
