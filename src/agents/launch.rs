//! `POST /api/agents/sessions` (what `architect session start` calls): checks the request,
//! mints the session's agent-scope token, registers the session (agent, role, groups,
//! manager), and has `tmux::spawn` start it — on this server's tmux, or on a remote node
//! through its agent's `session-start` command (one launch code path for both). For Claude
//! Code that writes a settings file whose hooks run `architect hook <event>`, so a submitted
//! prompt, a finished turn, a notification and a tool about to run are reported to the control
//! plane as positive events, and points it at architect's LLM gateway unless `no_gateway`.
//!
//! Optional git worktree per session: `feature/<slug>-MMDD` branched from the cwd's HEAD into
//! `<data-dir>/worktrees/<session>`, so parallel agents never share a checkout.

use super::route::NodeRef;
use super::store::{self, SessionFacts};
use super::{AgentsError, SessionRole};
use crate::agents::AgentsState;
use crate::auth::{Capability, Identity};
use crate::tmux::spawn::{self, LaunchPlan, Launched, NodeSide};
use crate::tmux::SessionName;
use crate::validate::invalid;
use serde::{Deserialize, Serialize};

pub use crate::tmux::spawn::LaunchAgent;

impl LaunchAgent {
    fn kind(self) -> super::classify::AgentKind {
        use super::classify::AgentKind as K;
        match self {
            LaunchAgent::Claude => K::Claude,
            LaunchAgent::Codex => K::Codex,
            LaunchAgent::Chat => K::ArchitectChat,
            LaunchAgent::Shell => K::Shell,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSession {
    pub name: String,
    pub agent: LaunchAgent,
    pub cwd: Option<String>,
    pub node: Option<String>,
    pub role: Option<SessionRole>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The manager session this one reports to (escalation goes there).
    pub manager: Option<String>,
    /// Create a git worktree and branch for this session.
    #[serde(default)]
    pub worktree: bool,
    /// The new worktree's branch (default `feature/<slug>-MMDD`); needs `worktree`.
    #[serde(default)]
    pub branch: Option<String>,
    /// The agent program to run instead of `claude` / `codex` / `architect` / `$SHELL`
    /// (a wrapper script, a pinned install). Its arguments are still architect's.
    pub program: Option<String>,
    /// Extra arguments after architect's.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for the agent (names: letters, digits, '_').
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Keep the agent's own provider configuration instead of pointing Claude Code or Codex
    /// at architect's LLM gateway (`chat` always uses the gateway).
    #[serde(default)]
    pub no_gateway: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartedSession {
    pub node: String,
    pub session: String,
    pub agent: LaunchAgent,
    pub cwd: Option<String>,
    pub branch: Option<String>,
    /// The Claude Code settings file holding architect's hooks, when one was written.
    pub settings_path: Option<String>,
    pub command: Vec<String>,
    /// The agent's model requests go through architect's LLM gateway.
    pub gateway: bool,
}

fn check_group(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `feature/<slug>-MMDD`.
pub fn branch_name(session: &str, now: time::OffsetDateTime) -> String {
    let slug: String = session
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "feature/{}-{:02}{:02}",
        slug.trim_matches('-'),
        u8::from(now.month()),
        now.day()
    )
}

/// A branch name `git worktree add -b` takes as a new branch, and never as an option: 1-100
/// of letters, digits, `.`, `_`, `-`, `/`; no leading `-` or `/`, no `..`, `//`, `@{`, no
/// part starting with `.` or ending with `.lock`, no trailing `/` or `.`.
fn check_branch(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= 100
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
        && !b.starts_with(['-', '/'])
        && !b.ends_with(['/', '.'])
        && !b.contains("..")
        && !b.contains("//")
        && b.split('/')
            .all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

/// How long a remote `session-start` may take, delivery and a git worktree included.
pub const REMOTE_START_TIMEOUT_S: i64 = 60;

pub async fn start(
    state: &AgentsState,
    who: &Identity,
    req: StartSession,
) -> Result<StartedSession, AgentsError> {
    // What the caller runs on the node beyond a known agent is code of their choosing: a
    // shell, another program, arguments (`--settings` with hooks, `-c` overrides) or
    // environment (`NODE_OPTIONS`, `LD_PRELOAD`, `PATH`). That is the Exec capability.
    if !who.can(Capability::Exec) {
        let extra = if req.agent == LaunchAgent::Shell {
            Some(("agent", "a shell session"))
        } else if req.program.is_some() {
            Some(("program", "another program"))
        } else if !req.args.is_empty() {
            Some(("args", "extra arguments"))
        } else if !req.env.is_empty() {
            Some(("env", "extra environment"))
        } else {
            None
        };
        if let Some((field, what)) = extra {
            return Err(AgentsError::Forbidden(format!(
                "{what} ('{field}') runs code of your choosing on the node: only an admin may \
                 start one"
            )));
        }
    }
    let node = NodeRef::parse(req.node.as_deref())?;
    let name = SessionName::parse(&req.name).map_err(|e| invalid("name", e.message))?;
    if let Some(bad) = req.groups.iter().find(|g| !check_group(g)) {
        return Err(invalid("groups", format!("'{bad}' is not a valid group name")).into());
    }
    if let Some(m) = &req.manager {
        SessionName::parse(m).map_err(|e| invalid("manager", e.message))?;
    }
    if let Some(cwd) = &req.cwd {
        if !cwd.starts_with('/') {
            return Err(invalid("cwd", "cwd must be an absolute path").into());
        }
    }
    if req.worktree && req.cwd.is_none() {
        return Err(invalid("cwd", "a worktree needs cwd (a git checkout)").into());
    }
    if let Some(b) = &req.branch {
        if !req.worktree {
            return Err(invalid("branch", "a branch is for a new worktree: set worktree").into());
        }
        if !check_branch(b) {
            return Err(invalid(
                "branch",
                format!("'{b}' is not a usable branch name (letters, digits, '.', '_', '-', '/')"),
            )
            .into());
        }
    }
    if req
        .args
        .iter()
        .chain(req.program.iter())
        .any(|a| a.contains('\0'))
    {
        return Err(invalid("args", "arguments may not contain NUL").into());
    }
    for (k, v) in &req.env {
        let ok = !k.is_empty()
            && k.len() <= 128
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && !k.starts_with("ARCHITECT_")
            && !v.contains('\0');
        if !ok {
            return Err(
                invalid("env", format!("'{k}' is not a usable environment variable")).into(),
            );
        }
    }
    // Where it runs: this server's tmux, or a node's agent (this server's own node included,
    // which is local whatever it is called).
    let remote = match &node {
        NodeRef::Local => None,
        NodeRef::Remote(n) => {
            let Some(id) = crate::nodes::actions::node_id_by_name(&state.nodes, n).await? else {
                return Err(invalid(
                    "node",
                    format!("there is no node '{n}' (GET /api/nodes lists them)"),
                )
                .into());
            };
            (state.nodes.nodes.local_node() != Some(id)).then_some(id)
        }
    };
    // Checked before anything is minted or registered (the node checks again when it starts).
    let exists = match remote {
        None => state.agents.tmux().has_session(&name).await?,
        Some(_) => match super::route::run(state, &node, super::route::TmuxOp::List).await? {
            super::route::TmuxAnswer::Sessions(list) => {
                list.iter().any(|s| s.name == name.as_str())
            }
            _ => false,
        },
    };
    if exists {
        return Err(AgentsError::Conflict(format!(
            "tmux session '{name}' already exists"
        )));
    }
    let now = state.clock.now();

    // The session's own token, bound to it: hooks report with it, the LLM gateway accepts it,
    // it reaches nothing but its own session, and it is revoked when the session is killed.
    // A remote node gets a one-time claim for it instead (launch_remote): the token itself
    // is never stored in a node command.
    let token = match remote {
        None => Some(
            crate::auth::actions::create_session_token(
                &state.auth,
                &who.actor(),
                who.user_id,
                node.name(),
                name.as_str(),
            )
            .await
            .map_err(|e| {
                AgentsError::Conflict(format!("cannot create the session's token: {e}"))
            })?,
        ),
        Some(_) => None,
    };
    let facts = |cwd: Option<String>, branch: Option<String>| SessionFacts {
        agent: Some(req.agent.kind().as_str().to_string()),
        launched: true,
        role: req.role.map(|r| r.as_str().to_string()),
        groups: req.groups.clone(),
        manager: req.manager.clone(),
        cwd,
        branch,
    };
    let row = store::register_session(
        &state.db,
        node.name(),
        name.as_str(),
        &facts(req.cwd.clone(), None),
        &crate::clock::format(now),
        None,
    )
    .await?;
    if let Some(t) = &token {
        store::set_hook_token(&state.db, row.id, t.info.id).await?;
    }
    let plan = LaunchPlan {
        name: name.clone(),
        agent: req.agent,
        cwd: req.cwd.clone(),
        worktree_branch: req.worktree.then(|| {
            req.branch
                .clone()
                .unwrap_or_else(|| branch_name(name.as_str(), now))
        }),
        program: req.program.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        node: node.name().to_string(),
        token: token.map(|t| t.token).unwrap_or_default(),
        token_claim: None,
        gateway: !req.no_gateway,
    };
    let launched = match remote {
        None => spawn::launch(&local_side(state), &plan)
            .await
            .map_err(AgentsError::from),
        Some(id) => launch_remote(state, who, id, plan).await,
    };
    let launched = match launched {
        Ok(l) => l,
        Err(e) => {
            // Nothing runs: the token (or its claim) must not outlive the attempt.
            let _ = store::drop_claims(
                &state.db,
                node.name(),
                name.as_str(),
                &state.clock.now_str(),
            )
            .await;
            let _ = store::revoke_hook_token(
                &state.db,
                node.name(),
                name.as_str(),
                &state.clock.now_str(),
            )
            .await;
            return Err(e);
        }
    };
    store::register_session(
        &state.db,
        node.name(),
        name.as_str(),
        &facts(launched.cwd.clone(), launched.branch.clone()),
        &state.clock.now_str(),
        Some((&who.actor(), "start")),
    )
    .await?;
    state
        .events
        .emit(crate::events::Topic::Sessions, "started", name.as_str());
    Ok(StartedSession {
        node: node.name().to_string(),
        session: name.to_string(),
        agent: req.agent,
        cwd: launched.cwd,
        branch: launched.branch,
        settings_path: launched.settings_path,
        command: launched.command,
        gateway: launched.gateway,
    })
}

/// This server's own node: its tmux server, data directory and address.
fn local_side(state: &AgentsState) -> NodeSide {
    NodeSide {
        tmux: state.agents.tmux().clone(),
        data_dir: state.config.data_dir.clone(),
        // ARCHITECT_WORKER_BIN when set (tests, odd installs), else this binary.
        architect: state.config.worker_bin.clone(),
        dashboard_url: state.tasks.local_url().map(str::to_string),
        control_plane: None,
    }
}

/// Runs the plan on node `id` through its agent (`session-start`). The plan carries a
/// one-time claim, not the token: anyone who may read node commands sees only the claim,
/// which only that node's agent can redeem (`redeem_claim`), once, within the start's
/// deadline. The token is minted at redemption and never stored anywhere but its hash.
async fn launch_remote(
    state: &AgentsState,
    who: &Identity,
    id: i64,
    mut plan: LaunchPlan,
) -> Result<Launched, AgentsError> {
    let claim = crate::auth::random_secret(32);
    let now = state.clock.now();
    store::insert_claim(
        &state.db,
        &store::NewClaim {
            claim_hash: &crate::auth::secret_hash(&state.auth.secret_key, &claim),
            node_id: id,
            session_node: &plan.node,
            session_name: plan.name.as_str(),
            user_id: who.user_id,
            now: &crate::clock::format(now),
            expires_at: &crate::clock::format(
                now + time::Duration::seconds(REMOTE_START_TIMEOUT_S),
            ),
        },
    )
    .await?;
    plan.token = String::new();
    plan.token_claim = Some(claim);
    let args = serde_json::to_value(&plan)
        .map_err(|e| AgentsError::Conflict(format!("cannot encode the launch: {e}")))?;
    let v = crate::nodes::actions::run_command(
        &state.nodes,
        &who.actor(),
        id,
        spawn::COMMAND,
        args,
        REMOTE_START_TIMEOUT_S,
    )
    .await?;
    let _ = store::drop_claims(
        &state.db,
        &plan.node,
        plan.name.as_str(),
        &state.clock.now_str(),
    )
    .await;
    serde_json::from_value(v).map_err(|e| {
        AgentsError::Conflict(format!(
            "node '{}' answered session-start without a launch report: {e}",
            plan.node
        ))
    })
}

/// Trades a claim made by [`launch_remote`] for the session's token; `caller` must be the
/// agent of the node the claim was made for.
pub async fn redeem_claim(
    state: &AgentsState,
    caller: &crate::nodes::actions::AgentCaller,
    claim: &str,
) -> Result<String, AgentsError> {
    let hash = crate::auth::secret_hash(&state.auth.secret_key, claim);
    // Checked before the claim is used up, so another node's agent cannot burn it.
    let Some(node_id) = store::claim_node(&state.db, &hash, &state.clock.now_str()).await? else {
        return Err(invalid("claim", "no such claim, or it was used or has expired").into());
    };
    crate::nodes::actions::ensure_agent_of(&state.nodes, caller, node_id).await?;
    let Some(c) = store::redeem_claim(&state.db, &hash, &state.clock.now_str()).await? else {
        return Err(invalid("claim", "no such claim, or it was used or has expired").into());
    };
    let actor = match caller {
        crate::nodes::actions::AgentCaller::Token { actor, .. } => actor.clone(),
        crate::nodes::actions::AgentCaller::Local => "local agent".to_string(),
    };
    let token = crate::auth::actions::create_session_token(
        &state.auth,
        &actor,
        c.user_id,
        &c.session_node,
        &c.session_name,
    )
    .await
    .map_err(|e| AgentsError::Conflict(format!("cannot create the session's token: {e}")))?;
    if let Some(row) = store::session(&state.db, &c.session_node, &c.session_name).await? {
        store::set_hook_token(&state.db, row.id, token.info.id).await?;
    }
    Ok(token.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_named_as_spec_md_says() {
        let t = time::macros::datetime!(2026-03-07 10:00 UTC);
        assert_eq!(branch_name("Dev_Worker1", t), "feature/dev-worker1-0307");
    }

    #[test]
    fn branch_names_never_read_as_options_or_bad_refs() {
        for ok in ["feature/login", "fix-1", "a/b.c_d"] {
            assert!(check_branch(ok), "{ok}");
        }
        for bad in [
            "", "-b", "--force", "/x", "x/", "a..b", "a//b", ".hidden", "a/.b", "x.lock", "a b",
            "a@{1}", "x.",
        ] {
            assert!(!check_branch(bad), "{bad}");
        }
    }
}
