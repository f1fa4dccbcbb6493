//! The agent a project's runs start for each work item, and whose rights a run acts with.
//!
//! A run launches its sessions through `agents::launch::start` (the same path as `session
//! start`) with the identity of the person who configured it, looked up afresh each time: a
//! person whose role was lowered or who was disabled no longer reaches further through their
//! runs. A spec that runs a program of the configurer's choosing (`program`, `args`, `env`) is
//! the Exec capability, checked when it is configured and again at every launch.

use crate::agents::launch::LaunchAgent;
use crate::app::AppState;
use crate::auth::{AuthVia, Capability, Identity};
use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn claude() -> LaunchAgent {
    LaunchAgent::Claude
}

/// `POST /api/projects/{id}/autopilot {agent: {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// `claude` (default), `codex` or `chat`.
    #[serde(default = "claude")]
    pub agent: LaunchAgent,
    /// The agent program instead of `claude` / `codex` (a pinned install, a wrapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment (never a secret: use the vault; values are shown on the run page).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Keep the agent's own provider settings instead of architect's gateway (its cost is then
    /// not in the ledger, so a budget cannot be enforced: refused with `budget_usd`).
    #[serde(default)]
    pub no_gateway: bool,
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            agent: LaunchAgent::Claude,
            program: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            no_gateway: false,
        }
    }
}

impl AgentSpec {
    /// Runs code of the configurer's choosing on the node (see `agents::launch::start`).
    pub fn needs_exec(&self) -> bool {
        self.program.is_some() || !self.args.is_empty() || !self.env.is_empty()
    }

    pub fn validate(&self, budget: Option<f64>) -> Result<(), Invalid> {
        if self.agent == LaunchAgent::Shell {
            return Err(invalid(
                "agent.agent",
                "a shell cannot work on an item: use claude, codex or chat",
            ));
        }
        if self.no_gateway && budget.is_some() {
            return Err(invalid(
                "agent.no_gateway",
                "an agent outside the gateway spends money the ledger cannot see: a budget_usd cannot be kept",
            ));
        }
        if self.args.len() > 32 || self.env.len() > 64 {
            return Err(invalid("agent", "too many arguments or variables"));
        }
        Ok(())
    }

    /// Checks the configurer may set this spec.
    pub fn allowed_for(&self, who: &Identity) -> Result<(), super::AutopilotError> {
        if self.needs_exec() && !who.can(Capability::Exec) {
            return Err(super::AutopilotError::Forbidden(
                "an agent with its own program, arguments or environment runs code of your choosing: only an admin may set one".into(),
            ));
        }
        Ok(())
    }
}

/// The identity a run acts with: its configurer as they are now. `None`: the person is gone
/// or disabled (the run is blocked and says so).
pub async fn run_identity(
    state: &AppState,
    user_id: Option<i64>,
) -> Result<Option<Identity>, sqlx::Error> {
    let Some(id) = user_id else {
        return Ok(None);
    };
    let Some(u) = crate::auth::store::get_user(&state.db, id).await? else {
        return Ok(None);
    };
    if u.disabled {
        return Ok(None);
    }
    Ok(Some(Identity {
        user_id: u.id,
        username: u.username,
        role: u.role,
        // The person's own rights, not a token's narrower scope: they configured the run in
        // their own name. Session id 0 is never a real login.
        via: AuthVia::Session {
            session_id: 0,
            csrf_token: String::new(),
            expires_at: String::new(),
            authenticated_at: String::new(),
        },
    }))
}
