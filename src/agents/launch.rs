//! `POST /api/agents/sessions` (what `architect session start` calls): launches an agent in a
//! tmux session with the right environment, registers it (agent, role, groups, manager), and
//! for Claude Code writes a settings file whose hooks run `architect hook <event>`, so a
//! submitted prompt, a finished turn, a notification and a tool about to run are reported to
//! the control plane as positive events.
//!
//! Optional git worktree per session: `feature/<slug>-MMDD` branched from the cwd's HEAD into
//! `<data-dir>/worktrees/<session>`, so parallel agents never share a checkout.

use super::route::NodeRef;
use super::store::{self, SessionFacts};
use super::tmux::{NewSession, SessionName};
use super::{AgentsError, SessionRole};
use crate::app::AppState;
use crate::auth::actions::NewApiToken;
use crate::auth::{Identity, Scope};
use crate::validate::invalid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

crate::text_enum! {
    /// What `architect session start --agent` launches.
    pub enum LaunchAgent ("agent") {
        Claude = "claude",
        Codex = "codex",
        /// `architect chat --worker` through the LLM gateway.
        Chat = "chat",
        Shell = "shell",
    }
}

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

/// The Claude Code hook events architect installs, and the `architect hook` argument of each.
pub const CLAUDE_HOOKS: &[(&str, &str)] = &[
    ("UserPromptSubmit", "user-prompt-submit"),
    ("Stop", "stop"),
    ("Notification", "notification"),
    ("PreToolUse", "pre-tool-use"),
];

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
    /// The agent program to run instead of `claude` / `codex` / `architect` / `$SHELL`
    /// (a wrapper script, a pinned install). Its arguments are still architect's.
    pub program: Option<String>,
    /// Extra arguments after architect's.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for the agent (names: letters, digits, '_').
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
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

/// Quotes a path for the `sh -c` that Claude Code runs a hook command with.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The settings JSON: one command hook per event, running `<architect> hook <event>`.
pub fn claude_settings(architect: &Path) -> serde_json::Value {
    let bin = sh_quote(&architect.display().to_string());
    let mut hooks = serde_json::Map::new();
    for (event, arg) in CLAUDE_HOOKS {
        let mut entry = serde_json::json!({
            "hooks": [{"type": "command", "command": format!("{bin} hook {arg}"), "timeout": 30}]
        });
        if *event == "PreToolUse" {
            entry["matcher"] = serde_json::json!("*");
        }
        hooks.insert((*event).to_string(), serde_json::json!([entry]));
    }
    serde_json::json!({ "hooks": hooks })
}

async fn git(cwd: &str, args: &[&str]) -> Result<String, AgentsError> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(args)
        .output()
        .await
        .map_err(|e| AgentsError::Conflict(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(AgentsError::Invalid(invalid(
            "worktree",
            format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub async fn start(
    state: &AppState,
    who: &Identity,
    req: StartSession,
) -> Result<StartedSession, AgentsError> {
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
    if node != NodeRef::Local {
        return Err(AgentsError::NodeChannelUnavailable(node.name().to_string()));
    }
    if state.agents.tmux().has_session(&name).await? {
        return Err(AgentsError::Conflict(format!(
            "tmux session '{name}' already exists"
        )));
    }
    let now = state.clock.now();
    let mut cwd = req.cwd.clone();
    let mut branch = None;
    if req.worktree {
        let base = cwd
            .clone()
            .ok_or_else(|| invalid("cwd", "a worktree needs cwd (a git checkout)"))?;
        let b = branch_name(name.as_str(), now);
        let dir = state.config.data_dir.join("worktrees").join(name.as_str());
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let dir_s = dir.display().to_string();
        git(&base, &["worktree", "add", "-b", &b, &dir_s, "HEAD"]).await?;
        cwd = Some(dir_s);
        branch = Some(b);
    } else if let Some(c) = &cwd {
        branch = git(c, &["rev-parse", "--abbrev-ref", "HEAD"]).await.ok();
    }

    // The binary hooks run: ARCHITECT_WORKER_BIN when set (tests, odd installs), else this one.
    let architect: PathBuf = match &state.config.worker_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| AgentsError::Conflict(format!("cannot find the architect binary: {e}")))?,
    };
    let session_dir = state.config.data_dir.join("agents").join(name.as_str());
    let session_dir = std::path::absolute(&session_dir).unwrap_or(session_dir);
    let mut settings_path = None;
    let mut command: Vec<String> = Vec::new();
    match req.agent {
        LaunchAgent::Claude => {
            std::fs::create_dir_all(&session_dir).map_err(|e| {
                AgentsError::Conflict(format!("cannot create {session_dir:?}: {e}"))
            })?;
            let path = session_dir.join("claude-settings.json");
            let body = serde_json::to_vec_pretty(&claude_settings(&architect)).unwrap_or_default();
            std::fs::write(&path, body)
                .map_err(|e| AgentsError::Conflict(format!("cannot write {path:?}: {e}")))?;
            command.push(req.program.clone().unwrap_or_else(|| "claude".into()));
            command.push("--settings".into());
            command.push(path.display().to_string());
            settings_path = Some(path.display().to_string());
        }
        LaunchAgent::Codex => {
            command.push(req.program.clone().unwrap_or_else(|| "codex".into()));
            // Without it codex 0.169 starts a daemon that outlives the session (README).
            command.push("--no-daemon".into());
        }
        LaunchAgent::Chat => {
            command.push(
                req.program
                    .clone()
                    .unwrap_or_else(|| architect.display().to_string()),
            );
            command.extend(["chat".into(), "--worker".into()]);
        }
        LaunchAgent::Shell => {
            command.push(req.program.clone().unwrap_or_else(|| "bash".into()));
        }
    }
    command.extend(req.args.iter().cloned());

    // The session's own agent-scoped token: hooks report with it, nothing more.
    let token = crate::auth::actions::create_token(
        state,
        who,
        NewApiToken {
            name: format!("session {name} hooks"),
            scope: Scope::Agent,
            expires_in_days: None,
            user_id: None,
        },
    )
    .await
    .map_err(|e| AgentsError::Conflict(format!("cannot create the session's token: {e}")))?;
    let mut env: Vec<(String, String)> = req.env.clone().into_iter().collect();
    env.extend([
        ("ARCHITECT_SESSION".to_string(), name.to_string()),
        ("ARCHITECT_NODE".to_string(), node.name().to_string()),
        ("ARCHITECT_TOKEN".to_string(), token.token),
    ]);
    if let Some(url) = state.tasks.local_url() {
        env.push(("ARCHITECT_URL".to_string(), url.to_string()));
    }
    let token_id = token.info.id;
    let row = store::register_session(
        &state.db,
        node.name(),
        name.as_str(),
        &SessionFacts {
            agent: Some(req.agent.kind().as_str().to_string()),
            launched: true,
            role: req.role.map(|r| r.as_str().to_string()),
            groups: req.groups.clone(),
            manager: req.manager.clone(),
            cwd: cwd.clone(),
            branch: branch.clone(),
        },
        &crate::clock::format(now),
    )
    .await?;
    store::set_hook_token(&state.db, row.id, token_id).await?;
    state
        .agents
        .tmux()
        .create(&NewSession {
            name: Some(name.clone()),
            cwd: cwd.clone(),
            command: command.clone(),
            env,
            width: 160,
            height: 50,
        })
        .await?;
    if req.agent == LaunchAgent::Claude {
        // Without it Claude shows a "tmux focus-events off" line (README).
        let _ = state
            .agents
            .tmux()
            .set_global_option("focus-events", "on")
            .await;
    }
    Ok(StartedSession {
        node: node.name().to_string(),
        session: name.to_string(),
        agent: req.agent,
        cwd,
        branch,
        settings_path,
        command,
    })
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
    fn settings_hold_one_hook_per_event_with_a_quoted_binary() {
        let s = claude_settings(Path::new("/opt/it's here/architect"));
        for (event, arg) in CLAUDE_HOOKS {
            let cmd = s["hooks"][event][0]["hooks"][0]["command"]
                .as_str()
                .unwrap();
            assert_eq!(cmd, format!(r"'/opt/it'\''s here/architect' hook {arg}"));
        }
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
    }
}
