//! The agent-session calls of the typed client: `session start` and the tmux reads it uses to
//! check that a new session survived its first seconds. Request and response types are the
//! handlers' own.

use super::{Client, Result};
use crate::agents::api::{Captured, SessionList};
use crate::agents::launch::{StartSession, StartedSession};

impl Client {
    pub async fn start_session(&self, req: &StartSession) -> Result<StartedSession> {
        self.post("/api/agents/sessions", req).await
    }

    /// The last `lines` lines of a session's pane (404 once the session is gone).
    pub async fn capture_pane(&self, node: &str, session: &str, lines: u32) -> Result<Captured> {
        self.post(
            "/api/tmux/capture",
            &serde_json::json!({"node": node, "session": session, "lines": lines}),
        )
        .await
    }

    /// The sessions of one node as tmux lists them now.
    pub async fn tmux_sessions(&self, node: &str) -> Result<SessionList> {
        self.get("/api/tmux/sessions", &[("node", node.to_string())])
            .await
    }
}
